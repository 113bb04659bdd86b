// overlay.cc: the Overlay JS class, and the two things it lends the repository code.
#pragma once

#include <napi.h>
#include <ostree.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace osx {

void InitOverlay(Napi::Env env, Napi::Object exports);

// For commit.cc: when `tree` holds overlay whiteouts, builds a hardlinked copy of it under the
// repository's tmp/ with `.ostree-wh.NAME` markers in their place and returns its path in
// `shadow` (empty when there is none); RemoveTree deletes it.
bool PrepareWhiteoutTree(OstreeRepo* repo, const std::string& tree, std::string* shadow, GError** err);
void RemoveTree(const std::string& path);

// For query.cc: a commit's tree read the way the overlay engine reads layers (validated
// dirtree/dirmeta variants, loaded once and kept by the handle; no GFile), for the
// repository's own stat/list/read/readlink.
struct CommitTree;
struct CommitTreeEntry {
  std::string name, path, type, target, checksum;
  uint32_t mode = 0, uid = 0, gid = 0;
  uint64_t size = 0;
};
// `validatedCommit`: the commit's variant, already checked (objects.h), or null to load it.
std::shared_ptr<CommitTree> OpenCommitTree(OstreeRepo* repo, const std::string& commit, GVariant* validatedCommit);
// Directory entries the tree has loaded so far: what keeping it in a cache costs.
size_t CommitTreeEntries(const CommitTree& tree);
// op: stat | list | read | readlink. A missing path is G_IO_ERROR_NOT_FOUND.
bool CommitTreeOp(CommitTree& tree, const std::string& op, const std::string& path, int64_t maxBytes, CommitTreeEntry* entry,
                  std::vector<CommitTreeEntry>* children, std::vector<uint8_t>* data, GError** err);

}  // namespace osx
