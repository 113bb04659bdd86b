// Remotes (issue 3): placeholder until implemented.
#include "repo.h"
namespace osx {
#define NOT_YET(M) Napi::Value Repo::M(const Napi::CallbackInfo& info) { ThrowOstreeError(info.Env(), "INVALID", #M " is not implemented yet"); }
NOT_YET(RemoteAdd)
NOT_YET(RemoteDelete)
NOT_YET(RemoteList)
NOT_YET(RemoteGpgImport)
NOT_YET(RemoteListRefs)
NOT_YET(RemoteFetchSummary)
NOT_YET(Pull)
NOT_YET(SignCommit)
NOT_YET(VerifyCommit)
NOT_YET(RegenerateSummary)
NOT_YET(GenerateDelta)
}
