// The async pattern every native call uses. A worker copies its inputs in its constructor (on
// the JS thread), runs Run() on another thread without touching JS, converts its results in
// Result() on the JS thread and settles a Promise. It keeps `owner` (the JS wrapper whose
// method started it) alive and holds its own GCancellable reference. A cancellable that fired
// before the job started fails it with CANCELLED before Run().
//
// Two threads to run on: Worker (libuv's pool, for short disk-bound jobs) and DedicatedWorker
// (a thread of its own, for long network- or CPU-bound ones). Workers that touch a repository
// take it through RepoBound (repo.h).
#pragma once

#include <gio/gio.h>
#include <napi.h>

#include <functional>
#include <string>

#include "error.h"

namespace osx {

class Worker : public Napi::AsyncWorker {
 public:
  Worker(Napi::Env env, const char* name, Napi::Value owner, Napi::Value cancellable);
  ~Worker() override;
  Napi::Promise Start();

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }
  // Records a GError (taking ownership); returns false so callers can `return Fail(e);`.
  bool Fail(GError* error);
  bool Failed() const { return error_.set; }

  GCancellable* cancellable_ = nullptr;
  ErrorInfo error_;

 private:
  void Execute() final;
  void OnOK() final;
  void OnError(const Napi::Error& e) final;

  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference owner_;
};

// The Worker pattern for long, network-bound jobs (pulls, summary fetches, deltas): Run()
// executes on its own std::thread, never on libuv's 4-thread pool (LIBOSTREE.md: long jobs
// there starve fs and dns). Results and progress reach JS through one ThreadSafeFunction, in
// order: everything Post()ed from Run() is delivered before the Promise settles.
class DedicatedWorker {
 public:
  DedicatedWorker(Napi::Env env, const char* name, Napi::Value owner, Napi::Value cancellable);
  virtual ~DedicatedWorker();
  // Starts the thread; the worker deletes itself once the Promise has settled.
  Napi::Promise Start();

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }
  bool Fail(GError* error);
  bool Failed() const { return error_.set; }
  // From Run(): queues `fn` for the JS thread. Callers coalesce (one pending post at most);
  // returns false when the environment is shutting down.
  bool Post(std::function<void(Napi::Env)> fn);

  GCancellable* cancellable_ = nullptr;
  ErrorInfo error_;

 private:
  using Job = std::function<void(Napi::Env)>;
  static void CallJs(Napi::Env env, Napi::Function, DedicatedWorker* self, Job* job);
  void ThreadMain();
  void Settle(Napi::Env env);

  std::string name_;
  Napi::TypedThreadSafeFunction<DedicatedWorker, Job, &DedicatedWorker::CallJs> tsfn_;
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference owner_;
};

// Pushes a fresh GMainContext as the calling thread's default for its lifetime; on exit
// drains it, pops and unrefs it. libostree's pull and summary fetch iterate the
// thread-default context, so every network call on a worker thread runs inside one.
class PushedContext {
 public:
  PushedContext();
  ~PushedContext();
  PushedContext(const PushedContext&) = delete;
  PushedContext& operator=(const PushedContext&) = delete;
  GMainContext* get() const { return ctx_; }

 private:
  GMainContext* ctx_;
};

}  // namespace osx
