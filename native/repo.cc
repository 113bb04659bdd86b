// The Repo class: handle lifetime, create/open, config and refs. Its other methods live in
// the files named in repo.h.
#include "repo.h"

#include "addon-data.h"
#include "args.h"
#include "error.h"
#include "variant.h"

#include <fcntl.h>
#include <unistd.h>

#include <optional>
#include <string>

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
          InstanceMethod<&Repo::QueryBatch>("queryBatch"),
          InstanceMethod<&Repo::QuerySync>("querySync"),
          InstanceMethod<&Repo::ResolveRevSync>("resolveRevSync"),
          InstanceMethod<&Repo::CacheStats>("cacheStats"),
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

Napi::Object Repo::NewInstance(Napi::Env env, OstreeRepo* repo) {
  Napi::Object obj = GetData(env)->repoConstructor.New({});
  Repo::Unwrap(obj)->repo_ = RepoRef(repo);
  return obj;
}

OstreeRepo* Repo::Handle(Napi::Env env) const {
  if (!repo_) ThrowClosed(env, "the repository handle is closed");
  return repo_.get();
}

Napi::Value Repo::Close(const Napi::CallbackInfo& info) {
  // Workers in flight hold their own references; dropping ours only ends new calls.
  repo_ = RepoRef();
  return info.Env().Undefined();
}

Napi::Value Repo::IsClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !repo_); }

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

 protected:
  void Run() override {
    GError* err = nullptr;
    if (mode_) {
      OstreeRepoMode mode;
      if (!ostree_repo_mode_from_string(mode_->c_str(), &mode, &err)) {
        Fail(err);
        return;
      }
      repo_ = RepoRef::Adopt(ostree_repo_create_at(AT_FDCWD, path_.c_str(), mode, nullptr, cancellable_, &err));
    } else {
      repo_ = RepoRef::Adopt(ostree_repo_open_at(AT_FDCWD, path_.c_str(), cancellable_, &err));
    }
    if (!repo_) {
      Fail(err);
      return;
    }
    if (disableFsync_) ostree_repo_set_disable_fsync(repo_.get(), TRUE);
  }
  Napi::Value Result(Napi::Env env) override { return Repo::NewInstance(env, repo_.get()); }

 private:
  std::string path_;
  std::optional<std::string> mode_;
  bool disableFsync_;
  RepoRef repo_;  // the handle it opened, for the new JS Repo
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
  return (new RepoCallWorker(info, "ostree-sysext:setConfig", this, info[3],
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

// Whether `rev` is a local ref name libostree's refspec grammar accepts, in its ASCII form:
// components of [A-Za-z0-9_][-._A-Za-z0-9]* joined by '/' (no ':', no '^', nothing that could
// climb out of refs/heads/).
static bool IsPlainLocalRef(const char* rev) {
  bool start = true;
  for (const char* p = rev; *p; p++) {
    char ch = *p;
    bool word = g_ascii_isalnum(ch) || ch == '_';
    if (start) {
      if (!word) return false;
      start = false;
    } else if (ch == '/') {
      start = true;
    } else if (!word && ch != '-' && ch != '.') {
      return false;
    }
  }
  return !start;
}

// A local ref whose file under refs/heads/ holds a checksum, read with one open and one read
// (libostree also fstats for the size and reads again to see the end). false when the fast
// path does not apply or the file is anything else (absent, a directory, a FIFO, not exactly
// a checksum line): libostree's own lookup then answers, with its own error.
static bool ReadLocalRefFile(OstreeRepo* repo, const char* rev, char** out) {
  if (!IsPlainLocalRef(rev) || strlen(rev) > 1024) return false;
  std::string rel = std::string("refs/heads/") + rev;
  // Not O_NOFOLLOW: an alias (`ostree refs --alias`) is a symlink to its ref, as libostree reads it.
  int fd = openat(ostree_repo_get_dfd(repo), rel.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return false;
  char buf[128];
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  // A regular file is read whole by one short read; 128 bytes or more is no checksum line.
  if (n < 64 || n >= static_cast<ssize_t>(sizeof buf)) return false;
  // libostree strips trailing whitespace (g_strchomp) and then wants exactly a checksum.
  while (n > 64 && g_ascii_isspace(buf[n - 1])) n--;
  if (n != 64) return false;
  buf[64] = '\0';
  if (!ostree_validate_checksum_string(buf, nullptr)) return false;
  *out = g_strdup(buf);
  return true;
}

// libostree tries an all-hex rev ("b", "cafe", "b^") as a partial commit checksum before it
// looks at refs, so a ref named "b" resolved to any commit whose checksum starts with b. Here
// a local ref of that name wins; otherwise libostree's rules apply. (Also query.cc's reads.)
gboolean ResolveRefFirst(OstreeRepo* repo, const char* rev, gboolean allowNoent, char** out, GError** err) {
  // A full checksum is its own answer, as libostree gives it (without looking it up), but
  // without parsing it as a refspec first (a regular expression match per call).
  if (strlen(rev) == 64 && ostree_validate_checksum_string(rev, nullptr)) {
    *out = g_strdup(rev);
    return TRUE;
  }
  // refs/heads/ is where libostree looks first for a name without a remote; found there, its
  // answer is that file's checksum (for an all-hex name too: a local ref of that name wins).
  if (ReadLocalRefFile(repo, rev, out)) return TRUE;
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

// resolveRevSync(rev, allowNoent) -> checksum | null, on the calling thread.
Napi::Value Repo::ResolveRevSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OstreeRepo* repo = Handle(env);
  std::string rev = ArgString(info, 0, "rev");
  bool allowNoent = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
  g_autofree char* out = nullptr;
  GError* err = nullptr;
  if (!ResolveRefFirst(repo, rev.c_str(), allowNoent, &out, &err)) ThrowGError(env, err);
  return out ? Napi::Value(Napi::String::New(env, out)) : env.Null();
}

// setRefImmediate(remote|null, ref, checksum|null, cancellable): null checksum deletes.
Napi::Value Repo::SetRefImmediate(const Napi::CallbackInfo& info) {
  std::optional<std::string> remote = ArgOptString(info, 0, "remote");
  std::string ref = ArgString(info, 1, "ref");
  std::optional<std::string> checksum = ArgOptString(info, 2, "checksum");
  return (new RepoCallWorker(info, "ostree-sysext:setRef", this, info[3],
                             [remote, ref, checksum](OstreeRepo* r, GCancellable* c, GError** err) {
                               return ostree_repo_set_ref_immediate(r, remote ? remote->c_str() : nullptr, ref.c_str(),
                                                                    checksum ? checksum->c_str() : nullptr, c, err);
                             }))
      ->Start();
}

}  // namespace osx
