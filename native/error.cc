#include "error.h"

#include "addon-data.h"

namespace osx {

GQuark BindingErrorQuark() { return g_quark_from_static_string("ostree-sysext-binding-error"); }

void ErrorInfo::Take(GError* error) {
  if (!error) {
    Set(g_quark_to_string(BindingErrorQuark()), BINDING_ERROR_INVALID, "operation failed without an error");
    return;
  }
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

void ThrowGError(Napi::Env env, GError* error) {
  ErrorInfo info;
  info.Take(error);
  throw Napi::Error(env, MakeError(env, info));
}

void ThrowClosed(Napi::Env env, const std::string& message) {
  ErrorInfo info;
  info.Set(g_quark_to_string(BindingErrorQuark()), BINDING_ERROR_CLOSED, message);
  throw Napi::Error(env, MakeError(env, info));
}

}  // namespace osx
