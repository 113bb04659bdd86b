#include "repo.h"

#include "objects.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <list>
#include <unordered_map>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_set>

namespace osx {

// ---- handle lifetime ----

void Repo::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(
      env, "Repo",
      {
          StaticMethod<&Repo::Create>("create"),
          StaticMethod<&Repo::Open>("open"),
          InstanceMethod<&Repo::Close>("close"),
          InstanceAccessor<&Repo::IsClosed>("closed"),
          InstanceAccessor<&Repo::GetPath>("path"),
          InstanceAccessor<&Repo::GetMode>("mode"),
          InstanceMethod<&Repo::GetConfig>("getConfig"),
          InstanceMethod<&Repo::SetConfig>("setConfig"),
          InstanceMethod<&Repo::ListRefs>("listRefs"),
          InstanceMethod<&Repo::ResolveRev>("resolveRev"),
          InstanceMethod<&Repo::SetRefImmediate>("setRefImmediate"),
          InstanceMethod<&Repo::LoadCommits>("loadCommits"),
          InstanceMethod<&Repo::Query>("query"),
          InstanceMethod<&Repo::QueryMany>("queryMany"),
          InstanceMethod<&Repo::QuerySync>("querySync"),
          InstanceMethod<&Repo::ResolveRevSync>("resolveRevSync"),
          InstanceMethod<&Repo::PrepareTransaction>("prepareTransaction"),
          InstanceMethod<&Repo::CommitTransaction>("commitTransaction"),
          InstanceMethod<&Repo::AbortTransaction>("abortTransaction"),
          InstanceMethod<&Repo::TransactionSetRef>("transactionSetRef"),
          InstanceMethod<&Repo::WriteCommit>("writeCommit"),
          InstanceMethod<&Repo::Checkout>("checkout"),
          InstanceMethod<&Repo::Prune>("prune"),
          InstanceMethod<&Repo::Fsck>("fsck"),
          InstanceMethod<&Repo::WriteDetachedMetadata>("writeDetachedMetadata"),
          InstanceMethod<&Repo::RemoteAdd>("remoteAdd"),
          InstanceMethod<&Repo::RemoteDelete>("remoteDelete"),
          InstanceMethod<&Repo::RemoteList>("remoteList"),
          InstanceMethod<&Repo::RemoteGpgImport>("remoteGpgImport"),
          InstanceMethod<&Repo::RemoteListRefs>("remoteListRefs"),
          InstanceMethod<&Repo::RemoteFetchSummary>("remoteFetchSummary"),
          InstanceMethod<&Repo::Pull>("pull"),
          InstanceMethod<&Repo::SignCommit>("signCommit"),
          InstanceMethod<&Repo::VerifyCommit>("verifyCommit"),
          InstanceMethod<&Repo::RegenerateSummary>("regenerateSummary"),
          InstanceMethod<&Repo::GenerateDelta>("generateDelta"),
      });
  GetData(env)->repoConstructor = Napi::Persistent(ctor);
  exports.Set("Repo", ctor);
}

Repo::Repo(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Repo>(info) {}

Repo::~Repo() {
  if (repo_) g_object_unref(repo_);
}

Napi::Object Repo::NewInstance(Napi::Env env, OstreeRepo* repo) {
  Napi::Object obj = GetData(env)->repoConstructor.New({});
  Repo* self = Repo::Unwrap(obj);
  self->repo_ = static_cast<OstreeRepo*>(g_object_ref(repo));
  return obj;
}

OstreeRepo* Repo::Handle(Napi::Env env) const {
  if (!repo_) ThrowOstreeError(env, "CLOSED", "the repository handle is closed");
  return repo_;
}

Napi::Value Repo::Close(const Napi::CallbackInfo& info) {
  // Workers in flight hold their own references; dropping ours only ends new calls.
  if (repo_) {
    g_object_unref(repo_);
    repo_ = nullptr;
  }
  return info.Env().Undefined();
}

Napi::Value Repo::IsClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), repo_ == nullptr); }

Napi::Value Repo::GetPath(const Napi::CallbackInfo& info) {
  GFile* f = ostree_repo_get_path(Handle(info.Env()));
  g_autofree char* p = g_file_get_path(f);
  return Napi::String::New(info.Env(), p ? p : "");
}

static const char* ModeName(OstreeRepoMode mode) {
  switch (mode) {
    case OSTREE_REPO_MODE_BARE: return "bare";
    case OSTREE_REPO_MODE_ARCHIVE: return "archive";
    case OSTREE_REPO_MODE_BARE_USER: return "bare-user";
    case OSTREE_REPO_MODE_BARE_USER_ONLY: return "bare-user-only";
    default: return "bare-split-xattrs";
  }
}

Napi::Value Repo::GetMode(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), ModeName(ostree_repo_get_mode(Handle(info.Env()))));
}

// ---- create / open ----

class OpenWorker : public Worker {
 public:
  OpenWorker(Napi::Env env, std::string path, std::optional<std::string> mode, bool disableFsync, Napi::Value c)
      : Worker(env, "ostree-sysext:open", env.Undefined(), c),
        path_(std::move(path)),
        mode_(std::move(mode)),
        disableFsync_(disableFsync) {}
  ~OpenWorker() override {
    if (repo_) g_object_unref(repo_);
  }

 protected:
  void Run() override {
    GError* err = nullptr;
    if (mode_) {
      OstreeRepoMode mode;
      if (!ostree_repo_mode_from_string(mode_->c_str(), &mode, &err)) {
        Fail(err);
        return;
      }
      repo_ = ostree_repo_create_at(AT_FDCWD, path_.c_str(), mode, nullptr, cancellable_, &err);
    } else {
      repo_ = ostree_repo_open_at(AT_FDCWD, path_.c_str(), cancellable_, &err);
    }
    if (!repo_) {
      Fail(err);
      return;
    }
    if (disableFsync_) ostree_repo_set_disable_fsync(repo_, TRUE);
  }
  Napi::Value Result(Napi::Env env) override { return Repo::NewInstance(env, repo_); }

 private:
  std::string path_;
  std::optional<std::string> mode_;
  bool disableFsync_;
  OstreeRepo* repo_ = nullptr;
};

// create(path, mode, { disableFsync }, cancellable)
Napi::Value Repo::Create(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  std::string mode = ArgString(info, 1, "mode");
  Napi::Object opts = ArgObject(info, 2, "options");
  bool nofsync = OptBool(opts, "disableFsync", false);
  return (new OpenWorker(info.Env(), path, mode, nofsync, info[3]))->Start();
}

// open(path, { disableFsync }, cancellable)
Napi::Value Repo::Open(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  Napi::Object opts = ArgObject(info, 1, "options");
  bool nofsync = OptBool(opts, "disableFsync", false);
  return (new OpenWorker(info.Env(), path, std::nullopt, nofsync, info[2]))->Start();
}

// ---- a worker bound to one repo handle ----

class RepoWorker : public Worker {
 public:
  RepoWorker(const Napi::CallbackInfo& info, const char* name, Repo* self, Napi::Value cancellable)
      : Worker(info.Env(), name, info.This(), cancellable), repo_(self->Handle(info.Env())) {}

 protected:
  OstreeRepo* repo() const { return repo_.get(); }

 private:
  ObjectRef<OstreeRepo> repo_;
};

// A worker whose whole job is one call returning gboolean.
class SimpleWorker : public RepoWorker {
 public:
  using Fn = std::function<gboolean(OstreeRepo*, GCancellable*, GError**)>;
  SimpleWorker(const Napi::CallbackInfo& info, const char* name, Repo* self, Napi::Value c, Fn fn)
      : RepoWorker(info, name, self, c), fn_(std::move(fn)) {}

 protected:
  void Run() override {
    GError* err = nullptr;
    if (!fn_(repo(), cancellable_, &err)) Fail(err);
  }

 private:
  Fn fn_;
};

// ---- config ----

Napi::Value Repo::GetConfig(const Napi::CallbackInfo& info) {
  // The parsed config lives in memory: no disk access, so no thread hop.
  Napi::Env env = info.Env();
  GKeyFile* kf = ostree_repo_get_config(Handle(env));
  Napi::Object out = Napi::Object::New(env);
  gsize ngroups = 0;
  g_auto(GStrv) groups = g_key_file_get_groups(kf, &ngroups);
  for (gsize i = 0; i < ngroups; i++) {
    Napi::Object section = Napi::Object::New(env);
    gsize nkeys = 0;
    g_auto(GStrv) keys = g_key_file_get_keys(kf, groups[i], &nkeys, nullptr);
    for (gsize j = 0; j < nkeys; j++) {
      g_autofree char* value = g_key_file_get_value(kf, groups[i], keys[j], nullptr);
      if (value) section.Set(keys[j], value);
    }
    out.Set(groups[i], section);
  }
  return out;
}

// setConfig(section, key|null, value|null, cancellable): null value removes the key,
// null key removes the section.
Napi::Value Repo::SetConfig(const Napi::CallbackInfo& info) {
  std::string section = ArgString(info, 0, "section");
  std::optional<std::string> key = ArgOptString(info, 1, "key");
  std::optional<std::string> value = ArgOptString(info, 2, "value");
  return (new SimpleWorker(info, "ostree-sysext:setConfig", this, info[3],
                           [section, key, value](OstreeRepo* r, GCancellable*, GError** err) -> gboolean {
                             g_autoptr(GKeyFile) kf = ostree_repo_copy_config(r);
                             if (!key) {
                               g_key_file_remove_group(kf, section.c_str(), nullptr);
                             } else if (!value) {
                               g_key_file_remove_key(kf, section.c_str(), key->c_str(), nullptr);
                             } else {
                               g_key_file_set_value(kf, section.c_str(), key->c_str(), value->c_str());
                             }
                             return ostree_repo_write_config(r, kf, err);
                           }))
      ->Start();
}

// ---- refs ----

class ListRefsWorker : public RepoWorker {
 public:
  ListRefsWorker(const Napi::CallbackInfo& info, Repo* self, std::optional<std::string> prefix, bool remotes)
      : RepoWorker(info, "ostree-sysext:listRefs", self, info[2]), prefix_(std::move(prefix)), remotes_(remotes) {}
  ~ListRefsWorker() override {
    if (refs_) g_hash_table_unref(refs_);
  }

 protected:
  void Run() override {
    GError* err = nullptr;
    // _ext keeps full names (list_refs would strip the prefix).
    OstreeRepoListRefsExtFlags flags = remotes_ ? OSTREE_REPO_LIST_REFS_EXT_NONE : OSTREE_REPO_LIST_REFS_EXT_EXCLUDE_REMOTES;
    if (!ostree_repo_list_refs_ext(repo(), prefix_ ? prefix_->c_str() : nullptr, &refs_, flags, cancellable_, &err)) Fail(err);
  }
  Napi::Value Result(Napi::Env env) override { return StringTableToJs(env, refs_); }

 private:
  std::optional<std::string> prefix_;
  bool remotes_;
  GHashTable* refs_ = nullptr;
};

// listRefs(prefix|null, { remotes }, cancellable)
Napi::Value Repo::ListRefs(const Napi::CallbackInfo& info) {
  std::optional<std::string> prefix = ArgOptString(info, 0, "prefix");
  Napi::Object opts = ArgObject(info, 1, "options");
  bool remotes = OptBool(opts, "remotes", true);
  return (new ListRefsWorker(info, this, prefix, remotes))->Start();
}

// libostree tries an all-hex rev ("b", "cafe", "b^") as a partial commit checksum before it
// looks at refs, so a ref named "b" resolved to any commit whose checksum starts with b. Here
// a local ref of that name wins; otherwise libostree's rules apply.
static gboolean ResolveRefFirst(OstreeRepo* repo, const char* rev, gboolean allowNoent, char** out, GError** err) {
  std::string base(rev);
  size_t carets = 0;
  while (!base.empty() && base.back() == '^') {
    base.pop_back();
    carets++;
  }
  if (!base.empty() && base.size() < 64 && base.find_first_not_of("0123456789abcdef") == std::string::npos) {
    g_autoptr(GHashTable) refs = nullptr;
    if (!ostree_repo_list_refs_ext(repo, base.c_str(), &refs, OSTREE_REPO_LIST_REFS_EXT_EXCLUDE_REMOTES, nullptr, err)) return FALSE;
    const char* csum = static_cast<const char*>(g_hash_table_lookup(refs, base.c_str()));
    if (csum) {
      std::string full = std::string(csum) + std::string(carets, '^');
      return ostree_repo_resolve_rev_ext(repo, full.c_str(), allowNoent, OSTREE_REPO_RESOLVE_REV_EXT_NONE, out, err);
    }
  }
  return ostree_repo_resolve_rev_ext(repo, rev, allowNoent, OSTREE_REPO_RESOLVE_REV_EXT_NONE, out, err);
}

class ResolveWorker : public RepoWorker {
 public:
  ResolveWorker(const Napi::CallbackInfo& info, Repo* self, std::string rev, bool allowNoent)
      : RepoWorker(info, "ostree-sysext:resolveRev", self, info[2]), rev_(std::move(rev)), allowNoent_(allowNoent) {}

 protected:
  void Run() override {
    GError* err = nullptr;
    char* out = nullptr;
    if (!ResolveRefFirst(repo(), rev_.c_str(), allowNoent_, &out, &err)) {
      Fail(err);
      return;
    }
    if (out) {
      checksum_ = out;
      g_free(out);
    }
  }
  Napi::Value Result(Napi::Env env) override {
    if (!checksum_) return env.Null();
    return Napi::String::New(env, *checksum_);
  }

 private:
  std::string rev_;
  bool allowNoent_;
  std::optional<std::string> checksum_;
};

// resolveRev(rev, allowNoent, cancellable)
Napi::Value Repo::ResolveRev(const Napi::CallbackInfo& info) {
  std::string rev = ArgString(info, 0, "rev");
  bool allow = info.Length() > 1 && info[1].ToBoolean().Value();
  return (new ResolveWorker(info, this, rev, allow))->Start();
}

// setRefImmediate(remote|null, ref, checksum|null, cancellable): null checksum deletes.
Napi::Value Repo::SetRefImmediate(const Napi::CallbackInfo& info) {
  std::optional<std::string> remote = ArgOptString(info, 0, "remote");
  std::string ref = ArgString(info, 1, "ref");
  std::optional<std::string> checksum = ArgOptString(info, 2, "checksum");
  return (new SimpleWorker(info, "ostree-sysext:setRef", this, info[3],
                           [remote, ref, checksum](OstreeRepo* r, GCancellable* c, GError** err) {
                             return ostree_repo_set_ref_immediate(r, remote ? remote->c_str() : nullptr, ref.c_str(),
                                                                  checksum ? checksum->c_str() : nullptr, c, err);
                           }))
      ->Start();
}

// ---- commits ----

// libostree 2022.7 loads commits as trusted variants and reads their checksums unchecked, so a
// damaged commit crashes it (the CLI too): every path that walks a commit's tree checks it
// first (objects.h: hash, normal form, structure, not its own parent).


struct CommitInfo {
  std::string checksum;
  VariantRef commit;
  VariantRef detached;
  bool partial = false;
};

// A commit crosses as a row, [checksum, subject, body, timestamp, parent, version,
// contentChecksum, metadata, detachedMetadata, partial], that lib/ turns into the Commit
// object: indexed stores skip the per-key name lookups of eleven named properties, a third
// of a cached loadCommitSync (lib/native-contract.ts: NativeCommit).
static Napi::Array CommitToJs(Napi::Env env, const CommitInfo& ci) {
  GVariant* c = ci.commit.v;
  Napi::Array o = Napi::Array::New(env, 10);
  VariantRef meta(g_variant_get_child_value(c, 0));
  const char* subject = nullptr;
  const char* body = nullptr;
  g_variant_get_child(c, 3, "&s", &subject);
  g_variant_get_child(c, 4, "&s", &body);
  g_autofree char* parent = ostree_commit_get_parent(c);
  const char* version = nullptr;
  bool hasVersion = g_variant_lookup(meta.v, OSTREE_COMMIT_META_KEY_VERSION, "&s", &version);
  g_autofree char* contents = ostree_commit_get_content_checksum(c);
  o.Set(0u, Napi::String::New(env, ci.checksum));
  o.Set(1u, Napi::String::New(env, subject ? subject : ""));
  o.Set(2u, Napi::String::New(env, body ? body : ""));
  o.Set(3u, Napi::Number::New(env, static_cast<double>(ostree_commit_get_timestamp(c))));
  o.Set(4u, parent ? Napi::Value(Napi::String::New(env, parent)) : env.Null());
  o.Set(5u, hasVersion ? Napi::Value(Napi::String::New(env, version)) : env.Null());
  o.Set(6u, contents ? Napi::Value(Napi::String::New(env, contents)) : env.Null());
  o.Set(7u, VariantToJs(env, meta.v));
  o.Set(8u, VariantToJs(env, ci.detached.v));
  o.Set(9u, Napi::Boolean::New(env, ci.partial));
  return o;
}

class LoadCommitsWorker : public RepoWorker {
 public:
  LoadCommitsWorker(const Napi::CallbackInfo& info, Repo* self, std::string rev, int64_t max)
      : RepoWorker(info, "ostree-sysext:loadCommits", self, info[2]), rev_(std::move(rev)), max_(max) {}

 protected:
  void Run() override {
    GError* err = nullptr;
    g_autofree char* csum = nullptr;
    if (!ResolveRefFirst(repo(), rev_.c_str(), FALSE, &csum, &err)) {
      Fail(err);
      return;
    }
    std::string next = csum;
    // History is bounded: a revisited checksum is a parent cycle (only a damaged repository
    // has one), and no walk follows more than kMaxHistoryDepth parents.
    std::set<std::string> seen;
    while (!next.empty() && static_cast<int64_t>(commits_.size()) < max_) {
      if (seen.size() >= kMaxHistoryDepth) {
        truncated_ = true;  // longer than any walk follows: reported like a shallow history
        break;
      }
      if (!seen.insert(next).second) {
        SetCorrupt(&err, OSTREE_OBJECT_TYPE_COMMIT, next.c_str(), "parent cycle in history");
        Fail(err);
        return;
      }
      GVariant* commit = nullptr;
      OstreeRepoCommitState state = OSTREE_REPO_COMMIT_STATE_NORMAL;
      if (!LoadValidMetadata(repo(), OSTREE_OBJECT_TYPE_COMMIT, next.c_str(), &commit, &err) ||
          !ostree_repo_load_commit(repo(), next.c_str(), nullptr, &state, &err)) {
        // A missing parent is the end of the locally available history (shallow pull).
        if (!commits_.empty() && g_error_matches(err, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) {
          g_clear_error(&err);
          if (commit) g_variant_unref(commit);
          truncated_ = true;
          break;
        }
        if (commit) g_variant_unref(commit);
        Fail(err);
        return;
      }
      auto ci = std::make_unique<CommitInfo>();
      ci->checksum = next;
      ci->commit = VariantRef(commit);
      ci->partial = (state & OSTREE_REPO_COMMIT_STATE_PARTIAL) != 0;
      GVariant* detached = nullptr;
      if (!CheckDetachedMetadata(repo(), next.c_str(), &err) ||
          !ostree_repo_read_commit_detached_metadata(repo(), next.c_str(), &detached, cancellable_, &err)) {
        Fail(err);
        return;
      }
      ci->detached = VariantRef(detached);
      g_autofree char* parent = ostree_commit_get_parent(commit);
      next = parent ? parent : "";
      commits_.push_back(std::move(ci));
    }
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Array arr = Napi::Array::New(env, commits_.size());
    for (size_t i = 0; i < commits_.size(); i++) arr.Set(static_cast<uint32_t>(i), CommitToJs(env, *commits_[i]));
    Napi::Object out = Napi::Object::New(env);
    out.Set("commits", arr);
    out.Set("truncated", truncated_);
    return out;
  }

 private:
  std::string rev_;
  int64_t max_;
  std::vector<std::unique_ptr<CommitInfo>> commits_;
  bool truncated_ = false;
};

// loadCommits(rev, maxCount, cancellable) -> { commits, truncated }
Napi::Value Repo::LoadCommits(const Napi::CallbackInfo& info) {
  std::string rev = ArgString(info, 0, "rev");
  int64_t max = 1;
  if (info.Length() > 1 && info[1].IsNumber()) max = info[1].As<Napi::Number>().Int64Value();
  if (max < 1) throw Napi::RangeError::New(info.Env(), "maxCount must be >= 1");
  return (new LoadCommitsWorker(info, this, rev, max))->Start();
}

// writeDetachedMetadata(checksum, metadata|null, cancellable)
Napi::Value Repo::WriteDetachedMetadata(const Napi::CallbackInfo& info) {
  std::string checksum = ArgString(info, 0, "checksum");
  std::shared_ptr<VariantRef> meta = std::make_shared<VariantRef>();
  if (!info[1].IsNull() && !info[1].IsUndefined()) meta->v = JsToVardict(info.Env(), info[1]);
  return (new SimpleWorker(info, "ostree-sysext:writeDetachedMetadata", this, info[2],
                           [checksum, meta](OstreeRepo* r, GCancellable* c, GError** err) {
                             return ostree_repo_write_commit_detached_metadata(r, checksum.c_str(), meta->v, c, err);
                           }))
      ->Start();
}

// ---- reading inside a commit ----

struct Entry {
  std::string name;
  std::string path;
  std::string type;
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  std::string target;
  std::string checksum;
};

struct QueryOp {
  std::string op;  // stat | list | read | readlink | commit
  std::string path;
  bool optional = false;
  int64_t maxBytes = 0;
  // results
  bool missing = false;
  Entry entry;
  std::vector<Entry> children;
  std::vector<uint8_t> data;
  std::unique_ptr<CommitInfo> commit;
};

// One commit's reads in a query batch.
struct QueryRequest {
  std::string rev;
  std::vector<QueryOp> ops;
  std::string commit;  // resolved checksum
};

static std::string JoinPath(const std::string& dir, const char* name) {
  if (dir.empty() || dir == "/") return std::string("/") + name;
  return dir + "/" + name;
}

// Commit trees a handle has read (validated dirtrees kept), least recently used dropped
// first: repeated small reads in one commit load each directory once. Objects are
// content-addressed, so a kept tree stays right while the commit exists. Bounded by commits
// and by the directory entries the kept trees have loaded (measured: 24 MB of RSS for 60,000
// entries, so the bound keeps the cache near 26 MB; only the tree being read may exceed it).
struct TreeCache {
  static constexpr size_t kMaxCommits = 1024;
  static constexpr size_t kMaxEntries = 65536;
  std::mutex mu;
  using Item = std::pair<std::string, std::shared_ptr<CommitTree>>;
  std::list<Item> lru;  // most recent first
  std::unordered_map<std::string, std::list<Item>::iterator> index;
  void Drop(std::list<Item>::iterator i) {  // with mu held
    index.erase(i->first);
    lru.erase(i);
  }
  // Commits this handle has checked (objects.h), as the validated variants: objects are
  // content-addressed, so a commit that was whole when checked is the same commit on the next
  // read (MetadataObjectExists notices one pruned since). Every tree read checks its commit here
  // first (RunQueryRequest), so a pruned commit's tree is dropped here too.
  std::unordered_map<std::string, std::shared_ptr<VariantRef>> validCommits;
  bool CheckCommit(OstreeRepo* repo, const std::string& commit, GError** err, GVariant** out = nullptr) {
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = validCommits.find(commit);
      if (it != validCommits.end()) {
        if (MetadataObjectExists(repo, OSTREE_OBJECT_TYPE_COMMIT, commit.c_str())) {
          if (out) *out = g_variant_ref(it->second->v);
          return true;
        }
        // Pruned (by this handle or another process) since it was kept: forget it and its
        // tree, so the answer is the repository's, not the cache's.
        validCommits.erase(it);
        auto t = index.find(commit);
        if (t != index.end()) Drop(t->second);
      }
    }
    GVariant* v = nullptr;
    if (!LoadValidMetadata(repo, OSTREE_OBJECT_TYPE_COMMIT, commit.c_str(), &v, err)) return false;
    std::lock_guard<std::mutex> lock(mu);
    if (validCommits.size() >= 4096) validCommits.clear();
    validCommits[commit] = std::make_shared<VariantRef>(g_variant_ref(v));
    if (out) *out = v;
    else g_variant_unref(v);
    return true;
  }
  std::shared_ptr<CommitTree> Get(OstreeRepo* repo, const std::string& commit) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = index.find(commit);
    if (it != index.end()) {
      lru.splice(lru.begin(), lru, it->second);
    } else {
      auto v = validCommits.find(commit);
      lru.emplace_front(commit, OpenCommitTree(repo, commit, v != validCommits.end() ? v->second->v : nullptr));
      index[commit] = lru.begin();
    }
    std::shared_ptr<CommitTree> t = lru.front().second;
    // Trees grow after they are handed out (lazily loaded directories): weigh them now.
    size_t entries = 0;
    for (auto& i : lru) entries += CommitTreeEntries(*i.second);
    while (lru.size() > 1 && (lru.size() > kMaxCommits || entries > kMaxEntries)) {
      entries -= std::min(entries, CommitTreeEntries(*lru.back().second));
      Drop(std::prev(lru.end()));
    }
    return t;
  }
};

std::shared_ptr<TreeCache> Repo::Trees() {
  if (!trees_) trees_ = std::make_shared<TreeCache>();
  return trees_;
}

// Whether libostree marks the commit partial (state/CHECKSUM.commitpartial exists in this
// repository: what ostree_repo_load_commit reports as OSTREE_REPO_COMMIT_STATE_PARTIAL).
static bool CommitPartial(OstreeRepo* repo, const std::string& checksum, GError** err) {
  std::string rel = "state/" + checksum + ".commitpartial";
  struct stat st;
  if (fstatat(ostree_repo_get_dfd(repo), rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return true;
  if (errno != ENOENT) {
    int e = errno;
    g_set_error(err, G_IO_ERROR, g_io_error_from_errno(e), "%s: %s", rel.c_str(), g_strerror(e));
  }
  return false;
}

static bool LoadCommitInfo(OstreeRepo* repo, TreeCache& trees, const std::string& checksum, std::unique_ptr<CommitInfo>& out, GCancellable* c,
                           GError** err) {
  GVariant* commit = nullptr;
  // The validated variant the check kept: no second load of the same immutable object.
  if (!trees.CheckCommit(repo, checksum, err, &commit)) return false;
  out = std::make_unique<CommitInfo>();
  out->checksum = checksum;
  out->commit = VariantRef(commit);
  GError* perr = nullptr;
  out->partial = CommitPartial(repo, checksum, &perr);
  if (perr) {
    g_propagate_error(err, perr);
    return false;
  }
  GVariant* detached = nullptr;
  // A FIFO in place of the .commitmeta file would block libostree's open() forever.
  if (!CheckDetachedMetadata(repo, checksum.c_str(), err) ||
      !ostree_repo_read_commit_detached_metadata(repo, checksum.c_str(), &detached, c, err))
    return false;
  out->detached = VariantRef(detached);
  return true;
}

static void CopyTreeEntry(Entry& e, const CommitTreeEntry& t) {
  e.name = t.name;
  e.path = t.path;
  e.type = t.type;
  e.mode = t.mode;
  e.uid = t.uid;
  e.gid = t.gid;
  e.size = t.size;
  e.target = t.target;
  e.checksum = t.checksum;
}

// The reads of one commit: resolved and checked once, then every op through the cached tree.
static bool RunQueryRequest(OstreeRepo* repo, TreeCache& trees, QueryRequest& r, GCancellable* c, GError** errp) {
  GError* err = nullptr;
  g_autofree char* resolved = nullptr;
  std::unique_ptr<CommitInfo> loaded;
  bool wantCommit = std::any_of(r.ops.begin(), r.ops.end(), [](const QueryOp& op) { return op.op == "commit"; });
  if (!ResolveRefFirst(repo, r.rev.c_str(), FALSE, &resolved, &err) ||
      !(wantCommit ? LoadCommitInfo(repo, trees, resolved, loaded, c, &err) : trees.CheckCommit(repo, resolved, &err))) {
    g_propagate_error(errp, err);
    return false;
  }
  r.commit = resolved;
  std::shared_ptr<CommitTree> tree;
  for (QueryOp& op : r.ops) {
    if (g_cancellable_set_error_if_cancelled(c, errp)) return false;
    if (op.op == "commit") {
      op.commit = std::move(loaded);
      continue;
    }
    if (!tree) tree = trees.Get(repo, r.commit);
    CommitTreeEntry entry;
    std::vector<CommitTreeEntry> kids;
    std::string path = op.path.empty() ? "/" : op.path;
    if (!CommitTreeOp(*tree, op.op, path, op.maxBytes, &entry, &kids, &op.data, &err)) {
      if (op.optional && g_error_matches(err, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) {
        g_clear_error(&err);
        op.missing = true;
        continue;
      }
      g_prefix_error(&err, "%s: ", op.path.c_str());
      g_propagate_error(errp, err);
      return false;
    }
    CopyTreeEntry(op.entry, entry);
    op.entry.path = op.path;
    op.children.reserve(kids.size());
    for (auto& k : kids) {
      Entry e;
      CopyTreeEntry(e, k);
      e.path = JoinPath(op.path, k.name.c_str());
      op.children.push_back(std::move(e));
    }
  }
  return true;
}

static Napi::Value EntryToJs(Napi::Env env, const Entry& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", e.name);
  o.Set("path", e.path);
  o.Set("type", e.type);
  o.Set("mode", e.mode);
  o.Set("uid", e.uid);
  o.Set("gid", e.gid);
  o.Set("size", Napi::Number::New(env, static_cast<double>(e.size)));
  if (!e.target.empty()) o.Set("target", e.target);
  if (!e.checksum.empty()) o.Set("checksum", e.checksum);
  return o;
}

static Napi::Value QueryRequestToJs(Napi::Env env, QueryRequest& r) {
  Napi::Array results = Napi::Array::New(env, r.ops.size());
  for (size_t i = 0; i < r.ops.size(); i++) {
    QueryOp& op = r.ops[i];
    Napi::Value v;
    if (op.missing) {
      v = env.Null();
    } else if (op.op == "commit") {
      v = CommitToJs(env, *op.commit);
    } else if (op.op == "stat") {
      v = EntryToJs(env, op.entry);
    } else if (op.op == "readlink") {
      v = Napi::String::New(env, op.entry.target);
    } else if (op.op == "list") {
      Napi::Array a = Napi::Array::New(env, op.children.size());
      for (size_t j = 0; j < op.children.size(); j++) a.Set(static_cast<uint32_t>(j), EntryToJs(env, op.children[j]));
      v = a;
    } else {
      v = Napi::Buffer<uint8_t>::Copy(env, op.data.data(), op.data.size());
    }
    results.Set(static_cast<uint32_t>(i), v);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("commit", r.commit);
  out.Set("results", results);
  return out;
}

// Runs the reads of one or many commits in one thread hop; `many` answers with an array.
class QueryWorker : public RepoWorker {
 public:
  QueryWorker(const Napi::CallbackInfo& info, Repo* self, Napi::Value c, std::vector<QueryRequest> requests, bool many)
      : RepoWorker(info, "ostree-sysext:query", self, c), trees_(self->Trees()), requests_(std::move(requests)), many_(many) {}

 protected:
  void Run() override {
    for (QueryRequest& r : requests_) {
      GError* err = nullptr;
      if (!RunQueryRequest(repo(), *trees_, r, cancellable_, &err)) {
        if (many_) g_prefix_error(&err, "%s: ", r.rev.c_str());
        Fail(err);
        return;
      }
    }
  }

  Napi::Value Result(Napi::Env env) override {
    if (!many_) return QueryRequestToJs(env, requests_[0]);
    Napi::Array out = Napi::Array::New(env, requests_.size());
    for (size_t i = 0; i < requests_.size(); i++) out.Set(static_cast<uint32_t>(i), QueryRequestToJs(env, requests_[i]));
    return out;
  }

 private:
  std::shared_ptr<TreeCache> trees_;
  std::vector<QueryRequest> requests_;
  bool many_;
};

// query(rev, ops[{ op, path, optional, maxBytes }], cancellable) -> { commit, results }
// Batches many small reads into one thread hop (LIBOSTREE.md: a hop costs more than a read).
static std::vector<QueryOp> OpsFromJs(Napi::Env env, Napi::Value v);

Napi::Value Repo::Query(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<QueryRequest> requests(1);
  requests[0].rev = ArgString(info, 0, "rev");
  requests[0].ops = OpsFromJs(env, info.Length() < 2 ? env.Undefined() : info[1]);
  return (new QueryWorker(info, this, info[2], std::move(requests), false))->Start();
}

// querySync(rev, ops) -> { commit, results }: the same reads on the calling thread, for
// microsecond work (no thread hop; lib/ keeps big reads off this path).
Napi::Value Repo::QuerySync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OstreeRepo* repo = Handle(env);
  QueryRequest r;
  r.rev = ArgString(info, 0, "rev");
  r.ops = OpsFromJs(env, info.Length() < 2 ? env.Undefined() : info[1]);
  GError* err = nullptr;
  if (!RunQueryRequest(repo, *Trees(), r, nullptr, &err)) {
    ErrorInfo ei;
    ei.Take(err);
    throw Napi::Error(env, MakeError(env, ei));
  }
  return QueryRequestToJs(env, r);
}

// resolveRevSync(rev, allowNoent) -> checksum | null, on the calling thread.
Napi::Value Repo::ResolveRevSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OstreeRepo* repo = Handle(env);
  std::string rev = ArgString(info, 0, "rev");
  bool allowNoent = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
  g_autofree char* out = nullptr;
  GError* err = nullptr;
  if (!ResolveRefFirst(repo, rev.c_str(), allowNoent, &out, &err)) {
    ErrorInfo ei;
    ei.Take(err);
    throw Napi::Error(env, MakeError(env, ei));
  }
  return out ? Napi::Value(Napi::String::New(env, out)) : env.Null();
}

// queryMany([{ rev, ops }], cancellable) -> [{ commit, results }]: many commits, one thread hop.
Napi::Value Repo::QueryMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "requests must be an array");
  Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<QueryRequest> requests(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsObject()) throw Napi::TypeError::New(env, "each request must be an object");
    Napi::Object o = v.As<Napi::Object>();
    std::optional<std::string> rev = OptString(o, "rev");
    if (!rev) throw Napi::TypeError::New(env, "each request needs a rev");
    requests[i].rev = *rev;
    requests[i].ops = OpsFromJs(env, o.Get("ops"));
  }
  return (new QueryWorker(info, this, info[1], std::move(requests), true))->Start();
}

static std::vector<QueryOp> OpsFromJs(Napi::Env env, Napi::Value value) {
  if (!value.IsArray()) throw Napi::TypeError::New(env, "ops must be an array");
  Napi::Array arr = value.As<Napi::Array>();
  std::vector<QueryOp> ops;
  ops.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsObject()) throw Napi::TypeError::New(env, "each op must be an object");
    Napi::Object o = v.As<Napi::Object>();
    QueryOp op;
    op.op = OptString(o, "op").value_or("");
    if (op.op != "stat" && op.op != "list" && op.op != "read" && op.op != "readlink" && op.op != "commit") {
      throw Napi::TypeError::New(env, "op must be one of stat, list, read, readlink, commit");
    }
    op.path = OptString(o, "path").value_or("/");
    op.optional = OptBool(o, "optional", false);
    op.maxBytes = OptInt(o, "maxBytes", 0, 0, INT64_C(1) << 40);
    ops.push_back(std::move(op));
  }
  return ops;
}

// ---- transactions and commits ----

Napi::Value Repo::PrepareTransaction(const Napi::CallbackInfo& info) {
  return (new SimpleWorker(info, "ostree-sysext:prepareTransaction", this, info[0],
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
  return (new SimpleWorker(info, "ostree-sysext:abortTransaction", this, info.Env().Undefined(),
                           [](OstreeRepo* r, GCancellable*, GError** err) { return ostree_repo_abort_transaction(r, nullptr, err); }))
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

// ---- prune / fsck ----

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
