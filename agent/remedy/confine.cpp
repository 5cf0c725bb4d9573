#include "confine.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <pwd.h>
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

std::string FindSkipped::summary() const {
  std::string s;
  auto add = [&](size_t n, const char* what) {
    if (n)
      s += (s.empty() ? "" : ", ") + std::to_string(n) + " " + what;
  };
  add(links, "with more than one link");
  add(foreign, "of an owner not allowed");
  add(special, "not regular files");
  return s.empty() ? s : "skipped " + s;
}

Result<std::set<uid_t>> allowed_owners(const std::vector<std::string>& names, int root) {
  std::set<uid_t> out;
  if (names.empty()) {
    struct stat st {};
    if (fstat(root, &st) != 0)
      return Error::from_errno("fstat of the allowed root", errno);
    out = {0, st.st_uid};
    return out;
  }
  for (const auto& n : names) {
    char* end = nullptr;
    errno = 0;
    unsigned long id = std::strtoul(n.c_str(), &end, 10);
    if (!n.empty() && *end == '\0' && errno == 0 && id < UINT32_MAX) {
      out.insert(static_cast<uid_t>(id));
      continue;
    }
    struct passwd pw {};
    struct passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (getpwnam_r(n.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found)
      return Error{"owners: no user \"" + n + "\" on this host", ENOENT};
    out.insert(found->pw_uid);
  }
  return out;
}

Status check_open_file(int fd, const std::set<uid_t>& owners, const FoundFile* expect,
                       const std::string& name) {
  struct stat st {};
  if (fstat(fd, &st) != 0)
    return Error::from_errno("fstat " + name, errno);
  if (!S_ISREG(st.st_mode))
    return Error{name + " is not a regular file; left alone", EPERM};
  if (st.st_nlink != 1)
    return Error{name + " has " + std::to_string(st.st_nlink) +
                     " links (a hard link could reach a file outside the allowed tree); left "
                     "alone",
                 EPERM};
  if (!owners.count(st.st_uid))
    return Error{name + " is owned by uid " + std::to_string(st.st_uid) +
                     ", not an owner the policy allows; left alone",
                 EPERM};
  if (expect && (st.st_dev != expect->dev || st.st_ino != expect->ino))
    return Error{name + " is not the file that was scanned (replaced since); left alone", ESTALE};
  return {};
}

std::string denied_root(const std::string& path, const std::string& state_dir) {
  auto norm = [](std::string p) {
    std::string o;
    for (char c : p)
      if (!(c == '/' && !o.empty() && o.back() == '/'))
        o += c;
    while (o.size() > 1 && o.back() == '/')
      o.pop_back();
    return o;
  };
  const std::string r = norm(path);
  if (!is_clean_absolute(r))
    return "\"" + path + "\" is not a clean absolute path";
  auto within = [](const std::string& p, const std::string& dir) {  // p is dir or below it
    return dir == "/" || p == dir ||
           (p.size() > dir.size() && p.compare(0, dir.size(), dir) == 0 && p[dir.size()] == '/');
  };
  // Never the directory itself or anything holding it.
  static const char* kHeld[] = {
      "/etc",  "/usr",  "/bin",  "/sbin", "/lib",          "/lib32",     "/lib64",
      "/boot", "/root", "/home", "/var",  "/var/lib",      "/run",       "/srv",
      "/opt",  "/proc", "/sys",  "/dev",  "/var/lib/mend", "/var/spool", "/var/cache"};
  for (const char* d : kHeld)
    if (within(d, r))
      return "\"" + path + "\" is or holds " + d + ", which mend never touches";
  // Nothing beneath these either.
  static const char* kBelow[] = {"/etc",          "/usr",          "/bin",         "/sbin",
                                 "/lib",          "/lib32",        "/lib64",       "/boot",
                                 "/proc",         "/sys",          "/dev",         "/run/systemd",
                                 "/var/lib/mend", "/var/lib/dpkg", "/var/lib/rpm", "/root"};
  for (const char* d : kBelow)
    if (within(r, d))
      return "\"" + path + "\" lies in " + d + ", which mend never touches";
  if (!state_dir.empty()) {
    const std::string s = norm(state_dir);
    if (within(r, s) || within(s, r))
      return "\"" + path + "\" is or holds mend's state directory " + s;
  }
  return "";
}

Result<std::vector<FoundFile>> find_files(int root, const std::vector<std::string>& globs,
                                          size_t max_entries, const std::set<uid_t>* owners,
                                          FindSkipped* skipped) {
  FindSkipped none;
  FindSkipped& sk = skipped ? *skipped : none;
  struct stat rs {};
  if (fstat(root, &rs) != 0)
    return Error::from_errno("fstat", errno);
  std::vector<FoundFile> out;
  size_t seen = 0;
  std::vector<std::string> dirs = {""};
  while (!dirs.empty() && seen < max_entries) {
    const std::string dir = dirs.back();
    dirs.pop_back();
    auto d = dir.empty() ? Result<Fd>(Fd(fcntl(root, F_DUPFD_CLOEXEC, 0)))
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
      bool match = false;
      for (const auto& g : globs)
        match = match || fnmatch(g.c_str(), rel.c_str(), FNM_PATHNAME | FNM_PERIOD) == 0;
      if (!match)
        continue;
      if (!S_ISREG(st.st_mode)) {
        ++sk.special;  // symlinks, devices, sockets, fifos: never
        continue;
      }
      if (st.st_nlink != 1) {
        ++sk.links;
        continue;
      }
      if (owners && !owners->count(st.st_uid)) {
        ++sk.foreign;
        continue;
      }
      out.push_back({rel, static_cast<uint64_t>(st.st_size), st.st_mtime, st.st_dev, st.st_ino,
                     static_cast<uint64_t>(st.st_blocks) * 512});
    }
    closedir(dp);
  }
  return out;
}

OpenForWriting files_open_for_writing(const std::string& procfs) {
  OpenForWriting out;
  DIR* p = opendir(procfs.c_str());
  if (!p) {
    ++out.unreadable;
    return out;
  }
  while (dirent* e = readdir(p)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    const pid_t pid = static_cast<pid_t>(std::strtol(e->d_name, nullptr, 10));
    const std::string base = procfs + "/" + e->d_name;
    DIR* fds = opendir((base + "/fd").c_str());
    if (!fds) {
      if (errno != ENOENT && errno != ESRCH)
        ++out.unreadable;  // exited meanwhile is fine; hidden from us is not
      continue;
    }
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
        continue;  // closed meanwhile
      const unsigned long fl = std::strtoul(flags.c_str(), nullptr, 8);
      if ((fl & O_ACCMODE) == O_RDONLY)
        continue;
      struct stat st {};
      if (stat((base + "/fd/" + f->d_name).c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
        auto& pids = out.files[{st.st_dev, st.st_ino}];
        if (pids.empty() || pids.back() != pid)
          pids.push_back(pid);
      }
    }
    closedir(fds);
  }
  closedir(p);
  return out;
}

}  // namespace mend
