// commit-walk.cc: committing a directory with content objects written by several threads.
#pragma once

#include <ostree.h>

#include <cstdint>
#include <set>
#include <string>

namespace osx {

struct ParallelCommitOptions {
  const std::set<std::string>* skip = nullptr;  // absolute paths ("/usr/bin/x") left out
  int64_t uid = -1, gid = -1;                   // owner of every entry, when >= 0
  bool canonicalPermissions = false;
  bool skipXattrs = false;
};

enum class ParallelCommit {
  Done,      // `mtree` holds the tree, every object is written
  Fallback,  // the tree holds overlay whiteouts (or opaque markers on bare-user-only), which
             // only the whiteout shadow tree and libostree's walk handle: start again there
  Failed,    // `err` is set
};

// Fills `mtree` from the directory `tree` the way ostree_repo_write_dfd_to_mtree does with
// a modifier made of `opts` (same objects, same checksums), except that regular files and
// symlinks are hashed and written by a pool of threads (one per CPU, at most 4) while this
// thread walks the directories and writes their dirmeta. Must run inside a transaction.
ParallelCommit WriteTreeParallel(OstreeRepo* repo, const std::string& tree, OstreeMutableTree* mtree,
                                 const ParallelCommitOptions& opts, GCancellable* cancellable, GError** err);

}  // namespace osx
