// Module entry: registers the classes and lets lib/ hand over the OstreeError constructor.
#include <napi.h>
#include <ostree.h>

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
static Napi::Value DirtreeParse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBuffer()) throw Napi::TypeError::New(env, "expected a Buffer");
  auto buf = info[0].As<Napi::Buffer<uint8_t>>();
  g_autoptr(GBytes) bytes = g_bytes_new(buf.Data(), buf.Length());
  g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE("(a(say)a(sayay))"), bytes, FALSE));
  auto hex = [](const guint8* p, size_t n) {
    static const char* d = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < n; i++) {
      s += d[p[i] >> 4];
      s += d[p[i] & 15];
    }
    return s;
  };
  Napi::Object out = Napi::Object::New(env);
  if (g_variant_is_normal_form(v)) {
    Napi::Array files = Napi::Array::New(env), dirs = Napi::Array::New(env);
    g_autoptr(GVariant) fv = g_variant_get_child_value(v, 0);
    g_autoptr(GVariant) dv = g_variant_get_child_value(v, 1);
    for (gsize i = 0; i < g_variant_n_children(fv); i++) {
      const char* name;
      g_autoptr(GVariant) c = nullptr;
      g_variant_get_child(fv, i, "(&s@ay)", &name, &c);
      gsize n;
      const guint8* p = static_cast<const guint8*>(g_variant_get_fixed_array(c, &n, 1));
      Napi::Array e = Napi::Array::New(env, 2);
      e.Set(0u, Napi::Buffer<char>::Copy(env, name, strlen(name)));
      e.Set(1u, hex(p, n));
      files.Set(static_cast<uint32_t>(i), e);
    }
    for (gsize i = 0; i < g_variant_n_children(dv); i++) {
      const char* name;
      g_autoptr(GVariant) t = nullptr;
      g_autoptr(GVariant) m = nullptr;
      g_variant_get_child(dv, i, "(&s@ay@ay)", &name, &t, &m);
      gsize nt, nm;
      const guint8* pt = static_cast<const guint8*>(g_variant_get_fixed_array(t, &nt, 1));
      const guint8* pm = static_cast<const guint8*>(g_variant_get_fixed_array(m, &nm, 1));
      Napi::Array e = Napi::Array::New(env, 3);
      e.Set(0u, Napi::Buffer<char>::Copy(env, name, strlen(name)));
      e.Set(1u, hex(pt, nt));
      e.Set(2u, hex(pm, nm));
      dirs.Set(static_cast<uint32_t>(i), e);
    }
    Napi::Array glib = Napi::Array::New(env, 2);
    glib.Set(0u, files);
    glib.Set(1u, dirs);
    out.Set("glib", glib);
  } else {
    out.Set("glib", env.Null());
  }
  std::vector<DirtreeFile> files;
  std::vector<DirtreeDir> dirs;
  if (ReadDirtree(v, &files, &dirs)) {
    Napi::Array fa = Napi::Array::New(env, files.size()), da = Napi::Array::New(env, dirs.size());
    for (size_t i = 0; i < files.size(); i++) {
      Napi::Array e = Napi::Array::New(env, 2);
      e.Set(0u, Napi::Buffer<char>::Copy(env, files[i].name, strlen(files[i].name)));
      e.Set(1u, hex(files[i].csum, 32));
      fa.Set(static_cast<uint32_t>(i), e);
    }
    for (size_t i = 0; i < dirs.size(); i++) {
      Napi::Array e = Napi::Array::New(env, 3);
      e.Set(0u, Napi::Buffer<char>::Copy(env, dirs[i].name, strlen(dirs[i].name)));
      e.Set(1u, hex(dirs[i].tree, 32));
      e.Set(2u, hex(dirs[i].meta, 32));
      da.Set(static_cast<uint32_t>(i), e);
    }
    Napi::Array ours = Napi::Array::New(env, 2);
    ours.Set(0u, fa);
    ours.Set(1u, da);
    out.Set("ours", ours);
  } else {
    out.Set("ours", env.Null());
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
