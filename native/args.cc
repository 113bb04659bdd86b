#include "args.h"

#include <cmath>

namespace osx {

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

}  // namespace osx
