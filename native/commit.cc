// Writing: transactions, commits (from a directory, an archive, an existing commit or a tree
// of objects) and a commit's detached metadata.
#include "repo.h"

#include "args.h"
#include "objects.h"
#include "checkout.h"
#include "commit-walk.h"
#include "overlay.h"
#include "variant.h"

#include <fcntl.h>

#include <memory>
#include <optional>
#include <set>
#include <string>

namespace osx {

// ---- transactions ----

Napi::Value Repo::PrepareTransaction(const Napi::CallbackInfo& info) {
  // Marked before it can be open (reads of detached metadata then ask libostree, which looks
  // in the transaction's staging directory too), unmarked once its commit or abort returned.
  MarkTransaction(Handle(info.Env()), true);
  return (new RepoCallWorker(info, "ostree-sysext:prepareTransaction", this, info[0],
                             [](OstreeRepo* r, GCancellable* c, GError** err) {
                               gboolean resume = FALSE;
                               return ostree_repo_prepare_transaction(r, &resume, c, err);
                             }))
      ->Start();
}

class CommitTransactionWorker : public RepoWorker {
 public:
  CommitTransactionWorker(const Napi::CallbackInfo& info, Repo* self)
      : RepoWorker(info, "ostree-sysext:commitTransaction", self, info[0]) {}

 protected:
  void Run() override {
    GError* err = nullptr;
    if (!ostree_repo_commit_transaction(repo(), &stats_, cancellable_, &err)) Fail(err);
    else MarkTransaction(repo(), false);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("metadataObjectsTotal", stats_.metadata_objects_total);
    o.Set("metadataObjectsWritten", stats_.metadata_objects_written);
    o.Set("contentObjectsTotal", stats_.content_objects_total);
    o.Set("contentObjectsWritten", stats_.content_objects_written);
    o.Set("contentBytesWritten", Napi::Number::New(env, static_cast<double>(stats_.content_bytes_written)));
    return o;
  }

 private:
  OstreeRepoTransactionStats stats_{};
};

Napi::Value Repo::CommitTransaction(const Napi::CallbackInfo& info) {
  return (new CommitTransactionWorker(info, this))->Start();
}

Napi::Value Repo::AbortTransaction(const Napi::CallbackInfo& info) {
  // Never cancellable: an abort must always run to completion.
  return (new RepoCallWorker(info, "ostree-sysext:abortTransaction", this, info.Env().Undefined(),
                             [](OstreeRepo* r, GCancellable*, GError** err) {
                               gboolean ok = ostree_repo_abort_transaction(r, nullptr, err);
                               if (ok) MarkTransaction(r, false);  // a failed abort may leave it open
                               return ok;
                             }))
      ->Start();
}

// transactionSetRef(remote|null, ref, checksum|null): in memory until commitTransaction.
Napi::Value Repo::TransactionSetRef(const Napi::CallbackInfo& info) {
  std::optional<std::string> remote = ArgOptString(info, 0, "remote");
  std::string ref = ArgString(info, 1, "ref");
  std::optional<std::string> checksum = ArgOptString(info, 2, "checksum");
  ostree_repo_transaction_set_ref(Handle(info.Env()), remote ? remote->c_str() : nullptr, ref.c_str(),
                                  checksum ? checksum->c_str() : nullptr);
  return info.Env().Undefined();
}

// ---- commits ----

struct CommitFilterData {
  std::set<std::string> skip;
  int64_t uid = -1;
  int64_t gid = -1;
};

static OstreeRepoCommitFilterResult CommitFilter(OstreeRepo*, const char* path, GFileInfo* fi, gpointer user_data) {
  auto* d = static_cast<CommitFilterData*>(user_data);
  if (!d->skip.empty() && d->skip.count(path)) return OSTREE_REPO_COMMIT_FILTER_SKIP;
  if (d->uid >= 0) g_file_info_set_attribute_uint32(fi, "unix::uid", static_cast<guint32>(d->uid));
  if (d->gid >= 0) g_file_info_set_attribute_uint32(fi, "unix::gid", static_cast<guint32>(d->gid));
  return OSTREE_REPO_COMMIT_FILTER_ALLOW;
}

class WriteCommitWorker : public RepoWorker {
 public:
  WriteCommitWorker(const Napi::CallbackInfo& info, Repo* self, Napi::Object o)
      : RepoWorker(info, "ostree-sysext:writeCommit", self, info[1]) {
    Napi::Env env = info.Env();
    auto tree = OptString(o, "tree");
    auto archive = OptString(o, "archive");
    auto fromCommit = OptString(o, "fromCommit");
    rootTree_ = OptString(o, "rootTree").value_or("");
    rootMeta_ = OptString(o, "rootMeta").value_or("");
    if (!tree && !archive && !fromCommit && rootTree_.empty()) throw Napi::TypeError::New(env, "tree, archive, fromCommit or rootTree is required");
    if (tree) tree_ = *tree;
    if (archive) archive_ = *archive;
    if (fromCommit) fromCommit_ = *fromCommit;
    subject_ = OptString(o, "subject").value_or("");
    body_ = OptString(o, "body");
    parent_ = OptString(o, "parent");
    timestamp_ = static_cast<guint64>(OptInt(o, "timestamp", static_cast<int64_t>(g_get_real_time() / G_USEC_PER_SEC), 0,
                                              INT64_C(253402300799)));
    metadata_ = VariantRef(JsToVardict(env, o.Get("metadata")));
    filter_ = std::make_unique<CommitFilterData>();
    for (auto& p : OptStringArray(o, "skip")) filter_->skip.insert(p);
    filter_->uid = OptInt(o, "uid", -1, -1, G_MAXUINT32);
    filter_->gid = OptInt(o, "gid", -1, -1, G_MAXUINT32);
    flags_ = OSTREE_REPO_COMMIT_MODIFIER_FLAGS_NONE;
    if (OptBool(o, "canonicalPermissions", false))
      flags_ = static_cast<OstreeRepoCommitModifierFlags>(flags_ | OSTREE_REPO_COMMIT_MODIFIER_FLAGS_CANONICAL_PERMISSIONS);
    if (OptBool(o, "skipXattrs", false))
      flags_ = static_cast<OstreeRepoCommitModifierFlags>(flags_ | OSTREE_REPO_COMMIT_MODIFIER_FLAGS_SKIP_XATTRS);
    if (OptBool(o, "generateSizes", false))
      flags_ = static_cast<OstreeRepoCommitModifierFlags>(flags_ | OSTREE_REPO_COMMIT_MODIFIER_FLAGS_GENERATE_SIZES);
    OstreeRepoDevInoCache* cache = DevInoFrom(o.Get("devinoCache"));
    if (cache) {
      devino_ = ostree_repo_devino_cache_ref(cache);
      // On bare-user-only the devino cache only hits with this flag (LIBOSTREE.md), but on a
      // hit it skips the commit filter and permission canonicalisation: skip, owner and
      // canonicalPermissions would silently not apply. Those keep the slower, correct path.
      bool canonicalOnDisk = !(flags_ & OSTREE_REPO_COMMIT_MODIFIER_FLAGS_CANONICAL_PERMISSIONS) ||
                             ostree_repo_get_mode(repo()) == OSTREE_REPO_MODE_BARE_USER_ONLY;
      if (filter_->skip.empty() && filter_->uid < 0 && filter_->gid < 0 && canonicalOnDisk)
        flags_ = static_cast<OstreeRepoCommitModifierFlags>(flags_ | OSTREE_REPO_COMMIT_MODIFIER_FLAGS_DEVINO_CANONICAL);
    }
    archiveAutocreateParents_ = OptBool(o, "archiveAutocreateParents", true);
  }
  ~WriteCommitWorker() override {
    if (devino_) ostree_repo_devino_cache_unref(devino_);
  }

 protected:
  void Run() override {
    GError* err = nullptr;
    bool needFilter = !filter_->skip.empty() || filter_->uid >= 0 || filter_->gid >= 0;
    g_autoptr(OstreeRepoCommitModifier) modifier =
        ostree_repo_commit_modifier_new(flags_, needFilter ? CommitFilter : nullptr, filter_.get(), nullptr);
    if (devino_) ostree_repo_commit_modifier_set_devino_cache(modifier, devino_);
    g_autoptr(GFile) root = nullptr;
    if (!rootTree_.empty()) {
      // A tree already written as objects (the overlay engine's merge): nothing to read.
      g_autoptr(OstreeMutableTree) mtree = ostree_mutable_tree_new_from_checksum(repo(), rootTree_.c_str(), rootMeta_.c_str());
      if (!ostree_repo_write_mtree(repo(), mtree, &root, cancellable_, &err)) {
        Fail(err);
        return;
      }
    } else if (!fromCommit_.empty()) {
      // Same tree, new commit object (new metadata/parent): no content is read or written.
      if (!ostree_repo_read_commit(repo(), fromCommit_.c_str(), &root, nullptr, cancellable_, &err)) {
        Fail(err);
        return;
      }
    } else if (!WriteTree(modifier, &root, &err)) {
      Fail(err);
      return;
    }
    char* out = nullptr;
    if (!ostree_repo_write_commit_with_time(repo(), parent_ ? parent_->c_str() : nullptr, subject_.c_str(),
                                            body_ ? body_->c_str() : nullptr, metadata_.v, OSTREE_REPO_FILE(root), timestamp_,
                                            &out, cancellable_, &err)) {
      Fail(err);
      return;
    }
    checksum_ = out;
    g_free(out);
  }

  bool WriteTree(OstreeRepoCommitModifier* modifier, GFile** root, GError** errp) {
    GError*& err = *errp;
    g_autoptr(OstreeMutableTree) mtree = ostree_mutable_tree_new();
    if (!tree_.empty()) {
      // Overlay whiteouts (char 0:0) are legal extension content that libostree 2022.7
      // refuses: such a tree is committed from a hardlinked copy holding libostree's
      // `.ostree-wh.NAME` markers instead (restored by processPassthroughWhiteouts).
      if (devino_ == nullptr && !(flags_ & OSTREE_REPO_COMMIT_MODIFIER_FLAGS_GENERATE_SIZES)) {
        ParallelCommitOptions popts;
        popts.skip = &filter_->skip;
        popts.uid = filter_->uid;
        popts.gid = filter_->gid;
        popts.canonicalPermissions = flags_ & OSTREE_REPO_COMMIT_MODIFIER_FLAGS_CANONICAL_PERMISSIONS;
        popts.skipXattrs = flags_ & OSTREE_REPO_COMMIT_MODIFIER_FLAGS_SKIP_XATTRS;
        switch (WriteTreeParallel(repo(), tree_, mtree, popts, cancellable_, &err)) {
          case ParallelCommit::Done:
            return ostree_repo_write_mtree(repo(), mtree, root, cancellable_, &err);
          case ParallelCommit::Failed:
            return false;
          case ParallelCommit::Fallback:
            // Start again on a clean tree; the objects already written are valid and reused.
            g_clear_object(&mtree);
            mtree = ostree_mutable_tree_new();
            break;
        }
      }
      std::string shadow;
      if (!PrepareWhiteoutTree(repo(), tree_, &shadow, &err)) {
        RemoveTree(shadow);
        return false;
      }
      bool ok = ostree_repo_write_dfd_to_mtree(repo(), AT_FDCWD, shadow.empty() ? tree_.c_str() : shadow.c_str(), mtree, modifier, cancellable_, &err);
      RemoveTree(shadow);
      if (!ok) return false;
    } else {
      g_autoptr(GFile) f = g_file_new_for_path(archive_.c_str());
      // libostree opens and reads the archive itself (libarchive) from a GFile.
      if (!ostree_repo_write_archive_to_mtree(repo(), f, mtree, modifier, archiveAutocreateParents_, cancellable_, &err)) return false;
    }
    return ostree_repo_write_mtree(repo(), mtree, root, cancellable_, &err);
  }

  Napi::Value Result(Napi::Env env) override { return Napi::String::New(env, checksum_); }

 private:
  std::string tree_;
  std::string archive_;
  std::string fromCommit_;
  std::string rootTree_, rootMeta_;
  bool archiveAutocreateParents_ = true;
  std::string subject_;
  std::optional<std::string> body_;
  std::optional<std::string> parent_;
  guint64 timestamp_ = 0;
  VariantRef metadata_;
  std::unique_ptr<CommitFilterData> filter_;
  OstreeRepoCommitModifierFlags flags_;
  OstreeRepoDevInoCache* devino_ = nullptr;
  std::string checksum_;
};

// writeCommit({ tree | archive, subject, body, parent, timestamp, metadata, skip, uid, gid,
//   canonicalPermissions, skipXattrs, devinoCache }, cancellable) -> checksum.
// Must run inside a transaction (lib/ guarantees it).
Napi::Value Repo::WriteCommit(const Napi::CallbackInfo& info) {
  Napi::Object o = ArgObject(info, 0, "options");
  return (new WriteCommitWorker(info, this, o))->Start();
}

// writeDetachedMetadata(checksum, metadata|null, cancellable)
Napi::Value Repo::WriteDetachedMetadata(const Napi::CallbackInfo& info) {
  std::string checksum = ArgString(info, 0, "checksum");
  std::shared_ptr<VariantRef> meta = std::make_shared<VariantRef>();
  if (!info[1].IsNull() && !info[1].IsUndefined()) meta->v = JsToVardict(info.Env(), info[1]);
  return (new RepoCallWorker(info, "ostree-sysext:writeDetachedMetadata", this, info[2],
                             [checksum, meta](OstreeRepo* r, GCancellable* c, GError** err) {
                               return ostree_repo_write_commit_detached_metadata(r, checksum.c_str(), meta->v, c, err);
                             }))
      ->Start();
}

}  // namespace osx
