// Sysroot: an OstreeSysroot loaded from a directory. OstreeSysroot is not thread-safe, so
// lib/ serialises every call on one handle; here each worker holds its own reference.
#include "sysroot.h"

#include <ostree.h>

#include <string>

#include "addon-data.h"
#include "args.h"
#include "error.h"
#include "refs.h"
#include "worker.h"

namespace osx {

class Sysroot : public Napi::ObjectWrap<Sysroot> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = DefineClass(env, "Sysroot",
                                      {StaticMethod<&Sysroot::Load>("load"),
                                       InstanceMethod<&Sysroot::Reload>("reload"),
                                       InstanceMethod<&Sysroot::Deployments>("deployments"),
                                       InstanceMethod<&Sysroot::Lock>("lock"),
                                       InstanceMethod<&Sysroot::Unlock>("unlock"),
                                       InstanceAccessor<&Sysroot::GetPath>("path"),
                                       InstanceMethod<&Sysroot::Close>("close")});
    GetData(env)->sysrootConstructor = Napi::Persistent(ctor);
    exports.Set("Sysroot", ctor);
  }
  explicit Sysroot(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Sysroot>(info) {}
  OstreeSysroot* Handle(Napi::Env env) const {
    if (!sysroot_) ThrowClosed(env, "the sysroot handle is closed");
    return sysroot_.get();
  }

 private:
  class LoadWorker : public Worker {
   public:
    LoadWorker(Napi::Env env, Napi::Value owner, OstreeSysroot* existing, std::string path, Napi::Value c)
        : Worker(env, "ostree-sysext:sysrootLoad", owner, c), path_(std::move(path)), sysroot_(existing) {}

   protected:
    void Run() override {
      GError* err = nullptr;
      if (sysroot_) {
        gboolean changed = FALSE;
        if (!ostree_sysroot_load_if_changed(sysroot_.get(), &changed, cancellable_, &err)) Fail(err);
        return;
      }
      g_autoptr(GFile) f = g_file_new_for_path(path_.c_str());
      sysroot_ = ObjectRef<OstreeSysroot>::Adopt(ostree_sysroot_new(f));
      if (!ostree_sysroot_load(sysroot_.get(), cancellable_, &err)) Fail(err);
    }
    Napi::Value Result(Napi::Env env) override {
      if (!path_.empty()) {
        Napi::Object obj = GetData(env)->sysrootConstructor.New({});
        Sysroot::Unwrap(obj)->sysroot_ = ObjectRef<OstreeSysroot>(sysroot_.get());
        return obj;
      }
      return env.Undefined();
    }

   private:
    std::string path_;
    ObjectRef<OstreeSysroot> sysroot_;  // the handle to reload, or the one loaded
  };

  // load(path, cancellable) -> Sysroot
  static Napi::Value Load(const Napi::CallbackInfo& info) {
    std::string path = ArgString(info, 0, "path");
    return (new LoadWorker(info.Env(), info.Env().Undefined(), nullptr, path, info[1]))->Start();
  }

  // reload(cancellable): re-reads deployments if the sysroot changed on disk.
  Napi::Value Reload(const Napi::CallbackInfo& info) {
    return (new LoadWorker(info.Env(), info.This(), Handle(info.Env()), "", info[0]))->Start();
  }

  // deployments(): the loaded state is in memory, so no thread hop.
  Napi::Value Deployments(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    OstreeSysroot* s = Handle(env);
    g_autoptr(GPtrArray) deps = ostree_sysroot_get_deployments(s);
    OstreeDeployment* booted = ostree_sysroot_get_booted_deployment(s);
    Napi::Array out = Napi::Array::New(env, deps->len);
    for (guint i = 0; i < deps->len; i++) {
      OstreeDeployment* d = static_cast<OstreeDeployment*>(deps->pdata[i]);
      Napi::Object o = Napi::Object::New(env);
      o.Set("index", ostree_deployment_get_index(d));
      o.Set("osname", ostree_deployment_get_osname(d));
      o.Set("checksum", ostree_deployment_get_csum(d));
      o.Set("serial", ostree_deployment_get_deployserial(d));
      o.Set("bootSerial", ostree_deployment_get_bootserial(d));
      o.Set("booted", booted != nullptr && ostree_deployment_equal(d, booted));
      o.Set("staged", static_cast<bool>(ostree_deployment_is_staged(d)));
      o.Set("pinned", static_cast<bool>(ostree_deployment_is_pinned(d)));
      g_autofree char* path = ostree_sysroot_get_deployment_dirpath(s, d);
      o.Set("path", path);
      GKeyFile* origin = ostree_deployment_get_origin(d);
      g_autofree char* refspec = origin ? g_key_file_get_string(origin, "origin", "refspec", nullptr) : nullptr;
      o.Set("refspec", refspec ? Napi::Value(Napi::String::New(env, refspec)) : env.Null());
      out.Set(i, o);
    }
    return out;
  }

  // Only ever tries the lock: ostree_sysroot_lock would pin a pool thread, uncancellable,
  // for as long as another holder keeps it.
  class LockWorker : public Worker {
   public:
    LockWorker(Napi::Env env, Napi::Value owner, OstreeSysroot* s, Napi::Value c)
        : Worker(env, "ostree-sysext:sysrootLock", owner, c), sysroot_(s) {}

   protected:
    void Run() override {
      GError* err = nullptr;
      gboolean got = FALSE;
      if (!ostree_sysroot_try_lock(sysroot_.get(), &got, &err)) Fail(err);
      acquired_ = got;
    }
    Napi::Value Result(Napi::Env env) override { return Napi::Boolean::New(env, acquired_); }

   private:
    ObjectRef<OstreeSysroot> sysroot_;
    bool acquired_ = false;
  };

  // lock(wait, cancellable) -> acquired: the sysroot's own lock (ostree/lock), as ostree admin
  // takes it; a held lock answers false at once.
  Napi::Value Lock(const Napi::CallbackInfo& info) {
    // `wait` (info[0]) is ignored: the waiting is done by the caller, which retries with backoff.
    return (new LockWorker(info.Env(), info.This(), Handle(info.Env()), info[1]))->Start();
  }

  Napi::Value Unlock(const Napi::CallbackInfo& info) {
    ostree_sysroot_unlock(Handle(info.Env()));
    return info.Env().Undefined();
  }

  Napi::Value GetPath(const Napi::CallbackInfo& info) {
    GFile* f = ostree_sysroot_get_path(Handle(info.Env()));
    g_autofree char* p = g_file_get_path(f);
    return Napi::String::New(info.Env(), p ? p : "");
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    sysroot_ = ObjectRef<OstreeSysroot>();
    return info.Env().Undefined();
  }

  ObjectRef<OstreeSysroot> sysroot_;  // empty once closed
};

void InitSysroot(Napi::Env env, Napi::Object exports) { Sysroot::Init(env, exports); }

}  // namespace osx
