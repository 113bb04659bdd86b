// GLib values as JS values: GVariant both ways (native-contract.ts in lib/ states the
// mapping), and a string table as a plain object.
#pragma once

#include <glib.h>
#include <napi.h>

namespace osx {

// To JS: plain values; null for a null variant.
Napi::Value VariantToJs(Napi::Env env, GVariant* v);
// From JS, for metadata dictionaries (a{sv}); throws TypeError on unsupported values. Returns
// a full (sunk) reference.
GVariant* JsToVardict(Napi::Env env, Napi::Value value);
// A string → string GHashTable (refs → checksums) as a plain JS object.
Napi::Object StringTableToJs(Napi::Env env, GHashTable* table);

}  // namespace osx
