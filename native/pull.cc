// Pull: ostree_repo_pull_with_options on a dedicated thread, into a fresh OstreeRepo handle,
// under its own pushed GMainContext, with coalesced progress snapshots posted to JS.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <mutex>

#include "args.h"
#include "cancel.h"
#include "error.h"
#include "objects.h"
#include "refs.h"
#include "repo.h"

namespace osx {

// One progress reading; plain data so it can cross threads.
struct PullSnapshot {
  guint fetched = 0;
  guint requested = 0;
  guint scannedMetadata = 0;
  guint metadataFetched = 0;
  guint outstandingFetches = 0;
  guint outstandingWrites = 0;
  guint fetchedDeltaParts = 0;
  guint totalDeltaParts = 0;
  guint64 bytesTransferred = 0;
  guint64 fetchedDeltaPartSize = 0;
  guint64 totalDeltaPartSize = 0;
  guint64 startTime = 0;  // monotonic µs, as libostree records it
  bool scanning = false;
  std::string status;
  bool done = false;
};

static guint GetUint(OstreeAsyncProgress* p, const char* key) {
  g_autoptr(GVariant) v = ostree_async_progress_get_variant(p, key);
  return v && g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32) ? g_variant_get_uint32(v) : 0;
}

static guint64 GetUint64(OstreeAsyncProgress* p, const char* key) {
  g_autoptr(GVariant) v = ostree_async_progress_get_variant(p, key);
  return v && g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64) ? g_variant_get_uint64(v) : 0;
}

// _get_variant, not _get: the latter asserts on keys the pull has not set yet.
static PullSnapshot Read(OstreeAsyncProgress* p) {
  PullSnapshot s;
  s.fetched = GetUint(p, "fetched");
  s.requested = GetUint(p, "requested");
  s.scannedMetadata = GetUint(p, "scanned-metadata");
  s.metadataFetched = GetUint(p, "metadata-fetched");
  s.outstandingFetches = GetUint(p, "outstanding-fetches");
  s.outstandingWrites = GetUint(p, "outstanding-writes");
  s.fetchedDeltaParts = GetUint(p, "fetched-delta-parts");
  s.totalDeltaParts = GetUint(p, "total-delta-parts");
  s.bytesTransferred = GetUint64(p, "bytes-transferred");
  s.fetchedDeltaPartSize = GetUint64(p, "fetched-delta-part-size");
  s.totalDeltaPartSize = GetUint64(p, "total-delta-part-size");
  s.startTime = GetUint64(p, "start-time");
  s.scanning = GetUint(p, "scanning") != 0;
  g_autofree char* status = ostree_async_progress_get_status(p);
  if (status) s.status = status;
  return s;
}

static Napi::Object SnapshotToJs(Napi::Env env, const PullSnapshot& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("fetched", s.fetched);
  o.Set("requested", s.requested);
  o.Set("scannedMetadata", s.scannedMetadata);
  o.Set("metadataFetched", s.metadataFetched);
  o.Set("outstandingFetches", s.outstandingFetches);
  o.Set("outstandingWrites", s.outstandingWrites);
  o.Set("fetchedDeltaParts", s.fetchedDeltaParts);
  o.Set("totalDeltaParts", s.totalDeltaParts);
  o.Set("bytesTransferred", Napi::Number::New(env, static_cast<double>(s.bytesTransferred)));
  o.Set("fetchedDeltaPartSize", Napi::Number::New(env, static_cast<double>(s.fetchedDeltaPartSize)));
  o.Set("totalDeltaPartSize", Napi::Number::New(env, static_cast<double>(s.totalDeltaPartSize)));
  o.Set("scanning", s.scanning);
  o.Set("status", s.status);
  o.Set("done", s.done);
  return o;
}

static void AddBool(GVariantBuilder* b, Napi::Object o, const char* jsKey, const char* key) {
  Napi::Value v = o.Get(jsKey);
  if (v.IsUndefined() || v.IsNull()) return;
  g_variant_builder_add(b, "{sv}", key, g_variant_new_boolean(OptBool(o, jsKey, false)));
}

static void AddStrv(GVariantBuilder* b, const char* key, const std::vector<std::string>& items) {
  std::vector<const char*> ptrs;
  for (auto& s : items) ptrs.push_back(s.c_str());
  g_variant_builder_add(b, "{sv}", key, g_variant_new_strv(ptrs.data(), static_cast<gssize>(ptrs.size())));
}

// The a{sv} that ostree_repo_pull_with_options reads (option names as in libostree 2022.7).
static GVariant* PullOptionsVariant(Napi::Env env, Napi::Object o, guint updateFrequency) {
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
  try {
    Napi::Value refs = o.Get("refs");
    if (!refs.IsUndefined() && !refs.IsNull()) AddStrv(&b, "refs", OptStringArray(o, "refs"));
    Napi::Value ids = o.Get("overrideCommitIds");
    if (!ids.IsUndefined() && !ids.IsNull()) AddStrv(&b, "override-commit-ids", OptStringArray(o, "overrideCommitIds"));
    int flags = OSTREE_REPO_PULL_FLAGS_NONE;
    if (OptBool(o, "mirror", false)) flags |= OSTREE_REPO_PULL_FLAGS_MIRROR;
    if (OptBool(o, "commitOnly", false)) flags |= OSTREE_REPO_PULL_FLAGS_COMMIT_ONLY;
    if (OptBool(o, "untrusted", false)) flags |= OSTREE_REPO_PULL_FLAGS_UNTRUSTED;
    g_variant_builder_add(&b, "{sv}", "flags", g_variant_new_int32(flags));
    Napi::Value depth = o.Get("depth");
    if (!depth.IsUndefined() && !depth.IsNull()) {
      g_variant_builder_add(&b, "{sv}", "depth", g_variant_new_int32(static_cast<gint32>(OptInt(o, "depth", 0, -1, G_MAXINT32))));
    }
    if (auto url = OptString(o, "overrideUrl")) g_variant_builder_add(&b, "{sv}", "override-url", g_variant_new_string(url->c_str()));
    if (auto rn = OptString(o, "overrideRemoteName")) {
      g_variant_builder_add(&b, "{sv}", "override-remote-name", g_variant_new_string(rn->c_str()));
    }
    AddBool(&b, o, "gpgVerify", "gpg-verify");
    AddBool(&b, o, "gpgVerifySummary", "gpg-verify-summary");
    AddBool(&b, o, "disableStaticDeltas", "disable-static-deltas");
    AddBool(&b, o, "requireStaticDeltas", "require-static-deltas");
    AddBool(&b, o, "timestampCheck", "timestamp-check");
    Napi::Value retries = o.Get("networkRetries");
    if (!retries.IsUndefined() && !retries.IsNull()) {
      g_variant_builder_add(&b, "{sv}", "n-network-retries",
                            g_variant_new_uint32(static_cast<guint32>(OptInt(o, "networkRetries", 0, 0, 1000))));
    }
    Napi::Value headers = o.Get("httpHeaders");
    if (headers.IsObject()) {
      Napi::Object h = headers.As<Napi::Object>();
      Napi::Array keys = h.GetPropertyNames();
      GVariantBuilder hb;
      g_variant_builder_init(&hb, G_VARIANT_TYPE("a(ss)"));
      for (uint32_t i = 0; i < keys.Length(); i++) {
        std::string k = keys.Get(i).ToString().Utf8Value();
        Napi::Value v = h.Get(k);
        if (!v.IsString()) {
          g_variant_builder_clear(&hb);
          throw Napi::TypeError::New(env, "httpHeaders values must be strings");
        }
        g_variant_builder_add(&hb, "(ss)", k.c_str(), v.As<Napi::String>().Utf8Value().c_str());
      }
      g_variant_builder_add(&b, "{sv}", "http-headers", g_variant_builder_end(&hb));
    }
    g_variant_builder_add(&b, "{sv}", "update-frequency", g_variant_new_uint32(updateFrequency));
  } catch (...) {
    g_variant_builder_clear(&b);
    throw;
  }
  return g_variant_ref_sink(g_variant_builder_end(&b));
}

// Why: libostree's fetcher keeps reading a response that is still arriving after the pull is
// cancelled (it looks at the cancellable between requests), so an endless object held a
// cancelled pull for tens of seconds. The pull's own main context lists the descriptors its
// fetcher polls; once cancelled, the sockets among them are shut down, the request fails,
// and the pull returns CANCELLED. Runs on the pull thread, from the progress timer.
static void ShutdownContextSockets(GMainContext* ctx) {
  GPollFD fds[128];
  gint timeout = 0;
  gint n = g_main_context_query(ctx, G_MAXINT, &timeout, fds, G_N_ELEMENTS(fds));
  for (gint i = 0; i < n && i < static_cast<gint>(G_N_ELEMENTS(fds)); i++) {
    struct stat st;
    if (fds[i].fd < 0 || fstat(fds[i].fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    // Linger 0: the close that follows resets the connection. A plain shutdown left a server
    // whose send window was full probing a half-closed peer for about 100 s.
    struct linger abortive = {1, 0};
    setsockopt(fds[i].fd, SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive);
    shutdown(fds[i].fd, SHUT_RDWR);
  }
}

class PullWorker : public DedicatedRepoWorker {
 public:
  PullWorker(const Napi::CallbackInfo& info, Repo* self, Napi::Object o)
      : DedicatedRepoWorker(info, "ostree-sysext:pull", self, info[1]) {
    Napi::Env env = info.Env();
    std::optional<std::string> remote = OptString(o, "remote");
    if (!remote || remote->empty()) throw Napi::TypeError::New(env, "remote is required");
    remote_ = *remote;
    g_autofree char* path = g_file_get_path(ostree_repo_get_path(repo()));
    path_ = path ? path : "";
    disableFsync_ = ostree_repo_get_disable_fsync(repo());
    guint frequency = static_cast<guint>(OptInt(o, "updateFrequencyMs", 100, 10, 60000));
    options_ = VariantRef(PullOptionsVariant(env, o, frequency));
    maxBytes_ = static_cast<guint64>(OptInt(o, "maxBytes", 0, 0, INT64_MAX));
    maxObjectBytes_ = static_cast<guint64>(OptInt(o, "maxObjectBytes", 0, 0, INT64_MAX));
    Napi::Value cb = o.Get("onProgress");
    if (cb.IsFunction()) onProgress_ = Napi::Persistent(cb.As<Napi::Function>());
    else if (!cb.IsUndefined() && !cb.IsNull()) throw Napi::TypeError::New(env, "onProgress must be a function");
  }

 protected:
  void Run() override {
    GError* err = nullptr;
    // A fresh handle per pull: two pulls through one OstreeRepo abort each other's transaction.
    g_autoptr(OstreeRepo) fresh = ostree_repo_open_at(AT_FDCWD, path_.c_str(), cancellable_, &err);
    if (!fresh) {
      Fail(err);
      return;
    }
    if (disableFsync_) ostree_repo_set_disable_fsync(fresh, TRUE);
    // A local (file://) source is read by libostree without the checks a network pull
    // makes: a damaged dirtree crashed it, a FIFO hung it. What will be pulled is
    // validated first (objects.h).
    ValidatedSet seen;
    g_autoptr(OstreeRepo) source = nullptr;
    if (!ValidateLocalSource(fresh, &seen, &source, &err)) {
      Fail(err);
      return;
    }
    if (source) prelinked_ = Prelink(source, fresh, seen);
    PushedContext ctx;
    context_ = ctx.get();
    CancelBreaker breaker(cancellable_);
    // Created after the push: the progress object binds to the thread-default context.
    OstreeAsyncProgress* progress = ostree_async_progress_new_and_connect(&PullWorker::OnChanged, this);
    // The budgets are checked by a timer of our own at high priority: the progress object's
    // "changed" runs from an idle source, which a socket that is always readable (a stream
    // arriving at loopback speed) starved for seconds while gigabytes arrived.
    progress_ = progress;
    GSource* watch = g_timeout_source_new(kBudgetTickMs);
    g_source_set_priority(watch, G_PRIORITY_HIGH);
    g_source_set_callback(watch, &PullWorker::OnBudgetTick, this, nullptr);
    g_source_attach(watch, context_);
    gboolean ok = ostree_repo_pull_with_options(fresh, remote_.c_str(), options_.v, progress, cancellable_, &err);
    g_source_destroy(watch);
    g_source_unref(watch);
    progress_ = nullptr;
    ostree_async_progress_finish(progress);
    PullSnapshot last = Read(progress);
    g_object_unref(progress);
    last.done = true;
    // libostree's status counts only what it imported itself.
    if (prelinked_ > 0) last.status += (last.status.empty() ? "" : "; ") + std::to_string(prelinked_) + " content objects linked before the pull";
    Publish(last);
    if (!ok && overBudget_.load() == kPullBudget) {
      g_clear_error(&err);
      g_set_error(&err, BindingErrorQuark(), BINDING_ERROR_LIMIT,
                  "received %" G_GUINT64_FORMAT " bytes, more than the pull's budget of %" G_GUINT64_FORMAT " (maxBytes); cancelled",
                  last.bytesTransferred, maxBytes_);
    } else if (!ok && overBudget_.load() == kObjectBudget) {
      g_clear_error(&err);
      g_set_error(&err, BindingErrorQuark(), BINDING_ERROR_LIMIT,
                  "received %" G_GUINT64_FORMAT " bytes while no object completed (%u being fetched), more than maxObjectBytes (%" G_GUINT64_FORMAT
                  ") each; cancelled",
                  overObjectBytes_, overObjectFetches_, maxObjectBytes_);
    }
    if (!ok) Fail(err);
  }

  Napi::Value Result(Napi::Env env) override {
    std::lock_guard<std::mutex> lock(mu_);
    return SnapshotToJs(env, latest_);
  }

  // Validates what a pull from a local (file://) source will read; `*sourceOut` is the source
  // repository when there is one.
  gboolean ValidateLocalSource(OstreeRepo* dest, ValidatedSet* seen, OstreeRepo** sourceOut, GError** err) {
    const char* overrideUrl = nullptr;
    g_autofree char* configured = nullptr;
    std::string url;
    if (g_variant_lookup(options_.v, "override-url", "&s", &overrideUrl)) url = overrideUrl;
    else if (g_str_has_prefix(remote_.c_str(), "file://")) url = remote_;
    else if (ostree_repo_remote_get_url(dest, remote_.c_str(), &configured, nullptr)) url = configured;
    if (!g_str_has_prefix(url.c_str(), "file://")) return TRUE;
    g_autoptr(GFile) f = g_file_new_for_uri(url.c_str());
    g_autofree char* path = g_file_get_path(f);
    if (!path) return TRUE;
    g_autoptr(OstreeRepo) src = ostree_repo_open_at(AT_FDCWD, path, cancellable_, nullptr);
    if (!src) return TRUE;  // not a repository: libostree's pull reports it
    gint32 depth = 0, flags = 0;
    g_variant_lookup(options_.v, "depth", "i", &depth);
    g_variant_lookup(options_.v, "flags", "i", &flags);
    std::vector<std::string> revs;
    g_autofree const char** refs = nullptr;
    g_autofree const char** ids = nullptr;
    // Exact commits (the library always names them): those are what libostree pulls, even if a
    // ref in the source has moved since they were resolved.
    if (g_variant_lookup(options_.v, "override-commit-ids", "^a&s", &ids) && ids) {
      for (const char** r = ids; *r; r++) revs.push_back(*r);
    } else if (g_variant_lookup(options_.v, "refs", "^a&s", &refs) && refs) {
      for (const char** r = refs; *r; r++) revs.push_back(*r);
    } else {
      g_autoptr(GHashTable) all = nullptr;
      if (!ostree_repo_list_refs(src, nullptr, &all, cancellable_, err)) return FALSE;
      GHashTableIter it;
      gpointer k, v;
      g_hash_table_iter_init(&it, all);
      while (g_hash_table_iter_next(&it, &k, &v)) revs.push_back(static_cast<const char*>(v));
    }
    for (const std::string& rev : revs) {
      g_autofree char* csum = nullptr;
      if (!ostree_repo_resolve_rev(src, rev.c_str(), TRUE, &csum, nullptr) || !csum) continue;  // pull reports it
      if (flags & OSTREE_REPO_PULL_FLAGS_COMMIT_ONLY) {
        g_autoptr(GVariant) c = nullptr;
        if (!LoadValidMetadata(src, OSTREE_OBJECT_TYPE_COMMIT, csum, &c, err) || !CheckDetachedMetadata(src, csum, err))
          return FALSE;
        continue;
      }
      if (!CheckDetachedMetadata(src, csum, err) ||
          !ValidateCommitGraph(src, csum, depth, true, seen, cancellable_, err))
        return FALSE;
    }
    if (!(flags & (OSTREE_REPO_PULL_FLAGS_COMMIT_ONLY | OSTREE_REPO_PULL_FLAGS_UNTRUSTED))) *sourceOut = static_cast<OstreeRepo*>(g_steal_pointer(&src));
    return TRUE;
  }

  // A trusted local pull between repositories of one mode on one file system: libostree then
  // hardlinks each content object without reading it, through its import thread pool (two
  // mkdirat and two fstatat, linkat into the staging directory, renameat into objects/ per
  // object). The content objects the validation listed are linked straight into objects/
  // here first, one linkat each; libostree's pull then finds them present (one fstatat) and
  // imports only the metadata. Linked objects are whole files (the source's own inodes);
  // interrupted, they are unreferenced objects, as an interrupted libostree pull leaves.
  // Anything unusual (another file system, a link limit, a permission) stops this and leaves
  // the rest to libostree, which reports what it finds. Returns how many objects it linked.
  guint Prelink(OstreeRepo* src, OstreeRepo* dest, const ValidatedSet& seen) {
    OstreeRepoMode mode = ostree_repo_get_mode(src);
    // With a parent on either side libostree looks there too: leave those pulls to it.
    if (mode != ostree_repo_get_mode(dest) || ostree_repo_get_parent(src) || ostree_repo_get_parent(dest) || seen.contents.empty())
      return 0;
    int sfd = ostree_repo_get_dfd(src), dfd = ostree_repo_get_dfd(dest);
    struct stat ss, ds;
    if (fstatat(sfd, "objects", &ss, 0) < 0 || fstatat(dfd, "objects", &ds, 0) < 0 || ss.st_dev != ds.st_dev) return 0;
    if (ss.st_ino == ds.st_ino) return 0;  // one repository
    gboolean archive = mode == OSTREE_REPO_MODE_ARCHIVE;
    guint linked = 0;
    for (const std::string& c : seen.contents) {
      if ((linked & 255) == 0 && g_cancellable_is_cancelled(cancellable_)) break;  // the pull reports it
      g_autofree char* rel = LoosePath(c.c_str(), OSTREE_OBJECT_TYPE_FILE, archive);
      int r = linkat(sfd, rel, dfd, rel, 0);
      if (r < 0 && errno == ENOENT) {
        // objects/XX may not exist in the destination yet (the source's object must).
        std::string dir(rel, 10);  // "objects/XX"
        if (mkdirat(dfd, dir.c_str(), 0775) < 0 && errno != EEXIST) break;  // libostree's mode for it
        r = linkat(sfd, rel, dfd, rel, 0);
      }
      if (r == 0) linked++;
      else if (errno != EEXIST) break;
    }
    // Durable before libostree writes the commit and the ref that make these objects reachable.
    if (linked > 0 && !ostree_repo_get_disable_fsync(dest)) syncfs(dfd);
    return linked;
  }

 private:
  static void OnChanged(OstreeAsyncProgress* p, gpointer self) {
    auto* w = static_cast<PullWorker*>(self);
    PullSnapshot s = Read(p);
    w->Enforce(s);
    w->Publish(s);
  }

  static gboolean OnBudgetTick(gpointer self) {
    auto* w = static_cast<PullWorker*>(self);
    if (w->progress_) w->Enforce(Read(w->progress_));
    std::lock_guard<std::mutex> lock(w->mu_);
    if (w->held_) w->PostLatest(false);
    return G_SOURCE_CONTINUE;
  }

  // The byte budgets, on the pull thread (progress ticks and our own timer), so that what
  // arrives past one is bounded by a tick rather than by the JS thread's latency.
  void Enforce(const PullSnapshot& s) {
    int none = kWithinBudget;
    if (maxBytes_ > 0 && s.bytesTransferred > maxBytes_ && overBudget_.compare_exchange_strong(none, kPullBudget) && cancellable_) {
      g_cancellable_cancel(cancellable_);
    }
    // Per object: bytes received since the count of completed objects last moved. libostree
    // has at most 8 requests on the wire (_OSTREE_MAX_OUTSTANDING_FETCHER_REQUESTS); the rest
    // of outstanding-fetches are queued and receive nothing yet.
    if (s.fetched != fetchedSeen_) {
      fetchedSeen_ = s.fetched;
      bytesAtFetch_ = s.bytesTransferred;
    }
    guint64 since = s.bytesTransferred - std::min(s.bytesTransferred, bytesAtFetch_);
    guint64 onWire = std::min<guint>(8, std::max<guint>(1, s.outstandingFetches));
    none = kWithinBudget;
    if (maxObjectBytes_ > 0 && since > maxObjectBytes_ * onWire && overBudget_.compare_exchange_strong(none, kObjectBudget) && cancellable_) {
      overObjectBytes_ = since;
      overObjectFetches_ = s.outstandingFetches;
      g_cancellable_cancel(cancellable_);
    }
    if (context_ && cancellable_ && g_cancellable_is_cancelled(cancellable_)) ShutdownContextSockets(context_);
  }

  // Keeps only the newest snapshot; posts it to JS only when no post is pending (the queue
  // never holds more than one snapshot however fast libostree reports) and at most every
  // kPostGapUs, the last one always. libostree emits "changed" once per main-loop iteration,
  // which in a local pull is once per object: a post each woke the event loop 10,000 times in
  // a 10,000-file pull-local (a fifth of its CPU time). A snapshot held back is posted by the
  // next budget tick (OnBudgetTick).
  static constexpr gint64 kPostGapUs = 20000;
  void Publish(const PullSnapshot& s) {
    std::lock_guard<std::mutex> lock(mu_);
    latest_ = s;
    PostLatest(s.done);
  }
  void PostLatest(bool last) {  // with mu_ held
    if (onProgress_.IsEmpty() || pending_) return;
    gint64 now = g_get_monotonic_time();
    if (!last && now - lastPost_ < kPostGapUs) {
      held_ = true;
      return;
    }
    held_ = false;
    lastPost_ = now;
    pending_ = true;
    Post([this](Napi::Env env) {
      PullSnapshot snap;
      {
        std::lock_guard<std::mutex> l(mu_);
        snap = latest_;
        pending_ = false;
      }
      onProgress_.Call({SnapshotToJs(env, snap)});
    });
  }

  gint64 lastPost_ = 0;  // under mu_: when a snapshot was last posted
  bool held_ = false;    // under mu_: a snapshot newer than the last post waits for a tick
  std::string remote_;
  GMainContext* context_ = nullptr;  // the pushed context, on the pull thread only
  // Budgets (0: none), enforced on the pull thread at each progress tick, so that what arrives
  // past one is bounded by one tick rather than by the JS thread's latency (under load or a
  // sanitizer the JS thread saw one snapshot in seconds and the per-object budget never tripped).
  static constexpr guint kBudgetTickMs = 20;
  OstreeAsyncProgress* progress_ = nullptr;  // the pull thread only, while the pull runs
  static constexpr int kWithinBudget = 0, kPullBudget = 1, kObjectBudget = 2;
  guint64 maxBytes_ = 0;
  guint64 maxObjectBytes_ = 0;
  guint prelinked_ = 0;  // content objects Prelink linked before libostree's pull
  std::atomic<int> overBudget_{kWithinBudget};
  guint fetchedSeen_ = 0;    // pull thread only
  guint64 bytesAtFetch_ = 0; // pull thread only
  guint64 overObjectBytes_ = 0;
  guint overObjectFetches_ = 0;
  std::string path_;
  bool disableFsync_ = false;
  VariantRef options_;
  Napi::FunctionReference onProgress_;
  std::mutex mu_;
  PullSnapshot latest_;
  bool pending_ = false;
};

// pull({ remote, refs, depth, mirror, commitOnly, untrusted, overrideUrl, overrideRemoteName,
//   gpgVerify, gpgVerifySummary, networkRetries, httpHeaders, disableStaticDeltas,
//   requireStaticDeltas, overrideCommitIds, timestampCheck, updateFrequencyMs, onProgress },
//   cancellable) -> final progress snapshot
Napi::Value Repo::Pull(const Napi::CallbackInfo& info) {
  Napi::Object o = ArgObject(info, 0, "options");
  return (new PullWorker(info, this, o))->Start();
}

}  // namespace osx
