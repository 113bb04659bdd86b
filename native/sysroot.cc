// Sysroot: an OstreeSysroot loaded from a directory. OstreeSysroot is not thread-safe, so
// lib/ serialises every call on one handle; here each worker holds its own reference.
#include "common.h"

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
  ~Sysroot() override {
    if (sysroot_) g_object_unref(sysroot_);
  }
  OstreeSysroot* Handle(Napi::Env env) const {
    if (!sysroot_) ThrowOstreeError(env, "CLOSED", "the sysroot handle is closed");
    return sysroot_;
  }

 private:
  class LoadWorker : public Worker {
   public:
    LoadWorker(Napi::Env env, Napi::Value owner, OstreeSysroot* existing, std::string path, Napi::Value c)
        : Worker(env, "ostree-sysext:sysrootLoad", owner, c), path_(std::move(path)) {
      if (existing) sysroot_ = static_cast<OstreeSysroot*>(g_object_ref(existing));
    }
    ~LoadWorker() override {
      if (sysroot_) g_object_unref(sysroot_);
    }

   protected:
    void Run() override {
      GError* err = nullptr;
      if (sysroot_) {
        gboolean changed = FALSE;
        if (!ostree_sysroot_load_if_changed(sysroot_, &changed, cancellable_, &err)) Fail(err);
        return;
      }
      g_autoptr(GFile) f = g_file_new_for_path(path_.c_str());
      sysroot_ = ostree_sysroot_new(f);
      if (!ostree_sysroot_load(sysroot_, cancellable_, &err)) Fail(err);
    }
    Napi::Value Result(Napi::Env env) override {
      if (!path_.empty()) {
        Napi::Object obj = GetData(env)->sysrootConstructor.New({});
        Sysroot::Unwrap(obj)->sysroot_ = static_cast<OstreeSysroot*>(g_object_ref(sysroot_));
        return obj;
      }
      return env.Undefined();
    }

   private:
    std::string path_;
    OstreeSysroot* sysroot_ = nullptr;
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

  class LockWorker : public Worker {
   public:
    LockWorker(Napi::Env env, Napi::Value owner, OstreeSysroot* s, bool wait, Napi::Value c)
        : Worker(env, "ostree-sysext:sysrootLock", owner, c), sysroot_(static_cast<OstreeSysroot*>(g_object_ref(s))), wait_(wait) {}
    ~LockWorker() override { g_object_unref(sysroot_); }

   protected:
    void Run() override {
      GError* err = nullptr;
      if (wait_) {
        // Blocks until the other holder (another apply, `ostree admin`) lets go.
        if (!ostree_sysroot_lock(sysroot_, &err)) Fail(err);
        else acquired_ = true;
        return;
      }
      gboolean got = FALSE;
      if (!ostree_sysroot_try_lock(sysroot_, &got, &err)) Fail(err);
      acquired_ = got;
    }
    Napi::Value Result(Napi::Env env) override { return Napi::Boolean::New(env, acquired_); }

   private:
    OstreeSysroot* sysroot_;
    bool wait_;
    bool acquired_ = false;
  };

  // lock(wait, cancellable) -> acquired: the sysroot's own lock (ostree/lock), as ostree admin takes it.
  Napi::Value Lock(const Napi::CallbackInfo& info) {
    bool wait = info.Length() > 0 && info[0].ToBoolean().Value();
    return (new LockWorker(info.Env(), info.This(), Handle(info.Env()), wait, info[1]))->Start();
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
    if (sysroot_) {
      g_object_unref(sysroot_);
      sysroot_ = nullptr;
    }
    return info.Env().Undefined();
  }

  OstreeSysroot* sysroot_ = nullptr;
};

void InitSysroot(Napi::Env env, Napi::Object exports) { Sysroot::Init(env, exports); }

}  // namespace osx
