// Module entry: registers the classes and lets lib/ hand over the OstreeError constructor.
#include <napi.h>
#include <ostree.h>

#include "addon-data.h"
#include "cancel.h"
#include "checkout.h"
#include "overlay.h"
#include "repo.h"
#include "sysroot.h"

namespace osx {

static Napi::Value SetErrorConstructor(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "expected the OstreeError constructor");
  GetData(info.Env())->errorConstructor = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<AddonData>(new AddonData());
  InitCancellable(env, exports);
  InitDevIno(env, exports);
  Repo::Init(env, exports);
  InitSysroot(env, exports);
  InitOverlay(env, exports);
  exports.Set("setErrorConstructor", Napi::Function::New<SetErrorConstructor>(env, "setErrorConstructor"));
  Napi::Object version = Napi::Object::New(env);
  version.Set("libostree", OSTREE_VERSION_S);
  version.Set("libostreeRuntime", Napi::Boolean::New(env, ostree_check_version(OSTREE_YEAR_VERSION, OSTREE_RELEASE_VERSION)));
  exports.Set("version", version);
  return exports;
}

}  // namespace osx

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return osx::Init(env, exports); }

NODE_API_MODULE(ostree_sysext, InitModule)
