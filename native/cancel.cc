#include "cancel.h"

#include "addon-data.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace osx {

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

}  // namespace osx
