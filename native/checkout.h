// checkout.cc: the DevInoCache JS class, which a checkout fills and a commit reads.
#pragma once

#include <napi.h>
#include <ostree.h>

namespace osx {

void InitDevIno(Napi::Env env, Napi::Object exports);
// Returns the OstreeRepoDevInoCache of a native DevInoCache object (borrowed), or nullptr
// for undefined/null; throws TypeError for anything else.
OstreeRepoDevInoCache* DevInoFrom(Napi::Value value);

}  // namespace osx
