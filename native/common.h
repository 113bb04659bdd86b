// Shared pieces of the native layer: per-env data, GError capture, the one async worker
// pattern, option readers and GVariant <-> JS conversion. No policy lives here.
#pragma once

#include <napi.h>
#include <ostree.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace osx {

// Constructors and classes the addon needs from any worker; one instance per Node env.
struct AddonData {
  Napi::FunctionReference errorConstructor;  // OstreeError, registered by lib/ at load
  Napi::FunctionReference repoConstructor;
  Napi::FunctionReference sysrootConstructor;
  Napi::FunctionReference cancellableConstructor;
  Napi::FunctionReference devinoConstructor;
};

AddonData* GetData(Napi::Env env);

// A GError copied out of a worker thread so it can become a JS error on the main thread.
struct ErrorInfo {
  bool set = false;
  std::string domain;
  int code = 0;
  std::string message;

  void Take(GError* error);  // frees error
  void Set(const char* domain, int code, std::string message);
};

// Builds an OstreeError (the TypeScript class when registered) from a captured GError.
Napi::Value MakeError(Napi::Env env, const ErrorInfo& info);
// Throws an OstreeError synchronously with a domain this addon owns ("ostree-sysext").
[[noreturn]] void ThrowOstreeError(Napi::Env env, const char* code, const std::string& message);

// Quark for errors raised by the binding itself (closed handle, bad GVariant, ...).
GQuark BindingErrorQuark();
enum BindingErrorCode { BINDING_ERROR_CLOSED = 1, BINDING_ERROR_INVALID = 2, BINDING_ERROR_LIMIT = 3 };

// The single async pattern: copies inputs in its constructor, runs Run() on a worker thread
// without touching JS, converts results in Result() on the main thread and settles a Promise.
// It keeps `owner` (the JS wrapper) alive and holds its own GCancellable reference.
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

// A Worker whose whole job is one callable (run on the pool); `result`, when given, builds the
// resolved value on the JS thread. Callables capture their inputs by value.
class CallWorker : public Worker {
 public:
  using Fn = std::function<gboolean(GCancellable*, GError**)>;
  using ResultFn = std::function<Napi::Value(Napi::Env)>;
  CallWorker(Napi::Env env, const char* name, Napi::Value owner, Napi::Value cancellable, Fn fn, ResultFn result = nullptr)
      : Worker(env, name, owner, cancellable), fn_(std::move(fn)), result_(std::move(result)) {}

 protected:
  void Run() override {
    GError* err = nullptr;
    if (!fn_(cancellable_, &err)) Fail(err);
  }
  Napi::Value Result(Napi::Env env) override { return result_ ? result_(env) : env.Undefined(); }

 private:
  Fn fn_;
  ResultFn result_;
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

// Made on a worker thread around a network call: once `c` is cancelled, if the thread is
// still blocked in poll() after a short grace period, shuts down the sockets that poll waits
// on, so the request fails and libostree returns CANCELLED (see common.cc for why).
class CancelBreaker {
 public:
  explicit CancelBreaker(GCancellable* c);
  ~CancelBreaker();
  CancelBreaker(const CancelBreaker&) = delete;
  CancelBreaker& operator=(const CancelBreaker&) = delete;
  struct State;  // shared with the cancel handler and the watchdog thread

 private:
  State* state_;
  GCancellable* cancellable_;
  gulong handler_ = 0;
};

// Returns the GCancellable of a native Cancellable object, or nullptr for undefined/null.
GCancellable* CancellableFrom(Napi::Value value);
// Returns the OstreeRepoDevInoCache of a native DevInoCache object, or nullptr.
OstreeRepoDevInoCache* DevInoFrom(Napi::Value value);

// Option readers: throw TypeError on a wrong type (lib/ validates first; this is the backstop).
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what);
std::optional<std::string> ArgOptString(const Napi::CallbackInfo& info, size_t i, const char* what);
Napi::Object ArgObject(const Napi::CallbackInfo& info, size_t i, const char* what);
std::optional<std::string> OptString(Napi::Object o, const char* key);
bool OptBool(Napi::Object o, const char* key, bool fallback);
int64_t OptInt(Napi::Object o, const char* key, int64_t fallback, int64_t min, int64_t max);
std::vector<std::string> OptStringArray(Napi::Object o, const char* key);

// A string → string GHashTable (refs → checksums) as a plain JS object.
Napi::Object StringTableToJs(Napi::Env env, GHashTable* table);

// GVariant conversion. To JS: plain values (see lib/native-contract.ts for the mapping).
Napi::Value VariantToJs(Napi::Env env, GVariant* v);
// From JS, for metadata dictionaries (a{sv}); throws TypeError on unsupported values.
GVariant* JsToVardict(Napi::Env env, Napi::Value value);

// Small RAII owners for GLib things held across a worker's life.
struct VariantRef {
  GVariant* v = nullptr;
  VariantRef() = default;
  explicit VariantRef(GVariant* owned) : v(owned) {}
  VariantRef(const VariantRef&) = delete;
  VariantRef& operator=(const VariantRef&) = delete;
  VariantRef& operator=(VariantRef&& o) noexcept { std::swap(v, o.v); return *this; }
  ~VariantRef() { if (v) g_variant_unref(v); }
};

template <typename T>
struct ObjectRef {
  T* p = nullptr;
  ObjectRef() = default;
  explicit ObjectRef(T* borrowed) : p(borrowed ? static_cast<T*>(g_object_ref(borrowed)) : nullptr) {}
  ObjectRef(const ObjectRef&) = delete;
  ObjectRef& operator=(const ObjectRef&) = delete;
  ~ObjectRef() { if (p) g_object_unref(p); }
  T* get() const { return p; }
};

void InitCancellable(Napi::Env env, Napi::Object exports);
void InitDevIno(Napi::Env env, Napi::Object exports);
void InitSysroot(Napi::Env env, Napi::Object exports);
void InitOverlay(Napi::Env env, Napi::Object exports);

// overlay.cc: when `tree` holds overlay whiteouts, builds a hardlinked copy of it under the
// repository's tmp/ with `.ostree-wh.NAME` markers in their place and returns its path in
// `shadow` (empty when there is none); RemoveTree deletes it.
bool PrepareWhiteoutTree(OstreeRepo* repo, const std::string& tree, std::string* shadow, GError** err);
void RemoveTree(const std::string& path);

// overlay.cc: a commit's tree read the way the overlay engine reads layers (validated
// dirtree/dirmeta variants, loaded once and kept by the handle; no GFile), for the
// repository's own stat/list/read/readlink.
struct CommitTree;
struct CommitTreeEntry {
  std::string name, path, type, target, checksum;
  uint32_t mode = 0, uid = 0, gid = 0;
  uint64_t size = 0;
};
// `validatedCommit`: the commit's variant, already checked (objects.h), or null to load it.
std::shared_ptr<CommitTree> OpenCommitTree(OstreeRepo* repo, const std::string& commit, GVariant* validatedCommit);
// Directory entries the tree has loaded so far: what keeping it in a cache costs.
size_t CommitTreeEntries(const CommitTree& tree);
// op: stat | list | read | readlink. A missing path is G_IO_ERROR_NOT_FOUND.
bool CommitTreeOp(CommitTree& tree, const std::string& op, const std::string& path, int64_t maxBytes, CommitTreeEntry* entry,
                  std::vector<CommitTreeEntry>* children, std::vector<uint8_t>* data, GError** err);

}  // namespace osx
