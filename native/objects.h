// Validation of repository objects before anything walks them. libostree 2022.7 loads
// metadata as *trusted* GVariants (no framing checks) and reads checksums from them unchecked,
// so a damaged object crashes whoever walks it; its own fsck and pull validate first. Every
// path in this addon that reads a tree, a commit or a content object goes through these.
#pragma once

#include <ostree.h>

#include <string>

namespace osx {

// Hard bounds for walks over repository graphs.
constexpr unsigned kMaxTreeDepth = 4096;      // nested directories in one commit (PATH_MAX / 1)
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

// Validates metadata bytes already in hand (same checks as LoadValidMetadata minus the file).
gboolean ValidateMetadata(OstreeObjectType type, const char* checksum, GVariant* value, GError** error);

// Checks that the content object's loose file (if loose in this repo) is a regular file (or,
// in bare mode, a symlink), not a FIFO, directory, socket or device. Not loose: TRUE (the
// subsequent libostree call reports a missing object itself).
gboolean CheckContentObject(OstreeRepo* repo, const char* checksum, GError** error);

// Sets G_IO_ERROR_INVALID_DATA "corrupted <type> object <checksum>: <what>".
void SetCorrupt(GError** error, OstreeObjectType type, const char* checksum, const char* fmt, ...)
    G_GNUC_PRINTF(4, 5);

// A name allowed in a dirtree: non-empty, <= 255 bytes, not "." or "..", no '/'.
bool ValidTreeName(const char* name, GError** error);

}  // namespace osx
