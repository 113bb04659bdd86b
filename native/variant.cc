#include "variant.h"

#include "refs.h"

#include <cmath>
#include <string>

namespace osx {

Napi::Object StringTableToJs(Napi::Env env, GHashTable* table) {
  Napi::Object out = Napi::Object::New(env);
  if (!table) return out;
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init(&it, table);
  while (g_hash_table_iter_next(&it, &k, &v)) out.Set(static_cast<const char*>(k), static_cast<const char*>(v));
  return out;
}

// ---- GVariant -> JS ----

static void DefineOwn(Napi::Env env, Napi::Object obj, Napi::Value key, Napi::Value value) {
  // defineProperty semantics: a key like "__proto__" becomes data, never a prototype change.
  napi_property_descriptor d = {nullptr, key, nullptr, nullptr, nullptr, value, napi_default_jsproperty, nullptr};
  napi_status s = napi_define_properties(env, obj, 1, &d);
  NAPI_THROW_IF_FAILED_VOID(env, s);
}

static Napi::Value Int64ToJs(Napi::Env env, int64_t x) {
  if (x >= -9007199254740991LL && x <= 9007199254740991LL) return Napi::Number::New(env, static_cast<double>(x));
  return Napi::BigInt::New(env, x);
}

static Napi::Value VariantToJsDepth(Napi::Env env, GVariant* v, int depth) {
  if (depth > 64) throw Napi::RangeError::New(env, "GVariant nested too deeply");
  const GVariantType* t = g_variant_get_type(v);
  switch (g_variant_classify(v)) {
    case G_VARIANT_CLASS_BOOLEAN: return Napi::Boolean::New(env, g_variant_get_boolean(v));
    case G_VARIANT_CLASS_BYTE: return Napi::Number::New(env, g_variant_get_byte(v));
    case G_VARIANT_CLASS_INT16: return Napi::Number::New(env, g_variant_get_int16(v));
    case G_VARIANT_CLASS_UINT16: return Napi::Number::New(env, g_variant_get_uint16(v));
    case G_VARIANT_CLASS_INT32: return Napi::Number::New(env, g_variant_get_int32(v));
    case G_VARIANT_CLASS_UINT32: return Napi::Number::New(env, g_variant_get_uint32(v));
    case G_VARIANT_CLASS_HANDLE: return Napi::Number::New(env, g_variant_get_handle(v));
    case G_VARIANT_CLASS_INT64: return Int64ToJs(env, g_variant_get_int64(v));
    case G_VARIANT_CLASS_UINT64: {
      guint64 x = g_variant_get_uint64(v);
      if (x <= 9007199254740991ULL) return Napi::Number::New(env, static_cast<double>(x));
      return Napi::BigInt::New(env, static_cast<uint64_t>(x));
    }
    case G_VARIANT_CLASS_DOUBLE: return Napi::Number::New(env, g_variant_get_double(v));
    case G_VARIANT_CLASS_STRING:
    case G_VARIANT_CLASS_OBJECT_PATH:
    case G_VARIANT_CLASS_SIGNATURE: {
      gsize len = 0;
      const char* s = g_variant_get_string(v, &len);
      return Napi::String::New(env, s, len);
    }
    case G_VARIANT_CLASS_VARIANT: {
      VariantRef inner(g_variant_get_variant(v));
      return VariantToJsDepth(env, inner.v, depth + 1);
    }
    case G_VARIANT_CLASS_MAYBE: {
      VariantRef inner(g_variant_get_maybe(v));
      if (!inner.v) return env.Null();
      return VariantToJsDepth(env, inner.v, depth + 1);
    }
    case G_VARIANT_CLASS_ARRAY: {
      if (g_variant_type_equal(t, G_VARIANT_TYPE_BYTESTRING)) {
        gsize n = 0;
        const void* p = g_variant_get_fixed_array(v, &n, 1);
        return Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(p), n);
      }
      const GVariantType* elem = g_variant_type_element(t);
      gsize n = g_variant_n_children(v);
      if (g_variant_type_is_dict_entry(elem)) {
        const GVariantType* kt = g_variant_type_key(elem);
        if (g_variant_type_equal(kt, G_VARIANT_TYPE_STRING) || g_variant_type_equal(kt, G_VARIANT_TYPE_OBJECT_PATH)) {
          Napi::Object obj = Napi::Object::New(env);
          for (gsize i = 0; i < n; i++) {
            VariantRef entry(g_variant_get_child_value(v, i));
            VariantRef k(g_variant_get_child_value(entry.v, 0));
            VariantRef val(g_variant_get_child_value(entry.v, 1));
            DefineOwn(env, obj, VariantToJsDepth(env, k.v, depth + 1), VariantToJsDepth(env, val.v, depth + 1));
          }
          return obj;
        }
      }
      Napi::Array arr = Napi::Array::New(env, n);
      for (gsize i = 0; i < n; i++) {
        VariantRef child(g_variant_get_child_value(v, i));
        arr.Set(static_cast<uint32_t>(i), VariantToJsDepth(env, child.v, depth + 1));
      }
      return arr;
    }
    case G_VARIANT_CLASS_TUPLE:
    case G_VARIANT_CLASS_DICT_ENTRY: {
      gsize n = g_variant_n_children(v);
      Napi::Array arr = Napi::Array::New(env, n);
      for (gsize i = 0; i < n; i++) {
        VariantRef child(g_variant_get_child_value(v, i));
        arr.Set(static_cast<uint32_t>(i), VariantToJsDepth(env, child.v, depth + 1));
      }
      return arr;
    }
  }
  return env.Undefined();
}

Napi::Value VariantToJs(Napi::Env env, GVariant* v) {
  if (!v) return env.Null();
  return VariantToJsDepth(env, v, 0);
}

// ---- JS -> GVariant ----

static GVariant* JsToVariantAuto(Napi::Env env, Napi::Value value, int depth);
// `depth` counts every level of one conversion (dictionaries, arrays, variants), so a deep or
// cyclic value is refused at kMaxMetadataDepth wherever it nests.
static constexpr int kMaxMetadataDepth = 128;  // lib/args.ts refuses deeper than 32 levels first
static GVariant* JsToVardictFloating(Napi::Env env, Napi::Value value, int depth);

static std::string Utf8NoNul(Napi::Env env, Napi::Value v) {
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos) throw Napi::TypeError::New(env, "metadata strings must not contain NUL bytes");
  return s;
}

static int64_t NumberToInt64(Napi::Env env, Napi::Value v) {
  if (v.IsBigInt()) {
    bool lossless = false;
    int64_t x = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) throw Napi::RangeError::New(env, "metadata integer out of range");
    return x;
  }
  if (!v.IsNumber()) throw Napi::TypeError::New(env, "metadata value must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || std::fabs(d) > 9007199254740991.0) {
    throw Napi::RangeError::New(env, "metadata integer must be a safe integer");
  }
  return static_cast<int64_t>(d);
}

// Typed values come from lib/'s `variant(type, value)` as { $variant: 'u', value }.
static GVariant* JsToVariantTyped(Napi::Env env, const std::string& type, Napi::Value value, int depth) {
  auto ranged = [&](int64_t lo, int64_t hi) {
    int64_t x = NumberToInt64(env, value);
    if (x < lo || x > hi) throw Napi::RangeError::New(env, "metadata value out of range for GVariant type " + type);
    return x;
  };
  if (type == "s" || type == "o" || type == "g") {
    if (!value.IsString()) throw Napi::TypeError::New(env, "GVariant type " + type + " needs a string");
    std::string s = Utf8NoNul(env, value);
    if (type == "o" && !g_variant_is_object_path(s.c_str())) throw Napi::TypeError::New(env, "not a D-Bus object path");
    if (type == "g" && !g_variant_is_signature(s.c_str())) throw Napi::TypeError::New(env, "not a GVariant signature");
    if (type == "s") return g_variant_new_string(s.c_str());
    if (type == "o") return g_variant_new_object_path(s.c_str());
    return g_variant_new_signature(s.c_str());
  }
  if (type == "b") {
    if (!value.IsBoolean()) throw Napi::TypeError::New(env, "GVariant type b needs a boolean");
    return g_variant_new_boolean(value.As<Napi::Boolean>().Value());
  }
  if (type == "y") return g_variant_new_byte(static_cast<guint8>(ranged(0, 255)));
  if (type == "n") return g_variant_new_int16(static_cast<gint16>(ranged(G_MININT16, G_MAXINT16)));
  if (type == "q") return g_variant_new_uint16(static_cast<guint16>(ranged(0, G_MAXUINT16)));
  if (type == "i") return g_variant_new_int32(static_cast<gint32>(ranged(G_MININT32, G_MAXINT32)));
  if (type == "u") return g_variant_new_uint32(static_cast<guint32>(ranged(0, G_MAXUINT32)));
  if (type == "x") return g_variant_new_int64(NumberToInt64(env, value));
  if (type == "t") {
    if (value.IsBigInt()) {
      bool lossless = false;
      uint64_t x = value.As<Napi::BigInt>().Uint64Value(&lossless);
      if (!lossless) throw Napi::RangeError::New(env, "metadata integer out of range for t");
      return g_variant_new_uint64(x);
    }
    return g_variant_new_uint64(static_cast<guint64>(ranged(0, 9007199254740991LL)));
  }
  if (type == "d") {
    if (!value.IsNumber()) throw Napi::TypeError::New(env, "GVariant type d needs a number");
    return g_variant_new_double(value.As<Napi::Number>().DoubleValue());
  }
  if (type == "v") return g_variant_new_variant(JsToVariantAuto(env, value, depth + 1));
  throw Napi::TypeError::New(env, "unsupported GVariant type '" + type + "' (use s,o,g,b,y,n,q,i,u,x,t,d,v)");
}

static GVariant* JsToVariantAuto(Napi::Env env, Napi::Value value, int depth) {
  if (depth > kMaxMetadataDepth) throw Napi::RangeError::New(env, "metadata nested too deeply");
  if (value.IsString()) return g_variant_new_string(Utf8NoNul(env, value).c_str());
  if (value.IsBoolean()) return g_variant_new_boolean(value.As<Napi::Boolean>().Value());
  if (value.IsBigInt()) return g_variant_new_int64(NumberToInt64(env, value));
  if (value.IsNumber()) {
    double d = value.As<Napi::Number>().DoubleValue();
    if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) <= 9007199254740991.0) {
      return g_variant_new_int64(static_cast<int64_t>(d));
    }
    return g_variant_new_double(d);
  }
  if (value.IsTypedArray() || value.IsBuffer()) {
    Napi::TypedArray ta = value.As<Napi::TypedArray>();
    if (ta.TypedArrayType() != napi_uint8_array) throw Napi::TypeError::New(env, "only Uint8Array/Buffer metadata is supported");
    Napi::Uint8Array u8 = value.As<Napi::Uint8Array>();
    return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, u8.Data(), u8.ElementLength(), 1);
  }
  if (value.IsArray()) {
    Napi::Array a = value.As<Napi::Array>();
    bool allStrings = true;
    for (uint32_t i = 0; i < a.Length(); i++) allStrings = allStrings && a.Get(i).IsString();
    GVariantBuilder b;
    g_variant_builder_init(&b, allStrings ? G_VARIANT_TYPE_STRING_ARRAY : G_VARIANT_TYPE("av"));
    try {
      for (uint32_t i = 0; i < a.Length(); i++) {
        if (allStrings) {
          g_variant_builder_add(&b, "s", Utf8NoNul(env, a.Get(i)).c_str());
        } else {
          g_variant_builder_add(&b, "v", JsToVariantAuto(env, a.Get(i), depth + 1));
        }
      }
    } catch (...) {
      g_variant_builder_clear(&b);
      throw;
    }
    return g_variant_builder_end(&b);
  }
  if (value.IsObject()) {
    Napi::Object o = value.As<Napi::Object>();
    if (o.HasOwnProperty("$variant")) {
      Napi::Value t = o.Get("$variant");
      if (!t.IsString()) throw Napi::TypeError::New(env, "$variant must be a GVariant type string");
      return JsToVariantTyped(env, t.As<Napi::String>().Utf8Value(), o.Get("value"), depth);
    }
    return JsToVardictFloating(env, o, depth + 1);
  }
  throw Napi::TypeError::New(env, "metadata values must be strings, numbers, bigints, booleans, Buffers, arrays or objects");
}

GVariant* JsToVardict(Napi::Env env, Napi::Value value) { return g_variant_ref_sink(JsToVardictFloating(env, value, 0)); }

static GVariant* JsToVardictFloating(Napi::Env env, Napi::Value value, int depth) {
  if (depth > kMaxMetadataDepth) throw Napi::RangeError::New(env, "metadata nested too deeply");
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
  if (value.IsUndefined() || value.IsNull()) return g_variant_builder_end(&b);
  if (!value.IsObject() || value.IsArray()) {
    g_variant_builder_clear(&b);
    throw Napi::TypeError::New(env, "metadata must be a plain object");
  }
  Napi::Object o = value.As<Napi::Object>();
  Napi::Array keys = o.GetPropertyNames();
  try {
    for (uint32_t i = 0; i < keys.Length(); i++) {
      Napi::Value k = keys.Get(i);
      Napi::Value v = o.Get(k);
      if (v.IsUndefined()) continue;
      std::string key = Utf8NoNul(env, k.ToString());
      GVariant* gv = JsToVariantAuto(env, v, depth + 1);
      g_variant_builder_add(&b, "{sv}", key.c_str(), gv);
    }
  } catch (...) {
    g_variant_builder_clear(&b);
    throw;
  }
  return g_variant_builder_end(&b);
}

}  // namespace osx
