// Module entry: registers the classes and lets lib/ hand over the OstreeError constructor.
#include <napi.h>
#include <ostree.h>

#include <string>
#include <vector>

#include "addon-data.h"
#include "cancel.h"
#include "checkout.h"
#include "objects.h"
#include "overlay.h"
#include "repo.h"
#include "sysroot.h"

namespace osx {

static Napi::Value SetErrorConstructor(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "expected the OstreeError constructor");
  GetData(info.Env())->errorConstructor = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

// dirtreeParse(bytes) -> { glib, ours }: a dirtree's bytes read by GLib (null unless in normal
// form) and by ReadDirtree (null unless they frame), as [[name, checksum]...] for files then
// [[name, tree, meta]...] for dirs. For the differential test of ReadDirtree only.
namespace {
struct ParsedDirtree {
  std::vector<std::vector<std::string>> files, dirs;  // name, then checksums in hex
};

// A checksum GLib read: hex when it is 32 bytes, else its length (so the two sides differ).
std::string GlibChecksum(GVariant* ay) {
  gsize n = 0;
  const guint8* p = static_cast<const guint8*>(g_variant_get_fixed_array(ay, &n, 1));
  return n == 32 ? ChecksumHex(p) : "length " + std::to_string(n);
}

Napi::Value ParsedToJs(Napi::Env env, const ParsedDirtree& p) {
  auto rows = [&](const std::vector<std::vector<std::string>>& in) {
    Napi::Array a = Napi::Array::New(env, in.size());
    for (size_t i = 0; i < in.size(); i++) {
      Napi::Array e = Napi::Array::New(env, in[i].size());
      e.Set(0u, Napi::Buffer<char>::Copy(env, in[i][0].data(), in[i][0].size()));  // names as raw bytes
      for (size_t k = 1; k < in[i].size(); k++) e.Set(static_cast<uint32_t>(k), in[i][k]);
      a.Set(static_cast<uint32_t>(i), e);
    }
    return a;
  };
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, rows(p.files));
  out.Set(1u, rows(p.dirs));
  return out;
}
}  // namespace

static Napi::Value DirtreeParse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBuffer()) throw Napi::TypeError::New(env, "expected a Buffer");
  auto buf = info[0].As<Napi::Buffer<uint8_t>>();
  g_autoptr(GBytes) bytes = g_bytes_new(buf.Data(), buf.Length());
  g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE("(a(say)a(sayay))"), bytes, FALSE));
  Napi::Object out = Napi::Object::New(env);
  out.Set("glib", env.Null());
  if (g_variant_is_normal_form(v)) {
    ParsedDirtree g;
    g_autoptr(GVariant) fv = g_variant_get_child_value(v, 0);
    g_autoptr(GVariant) dv = g_variant_get_child_value(v, 1);
    for (gsize i = 0; i < g_variant_n_children(fv); i++) {
      const char* name;
      g_autoptr(GVariant) c = nullptr;
      g_variant_get_child(fv, i, "(&s@ay)", &name, &c);
      g.files.push_back({name, GlibChecksum(c)});
    }
    for (gsize i = 0; i < g_variant_n_children(dv); i++) {
      const char* name;
      g_autoptr(GVariant) t = nullptr;
      g_autoptr(GVariant) m = nullptr;
      g_variant_get_child(dv, i, "(&s@ay@ay)", &name, &t, &m);
      g.dirs.push_back({name, GlibChecksum(t), GlibChecksum(m)});
    }
    out.Set("glib", ParsedToJs(env, g));
  }
  out.Set("ours", env.Null());
  std::vector<DirtreeFile> files;
  std::vector<DirtreeDir> dirs;
  if (ReadDirtree(v, &files, &dirs)) {
    ParsedDirtree o;
    for (const DirtreeFile& f : files) o.files.push_back({f.name, ChecksumHex(f.csum)});
    for (const DirtreeDir& d : dirs) o.dirs.push_back({d.name, ChecksumHex(d.tree), ChecksumHex(d.meta)});
    out.Set("ours", ParsedToJs(env, o));
  }
  return out;
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<AddonData>(new AddonData());
  InitCancellable(env, exports);
  InitDevIno(env, exports);
  Repo::Init(env, exports);
  InitSysroot(env, exports);
  InitOverlay(env, exports);
  exports.Set("dirtreeParse", Napi::Function::New<DirtreeParse>(env, "dirtreeParse"));
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
