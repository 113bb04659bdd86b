// sysroot.cc: the Sysroot JS class.
#pragma once

#include <napi.h>

namespace osx {

void InitSysroot(Napi::Env env, Napi::Object exports);

}  // namespace osx
