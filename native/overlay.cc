// The overlay engine: the merged view of a base and its extensions as systemd-sysext's
// overlayfs shows it (read-only lower layers), computed from the layers themselves — commit
// layers through validated dirtree/dirmeta variants, directory layers through fds opened
// with O_NOFOLLOW — and, from that one view, the plugins' reads, the conflict report, the
// offline merge into a directory (every entry created relative to a directory fd, no
// symlink ever followed) and into a commit (dirtrees written from the layers' checksums).
//
// Policy (which layers, which hierarchies, what systemd would skip) lives in lib/overlay.ts;
// this file only applies overlayfs' rules to the layers it is given.
#include "overlay.h"

#include "args.h"
#include "error.h"
#include "objects.h"
#include "repo.h"
#include "worker.h"

#include <dirent.h>
#include <linux/openat2.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <ftw.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_map>

namespace osx {

namespace {

// libostree's passthrough convention for overlayfs whiteouts (checkout
// process_passthrough_whiteouts): an empty regular file `.ostree-wh.NAME` stands for a char
// device 0:0 at NAME.
constexpr const char* kWhiteoutPrefix = ".ostree-wh.";
constexpr size_t kWhiteoutPrefixLen = 11;
constexpr const char* kOpaqueXattr = "trusted.overlay.opaque";
// Where a repository cannot store xattrs (bare-user-only), an opaque directory is committed
// with this empty file in it instead (this library's encoding; libostree has none).
constexpr const char* kOpaqueMarker = ".ostree-sysext-opaque";
constexpr int kMaxDepth = 2048;       // PATH_MAX allows at most 2048 components
constexpr int kMaxSymlinkHops = 32;   // systemd's CHASE_MAX

enum class EType : uint8_t { File, Dir, Symlink, Whiteout, Special };

const char* TypeName(EType t) {
  switch (t) {
    case EType::File: return "file";
    case EType::Dir: return "dir";
    case EType::Symlink: return "symlink";
    case EType::Whiteout: return "whiteout";
    default: return "special";
  }
}

using Xattrs = std::vector<std::pair<std::string, std::string>>;

struct LDir;

// One entry of one layer's directory.
struct LEntry {
  std::string name;
  EType type = EType::File;
  LEntry* parent = nullptr;
  // Commit layers: content checksum (non-dirs; the marker's for whiteouts), dirtree checksum (dirs).
  std::string csum;
  std::string meta;  // dirmeta checksum (dirs of commit layers)
  bool details = false;
  uint32_t mode = 0, uid = 0, gid = 0;
  uint64_t size = 0;
  dev_t dev = 0;
  ino_t ino = 0;
  std::string target;
  bool xattrsLoaded = false;
  Xattrs xattrs;
  int opaque = -1;  // -1 unknown
  std::unique_ptr<LDir> dir;
};

struct LDir {
  std::vector<LEntry> entries;  // sorted by name (strcmp)
  bool opaqueMarker = false;    // commit layers: held kOpaqueMarker (not listed)
  const LEntry* Find(const std::string& name) const {
    auto it = std::lower_bound(entries.begin(), entries.end(), name, [](const LEntry& e, const std::string& n) { return e.name < n; });
    return it != entries.end() && it->name == name ? &*it : nullptr;
  }
  LEntry* Find(const std::string& name) { return const_cast<LEntry*>(static_cast<const LDir*>(this)->Find(name)); }
};

struct Layer {
  std::string name;
  bool isCommit = false;
  std::string commit;
  int rootFd = -1;  // directory layers
  std::string path;
  std::vector<std::string> hierarchies;  // empty: the whole tree (the base)
  LEntry root;
};

bool SetErrno(GError** err, const std::string& what) {
  int e = errno;
  g_set_error(err, G_IO_ERROR, g_io_error_from_errno(e), "%s: %s", what.c_str(), g_strerror(e));
  return false;
}

bool Invalid(GError** err, const std::string& msg) {
  g_set_error_literal(err, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, msg.c_str());
  return false;
}

std::string Join(const std::string& dir, const std::string& name) { return dir.empty() ? name : dir + "/" + name; }

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string part = path.substr(i, j - i);
    if (!part.empty() && part != ".") out.push_back(part);
    i = j + 1;
  }
  return out;
}

bool IsWhiteoutName(const std::string& n) {
  return n.size() > kWhiteoutPrefixLen && n.compare(0, kWhiteoutPrefixLen, kWhiteoutPrefix) == 0;
}

// The loose path of a content object, relative to the repository's dfd (hardlink source).
std::string LoosePath(OstreeRepo* repo, const std::string& csum) {
  bool archive = ostree_repo_get_mode(repo) == OSTREE_REPO_MODE_ARCHIVE;
  return "objects/" + csum.substr(0, 2) + "/" + csum.substr(2) + (archive ? ".filez" : ".file");
}

// Metadata objects and content objects are checked as libostree's fsck does (objects.h).
bool LoadMeta(OstreeRepo* repo, OstreeObjectType type, const std::string& csum, GVariant** out, GError** err) {
  return LoadValidMetadata(repo, type, csum.c_str(), out, err);
}

// A commit layer's root: the dirtree and dirmeta the (validated) commit variant names.
static void SetRootFromCommit(Layer& l, GVariant* commit) {
  g_autoptr(GVariant) t = g_variant_get_child_value(commit, 6);
  g_autoptr(GVariant) m = g_variant_get_child_value(commit, 7);
  l.root.csum = ChecksumHex(t);
  l.root.meta = ChecksumHex(m);
}

Xattrs XattrsFromVariant(GVariant* xv) {
  Xattrs out;
  if (!xv) return out;
  gsize n = g_variant_n_children(xv);
  for (gsize i = 0; i < n; i++) {
    const char* name = nullptr;
    g_autoptr(GVariant) value = nullptr;
    g_variant_get_child(xv, i, "(^&ay@ay)", &name, &value);
    gsize len = 0;
    const char* data = static_cast<const char*>(g_variant_get_fixed_array(value, &len, 1));
    out.emplace_back(name, std::string(data ? data : "", len));
  }
  return out;
}

GVariant* XattrsToVariant(const Xattrs& xs) {
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE("a(ayay)"));
  for (auto& [k, v] : xs) {
    g_variant_builder_add(&b, "(@ay@ay)", g_variant_new_bytestring(k.c_str()),
                          g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, v.data(), v.size(), 1));
  }
  return g_variant_ref_sink(g_variant_builder_end(&b));
}

// overlayfs hides its own xattrs (trusted.overlay.*) from the merged view.
Xattrs Visible(const Xattrs& xs) {
  Xattrs out;
  for (auto& x : xs)
    if (x.first.rfind("trusted.overlay.", 0) != 0) out.push_back(x);
  return out;
}

bool HasOverlayXattr(const Xattrs& xs) {
  for (auto& x : xs)
    if (x.first.rfind("trusted.overlay.", 0) == 0) return true;
  return false;
}

// Opens a directory fd under `dfd` without following a symlink at the last component.
int OpenDirNoFollow(int dfd, const char* name, bool pathOnly) {
  return openat(dfd, name, (pathOnly ? O_PATH : O_RDONLY) | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

// Creates the new directory `dest` (0700 until its metadata is applied; it must not exist)
// relative to its parent's fd and opens it without following a symlink: the fd everything
// below is created under. -1 with `err` set on failure.
int MakeDestination(const std::string& dest, GError** err) {
  g_autofree char* dir = g_path_get_dirname(dest.c_str());
  g_autofree char* base = g_path_get_basename(dest.c_str());
  int pfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (pfd < 0) {
    SetErrno(err, dir);
    return -1;
  }
  int fd = mkdirat(pfd, base, 0700) < 0 ? -1 : OpenDirNoFollow(pfd, base, false);
  if (fd < 0) SetErrno(err, dest);
  close(pfd);
  return fd;
}

bool ReadFdXattrs(int fd, Xattrs& out, GError** err, const std::string& what) {
  out.clear();
  ssize_t n = flistxattr(fd, nullptr, 0);
  if (n < 0) {
    if (errno == ENOTSUP || errno == ENODATA) return true;
    return SetErrno(err, "listing xattrs of " + what);
  }
  std::string names(static_cast<size_t>(n), '\0');
  n = flistxattr(fd, names.data(), names.size());
  if (n < 0) return SetErrno(err, "listing xattrs of " + what);
  names.resize(static_cast<size_t>(n));
  for (size_t i = 0; i < names.size();) {
    std::string key(names.c_str() + i);
    i += key.size() + 1;
    if (key.empty()) continue;
    ssize_t len = fgetxattr(fd, key.c_str(), nullptr, 0);
    if (len < 0) {
      if (errno == ENODATA) continue;
      return SetErrno(err, "reading xattr " + key + " of " + what);
    }
    std::string val(static_cast<size_t>(len), '\0');
    len = fgetxattr(fd, key.c_str(), val.data(), val.size());
    if (len < 0) return SetErrno(err, "reading xattr " + key + " of " + what);
    val.resize(static_cast<size_t>(len));
    out.emplace_back(key, val);
  }
  std::sort(out.begin(), out.end());
  return true;
}

struct LRef {
  int layer = -1;
  LEntry* e = nullptr;
  std::string lpath;  // path inside the layer, no leading slash
};

// One visible (or, for conflicts, hidden) path of the merged view.
struct MView {
  std::string name;
  std::string path;          // merged path, no leading slash
  std::vector<LRef> all;      // every layer's entry here, topmost first
  std::vector<LRef> stack;    // what is merged: one non-dir, or the directories that merge
  bool visible = true;       // false when the topmost entry is a whiteout
  bool mountAncestor = false;  // a hierarchy is mounted at or below this path
  EType type() const { return stack.empty() ? EType::Whiteout : stack[0].e->type; }
};

struct Conflict {
  std::string path;
  std::string kind;
  std::vector<std::string> providers;  // bottom first
  std::vector<std::string> types;      // matching providers
  std::string winner;
};

struct WriteStats {
  uint64_t files = 0, dirs = 0, symlinks = 0, reused = 0, checkouts = 0;
  uint64_t unrepresentableCount = 0;
  std::vector<std::string> unrepresentable;  // the first 1,000
  void Unrepresentable(const std::string& p) {
    if (unrepresentableCount++ < 1000) unrepresentable.push_back(p);
  }
};

}  // namespace

class OverlayEngine {
 public:
  RepoRef repo;               // empty when every layer is a directory
  std::vector<Layer> layers;   // index 0 is the base (bottom)
  bool createMissing = true;
  // systemd >= 256 chmods its meta layer to the host hierarchy's permission bits (st_mode & 0777,
  // 0755 when the host has none), so a mounted hierarchy root shows them; 252-254 show 0755.
  bool hostHierarchyMode = false;
  bool raw = false;  // repository reads: markers are plain files, nothing is interpreted
  std::mutex mu;
  bool prepared = false;
  std::map<std::string, std::vector<LRef>> mounts;  // merged path -> extension refs, topmost first
  std::set<std::string> mountAncestors;
  struct Skip { std::string layer, hierarchy, reason; };
  std::vector<Skip> skipped;
  int metaLayer = -1;
  std::deque<LEntry> metaRoots;  // per-mount roots of the meta layer (hostHierarchyMode)
  std::unordered_map<std::string, std::pair<bool, bool>> cleanCache;  // dirtree+dirmeta -> computed, clean
  bool euidRoot = geteuid() == 0;
  std::atomic<size_t> loadedEntries{0};  // entries of every directory loaded so far (cache cost)

  ~OverlayEngine() {
    for (auto& l : layers)
      if (l.rootFd >= 0) close(l.rootFd);
  }

  // ---- layer access ----

  // Objects a walk over the whole source validated first (a link checkout), kept so they are
  // not loaded and hashed a second time; null for every other engine.
  const ValidatedSet* prevalidated = nullptr;
  bool LoadMetaOnce(OstreeObjectType type, const std::string& csum, GVariant** out, GError** err) {
    if (prevalidated && (*out = prevalidated->Kept(type, csum))) return true;
    return LoadMeta(repo.get(), type, csum, out, err);
  }

  bool LoadDetails(Layer& l, LEntry& e, GError** err) {
    if (e.details) return true;
    if (!l.isCommit) return true;  // directory layers fill details while listing
    if (e.type == EType::Dir) {
      g_autoptr(GVariant) v = nullptr;
      if (!LoadMetaOnce(OSTREE_OBJECT_TYPE_DIR_META, e.meta, &v, err)) return false;
      guint32 uid, gid, mode;
      g_autoptr(GVariant) xv = nullptr;
      g_variant_get(v, "(uuu@a(ayay))", &uid, &gid, &mode, &xv);
      e.uid = GUINT32_FROM_BE(uid);
      e.gid = GUINT32_FROM_BE(gid);
      e.mode = GUINT32_FROM_BE(mode);
      e.xattrs = XattrsFromVariant(xv);
      e.xattrsLoaded = true;
      e.details = true;
      return true;
    }
    if (!CheckContentObject(repo.get(), e.csum.c_str(), err)) return false;
    g_autoptr(GFileInfo) fi = nullptr;
    g_autoptr(GVariant) xv = nullptr;
    if (!ostree_repo_load_file(repo.get(), e.csum.c_str(), nullptr, &fi, &xv, nullptr, err)) return false;
    e.uid = g_file_info_get_attribute_uint32(fi, "unix::uid");
    e.gid = g_file_info_get_attribute_uint32(fi, "unix::gid");
    e.mode = g_file_info_get_attribute_uint32(fi, "unix::mode");
    if (e.type != EType::Whiteout) {
      if (S_ISLNK(e.mode)) {
        e.type = EType::Symlink;
        const char* t = g_file_info_get_attribute_byte_string(fi, "standard::symlink-target");
        e.target = t ? t : "";
      } else if (S_ISREG(e.mode)) {
        e.type = EType::File;
      } else {
        return Invalid(err, "file object " + e.csum + " has an unsupported mode (damaged repository)");
      }
    }
    if (g_file_info_has_attribute(fi, "standard::size")) e.size = static_cast<uint64_t>(g_file_info_get_size(fi));
    e.xattrs = XattrsFromVariant(xv);
    e.xattrsLoaded = true;
    e.details = true;
    return true;
  }

  bool LoadXattrs(Layer& l, LEntry& e, const std::string& lpath, GError** err) {
    if (e.xattrsLoaded) return true;
    if (l.isCommit) return LoadDetails(l, e, err);
    if (e.type != EType::Dir && e.type != EType::File) {
      e.xattrsLoaded = true;  // symlinks and devices: not read through an fd
      return true;
    }
    int fd = lpath.empty() ? dup(l.rootFd) : OpenInLayer(l, lpath, false, err);
    if (fd < 0) return lpath.empty() ? SetErrno(err, "dup") : false;
    bool ok = ReadFdXattrs(fd, e.xattrs, err, l.path + "/" + lpath);
    close(fd);
    e.xattrsLoaded = ok;
    return ok;
  }

  bool IsOpaque(Layer& l, LEntry& e, const std::string& lpath, GError** err, bool* out) {
    if (e.opaque < 0) {
      if (!LoadXattrs(l, e, lpath, err)) return false;
      e.opaque = 0;
      for (auto& x : e.xattrs)
        if (x.first == kOpaqueXattr && x.second == "y") e.opaque = 1;
      if (l.isCommit) {
        if (!LoadDir(l, e, lpath, err)) return false;
        if (e.dir->opaqueMarker) e.opaque = 1;
      }
    }
    *out = e.opaque == 1;
    return true;
  }

  // Opens `lpath` (no leading slash) inside a directory layer: every component with
  // O_NOFOLLOW, so a symlink anywhere on the way is an error, never followed.
  int OpenInLayer(Layer& l, const std::string& lpath, bool pathOnly, GError** err) {
#ifdef SYS_openat2
    // One call where the kernel has openat2: the same guarantee (no symlink on the way, never
    // outside the layer) without a lookup from the root per component.
    if (!lpath.empty() && lpath.size() < PATH_MAX) {
      struct open_how how {};
      how.flags = static_cast<uint64_t>((pathOnly ? O_PATH : O_RDONLY | O_NONBLOCK) | O_NOFOLLOW | O_CLOEXEC);
      how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
      long fd2 = syscall(SYS_openat2, l.rootFd, lpath.c_str(), &how, sizeof how);
      if (fd2 >= 0) return static_cast<int>(fd2);
      if (errno != ENOSYS && errno != EINVAL && errno != ENAMETOOLONG && errno != EPERM && errno != ELOOP && errno != EXDEV) {
        SetErrno(err, l.path + "/" + lpath);
        return -1;
      }
      // ELOOP/EXDEV: a symlink or mount on the way; the walk below reports it as the old path did.
    }
#endif
    int fd = dup(l.rootFd);
    if (fd < 0) {
      SetErrno(err, "dup");
      return -1;
    }
    auto parts = Split(lpath);
    for (size_t i = 0; i < parts.size(); i++) {
      bool last = i + 1 == parts.size();
      // O_NONBLOCK: a FIFO swapped in for a file must not block the open.
      int next = openat(fd, parts[i].c_str(), ((last && pathOnly) ? O_PATH : O_RDONLY | O_NONBLOCK) | O_NOFOLLOW | O_CLOEXEC | (last ? 0 : O_DIRECTORY));
      if (next < 0 && last && errno == ELOOP) next = openat(fd, parts[i].c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
      int saved = errno;
      close(fd);
      if (next < 0) {
        errno = saved;
        SetErrno(err, l.path + "/" + lpath);
        return -1;
      }
      fd = next;
    }
    return fd;
  }

  bool CheckCycle(const LEntry& e, GError** err) {
    int depth = 0;
    for (const LEntry* p = e.parent; p; p = p->parent) {
      if (++depth > kMaxDepth) return Invalid(err, "directory tree deeper than " + std::to_string(kMaxDepth) + " levels");
      if (!e.csum.empty() && p->csum == e.csum && p->meta == e.meta && p->type == EType::Dir)
        return Invalid(err, "dirtree " + e.csum + " contains itself (damaged repository)");
    }
    return true;
  }

  bool LoadDir(Layer& l, LEntry& e, const std::string& lpath, GError** err) {
    if (e.dir) return true;
    if (e.type != EType::Dir) return Invalid(err, "not a directory: " + lpath);
    if (!CheckCycle(e, err)) return false;
    auto d = std::make_unique<LDir>();
    if (l.isCommit) {
      g_autoptr(GVariant) v = nullptr;
      if (!LoadMetaOnce(OSTREE_OBJECT_TYPE_DIR_TREE, e.csum, &v, err)) return false;
      std::vector<DirtreeFile> files;
      std::vector<DirtreeDir> dirs;
      if (!ReadDirtree(v, &files, &dirs)) {
        SetCorrupt(err, OSTREE_OBJECT_TYPE_DIR_TREE, e.csum.c_str(), "entries do not frame as a dirtree");
        return false;
      }
      d->entries.reserve(files.size() + dirs.size());
      // One pass over the entries as ReadDirtree found them; whiteouts are told apart
      // afterwards, only when a name has the prefix.
      bool prefixed = false;
      for (const DirtreeFile& f : files) {
        const char* name = f.name;
        if (!raw && strcmp(name, kOpaqueMarker) == 0) {
          d->opaqueMarker = true;
          continue;
        }
        LEntry x;
        x.name = name;
        x.csum = ChecksumHex(f.csum);
        x.type = EType::File;  // file or symlink: decided by LoadDetails
        if (!raw && IsWhiteoutName(x.name)) prefixed = true;
        d->entries.push_back(std::move(x));
      }
      if (prefixed) {
        // A prefixed name is a whiteout unless the directory also holds the name it hides
        // (then it is an ordinary file that happens to carry the prefix).
        std::set<std::string> real;
        for (auto& x : d->entries) real.insert(x.name);
        if (d->opaqueMarker) real.insert(kOpaqueMarker);
        for (auto& x : d->entries) {
          if (!IsWhiteoutName(x.name) || real.count(x.name.substr(kWhiteoutPrefixLen))) continue;
          x.name = x.name.substr(kWhiteoutPrefixLen);
          x.type = EType::Whiteout;
        }
      }
      for (const DirtreeDir& dd : dirs) {
        LEntry x;
        x.name = dd.name;
        x.type = EType::Dir;
        x.csum = ChecksumHex(dd.tree);
        x.meta = ChecksumHex(dd.meta);
        d->entries.push_back(std::move(x));
      }
    } else {
      int fd = lpath.empty() ? openat(l.rootFd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : OpenInLayer(l, lpath, false, err);
      if (fd < 0) return lpath.empty() ? SetErrno(err, l.path) : false;
      DIR* dp = fdopendir(fd);
      if (!dp) {
        close(fd);
        return SetErrno(err, l.path + "/" + lpath);
      }
      errno = 0;
      while (struct dirent* de = readdir(dp)) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        struct stat st;
        if (fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
          closedir(dp);
          return SetErrno(err, l.path + "/" + Join(lpath, de->d_name));
        }
        LEntry x;
        x.name = de->d_name;
        x.mode = st.st_mode;
        x.uid = st.st_uid;
        x.gid = st.st_gid;
        x.size = static_cast<uint64_t>(st.st_size);
        x.dev = st.st_dev;
        x.ino = st.st_ino;
        x.details = true;
        if (S_ISREG(st.st_mode)) x.type = EType::File;
        else if (S_ISDIR(st.st_mode)) x.type = EType::Dir;
        else if (S_ISLNK(st.st_mode)) {
          x.type = EType::Symlink;
          char buf[PATH_MAX + 1];
          ssize_t n = readlinkat(dirfd(dp), de->d_name, buf, PATH_MAX);
          if (n < 0) {
            closedir(dp);
            return SetErrno(err, l.path + "/" + Join(lpath, de->d_name));
          }
          x.target.assign(buf, static_cast<size_t>(n));
        } else if (S_ISCHR(st.st_mode) && st.st_rdev == 0) x.type = EType::Whiteout;
        else x.type = EType::Special;
        d->entries.push_back(std::move(x));
        errno = 0;
      }
      int rerr = errno;
      closedir(dp);
      if (rerr) {
        errno = rerr;
        return SetErrno(err, l.path + "/" + lpath);
      }
    }
    std::sort(d->entries.begin(), d->entries.end(), [](const LEntry& a, const LEntry& b) { return a.name < b.name; });
    for (size_t i = 1; i < d->entries.size(); i++)
      if (d->entries[i].name == d->entries[i - 1].name) return Invalid(err, "duplicate name " + d->entries[i].name + " in dirtree " + e.csum + " (damaged repository)");
    for (auto& x : d->entries) x.parent = &e;
    loadedEntries.fetch_add(d->entries.size(), std::memory_order_relaxed);
    e.dir = std::move(d);
    return true;
  }

  // Resolves `path` inside layer `l` as systemd's chase() with CHASE_PREFIX_ROOT does:
  // symlinks are followed, absolute targets and `..` stay inside the layer's root.
  bool Chase(Layer& l, const std::string& path, std::vector<std::string>* resolved, LEntry** out, GError** err,
             std::vector<std::string>* missingTail = nullptr) {
    std::vector<std::string> todo = Split(path);
    std::reverse(todo.begin(), todo.end());
    std::vector<std::string> done;
    std::vector<LEntry*> stack{&l.root};
    int hops = 0;
    *out = nullptr;
    while (!todo.empty()) {
      std::string part = todo.back();
      todo.pop_back();
      if (part == "..") {
        if (!done.empty()) {
          done.pop_back();
          stack.pop_back();
        }
        continue;
      }
      LEntry* cur = stack.back();
      if (cur->type != EType::Dir) return true;
      std::string lpath;
      for (auto& d : done) lpath = Join(lpath, d);
      if (!LoadDir(l, *cur, lpath, err)) return false;
      LEntry* next = cur->dir->Find(part);
      if (!next || next->type == EType::Whiteout) {
        // CHASE_NONEXISTENT: the rest of the path is taken literally.
        if (missingTail) {
          *resolved = done;
          missingTail->push_back(part);
          while (!todo.empty()) {
            std::string p = todo.back();
            todo.pop_back();
            if (p == "..") {
              if (!missingTail->empty()) missingTail->pop_back();
            } else {
              missingTail->push_back(p);
            }
          }
        }
        return true;
      }
      if (!LoadDetails(l, *next, err)) return false;
      if (next->type == EType::Symlink) {
        if (++hops > kMaxSymlinkHops) return true;
        auto t = Split(next->target);
        if (!next->target.empty() && next->target[0] == '/') {
          done.clear();
          stack.resize(1);
        }
        for (auto it = t.rbegin(); it != t.rend(); ++it) todo.push_back(*it);
        continue;
      }
      done.push_back(part);
      stack.push_back(next);
    }
    if (stack.back()->type != EType::Dir) return true;
    *resolved = done;
    *out = stack.back();
    return true;
  }

  // ---- the merged view ----

  // Finds where each extension hierarchy is mounted (systemd chases it in the base and in
  // each extension) once, before the first read.
  bool LoadRoot(Layer& l, GError** err) {
    if (!l.isCommit || !l.root.csum.empty()) return true;
    g_autoptr(GVariant) v = nullptr;
    if (!LoadMeta(repo.get(), OSTREE_OBJECT_TYPE_COMMIT, l.commit, &v, err)) return false;
    SetRootFromCommit(l, v);
    return true;
  }

  // Finds where each extension hierarchy is mounted (systemd chases it in the base and in
  // each extension) once, before the first read. A hierarchy is `path`, or `ext:base` when
  // the extension's `ext` goes onto the base's `base` (confexts onto usr/etc).
  bool Prepare(GError** err) {
    if (prepared) return true;
    for (auto& l : layers)
      if (!LoadRoot(l, err)) return false;
    std::map<std::string, std::vector<std::pair<size_t, std::string>>> byBase;  // base path -> (layer, ext path)
    for (size_t i = 1; i < layers.size(); i++) {
      for (auto& spec : layers[i].hierarchies) {
        auto colon = spec.find(':');
        std::string ext = colon == std::string::npos ? spec : spec.substr(0, colon);
        std::string base = colon == std::string::npos ? spec : spec.substr(colon + 1);
        byBase[base].emplace_back(i, ext);
      }
    }
    // systemd's META layer: the topmost lower dir of every mount (mkdir_p 0755, root-owned,
    // no xattrs), so each mounted hierarchy root shows that metadata; with hostHierarchyMode
    // each mount's root gets the host hierarchy's permission bits instead (metaRoots).
    Layer meta;
    meta.name = "systemd-sysext";
    meta.root.type = EType::Dir;
    meta.root.mode = S_IFDIR | 0755;
    meta.root.details = meta.root.xattrsLoaded = true;
    meta.root.opaque = 0;
    meta.root.dir = std::make_unique<LDir>();
    layers.push_back(std::move(meta));
    metaLayer = static_cast<int>(layers.size()) - 1;
    for (auto& [h, users] : byBase) {
      std::vector<std::string> where, tail;
      LEntry* baseDir = nullptr;
      if (!Chase(layers[0], h, &where, &baseDir, err, &tail)) return false;
      if (!baseDir && tail.empty()) {
        for (auto& u : users) skipped.push_back({layers[u.first].name, h, "the base's " + h + " is not a directory"});
        continue;
      }
      if (!baseDir && where.empty() && !createMissing) {
        // systemd cannot create the mount point on an immutable root (an OSTree deployment):
        // it logs "Failed to create hierarchy mount point" and shows nothing there.
        for (auto& u : users) skipped.push_back({layers[u.first].name, h, "the base has no " + h + " and its root is immutable"});
        continue;
      }
      std::string mpath;
      for (auto& w : where) mpath = Join(mpath, w);
      for (auto& t : tail) mpath = Join(mpath, t);
      if (mpath.empty()) continue;  // a hierarchy chasing to the root itself is never mounted
      LEntry* metaRoot = &layers[metaLayer].root;
      if (hostHierarchyMode && baseDir) {
        if (!LoadDetails(layers[0], *baseDir, err)) return false;
        LEntry& m = metaRoots.emplace_back();
        m.name = mpath;
        m.type = EType::Dir;
        m.mode = S_IFDIR | (baseDir->mode & 0777);
        m.details = m.xattrsLoaded = true;
        m.opaque = 0;
        m.dir = std::make_unique<LDir>();
        metaRoot = &m;
      }
      std::vector<LRef> refs{{metaLayer, metaRoot, ""}};
      for (auto it = users.rbegin(); it != users.rend(); ++it) {  // topmost layer first
        Layer& l = layers[it->first];
        std::vector<std::string> lw;
        LEntry* d = nullptr;
        if (!Chase(l, it->second, &lw, &d, err)) return false;
        std::string lp;
        for (auto& w : lw) lp = Join(lp, w);
        if (d && !LoadDir(l, *d, lp, err)) return false;
        if (!d || d->dir->entries.empty()) {
          // systemd: "Hierarchy '%s' in extension '%s' is empty, not merging" (or absent).
          skipped.push_back({l.name, it->second, d ? "empty" : "absent"});
          continue;
        }
        refs.push_back({static_cast<int>(it->first), d, lp});
      }
      if (refs.size() == 1) continue;  // no extension contributes: systemd mounts nothing
      if (baseDir) refs.push_back({0, baseDir, mpath});
      mounts[mpath] = std::move(refs);
      std::string a;
      for (auto& p : Split(mpath)) {
        a = Join(a, p);
        mountAncestors.insert(a);
      }
    }
    prepared = true;
    return true;
  }

  // Which of `all` merge (overlayfs: down to the first non-directory, or an opaque one).
  bool Resolve(MView& v, GError** err) {
    v.stack.clear();
    if (v.all.empty()) {
      v.visible = false;
      return true;
    }
    LRef& top = v.all[0];
    if (top.e->type == EType::Whiteout) {
      v.visible = false;
      return true;
    }
    v.visible = true;
    v.stack.push_back(top);
    if (top.e->type != EType::Dir) return true;
    if (mounts.count(v.path)) {
      // Layer roots always merge (an opaque mark on an extension's usr is ignored).
      v.stack = v.all;
      return true;
    }
    for (size_t i = 0; i + 1 < v.all.size(); i++) {
      LRef& upper = v.all[i];
      bool opaque = false;
      if (!IsOpaque(layers[upper.layer], *upper.e, upper.lpath, err, &opaque)) return false;
      if (opaque) break;
      LRef& r = v.all[i + 1];
      if (r.e->type != EType::Dir) break;
      v.stack.push_back(r);
    }
    return true;
  }

  bool Root(MView* out, GError** err) {
    if (!Prepare(err)) return false;
    MView v;
    v.all.push_back({0, &layers[0].root, ""});
    v.mountAncestor = true;
    if (mounts.count("")) v.all = mounts[""];
    if (!Resolve(v, err)) return false;
    *out = std::move(v);
    return true;
  }

  bool Children(const MView& m, std::vector<MView>* out, GError** err) {
    out->clear();
    if (!m.visible || m.type() != EType::Dir) return true;
    if (static_cast<int>(std::count(m.path.begin(), m.path.end(), '/')) > kMaxDepth)
      return Invalid(err, "merged tree deeper than " + std::to_string(kMaxDepth) + " levels");
    std::map<std::string, std::vector<LRef>> names;
    for (const LRef& r : m.stack) {
      Layer& l = layers[r.layer];
      if (!LoadDir(l, *r.e, r.lpath, err)) return false;
      for (LEntry& e : r.e->dir->entries) names[e.name].push_back({r.layer, &e, Join(r.lpath, e.name)});
    }
    // Mount points (and their parents) systemd creates with mkdir_p where the base lacks them.
    for (const std::string& a : mountAncestors) {
      auto slash = a.rfind('/');
      std::string parent = slash == std::string::npos ? "" : a.substr(0, slash);
      std::string name = slash == std::string::npos ? a : a.substr(slash + 1);
      if (parent == m.path && !names.count(name)) names[name];
    }
    out->reserve(names.size());
    for (auto& [name, refs] : names) {
      MView c;
      c.name = name;
      c.path = Join(m.path, name);
      auto mit = mounts.find(c.path);
      c.all = mit != mounts.end() ? mit->second : std::move(refs);
      c.mountAncestor = mountAncestors.count(c.path) > 0;
      if (c.all.empty() && c.mountAncestor) c.all.push_back({metaLayer, &layers[metaLayer].root, ""});
      if (!Resolve(c, err)) return false;
      out->push_back(std::move(c));
    }
    return true;
  }

  // One child of a merged directory, without building its siblings (path lookups).
  bool Child(const MView& m, const std::string& name, MView* out, bool* found, GError** err) {
    *found = false;
    if (!m.visible || m.type() != EType::Dir) return true;
    MView c;
    c.name = name;
    c.path = Join(m.path, name);
    auto mit = mounts.find(c.path);
    if (mit != mounts.end()) {
      c.all = mit->second;
    } else {
      for (const LRef& r : m.stack) {
        Layer& l = layers[r.layer];
        if (!LoadDir(l, *r.e, r.lpath, err)) return false;
        if (LEntry* e = r.e->dir->Find(name)) c.all.push_back({r.layer, e, Join(r.lpath, name)});
      }
    }
    c.mountAncestor = mountAncestors.count(c.path) > 0;
    if (c.all.empty() && c.mountAncestor) c.all.push_back({metaLayer, &layers[metaLayer].root, ""});
    if (c.all.empty()) return true;
    if (!Resolve(c, err)) return false;
    *found = c.visible;
    *out = std::move(c);
    return true;
  }

  // The merged entry at `path`; *found=false when nothing is visible there. Symlinks on the
  // way are not followed (the view is lstat-like at every component).
  bool Find(const std::string& path, MView* out, bool* found, GError** err) {
    MView cur;
    if (!Root(&cur, err)) return false;
    auto parts = Split(path);
    if (parts.size() > static_cast<size_t>(kMaxDepth)) return Invalid(err, "path has more than " + std::to_string(kMaxDepth) + " components");
    for (auto& p : parts) {
      if (p == "..") return Invalid(err, "path must not contain '..'");
      MView next;
      bool ok = false;
      if (!Child(cur, p, &next, &ok, err)) return false;
      if (!ok) {
        *found = false;
        return true;
      }
      cur = std::move(next);
    }
    *found = cur.visible;
    *out = std::move(cur);
    return true;
  }

  // ---- conflicts ----

  std::string LayerName(int i) const { return i == 0 ? "base" : layers[i].name; }

  bool SameContent(LRef& a, LRef& b, bool* same, GError** err) {
    Layer& la = layers[a.layer];
    Layer& lb = layers[b.layer];
    if (!LoadDetails(la, *a.e, err) || !LoadDetails(lb, *b.e, err)) return false;
    *same = false;
    if (a.e->type != b.e->type) return true;
    if (a.e->type == EType::Symlink) {
      *same = a.e->target == b.e->target;
      return true;
    }
    if (a.e->type != EType::File) return true;
    if ((a.e->mode & 07777) != (b.e->mode & 07777) || a.e->size != b.e->size) return true;
    if (la.isCommit && lb.isCommit && a.e->csum == b.e->csum) {
      *same = true;
      return true;
    }
    std::string x, y;
    if (!ReadAll(la, *a.e, a.lpath, UINT64_MAX, &x, err) || !ReadAll(lb, *b.e, b.lpath, UINT64_MAX, &y, err)) return false;
    *same = x == y;
    return true;
  }

  bool CollectConflicts(const MView& m, std::vector<Conflict>* out, GError** err) {
    std::vector<MView> kids;
    if (!Children(m, &kids, err)) return false;
    for (MView& c : kids) {
      if (c.all.size() >= 2 && c.all[0].layer != metaLayer) {
        for (auto& r : c.all)
          if (!LoadDetails(layers[r.layer], *r.e, err)) return false;
        LRef& top = c.all[0];
        std::string kind;
        EType tt = top.e->type;
        bool lowerDir = false, lowerNonDir = false;
        for (size_t i = 1; i < c.all.size(); i++) (c.all[i].e->type == EType::Dir ? lowerDir : lowerNonDir) = true;
        if (tt == EType::Whiteout) {
          kind = "whiteout";
        } else if (tt == EType::Dir) {
          if (c.stack.size() < c.all.size()) {
            LRef& below = c.all[c.stack.size()];
            kind = below.e->type == EType::Dir ? "opaque" : "type";
          } else {
            // Directories merge; the topmost's metadata is what shows.
            LRef& next = c.all[1];
            if (!LoadDetails(layers[next.layer], *next.e, err)) return false;
            if (top.e->mode != next.e->mode || top.e->uid != next.e->uid || top.e->gid != next.e->gid) kind = "directory-metadata";
          }
        } else if (lowerDir) {
          kind = "type";
        } else {
          LRef& next = c.all[1];
          if (next.e->type == EType::Whiteout) {
            kind = "";
          } else if (next.e->type != tt) {
            kind = "type";
          } else {
            bool same = false;
            if (!SameContent(top, next, &same, err)) return false;
            if (!same) kind = "content";
            for (size_t i = 2; kind.empty() && i < c.all.size() && c.all[i].e->type == tt; i++) {
              if (!SameContent(top, c.all[i], &same, err)) return false;
              if (!same) kind = "content";
            }
          }
          (void)lowerNonDir;
        }
        if (!kind.empty()) {
          Conflict k;
          k.path = c.path;
          k.kind = kind;
          for (auto it = c.all.rbegin(); it != c.all.rend(); ++it) {
            k.providers.push_back(LayerName(it->layer));
            k.types.push_back(TypeName(it->e->type));
          }
          k.winner = LayerName(top.layer);
          out->push_back(std::move(k));
        }
      }
      if (c.visible && c.type() == EType::Dir && (c.stack.size() >= 2 || c.mountAncestor)) {
        if (!CollectConflicts(c, out, err)) return false;
      }
    }
    return true;
  }

  // ---- reads ----

  bool ReadAll(Layer& l, LEntry& e, const std::string& lpath, uint64_t max, std::string* out, GError** err) {
    if (!LoadDetails(l, e, err)) return false;
    if (e.type != EType::File) {
      g_set_error(err, G_IO_ERROR, G_IO_ERROR_IS_DIRECTORY, "not a regular file");
      return false;
    }
    if (e.size > max) {
      g_set_error(err, BindingErrorQuark(), BINDING_ERROR_LIMIT, "file is %" G_GUINT64_FORMAT " bytes, over the limit of %" G_GUINT64_FORMAT, e.size, max);
      return false;
    }
    out->clear();
    if (l.isCommit) {
      // In the bare modes the loose object is the file's content: read it directly. Through
      // load_file, GLib probes every stream's fd for pollability (an epoll instance per read),
      // a third of a small read's cost. Not loose here (a parent repository): libostree.
      if (ostree_repo_get_mode(repo.get()) != OSTREE_REPO_MODE_ARCHIVE) {
        int fd = openat(ostree_repo_get_dfd(repo.get()), LoosePath(repo.get(), e.csum).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd >= 0) {
          struct stat st;
          if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != e.size) {
            close(fd);
            return Invalid(err, "content object " + e.csum + " is not the file its commit records (damaged repository)");
          }
          bool ok = ReadFd(fd, e.size, out, "content object " + e.csum, err);
          close(fd);
          return ok;
        }
        if (errno != ENOENT) return SetErrno(err, "open content object " + e.csum);
      }
      g_autoptr(GInputStream) in = nullptr;
      if (!ostree_repo_load_file(repo.get(), e.csum.c_str(), &in, nullptr, nullptr, nullptr, err)) return false;
      out->resize(e.size);
      gsize got = 0;
      if (e.size > 0 && !g_input_stream_read_all(in, out->data(), out->size(), &got, nullptr, err)) return false;
      out->resize(got);
      return true;
    }
    int fd = OpenInLayer(l, lpath, false, err);
    if (fd < 0) return false;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
      close(fd);
      return Invalid(err, l.path + "/" + lpath + " changed while it was read");
    }
    bool ok = ReadFd(fd, std::min<uint64_t>(static_cast<uint64_t>(st.st_size), max), out, l.path + "/" + lpath, err);
    close(fd);
    return ok;
  }

  // Up to `size` bytes of `fd` into `out` (fewer at end of file).
  static bool ReadFd(int fd, uint64_t size, std::string* out, const std::string& what, GError** err) {
    out->resize(static_cast<size_t>(size));
    size_t got = 0;
    while (got < out->size()) {
      ssize_t n = read(fd, out->data() + got, out->size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return SetErrno(err, "read " + what);
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    out->resize(got);
    return true;
  }

  // ---- writing into a directory ----

  bool ApplyMeta(int fd, const char* name, const LEntry& e, const Xattrs& xs, bool symlink, WriteStats& st, const std::string& path, GError** err) {
    // Owner first (chown clears setuid bits), then xattrs, then the mode.
    if (euidRoot) {
      int r = name ? fchownat(fd, name, e.uid, e.gid, AT_SYMLINK_NOFOLLOW) : fchown(fd, e.uid, e.gid);
      if (r < 0) return SetErrno(err, "chown " + path);
    } else if (e.uid != geteuid()) {
      st.Unrepresentable(path);
    }
    if (!symlink) {
      for (auto& [k, v] : xs) {
        int r = fsetxattr(fd, k.c_str(), v.data(), v.size(), 0);
        if (r < 0) {
          if (!euidRoot && (errno == EPERM || errno == ENOTSUP)) {
            st.Unrepresentable(path);
            continue;
          }
          return SetErrno(err, "setting xattr " + k + " on " + path);
        }
      }
      if (fchmod(fd, e.mode & 07777) < 0) return SetErrno(err, "chmod " + path);
    }
    return true;
  }

  bool WriteLeaf(const LRef& r, int dfd, const std::string& name, const std::string& path, WriteStats& st,
                 std::map<std::pair<dev_t, ino_t>, std::string>& links, GError** err) {
    Layer& l = layers[r.layer];
    LEntry& e = *r.e;
    if (!LoadDetails(l, e, err)) return false;
    if (e.type == EType::Symlink) {
      if (symlinkat(e.target.c_str(), dfd, name.c_str()) < 0) return SetErrno(err, "symlink " + path);
      st.symlinks++;
      return ApplyMeta(dfd, name.c_str(), e, {}, true, st, path, err);
    }
    if (e.type == EType::Special) {
      if (!euidRoot) {
        st.Unrepresentable(path);
        return true;
      }
      struct stat sst;
      int pfd = OpenInLayer(l, r.lpath, true, err);
      if (pfd < 0) return false;
      int rc = fstat(pfd, &sst);
      close(pfd);
      if (rc < 0) return SetErrno(err, path);
      if (mknodat(dfd, name.c_str(), sst.st_mode, sst.st_rdev) < 0) return SetErrno(err, "mknod " + path);
      return ApplyMeta(dfd, name.c_str(), e, {}, true, st, path, err) && (fchmodat(dfd, name.c_str(), e.mode & 07777, 0) == 0 || SetErrno(err, path));
    }
    st.files++;
    if (!l.isCommit) {
      // Hardlinks inside one directory layer stay hardlinks, as cp -a keeps them.
      auto key = std::make_pair(e.dev, e.ino);
      auto it = links.find(key);
      if (it != links.end() && linkat(rootOut, it->second.c_str(), dfd, name.c_str(), 0) == 0) return true;
      int in = OpenInLayer(l, r.lpath, false, err);
      if (in < 0) return false;
      struct stat sst;
      if (fstat(in, &sst) < 0 || !S_ISREG(sst.st_mode)) {
        close(in);
        return Invalid(err, l.path + "/" + r.lpath + " changed while it was copied");
      }
      int out = openat(dfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (out < 0) {
        close(in);
        return SetErrno(err, "create " + path);
      }
      Xattrs src;
      bool ok = CopyFd(in, out, static_cast<uint64_t>(sst.st_size), path, err) && ReadFdXattrs(in, src, err, l.path + "/" + r.lpath);
      close(in);
      if (ok) ok = ApplyMeta(out, nullptr, e, Visible(src), false, st, path, err);
      close(out);
      if (ok && sst.st_nlink > 1) links[key] = RelOut(path);
      return ok;
    }
    // Commit layer: hardlink the object where its on-disk form is exactly the file (bare
    // as root); otherwise write the content with the recorded metadata.
    OstreeRepoMode mode = ostree_repo_get_mode(repo.get());
    if (mode == OSTREE_REPO_MODE_BARE && euidRoot && e.size > 0 && !HasOverlayXattr(e.xattrs)) {
      std::string lp = LoosePath(repo.get(), e.csum);
      if (linkat(ostree_repo_get_dfd(repo.get()), lp.c_str(), dfd, name.c_str(), 0) == 0) return true;
      if (errno != EXDEV && errno != EMLINK && errno != EPERM) return SetErrno(err, "link " + path);
    }
    g_autoptr(GInputStream) in = nullptr;
    if (!ostree_repo_load_file(repo.get(), e.csum.c_str(), &in, nullptr, nullptr, nullptr, err)) return false;
    int out = openat(dfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) return SetErrno(err, "create " + path);
    g_autoptr(GOutputStream) os = g_unix_output_stream_new(out, FALSE);
    bool ok = e.size == 0 || g_output_stream_splice(os, in, G_OUTPUT_STREAM_SPLICE_NONE, nullptr, err) >= 0;
    if (ok) ok = ApplyMeta(out, nullptr, e, Visible(e.xattrs), false, st, path, err);
    close(out);
    return ok;
  }

  bool CopyFd(int in, int out, uint64_t size, const std::string& path, GError** err) {
    uint64_t left = size;
    while (left > 0) {
      ssize_t n = copy_file_range(in, nullptr, out, nullptr, left, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) break;
      if (n < 0) return SetErrno(err, "copy " + path);
      if (n == 0) return true;
      left -= static_cast<uint64_t>(n);
    }
    char buf[65536];
    while (left > 0) {
      ssize_t n = read(in, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return SetErrno(err, "read " + path);
      if (n == 0) break;
      for (ssize_t off = 0; off < n;) {
        ssize_t w = write(out, buf + off, static_cast<size_t>(n - off));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return SetErrno(err, "write " + path);
        off += w;
      }
      left -= static_cast<uint64_t>(n);
    }
    return true;
  }

  int rootOut = -1;
  std::string RelOut(const std::string& path) const { return path; }

  // Whether a commit subtree holds nothing the merged view would change (whiteout markers,
  // overlay xattrs): then libostree's own checkout can write it whole.
  bool Clean(Layer& l, LEntry& e, const std::string& lpath, bool* clean, GError** err) {
    std::string key = e.csum + e.meta;
    auto it = cleanCache.find(key);
    if (it != cleanCache.end()) {
      *clean = it->second.second;
      return true;
    }
    if (!LoadDetails(l, e, err) || !LoadDir(l, e, lpath, err)) return false;
    bool ok = !HasOverlayXattr(e.xattrs) && !e.dir->opaqueMarker;
    for (LEntry& c : e.dir->entries) {
      if (!ok) break;
      if (c.type == EType::Whiteout || IsWhiteoutName(c.name)) ok = false;
      else if (c.type == EType::Dir) {
        bool sub = false;
        if (!Clean(l, c, Join(lpath, c.name), &sub, err)) return false;
        ok = sub;
      }
    }
    cleanCache[key] = {true, ok};
    *clean = ok;
    return true;
  }

  bool WriteDirectory(const MView& m, int dfd, WriteStats& st, std::map<std::pair<dev_t, ino_t>, std::string>& links,
                      GCancellable* c, OstreeRepoCheckoutMode cmode, GError** err) {
    std::vector<MView> kids;
    if (!Children(m, &kids, err)) return false;
    for (MView& k : kids) {
      if (g_cancellable_set_error_if_cancelled(c, err)) return false;
      if (!k.visible) continue;
      if (k.type() != EType::Dir) {
        if (!WriteLeaf(k.stack[0], dfd, k.name, k.path, st, links, err)) return false;
        continue;
      }
      LRef& top = k.stack[0];
      Layer& tl = layers[top.layer];
      if (k.stack.size() == 1 && !k.mountAncestor && tl.isCommit) {
        bool clean = false;
        if (!Clean(tl, *top.e, top.lpath, &clean, err)) return false;
        if (clean) {
          OstreeRepoCheckoutAtOptions opts{};
          opts.mode = cmode;
          opts.overwrite_mode = OSTREE_REPO_CHECKOUT_OVERWRITE_NONE;
          std::string sub = "/" + top.lpath;
          opts.subpath = sub.c_str();
          if (!ostree_repo_checkout_at(repo.get(), &opts, dfd, k.name.c_str(), tl.commit.c_str(), c, err)) return false;
          st.checkouts++;
          continue;
        }
      }
      if (mkdirat(dfd, k.name.c_str(), 0700) < 0) return SetErrno(err, "mkdir " + k.path);
      int sub = OpenDirNoFollow(dfd, k.name.c_str(), false);
      if (sub < 0) return SetErrno(err, "open " + k.path);
      st.dirs++;
      bool ok = WriteDirectory(k, sub, st, links, c, cmode, err);
      if (ok) ok = LoadXattrs(tl, *top.e, top.lpath, err) && LoadDetails(tl, *top.e, err);
      if (ok) ok = ApplyMeta(sub, nullptr, *top.e, Visible(top.e->xattrs), false, st, k.path, err);
      close(sub);
      if (!ok) return false;
    }
    return true;
  }

  // ---- a hardlink checkout of one commit, at the floor: linkat by checksum ----
  //
  // Where the repository's object files are exactly the files (bare as root, mode none;
  // bare-user(-only), mode user), a checkout is mkdir per directory and linkat per file, as
  // `cp -al` does; libostree's checkout also opens, stats and lists the xattrs of every object.

  std::unordered_map<std::string, std::shared_ptr<LEntry>> metaCache;  // dirmeta -> details

  bool DirMeta(Layer& l, LEntry& e, GError** err) {
    auto it = metaCache.find(e.meta);
    if (it != metaCache.end()) {
      e.uid = it->second->uid;
      e.gid = it->second->gid;
      e.mode = it->second->mode;
      e.xattrs = it->second->xattrs;
      e.xattrsLoaded = e.details = true;
      return true;
    }
    if (!LoadDetails(l, e, err)) return false;
    auto m = std::make_shared<LEntry>();
    m->uid = e.uid;
    m->gid = e.gid;
    m->mode = e.mode;
    m->xattrs = e.xattrs;
    metaCache[e.meta] = m;
    return true;
  }

  // A checked-out directory's mtime is OSTREE_TIMESTAMP (0), as libostree's checkout sets it
  // once the directory is complete: the same for every checkout. The atime is left alone.
  static bool CheckoutDirTime(int fd, const std::string& path, GError** err) {
    const struct timespec times[2] = {{0, UTIME_OMIT}, {0, 0}};
    return futimens(fd, times) == 0 || SetErrno(err, "set time of " + (path.empty() ? std::string("/") : path));
  }

  std::unordered_map<std::string, std::shared_ptr<LEntry>> emptyObjects;  // link checkout: empty object -> its metadata

  bool LinkTree(Layer& l, LEntry& d, const std::string& lpath, int dfd, bool user, bool requireLinks, WriteStats& st, GCancellable* c, GError** err,
                int depth) {
    if (depth > kMaxDepth) return Invalid(err, "directory tree deeper than " + std::to_string(kMaxDepth) + " levels");
    if (!LoadDir(l, d, lpath, err)) return false;
    int rdfd = ostree_repo_get_dfd(repo.get());
    OstreeRepoMode rmode = ostree_repo_get_mode(repo.get());
    for (LEntry& e : d.dir->entries) {
      if (g_cancellable_set_error_if_cancelled(c, err)) return false;
      std::string path = Join(lpath, e.name);
      if (e.type == EType::Dir) {
        if (mkdirat(dfd, e.name.c_str(), 0700) < 0) return SetErrno(err, "mkdir " + path);
        int sub = OpenDirNoFollow(dfd, e.name.c_str(), false);
        if (sub < 0) return SetErrno(err, "open " + path);
        bool ok = LinkTree(l, e, path, sub, user, requireLinks, st, c, err, depth + 1) && DirMeta(l, e, err);
        if (ok) {
          if (!user && fchown(sub, e.uid, e.gid) < 0) ok = SetErrno(err, "chown " + path);
          for (auto& [k, v] : e.xattrs)
            if (ok && !user && fsetxattr(sub, k.c_str(), v.data(), v.size(), 0) < 0) ok = SetErrno(err, "setting xattr " + k + " on " + path);
          if (ok && fchmod(sub, e.mode & 07777) < 0) ok = SetErrno(err, "chmod " + path);
          if (ok) ok = CheckoutDirTime(sub, path, err);
        }
        close(sub);
        st.dirs++;
        e.dir.reset();  // written: free the listing
        if (!ok) return false;
        continue;
      }
      std::string obj = LoosePath(repo.get(), e.csum);
      struct stat ost;
      if (fstatat(rdfd, obj.c_str(), &ost, AT_SYMLINK_NOFOLLOW) < 0) return SetErrno(err, "object " + e.csum);
      bool plain = rmode != OSTREE_REPO_MODE_BARE_USER;  // the object file is the file
      if (plain && S_ISLNK(ost.st_mode)) {
        // On the heap: this frame recurses once per directory level (2,048 deep at most).
        std::string buf(PATH_MAX + 1, '\0');
        ssize_t n = readlinkat(rdfd, obj.c_str(), buf.data(), PATH_MAX);
        if (n < 0) return SetErrno(err, "object " + e.csum);
        buf.resize(static_cast<size_t>(n));
        if (symlinkat(buf.c_str(), dfd, e.name.c_str()) < 0) return SetErrno(err, "symlink " + path);
        if (!user && fchownat(dfd, e.name.c_str(), ost.st_uid, ost.st_gid, AT_SYMLINK_NOFOLLOW) < 0) return SetErrno(err, "chown " + path);
        st.symlinks++;
        continue;
      }
      if (!S_ISREG(ost.st_mode)) return Invalid(err, "object " + e.csum + " is not a regular file (damaged repository)");
      if (plain && ost.st_size > 0) {
        if (linkat(rdfd, obj.c_str(), dfd, e.name.c_str(), 0) == 0) {
          st.files++;
          continue;
        }
        if (requireLinks || (errno != EMLINK && errno != EXDEV)) return SetErrno(err, "link " + path);
      }
      // Empty files are copied, as libostree does (every empty file of one mode shares one
      // object). Each empty object's metadata is read once per checkout, and the copy is
      // created, owned, given its xattrs and mode directly: no stream, no second lookup.
      if (plain && ost.st_size == 0) {
        auto it = emptyObjects.find(e.csum);
        if (it == emptyObjects.end()) {
          if (!LoadDetails(l, e, err)) return false;
          it = emptyObjects.emplace(e.csum, std::make_shared<LEntry>()).first;
          LEntry& m = *it->second;
          m.type = e.type, m.uid = e.uid, m.gid = e.gid, m.mode = e.mode, m.xattrs = e.xattrs;
        }
        const LEntry& m = *it->second;
        if (m.type != EType::File) return Invalid(err, "object " + e.csum + " is not a regular file (damaged repository)");
        int out = openat(dfd, e.name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0) return SetErrno(err, "create " + path);
        bool saveRoot = euidRoot;
        if (user) euidRoot = false;  // mode user: the checkout's owner is whoever runs it
        // libostree's copy: all the object's xattrs (overlayfs's own included), none in mode user.
        bool ok = ApplyMeta(out, nullptr, m, user ? Xattrs{} : m.xattrs, false, st, path, err);
        euidRoot = saveRoot;
        close(out);
        if (!ok) return false;
        st.files++;
        continue;
      }
      // bare-user objects are read with their metadata.
      LRef r{0, &e, path};
      std::map<std::pair<dev_t, ino_t>, std::string> none;
      if (!LoadDetails(l, e, err)) return false;
      if (e.type == EType::File && rmode == OSTREE_REPO_MODE_BARE_USER && user && ost.st_size > 0) {
        if (linkat(rdfd, obj.c_str(), dfd, e.name.c_str(), 0) == 0) {
          st.files++;
          continue;
        }
        if (requireLinks || (errno != EMLINK && errno != EXDEV)) return SetErrno(err, "link " + path);
      }
      bool saveRoot = euidRoot;
      if (user) euidRoot = false;  // mode user: the checkout's owner is whoever runs it
      bool ok = WriteLeaf(r, dfd, e.name, path, st, none, err);
      euidRoot = saveRoot;
      if (!ok) return false;
    }
    return true;
  }

  // ---- writing into a commit (inside a transaction) ----

  bool WriteDirmeta(const LEntry& e, const Xattrs& xs, std::string* out, GCancellable* c, GError** err) {
    g_autoptr(GVariant) xv = XattrsToVariant(xs);
    g_autoptr(GVariant) dm = g_variant_ref_sink(g_variant_new("(uuu@a(ayay))", GUINT32_TO_BE(e.uid), GUINT32_TO_BE(e.gid), GUINT32_TO_BE(e.mode), xv));
    g_autofree guchar* csum = nullptr;
    if (!ostree_repo_write_metadata(repo.get(), OSTREE_OBJECT_TYPE_DIR_META, nullptr, dm, &csum, c, err)) return false;
    g_autofree char* hex = ostree_checksum_from_bytes(csum);
    *out = hex;
    return true;
  }

  bool WriteTree(const MView& m, std::string* tree, std::string* meta, WriteStats& st, GCancellable* c, GError** err) {
    if (g_cancellable_set_error_if_cancelled(c, err)) return false;
    LRef& top = const_cast<LRef&>(m.stack[0]);
    Layer& tl = layers[top.layer];
    if (!tl.isCommit && top.layer != metaLayer) return Invalid(err, "a merge into a commit needs every layer in the repository");
    if (m.stack.size() == 1 && !m.mountAncestor) {
      bool clean = false;
      if (!Clean(tl, *top.e, top.lpath, &clean, err)) return false;
      if (clean) {
        *tree = top.e->csum;
        *meta = top.e->meta;
        st.reused++;
        return true;
      }
    }
    std::vector<MView> kids;
    if (!Children(m, &kids, err)) return false;
    GVariantBuilder files, dirs;
    g_variant_builder_init(&files, G_VARIANT_TYPE("a(say)"));
    g_variant_builder_init(&dirs, G_VARIANT_TYPE("a(sayay)"));
    // dirtree entries are sorted by name within each list; kids come sorted by name.
    for (MView& k : kids) {
      if (!k.visible) continue;
      if (k.type() == EType::Dir) {
        std::string t, mm;
        if (!WriteTree(k, &t, &mm, st, c, err)) return false;
        g_variant_builder_add(&dirs, "(s@ay@ay)", k.name.c_str(), ostree_checksum_to_bytes_v(t.c_str()), ostree_checksum_to_bytes_v(mm.c_str()));
        st.dirs++;
      } else {
        LRef& r = k.stack[0];
        if (!layers[r.layer].isCommit) return Invalid(err, "a merge into a commit needs every layer in the repository");
        g_variant_builder_add(&files, "(s@ay)", k.name.c_str(), ostree_checksum_to_bytes_v(r.e->csum.c_str()));
        st.files++;
      }
    }
    g_autoptr(GVariant) dt = g_variant_ref_sink(g_variant_new("(@a(say)@a(sayay))", g_variant_builder_end(&files), g_variant_builder_end(&dirs)));
    g_autofree guchar* csum = nullptr;
    if (!ostree_repo_write_metadata(repo.get(), OSTREE_OBJECT_TYPE_DIR_TREE, nullptr, dt, &csum, c, err)) return false;
    g_autofree char* hex = ostree_checksum_from_bytes(csum);
    *tree = hex;
    if (!LoadDetails(tl, *top.e, err)) return false;
    if (top.layer == metaLayer || HasOverlayXattr(top.e->xattrs)) return WriteDirmeta(*top.e, Visible(top.e->xattrs), meta, c, err);
    *meta = top.e->meta;
    return true;
  }
};

// ---- JS class ----

namespace {

Napi::Object EntryToJs(Napi::Env env, OverlayEngine& eng, const MView& v) {
  const LRef& r = v.stack[0];
  const LEntry& e = *r.e;
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", v.name);
  o.Set("path", v.path);
  o.Set("type", TypeName(e.type));
  o.Set("mode", e.mode);
  o.Set("uid", e.uid);
  o.Set("gid", e.gid);
  o.Set("size", Napi::Number::New(env, e.type == EType::Dir ? 0 : static_cast<double>(e.size)));
  if (e.type == EType::Symlink) o.Set("target", e.target);
  o.Set("layer", eng.LayerName(r.layer));
  if (!e.csum.empty() && eng.layers[r.layer].isCommit) o.Set("checksum", e.csum);
  if (e.xattrsLoaded) o.Set("xattrCount", static_cast<double>(e.xattrs.size()));
  return o;
}

struct OpResult {
  std::string op, path;
  uint64_t max = UINT64_MAX;
  bool withXattrs = false;
  bool missing = false;
  MView entry;
  std::vector<MView> children;
  std::string data;
  Xattrs xattrs;
};

class OverlayWorker : public Worker {
 public:
  using Fn = std::function<bool(OverlayEngine&, GCancellable*, GError**)>;
  using ResultFn = std::function<Napi::Value(Napi::Env)>;
  OverlayWorker(Napi::Env env, Napi::Value owner, Napi::Value c, std::shared_ptr<OverlayEngine> eng, Fn fn, ResultFn res)
      : Worker(env, "ostree-sysext:overlay", owner, c), eng_(std::move(eng)), fn_(std::move(fn)), res_(std::move(res)) {}

 protected:
  void Run() override {
    std::lock_guard<std::mutex> lock(eng_->mu);
    GError* err = nullptr;
    if (!fn_(*eng_, cancellable_, &err)) Fail(err);
  }
  Napi::Value Result(Napi::Env env) override { return res_(env); }

 private:
  std::shared_ptr<OverlayEngine> eng_;
  Fn fn_;
  ResultFn res_;
};

}  // namespace

class Overlay : public Napi::ObjectWrap<Overlay> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function f = DefineClass(env, "Overlay",
                                   {InstanceMethod<&Overlay::Query>("query"), InstanceMethod<&Overlay::Conflicts>("conflicts"),
                                    InstanceMethod<&Overlay::WriteDirectory>("writeDirectory"),
                                    InstanceMethod<&Overlay::WriteTree>("writeTree"), InstanceMethod<&Overlay::Mounts>("mounts"),
                                    InstanceMethod<&Overlay::LinkCheckout>("linkCheckout"),
                                    InstanceMethod<&Overlay::Close>("close")});
    exports.Set("Overlay", f);
  }

  // new Overlay(repo | null, [{ name, commit? , path?, hierarchies? }], { createMissing, raw, hostHierarchyMode })
  explicit Overlay(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Overlay>(info) {
    Napi::Env env = info.Env();
    eng_ = std::make_shared<OverlayEngine>();
    if (info[0].IsObject()) {
      Repo* r = Napi::ObjectWrap<Repo>::Unwrap(info[0].As<Napi::Object>());
      eng_->repo = r->Hold(env);
    }
    if (!info[1].IsArray()) throw Napi::TypeError::New(env, "layers must be an array");
    Napi::Array arr = info[1].As<Napi::Array>();
    if (arr.Length() < 1) throw Napi::TypeError::New(env, "the base layer is required");
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Object o = arr.Get(i).As<Napi::Object>();
      Layer l;
      l.name = OptString(o, "name").value_or(i == 0 ? "base" : "layer" + std::to_string(i));
      l.hierarchies = OptStringArray(o, "hierarchies");
      l.root.type = EType::Dir;
      if (auto commit = OptString(o, "commit")) {
        if (!eng_->repo) throw Napi::TypeError::New(env, "a commit layer needs a repository");
        l.isCommit = true;
        l.commit = *commit;
        l.root.csum = OptString(o, "tree").value_or("");  // else read from the commit
        l.root.meta = OptString(o, "meta").value_or("");
      } else {
        l.path = OptString(o, "path").value_or("");
        l.rootFd = open(l.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (l.rootFd < 0) {
          int e = errno;
          ErrorInfo ei;
          ei.Set("g-io-error-quark", g_io_error_from_errno(e), l.path + ": " + g_strerror(e));
          eng_->layers.push_back(std::move(l));
          throw Napi::Error(env, MakeError(env, ei));
        }
        struct stat st;
        fstat(l.rootFd, &st);
        l.root.mode = st.st_mode;
        l.root.uid = st.st_uid;
        l.root.gid = st.st_gid;
        l.root.details = true;
      }
      eng_->layers.push_back(std::move(l));
    }
    // Whether systemd could create a missing hierarchy: not on an immutable root (an OSTree
    // deployment's is chattr +i), unless the caller says.
    Layer& base = eng_->layers[0];
    bool immutable = false;
    if (!base.isCommit) {
      int flags = 0;
      if (ioctl(base.rootFd, FS_IOC_GETFLAGS, &flags) == 0) immutable = (flags & FS_IMMUTABLE_FL) != 0;
    }
    eng_->createMissing = !immutable;
    if (info[2].IsObject()) {
      Napi::Object o = info[2].As<Napi::Object>();
      if (o.Has("createMissing") && o.Get("createMissing").IsBoolean()) eng_->createMissing = o.Get("createMissing").As<Napi::Boolean>().Value();
      eng_->raw = OptBool(o, "raw", false);
      eng_->hostHierarchyMode = OptBool(o, "hostHierarchyMode", false);
    }
  }

 private:
  std::shared_ptr<OverlayEngine> Engine(Napi::Env env) {
    if (!eng_) ThrowClosed(env, "the overlay is closed");
    return eng_;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    eng_.reset();  // workers in flight hold their own reference
    return info.Env().Undefined();
  }

  // mounts(cancellable) -> { mounts: { path: [layer names topmost first] }, skipped: [[layer, hierarchy]] }
  Napi::Value Mounts(const Napi::CallbackInfo& info) {
    auto eng = Engine(info.Env());
    return (new OverlayWorker(
                info.Env(), info.This(), info[0], eng, [](OverlayEngine& e, GCancellable*, GError** err) { return e.Prepare(err); },
                [eng](Napi::Env env) {
                  Napi::Object o = Napi::Object::New(env);
                  Napi::Object m = Napi::Object::New(env);
                  for (auto& [p, refs] : eng->mounts) {
                    Napi::Array a = Napi::Array::New(env);
                    for (auto& r : refs) a.Set(a.Length(), eng->LayerName(r.layer));
                    m.Set(p, a);
                  }
                  o.Set("mounts", m);
                  Napi::Array s = Napi::Array::New(env);
                  for (auto& k : eng->skipped) {
                    Napi::Object x = Napi::Object::New(env);
                    x.Set("layer", k.layer);
                    x.Set("hierarchy", k.hierarchy);
                    x.Set("reason", k.reason);
                    s.Set(s.Length(), x);
                  }
                  o.Set("skipped", s);
                  o.Set("createMissing", Napi::Boolean::New(env, eng->createMissing));
                  return o;
                }))
        ->Start();
  }

  // query([{ op: stat|list|read|readlink|xattrs, path, maxBytes }], cancellable) -> results (null: absent)
  Napi::Value Query(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto eng = Engine(env);
    if (!info[0].IsArray()) throw Napi::TypeError::New(env, "ops must be an array");
    Napi::Array arr = info[0].As<Napi::Array>();
    auto ops = std::make_shared<std::vector<OpResult>>(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Object o = arr.Get(i).As<Napi::Object>();
      (*ops)[i].op = OptString(o, "op").value_or("stat");
      (*ops)[i].path = OptString(o, "path").value_or("");
      int64_t max = OptInt(o, "maxBytes", 0, 0, INT64_C(1) << 40);
      if (max > 0) (*ops)[i].max = static_cast<uint64_t>(max);
      (*ops)[i].withXattrs = OptBool(o, "xattrs", false);
    }
    return (new OverlayWorker(
                env, info.This(), info[1], eng,
                [ops](OverlayEngine& e, GCancellable* c, GError** err) {
                  for (OpResult& op : *ops) {
                    if (g_cancellable_set_error_if_cancelled(c, err)) return false;
                    bool found = false;
                    if (!e.Find(op.path, &op.entry, &found, err)) return false;
                    if (!found) {
                      op.missing = true;
                      continue;
                    }
                    const LRef& r = op.entry.stack[0];
                    if (!e.LoadDetails(e.layers[r.layer], *r.e, err)) return false;
                    if (op.op == "list") {
                      if (op.entry.type() != EType::Dir) {
                        op.missing = true;
                        continue;
                      }
                      std::vector<MView> kids;
                      if (!e.Children(op.entry, &kids, err)) return false;
                      for (auto& k : kids) {
                        if (!k.visible) continue;
                        if (!e.LoadDetails(e.layers[k.stack[0].layer], *k.stack[0].e, err)) return false;
                        op.children.push_back(std::move(k));
                      }
                    } else if (op.op == "read") {
                      if (op.entry.type() != EType::File) {
                        op.missing = true;
                        continue;
                      }
                      if (!e.ReadAll(e.layers[r.layer], *r.e, r.lpath, op.max, &op.data, err)) return false;
                    } else if (op.op == "walk") {
                      // Everything below `path`, depth first, in one call: validation and
                      // tree sizes need no hop (and no lookup from the root) per entry.
                      if (op.entry.type() != EType::Dir) {
                        op.missing = true;
                        continue;
                      }
                      std::vector<std::pair<MView, size_t>> todo;
                      std::vector<MView> kids;
                      if (!e.Children(op.entry, &kids, err)) return false;
                      for (auto it = kids.rbegin(); it != kids.rend(); ++it) todo.emplace_back(std::move(*it), 1);
                      while (!todo.empty()) {
                        if (g_cancellable_set_error_if_cancelled(c, err)) return false;
                        auto [k, depth] = std::move(todo.back());
                        todo.pop_back();
                        if (!k.visible) continue;
                        if (depth > static_cast<size_t>(kMaxDepth)) return Invalid(err, "tree deeper than " + std::to_string(kMaxDepth) + " levels");
                        if (!e.LoadDetails(e.layers[k.stack[0].layer], *k.stack[0].e, err)) return false;
                        if (op.withXattrs && !e.LoadXattrs(e.layers[k.stack[0].layer], *k.stack[0].e, k.stack[0].lpath, err)) return false;
                        if (k.type() == EType::Dir) {
                          std::vector<MView> sub;
                          if (!e.Children(k, &sub, err)) return false;
                          for (auto it = sub.rbegin(); it != sub.rend(); ++it) todo.emplace_back(std::move(*it), depth + 1);
                        }
                        op.children.push_back(std::move(k));
                      }
                    } else if (op.op == "xattrs") {
                      if (!e.LoadXattrs(e.layers[r.layer], *r.e, r.lpath, err)) return false;
                      op.xattrs = Visible(r.e->xattrs);
                    }
                  }
                  return true;
                },
                [ops, eng](Napi::Env env) -> Napi::Value {
                  Napi::Array out = Napi::Array::New(env, ops->size());
                  for (uint32_t i = 0; i < ops->size(); i++) {
                    OpResult& op = (*ops)[i];
                    Napi::Value v = env.Null();
                    if (!op.missing) {
                      if (op.op == "stat") v = EntryToJs(env, *eng, op.entry);
                      else if (op.op == "readlink") v = op.entry.type() == EType::Symlink ? Napi::String::New(env, op.entry.stack[0].e->target) : env.Null();
                      else if (op.op == "list" || op.op == "walk") {
                        Napi::Array a = Napi::Array::New(env, op.children.size());
                        for (uint32_t j = 0; j < op.children.size(); j++) a.Set(j, EntryToJs(env, *eng, op.children[j]));
                        v = a;
                      } else if (op.op == "read") v = Napi::Buffer<char>::Copy(env, op.data.data(), op.data.size());
                      else if (op.op == "xattrs") {
                        Napi::Object x = Napi::Object::New(env);
                        for (auto& [k, val] : op.xattrs) x.Set(k, Napi::Buffer<char>::Copy(env, val.data(), val.size()));
                        v = x;
                      }
                    }
                    out.Set(i, v);
                  }
                  return out;
                }))
        ->Start();
  }

  // conflicts(cancellable) -> [{ path, kind, providers, types, winner }]
  Napi::Value Conflicts(const Napi::CallbackInfo& info) {
    auto eng = Engine(info.Env());
    auto out = std::make_shared<std::vector<Conflict>>();
    return (new OverlayWorker(
                info.Env(), info.This(), info[0], eng,
                [out](OverlayEngine& e, GCancellable*, GError** err) {
                  MView root;
                  return e.Root(&root, err) && e.CollectConflicts(root, out.get(), err);
                },
                [out](Napi::Env env) -> Napi::Value {
                  Napi::Array a = Napi::Array::New(env, out->size());
                  for (uint32_t i = 0; i < out->size(); i++) {
                    Conflict& k = (*out)[i];
                    Napi::Object o = Napi::Object::New(env);
                    o.Set("path", k.path);
                    o.Set("kind", k.kind);
                    Napi::Array p = Napi::Array::New(env, k.providers.size());
                    Napi::Array t = Napi::Array::New(env, k.types.size());
                    for (uint32_t j = 0; j < k.providers.size(); j++) {
                      p.Set(j, k.providers[j]);
                      t.Set(j, k.types[j]);
                    }
                    o.Set("providers", p);
                    o.Set("types", t);
                    o.Set("winner", k.winner);
                    a.Set(i, o);
                  }
                  return a;
                }))
        ->Start();
  }

  static Napi::Object StatsToJs(Napi::Env env, const WriteStats& st) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("files", Napi::Number::New(env, static_cast<double>(st.files)));
    o.Set("dirs", Napi::Number::New(env, static_cast<double>(st.dirs)));
    o.Set("symlinks", Napi::Number::New(env, static_cast<double>(st.symlinks)));
    o.Set("reused", Napi::Number::New(env, static_cast<double>(st.reused)));
    o.Set("checkouts", Napi::Number::New(env, static_cast<double>(st.checkouts)));
    Napi::Array u = Napi::Array::New(env, st.unrepresentable.size());
    for (uint32_t i = 0; i < st.unrepresentable.size(); i++) u.Set(i, st.unrepresentable[i]);
    o.Set("unrepresentable", u);
    return o;
  }

  // writeDirectory(dest, { mode }, cancellable): dest must not exist; its parent is opened
  // once and everything below is created relative to fds of directories made here.
  Napi::Value WriteDirectory(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto eng = Engine(env);
    std::string dest = ArgString(info, 0, "destination");
    Napi::Object o = ArgObject(info, 1, "options");
    OstreeRepoCheckoutMode cmode = OptString(o, "mode").value_or(geteuid() == 0 ? "none" : "user") == "user" ? OSTREE_REPO_CHECKOUT_MODE_USER : OSTREE_REPO_CHECKOUT_MODE_NONE;
    auto st = std::make_shared<WriteStats>();
    return (new OverlayWorker(
                env, info.This(), info[2], eng,
                [dest, cmode, st](OverlayEngine& e, GCancellable* c, GError** err) {
                  MView root;
                  if (!e.Root(&root, err)) return false;
                  int fd = MakeDestination(dest, err);
                  if (fd < 0) return false;
                  e.rootOut = fd;
                  std::map<std::pair<dev_t, ino_t>, std::string> links;
                  LRef& top = root.stack[0];
                  bool ok = e.WriteDirectory(root, fd, *st, links, c, cmode, err) && e.LoadXattrs(e.layers[top.layer], *top.e, top.lpath, err) &&
                            e.LoadDetails(e.layers[top.layer], *top.e, err) &&
                            e.ApplyMeta(fd, nullptr, *top.e, Visible(top.e->xattrs), false, *st, "/", err);
                  e.rootOut = -1;
                  close(fd);
                  return ok;
                },
                [st](Napi::Env env) -> Napi::Value { return StatsToJs(env, *st); }))
        ->Start();
  }

  // linkCheckout(dest, { mode, requireLinks }, cancellable): a hardlink checkout of a
  // one-commit view into the new directory dest (see LinkTree).
  Napi::Value LinkCheckout(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto eng = Engine(env);
    std::string dest = ArgString(info, 0, "destination");
    Napi::Object o = ArgObject(info, 1, "options");
    bool user = OptString(o, "mode").value_or("none") == "user";
    bool requireLinks = OptBool(o, "requireLinks", false);
    auto st = std::make_shared<WriteStats>();
    return (new OverlayWorker(
                env, info.This(), info[2], eng,
                [dest, user, requireLinks, st](OverlayEngine& e, GCancellable* c, GError** err) {
                  Layer& l = e.layers[0];
                  if (!l.isCommit || e.layers.size() != 1) return Invalid(err, "a link checkout reads one commit");
                  if (!e.LoadRoot(l, err)) return false;
                  // The whole source is checked (iteratively, depth-bounded) before anything is
                  // created: a damaged or hostile tree leaves no half-made checkout behind.
                  // The walk then reads the dirtrees and dirmetas this pass kept (each loaded
                  // and hashed once, not twice).
                  ValidatedSet seen;
                  seen.keep = true;
                  if (!ValidateCheckoutSource(e.repo.get(), l.commit.c_str(), "/", false, &seen, c, err)) return false;
                  struct Release {
                    OverlayEngine& e;
                    ~Release() { e.prevalidated = nullptr; }
                  } release{e};
                  e.prevalidated = &seen;
                  int fd = MakeDestination(dest, err);
                  if (fd < 0) return false;
                  e.rootOut = fd;
                  bool ok = e.LinkTree(l, l.root, "", fd, user, requireLinks, *st, c, err, 0) && e.DirMeta(l, l.root, err);
                  if (ok && !user && fchown(fd, l.root.uid, l.root.gid) < 0) ok = SetErrno(err, dest);
                  for (auto& [k, v] : l.root.xattrs)
                    if (ok && !user && fsetxattr(fd, k.c_str(), v.data(), v.size(), 0) < 0) ok = SetErrno(err, "setting xattr " + k + " on " + dest);
                  if (ok && fchmod(fd, l.root.mode & 07777) < 0) ok = SetErrno(err, dest);
                  if (ok) ok = e.CheckoutDirTime(fd, dest, err);
                  e.emptyObjects.clear();
                  e.rootOut = -1;
                  close(fd);
                  return ok;
                },
                [st](Napi::Env env) -> Napi::Value { return StatsToJs(env, *st); }))
        ->Start();
  }

  // writeTree(cancellable) -> { tree, meta, stats }: the merged root as dirtree/dirmeta
  // objects (inside a transaction: lib/ guarantees it).
  Napi::Value WriteTree(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto eng = Engine(env);
    if (!eng->repo) throw Napi::TypeError::New(env, "writeTree needs a repository");
    auto st = std::make_shared<WriteStats>();
    auto out = std::make_shared<std::pair<std::string, std::string>>();
    return (new OverlayWorker(
                env, info.This(), info[0], eng,
                [st, out](OverlayEngine& e, GCancellable* c, GError** err) {
                  MView root;
                  return e.Root(&root, err) && e.WriteTree(root, &out->first, &out->second, *st, c, err);
                },
                [st, out](Napi::Env env) -> Napi::Value {
                  Napi::Object o = Napi::Object::New(env);
                  o.Set("tree", out->first);
                  o.Set("meta", out->second);
                  o.Set("stats", StatsToJs(env, *st));
                  return o;
                }))
        ->Start();
  }

  std::shared_ptr<OverlayEngine> eng_;
};

void InitOverlay(Napi::Env env, Napi::Object exports) { Overlay::Init(env, exports); }

}  // namespace osx

namespace osx {

// Whether the tree under `dfd` holds an overlay whiteout (char 0:0); symlinks not followed.
static bool IsOpaqueDir(int fd) {
  char v[2];
  ssize_t n = fgetxattr(fd, kOpaqueXattr, v, sizeof v);
  return n == 1 && v[0] == 'y';
}

static bool HasWhiteouts(int dfd, int depth, bool markOpaque, GError** err, bool* found) {
  if (depth > kMaxDepth) return Invalid(err, "directory tree deeper than " + std::to_string(kMaxDepth) + " levels");
  int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return SetErrno(err, "open");
  if (markOpaque && depth > 0 && IsOpaqueDir(fd)) {
    *found = true;
    close(fd);
    return true;
  }
  DIR* dp = fdopendir(fd);
  if (!dp) {
    close(fd);
    return SetErrno(err, "opendir");
  }
  bool ok = true;
  while (struct dirent* de = readdir(dp)) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    // Only a character device can be a whiteout and only a directory holds more: the listing's
    // type (d_type) rules out the rest without a stat each (most of a tree).
    if (de->d_type != DT_UNKNOWN && de->d_type != DT_CHR && de->d_type != DT_DIR) continue;
    struct stat st;
    if (fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      ok = SetErrno(err, de->d_name);
      break;
    }
    if (S_ISCHR(st.st_mode) && st.st_rdev == 0) {
      *found = true;
      break;
    }
    if (S_ISDIR(st.st_mode)) {
      int sub = OpenDirNoFollow(dirfd(dp), de->d_name, false);
      if (sub < 0) {
        ok = SetErrno(err, de->d_name);
        break;
      }
      ok = HasWhiteouts(sub, depth + 1, markOpaque, err, found);
      close(sub);
      if (!ok || *found) break;
    }
  }
  closedir(dp);
  return ok;
}

// Rebuilds the tree of `src` under the new directory `dst`: directories with their metadata,
// files as hardlinks, symlinks and devices recreated, and every whiteout as libostree's
// `.ostree-wh.NAME` marker (an empty file with the whiteout's owner and mode), so a
// libostree that refuses devices can commit it.
static bool ShadowTree(int src, int dst, int depth, bool markOpaque, GError** err) {
  if (depth > kMaxDepth) return Invalid(err, "directory tree deeper than " + std::to_string(kMaxDepth) + " levels");
  int fd = openat(src, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return SetErrno(err, "open");
  DIR* dp = fdopendir(fd);
  if (!dp) {
    close(fd);
    return SetErrno(err, "opendir");
  }
  bool ok = true;
  while (ok) {
    errno = 0;
    struct dirent* de = readdir(dp);
    if (!de) break;
    const char* n = de->d_name;
    if (!strcmp(n, ".") || !strcmp(n, "..")) continue;
    struct stat st;
    if (fstatat(dirfd(dp), n, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      ok = SetErrno(err, n);
      break;
    }
    if (S_ISDIR(st.st_mode)) {
      int s2 = OpenDirNoFollow(dirfd(dp), n, false);
      if (s2 < 0 || mkdirat(dst, n, 0700) < 0) {
        ok = SetErrno(err, n);
        if (s2 >= 0) close(s2);
        break;
      }
      int d2 = OpenDirNoFollow(dst, n, false);
      if (d2 < 0) {
        close(s2);
        ok = SetErrno(err, n);
        break;
      }
      ok = ShadowTree(s2, d2, depth + 1, markOpaque, err);
      if (ok && markOpaque && IsOpaqueDir(s2)) {
        int m = openat(d2, kOpaqueMarker, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (m < 0) ok = SetErrno(err, std::string(n) + "/" + kOpaqueMarker);
        else close(m);
      }
      Xattrs xs;
      if (ok) ok = ReadFdXattrs(s2, xs, err, n);
      for (auto& [k, v] : xs)
        if (ok && fsetxattr(d2, k.c_str(), v.data(), v.size(), 0) < 0) ok = SetErrno(err, std::string("xattr ") + k);
      if (ok && (fchown(d2, st.st_uid, st.st_gid) < 0 && geteuid() == 0)) ok = SetErrno(err, n);
      if (ok && fchmod(d2, st.st_mode & 07777) < 0) ok = SetErrno(err, n);
      close(s2);
      close(d2);
    } else if (S_ISCHR(st.st_mode) && st.st_rdev == 0) {
      std::string marker = std::string(kWhiteoutPrefix) + n;
      int m = openat(dst, marker.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (m < 0) {
        ok = SetErrno(err, marker);
        break;
      }
      if (geteuid() == 0 && fchown(m, st.st_uid, st.st_gid) < 0) ok = SetErrno(err, marker);
      if (ok && fchmod(m, st.st_mode & 07777) < 0) ok = SetErrno(err, marker);
      close(m);
    } else if (S_ISREG(st.st_mode)) {
      if (linkat(dirfd(dp), n, dst, n, 0) < 0) ok = SetErrno(err, n);
    } else if (S_ISLNK(st.st_mode)) {
      std::string buf(PATH_MAX + 1, '\0');  // on the heap: this frame recurses per level
      ssize_t len = readlinkat(dirfd(dp), n, buf.data(), PATH_MAX);
      if (len < 0) {
        ok = SetErrno(err, n);
        break;
      }
      buf.resize(static_cast<size_t>(len));
      if (symlinkat(buf.c_str(), dst, n) < 0) ok = SetErrno(err, n);
      else if (geteuid() == 0 && fchownat(dst, n, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0) ok = SetErrno(err, n);
    } else {
      // Devices, FIFOs, sockets: libostree refuses them; keep them so its error names them.
      if (mknodat(dst, n, st.st_mode, st.st_rdev) < 0) ok = SetErrno(err, n);
    }
  }
  if (ok && errno) ok = SetErrno(err, "readdir");
  closedir(dp);
  return ok;
}

bool PrepareWhiteoutTree(OstreeRepo* repo, const std::string& tree, std::string* shadow, GError** err) {
  shadow->clear();
  int src = open(tree.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (src < 0) return SetErrno(err, tree);
  bool found = false;
  bool markOpaque = ostree_repo_get_mode(repo) == OSTREE_REPO_MODE_BARE_USER_ONLY;
  bool ok = HasWhiteouts(src, 0, markOpaque, err, &found);
  if (!ok || !found) {
    close(src);
    return ok;
  }
  std::string tmpl = "tmp/ostree-sysext-whiteouts-XXXXXX";
  g_autofree char* repoPath = g_file_get_path(ostree_repo_get_path(repo));
  std::string full = std::string(repoPath) + "/" + tmpl;
  std::vector<char> buf(full.begin(), full.end());
  buf.push_back(0);
  if (!mkdtemp(buf.data())) {
    close(src);
    return SetErrno(err, full);
  }
  *shadow = buf.data();
  int dst = open(shadow->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct stat st;
  ok = dst >= 0 && fstat(src, &st) == 0;
  if (!ok) SetErrno(err, *shadow);
  if (ok) ok = ShadowTree(src, dst, 0, markOpaque, err);
  if (ok) {
    Xattrs xs;
    ok = ReadFdXattrs(src, xs, err, tree);
    for (auto& [k, v] : xs)
      if (ok && fsetxattr(dst, k.c_str(), v.data(), v.size(), 0) < 0) ok = SetErrno(err, std::string("xattr ") + k);
    if (ok && geteuid() == 0 && fchown(dst, st.st_uid, st.st_gid) < 0) ok = SetErrno(err, *shadow);
    if (ok && fchmod(dst, st.st_mode & 07777) < 0) ok = SetErrno(err, *shadow);
  }
  if (dst >= 0) close(dst);
  close(src);
  return ok;
}

static int RemoveEntry(const char* p, const struct stat*, int type, struct FTW*) {
  return type == FTW_DP ? rmdir(p) : unlink(p);
}

void RemoveTree(const std::string& path) {
  if (!path.empty()) nftw(path.c_str(), RemoveEntry, 32, FTW_DEPTH | FTW_PHYS);
}

}  // namespace osx

namespace osx {

struct CommitTree {
  OverlayEngine eng;
};

std::shared_ptr<CommitTree> OpenCommitTree(OstreeRepo* repo, const std::string& commit, GVariant* validatedCommit) {
  auto t = std::make_shared<CommitTree>();
  t->eng.repo = RepoRef(repo);
  t->eng.raw = true;
  t->eng.createMissing = false;
  Layer l;
  l.name = "base";
  l.isCommit = true;
  l.commit = commit;
  l.root.type = EType::Dir;
  // The caller checked this commit already: its root, without loading it a second time.
  if (validatedCommit) SetRootFromCommit(l, validatedCommit);
  t->eng.layers.push_back(std::move(l));
  return t;
}

size_t CommitTreeEntries(const CommitTree& t) { return t.eng.loadedEntries.load(std::memory_order_relaxed); }

static void FillTreeEntry(const MView& v, const std::string& path, CommitTreeEntry* out) {
  const LEntry& x = *v.stack[0].e;
  out->name = v.name;
  out->path = path;
  out->type = x.type == EType::Dir ? "dir" : x.type == EType::Symlink ? "symlink" : x.type == EType::File ? "file" : "special";
  out->mode = x.mode;
  out->uid = x.uid;
  out->gid = x.gid;
  out->size = x.type == EType::File ? x.size : 0;
  out->target = x.type == EType::Symlink ? x.target : "";
  out->checksum = x.csum;
}

bool CommitTreeOp(CommitTree& t, const std::string& op, const std::string& path, int64_t maxBytes, CommitTreeEntry* entry,
                  std::vector<CommitTreeEntry>* children, std::vector<uint8_t>* data, GError** err) {
  OverlayEngine& e = t.eng;
  std::lock_guard<std::mutex> lock(e.mu);
  MView v;
  bool found = false;
  if (!e.Find(path, &v, &found, err)) return false;
  if (!found) {
    g_set_error(err, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "No such file or directory");
    return false;
  }
  LRef& r = v.stack[0];
  if (!e.LoadDetails(e.layers[r.layer], *r.e, err)) return false;
  FillTreeEntry(v, path, entry);
  if (op == "stat") return true;
  if (op == "readlink") {
    if (r.e->type != EType::Symlink) {
      g_set_error(err, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "not a symbolic link");
      return false;
    }
    return true;
  }
  if (op == "list") {
    if (r.e->type != EType::Dir) {
      g_set_error(err, G_IO_ERROR, G_IO_ERROR_NOT_DIRECTORY, "not a directory");
      return false;
    }
    std::vector<MView> kids;
    if (!e.Children(v, &kids, err)) return false;
    children->reserve(kids.size());
    for (MView& k : kids) {
      if (!k.visible) continue;
      if (!e.LoadDetails(e.layers[k.stack[0].layer], *k.stack[0].e, err)) return false;
      CommitTreeEntry c;
      FillTreeEntry(k, path.empty() || path == "/" ? "/" + k.name : path + "/" + k.name, &c);
      children->push_back(std::move(c));
    }
    return true;
  }
  // read
  if (r.e->type != EType::File) {
    g_set_error(err, G_IO_ERROR, G_IO_ERROR_IS_DIRECTORY, "not a regular file");
    return false;
  }
  std::string buf;
  if (!e.ReadAll(e.layers[r.layer], *r.e, r.lpath, maxBytes > 0 ? static_cast<uint64_t>(maxBytes) : UINT64_MAX, &buf, err)) return false;
  data->assign(buf.begin(), buf.end());
  return true;
}

}  // namespace osx
