// Fsck: every ref's commit, its history and every object they reach, checked (and, unlike
// libostree's fsck, detached metadata too); problems reported as missing or corrupt.
#include "repo.h"

#include "objects.h"

#include <set>
#include <string>
#include <vector>

namespace osx {

struct FsckProblem {
  std::string checksum;
  std::string type;
  std::string message;
};

class FsckWorker : public RepoWorker {
 public:
  FsckWorker(const Napi::CallbackInfo& info, Repo* self) : RepoWorker(info, "ostree-sysext:fsck", self, info[0]) {}

 protected:
  void Run() override {
    GError* err = nullptr;
    g_autoptr(GHashTable) refs = nullptr;
    if (!ostree_repo_list_refs_ext(repo(), nullptr, &refs, OSTREE_REPO_LIST_REFS_EXT_NONE, cancellable_, &err)) {
      Fail(err);
      return;
    }
    g_autoptr(GHashTable) reachable = ostree_repo_traverse_new_reachable();
    std::set<std::string> seenCommits;
    ValidatedSet validated;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, refs);
    while (g_hash_table_iter_next(&it, &k, &v)) {
      const char* csum = static_cast<const char*>(v);
      if (!seenCommits.insert(csum).second) continue;
      // Partial commits (shallow or interrupted pulls) are legitimately incomplete.
      OstreeRepoCommitState state = OSTREE_REPO_COMMIT_STATE_NORMAL;
      g_autoptr(GVariant) commit = nullptr;
      if (!LoadValidMetadata(repo(), OSTREE_OBJECT_TYPE_COMMIT, csum, &commit, &err) ||
          !ostree_repo_load_commit(repo(), csum, nullptr, &state, &err)) {
        problems_.push_back({csum, "commit", err->message});
        if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) {
          missing_.push_back(problems_.size() - 1);
        } else {
          corrupt_.push_back(problems_.size() - 1);
          commits_++;
        }
        g_clear_error(&err);
        continue;
      }
      // Detached metadata (signatures) is not checked by libostree's fsck: a FIFO or garbage
      // in its place is reported here.
      if (!CheckDetachedMetadata(repo(), csum, &err) || !DetachedMetadataNormal(csum, &err)) {
        problems_.push_back({csum, "commitmeta", err->message});
        corrupt_.push_back(problems_.size() - 1);
        g_clear_error(&err);
      }
      if (state & OSTREE_REPO_COMMIT_STATE_PARTIAL) {
        partial_++;
        continue;
      }
      // libostree's traversal recurses without a bound and trusts what it reads (a dirtree
      // that contains itself never ends; a damaged one crashes it): the commit, its history
      // and every tree object are validated first, content objects checked to be files.
      if (!ValidateCommitGraph(repo(), csum, -1, true, &validated, cancellable_, &err)) {
        if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
          Fail(err);
          return;
        }
        problems_.push_back({csum, "commit", err->message});
        if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) missing_.push_back(problems_.size() - 1);
        else corrupt_.push_back(problems_.size() - 1);
        g_clear_error(&err);
        commits_++;
        continue;
      }
      if (!ostree_repo_traverse_commit_union(repo(), csum, -1, reachable, cancellable_, &err)) {
        if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
          Fail(err);
          return;
        }
        problems_.push_back({csum, "commit", std::string("traversal failed: ") + err->message});
        // A damaged dirtree fails the walk too; only NOT_FOUND means something is missing.
        if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) missing_.push_back(problems_.size() - 1);
        else corrupt_.push_back(problems_.size() - 1);
        g_clear_error(&err);
      }
      commits_++;
    }
    g_hash_table_iter_init(&it, reachable);
    while (g_hash_table_iter_next(&it, &k, nullptr)) {
      const char* checksum = nullptr;
      OstreeObjectType objtype;
      ostree_object_name_deserialize(static_cast<GVariant*>(k), &checksum, &objtype);
      objects_++;
      if (!ostree_repo_fsck_object(repo(), objtype, checksum, cancellable_, &err)) {
        if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
          Fail(err);
          return;
        }
        problems_.push_back({checksum, ostree_object_type_to_string(objtype), err->message});
        if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) missing_.push_back(problems_.size() - 1);
        else corrupt_.push_back(problems_.size() - 1);
        g_clear_error(&err);
      }
    }
  }
  gboolean DetachedMetadataNormal(const char* csum, GError** err) {
    g_autoptr(GVariant) meta = nullptr;
    if (!ostree_repo_read_commit_detached_metadata(repo(), csum, &meta, cancellable_, err)) return FALSE;
    if (!meta) return TRUE;
    g_autoptr(GBytes) bytes = g_variant_get_data_as_bytes(meta);
    g_autoptr(GVariant) untrusted = g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE_VARDICT, bytes, FALSE));
    if (g_variant_is_normal_form(untrusted)) return TRUE;
    SetCorrupt(err, OSTREE_OBJECT_TYPE_COMMIT_META, csum, "detached metadata is not in normal form");
    return FALSE;
  }
  Napi::Value ProblemsToJs(Napi::Env env, const std::vector<size_t>& idx) {
    Napi::Array a = Napi::Array::New(env, idx.size());
    for (size_t i = 0; i < idx.size(); i++) {
      const FsckProblem& p = problems_[idx[i]];
      Napi::Object o = Napi::Object::New(env);
      o.Set("checksum", p.checksum);
      o.Set("objectType", p.type);
      o.Set("message", p.message);
      a.Set(static_cast<uint32_t>(i), o);
    }
    return a;
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("commitsChecked", commits_);
    o.Set("partialCommits", partial_);
    o.Set("objectsChecked", objects_);
    o.Set("missing", ProblemsToJs(env, missing_));
    o.Set("corrupt", ProblemsToJs(env, corrupt_));
    return o;
  }

 private:
  std::vector<FsckProblem> problems_;
  std::vector<size_t> missing_, corrupt_;
  uint32_t commits_ = 0, partial_ = 0, objects_ = 0;
};

// fsck(cancellable) -> { commitsChecked, objectsChecked, missing[], corrupt[] }
Napi::Value Repo::Fsck(const Napi::CallbackInfo& info) { return (new FsckWorker(info, this))->Start(); }

}  // namespace osx
