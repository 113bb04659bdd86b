#include "common.h"

#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <system_error>
#include <thread>

namespace osx {

AddonData* GetData(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

GQuark BindingErrorQuark() { return g_quark_from_static_string("ostree-sysext-binding-error"); }

void ErrorInfo::Take(GError* error) {
  set = true;
  domain = g_quark_to_string(error->domain);
  code = error->code;
  message = error->message ? error->message : "";
  g_error_free(error);
}

void ErrorInfo::Set(const char* d, int c, std::string m) {
  set = true;
  domain = d;
  code = c;
  message = std::move(m);
}

Napi::Value MakeError(Napi::Env env, const ErrorInfo& info) {
  AddonData* data = GetData(env);
  Napi::Object details = Napi::Object::New(env);
  details.Set("domain", info.domain);
  details.Set("gerrorCode", info.code);
  if (data && !data->errorConstructor.IsEmpty()) {
    return data->errorConstructor.New({Napi::String::New(env, info.message), details});
  }
  // Used without lib/ (tests of the raw module): a plain Error carrying the same fields.
  Napi::Error e = Napi::Error::New(env, info.message);
  e.Value().Set("domain", info.domain);
  e.Value().Set("gerrorCode", info.code);
  return e.Value();
}

void ThrowOstreeError(Napi::Env env, const char* code, const std::string& message) {
  ErrorInfo info;
  info.Set(g_quark_to_string(BindingErrorQuark()),
           std::strcmp(code, "CLOSED") == 0 ? BINDING_ERROR_CLOSED : BINDING_ERROR_INVALID, message);
  throw Napi::Error(env, MakeError(env, info));
}

// ---- Worker ----

Worker::Worker(Napi::Env env, const char* name, Napi::Value owner, Napi::Value cancellable)
    : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {
  if (owner.IsObject()) owner_ = Napi::Persistent(owner.As<Napi::Object>());
  GCancellable* c = CancellableFrom(cancellable);
  cancellable_ = c ? static_cast<GCancellable*>(g_object_ref(c)) : nullptr;
}

Worker::~Worker() {
  if (cancellable_) g_object_unref(cancellable_);
}

Napi::Promise Worker::Start() {
  Queue();
  return deferred_.Promise();
}

bool Worker::Fail(GError* error) {
  if (error) {
    error_.Take(error);
  } else {
    error_.Set(g_quark_to_string(BindingErrorQuark()), BINDING_ERROR_INVALID, "operation failed without an error");
  }
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
  if (error_.set) {
    deferred_.Reject(MakeError(env, error_));
    return;
  }
  try {
    deferred_.Resolve(Result(env));
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  }
}

void Worker::OnError(const Napi::Error& e) { deferred_.Reject(e.Value()); }

// ---- DedicatedWorker ----

DedicatedWorker::DedicatedWorker(Napi::Env env, const char* name, Napi::Value owner, Napi::Value cancellable)
    : name_(name), deferred_(Napi::Promise::Deferred::New(env)) {
  if (owner.IsObject()) owner_ = Napi::Persistent(owner.As<Napi::Object>());
  GCancellable* c = CancellableFrom(cancellable);
  cancellable_ = c ? static_cast<GCancellable*>(g_object_ref(c)) : nullptr;
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
  if (error) {
    error_.Take(error);
  } else {
    error_.Set(g_quark_to_string(BindingErrorQuark()), BINDING_ERROR_INVALID, "operation failed without an error");
  }
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
  if (error_.set) {
    deferred_.Reject(MakeError(env, error_));
  } else {
    try {
      deferred_.Resolve(Result(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
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

// ---- CancelBreaker ----
//
// Why: libostree 2022.7's curl fetcher never looks at the GCancellable while a request waits,
// has no timeout option, and fetches the summary, config and delta superblocks inside main
// contexts it creates itself. A server that accepts and never answers therefore holds a
// pull (and its thread, lock and socket) forever, cancelled or not. After cancellation this
// watchdog reads which descriptors the worker thread is blocked polling
// (/proc/self/task/TID/syscall gives poll's arguments; the pollfd array is read with
// process_vm_readv, which cannot fault) and shuts down the sockets among them. Only that
// thread's own poll set is touched, and only once the job was cancelled; curl then sees EOF,
// the request fails, and the GTask reports CANCELLED.

struct CancelBreaker::State {
  pid_t tid;
  std::mutex mu;
  std::condition_variable cv;
  bool cancelled = false;
  bool done = false;
  std::thread watchdog;
};

static bool ReadSyscall(pid_t tid, std::string* line) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", static_cast<int>(tid));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  line->assign(buf, static_cast<size_t>(n));
  return true;
}

static void BreakPoll(pid_t tid) {
  std::string before;
  if (!ReadSyscall(tid, &before)) return;
  unsigned long nr = 0, fdsAddr = 0, nfds = 0;
  if (sscanf(before.c_str(), "%lu %lx %lx", &nr, &fdsAddr, &nfds) != 3) return;  // "running" or "-1 …"
  bool isPoll = false;
#ifdef SYS_poll
  isPoll = isPoll || nr == SYS_poll;
#endif
#ifdef SYS_ppoll
  isPoll = isPoll || nr == SYS_ppoll;
#endif
  if (!isPoll || nfds == 0 || nfds > 1024) return;
  std::vector<struct pollfd> fds(nfds);
  struct iovec local = {fds.data(), nfds * sizeof(struct pollfd)};
  struct iovec remote = {reinterpret_cast<void*>(fdsAddr), nfds * sizeof(struct pollfd)};
  if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != static_cast<ssize_t>(local.iov_len)) return;
  // Still the same blocked call: the array we read is the one that poll is waiting on.
  std::string after;
  if (!ReadSyscall(tid, &after) || after != before) return;
  for (const struct pollfd& p : fds) {
    struct stat st;
    if (p.fd >= 0 && fstat(p.fd, &st) == 0 && S_ISSOCK(st.st_mode)) shutdown(p.fd, SHUT_RDWR);
  }
}

static void OnCancelled(GCancellable*, gpointer data) {
  auto* st = static_cast<CancelBreaker::State*>(data);
  std::lock_guard<std::mutex> lock(st->mu);
  if (st->cancelled || st->done) return;
  st->cancelled = true;
  st->watchdog = std::thread([st] {
    std::unique_lock<std::mutex> l(st->mu);
    // A grace period first: work that checks the cancellable stops by itself within ~0.1 s.
    while (!st->cv.wait_for(l, std::chrono::milliseconds(200), [st] { return st->done; })) {
      l.unlock();
      BreakPoll(st->tid);
      l.lock();
    }
  });
}

CancelBreaker::CancelBreaker(GCancellable* c) : state_(new State()), cancellable_(c ? static_cast<GCancellable*>(g_object_ref(c)) : nullptr) {
  state_->tid = static_cast<pid_t>(syscall(SYS_gettid));
  if (cancellable_) handler_ = g_cancellable_connect(cancellable_, G_CALLBACK(OnCancelled), state_, nullptr);
}

CancelBreaker::~CancelBreaker() {
  if (cancellable_) {
    g_cancellable_disconnect(cancellable_, handler_);  // waits for a running handler
    g_object_unref(cancellable_);
  }
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->done = true;
  }
  state_->cv.notify_all();
  if (state_->watchdog.joinable()) state_->watchdog.join();
  delete state_;
}

// ---- Cancellable: a GCancellable that lib/ wires to an AbortSignal ----

class Cancellable : public Napi::ObjectWrap<Cancellable> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = DefineClass(env, "Cancellable",
                                      {InstanceMethod<&Cancellable::Cancel>("cancel"),
                                       InstanceAccessor<&Cancellable::IsCancelled>("cancelled")});
    GetData(env)->cancellableConstructor = Napi::Persistent(ctor);
    exports.Set("Cancellable", ctor);
  }
  explicit Cancellable(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Cancellable>(info), c_(g_cancellable_new()) {}
  ~Cancellable() override { g_object_unref(c_); }
  GCancellable* get() const { return c_; }

 private:
  Napi::Value Cancel(const Napi::CallbackInfo& info) {
    g_cancellable_cancel(c_);  // thread-safe; running workers see it at their next check
    return info.Env().Undefined();
  }
  Napi::Value IsCancelled(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), g_cancellable_is_cancelled(c_));
  }
  GCancellable* c_;
};

GCancellable* CancellableFrom(Napi::Value value) {
  if (value.IsUndefined() || value.IsNull()) return nullptr;
  Napi::Env env = value.Env();
  AddonData* data = GetData(env);
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(data->cancellableConstructor.Value())) {
    throw Napi::TypeError::New(env, "cancellable must be a native Cancellable");
  }
  return Cancellable::Unwrap(value.As<Napi::Object>())->get();
}

void InitCancellable(Napi::Env env, Napi::Object exports) { Cancellable::Init(env, exports); }

// ---- DevInoCache: maps (device, inode) to object checksums between checkout and commit ----

class DevInoCache : public Napi::ObjectWrap<DevInoCache> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = DefineClass(env, "DevInoCache", {});
    GetData(env)->devinoConstructor = Napi::Persistent(ctor);
    exports.Set("DevInoCache", ctor);
  }
  explicit DevInoCache(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<DevInoCache>(info), cache_(ostree_repo_devino_cache_new()) {}
  ~DevInoCache() override { ostree_repo_devino_cache_unref(cache_); }
  OstreeRepoDevInoCache* get() const { return cache_; }

 private:
  OstreeRepoDevInoCache* cache_;
};

OstreeRepoDevInoCache* DevInoFrom(Napi::Value value) {
  if (value.IsUndefined() || value.IsNull()) return nullptr;
  Napi::Env env = value.Env();
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(GetData(env)->devinoConstructor.Value())) {
    throw Napi::TypeError::New(env, "devinoCache must be a native DevInoCache");
  }
  return DevInoCache::Unwrap(value.As<Napi::Object>())->get();
}

void InitDevIno(Napi::Env env, Napi::Object exports) { DevInoCache::Init(env, exports); }

// ---- argument readers ----

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  }
  std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must not contain NUL bytes");
  }
  return s;
}

std::optional<std::string> ArgOptString(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return std::nullopt;
  return ArgString(info, i, what);
}

Napi::Object ArgObject(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return Napi::Object::New(info.Env());
  if (!info[i].IsObject()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be an object");
  return info[i].As<Napi::Object>();
}

std::optional<std::string> OptString(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return std::nullopt;
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a string");
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(o.Env(), std::string(key) + " must not contain NUL bytes");
  }
  return s;
}

bool OptBool(Napi::Object o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

int64_t OptInt(Napi::Object o, const char* key, int64_t fallback, int64_t min, int64_t max) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || d < static_cast<double>(min) || d > static_cast<double>(max)) {
    throw Napi::RangeError::New(o.Env(), std::string(key) + " is out of range");
  }
  return static_cast<int64_t>(d);
}

std::vector<std::string> OptStringArray(Napi::Object o, const char* key) {
  std::vector<std::string> out;
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return out;
  if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be an array of strings");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be an array of strings");
    std::string s = e.As<Napi::String>().Utf8Value();
    if (s.find('\0') != std::string::npos) {
      throw Napi::TypeError::New(o.Env(), std::string(key) + " must not contain NUL bytes");
    }
    out.push_back(std::move(s));
  }
  return out;
}

Napi::Object StringTableToJs(Napi::Env env, GHashTable* table) {
  Napi::Object out = Napi::Object::New(env);
  if (!table) return out;
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init(&it, table);
  while (g_hash_table_iter_next(&it, &k, &v)) out.Set(static_cast<const char*>(k), static_cast<const char*>(v));
  return out;
}

// ---- GVariant -> JS ----

static void DefineOwn(Napi::Env env, Napi::Object obj, Napi::Value key, Napi::Value value) {
  // defineProperty semantics: a key like "__proto__" becomes data, never a prototype change.
  napi_property_descriptor d = {nullptr, key, nullptr, nullptr, nullptr, value, napi_default_jsproperty, nullptr};
  napi_status s = napi_define_properties(env, obj, 1, &d);
  NAPI_THROW_IF_FAILED_VOID(env, s);
}

static Napi::Value Int64ToJs(Napi::Env env, int64_t x) {
  if (x >= -9007199254740991LL && x <= 9007199254740991LL) return Napi::Number::New(env, static_cast<double>(x));
  return Napi::BigInt::New(env, x);
}

static Napi::Value VariantToJsDepth(Napi::Env env, GVariant* v, int depth) {
  if (depth > 64) throw Napi::RangeError::New(env, "GVariant nested too deeply");
  const GVariantType* t = g_variant_get_type(v);
  switch (g_variant_classify(v)) {
    case G_VARIANT_CLASS_BOOLEAN: return Napi::Boolean::New(env, g_variant_get_boolean(v));
    case G_VARIANT_CLASS_BYTE: return Napi::Number::New(env, g_variant_get_byte(v));
    case G_VARIANT_CLASS_INT16: return Napi::Number::New(env, g_variant_get_int16(v));
    case G_VARIANT_CLASS_UINT16: return Napi::Number::New(env, g_variant_get_uint16(v));
    case G_VARIANT_CLASS_INT32: return Napi::Number::New(env, g_variant_get_int32(v));
    case G_VARIANT_CLASS_UINT32: return Napi::Number::New(env, g_variant_get_uint32(v));
    case G_VARIANT_CLASS_HANDLE: return Napi::Number::New(env, g_variant_get_handle(v));
    case G_VARIANT_CLASS_INT64: return Int64ToJs(env, g_variant_get_int64(v));
    case G_VARIANT_CLASS_UINT64: {
      guint64 x = g_variant_get_uint64(v);
      if (x <= 9007199254740991ULL) return Napi::Number::New(env, static_cast<double>(x));
      return Napi::BigInt::New(env, static_cast<uint64_t>(x));
    }
    case G_VARIANT_CLASS_DOUBLE: return Napi::Number::New(env, g_variant_get_double(v));
    case G_VARIANT_CLASS_STRING:
    case G_VARIANT_CLASS_OBJECT_PATH:
    case G_VARIANT_CLASS_SIGNATURE: {
      gsize len = 0;
      const char* s = g_variant_get_string(v, &len);
      return Napi::String::New(env, s, len);
    }
    case G_VARIANT_CLASS_VARIANT: {
      VariantRef inner(g_variant_get_variant(v));
      return VariantToJsDepth(env, inner.v, depth + 1);
    }
    case G_VARIANT_CLASS_MAYBE: {
      VariantRef inner(g_variant_get_maybe(v));
      if (!inner.v) return env.Null();
      return VariantToJsDepth(env, inner.v, depth + 1);
    }
    case G_VARIANT_CLASS_ARRAY: {
      if (g_variant_type_equal(t, G_VARIANT_TYPE_BYTESTRING)) {
        gsize n = 0;
        const void* p = g_variant_get_fixed_array(v, &n, 1);
        return Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(p), n);
      }
      const GVariantType* elem = g_variant_type_element(t);
      gsize n = g_variant_n_children(v);
      if (g_variant_type_is_dict_entry(elem)) {
        const GVariantType* kt = g_variant_type_key(elem);
        if (g_variant_type_equal(kt, G_VARIANT_TYPE_STRING) || g_variant_type_equal(kt, G_VARIANT_TYPE_OBJECT_PATH)) {
          Napi::Object obj = Napi::Object::New(env);
          for (gsize i = 0; i < n; i++) {
            VariantRef entry(g_variant_get_child_value(v, i));
            VariantRef k(g_variant_get_child_value(entry.v, 0));
            VariantRef val(g_variant_get_child_value(entry.v, 1));
            DefineOwn(env, obj, VariantToJsDepth(env, k.v, depth + 1), VariantToJsDepth(env, val.v, depth + 1));
          }
          return obj;
        }
      }
      Napi::Array arr = Napi::Array::New(env, n);
      for (gsize i = 0; i < n; i++) {
        VariantRef child(g_variant_get_child_value(v, i));
        arr.Set(static_cast<uint32_t>(i), VariantToJsDepth(env, child.v, depth + 1));
      }
      return arr;
    }
    case G_VARIANT_CLASS_TUPLE:
    case G_VARIANT_CLASS_DICT_ENTRY: {
      gsize n = g_variant_n_children(v);
      Napi::Array arr = Napi::Array::New(env, n);
      for (gsize i = 0; i < n; i++) {
        VariantRef child(g_variant_get_child_value(v, i));
        arr.Set(static_cast<uint32_t>(i), VariantToJsDepth(env, child.v, depth + 1));
      }
      return arr;
    }
  }
  return env.Undefined();
}

Napi::Value VariantToJs(Napi::Env env, GVariant* v) {
  if (!v) return env.Null();
  return VariantToJsDepth(env, v, 0);
}

// ---- JS -> GVariant ----

static GVariant* JsToVariantAuto(Napi::Env env, Napi::Value value, int depth);
// `depth` counts every level of one conversion (dictionaries, arrays, variants), so a deep or
// cyclic value is refused at kMaxMetadataDepth wherever it nests.
static constexpr int kMaxMetadataDepth = 128;  // lib/args.ts refuses deeper than 32 levels first
static GVariant* JsToVardictFloating(Napi::Env env, Napi::Value value, int depth);

static std::string Utf8NoNul(Napi::Env env, Napi::Value v) {
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos) throw Napi::TypeError::New(env, "metadata strings must not contain NUL bytes");
  return s;
}

static int64_t NumberToInt64(Napi::Env env, Napi::Value v) {
  if (v.IsBigInt()) {
    bool lossless = false;
    int64_t x = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) throw Napi::RangeError::New(env, "metadata integer out of range");
    return x;
  }
  if (!v.IsNumber()) throw Napi::TypeError::New(env, "metadata value must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || std::fabs(d) > 9007199254740991.0) {
    throw Napi::RangeError::New(env, "metadata integer must be a safe integer");
  }
  return static_cast<int64_t>(d);
}

// Typed values come from lib/'s `variant(type, value)` as { $variant: 'u', value }.
static GVariant* JsToVariantTyped(Napi::Env env, const std::string& type, Napi::Value value, int depth) {
  auto ranged = [&](int64_t lo, int64_t hi) {
    int64_t x = NumberToInt64(env, value);
    if (x < lo || x > hi) throw Napi::RangeError::New(env, "metadata value out of range for GVariant type " + type);
    return x;
  };
  if (type == "s" || type == "o" || type == "g") {
    if (!value.IsString()) throw Napi::TypeError::New(env, "GVariant type " + type + " needs a string");
    std::string s = Utf8NoNul(env, value);
    if (type == "o" && !g_variant_is_object_path(s.c_str())) throw Napi::TypeError::New(env, "not a D-Bus object path");
    if (type == "g" && !g_variant_is_signature(s.c_str())) throw Napi::TypeError::New(env, "not a GVariant signature");
    if (type == "s") return g_variant_new_string(s.c_str());
    if (type == "o") return g_variant_new_object_path(s.c_str());
    return g_variant_new_signature(s.c_str());
  }
  if (type == "b") {
    if (!value.IsBoolean()) throw Napi::TypeError::New(env, "GVariant type b needs a boolean");
    return g_variant_new_boolean(value.As<Napi::Boolean>().Value());
  }
  if (type == "y") return g_variant_new_byte(static_cast<guint8>(ranged(0, 255)));
  if (type == "n") return g_variant_new_int16(static_cast<gint16>(ranged(G_MININT16, G_MAXINT16)));
  if (type == "q") return g_variant_new_uint16(static_cast<guint16>(ranged(0, G_MAXUINT16)));
  if (type == "i") return g_variant_new_int32(static_cast<gint32>(ranged(G_MININT32, G_MAXINT32)));
  if (type == "u") return g_variant_new_uint32(static_cast<guint32>(ranged(0, G_MAXUINT32)));
  if (type == "x") return g_variant_new_int64(NumberToInt64(env, value));
  if (type == "t") {
    if (value.IsBigInt()) {
      bool lossless = false;
      uint64_t x = value.As<Napi::BigInt>().Uint64Value(&lossless);
      if (!lossless) throw Napi::RangeError::New(env, "metadata integer out of range for t");
      return g_variant_new_uint64(x);
    }
    return g_variant_new_uint64(static_cast<guint64>(ranged(0, 9007199254740991LL)));
  }
  if (type == "d") {
    if (!value.IsNumber()) throw Napi::TypeError::New(env, "GVariant type d needs a number");
    return g_variant_new_double(value.As<Napi::Number>().DoubleValue());
  }
  if (type == "v") return g_variant_new_variant(JsToVariantAuto(env, value, depth + 1));
  throw Napi::TypeError::New(env, "unsupported GVariant type '" + type + "' (use s,o,g,b,y,n,q,i,u,x,t,d,v)");
}

static GVariant* JsToVariantAuto(Napi::Env env, Napi::Value value, int depth) {
  if (depth > kMaxMetadataDepth) throw Napi::RangeError::New(env, "metadata nested too deeply");
  if (value.IsString()) return g_variant_new_string(Utf8NoNul(env, value).c_str());
  if (value.IsBoolean()) return g_variant_new_boolean(value.As<Napi::Boolean>().Value());
  if (value.IsBigInt()) return g_variant_new_int64(NumberToInt64(env, value));
  if (value.IsNumber()) {
    double d = value.As<Napi::Number>().DoubleValue();
    if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) <= 9007199254740991.0) {
      return g_variant_new_int64(static_cast<int64_t>(d));
    }
    return g_variant_new_double(d);
  }
  if (value.IsTypedArray() || value.IsBuffer()) {
    Napi::TypedArray ta = value.As<Napi::TypedArray>();
    if (ta.TypedArrayType() != napi_uint8_array) throw Napi::TypeError::New(env, "only Uint8Array/Buffer metadata is supported");
    Napi::Uint8Array u8 = value.As<Napi::Uint8Array>();
    return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, u8.Data(), u8.ElementLength(), 1);
  }
  if (value.IsArray()) {
    Napi::Array a = value.As<Napi::Array>();
    bool allStrings = true;
    for (uint32_t i = 0; i < a.Length(); i++) allStrings = allStrings && a.Get(i).IsString();
    GVariantBuilder b;
    g_variant_builder_init(&b, allStrings ? G_VARIANT_TYPE_STRING_ARRAY : G_VARIANT_TYPE("av"));
    try {
      for (uint32_t i = 0; i < a.Length(); i++) {
        if (allStrings) {
          g_variant_builder_add(&b, "s", Utf8NoNul(env, a.Get(i)).c_str());
        } else {
          g_variant_builder_add(&b, "v", JsToVariantAuto(env, a.Get(i), depth + 1));
        }
      }
    } catch (...) {
      g_variant_builder_clear(&b);
      throw;
    }
    return g_variant_builder_end(&b);
  }
  if (value.IsObject()) {
    Napi::Object o = value.As<Napi::Object>();
    if (o.HasOwnProperty("$variant")) {
      Napi::Value t = o.Get("$variant");
      if (!t.IsString()) throw Napi::TypeError::New(env, "$variant must be a GVariant type string");
      return JsToVariantTyped(env, t.As<Napi::String>().Utf8Value(), o.Get("value"), depth);
    }
    return JsToVardictFloating(env, o, depth + 1);
  }
  throw Napi::TypeError::New(env, "metadata values must be strings, numbers, bigints, booleans, Buffers, arrays or objects");
}

GVariant* JsToVardict(Napi::Env env, Napi::Value value) { return g_variant_ref_sink(JsToVardictFloating(env, value, 0)); }

static GVariant* JsToVardictFloating(Napi::Env env, Napi::Value value, int depth) {
  if (depth > kMaxMetadataDepth) throw Napi::RangeError::New(env, "metadata nested too deeply");
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
  if (value.IsUndefined() || value.IsNull()) return g_variant_builder_end(&b);
  if (!value.IsObject() || value.IsArray()) {
    g_variant_builder_clear(&b);
    throw Napi::TypeError::New(env, "metadata must be a plain object");
  }
  Napi::Object o = value.As<Napi::Object>();
  Napi::Array keys = o.GetPropertyNames();
  try {
    for (uint32_t i = 0; i < keys.Length(); i++) {
      Napi::Value k = keys.Get(i);
      Napi::Value v = o.Get(k);
      if (v.IsUndefined()) continue;
      std::string key = Utf8NoNul(env, k.ToString());
      GVariant* gv = JsToVariantAuto(env, v, depth + 1);
      g_variant_builder_add(&b, "{sv}", key.c_str(), gv);
    }
  } catch (...) {
    g_variant_builder_clear(&b);
    throw;
  }
  return g_variant_builder_end(&b);
}

}  // namespace osx
