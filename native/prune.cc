// Prune: deletes unreachable objects, after validating every root libostree's walk will read.
#include "repo.h"

#include "args.h"
#include "objects.h"

namespace osx {

class PruneWorker : public RepoWorker {
 public:
  PruneWorker(const Napi::CallbackInfo& info, Repo* self, OstreeRepoPruneFlags flags, int depth)
      : RepoWorker(info, "ostree-sysext:prune", self, info[1]), flags_(flags), depth_(depth) {}

 protected:
  void Run() override {
    GError* err = nullptr;
    // libostree's prune walks every root's tree recursively and trusts what it reads: a
    // self-containing or damaged dirtree crashes it. Every root it will walk is validated
    // first; a damaged one refuses the prune (CORRUPT) before anything is deleted.
    if (!ValidateRoots(&err) ||
        !ostree_repo_prune(repo(), flags_, depth_, &total_, &pruned_, &freed_, cancellable_, &err))
      Fail(err);
  }
  gboolean ValidateRoots(GError** err) {
    ValidatedSet seen;
    g_autoptr(GHashTable) refs = nullptr;
    if (!ostree_repo_list_refs_ext(repo(), nullptr, &refs, OSTREE_REPO_LIST_REFS_EXT_NONE, cancellable_, err))
      return FALSE;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, refs);
    while (g_hash_table_iter_next(&it, &k, &v)) {
      if (!ValidateCommitGraph(repo(), static_cast<const char*>(v), depth_, false, &seen, cancellable_, err))
        return FALSE;
    }
    if (flags_ & OSTREE_REPO_PRUNE_FLAGS_REFS_ONLY) return TRUE;
    // Without refsOnly every commit object is a root too.
    g_autoptr(GHashTable) commits = nullptr;
    if (!ostree_repo_list_commit_objects_starting_with(repo(), "", &commits, cancellable_, err)) return FALSE;
    g_hash_table_iter_init(&it, commits);
    while (g_hash_table_iter_next(&it, &k, nullptr)) {
      const char* checksum = nullptr;
      OstreeObjectType objtype;
      ostree_object_name_deserialize(static_cast<GVariant*>(k), &checksum, &objtype);
      if (!ValidateCommitGraph(repo(), checksum, 0, false, &seen, cancellable_, err)) return FALSE;
    }
    return TRUE;
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("objectsTotal", total_);
    o.Set("objectsPruned", pruned_);
    o.Set("bytesFreed", Napi::Number::New(env, static_cast<double>(freed_)));
    return o;
  }

 private:
  OstreeRepoPruneFlags flags_;
  int depth_;
  gint total_ = 0, pruned_ = 0;
  guint64 freed_ = 0;
};

// prune({ refsOnly, noPrune, depth }, cancellable)
Napi::Value Repo::Prune(const Napi::CallbackInfo& info) {
  Napi::Object o = ArgObject(info, 0, "options");
  int flags = OSTREE_REPO_PRUNE_FLAGS_NONE;
  if (OptBool(o, "refsOnly", false)) flags |= OSTREE_REPO_PRUNE_FLAGS_REFS_ONLY;
  if (OptBool(o, "noPrune", false)) flags |= OSTREE_REPO_PRUNE_FLAGS_NO_PRUNE;
  int depth = static_cast<int>(OptInt(o, "depth", -1, -1, G_MAXINT32));
  return (new PruneWorker(info, this, static_cast<OstreeRepoPruneFlags>(flags), depth))->Start();
}

}  // namespace osx
