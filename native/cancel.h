// Cancellation: the Cancellable JS class (a GCancellable that lib/ wires to an AbortSignal)
// and CancelBreaker, which makes cancellation reach a network call blocked in poll().
#pragma once

#include <gio/gio.h>
#include <napi.h>

namespace osx {

void InitCancellable(Napi::Env env, Napi::Object exports);

// Returns the GCancellable of a native Cancellable object (borrowed), or nullptr for
// undefined/null; throws TypeError for anything else.
GCancellable* CancellableFrom(Napi::Value value);

// Made on a worker thread around a network call: once `c` is cancelled, if the thread is
// still blocked in poll() after a short grace period, shuts down the sockets that poll waits
// on, so the request fails and libostree returns CANCELLED (see cancel.cc for why).
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

}  // namespace osx
