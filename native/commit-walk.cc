// Committing a directory with its content objects written by several threads.
//
// libostree's ostree_repo_write_dfd_to_mtree reads, hashes and writes one file after another
// on one thread; most of a commit is that per-file work (open, read, SHA-256, a tmpfile, its
// owner and mode, linkat). libostree's content writes are safe to run side by side inside one
// transaction (its own pull does it from a thread pool), so here one thread walks the tree
// (readdir, the dirmeta objects, the mutable tree) and hands each directory's files, as one
// batch holding the directory's fd, to a pool that writes them with the public
// ostree_repo_write_regfile_inline / ostree_repo_write_symlink / ostree_repo_write_content.
// What goes into each object (owner, mode, xattrs) is what libostree's walk would put there
// for the same modifier; test/native/commit-parallel.test.ts compares the checksums with
// `ostree commit` on generated trees.
#include "commit-walk.h"

#include <dirent.h>
#include <fcntl.h>
#include <gio/gunixinputstream.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace osx {
namespace {

constexpr int kMaxDepth = 2048;                    // as the overlay engine (PATH_MAX components)
constexpr off_t kInlineMax = 1 << 20;              // files read into memory in one go
constexpr size_t kMaxOpenBatches = 256;            // directory fds held by queued batches
constexpr const char* kOpaqueXattr = "trusted.overlay.opaque";

struct Entry {
  std::string name;
  bool symlink = false;
  char checksum[OSTREE_SHA256_STRING_LEN + 1] = {0};
};

// One directory's files, written by the pool, then put into `mtree` by the walking thread.
struct Batch {
  int dfd = -1;
  OstreeMutableTree* mtree = nullptr;  // a reference of its own
  std::string path;                    // "" for the root, else "/a/b"
  std::vector<Entry> entries;
  size_t next = 0;                     // the next entry a worker takes (under Shared::mu)
  std::atomic<size_t> remaining{0};
  ~Batch() {
    if (dfd >= 0) close(dfd);
    if (mtree) g_object_unref(mtree);
  }
};

struct Shared {
  OstreeRepo* repo = nullptr;
  GCancellable* cancellable = nullptr;
  const ParallelCommitOptions* opts = nullptr;
  bool canonical = false, skipXattrs = false;

  std::mutex mu;
  std::condition_variable work, done;
  std::deque<Batch*> queue;
  std::vector<Batch*> finished;
  bool closing = false;
  std::atomic<bool> stop{false};
  bool fallback = false;    // under mu
  GError* error = nullptr;  // under mu: the first failure

  // Records the first failure (or the need to fall back) and stops everyone. Always false.
  bool Fail(GError* e, bool needFallback = false) {
    std::lock_guard<std::mutex> l(mu);
    if (!error && !fallback) {
      if (needFallback) fallback = true;
      else error = e, e = nullptr;
    }
    if (e) g_error_free(e);
    stop = true;
    return false;
  }
  bool Fallback() { return Fail(nullptr, true); }

  uint32_t Uid(uid_t st) const { return canonical ? 0 : opts->uid >= 0 ? static_cast<uint32_t>(opts->uid) : st; }
  uint32_t Gid(gid_t st) const { return canonical ? 0 : opts->gid >= 0 ? static_cast<uint32_t>(opts->gid) : st; }
};

const char* KindOf(mode_t m) {
  if (S_ISREG(m)) return "a regular file";
  if (S_ISDIR(m)) return "a directory";
  if (S_ISLNK(m)) return "a symlink";
  if (S_ISFIFO(m)) return "a fifo";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  return "of an unknown type";
}

// The tree changed under the commit (an entry's type since the listing): no fallback to a
// walk that would meet the same change.
bool Changed(Shared& s, const std::string& path, const char* listed, mode_t now) {
  return s.Fail(g_error_new(G_IO_ERROR, G_IO_ERROR_FAILED, "%s changed while it was being committed: listed as %s, now %s", path.c_str(),
                            listed, KindOf(now)));
}

std::string Shown(const std::string& dir, const std::string& name) { return dir + "/" + name; }

// errno first: building the path may allocate, and an allocation may change errno.
GError* ErrnoError(const char* op, const std::string& dir, const char* name = nullptr) {
  int e = errno;
  std::string path = name ? Shown(dir, name) : dir.empty() ? "/" : dir;
  return g_error_new(G_IO_ERROR, g_io_error_from_errno(e), "%s(%s): %s", op, path.c_str(), g_strerror(e));
}

struct Fd {
  int fd;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

// One regular file or symlink into the repository; its checksum into `en`.
bool WriteEntry(Shared& s, Batch& b, Entry& en, std::vector<uint8_t>& buf) {
  const char* name = en.name.c_str();
  GError* e = nullptr;
  g_autofree char* csum = nullptr;
  if (en.symlink) {
    struct stat st;
    if (fstatat(b.dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return s.Fail(ErrnoError("fstatat", b.path, name));
    if (!S_ISLNK(st.st_mode)) return Changed(s, Shown(b.path, en.name), "a symlink", st.st_mode);
    char target[PATH_MAX + 1];
    ssize_t n = readlinkat(b.dfd, name, target, PATH_MAX);
    if (n < 0) return s.Fail(ErrnoError("readlinkat", b.path, name));
    target[n] = 0;
    g_autoptr(GVariant) xattrs = nullptr;
    if (!s.skipXattrs && !(xattrs = ostree_fs_get_all_xattrs_at(b.dfd, name, s.cancellable, &e))) return s.Fail(e);
    csum = ostree_repo_write_symlink(s.repo, nullptr, s.Uid(st.st_uid), s.Gid(st.st_gid), xattrs, target, s.cancellable, &e);
  } else {
    // O_NONBLOCK: a fifo put in the file's place since the listing must not hang the open.
    Fd f(openat(b.dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (f.fd < 0) return s.Fail(ErrnoError("openat", b.path, name));
    struct stat st;
    if (fstat(f.fd, &st) < 0) return s.Fail(ErrnoError("fstat", b.path, name));
    if (!S_ISREG(st.st_mode)) return Changed(s, Shown(b.path, en.name), "a regular file", st.st_mode);
    uint32_t mode = s.canonical ? (st.st_mode & (S_IFREG | 0755)) : st.st_mode;
    g_autoptr(GVariant) xattrs = nullptr;
    if (!s.skipXattrs && !(xattrs = ostree_fs_get_all_xattrs(f.fd, s.cancellable, &e))) return s.Fail(e);
    if (st.st_size <= kInlineMax) {
      buf.resize(static_cast<size_t>(st.st_size));
      size_t len = 0;
      while (len < buf.size()) {
        ssize_t n = pread(f.fd, buf.data() + len, buf.size() - len, static_cast<off_t>(len));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return s.Fail(ErrnoError("read", b.path, name));
        if (n == 0) break;
        len += static_cast<size_t>(n);
      }
      csum = ostree_repo_write_regfile_inline(s.repo, nullptr, s.Uid(st.st_uid), s.Gid(st.st_gid), mode, xattrs, buf.data(), len,
                                              s.cancellable, &e);
    } else {
      g_autoptr(GInputStream) in = g_unix_input_stream_new(f.fd, FALSE);
      g_autoptr(GFileInfo) fi = g_file_info_new();
      g_file_info_set_file_type(fi, G_FILE_TYPE_REGULAR);
      g_file_info_set_attribute_uint32(fi, "unix::uid", s.Uid(st.st_uid));
      g_file_info_set_attribute_uint32(fi, "unix::gid", s.Gid(st.st_gid));
      g_file_info_set_attribute_uint32(fi, "unix::mode", mode);
      g_file_info_set_size(fi, st.st_size);
      g_autoptr(GInputStream) object = nullptr;
      guint64 length = 0;
      g_autofree guchar* bin = nullptr;
      if (!ostree_raw_file_to_content_stream(in, fi, xattrs, &object, &length, s.cancellable, &e) ||
          !ostree_repo_write_content(s.repo, nullptr, object, length, &bin, s.cancellable, &e))
        return s.Fail(e);
      csum = ostree_checksum_from_bytes(bin);
    }
  }
  if (!csum) return s.Fail(e);
  memcpy(en.checksum, csum, sizeof en.checksum);
  return true;
}

void WorkerLoop(Shared& s) {
  std::vector<uint8_t> buf;
  for (;;) {
    Batch* b = nullptr;
    size_t i = 0;
    {
      std::unique_lock<std::mutex> l(s.mu);
      s.work.wait(l, [&] { return s.closing || !s.queue.empty(); });
      if (s.queue.empty()) return;
      b = s.queue.front();
      i = b->next++;
      if (b->next == b->entries.size()) s.queue.pop_front();
    }
    if (!s.stop.load(std::memory_order_relaxed)) WriteEntry(s, *b, b->entries[i], buf);
    if (b->remaining.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> l(s.mu);
      s.finished.push_back(b);
      s.done.notify_one();
    }
  }
}

class Walker {
 public:
  explicit Walker(Shared& s) : s_(s) {}

  // Puts finished batches' checksums into their trees and frees them; with `block`, first
  // waits for at least one.
  void Drain(bool block) {
    std::vector<Batch*> got;
    {
      std::unique_lock<std::mutex> l(s_.mu);
      if (block) s_.done.wait(l, [&] { return !s_.finished.empty(); });
      got.swap(s_.finished);
    }
    for (Batch* b : got) {
      for (auto& en : b->entries) {
        if (s_.stop) break;
        GError* e = nullptr;
        if (!ostree_mutable_tree_replace_file(b->mtree, en.name.c_str(), en.checksum, &e)) s_.Fail(e);
      }
      delete b;
      open_--;
    }
  }

  void DrainAll() {
    while (open_ > 0) Drain(true);
  }

  bool Dir(int fd, OstreeMutableTree* mtree, const std::string& path, int depth, bool markOpaque) {
    if (s_.stop) return false;
    GError* e = nullptr;
    if (depth > kMaxDepth)
      return s_.Fail(g_error_new(G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "directory tree deeper than %d levels", kMaxDepth));
    if (g_cancellable_set_error_if_cancelled(s_.cancellable, &e)) return s_.Fail(e);
    struct stat st;
    if (fstat(fd, &st) < 0) return s_.Fail(ErrnoError("fstat", path));
    if (markOpaque && depth > 0) {
      char v[2];
      if (fgetxattr(fd, kOpaqueXattr, v, sizeof v) == 1 && v[0] == 'y') return s_.Fallback();
    }
    {
      g_autoptr(GFileInfo) info = g_file_info_new();
      g_file_info_set_file_type(info, G_FILE_TYPE_DIRECTORY);
      g_file_info_set_attribute_uint32(info, "unix::uid", s_.Uid(st.st_uid));
      g_file_info_set_attribute_uint32(info, "unix::gid", s_.Gid(st.st_gid));
      g_file_info_set_attribute_uint32(info, "unix::mode", s_.canonical ? (st.st_mode & (S_IFDIR | 0755)) : st.st_mode);
      g_autoptr(GVariant) xattrs = nullptr;
      if (!s_.skipXattrs && !(xattrs = ostree_fs_get_all_xattrs(fd, s_.cancellable, &e))) return s_.Fail(e);
      g_autoptr(GVariant) meta = ostree_create_directory_metadata(info, xattrs);
      g_autofree guchar* csum = nullptr;
      if (!ostree_repo_write_metadata(s_.repo, OSTREE_OBJECT_TYPE_DIR_META, nullptr, meta, &csum, s_.cancellable, &e)) return s_.Fail(e);
      char hex[OSTREE_SHA256_STRING_LEN + 1];
      ostree_checksum_inplace_from_bytes(csum, hex);
      ostree_mutable_tree_set_metadata_checksum(mtree, hex);
    }

    int lfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    DIR* dp = lfd < 0 ? nullptr : fdopendir(lfd);
    if (!dp) {
      GError* oe = ErrnoError("opendir", path);
      if (lfd >= 0) close(lfd);
      return s_.Fail(oe);
    }
    auto* batch = new Batch;
    std::vector<std::string> dirs;
    const std::set<std::string>* skip = s_.opts->skip;
    bool ok = true;
    for (;;) {
      errno = 0;
      struct dirent* de = readdir(dp);
      if (!de) {
        if (errno) ok = s_.Fail(ErrnoError("readdir", path));
        break;
      }
      const char* n = de->d_name;
      if (n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0))) continue;
      unsigned char t = de->d_type;
      if (t == DT_UNKNOWN) {
        struct stat cs;
        if (fstatat(fd, n, &cs, AT_SYMLINK_NOFOLLOW) < 0) {
          ok = s_.Fail(ErrnoError("fstatat", path, n));
          break;
        }
        t = IFTODT(cs.st_mode);
      }
      if (t != DT_DIR && t != DT_REG && t != DT_LNK) {
        // An overlay whiteout (char 0:0) goes to libostree's walk over the whiteout shadow
        // tree. Devices, fifos and sockets libostree refuses too ("Not a regular file or
        // symlink"), skipped or not; refusing them here keeps that walk (which opens a file
        // it stat()ed earlier, and would block on a fifo put there since) out of reach.
        struct stat cs;
        if (fstatat(fd, n, &cs, AT_SYMLINK_NOFOLLOW) < 0) {
          ok = s_.Fail(ErrnoError("fstatat", path, n));
        } else if (S_ISCHR(cs.st_mode) && cs.st_rdev == 0) {
          ok = s_.Fallback();
        } else {
          ok = s_.Fail(g_error_new(G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "Not a regular file or symlink: %s (%s)",
                                   Shown(path, n).c_str(), KindOf(cs.st_mode)));
        }
        break;
      }
      if (skip && !skip->empty() && skip->count(Shown(path, n))) continue;
      if (t == DT_DIR) dirs.emplace_back(n);
      else {
        batch->entries.emplace_back();
        batch->entries.back().name = n;
        batch->entries.back().symlink = t == DT_LNK;
      }
    }
    closedir(dp);
    if (!ok || batch->entries.empty()) {
      delete batch;
    } else {
      batch->dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
      if (batch->dfd < 0) {
        delete batch;
        return s_.Fail(ErrnoError("dup", path));
      }
      batch->mtree = static_cast<OstreeMutableTree*>(g_object_ref(mtree));
      batch->path = path;
      batch->remaining = batch->entries.size();
      {
        std::lock_guard<std::mutex> l(s_.mu);
        s_.queue.push_back(batch);
      }
      s_.work.notify_all();
      open_++;
      while (open_ >= kMaxOpenBatches) Drain(true);
    }
    if (!ok) return false;
    Drain(false);

    for (const std::string& name : dirs) {
      if (s_.stop) return false;
      std::string sub = Shown(path, name);
      g_autoptr(OstreeMutableTree) child = nullptr;
      if (!ostree_mutable_tree_ensure_dir(mtree, name.c_str(), &child, &e)) return s_.Fail(e);
      int cfd = openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (cfd < 0) return s_.Fail(ErrnoError("opendir", path, name.c_str()));
      bool r = Dir(cfd, child, sub, depth + 1, markOpaque);
      close(cfd);
      if (!r) return false;
    }
    return true;
  }

 private:
  Shared& s_;
  size_t open_ = 0;
};

bool ConfigDisablesXattrs(OstreeRepo* repo) {
  GKeyFile* kf = ostree_repo_get_config(repo);
  if (!kf) return false;
  g_autoptr(GError) e = nullptr;
  gboolean v = g_key_file_get_boolean(kf, "core", "disable-xattrs", &e);
  return !e && v;
}

}  // namespace

ParallelCommit WriteTreeParallel(OstreeRepo* repo, const std::string& tree, OstreeMutableTree* mtree,
                                 const ParallelCommitOptions& opts, GCancellable* cancellable, GError** err) {
  OstreeRepoMode mode = ostree_repo_get_mode(repo);
  // A filter that skips the root, or a mode only libostree's walk knows: its path.
  if ((opts.skip && opts.skip->count("/")) || mode == OSTREE_REPO_MODE_BARE_SPLIT_XATTRS) return ParallelCommit::Fallback;
  Shared s;
  s.repo = repo;
  s.cancellable = cancellable;
  s.opts = &opts;
  bool bareUserOnly = mode == OSTREE_REPO_MODE_BARE_USER_ONLY;
  // As libostree's commit modifier: bare-user-only always canonicalises and never keeps
  // xattrs; canonical permissions drop xattrs too; so does core.disable-xattrs.
  s.canonical = bareUserOnly || opts.canonicalPermissions;
  s.skipXattrs = bareUserOnly || opts.canonicalPermissions || opts.skipXattrs || ConfigDisablesXattrs(repo);

  int root = open(tree.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root < 0) {
    int e = errno;
    g_set_error(err, G_IO_ERROR, g_io_error_from_errno(e), "opendir(%s): %s", tree.c_str(), g_strerror(e));
    return ParallelCommit::Failed;
  }

  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  size_t want = static_cast<size_t>(std::clamp(cpus, 1L, 4L));
  std::vector<std::thread> threads;
  try {
    for (size_t i = 0; i < want; i++) threads.emplace_back(WorkerLoop, std::ref(s));
  } catch (...) {
    // No thread to spare: the caller's single-threaded path still works.
  }
  if (threads.empty()) {
    close(root);
    return ParallelCommit::Fallback;
  }
  Walker w(s);
  w.Dir(root, mtree, "", 0, bareUserOnly);
  close(root);
  {
    std::lock_guard<std::mutex> l(s.mu);
    s.closing = true;
  }
  s.work.notify_all();
  w.DrainAll();
  for (auto& t : threads) t.join();
  if (s.fallback) return ParallelCommit::Fallback;
  if (s.error) {
    g_propagate_error(err, s.error);
    return ParallelCommit::Failed;
  }
  return ParallelCommit::Done;
}

}  // namespace osx
