// Remotes: add/replace/delete, list with URL and options, GPG key import, and the two network
// reads that pull no content (a remote's refs, its summary).
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "args.h"
#include "cancel.h"
#include "refs.h"
#include "repo.h"
#include "variant.h"

namespace osx {

static bool RemoteExists(OstreeRepo* repo, const std::string& name) {
  guint n = 0;
  g_auto(GStrv) names = ostree_repo_remote_list(repo, &n);
  for (guint i = 0; i < n; i++) {
    if (name == names[i]) return true;
  }
  return false;
}

// { key: string | boolean | string[] } → a{sv} as ostree_repo_remote_change maps it to the
// key file (s → string, b → boolean, as → list).
static GVariant* RemoteOptionsVariant(Napi::Env env, Napi::Value value) {
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
  if (value.IsObject()) {
    Napi::Object o = value.As<Napi::Object>();
    Napi::Array keys = o.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); i++) {
      std::string key = keys.Get(i).ToString().Utf8Value();
      Napi::Value v = o.Get(key);
      if (v.IsUndefined()) continue;
      if (v.IsString()) {
        g_variant_builder_add(&b, "{sv}", key.c_str(), g_variant_new_string(v.As<Napi::String>().Utf8Value().c_str()));
      } else if (v.IsBoolean()) {
        g_variant_builder_add(&b, "{sv}", key.c_str(), g_variant_new_boolean(v.As<Napi::Boolean>().Value()));
      } else if (v.IsArray()) {
        std::vector<std::string> items;
        try {
          items = OptStringArray(o, key.c_str());
        } catch (...) {
          g_variant_builder_clear(&b);
          throw;
        }
        std::vector<const char*> ptrs;
        for (auto& s : items) ptrs.push_back(s.c_str());
        g_variant_builder_add(&b, "{sv}", key.c_str(), g_variant_new_strv(ptrs.data(), static_cast<gssize>(ptrs.size())));
      } else {
        g_variant_builder_clear(&b);
        throw Napi::TypeError::New(env, "remote option " + key + " must be a string, boolean or string array");
      }
    }
  }
  return g_variant_ref_sink(g_variant_builder_end(&b));
}

// remoteAdd(name, { url, options, mode: 'add' | 'replace' | 'add-if-not-exists' }, cancellable)
Napi::Value Repo::RemoteAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "name");
  Napi::Object o = ArgObject(info, 1, "options");
  std::optional<std::string> url = OptString(o, "url");
  if (!url) throw Napi::TypeError::New(env, "url is required");
  std::string mode = OptString(o, "mode").value_or("add");
  OstreeRepoRemoteChange op;
  if (mode == "add") op = OSTREE_REPO_REMOTE_CHANGE_ADD;
  else if (mode == "replace") op = OSTREE_REPO_REMOTE_CHANGE_REPLACE;
  else if (mode == "add-if-not-exists") op = OSTREE_REPO_REMOTE_CHANGE_ADD_IF_NOT_EXISTS;
  else throw Napi::TypeError::New(env, "mode must be add, replace or add-if-not-exists");
  auto options = std::make_shared<VariantRef>(RemoteOptionsVariant(env, o.Get("options")));
  std::string u = *url;
  return (new RepoCallWorker(info, "ostree-sysext:remoteAdd", this, info[2],
                             [name, u, op, options](OstreeRepo* repo, GCancellable* c, GError** err) -> gboolean {
                               if (ostree_repo_remote_change(repo, nullptr, op, name.c_str(), u.c_str(), options->v, c, err)) {
                                 return TRUE;
                               }
                               // libostree reports a duplicate as G_IO_ERROR_FAILED; callers need EXISTS.
                               if (op == OSTREE_REPO_REMOTE_CHANGE_ADD && g_error_matches(*err, G_IO_ERROR, G_IO_ERROR_FAILED) &&
                                   RemoteExists(repo, name)) {
                                 (*err)->code = G_IO_ERROR_EXISTS;
                               }
                               return FALSE;
                             }))
      ->Start();
}

// remoteDelete(name, { ifExists }, cancellable)
Napi::Value Repo::RemoteDelete(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 0, "name");
  Napi::Object o = ArgObject(info, 1, "options");
  OstreeRepoRemoteChange op = OptBool(o, "ifExists", false) ? OSTREE_REPO_REMOTE_CHANGE_DELETE_IF_EXISTS : OSTREE_REPO_REMOTE_CHANGE_DELETE;
  return (new RepoCallWorker(info, "ostree-sysext:remoteDelete", this, info[2],
                             [name, op](OstreeRepo* repo, GCancellable* c, GError** err) {
                               return ostree_repo_remote_change(repo, nullptr, op, name.c_str(), nullptr, nullptr, c, err);
                             }))
      ->Start();
}

// Keys read for every remote in addition to those of its own config section: a remote from a
// remotes.d file has no section in the repo config, and libostree lists no keys.
static const char* const kKnownRemoteKeys[] = {
    "gpg-verify", "gpg-verify-summary", "sign-verify", "sign-verify-summary", "collection-id", "branches",
    "contenturl", "metalink", "proxy", "tls-permissive", "tls-client-cert-path", "tls-client-key-path",
    "tls-ca-path", "unconfigured-state", "http2", "verification-ed25519-key", "verification-ed25519-file",
    "verification-ed25519-keys", nullptr};

// remoteList() -> [{ name, url, gpgVerify, gpgVerifySummary, options }]. All in memory: the
// remote table is loaded at open and guarded by libostree's own lock.
Napi::Value Repo::RemoteList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OstreeRepo* repo = Handle(env);
  guint n = 0;
  g_auto(GStrv) names = ostree_repo_remote_list(repo, &n);
  GKeyFile* config = ostree_repo_get_config(repo);
  Napi::Array out = Napi::Array::New(env, n);
  for (guint i = 0; i < n; i++) {
    const char* name = names[i];
    Napi::Object r = Napi::Object::New(env);
    r.Set("name", name);
    g_autofree char* url = nullptr;
    GError* err = nullptr;
    if (ostree_repo_remote_get_url(repo, name, &url, &err)) {
      r.Set("url", url);
    } else {
      g_clear_error(&err);
      r.Set("url", env.Null());
    }
    gboolean gpg = TRUE, gpgSummary = FALSE;
    if (!ostree_repo_remote_get_gpg_verify(repo, name, &gpg, &err)) g_clear_error(&err);
    if (!ostree_repo_remote_get_gpg_verify_summary(repo, name, &gpgSummary, &err)) g_clear_error(&err);
    r.Set("gpgVerify", Napi::Boolean::New(env, gpg));
    r.Set("gpgVerifySummary", Napi::Boolean::New(env, gpgSummary));
    std::set<std::string> keys;
    for (const char* const* k = kKnownRemoteKeys; *k; k++) keys.insert(*k);
    g_autofree char* group = g_strdup_printf("remote \"%s\"", name);
    gsize nkeys = 0;
    g_auto(GStrv) own = g_key_file_get_keys(config, group, &nkeys, nullptr);
    for (gsize j = 0; j < nkeys; j++) keys.insert(own[j]);
    keys.erase("url");
    Napi::Object options = Napi::Object::New(env);
    for (const std::string& key : keys) {
      g_autofree char* value = nullptr;
      if (!ostree_repo_get_remote_option(repo, name, key.c_str(), nullptr, &value, &err)) {
        g_clear_error(&err);
        continue;
      }
      if (value) options.Set(key, value);
    }
    r.Set("options", options);
    out.Set(i, r);
  }
  return out;
}

// remoteGpgImport(name, keys: Buffer, cancellable) -> number of keys imported
Napi::Value Repo::RemoteGpgImport(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "name");
  if (info.Length() < 2 || !info[1].IsBuffer()) throw Napi::TypeError::New(env, "keys must be a Buffer");
  Napi::Buffer<uint8_t> buf = info[1].As<Napi::Buffer<uint8_t>>();
  // Copied: the JS Buffer may change or be collected while the worker runs.
  auto bytes = std::shared_ptr<GBytes>(g_bytes_new(buf.Data(), buf.Length()), g_bytes_unref);
  auto imported = std::make_shared<guint>(0);
  return (new RepoCallWorker(
              info, "ostree-sysext:remoteGpgImport", this, info[2],
              [name, bytes, imported](OstreeRepo* repo, GCancellable* c, GError** err) {
                g_autoptr(GInputStream) in = g_memory_input_stream_new_from_bytes(bytes.get());
                return ostree_repo_remote_gpg_import(repo, name.c_str(), in, nullptr, imported.get(), c, err);
              },
              [imported](Napi::Env e) { return Napi::Number::New(e, *imported); }))
      ->Start();
}

// ---- network reads: a dedicated thread and a pushed main context each ----

class RemoteListRefsWorker : public DedicatedRepoWorker {
 public:
  RemoteListRefsWorker(const Napi::CallbackInfo& info, Repo* self, std::string name)
      : DedicatedRepoWorker(info, "ostree-sysext:remoteListRefs", self, info[1]), name_(std::move(name)) {}
  ~RemoteListRefsWorker() override {
    if (refs_) g_hash_table_unref(refs_);
  }

 protected:
  void Run() override {
    GError* err = nullptr;
    PushedContext ctx;
    CancelBreaker breaker(cancellable_);
    if (!ostree_repo_remote_list_refs(repo(), name_.c_str(), &refs_, cancellable_, &err)) Fail(err);
  }
  Napi::Value Result(Napi::Env env) override { return StringTableToJs(env, refs_); }

 private:
  std::string name_;
  GHashTable* refs_ = nullptr;
};

// remoteListRefs(name, cancellable) -> { ref: checksum } from the remote's summary
Napi::Value Repo::RemoteListRefs(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 0, "name");
  return (new RemoteListRefsWorker(info, this, name))->Start();
}

class FetchSummaryWorker : public DedicatedRepoWorker {
 public:
  FetchSummaryWorker(const Napi::CallbackInfo& info, Repo* self, std::string name)
      : DedicatedRepoWorker(info, "ostree-sysext:remoteFetchSummary", self, info[1]), name_(std::move(name)) {}
  ~FetchSummaryWorker() override {
    if (summary_) g_bytes_unref(summary_);
    if (signatures_) g_bytes_unref(signatures_);
  }

 protected:
  void Run() override {
    GError* err = nullptr;
    PushedContext ctx;
    CancelBreaker breaker(cancellable_);
    if (!ostree_repo_remote_fetch_summary(repo(), name_.c_str(), &summary_, &signatures_, cancellable_, &err)) Fail(err);
  }
  static Napi::Value BytesToJs(Napi::Env env, GBytes* b) {
    if (!b) return env.Null();
    gsize n = 0;
    const void* p = g_bytes_get_data(b, &n);
    return Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(p), n);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("summary", BytesToJs(env, summary_));
    out.Set("signatures", BytesToJs(env, signatures_));
    return out;
  }

 private:
  std::string name_;
  GBytes* summary_ = nullptr;
  GBytes* signatures_ = nullptr;
};

// remoteFetchSummary(name, cancellable) -> { summary: Buffer | null, signatures: Buffer | null }
Napi::Value Repo::RemoteFetchSummary(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 0, "name");
  return (new FetchSummaryWorker(info, this, name))->Start();
}

}  // namespace osx
