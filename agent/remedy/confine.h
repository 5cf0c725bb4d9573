// Confined file access for disk remedies: every path is resolved by the kernel beneath an
// allowed root without following any symlink and without crossing into another mount
// (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS), so
// neither a glob, a "..", a symlink planted in a log directory, a directory swapped for a
// symlink between scan and delete, nor a bind mount inside the root can lead outside it.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
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
};

// Regular files beneath `root` whose root-relative path matches one of `globs` (fnmatch with
// FNM_PATHNAME: "*.log" matches at the top only, "*/*.log" one level down; "**" is not special).
// Symlinks, other mounts and special files are skipped. Bounded: at most `max_entries` entries
// are looked at.
Result<std::vector<FoundFile>> find_files(int root, const std::vector<std::string>& globs,
                                          size_t max_entries = 100000);

// (dev, inode) of every file some process has open for writing, from /proc/*/fd and fdinfo.
std::set<std::pair<dev_t, ino_t>> files_open_for_writing(const std::string& procfs = "/proc");

// A path as given in a policy: absolute, normalized, no "..", no "." components.
bool is_clean_absolute(const std::string& path);

}  // namespace mend
