// Repo: one JS object per OstreeRepo handle. Methods are split by topic across repo.cc,
// remote.cc, pull.cc and sign.cc; every blocking call is a Worker returning a Promise.
#pragma once

#include "common.h"

namespace osx {

struct TreeCache;

class Repo : public Napi::ObjectWrap<Repo> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  // Wraps a handle in a new JS Repo, taking a new reference.
  static Napi::Object NewInstance(Napi::Env env, OstreeRepo* repo);

  explicit Repo(const Napi::CallbackInfo& info);
  ~Repo() override;

  // The live handle; throws an OstreeError (CLOSED) once close() was called.
  OstreeRepo* Handle(Napi::Env env) const;

 private:
  static Napi::Value Create(const Napi::CallbackInfo& info);
  static Napi::Value Open(const Napi::CallbackInfo& info);

  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value IsClosed(const Napi::CallbackInfo& info);
  Napi::Value GetPath(const Napi::CallbackInfo& info);
  Napi::Value GetMode(const Napi::CallbackInfo& info);
  Napi::Value GetConfig(const Napi::CallbackInfo& info);
  Napi::Value SetConfig(const Napi::CallbackInfo& info);
  Napi::Value ListRefs(const Napi::CallbackInfo& info);
  Napi::Value ResolveRev(const Napi::CallbackInfo& info);
  Napi::Value SetRefImmediate(const Napi::CallbackInfo& info);
  Napi::Value LoadCommits(const Napi::CallbackInfo& info);
  Napi::Value Query(const Napi::CallbackInfo& info);
  Napi::Value QueryMany(const Napi::CallbackInfo& info);
  Napi::Value QuerySync(const Napi::CallbackInfo& info);
  Napi::Value ResolveRevSync(const Napi::CallbackInfo& info);
  Napi::Value PrepareTransaction(const Napi::CallbackInfo& info);
  Napi::Value CommitTransaction(const Napi::CallbackInfo& info);
  Napi::Value AbortTransaction(const Napi::CallbackInfo& info);
  Napi::Value TransactionSetRef(const Napi::CallbackInfo& info);
  Napi::Value WriteCommit(const Napi::CallbackInfo& info);
  Napi::Value Checkout(const Napi::CallbackInfo& info);
  Napi::Value Prune(const Napi::CallbackInfo& info);
  Napi::Value Fsck(const Napi::CallbackInfo& info);
  Napi::Value WriteDetachedMetadata(const Napi::CallbackInfo& info);

  // remote.cc
  Napi::Value RemoteAdd(const Napi::CallbackInfo& info);
  Napi::Value RemoteDelete(const Napi::CallbackInfo& info);
  Napi::Value RemoteList(const Napi::CallbackInfo& info);
  Napi::Value RemoteGpgImport(const Napi::CallbackInfo& info);
  Napi::Value RemoteListRefs(const Napi::CallbackInfo& info);
  Napi::Value RemoteFetchSummary(const Napi::CallbackInfo& info);
  // pull.cc
  Napi::Value Pull(const Napi::CallbackInfo& info);
  // sign.cc
  Napi::Value SignCommit(const Napi::CallbackInfo& info);
  Napi::Value VerifyCommit(const Napi::CallbackInfo& info);
  Napi::Value RegenerateSummary(const Napi::CallbackInfo& info);
  Napi::Value GenerateDelta(const Napi::CallbackInfo& info);

  OstreeRepo* repo_ = nullptr;

 public:
  // The commit trees this handle has read (repo.cc), shared with its workers.
  std::shared_ptr<TreeCache> Trees();

 private:
  std::shared_ptr<TreeCache> trees_;
};

}  // namespace osx
