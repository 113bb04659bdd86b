// Validation of repository objects before anything walks them. libostree 2022.7 loads
// metadata as *trusted* GVariants (no framing checks) and reads checksums from them unchecked,
// so a damaged object crashes whoever walks it; its own fsck and pull validate first. Every
// path in this addon that reads a tree, a commit or a content object goes through these.
#pragma once

#include <ostree.h>

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace osx {

// Hard bounds for walks over repository graphs.
constexpr unsigned kMaxTreeDepth = 2048;      // nested directories in one commit (PATH_MAX / 2: "a/a/...")
constexpr unsigned kMaxHistoryDepth = 100000;  // parent links followed in one history walk

// Loads a metadata object (DIRTREE/DIRMETA/COMMIT) after checking that its loose file is a
// regular file of sane size (<= OSTREE_MAX_METADATA_SIZE), that its bytes hash to `checksum`
// (so no tree can contain itself), that the variant is in normal form and structurally valid
// (ostree_validate_structureof_*), and for dirtrees that every checksum is 32 bytes and names
// are valid, sorted and unique. A commit naming itself as parent is refused. The returned
// variant is untrusted-checked data (safe to walk). Errors are G_IO_ERROR_INVALID_DATA whose
// message starts "corrupted <type> object <checksum>: " (lib/ maps it to CORRUPT).
gboolean LoadValidMetadata(OstreeRepo* repo, OstreeObjectType type, const char* checksum, GVariant** out,
                           GError** error);

// Checks that the content object's loose file (if loose in this repo) is a regular file (or,
// in bare mode, a symlink), not a FIFO, directory, socket or device. Not loose: TRUE (the
// subsequent libostree call reports a missing object itself).
gboolean CheckContentObject(OstreeRepo* repo, const char* checksum, GError** error);
// Whether the metadata object is loose in this repository or a parent (one fstatat each).
bool MetadataObjectExists(OstreeRepo* repo, OstreeObjectType type, const char* checksum);
// Which of them holds it loose (`repo` or one of its parents), or nullptr.
OstreeRepo* MetadataObjectHolder(OstreeRepo* repo, OstreeObjectType type, const char* checksum);

// The entries of a dirtree, read straight from its serialized bytes (GVariant's format for
// (a(say)a(sayay)), every offset bounds-checked): no GVariant per child, which is most of what
// reading a directory cost. Names point into the variant's data (NUL-terminated), checksums
// are 32 raw bytes there; both live as long as the variant. False when the bytes do not frame
// as a dirtree (any variant LoadValidMetadata returned does).
struct DirtreeFile {
  const char* name;
  const guint8* csum;
};
struct DirtreeDir {
  const char* name;
  const guint8* tree;
  const guint8* meta;
};
bool ReadDirtree(GVariant* dirtree, std::vector<DirtreeFile>* files, std::vector<DirtreeDir>* dirs);
// A 32-byte checksum in hex: raw bytes (as ReadDirtree gives them), or an "ay" of a
// validated commit or dirtree.
std::string ChecksumHex(const guint8* csum);
std::string ChecksumHex(GVariant* csum);

// objects/XX/REST.<ext> of a valid checksum (g_free it). libostree's helper for this is private.
char* LoosePath(const char* checksum, OstreeObjectType type, gboolean archive);

// Sets G_IO_ERROR_INVALID_DATA "corrupted <type> object <checksum>: <what>".
void SetCorrupt(GError** error, OstreeObjectType type, const char* checksum, const char* fmt, ...)
    G_GNUC_PRINTF(4, 5);

// What a graph walk has validated already, shared across the commits of one operation so
// shared subtrees are read once. A dirtree is walked again only when reached deeper than
// before (the depth bound holds on every path).
struct ValidatedSet {
  std::unordered_map<std::string, unsigned> trees;  // dirtree -> deepest depth walked at
  std::unordered_set<std::string> metas;
  std::unordered_set<std::string> contents;
  std::unordered_set<std::string> commits;
  // With keep set, the walk holds on to every dirtree and dirmeta it validated (one reference
  // each), so a caller that reads the same tree next (a checkout) need not load and hash it
  // again. Owned by the set: released when it is destroyed.
  bool keep = false;
  std::unordered_map<std::string, GVariant*> kept;
  ValidatedSet() = default;
  ValidatedSet(const ValidatedSet&) = delete;
  ValidatedSet& operator=(const ValidatedSet&) = delete;
  ~ValidatedSet() {
    for (auto& [k, v] : kept) g_variant_unref(v);
  }
  // A kept variant (a new reference), or nullptr. Keyed by type and checksum.
  static std::string Key(OstreeObjectType type, const std::string& checksum) {
    return (type == OSTREE_OBJECT_TYPE_DIR_TREE ? "t" : "m") + checksum;
  }
  GVariant* Kept(OstreeObjectType type, const std::string& checksum) const {
    auto it = kept.find(Key(type, checksum));
    return it == kept.end() ? nullptr : g_variant_ref(it->second);
  }
};

// Validates the tree rooted at (tree, meta) and everything below it, iteratively (no
// recursion), refusing depth > kMaxTreeDepth - depth0. With checkContent, every file object
// is checked with CheckContentObject too.
gboolean ValidateTree(OstreeRepo* repo, const char* tree, const char* meta, unsigned depth0, bool checkContent,
                      ValidatedSet* seen, GCancellable* cancellable, GError** error);

// Validates a commit and its tree; with `history`, every ancestor too, as far as the parents
// are present (a missing parent ends history, as after a shallow pull), refusing a parent
// cycle and more than kMaxHistoryDepth ancestors. `maxParents` < 0: no limit but that one.
gboolean ValidateCommitGraph(OstreeRepo* repo, const char* commit, int maxParents, bool checkContent,
                             ValidatedSet* seen, GCancellable* cancellable, GError** error);

// Validates the path `subpath` (absolute, inside the commit's tree) and the subtree it names
// (a directory's whole subtree, or one file's content object): what a checkout of it reads.
gboolean ValidateCheckoutSource(OstreeRepo* repo, const char* commit, const char* subpath, bool checkContent,
                                ValidatedSet* seen, GCancellable* cancellable, GError** error);

// Checks that a commit's detached metadata, when present as a loose file, is a regular file.
gboolean CheckDetachedMetadata(OstreeRepo* repo, const char* checksum, GError** error);

// A commit's detached metadata (null when it has none), checked as CheckDetachedMetadata does.
// Where libostree could find it elsewhere than objects/ (a parent repository, or the staging
// directory of a transaction that may be open on the handle: MarkTransaction), it is that
// check and then libostree's read; otherwise one open: absent is ENOENT there, and what
// opens is fstat'ed, read and framed as an a{sv} (untrusted: GLib bounds every read of it).
gboolean ReadDetachedMetadata(OstreeRepo* repo, const char* checksum, GVariant** out, GCancellable* cancellable, GError** error);

// commit.cc marks a handle while a transaction may be open on it (from before
// ostree_repo_prepare_transaction until its commit or abort has returned), so that reads of
// detached metadata let libostree look in its staging directory.
void MarkTransaction(OstreeRepo* repo, bool open);

}  // namespace osx
