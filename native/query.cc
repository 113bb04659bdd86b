// Reads: commits (loadCommits, and the commit op) and the trees inside them (query,
// queryMany, querySync), through the handle's cache of validated commits and loaded trees.
#include "repo.h"

#include "args.h"
#include "error.h"
#include "objects.h"
#include "overlay.h"
#include "variant.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace osx {

// ---- the handle's cache ----

static std::string ContentChecksum(GVariant* commit) {
  g_autofree char* c = ostree_commit_get_content_checksum(commit);
  return c ? c : "";
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
    auto w = weights.find(i->first);
    if (w != weights.end()) {
      entries -= std::min(entries, w->second);
      weights.erase(w);
    }
    index.erase(i->first);
    lru.erase(i);
  }
  // Commits this handle has checked (objects.h), as the validated variants: objects are
  // content-addressed, so a commit that was whole when checked is the same commit on the next
  // read (MetadataObjectExists notices one pruned since). Every tree read checks its commit here
  // first (RunQueryRequest), so a pruned commit's tree is dropped here too.
  // With each, its content checksum (a SHA-256 over its root dirtree and dirmeta that
  // libostree computes on every call) once asked for.
  struct Checked {
    explicit Checked(GVariant* v) : commit(v) {}
    VariantRef commit;
    std::string contents;
  };
  std::unordered_map<std::string, std::shared_ptr<Checked>> validCommits;
  bool CheckCommit(OstreeRepo* repo, const std::string& commit, GError** err, GVariant** out = nullptr,
                   std::string* contents = nullptr) {
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = validCommits.find(commit);
      if (it != validCommits.end()) {
        if (MetadataObjectExists(repo, OSTREE_OBJECT_TYPE_COMMIT, commit.c_str())) {
          if (out) *out = g_variant_ref(it->second->commit.v);
          if (contents) {
            if (it->second->contents.empty()) it->second->contents = ContentChecksum(it->second->commit.v);
            *contents = it->second->contents;
          }
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
    auto checked = std::make_shared<Checked>(g_variant_ref(v));
    if (contents) *contents = checked->contents = ContentChecksum(v);
    validCommits[commit] = checked;
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
      lru.emplace_front(commit, OpenCommitTree(repo, commit, v != validCommits.end() ? v->second->commit.v : nullptr));
      index[commit] = lru.begin();
    }
    std::shared_ptr<CommitTree> t = lru.front().second;
    // Trees grow after they are handed out (lazily loaded directories). Each is weighed again
    // when it is handed out (a tree only grows while someone reads it), so the total is kept
    // without walking every kept tree on every read.
    Reweigh(commit, *t);
    return t;
  }
  // After a read: the tree may have loaded directories; weigh it again if still kept.
  void Weigh(const std::string& commit, const CommitTree& t) {
    std::lock_guard<std::mutex> lock(mu);
    if (index.count(commit)) Reweigh(commit, t);
  }
  // The directory entries each kept tree had loaded when last weighed, and their sum.
  std::unordered_map<std::string, size_t> weights;
  size_t entries = 0;
  // With mu held: records the tree's weight now, then drops the least recently used trees
  // (never the last one) until the cache is within its bounds.
  void Reweigh(const std::string& commit, const CommitTree& t) {
    size_t now = CommitTreeEntries(t);
    size_t& w = weights[commit];
    entries = entries - w + now;
    w = now;
    while (lru.size() > 1 && (lru.size() > kMaxCommits || entries > kMaxEntries)) Drop(std::prev(lru.end()));
  }
};

// cacheStats() -> { trees, entries, commits }: what the handle's caches hold now (the kept
// trees, the directory entries they have loaded, the checked commits), for tests of their bounds.
Napi::Value Repo::CacheStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<TreeCache> t = Trees();
  std::lock_guard<std::mutex> lock(t->mu);
  Napi::Object o = Napi::Object::New(env);
  o.Set("trees", static_cast<double>(t->lru.size()));
  o.Set("entries", static_cast<double>(t->entries));
  o.Set("commits", static_cast<double>(t->validCommits.size()));
  return o;
}

std::shared_ptr<TreeCache> Repo::Trees() {
  if (!trees_) trees_ = std::make_shared<TreeCache>();
  return trees_;
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
  std::string contents;  // content checksum, when the cache had it ("" computes it)
};

// A commit crosses as a row, [checksum, subject, body, timestamp, parent, version,
// contentChecksum, metadata, detachedMetadata, partial], that lib/ turns into the Commit
// object: indexed stores skip the per-key name lookups of eleven named properties, a third
// of a cached loadCommitSync (NativeCommit in lib/'s native-contract.ts).
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
  std::string contents = ci.contents.empty() ? ContentChecksum(c) : ci.contents;
  o.Set(0u, Napi::String::New(env, ci.checksum));
  o.Set(1u, Napi::String::New(env, subject ? subject : ""));
  o.Set(2u, Napi::String::New(env, body ? body : ""));
  o.Set(3u, Napi::Number::New(env, static_cast<double>(ostree_commit_get_timestamp(c))));
  o.Set(4u, parent ? Napi::Value(Napi::String::New(env, parent)) : env.Null());
  o.Set(5u, hasVersion ? Napi::Value(Napi::String::New(env, version)) : env.Null());
  o.Set(6u, !contents.empty() ? Napi::Value(Napi::String::New(env, contents)) : env.Null());
  o.Set(7u, VariantToJs(env, meta.v));
  o.Set(8u, VariantToJs(env, ci.detached.v));
  o.Set(9u, Napi::Boolean::New(env, ci.partial));
  return o;
}

// Whether the commit is marked partial, as ostree_repo_load_commit reports it:
// state/CHECKSUM.commitpartial in the repository that holds the commit loose (this one or a
// parent; this one when the commit is only staged). Looked up with fstatat, never opened.
static bool CommitPartial(OstreeRepo* repo, const std::string& checksum, GError** err) {
  // Only a repository with a parent (core.parent) can hold the commit elsewhere: the common
  // case costs one fstatat, as libostree's own check does.
  OstreeRepo* holder = ostree_repo_get_parent(repo) ? MetadataObjectHolder(repo, OSTREE_OBJECT_TYPE_COMMIT, checksum.c_str()) : repo;
  std::string rel = "state/" + checksum + ".commitpartial";
  struct stat st;
  if (fstatat(ostree_repo_get_dfd(holder ? holder : repo), rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return true;
  if (errno != ENOENT) {
    int e = errno;
    g_set_error(err, G_IO_ERROR, g_io_error_from_errno(e), "%s: %s", rel.c_str(), g_strerror(e));
  }
  return false;
}

// A commit as every read returns it: the validated variant (objects.h), its partial state and
// its detached metadata. With `trees`, validation goes through the handle's cache (the reads
// of query); a history walk passes none, so a long log neither uses nor flushes it.
static bool LoadCommitInfo(OstreeRepo* repo, TreeCache* trees, const std::string& checksum, std::unique_ptr<CommitInfo>& out,
                           GCancellable* c, GError** err) {
  GVariant* commit = nullptr;
  std::string contents;
  if (trees ? !trees->CheckCommit(repo, checksum, err, &commit, &contents)
            : !LoadValidMetadata(repo, OSTREE_OBJECT_TYPE_COMMIT, checksum.c_str(), &commit, err))
    return false;
  out = std::make_unique<CommitInfo>();
  out->contents = std::move(contents);
  out->checksum = checksum;
  out->commit = VariantRef(commit);
  GError* perr = nullptr;
  out->partial = CommitPartial(repo, checksum, &perr);
  if (perr) {
    g_propagate_error(err, perr);
    return false;
  }
  GVariant* detached = nullptr;
  // Never libostree's open() alone: a FIFO in place of the .commitmeta file would block it forever.
  if (!ReadDetachedMetadata(repo, checksum.c_str(), &detached, c, err)) return false;
  out->detached = VariantRef(detached);
  return true;
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
      std::unique_ptr<CommitInfo> ci;
      if (!LoadCommitInfo(repo(), nullptr, next, ci, cancellable_, &err)) {
        // A missing parent is the end of the locally available history (shallow pull).
        if (!commits_.empty() && g_error_matches(err, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) {
          g_clear_error(&err);
          truncated_ = true;
          break;
        }
        Fail(err);
        return;
      }
      g_autofree char* parent = ostree_commit_get_parent(ci->commit.v);
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

// ---- reads inside a commit ----

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
  // queryBatch only: resolve the rev and nothing else (resolveRev's answer: the commit need
  // not be present), a missing ref answering null with allowMissing.
  bool resolveOnly = false;
  bool allowMissing = false;
  bool missing = false;  // resolveOnly + allowMissing: no such ref
  ErrorInfo error;       // queryBatch only: this request's failure
};

static std::string JoinPath(const std::string& dir, const char* name) {
  if (dir.empty() || dir == "/") return std::string("/") + name;
  return dir + "/" + name;
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
      !(wantCommit ? LoadCommitInfo(repo, &trees, resolved, loaded, c, &err) : trees.CheckCommit(repo, resolved, &err))) {
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
  if (tree) trees.Weigh(r.commit, *tree);
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

// Runs the reads of one or many commits in one thread hop. kOne answers with one result, kMany
// with an array and fails as a whole, kBatch with an array of results and per-request errors
// (lib/'s read batcher: requests from unrelated calls, each answered on its own).
enum class QueryMode { kOne, kMany, kBatch };

class QueryWorker : public RepoWorker {
 public:
  QueryWorker(const Napi::CallbackInfo& info, Repo* self, Napi::Value c, std::vector<QueryRequest> requests, QueryMode mode)
      : RepoWorker(info, "ostree-sysext:query", self, c), trees_(self->Trees()), requests_(std::move(requests)), mode_(mode) {}

 protected:
  void Run() override {
    for (QueryRequest& r : requests_) {
      GError* err = nullptr;
      if (mode_ == QueryMode::kBatch) {
        if (!RunBatchRequest(r, &err)) r.error.Take(err);
        continue;
      }
      if (!RunQueryRequest(repo(), *trees_, r, cancellable_, &err)) {
        if (mode_ == QueryMode::kMany) g_prefix_error(&err, "%s: ", r.rev.c_str());
        Fail(err);
        return;
      }
    }
  }

  // A queryBatch request: resolve-only (resolveRev's answer) or a whole query.
  bool RunBatchRequest(QueryRequest& r, GError** err) {
    if (!r.resolveOnly) return RunQueryRequest(repo(), *trees_, r, cancellable_, err);
    g_autofree char* out = nullptr;
    if (!ResolveRefFirst(repo(), r.rev.c_str(), r.allowMissing, &out, err)) return false;
    if (out) r.commit = out;
    else r.missing = true;
    return true;
  }

  Napi::Value Result(Napi::Env env) override {
    if (mode_ == QueryMode::kOne) return QueryRequestToJs(env, requests_[0]);
    Napi::Array out = Napi::Array::New(env, requests_.size());
    for (size_t i = 0; i < requests_.size(); i++) {
      QueryRequest& r = requests_[i];
      Napi::Value v;
      if (mode_ == QueryMode::kBatch && r.error.set) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("error", MakeError(env, r.error));
        v = o;
      } else if (r.resolveOnly) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("commit", r.missing ? env.Null() : Napi::Value(Napi::String::New(env, r.commit)));
        v = o;
      } else {
        v = QueryRequestToJs(env, r);
      }
      out.Set(static_cast<uint32_t>(i), v);
    }
    return out;
  }

 private:
  std::shared_ptr<TreeCache> trees_;
  std::vector<QueryRequest> requests_;
  QueryMode mode_;
};

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

// query(rev, ops[{ op, path, optional, maxBytes }], cancellable) -> { commit, results }
// Batches many small reads into one thread hop (LIBOSTREE.md: a hop costs more than a read).
Napi::Value Repo::Query(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<QueryRequest> requests(1);
  requests[0].rev = ArgString(info, 0, "rev");
  requests[0].ops = OpsFromJs(env, info.Length() < 2 ? env.Undefined() : info[1]);
  return (new QueryWorker(info, this, info[2], std::move(requests), QueryMode::kOne))->Start();
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
  if (!RunQueryRequest(repo, *Trees(), r, nullptr, &err)) ThrowGError(env, err);
  return QueryRequestToJs(env, r);
}

static std::vector<QueryRequest> RequestsFromJs(Napi::Env env, Napi::Value value, bool batch) {
  if (!value.IsArray()) throw Napi::TypeError::New(env, "requests must be an array");
  Napi::Array arr = value.As<Napi::Array>();
  std::vector<QueryRequest> requests(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsObject()) throw Napi::TypeError::New(env, "each request must be an object");
    Napi::Object o = v.As<Napi::Object>();
    std::optional<std::string> rev = OptString(o, "rev");
    if (!rev) throw Napi::TypeError::New(env, "each request needs a rev");
    requests[i].rev = *rev;
    if (batch) {
      requests[i].resolveOnly = OptBool(o, "resolveOnly", false);
      requests[i].allowMissing = OptBool(o, "allowMissing", false);
    }
    if (!requests[i].resolveOnly) requests[i].ops = OpsFromJs(env, o.Get("ops"));
  }
  return requests;
}

// queryMany([{ rev, ops }], cancellable) -> [{ commit, results }]: many commits, one thread hop.
Napi::Value Repo::QueryMany(const Napi::CallbackInfo& info) {
  std::vector<QueryRequest> requests = RequestsFromJs(info.Env(), info.Length() < 1 ? info.Env().Undefined() : info[0], false);
  return (new QueryWorker(info, this, info[1], std::move(requests), QueryMode::kMany))->Start();
}

// queryBatch([{ rev, ops } | { rev, resolveOnly: true, allowMissing }]) ->
// [{ commit, results } | { commit } | { error }]: unrelated requests in one thread hop, each
// answered or failed on its own; not cancellable (lib/ settles an aborted caller itself).
Napi::Value Repo::QueryBatch(const Napi::CallbackInfo& info) {
  std::vector<QueryRequest> requests = RequestsFromJs(info.Env(), info.Length() < 1 ? info.Env().Undefined() : info[0], true);
  return (new QueryWorker(info, this, info.Env().Undefined(), std::move(requests), QueryMode::kBatch))->Start();
}

}  // namespace osx
