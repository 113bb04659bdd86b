// Repo: one JS object per OstreeRepo handle. Its methods are defined by topic: repo.cc (open,
// config, refs), query.cc (reads: commits and their trees), commit.cc (transactions, commits),
// checkout.cc, prune.cc, fsck.cc, remote.cc, pull.cc and sign.cc. Every blocking call is a
// worker (worker.h) that holds the repository through RepoBound below.
#pragma once

#include <napi.h>
#include <ostree.h>

#include <functional>
#include <memory>

#include "refs.h"
#include "worker.h"

namespace osx {

// How native code holds an OstreeRepo beyond one synchronous call: one counted reference.
using RepoRef = ObjectRef<OstreeRepo>;

struct TreeCache;

class Repo : public Napi::ObjectWrap<Repo> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  // Wraps a handle in a new JS Repo, taking a new reference.
  static Napi::Object NewInstance(Napi::Env env, OstreeRepo* repo);

  explicit Repo(const Napi::CallbackInfo& info);

  // The live handle; throws an OstreeError (CLOSED) once close() was called.
  OstreeRepo* Handle(Napi::Env env) const;
  // A new reference on the live handle (CLOSED as Handle), for work that outlives the call.
  RepoRef Hold(Napi::Env env) const { return RepoRef(Handle(env)); }
  // The commit trees this handle has read (query.cc), shared with its workers.
  std::shared_ptr<TreeCache> Trees();

 private:
  static Napi::Value Create(const Napi::CallbackInfo& info);
  static Napi::Value Open(const Napi::CallbackInfo& info);

  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value IsClosed(const Napi::CallbackInfo& info);
  Napi::Value GetPath(const Napi::CallbackInfo& info);
  Napi::Value GetMode(const Napi::CallbackInfo& info);
  Napi::Value GetConfig(const Napi::CallbackInfo& info);
  Napi::Value SetConfig(const Napi::CallbackInfo& info);
  Napi::Value ListRefs(const Napi::CallbackInfo& info);
  Napi::Value ResolveRev(const Napi::CallbackInfo& info);
  Napi::Value ResolveRevSync(const Napi::CallbackInfo& info);
  Napi::Value SetRefImmediate(const Napi::CallbackInfo& info);
  // query.cc
  Napi::Value LoadCommits(const Napi::CallbackInfo& info);
  Napi::Value Query(const Napi::CallbackInfo& info);
  Napi::Value QueryMany(const Napi::CallbackInfo& info);
  Napi::Value QueryBatch(const Napi::CallbackInfo& info);
  Napi::Value QuerySync(const Napi::CallbackInfo& info);
  Napi::Value CacheStats(const Napi::CallbackInfo& info);
  // commit.cc
  Napi::Value PrepareTransaction(const Napi::CallbackInfo& info);
  Napi::Value CommitTransaction(const Napi::CallbackInfo& info);
  Napi::Value AbortTransaction(const Napi::CallbackInfo& info);
  Napi::Value TransactionSetRef(const Napi::CallbackInfo& info);
  Napi::Value WriteCommit(const Napi::CallbackInfo& info);
  Napi::Value WriteDetachedMetadata(const Napi::CallbackInfo& info);
  // checkout.cc
  Napi::Value Checkout(const Napi::CallbackInfo& info);
  // prune.cc
  Napi::Value Prune(const Napi::CallbackInfo& info);
  // fsck.cc
  Napi::Value Fsck(const Napi::CallbackInfo& info);
  // remote.cc
  Napi::Value RemoteAdd(const Napi::CallbackInfo& info);
  Napi::Value RemoteDelete(const Napi::CallbackInfo& info);
  Napi::Value RemoteList(const Napi::CallbackInfo& info);
  Napi::Value RemoteGpgImport(const Napi::CallbackInfo& info);
  Napi::Value RemoteListRefs(const Napi::CallbackInfo& info);
  Napi::Value RemoteFetchSummary(const Napi::CallbackInfo& info);
  // pull.cc
  Napi::Value Pull(const Napi::CallbackInfo& info);
  // sign.cc
  Napi::Value SignCommit(const Napi::CallbackInfo& info);
  Napi::Value VerifyCommit(const Napi::CallbackInfo& info);
  Napi::Value RegenerateSummary(const Napi::CallbackInfo& info);
  Napi::Value GenerateDelta(const Napi::CallbackInfo& info);

  RepoRef repo_;  // empty once closed
  std::shared_ptr<TreeCache> trees_;
};

// The one way a worker holds a repository. Constructed on the JS thread by a Repo method:
// the thread base (Worker or DedicatedWorker) takes the cancellable and keeps the JS Repo
// (info.This()) alive until the Promise settles; then the worker takes its own reference on
// the handle (CLOSED once close() was called). close() therefore only ends new calls: a
// worker in flight keeps its reference.
template <class Thread>
class RepoBound : public Thread {
 public:
  RepoBound(const Napi::CallbackInfo& info, const char* name, Repo* self, Napi::Value cancellable)
      : Thread(info.Env(), name, info.This(), cancellable), repo_(self->Hold(info.Env())) {}

 protected:
  OstreeRepo* repo() const { return repo_.get(); }

 private:
  RepoRef repo_;
};

// On libuv's pool: disk-bound calls.
using RepoWorker = RepoBound<Worker>;
// On a thread of its own (worker.h): network and long CPU-bound calls.
using DedicatedRepoWorker = RepoBound<DedicatedWorker>;

// A RepoWorker whose whole job is one call; `result`, when given, builds the resolved value on
// the JS thread (else undefined). Callables capture their inputs by value.
class RepoCallWorker : public RepoWorker {
 public:
  using Fn = std::function<gboolean(OstreeRepo*, GCancellable*, GError**)>;
  using ResultFn = std::function<Napi::Value(Napi::Env)>;
  RepoCallWorker(const Napi::CallbackInfo& info, const char* name, Repo* self, Napi::Value cancellable, Fn fn,
                 ResultFn result = nullptr)
      : RepoWorker(info, name, self, cancellable), fn_(std::move(fn)), result_(std::move(result)) {}

 protected:
  void Run() override {
    GError* err = nullptr;
    if (!fn_(repo(), cancellable_, &err)) Fail(err);
  }
  Napi::Value Result(Napi::Env env) override { return result_ ? result_(env) : env.Undefined(); }

 private:
  Fn fn_;
  ResultFn result_;
};

// repo.cc: resolves a rev with a local ref of an all-hex name taking precedence over a
// partial checksum (libostree tries the checksum first); otherwise libostree's rules.
gboolean ResolveRefFirst(OstreeRepo* repo, const char* rev, gboolean allowNoent, char** out, GError** err);

}  // namespace osx
