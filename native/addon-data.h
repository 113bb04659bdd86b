// What the addon keeps per Node environment: the constructors its classes need from anywhere.
#pragma once

#include <napi.h>

namespace osx {

struct AddonData {
  Napi::FunctionReference errorConstructor;  // OstreeError, registered by lib/ at load
  Napi::FunctionReference repoConstructor;
  Napi::FunctionReference sysrootConstructor;
  Napi::FunctionReference cancellableConstructor;
  Napi::FunctionReference devinoConstructor;
};

inline AddonData* GetData(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

}  // namespace osx
