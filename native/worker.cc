#include "worker.h"

#include "cancel.h"

#include <system_error>
#include <thread>

namespace osx {

// What both workers do with their inputs and outcome.

static GCancellable* RefCancellable(Napi::Value cancellable) {
  GCancellable* c = CancellableFrom(cancellable);
  return c ? static_cast<GCancellable*>(g_object_ref(c)) : nullptr;
}

static Napi::ObjectReference Keep(Napi::Value owner) {
  return owner.IsObject() ? Napi::Persistent(owner.As<Napi::Object>()) : Napi::ObjectReference();
}

// On the JS thread: rejects with the recorded error, else resolves with what `result` builds
// (a JS exception it throws rejects the Promise instead).
template <typename ResultFn>
static void SettlePromise(Napi::Env env, Napi::Promise::Deferred& deferred, const ErrorInfo& error, ResultFn result) {
  if (error.set) {
    deferred.Reject(MakeError(env, error));
    return;
  }
  try {
    deferred.Resolve(result());
  } catch (const Napi::Error& e) {
    deferred.Reject(e.Value());
  }
}

// ---- Worker ----

Worker::Worker(Napi::Env env, const char* name, Napi::Value owner, Napi::Value cancellable)
    : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), owner_(Keep(owner)) {
  cancellable_ = RefCancellable(cancellable);
}

Worker::~Worker() {
  if (cancellable_) g_object_unref(cancellable_);
}

Napi::Promise Worker::Start() {
  Queue();
  return deferred_.Promise();
}

bool Worker::Fail(GError* error) {
  error_.Take(error);
  return false;
}

void Worker::Execute() {
  // A cancellable that fired before we started: do not touch the repo at all.
  GError* err = nullptr;
  if (g_cancellable_set_error_if_cancelled(cancellable_, &err)) {
    Fail(err);
    return;
  }
  Run();
}

void Worker::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  SettlePromise(env, deferred_, error_, [&] { return Result(env); });
}

void Worker::OnError(const Napi::Error& e) { deferred_.Reject(e.Value()); }

// ---- DedicatedWorker ----

DedicatedWorker::DedicatedWorker(Napi::Env env, const char* name, Napi::Value owner, Napi::Value cancellable)
    : name_(name), deferred_(Napi::Promise::Deferred::New(env)), owner_(Keep(owner)) {
  cancellable_ = RefCancellable(cancellable);
}

DedicatedWorker::~DedicatedWorker() {
  if (cancellable_) g_object_unref(cancellable_);
}

Napi::Promise DedicatedWorker::Start() {
  Napi::Env env = deferred_.Env();
  Napi::Promise promise = deferred_.Promise();
  // Unbounded queue: callers post at most one coalesced snapshot at a time plus the settle.
  tsfn_ = decltype(tsfn_)::New(env, name_, 0, 1, this, [](Napi::Env, void*, DedicatedWorker* self) { delete self; });
  try {
    std::thread([this] { ThreadMain(); }).detach();
  } catch (const std::system_error& e) {
    error_.Set(g_quark_to_string(BindingErrorQuark()), BINDING_ERROR_INVALID, std::string("cannot start a thread: ") + e.what());
    Settle(env);
    tsfn_.Release();  // the finalizer deletes this
  }
  return promise;
}

bool DedicatedWorker::Fail(GError* error) {
  error_.Take(error);
  return false;
}

bool DedicatedWorker::Post(std::function<void(Napi::Env)> fn) {
  Job* job = new Job(std::move(fn));
  if (tsfn_.NonBlockingCall(job) != napi_ok) {
    delete job;
    return false;
  }
  return true;
}

void DedicatedWorker::CallJs(Napi::Env env, Napi::Function, DedicatedWorker*, Job* job) {
  // env is null when the environment tears down with calls still queued: just free them.
  if (static_cast<napi_env>(env) != nullptr && job) {
    Napi::HandleScope scope(env);
    try {
      (*job)(env);
    } catch (const Napi::Error&) {
      // lib/ wraps callbacks so they never throw; a stray exception must not cross threads.
    }
  }
  delete job;
}

void DedicatedWorker::ThreadMain() {
  GError* err = nullptr;
  if (g_cancellable_set_error_if_cancelled(cancellable_, &err)) {
    Fail(err);
  } else {
    Run();
  }
  // The settle is the last call; after Release() this object may be deleted at any time.
  auto tsfn = tsfn_;
  Post([this](Napi::Env env) { Settle(env); });
  tsfn.Release();
}

void DedicatedWorker::Settle(Napi::Env env) {
  SettlePromise(env, deferred_, error_, [&] { return Result(env); });
  if (!owner_.IsEmpty()) owner_.Reset();
}

// ---- PushedContext ----

PushedContext::PushedContext() : ctx_(g_main_context_new()) { g_main_context_push_thread_default(ctx_); }

PushedContext::~PushedContext() {
  while (g_main_context_iteration(ctx_, FALSE)) {
  }
  g_main_context_pop_thread_default(ctx_);
  g_main_context_unref(ctx_);
}

}  // namespace osx
