#include "confine.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <sys/syscall.h>

#include <cstdlib>
#include <cstring>
#include <fstream>

namespace mend {

namespace {

constexpr uint64_t kResolve =
    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS;

int openat2_(int dirfd, const char* path, uint64_t flags, mode_t mode, uint64_t resolve) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = resolve;
  return static_cast<int>(syscall(SYS_openat2, dirfd, path, &how, sizeof how));
}

// openat2 missing is not a path problem: say what blocks it (there is no fallback that keeps
// the same guarantees, so the remedy is refused).
Error open_error(const std::string& what, int err) {
  if (err == ENOSYS)
    return Error{what +
                     ": openat2() is not available (kernel older than 5.6, or a seccomp filter "
                     "such as systemd's RestrictSUIDSGID=yes blocks it); disk remedies need it "
                     "to stay beneath their allowed roots",
                 ENOSYS};
  return Error::from_errno(what, err);
}

}  // namespace

bool is_clean_absolute(const std::string& p) {
  if (p.empty() || p[0] != '/')
    return false;
  size_t i = 1;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos)
      j = p.size();
    const std::string c = p.substr(i, j - i);
    if ((c.empty() && j != p.size()) || c == "." || c == "..")
      return false;
    i = j + 1;
  }
  return true;
}

Result<Fd> open_root(const std::string& path) {
  if (!is_clean_absolute(path))
    return Error{"\"" + path + "\" is not a clean absolute path", EINVAL};
  // From "/": no symlink anywhere on the way (a root that is a symlink is refused).
  int fd = openat2_(AT_FDCWD, path.c_str(), O_PATH | O_DIRECTORY, 0,
                    RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  if (fd < 0)
    return open_error("Failed to open allowed root " + path, errno);
  return Fd(fd);
}

Result<Fd> open_beneath(int root, const std::string& rel, int flags, mode_t mode) {
  if (rel.empty() || rel[0] == '/')
    return Error{"\"" + rel + "\" must be relative to its root", EINVAL};
  int fd = openat2_(root, rel.c_str(), static_cast<uint64_t>(flags), mode, kResolve);
  if (fd < 0)
    return open_error("Refusing or failing to open " + rel, errno);
  return Fd(fd);
}

Result<std::vector<FoundFile>> find_files(int root, const std::vector<std::string>& globs,
                                          size_t max_entries) {
  struct stat rs {};
  if (fstat(root, &rs) != 0)
    return Error::from_errno("fstat", errno);
  std::vector<FoundFile> out;
  size_t seen = 0;
  std::vector<std::string> dirs = {""};
  while (!dirs.empty() && seen < max_entries) {
    const std::string dir = dirs.back();
    dirs.pop_back();
    auto d = dir.empty() ? Result<Fd>(Fd(dup(root)))
                         : open_beneath(root, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (!d.ok())
      continue;  // vanished, or became a symlink: not ours to follow
    // fdopendir needs a readable fd: the root may be O_PATH.
    Fd readable =
        dir.empty() ? Fd(openat2_(root, ".", O_RDONLY | O_DIRECTORY, 0, kResolve)) : std::move(*d);
    if (readable.get() < 0)
      return Error::from_errno("Failed to read the root", errno);
    DIR* dp = fdopendir(readable.release());
    if (!dp)
      continue;
    while (dirent* e = readdir(dp)) {
      if (++seen > max_entries)
        break;
      const std::string name = e->d_name;
      if (name == "." || name == "..")
        continue;
      struct stat st {};
      if (fstatat(dirfd(dp), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        continue;
      const std::string rel = dir.empty() ? name : dir + "/" + name;
      if (st.st_dev != rs.st_dev)
        continue;  // another filesystem (a mount or bind mount inside the root)
      if (S_ISDIR(st.st_mode)) {
        dirs.push_back(rel);
        continue;
      }
      if (!S_ISREG(st.st_mode))
        continue;  // symlinks, devices, sockets, fifos: never
      for (const auto& g : globs)
        if (fnmatch(g.c_str(), rel.c_str(), FNM_PATHNAME | FNM_PERIOD) == 0) {
          out.push_back(
              {rel, static_cast<uint64_t>(st.st_size), st.st_mtime, st.st_dev, st.st_ino});
          break;
        }
    }
    closedir(dp);
  }
  return out;
}

std::set<std::pair<dev_t, ino_t>> files_open_for_writing(const std::string& procfs) {
  std::set<std::pair<dev_t, ino_t>> out;
  DIR* p = opendir(procfs.c_str());
  if (!p)
    return out;
  while (dirent* e = readdir(p)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    const std::string base = procfs + "/" + e->d_name;
    DIR* fds = opendir((base + "/fd").c_str());
    if (!fds)
      continue;
    while (dirent* f = readdir(fds)) {
      if (f->d_name[0] == '.')
        continue;
      std::ifstream info(base + "/fdinfo/" + f->d_name);
      std::string key;
      std::string flags;
      while (info >> key)
        if (key == "flags:") {
          info >> flags;
          break;
        }
      if (flags.empty())
        continue;
      const unsigned long fl = std::strtoul(flags.c_str(), nullptr, 8);
      if ((fl & O_ACCMODE) == O_RDONLY)
        continue;
      struct stat st {};
      if (stat((base + "/fd/" + f->d_name).c_str(), &st) == 0 && S_ISREG(st.st_mode))
        out.insert({st.st_dev, st.st_ino});
    }
    closedir(fds);
  }
  closedir(p);
  return out;
}

}  // namespace mend
