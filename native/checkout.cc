// Checkout: a commit (or a path in it) into a directory, and the DevInoCache a hardlink
// checkout fills so that a later commit of the result skips unchanged files.
#include "checkout.h"

#include "addon-data.h"
#include "args.h"
#include "objects.h"
#include "repo.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <optional>
#include <string>

namespace osx {

// ---- DevInoCache: (device, inode) -> object checksum, filled by a checkout, read by a commit ----

class DevInoCache : public Napi::ObjectWrap<DevInoCache> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = DefineClass(env, "DevInoCache", {});
    GetData(env)->devinoConstructor = Napi::Persistent(ctor);
    exports.Set("DevInoCache", ctor);
  }
  explicit DevInoCache(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<DevInoCache>(info), cache_(ostree_repo_devino_cache_new()) {}
  ~DevInoCache() override { ostree_repo_devino_cache_unref(cache_); }
  OstreeRepoDevInoCache* get() const { return cache_; }

 private:
  OstreeRepoDevInoCache* cache_;
};

OstreeRepoDevInoCache* DevInoFrom(Napi::Value value) {
  if (value.IsUndefined() || value.IsNull()) return nullptr;
  Napi::Env env = value.Env();
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(GetData(env)->devinoConstructor.Value())) {
    throw Napi::TypeError::New(env, "devinoCache must be a native DevInoCache");
  }
  return DevInoCache::Unwrap(value.As<Napi::Object>())->get();
}

void InitDevIno(Napi::Env env, Napi::Object exports) { DevInoCache::Init(env, exports); }

// ---- checkout ----

// libostree's checkout never looks at its cancellable (2022.7): once cancelled, this filter
// skips every remaining file and directory, so the walk ends quickly and Run reports CANCELLED.
static OstreeRepoCheckoutFilterResult SkipOnceCancelled(OstreeRepo*, const char*, struct stat*, gpointer cancellable) {
  return g_cancellable_is_cancelled(static_cast<GCancellable*>(cancellable)) ? OSTREE_REPO_CHECKOUT_FILTER_SKIP
                                                                             : OSTREE_REPO_CHECKOUT_FILTER_ALLOW;
}

class CheckoutWorker : public RepoWorker {
 public:
  CheckoutWorker(const Napi::CallbackInfo& info, Repo* self, std::string commit, std::string dest, Napi::Object o)
      : RepoWorker(info, "ostree-sysext:checkout", self, info[3]), commit_(std::move(commit)), dest_(std::move(dest)) {
    Napi::Env env = info.Env();
    std::string mode = OptString(o, "mode").value_or("none");
    if (mode == "none") opts_.mode = OSTREE_REPO_CHECKOUT_MODE_NONE;
    else if (mode == "user") opts_.mode = OSTREE_REPO_CHECKOUT_MODE_USER;
    else throw Napi::TypeError::New(env, "mode must be 'none' or 'user'");
    std::string ow = OptString(o, "overwrite").value_or("none");
    if (ow == "none") opts_.overwrite_mode = OSTREE_REPO_CHECKOUT_OVERWRITE_NONE;
    else if (ow == "union") opts_.overwrite_mode = OSTREE_REPO_CHECKOUT_OVERWRITE_UNION_FILES;
    else if (ow == "add-files") opts_.overwrite_mode = OSTREE_REPO_CHECKOUT_OVERWRITE_ADD_FILES;
    else if (ow == "union-identical") opts_.overwrite_mode = OSTREE_REPO_CHECKOUT_OVERWRITE_UNION_IDENTICAL;
    else throw Napi::TypeError::New(env, "overwrite must be none, union, add-files or union-identical");
    std::string hl = OptString(o, "hardlinks").value_or("allow");
    if (hl == "require") opts_.no_copy_fallback = TRUE;
    else if (hl == "never") opts_.force_copy = TRUE;
    else if (hl != "allow") throw Napi::TypeError::New(env, "hardlinks must be allow, require or never");
    opts_.process_whiteouts = OptBool(o, "processWhiteouts", false);
    opts_.process_passthrough_whiteouts = OptBool(o, "processPassthroughWhiteouts", false);
    opts_.bareuseronly_dirs = OptBool(o, "bareuseronlyDirs", false);
    opts_.force_copy_zerosized = OptBool(o, "forceCopyZerosized", false);
    subpath_ = OptString(o, "subpath");
    OstreeRepoDevInoCache* cache = DevInoFrom(o.Get("devinoCache"));
    if (cache) devino_ = ostree_repo_devino_cache_ref(cache);
  }
  ~CheckoutWorker() override {
    if (devino_) ostree_repo_devino_cache_unref(devino_);
  }

 protected:
  void Run() override {
    GError* err = nullptr;
    if (subpath_) opts_.subpath = subpath_->c_str();
    if (devino_) opts_.devino_to_csum_cache = devino_;
    // The whole source (the subpath and everything below it) is validated before libostree
    // walks it: damaged metadata, a tree deeper than kMaxTreeDepth, or a content object that
    // is a FIFO or directory (libostree would block in open() or crash) is CORRUPT.
    ValidatedSet seen;
    if (!ValidateCheckoutSource(repo(), commit_.c_str(), subpath_ ? subpath_->c_str() : "/", true, &seen,
                                cancellable_, &err)) {
      Fail(err);
      return;
    }
    if (cancellable_) {
      opts_.filter = SkipOnceCancelled;
      opts_.filter_user_data = cancellable_;
    }
    if (!ostree_repo_checkout_at(repo(), &opts_, AT_FDCWD, dest_.c_str(), commit_.c_str(), cancellable_, &err) ||
        g_cancellable_set_error_if_cancelled(cancellable_, &err))
      Fail(err);
  }

 private:
  std::string commit_;
  std::string dest_;
  std::optional<std::string> subpath_;
  OstreeRepoCheckoutAtOptions opts_{};  // zeroed, as libostree requires
  OstreeRepoDevInoCache* devino_ = nullptr;
};

// checkout(commit, dest, { mode, overwrite, hardlinks, subpath, processWhiteouts, devinoCache }, cancellable)
Napi::Value Repo::Checkout(const Napi::CallbackInfo& info) {
  std::string commit = ArgString(info, 0, "commit");
  std::string dest = ArgString(info, 1, "destination");
  Napi::Object o = ArgObject(info, 2, "options");
  return (new CheckoutWorker(info, this, commit, dest, o))->Start();
}

}  // namespace osx
