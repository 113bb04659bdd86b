// Readers of JS arguments and option objects: throw TypeError (RangeError for numbers out of
// range) on a wrong type. lib/ validates first; these are the backstop.
#pragma once

#include <napi.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace osx {

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what);
std::optional<std::string> ArgOptString(const Napi::CallbackInfo& info, size_t i, const char* what);
// An absent (undefined/null) argument reads as an empty object.
Napi::Object ArgObject(const Napi::CallbackInfo& info, size_t i, const char* what);
std::optional<std::string> OptString(Napi::Object o, const char* key);
bool OptBool(Napi::Object o, const char* key, bool fallback);
int64_t OptInt(Napi::Object o, const char* key, int64_t fallback, int64_t min, int64_t max);
std::vector<std::string> OptStringArray(Napi::Object o, const char* key);

}  // namespace osx
