// Confined file access for disk remedies: every path is resolved by the kernel beneath an
// allowed root without following any symlink and without crossing into another mount
// (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS), so
// neither a glob, a "..", a symlink planted in a log directory, a directory swapped for a
// symlink between scan and delete, nor a bind mount inside the root can lead outside it.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "mend/result.h"

namespace mend {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.release();
    }
    return *this;
  }
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset() {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// An allowed root (an absolute directory path, itself reached without symlinks).
Result<Fd> open_root(const std::string& path);
// `rel` (no leading '/') beneath `root`; flags as for openat (O_CLOEXEC is added).
Result<Fd> open_beneath(int root, const std::string& rel, int flags, mode_t mode = 0);

struct FoundFile {
  std::string rel;  // path relative to the root
  uint64_t size = 0;
  int64_t mtime_s = 0;
  dev_t dev = 0;
  ino_t ino = 0;
  uint64_t allocated = 0;  // bytes the filesystem holds for it (st_blocks * 512)
};

// What find_files passed over, so a remedy can say why a planted file was not touched.
struct FindSkipped {
  size_t links = 0;    // regular files with more than one link (a planted hard link)
  size_t foreign = 0;  // owned by an owner the policy does not allow
  size_t special = 0;  // symlinks, FIFOs, devices, sockets
  std::string summary() const;
};

// Regular files beneath `root` whose root-relative path matches one of `globs` (fnmatch with
// FNM_PATHNAME: "*.log" matches at the top only, "*/*.log" one level down; "**" is not special).
// Symlinks, other mounts, special files and files with more than one link are skipped, and,
// when `owners` is given, files of any other owner. Bounded: at most `max_entries` entries are
// looked at.
Result<std::vector<FoundFile>> find_files(int root, const std::vector<std::string>& globs,
                                          size_t max_entries = 100000,
                                          const std::set<uid_t>* owners = nullptr,
                                          FindSkipped* skipped = nullptr);

// The owners whose files a disk action may touch: the users named (names or numeric ids), or,
// when none is named, root and the owner of the allowed root directory `root`.
Result<std::set<uid_t>> allowed_owners(const std::vector<std::string>& names, int root);

// On the open descriptor, just before a truncate, collapse or unlink: a regular file with one
// link, of an allowed owner, and, when `expect` is given, the very (device, inode) scanned.
Status check_open_file(int fd, const std::set<uid_t>& owners, const FoundFile* expect,
                       const std::string& name);

// The one deny-list of every disk action: a root that is or holds a system directory, or that
// is or lies in mend's own state directory (`state_dir`, and the packaged /var/lib/mend).
// Trailing and repeated slashes are normalised first ("/var/" is "/var"). The reason, or "".
std::string denied_root(const std::string& path, const std::string& state_dir = "");

// Every regular file some process has open for writing, from /proc/*/fd and fdinfo, with the
// processes that hold it. A process whose descriptors cannot be read (not one that exited
// meanwhile) is counted, so a caller can fail closed instead of assuming it writes nothing.
struct OpenForWriting {
  std::map<std::pair<dev_t, ino_t>, std::vector<pid_t>> files;
  size_t unreadable = 0;
  bool count(const std::pair<dev_t, ino_t>& f) const { return files.count(f) != 0; }
};
OpenForWriting files_open_for_writing(const std::string& procfs = "/proc");

// A path as given in a policy: absolute, normalized, no "..", no "." components.
bool is_clean_absolute(const std::string& path);

}  // namespace mend
