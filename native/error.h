// Errors: a GError captured on a worker thread, and the OstreeError it becomes in JS.
#pragma once

#include <glib.h>
#include <napi.h>

#include <string>

namespace osx {

// A GError copied out of a worker thread so it can become a JS error on the main thread.
struct ErrorInfo {
  bool set = false;
  std::string domain;
  int code = 0;
  std::string message;

  // Frees `error`; a null error (a libostree call that failed without setting one) is
  // recorded as the binding's INVALID "operation failed without an error".
  void Take(GError* error);
  void Set(const char* domain, int code, std::string message);
};

// Builds an OstreeError (the TypeScript class when registered) from a captured GError.
Napi::Value MakeError(Napi::Env env, const ErrorInfo& info);
// Throws the OstreeError of a GError (freeing it), for the calls that run on the JS thread.
[[noreturn]] void ThrowGError(Napi::Env env, GError* error);
// Throws the binding's CLOSED OstreeError: the handle was closed.
[[noreturn]] void ThrowClosed(Napi::Env env, const std::string& message);

// Quark for errors raised by the binding itself (closed handle, bad GVariant, ...).
GQuark BindingErrorQuark();
enum BindingErrorCode { BINDING_ERROR_CLOSED = 1, BINDING_ERROR_INVALID = 2, BINDING_ERROR_LIMIT = 3 };

}  // namespace osx
