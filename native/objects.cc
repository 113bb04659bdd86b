// Validation of repository objects before use (see objects.h). Mirrors what libostree's fsck
// and pull check, plus the checksum of metadata bytes (which rules out cycles in trees).
#include "objects.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include <algorithm>

#include <string>
#include <unordered_map>
#include <vector>

namespace osx {

static const char* TypeName(OstreeObjectType type) {
  switch (type) {
    case OSTREE_OBJECT_TYPE_FILE: return "file";
    case OSTREE_OBJECT_TYPE_DIR_TREE: return "dirtree";
    case OSTREE_OBJECT_TYPE_DIR_META: return "dirmeta";
    case OSTREE_OBJECT_TYPE_COMMIT: return "commit";
    case OSTREE_OBJECT_TYPE_COMMIT_META: return "commitmeta";
    default: return "metadata";
  }
}

void SetCorrupt(GError** error, OstreeObjectType type, const char* checksum, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  g_autofree char* what = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "corrupted %s object %s: %s", TypeName(type),
              checksum ? checksum : "(unknown)", what);
}

// Re-labels an error from a structure validator as corruption of this object.
static gboolean Corrupt(GError** error, GError* cause, OstreeObjectType type, const char* checksum) {
  SetCorrupt(error, type, checksum, "%s", cause ? cause->message : "invalid");
  if (cause) g_error_free(cause);
  return FALSE;
}

// ---- dirtrees from their bytes ----
//
// GVariant's serialization (the GVariant specification, "Framing Offsets"): a container of n
// bytes stores offsets of 0, 1, 2, 4 or 8 bytes (by n), little-endian. An array of
// variable-size elements ends with one offset per element (the end of each); a tuple ends with
// the end of each variable-size member but the last, in reverse order. Every member here has
// alignment 1 (s, ay and tuples of them), so there is no padding.

static size_t OffsetSize(size_t n) { return n == 0 ? 0 : n <= 0xff ? 1 : n <= 0xffff ? 2 : n <= 0xffffffffu ? 4 : 8; }

static size_t ReadOffset(const guint8* p, size_t osz) {
  size_t v = 0;
  for (size_t i = 0; i < osz; i++) v |= static_cast<size_t>(p[i]) << (8 * i);
  return v;
}

// Calls f(start, length) for each element of a variable-size array; false if it does not frame.
template <typename F>
static bool ForEachElement(const guint8* d, size_t size, F f) {
  if (size == 0) return true;
  size_t osz = OffsetSize(size);
  size_t last = ReadOffset(d + size - osz, osz);
  if (last > size - osz || (size - last) % osz != 0) return false;
  size_t n = (size - last) / osz, start = 0;
  for (size_t i = 0; i < n; i++) {
    size_t end = ReadOffset(d + last + i * osz, osz);
    if (end < start || end > last) return false;
    if (!f(d + start, end - start)) return false;
    start = end;
  }
  return start == last;
}

// A string member [d, d+len): valid UTF-8, NUL-terminated with no NUL before (GVariant's
// normal form for "s").
static const char* StringAt(const guint8* d, size_t len) {
  if (len == 0 || d[len - 1] != 0) return nullptr;
  const char* s = reinterpret_cast<const char*>(d);
  const char* end = nullptr;
  if (!g_utf8_validate(s, static_cast<gssize>(len - 1), &end) || end != s + len - 1) return nullptr;
  return s;
}

std::string ChecksumHex(const guint8* csum) {
  char hex[OSTREE_SHA256_STRING_LEN + 1];
  ostree_checksum_inplace_from_bytes(csum, hex);
  return std::string(hex, OSTREE_SHA256_STRING_LEN);
}

std::string ChecksumHex(GVariant* csum) {
  g_autofree char* s = ostree_checksum_from_bytes_v(csum);
  return s;
}

bool ReadDirtree(GVariant* dirtree, std::vector<DirtreeFile>* files, std::vector<DirtreeDir>* dirs) {
  if (!g_variant_is_of_type(dirtree, G_VARIANT_TYPE("(a(say)a(sayay))"))) return false;
  const guint8* d = static_cast<const guint8*>(g_variant_get_data(dirtree));
  size_t size = g_variant_get_size(dirtree);
  size_t osz = OffsetSize(size);
  if (!d || size < osz || osz == 0) return false;
  size_t split = ReadOffset(d + size - osz, osz);
  if (split > size - osz) return false;
  files->clear();
  dirs->clear();
  bool ok = ForEachElement(d, split, [&](const guint8* e, size_t n) {
    size_t o = OffsetSize(n);
    if (n < o + 1 + 32) return false;
    size_t endS = ReadOffset(e + n - o, o);
    if (endS > n - o || n - o - endS != 32) return false;
    const char* name = StringAt(e, endS);
    if (!name) return false;
    files->push_back({name, e + endS});
    return true;
  });
  if (!ok) return false;
  return ForEachElement(d + split, size - osz - split, [&](const guint8* e, size_t n) {
    size_t o = OffsetSize(n);
    if (n < 2 * o + 1 + 64) return false;
    size_t endS = ReadOffset(e + n - o, o), endT = ReadOffset(e + n - 2 * o, o);
    if (endS > endT || endT > n - 2 * o || endT - endS != 32 || n - 2 * o - endT != 32) return false;
    const char* name = StringAt(e, endS);
    if (!name) return false;
    dirs->push_back({name, e + endS, e + endT});
    return true;
  });
}

// A name allowed in a dirtree: non-empty, <= 255 bytes, not "." or "..", no '/'.
static bool ValidTreeName(const char* name, GError** error) {
  size_t len = strlen(name);
  const char* why = nullptr;
  if (len == 0) why = "empty file name";
  else if (len > 255) why = "file name longer than 255 bytes";
  else if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) why = "file name is . or ..";
  else if (strchr(name, '/')) why = "file name contains /";
  if (!why) return true;
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s", why);
  return false;
}

static gboolean ValidateDirtree(const char* checksum, GVariant* tree, GError** error) {
  std::vector<DirtreeFile> files;
  std::vector<DirtreeDir> dirs;
  if (!ReadDirtree(tree, &files, &dirs))
    return (SetCorrupt(error, OSTREE_OBJECT_TYPE_DIR_TREE, checksum, "entries do not frame as a dirtree"), FALSE);
  GError* cause = nullptr;
  const char* prev = nullptr;
  for (const DirtreeFile& f : files) {
    if (!ValidTreeName(f.name, &cause)) return Corrupt(error, cause, OSTREE_OBJECT_TYPE_DIR_TREE, checksum);
    if (prev && strcmp(prev, f.name) >= 0)
      return (SetCorrupt(error, OSTREE_OBJECT_TYPE_DIR_TREE, checksum, "file entries not sorted or not unique"), FALSE);
    prev = f.name;
  }
  prev = nullptr;
  for (const DirtreeDir& e : dirs) {
    if (!ValidTreeName(e.name, &cause)) return Corrupt(error, cause, OSTREE_OBJECT_TYPE_DIR_TREE, checksum);
    if (prev && strcmp(prev, e.name) >= 0)
      return (SetCorrupt(error, OSTREE_OBJECT_TYPE_DIR_TREE, checksum, "directory entries not sorted or not unique"),
              FALSE);
    prev = e.name;
    // A name may not be both a file and a directory: binary search the (sorted) files.
    auto f = std::lower_bound(files.begin(), files.end(), e.name,
                              [](const DirtreeFile& x, const char* n) { return strcmp(x.name, n) < 0; });
    if (f != files.end() && strcmp(f->name, e.name) == 0)
      return (SetCorrupt(error, OSTREE_OBJECT_TYPE_DIR_TREE, checksum, "%s is both a file and a directory", e.name), FALSE);
  }
  // What ostree_validate_structureof_dirtree checks is covered: checksums are 32 bytes by
  // framing and names valid UTF-8 (ReadDirtree); not ".", "..", or containing '/' (above).
  return TRUE;
}

// Validates metadata bytes already in hand (the checks of LoadValidMetadata minus the file).
static gboolean ValidateMetadata(OstreeObjectType type, const char* checksum, GVariant* value, GError** error) {
  const GVariantType* vtype = ostree_metadata_variant_type(type);
  if (!vtype || !g_variant_is_of_type(value, vtype))
    return (SetCorrupt(error, type, checksum, "wrong variant type"), FALSE);
  // A dirtree is checked by reading it (ValidateDirtree): ReadDirtree frames only what is in
  // normal form (the differential test holds it to GLib's g_variant_is_normal_form), and its
  // name and checksum rules include all of ostree_validate_structureof_dirtree's; both GLib
  // calls walk every child through a GVariant of its own, most of a directory's load.
  if (type == OSTREE_OBJECT_TYPE_DIR_TREE) return ValidateDirtree(checksum, value, error);
  if (!g_variant_is_normal_form(value)) return (SetCorrupt(error, type, checksum, "not in normal form"), FALSE);
  GError* cause = nullptr;
  switch (type) {
    case OSTREE_OBJECT_TYPE_DIR_META:
      if (!ostree_validate_structureof_dirmeta(value, &cause)) return Corrupt(error, cause, type, checksum);
      return TRUE;
    case OSTREE_OBJECT_TYPE_COMMIT: {
      if (!ostree_validate_structureof_commit(value, &cause)) return Corrupt(error, cause, type, checksum);
      g_autofree char* parent = ostree_commit_get_parent(value);
      if (parent && checksum && strcmp(parent, checksum) == 0)
        return (SetCorrupt(error, type, checksum, "commit is its own parent"), FALSE);
      return TRUE;
    }
    default:
      return (SetCorrupt(error, type, checksum, "not a metadata object type"), FALSE);
  }
}

// objects/XX/REST.<ext> (objects.h).
char* LoosePath(const char* checksum, OstreeObjectType type, gboolean archive) {
  const char* ext = "file";
  switch (type) {
    case OSTREE_OBJECT_TYPE_FILE: ext = archive ? "filez" : "file"; break;
    case OSTREE_OBJECT_TYPE_DIR_TREE: ext = "dirtree"; break;
    case OSTREE_OBJECT_TYPE_DIR_META: ext = "dirmeta"; break;
    case OSTREE_OBJECT_TYPE_COMMIT: ext = "commit"; break;
    default: ext = "unknown"; break;
  }
  return g_strdup_printf("objects/%.2s/%s.%s", checksum, checksum + 2, ext);
}

// Opens the loose object in this repo or one of its parents without following a symlink or
// blocking on a FIFO. Returns -1 with errno ENOENT when no repo has it loose.
static int OpenLoose(OstreeRepo* repo, const char* relpath) {
  for (OstreeRepo* r = repo; r; r = ostree_repo_get_parent(r)) {
    int fd = openat(ostree_repo_get_dfd(r), relpath, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0 || errno != ENOENT) return fd;
  }
  errno = ENOENT;
  return -1;
}

static gboolean ReadAll(int fd, guint8* buf, gsize size) {
  gsize done = 0;
  while (done < size) {
    ssize_t n = read(fd, buf + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return FALSE;
    done += (gsize)n;
  }
  return TRUE;
}

gboolean LoadValidMetadata(OstreeRepo* repo, OstreeObjectType type, const char* checksum, GVariant** out,
                           GError** error) {
  if (!ostree_validate_checksum_string(checksum, error)) return FALSE;
  const GVariantType* vtype = ostree_metadata_variant_type(type);
  if (!vtype || type == OSTREE_OBJECT_TYPE_FILE)
    return (SetCorrupt(error, type, checksum, "not a metadata object type"), FALSE);
  g_autofree char* relpath = LoosePath(checksum, type, FALSE);
  g_autoptr(GBytes) bytes = nullptr;
  int fd = OpenLoose(repo, relpath);
  if (fd < 0 && errno != ENOENT) {
    int e = errno;
    return (SetCorrupt(error, type, checksum, "cannot open loose object: %s", g_strerror(e)), FALSE);
  }
  if (fd >= 0) {
    struct stat st;
    if (fstat(fd, &st) < 0) {
      int e = errno;
      close(fd);
      return (SetCorrupt(error, type, checksum, "fstat: %s", g_strerror(e)), FALSE);
    }
    if (!S_ISREG(st.st_mode)) {
      close(fd);
      return (SetCorrupt(error, type, checksum, "loose object is not a regular file (mode 0%o)", st.st_mode & S_IFMT),
              FALSE);
    }
    if (st.st_size > OSTREE_MAX_METADATA_SIZE) {
      close(fd);
      return (SetCorrupt(error, type, checksum, "size %lld exceeds %d", (long long)st.st_size, OSTREE_MAX_METADATA_SIZE),
              FALSE);
    }
    gsize size = (gsize)st.st_size;
    guint8* buf = (guint8*)g_malloc(size ? size : 1);
    gboolean ok = ReadAll(fd, buf, size);
    close(fd);
    if (!ok) {
      g_free(buf);
      return (SetCorrupt(error, type, checksum, "short read"), FALSE);
    }
    bytes = g_bytes_new_take(buf, size);
  } else {
    // Not loose anywhere: staged in a transaction, or missing (libostree reports NOT_FOUND).
    g_autoptr(GVariant) trusted = nullptr;
    if (!ostree_repo_load_variant(repo, type, checksum, &trusted, error)) return FALSE;
    bytes = g_variant_get_data_as_bytes(trusted);
  }
  gsize size = 0;
  const guint8* data = (const guint8*)g_bytes_get_data(bytes, &size);
  if (size > OSTREE_MAX_METADATA_SIZE)
    return (SetCorrupt(error, type, checksum, "size %zu exceeds %d", size, OSTREE_MAX_METADATA_SIZE), FALSE);
  g_autofree char* actual = g_compute_checksum_for_data(G_CHECKSUM_SHA256, data ? data : (const guint8*)"", size);
  if (strcmp(actual, checksum) != 0)
    return (SetCorrupt(error, type, checksum, "checksum mismatch (content hashes to %s)", actual), FALSE);
  g_autoptr(GVariant) value = g_variant_ref_sink(g_variant_new_from_bytes(vtype, bytes, FALSE));
  if (!ValidateMetadata(type, checksum, value, error)) return FALSE;
  *out = g_steal_pointer(&value);
  return TRUE;
}

OstreeRepo* MetadataObjectHolder(OstreeRepo* repo, OstreeObjectType type, const char* checksum) {
  if (!ostree_validate_checksum_string(checksum, nullptr)) return nullptr;
  g_autofree char* relpath = LoosePath(checksum, type, FALSE);
  for (OstreeRepo* r = repo; r; r = ostree_repo_get_parent(r)) {
    struct stat st;
    if (fstatat(ostree_repo_get_dfd(r), relpath, &st, AT_SYMLINK_NOFOLLOW) == 0) return r;
  }
  return nullptr;
}

bool MetadataObjectExists(OstreeRepo* repo, OstreeObjectType type, const char* checksum) {
  return MetadataObjectHolder(repo, type, checksum) != nullptr;
}

gboolean CheckContentObject(OstreeRepo* repo, const char* checksum, GError** error) {
  if (!ostree_validate_checksum_string(checksum, error)) return FALSE;
  for (OstreeRepo* r = repo; r; r = ostree_repo_get_parent(r)) {
    OstreeRepoMode mode = ostree_repo_get_mode(r);
    gboolean archive = mode == OSTREE_REPO_MODE_ARCHIVE;
    g_autofree char* relpath = LoosePath(checksum, OSTREE_OBJECT_TYPE_FILE, archive);
    struct stat st;
    if (fstatat(ostree_repo_get_dfd(r), relpath, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno == ENOENT) continue;
      int e = errno;
      return (SetCorrupt(error, OSTREE_OBJECT_TYPE_FILE, checksum, "fstatat: %s", g_strerror(e)), FALSE);
    }
    if (S_ISREG(st.st_mode)) return TRUE;
    // bare and bare-user-only store symlinks as symlinks; bare-user and archive as files.
    bool symlinks = mode == OSTREE_REPO_MODE_BARE || mode == OSTREE_REPO_MODE_BARE_USER_ONLY;
    if (S_ISLNK(st.st_mode) && symlinks) return TRUE;
    return (SetCorrupt(error, OSTREE_OBJECT_TYPE_FILE, checksum, "loose object is not a regular file%s (mode 0%o)",
                       symlinks ? " or symlink" : "", st.st_mode & S_IFMT),
            FALSE);
  }
  return TRUE;
}

// Many content objects at once. One fstatat each costs a path walk per object (10,000 for a
// 10,000-file commit, most of what checking a local pull's source adds to it); where enough
// of them share a loose directory, one listing of objects/XX gives every entry's type
// (d_type) in a few getdents calls. An entry the listing types as anything but what
// CheckContentObject accepts (or leaves untyped, DT_UNKNOWN) is checked one at a time, so the
// verdicts and messages are the same. A directory much bigger than the objects wanted from it
// (a large repository, a small commit) is not listed; nor is any repository with a parent.
static gboolean CheckContentObjects(OstreeRepo* repo, const std::vector<std::string>& csums, GError** error) {
  constexpr size_t kListFrom = 256;  // fewer objects than this: one fstatat each
  bool mayList = csums.size() >= kListFrom && !ostree_repo_get_parent(repo);
  OstreeRepoMode mode = ostree_repo_get_mode(repo);
  const char* suffix = mode == OSTREE_REPO_MODE_ARCHIVE ? ".filez" : ".file";
  bool symlinks = mode == OSTREE_REPO_MODE_BARE || mode == OSTREE_REPO_MODE_BARE_USER_ONLY;
  std::vector<std::vector<const std::string*>> byDir(256);
  for (const std::string& c : csums) {
    if (!ostree_validate_checksum_string(c.c_str(), error)) return FALSE;
    byDir[g_ascii_xdigit_value(c[0]) * 16 + g_ascii_xdigit_value(c[1])].push_back(&c);
  }
  int dfd = ostree_repo_get_dfd(repo);
  std::unordered_map<std::string, unsigned char> types;
  for (size_t d = 0; d < byDir.size(); d++) {
    if (byDir[d].empty()) continue;
    DIR* dp = nullptr;
    if (mayList) {
      char dir[] = "objects/xx";
      g_snprintf(dir + 8, 3, "%02zx", d);
      int fd = openat(dfd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      struct stat st;
      // ~80 bytes per 64-character entry in an ext4 directory: list only when the directory is
      // not far bigger than what is wanted from it.
      if (fd >= 0 && fstat(fd, &st) == 0 && static_cast<size_t>(st.st_size) <= (byDir[d].size() * 8 + 64) * 80) dp = fdopendir(fd);
      if (!dp && fd >= 0) close(fd);
    }
    types.clear();
    if (dp) {
      while (struct dirent* de = readdir(dp)) types.emplace(de->d_name, de->d_type);
      closedir(dp);
    }
    for (const std::string* c : byDir[d]) {
      if (dp) {
        auto it = types.find(c->substr(2) + suffix);
        if (it == types.end()) continue;  // not loose here: the libostree call that follows reports it
        if (it->second == DT_REG || (symlinks && it->second == DT_LNK)) continue;
      }
      if (!CheckContentObject(repo, c->c_str(), error)) return FALSE;
    }
  }
  return TRUE;
}

// A commit's loose .commitmeta path, relative to the repository (checksum already validated).
static char* CommitMetaPath(const char* checksum) {
  return g_strdup_printf("objects/%.2s/%s.commitmeta", checksum, checksum + 2);
}

// What is wrong with a loose .commitmeta file as stat describes it, or null.
static const char* DetachedMetadataProblem(const struct stat& st) {
  if (!S_ISREG(st.st_mode)) return "detached metadata is not a regular file";
  if (st.st_size > OSTREE_MAX_METADATA_SIZE) return "detached metadata too large";
  return nullptr;
}

gboolean CheckDetachedMetadata(OstreeRepo* repo, const char* checksum, GError** error) {
  if (!ostree_validate_checksum_string(checksum, error)) return FALSE;
  g_autofree char* relpath = CommitMetaPath(checksum);
  for (OstreeRepo* r = repo; r; r = ostree_repo_get_parent(r)) {
    struct stat st;
    if (fstatat(ostree_repo_get_dfd(r), relpath, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno == ENOENT) continue;
      int e = errno;
      return (SetCorrupt(error, OSTREE_OBJECT_TYPE_COMMIT_META, checksum, "fstatat: %s", g_strerror(e)), FALSE);
    }
    if (const char* problem = DetachedMetadataProblem(st))
      return (SetCorrupt(error, OSTREE_OBJECT_TYPE_COMMIT_META, checksum, "%s", problem), FALSE);
    return TRUE;
  }
  return TRUE;
}

static const char kTransactionKey[] = "ostree-sysext-transaction-open";

void MarkTransaction(OstreeRepo* repo, bool open) {
  g_object_set_data(G_OBJECT(repo), kTransactionKey, open ? GINT_TO_POINTER(1) : nullptr);
}

gboolean ReadDetachedMetadata(OstreeRepo* repo, const char* checksum, GVariant** out, GCancellable* cancellable, GError** error) {
  *out = nullptr;
  if (ostree_repo_get_parent(repo) || g_object_get_data(G_OBJECT(repo), kTransactionKey)) {
    return CheckDetachedMetadata(repo, checksum, error) &&
           ostree_repo_read_commit_detached_metadata(repo, checksum, out, cancellable, error);
  }
  if (!ostree_validate_checksum_string(checksum, error)) return FALSE;
  g_autofree char* relpath = CommitMetaPath(checksum);
  // O_NONBLOCK: a FIFO in its place opens at once (and is refused below) instead of blocking.
  int fd = openat(ostree_repo_get_dfd(repo), relpath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) return TRUE;
    int e = errno;
    // O_NOFOLLOW on a symlink: what CheckDetachedMetadata's lstat calls no regular file.
    if (e == ELOOP) return (SetCorrupt(error, OSTREE_OBJECT_TYPE_COMMIT_META, checksum, "detached metadata is not a regular file"), FALSE);
    return (SetCorrupt(error, OSTREE_OBJECT_TYPE_COMMIT_META, checksum, "open: %s", g_strerror(e)), FALSE);
  }
  struct stat st;
  gboolean ok = TRUE;
  if (fstat(fd, &st) < 0) {
    int e = errno;
    ok = (SetCorrupt(error, OSTREE_OBJECT_TYPE_COMMIT_META, checksum, "fstat: %s", g_strerror(e)), FALSE);
  } else if (const char* problem = DetachedMetadataProblem(st)) {
    ok = (SetCorrupt(error, OSTREE_OBJECT_TYPE_COMMIT_META, checksum, "%s", problem), FALSE);
  }
  if (!ok) {
    close(fd);
    return FALSE;
  }
  size_t size = static_cast<size_t>(st.st_size);
  guint8* buf = static_cast<guint8*>(g_malloc(size ? size : 1));
  size_t got = 0;
  while (got < size) {
    ssize_t n = read(fd, buf + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  int readErrno = errno;
  close(fd);
  if (got != size) {
    g_free(buf);
    return (SetCorrupt(error, OSTREE_OBJECT_TYPE_COMMIT_META, checksum, "read: %s", got < size ? "short read" : g_strerror(readErrno)),
            FALSE);
  }
  g_autoptr(GBytes) bytes = g_bytes_new_take(buf, size);
  *out = g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE_VARDICT, bytes, FALSE));
  return TRUE;
}

gboolean ValidateTree(OstreeRepo* repo, const char* tree, const char* meta, unsigned depth0, bool checkContent,
                      ValidatedSet* seen, GCancellable* cancellable, GError** error) {
  struct Item {
    std::string tree, meta;
    unsigned depth;
  };
  std::vector<Item> stack;
  stack.push_back({tree, meta, depth0});
  guint64 steps = 0;
  std::vector<DirtreeFile> files;
  std::vector<DirtreeDir> dirs;
  // Content objects to check, checked together once the tree is walked (CheckContentObjects).
  std::vector<std::string> contents;
  // On failure they are not checked: forget them, so a later walk checks them again.
  auto unsee = [&] {
    for (const std::string& c : contents) seen->contents.erase(c);
    return FALSE;
  };
  while (!stack.empty()) {
    Item it = std::move(stack.back());
    stack.pop_back();
    if ((++steps & 255) == 0 && g_cancellable_set_error_if_cancelled(cancellable, error)) return unsee();
    if (it.depth > kMaxTreeDepth)
      return (SetCorrupt(error, OSTREE_OBJECT_TYPE_DIR_TREE, it.tree.c_str(), "directories nested deeper than %u",
                         kMaxTreeDepth),
              unsee());
    if (seen->metas.insert(it.meta).second) {
      g_autoptr(GVariant) m = nullptr;
      if (!LoadValidMetadata(repo, OSTREE_OBJECT_TYPE_DIR_META, it.meta.c_str(), &m, error)) {
        seen->metas.erase(it.meta);
        return unsee();
      }
      if (seen->keep) seen->kept.emplace(ValidatedSet::Key(OSTREE_OBJECT_TYPE_DIR_META, it.meta), g_variant_ref(m));
    }
    auto found = seen->trees.find(it.tree);
    if (found != seen->trees.end() && found->second >= it.depth) continue;
    g_autoptr(GVariant) t = nullptr;
    if (!LoadValidMetadata(repo, OSTREE_OBJECT_TYPE_DIR_TREE, it.tree.c_str(), &t, error)) return unsee();
    seen->trees[it.tree] = it.depth;
    if (seen->keep) seen->kept.emplace(ValidatedSet::Key(OSTREE_OBJECT_TYPE_DIR_TREE, it.tree), g_variant_ref(t));
    if (!ReadDirtree(t, &files, &dirs)) {
      SetCorrupt(error, OSTREE_OBJECT_TYPE_DIR_TREE, it.tree.c_str(), "entries do not frame as a dirtree");
      return unsee();
    }
    if (checkContent) {
      for (const DirtreeFile& f : files) {
        std::string h = ChecksumHex(f.csum);
        if (seen->contents.insert(h).second) contents.push_back(std::move(h));
      }
    }
    for (const DirtreeDir& e : dirs) stack.push_back({ChecksumHex(e.tree), ChecksumHex(e.meta), it.depth + 1});
  }
  if (!CheckContentObjects(repo, contents, error)) return unsee();
  return TRUE;
}

static gboolean LoadCommitRoots(OstreeRepo* repo, const char* commit, GVariant** out, std::string* tree,
                                std::string* meta, GError** error) {
  g_autoptr(GVariant) c = nullptr;
  if (!LoadValidMetadata(repo, OSTREE_OBJECT_TYPE_COMMIT, commit, &c, error)) return FALSE;
  g_autoptr(GVariant) tc = g_variant_get_child_value(c, 6);
  g_autoptr(GVariant) mc = g_variant_get_child_value(c, 7);
  *tree = ChecksumHex(tc);
  *meta = ChecksumHex(mc);
  if (out) *out = g_steal_pointer(&c);
  return TRUE;
}

gboolean ValidateCommitGraph(OstreeRepo* repo, const char* commit, int maxParents, bool checkContent,
                             ValidatedSet* seen, GCancellable* cancellable, GError** error) {
  std::string next = commit;
  std::unordered_set<std::string> chain;  // this walk's commits: a revisit is a cycle
  for (unsigned n = 0; !next.empty(); n++) {
    if (n > kMaxHistoryDepth)
      return (SetCorrupt(error, OSTREE_OBJECT_TYPE_COMMIT, commit, "history longer than %u commits", kMaxHistoryDepth),
              FALSE);
    if (!chain.insert(next).second)
      return (SetCorrupt(error, OSTREE_OBJECT_TYPE_COMMIT, next.c_str(), "parent cycle in history"), FALSE);
    if (n > 0 && maxParents >= 0 && (int)n > maxParents) break;
    g_autoptr(GVariant) c = nullptr;
    std::string tree, meta;
    GError* local = nullptr;
    if (!LoadCommitRoots(repo, next.c_str(), &c, &tree, &meta, &local)) {
      // A missing ancestor ends the local history (shallow pull); a missing head is an error.
      if (n > 0 && g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) {
        g_error_free(local);
        break;
      }
      g_propagate_error(error, local);
      return FALSE;
    }
    if (!seen->commits.count(next)) {
      OstreeRepoCommitState state = OSTREE_REPO_COMMIT_STATE_NORMAL;
      if (!ostree_repo_load_commit(repo, next.c_str(), nullptr, &state, error)) return FALSE;
      // A partial commit's tree is legitimately incomplete: libostree does not walk it either.
      if (!(state & OSTREE_REPO_COMMIT_STATE_PARTIAL) &&
          !ValidateTree(repo, tree.c_str(), meta.c_str(), 0, checkContent, seen, cancellable, error))
        return FALSE;
      seen->commits.insert(next);
    }
    g_autofree char* parent = ostree_commit_get_parent(c);
    next = parent ? parent : "";
  }
  return TRUE;
}

gboolean ValidateCheckoutSource(OstreeRepo* repo, const char* commit, const char* subpath, bool checkContent,
                                ValidatedSet* seen, GCancellable* cancellable, GError** error) {
  std::string tree, meta;
  if (!LoadCommitRoots(repo, commit, nullptr, &tree, &meta, error)) return FALSE;
  g_auto(GStrv) parts = g_strsplit(subpath ? subpath : "/", "/", -1);
  unsigned depth = 0;
  for (char** p = parts; *p; p++) {
    if (**p == '\0' || strcmp(*p, ".") == 0) continue;
    if (++depth > kMaxTreeDepth)
      return (g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "subpath nested deeper than %u",
                          kMaxTreeDepth),
              FALSE);
    g_autoptr(GVariant) t = nullptr;
    if (!LoadValidMetadata(repo, OSTREE_OBJECT_TYPE_DIR_TREE, tree.c_str(), &t, error)) return FALSE;
    std::vector<DirtreeFile> files;
    std::vector<DirtreeDir> dirs;
    if (!ReadDirtree(t, &files, &dirs))
      return (SetCorrupt(error, OSTREE_OBJECT_TYPE_DIR_TREE, tree.c_str(), "entries do not frame as a dirtree"), FALSE);
    auto d = std::find_if(dirs.begin(), dirs.end(), [&](const DirtreeDir& x) { return strcmp(x.name, *p) == 0; });
    if (d != dirs.end()) {
      tree = ChecksumHex(d->tree);
      meta = ChecksumHex(d->meta);
      continue;
    }
    // A file can only be the last component; anything else is libostree's NOT_FOUND to report.
    auto f = std::find_if(files.begin(), files.end(), [&](const DirtreeFile& x) { return strcmp(x.name, *p) == 0; });
    if (f != files.end()) return checkContent ? CheckContentObject(repo, ChecksumHex(f->csum).c_str(), error) : TRUE;
    return TRUE;
  }
  return ValidateTree(repo, tree.c_str(), meta.c_str(), depth, checkContent, seen, cancellable, error);
}

}  // namespace osx
