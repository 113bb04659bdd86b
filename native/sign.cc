// Publisher side: GPG-sign commits, verify their signatures, regenerate the (signed) summary,
// and generate static deltas.
#include <optional>
#include <string>
#include <vector>

#include "args.h"
#include "objects.h"
#include "refs.h"
#include "repo.h"

namespace osx {

// signCommit(checksum, keyId, homedir | null, cancellable)
Napi::Value Repo::SignCommit(const Napi::CallbackInfo& info) {
  std::string checksum = ArgString(info, 0, "checksum");
  std::string keyId = ArgString(info, 1, "keyId");
  std::optional<std::string> homedir = ArgOptString(info, 2, "homedir");
  return (new RepoCallWorker(info, "ostree-sysext:signCommit", this, info[3],
                             [checksum, keyId, homedir](OstreeRepo* repo, GCancellable* c, GError** err) {
                               // A damaged commit or a FIFO for its detached metadata: CORRUPT, not a hang.
                               g_autoptr(GVariant) commit = nullptr;
                               if (!LoadValidMetadata(repo, OSTREE_OBJECT_TYPE_COMMIT, checksum.c_str(), &commit, err) ||
                                   !CheckDetachedMetadata(repo, checksum.c_str(), err))
                                 return FALSE;
                               return ostree_repo_sign_commit(repo, checksum.c_str(), keyId.c_str(),
                                                              homedir ? homedir->c_str() : nullptr, c, err);
                             }))
      ->Start();
}

// One signature, copied out of the OstreeGpgVerifyResult on the worker thread.
struct SignatureInfo {
  bool valid, sigExpired, keyExpired, keyRevoked, keyMissing;
  std::string fingerprint, primaryFingerprint, pubkeyAlgo, hashAlgo, userName, userEmail;
  gint64 timestamp, expiresAt, keyExpiresAt;
};

static SignatureInfo ReadSignature(OstreeGpgVerifyResult* result, guint i) {
  g_autoptr(GVariant) v = ostree_gpg_verify_result_get_all(result, i);
  SignatureInfo s{};
  gboolean valid, sigExpired, keyExpired, keyRevoked, keyMissing;
  const char *fp, *algo, *hash, *user, *email, *primary;
  gint64 ts, exp, keyExp, keyExpPrimary;
  // Layout documented as OstreeGpgSignatureAttr, in enum order.
  g_variant_get(v, "(bbbbb&sxx&s&s&s&s&sxx)", &valid, &sigExpired, &keyExpired, &keyRevoked, &keyMissing, &fp, &ts, &exp, &algo,
                &hash, &user, &email, &primary, &keyExp, &keyExpPrimary);
  s.valid = valid;
  s.sigExpired = sigExpired;
  s.keyExpired = keyExpired;
  s.keyRevoked = keyRevoked;
  s.keyMissing = keyMissing;
  s.fingerprint = fp ? fp : "";
  s.primaryFingerprint = primary ? primary : "";
  s.pubkeyAlgo = algo ? algo : "";
  s.hashAlgo = hash ? hash : "";
  s.userName = user ? user : "";
  s.userEmail = email ? email : "";
  s.timestamp = ts;
  s.expiresAt = exp;
  s.keyExpiresAt = keyExp;
  return s;
}

class VerifyWorker : public RepoWorker {
 public:
  VerifyWorker(const Napi::CallbackInfo& info, Repo* self, std::string checksum, Napi::Object o)
      : RepoWorker(info, "ostree-sysext:verifyCommit", self, info[2]), checksum_(std::move(checksum)) {
    remote_ = OptString(o, "remote");
    keyringDir_ = OptString(o, "keyringDir");
    keyring_ = OptString(o, "keyring");
  }

 protected:
  void Run() override {
    GError* err = nullptr;
    g_autoptr(OstreeGpgVerifyResult) result = nullptr;
    g_autoptr(GVariant) commit = nullptr;
    if (!LoadValidMetadata(repo(), OSTREE_OBJECT_TYPE_COMMIT, checksum_.c_str(), &commit, &err) ||
        !CheckDetachedMetadata(repo(), checksum_.c_str(), &err)) {
      Fail(err);
      return;
    }
    if (remote_) {
      result = ostree_repo_verify_commit_for_remote(repo(), checksum_.c_str(), remote_->c_str(), cancellable_, &err);
    } else {
      g_autoptr(GFile) dir = keyringDir_ ? g_file_new_for_path(keyringDir_->c_str()) : nullptr;
      g_autoptr(GFile) extra = keyring_ ? g_file_new_for_path(keyring_->c_str()) : nullptr;
      result = ostree_repo_verify_commit_ext(repo(), checksum_.c_str(), dir, extra, cancellable_, &err);
    }
    if (!result) {
      Fail(err);
      return;
    }
    guint n = ostree_gpg_verify_result_count_all(result);
    for (guint i = 0; i < n; i++) signatures_.push_back(ReadSignature(result, i));
  }

  Napi::Value Result(Napi::Env env) override {
    auto num = [&](gint64 x) { return Napi::Number::New(env, static_cast<double>(x)); };
    auto str = [&](const std::string& s) -> Napi::Value { return s.empty() ? env.Null() : Napi::String::New(env, s); };
    Napi::Array out = Napi::Array::New(env, signatures_.size());
    for (size_t i = 0; i < signatures_.size(); i++) {
      const SignatureInfo& s = signatures_[i];
      Napi::Object o = Napi::Object::New(env);
      // The key id GnuPG prints: the last 16 hex digits of the fingerprint.
      o.Set("keyId", s.fingerprint.size() > 16 ? s.fingerprint.substr(s.fingerprint.size() - 16) : s.fingerprint);
      o.Set("fingerprint", s.fingerprint);
      o.Set("primaryFingerprint", str(s.primaryFingerprint));
      o.Set("valid", s.valid);
      o.Set("sigExpired", s.sigExpired);
      o.Set("keyExpired", s.keyExpired);
      o.Set("keyRevoked", s.keyRevoked);
      o.Set("keyMissing", s.keyMissing);
      o.Set("timestamp", num(s.timestamp));
      o.Set("expiresAt", num(s.expiresAt));
      o.Set("keyExpiresAt", num(s.keyExpiresAt));
      o.Set("pubkeyAlgorithm", str(s.pubkeyAlgo));
      o.Set("hashAlgorithm", str(s.hashAlgo));
      o.Set("user", str(s.userName));
      o.Set("email", str(s.userEmail));
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  }

 private:
  std::string checksum_;
  std::optional<std::string> remote_, keyringDir_, keyring_;
  std::vector<SignatureInfo> signatures_;
};

// verifyCommit(checksum, { remote } | { keyringDir, keyring }, cancellable) -> signatures[]
Napi::Value Repo::VerifyCommit(const Napi::CallbackInfo& info) {
  std::string checksum = ArgString(info, 0, "checksum");
  Napi::Object o = ArgObject(info, 1, "options");
  return (new VerifyWorker(info, this, checksum, o))->Start();
}

// regenerateSummary({ keyIds, homedir }, cancellable): rewrites summary (refs, deltas) and,
// with keyIds, its detached GPG signature.
Napi::Value Repo::RegenerateSummary(const Napi::CallbackInfo& info) {
  Napi::Object o = ArgObject(info, 0, "options");
  std::vector<std::string> keyIds = OptStringArray(o, "keyIds");
  std::optional<std::string> homedir = OptString(o, "homedir");
  return (new RepoCallWorker(info, "ostree-sysext:regenerateSummary", this, info[1],
                             [keyIds, homedir](OstreeRepo* repo, GCancellable* c, GError** err) -> gboolean {
                               // The summary reads every ref's commit: each is validated first.
                               g_autoptr(GHashTable) refs = nullptr;
                               if (!ostree_repo_list_refs_ext(repo, nullptr, &refs, OSTREE_REPO_LIST_REFS_EXT_NONE, c, err))
                                 return FALSE;
                               GHashTableIter it;
                               gpointer k, v;
                               g_hash_table_iter_init(&it, refs);
                               while (g_hash_table_iter_next(&it, &k, &v)) {
                                 g_autoptr(GVariant) commit = nullptr;
                                 if (!LoadValidMetadata(repo, OSTREE_OBJECT_TYPE_COMMIT, static_cast<const char*>(v), &commit, err))
                                   return FALSE;
                               }
                               if (!ostree_repo_regenerate_summary(repo, nullptr, c, err)) return FALSE;
                               if (keyIds.empty()) return TRUE;
                               std::vector<const gchar*> ids;
                               for (auto& k : keyIds) ids.push_back(k.c_str());
                               ids.push_back(nullptr);
                               return ostree_repo_add_gpg_signature_summary(repo, ids.data(), homedir ? homedir->c_str() : nullptr, c, err);
                             }))
      ->Start();
}

// Delta generation is long and CPU-bound: a dedicated thread keeps libuv's pool free.
class DeltaWorker : public DedicatedRepoWorker {
 public:
  DeltaWorker(const Napi::CallbackInfo& info, Repo* self, Napi::Object o)
      : DedicatedRepoWorker(info, "ostree-sysext:generateDelta", self, info[1]) {
    Napi::Env env = info.Env();
    from_ = OptString(o, "from");
    std::optional<std::string> to = OptString(o, "to");
    if (!to) throw Napi::TypeError::New(env, "to is required");
    to_ = *to;
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "inline-parts", g_variant_new_boolean(OptBool(o, "inlineParts", false)));
    g_variant_builder_add(&b, "{sv}", "bsdiff-enabled", g_variant_new_boolean(OptBool(o, "bsdiff", true)));
    Napi::Value chunk = o.Get("maxChunkSizeMiB");
    if (!chunk.IsUndefined() && !chunk.IsNull()) {
      guint32 mib = static_cast<guint32>(OptInt(o, "maxChunkSizeMiB", 32, 1, 4096));
      g_variant_builder_add(&b, "{sv}", "max-chunk-size", g_variant_new_uint32(mib));
    }
    params_ = VariantRef(g_variant_ref_sink(g_variant_builder_end(&b)));
  }

 protected:
  void Run() override {
    GError* err = nullptr;
    // A delta reads both commits' whole trees and their content: validated first.
    ValidatedSet seen;
    if ((from_ && !ValidateCommitGraph(repo(), from_->c_str(), 0, true, &seen, cancellable_, &err)) ||
        !ValidateCommitGraph(repo(), to_.c_str(), 0, true, &seen, cancellable_, &err)) {
      Fail(err);
      return;
    }
    if (!ostree_repo_static_delta_generate(repo(), OSTREE_STATIC_DELTA_GENERATE_OPT_MAJOR, from_ ? from_->c_str() : nullptr,
                                           to_.c_str(), nullptr, params_.v, cancellable_, &err)) {
      Fail(err);
    }
  }

 private:
  std::optional<std::string> from_;
  std::string to_;
  VariantRef params_;
};

// generateDelta({ from | null, to, inlineParts, bsdiff, maxChunkSizeMiB }, cancellable)
Napi::Value Repo::GenerateDelta(const Napi::CallbackInfo& info) {
  Napi::Object o = ArgObject(info, 0, "options");
  return (new DeltaWorker(info, this, o))->Start();
}

}  // namespace osx
