// rotate_logs: rotate the log files a policy names (a glob in a directory) in small bounded
// steps. Where a logrotate configuration covers a file, logrotate is run for that configuration
// (forced), as users expect. Otherwise natively, confined to the directory (confine.h):
//   copytruncate  the file's block-aligned prefix is copied (gzip) to NAME.1.gz, fsync'd, then
//                 cut from the live file with fallocate(FALLOC_FL_COLLAPSE_RANGE), so nothing
//                 a writer appends meanwhile is lost and nothing is copied twice (ext4, xfs);
//   reload        NAME is renamed to NAME.1 (never over an existing NAME.1), the units of the
//                 processes that hold it open for writing (found from /proc, named by the
//                 manager) are reloaded so they reopen it, then NAME.1 is compressed, unless
//                 someone still writes to it (then it stays as it is).
// Only regular files with one link, of an owner the policy allows (default: root and the
// directory's owner), no larger than max_size and not sparse, are touched; each is re-checked
// on its open descriptor, by (device, inode), before it is cut or renamed. Rotated files keep
// the original's owner and mode. A copy staged in the state directory (the log's filesystem
// is too full) must fit with room to spare; incomplete ones (.part) are removed at the next
// run, a staged copy whose move failed after the cut is kept (.rotated) and reported.
// Older rotations shift up (NAME.1.gz -> NAME.2.gz ...), at most `keep` are kept. Content
// that has not been rotated is never deleted. Not reversible (a rotation is not undone), not
// destructive (no flag needed): only rotations beyond `keep` are removed, as logrotate does.
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <sys/statvfs.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../../systemd/unit_ops.h"
#include "../../systemd/unit_resolver.h"
#include "../action.h"
#include "../confine.h"
#include "../spawn.h"

namespace mend {

namespace {

// "/var/log/app/*.log" -> ("/var/log/app", "*.log"); the directory part has no glob.
bool split_glob(const std::string& g, std::string& dir, std::string& pattern) {
  auto slash = g.rfind('/');
  if (slash == std::string::npos || slash == 0)
    return false;
  dir = g.substr(0, slash);
  pattern = g.substr(slash + 1);
  return !pattern.empty() && dir.find_first_of("*?[") == std::string::npos &&
         is_clean_absolute(dir) && pattern != "." && pattern != "..";
}

// The logrotate configuration file (in `dir`) with a pattern that matches `path`, or "".
std::string logrotate_config_for(const std::string& dir, const std::string& path) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (!e.is_regular_file())
      continue;
    std::ifstream f(e.path());
    std::string line;
    int depth = 0;
    while (std::getline(f, line)) {
      std::istringstream words(line);
      for (std::string w; words >> w;) {
        if (w == "{") {
          ++depth;
          continue;
        }
        if (w == "}") {
          --depth;
          continue;
        }
        if (depth > 0 || w[0] == '#')
          break;
        if (w.size() > 1 && w.front() == '"' && w.back() == '"')
          w = w.substr(1, w.size() - 2);
        if (!w.empty() && w.back() == '{') {
          w.pop_back();
          ++depth;
        }
        if (!w.empty() && w[0] == '/' && fnmatch(w.c_str(), path.c_str(), FNM_PATHNAME) == 0)
          return e.path().string();
      }
    }
  }
  return "";
}

// "app.log.3" or "app.log.3.gz".
bool is_rotation(std::string name) {
  if (name.size() > 3 && name.compare(name.size() - 3, 3, ".gz") == 0)
    name.resize(name.size() - 3);
  auto dot = name.rfind('.');
  return dot != std::string::npos && dot + 1 < name.size() &&
         name.find_first_not_of("0123456789", dot + 1) == std::string::npos;
}

Status write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return Error::from_errno("write", errno);
    p += w;
    n -= static_cast<size_t>(w);
  }
  return {};
}

// Copies [0, len) of `in` into the new file `out` (gzip when `compress`); fsyncs it.
// `copied` hears how far it is, every 8 MiB.
Status copy_prefix(int in, int out, uint64_t len, bool compress,
                   const std::function<void(uint64_t)>& copied = {}) {
  std::vector<char> buf(1 << 16);
  gzFile gz = nullptr;
  if (compress) {
    gz = gzdopen(fcntl(out, F_DUPFD_CLOEXEC, 0), "wb6");
    if (!gz)
      return Error{"gzdopen failed"};
  }
  uint64_t off = 0;
  Status st;
  while (off < len && st.ok()) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), len - off));
    ssize_t r = pread(in, buf.data(), want, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      st = Error::from_errno("read", r < 0 ? errno : EIO);
      break;
    }
    if (gz) {
      if (gzwrite(gz, buf.data(), static_cast<unsigned>(r)) != r)
        st = Error{"gzip write failed"};
    } else {
      st = write_all(out, buf.data(), static_cast<size_t>(r));
    }
    const uint64_t before = off;
    off += static_cast<uint64_t>(r);
    if (copied && (off >> 23) != (before >> 23))
      copied(off);
  }
  if (gz && gzclose(gz) != Z_OK && st.ok())
    st = Error{"gzip close failed"};
  if (st.ok() && fsync(out) != 0)
    st = Error::from_errno("fsync", errno);
  return st;
}

class RotateLogsAction final : public Action {
 public:
  RotateLogsAction(const Params& p, const ActionContext& ctx)
      : ctx_(ctx),
        paths_(p.list("paths")),
        keep_(static_cast<int>(p.integer("keep"))),
        min_size_(static_cast<uint64_t>(p.integer("min_size"))),
        max_files_(static_cast<size_t>(p.integer("max_files"))),
        method_(p.str("method")),
        compress_(p.flag("compress")),
        logrotate_dir_(p.str("logrotate_configs")),
        logrotate_state_(p.str("logrotate_state")),
        timeout_ns_(static_cast<uint64_t>(p.integer("timeout"))),
        max_size_(static_cast<uint64_t>(p.integer("max_size"))),
        owner_names_(p.list("owners")) {}

  static std::unique_ptr<Action> create(const Params& p, const ActionContext& ctx) {
    return std::make_unique<RotateLogsAction>(p, ctx);
  }

  std::string describe() const override {
    std::string what;
    for (const auto& p : paths_)
      what += (what.empty() ? "" : " ") + p;
    std::string d = "rotate " + what + " (" + method_ + ", keep " + std::to_string(keep_) +
                    (compress_ ? ", gzip" : "") + ")";
    if (planned_) {
      d += ": " + std::to_string(native_.size()) + " file(s) natively";
      if (!refused_.empty())
        d += ", refused: " + refused_;
      for (const auto& [conf, n] : logrotate_)
        d += ", logrotate --force " + conf;
    }
    if (applied_)
      d += "; rotated " + std::to_string(rotated_) + ", freed about " +
           std::to_string(freed_ >> 20) + " MiB";
    return d;
  }

  Status check() override {
    native_.clear();
    logrotate_.clear();
    refused_.clear();
    clean_staging();
    for (const auto& g : paths_) {
      std::string dir, pattern;
      if (!split_glob(g, dir, pattern))
        return Error{"rotate_logs: bad path glob " + g};
      if (auto why = denied_root(dir, ctx_.state_dir); !why.empty())
        return Error{"rotate_logs: " + why, EPERM};
      auto root = open_root(dir);
      if (!root.ok())
        return root.error();
      auto owners = allowed_owners(owner_names_, root->get());
      if (!owners.ok())
        return owners.error();
      FindSkipped skipped;
      auto found = find_files(root->get(), {pattern}, 100000, &*owners, &skipped);
      if (!found.ok())
        return found.error();
      if (!skipped.summary().empty())
        refuse(dir + ": " + skipped.summary());
      for (const auto& f : *found) {
        if (is_rotation(f.rel))
          continue;  // app.log.1, app.log.2.gz: already rotated, whatever the glob says
        if (f.size < min_size_ || native_.size() + logrotate_.size() >= max_files_)
          continue;
        if (f.size > max_size_) {
          refuse(f.rel + " is larger than max_size (" + std::to_string(f.size >> 20) + " MiB)");
          continue;
        }
        if (f.size > (64ull << 20) && f.allocated < f.size / 2) {
          refuse(f.rel + " is sparse (" + std::to_string(f.allocated >> 20) + " of " +
                 std::to_string(f.size >> 20) + " MiB allocated): not a log");
          continue;
        }
        const std::string full = dir + "/" + f.rel;
        const std::string conf = logrotate_dir_.empty() || access(kLogrotate, X_OK) != 0
                                     ? ""
                                     : logrotate_config_for(logrotate_dir_, full);
        if (!conf.empty())
          logrotate_[conf]++;
        else
          native_.push_back({dir, f.rel, f.size, f, *owners});
      }
    }
    planned_ = true;
    if (native_.empty() && logrotate_.empty())
      return Error{"rotate_logs: no log file of at least " + std::to_string(min_size_ >> 20) +
                   " MiB matches"};
    return {};
  }

  Status apply() override {
    if (!planned_)
      if (auto st = check(); !st.ok())
        return st;
    rotated_ = 0;
    freed_ = 0;
    std::string errors;
    total_bytes_ = 0;
    done_bytes_ = 0;
    file_no_ = 0;
    for (const auto& f : native_)
      total_bytes_ += f.size;
    for (const auto& [conf, n] : logrotate_) {
      ctx_.report("logrotate --force " + conf);
      SpawnOptions o;
      o.argv = {kLogrotate, "--force", conf};
      if (!logrotate_state_.empty())
        o.argv.insert(o.argv.begin() + 1, {"--state", logrotate_state_});
      o.timeout_ns = timeout_ns_;
      // Rotates and recreates files of the services that own them (and, for `su`, as them);
      // postrotate scripts signal their writers.
      o.purpose = "logrotate";
      o.launcher = ctx_.children;
      o.sandbox.capabilities = {
          "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_CHOWN",
          "CAP_KILL",         "CAP_SETUID",          "CAP_SETGID"};
      auto r = spawn_and_wait(o);
      if (!r.ok() || !r->ok())
        errors += "; logrotate " + conf + ": " + (r.ok() ? r->summary() : r.error().message);
      else
        rotated_ += n;
    }
    for (const auto& f : native_) {
      ++file_no_;
      Status st = rotate_one(f);
      done_bytes_ += f.size;
      if (!st.ok())
        errors += "; " + f.dir + "/" + f.name + ": " + st.error().message;
    }
    applied_ = true;
    if (rotated_ == 0)
      return Error{"rotate_logs rotated nothing" + errors};
    return {};
  }

  Result<bool> verify() override { return applied_ && rotated_ > 0; }
  Status rollback() override { return Error{"a rotation is not undone"}; }
  bool reversible() const override { return false; }

 private:
  static constexpr const char* kLogrotate = "/usr/sbin/logrotate";
  struct Target {
    std::string dir, name;
    uint64_t size = 0;
    FoundFile found;         // what was scanned: the identity re-checked before any change
    std::set<uid_t> owners;  // whose files this directory's rotation may touch
  };

  void refuse(const std::string& why) {
    if (refused_.size() < 2000)
      refused_ += (refused_.empty() ? "" : "; ") + why;
  }

  // Incomplete staging copies of an earlier run (mendd stopped mid-copy): the live file was
  // not cut, so they hold nothing that is not still in the log.
  void clean_staging() const {
    if (ctx_.state_dir.empty())
      return;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(ctx_.state_dir, ec)) {
      const std::string n = e.path().filename().string();
      if (n.rfind("rotate-", 0) == 0 && n.size() > 5 && n.compare(n.size() - 5, 5, ".part") == 0)
        std::filesystem::remove(e.path(), ec);
    }
  }

  // A rotated file is the original's: same owner, same mode (not root's 0600 by umask).
  static void keep_owner(int fd, const struct stat& of) {
    (void)!fchown(fd, of.st_uid, of.st_gid);
    (void)!fchmod(fd, of.st_mode & 07777);
  }

  std::string rotated_name(const std::string& name, int i) const {
    return name + "." + std::to_string(i) + (compress_ ? ".gz" : "");
  }

  // Progress of the copy of `t` (mendctl explain): bytes of this file, fraction of all.
  std::function<void(uint64_t)> reporter(const Target& t) {
    return [this, &t](uint64_t off) {
      const double all = static_cast<double>(std::max<uint64_t>(total_bytes_, 1));
      ctx_.report(t.name + ": " + std::to_string(off >> 20) + " of " +
                      std::to_string(t.size >> 20) + " MiB " +
                      (compress_ ? "compressed" : "copied") + " (file " + std::to_string(file_no_) +
                      " of " + std::to_string(native_.size()) + ")",
                  std::min(1.0, static_cast<double>(done_bytes_ + off) / all));
    };
  }

  Status rotate_one(const Target& t) {
    auto dir = open_root(t.dir);
    if (!dir.ok())
      return dir.error();
    const int dfd = dir->get();
    Fd live;
    // O_NONBLOCK: a FIFO swapped in since the scan must not hang the step (it is refused next).
    // Read-only for reload: mend itself must not count as one of the file's writers.
    const int mode = method_ == "reload" ? O_RDONLY : O_RDWR;
    if (auto f = open_beneath(dfd, t.name, mode | O_NOFOLLOW | O_NONBLOCK); f.ok())
      live = std::move(*f);
    else
      return f.error();
    if (auto ok = check_open_file(live.get(), t.owners, &t.found, t.name); !ok.ok())
      return ok;
    struct stat st {};
    if (fstat(live.get(), &st) != 0)
      return Error::from_errno("fstat", errno);
    // Shift older rotations; the one past `keep` goes.
    unlinkat(dfd, rotated_name(t.name, keep_).c_str(), 0);
    for (int i = keep_ - 1; i >= 1; --i)
      renameat(dfd, rotated_name(t.name, i).c_str(), dfd, rotated_name(t.name, i + 1).c_str());
    const std::string tmp = "." + t.name + ".mend-rotating";
    unlinkat(dfd, tmp.c_str(), 0);
    if (method_ == "reload") {
      // Who writes it: those are reloaded, not the incident's culprit.
      auto writers = writer_units(st);
      if (!writers.ok())
        return writers.error();
      const std::string old = t.name + ".1";
      if (renameat2(dfd, t.name.c_str(), dfd, old.c_str(), RENAME_NOREPLACE) != 0)
        return errno == EEXIST
                   ? Error{old + " exists (left by an earlier rotation); not overwritten", EEXIST}
                   : Error::from_errno("rename", errno);
      for (const auto& u : *writers) {
        auto r = ctx_.units->reload(u, timeout_ns_);
        if (!r.ok() || *r != "done")
          return Error{"reload of " + u + " failed (" + (r.ok() ? *r : r.error().message) + "); " +
                       old + " keeps the old content"};
      }
      if (files_open_for_writing(ctx_.procfs).count({st.st_dev, st.st_ino}))
        return Error{old + " is still open for writing after the reload of " +
                         std::to_string(writers->size()) +
                         " unit(s): kept as it is, no space freed",
                     EBUSY};
      ++rotated_;
      if (!compress_)
        return {};
      auto out =
          open_beneath(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, st.st_mode & 0666);
      auto in = open_beneath(dfd, old, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
      if (!out.ok() || !in.ok())
        return Error{"cannot compress " + old + " (left uncompressed)"};
      if (auto same = check_open_file(in->get(), t.owners, &t.found, old); !same.ok()) {
        unlinkat(dfd, tmp.c_str(), 0);
        return same;
      }
      keep_owner(out->get(), st);
      struct stat ist {};
      fstat(in->get(), &ist);
      if (auto c = copy_prefix(in->get(), out->get(), static_cast<uint64_t>(ist.st_size), true,
                               reporter(t));
          !c.ok()) {
        unlinkat(dfd, tmp.c_str(), 0);
        return c;
      }
      struct stat ost {};
      fstat(out->get(), &ost);
      renameat(dfd, tmp.c_str(), dfd, rotated_name(t.name, 1).c_str());
      unlinkat(dfd, old.c_str(), 0);
      freed_ += static_cast<uint64_t>(ist.st_size) - static_cast<uint64_t>(ost.st_size);
      return {};
    }
    // copytruncate: the block-aligned prefix, collapsed out of the live file.
    const uint64_t blk = st.st_blksize > 0 ? static_cast<uint64_t>(st.st_blksize) : 4096;
    uint64_t len = static_cast<uint64_t>(st.st_size) / blk * blk;
    if (len == static_cast<uint64_t>(st.st_size) && len > 0)
      len -= blk;  // a collapse may not reach the end of the file: the last block stays live
    if (len == 0)
      return Error{"smaller than one block"};
    auto out = open_beneath(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, st.st_mode & 0666);
    if (out.ok())
      keep_owner(out->get(), st);
    Status copied =
        out.ok() ? copy_prefix(live.get(), out->get(), len, compress_, reporter(t)) : out.error();
    if (copied.ok())
      return cut_and_publish(t, dfd, live.get(), len, out->get(), tmp);
    unlinkat(dfd, tmp.c_str(), 0);
    // No room on the full filesystem even for the compressed copy (a writer running as root
    // took the reserved blocks too): stage the copy in the state directory, cut, then move it
    // in. The rotated bytes are on disk somewhere at every moment.
    if (ctx_.state_dir.empty())
      return copied;
    // Bounded: the uncompressed worst case must fit with room to spare, so staging never
    // fills the state directory's filesystem (the intent journal lives there).
    struct statvfs vs {};
    const uint64_t reserve = 64ull << 20;
    if (statvfs(ctx_.state_dir.c_str(), &vs) != 0 ||
        static_cast<uint64_t>(vs.f_bavail) * vs.f_frsize < len + reserve)
      return Error{copied.error().message + "; no room to stage " + std::to_string(len >> 20) +
                   " MiB in " + ctx_.state_dir + " either"};
    const std::string base =
        ctx_.state_dir + "/rotate-" + std::to_string(getpid()) + "-" + std::to_string(st.st_ino);
    const std::string staged = base + ".part";
    Fd sfd(::open(staged.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (sfd.get() < 0)
      return Error{copied.error().message + "; no staging either: " + std::strerror(errno)};
    if (auto c = copy_prefix(live.get(), sfd.get(), len, compress_, reporter(t)); !c.ok()) {
      unlink(staged.c_str());
      return Error{copied.error().message + "; staging failed too: " + c.error().message};
    }
    if (auto same = check_open_file(live.get(), t.owners, &t.found, t.name); !same.ok()) {
      unlink(staged.c_str());
      return same;
    }
    // Complete before the cut (a .part is an incomplete copy, removed at the next start; a
    // .rotated is kept): killed between the rename and the cut, the prefix is doubled, never
    // lost.
    const std::string kept = base + ".rotated";
    if (fsync(sfd.get()) != 0 || rename(staged.c_str(), kept.c_str()) != 0) {
      const int e = errno;
      unlink(staged.c_str());
      return Error::from_errno("Failed to keep the staged copy " + kept, e);
    }
    if (Status cut = collapse(live.get(), len); !cut.ok()) {
      unlink(kept.c_str());
      return cut;
    }
    // Space is free now: the staged copy goes next to the log.
    struct stat sst {};
    fstat(sfd.get(), &sst);
    auto in_dir =
        open_beneath(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, st.st_mode & 0666);
    if (in_dir.ok())
      keep_owner(in_dir->get(), st);
    Status moved = in_dir.ok() ? copy_prefix(sfd.get(), in_dir->get(),
                                             static_cast<uint64_t>(sst.st_size), false)
                               : in_dir.error();
    if (!moved.ok() || renameat(dfd, tmp.c_str(), dfd, rotated_name(t.name, 1).c_str()) != 0) {
      unlinkat(dfd, tmp.c_str(), 0);
      ++rotated_;  // the live file was cut: space is free, the old part is kept in staging
      return Error{"rotated, but the rotated part stays at " + kept + " (" +
                   (moved.ok() ? std::strerror(errno) : moved.error().message) + ")"};
    }
    unlink(kept.c_str());
    ++rotated_;
    freed_ += len - std::min<uint64_t>(len, static_cast<uint64_t>(sst.st_size));
    return {};
  }

  // The units of the processes that have the file open for writing, as the manager names them.
  Result<std::set<std::string>> writer_units(const struct stat& st) const {
    const OpenForWriting open = files_open_for_writing(ctx_.procfs);
    if (open.unreadable)
      return Error{"the open files of " + std::to_string(open.unreadable) +
                       " process(es) cannot be read: cannot tell who writes the log",
                   EACCES};
    std::set<std::string> units;
    auto it = open.files.find({st.st_dev, st.st_ino});
    if (it == open.files.end())
      return units;  // nobody writes it: nobody to reload
    for (pid_t pid : it->second) {
      auto u = ctx_.units ? ctx_.units->unit_of_pid(pid)
                          : Result<std::string>(Error{"no manager", ENOTCONN});
      if (!u.ok())
        return Error{"cannot tell which unit writes the log (pid " + std::to_string(pid) +
                         "): " + u.error().message,
                     u.error().code};
      if ((ctx_.is_protected && ctx_.is_protected(*u)) || holds_other_units(*u))
        return Error{"the log is written by pid " + std::to_string(pid) + " of " + *u +
                         ", which mend never reloads",
                     EPERM};
      units.insert(*u);
    }
    return units;
  }

  static Status collapse(int live, uint64_t len) {
    if (fallocate(live, FALLOC_FL_COLLAPSE_RANGE, 0, static_cast<off_t>(len)) != 0) {
      const int e = errno;
      return Error{std::string("cannot cut the rotated part out of the live file (") +
                       std::strerror(e) + "; this filesystem needs method: reload)",
                   e};
    }
    return {};
  }

  // Published before the cut: killed in between, the prefix is in both files (doubled, never
  // lost); a cut that fails takes the published copy back.
  Status cut_and_publish(const Target& t, int dfd, int live, uint64_t len, int out,
                         const std::string& tmp) {
    const std::string rotated = rotated_name(t.name, 1);
    if (fsync(out) != 0 || renameat(dfd, tmp.c_str(), dfd, rotated.c_str()) != 0) {
      const int e = errno;
      unlinkat(dfd, tmp.c_str(), 0);
      return Error::from_errno("Failed to publish " + rotated, e);
    }
    if (Status cut = collapse(live, len); !cut.ok()) {
      unlinkat(dfd, rotated.c_str(), 0);
      return cut;
    }
    struct stat ost {};
    fstat(out, &ost);
    ++rotated_;
    freed_ += len - std::min<uint64_t>(len, static_cast<uint64_t>(ost.st_size));
    return {};
  }

  ActionContext ctx_;
  std::vector<std::string> paths_;
  int keep_;
  uint64_t min_size_;
  size_t max_files_;
  std::string method_;
  bool compress_;
  std::string logrotate_dir_, logrotate_state_;
  uint64_t timeout_ns_;
  uint64_t max_size_;
  std::vector<std::string> owner_names_;
  std::string refused_;
  std::vector<Target> native_;
  uint64_t total_bytes_ = 0, done_bytes_ = 0;  // of the native rotations, for progress
  size_t file_no_ = 0;
  std::map<std::string, size_t> logrotate_;  // configuration -> files it covers
  bool planned_ = false, applied_ = false;
  size_t rotated_ = 0;
  uint64_t freed_ = 0;
};

ActionSpec spec() {
  ActionSpec s;
  s.name = "rotate_logs";
  s.summary = "Rotate named log files (logrotate's configuration where one covers them)";
  s.reversible = false;
  s.params = {{"paths",
               ParamType::StringList,
               true,
               0,
               0,
               std::vector<std::string>{},
               {},
               "absolute globs, the glob in the file name only: /var/log/app/*.log"},
              {"keep", ParamType::Int, false, 1, 100, int64_t{5}, {}, "rotations kept per file"},
              {"min_size",
               ParamType::Size,
               false,
               0,
               1e12,
               int64_t{1 << 20},
               {},
               "smaller files are left alone"},
              {"max_files", ParamType::Int, false, 1, 1000, int64_t{50}, {}, "rotated per run"},
              {"method",
               ParamType::String,
               false,
               0,
               0,
               std::string("copytruncate"),
               {"copytruncate", "reload"},
               "how the writer learns about it"},
              {"compress", ParamType::Bool, false, 0, 0, true, {}, "gzip the rotated file"},
              {"logrotate_configs",
               ParamType::String,
               false,
               0,
               0,
               std::string("/etc/logrotate.d"),
               {},
               "where logrotate's configurations are (\"\": never defer to logrotate)"},
              {"logrotate_state",
               ParamType::String,
               false,
               0,
               0,
               std::string(),
               {},
               "logrotate --state FILE (default: logrotate's own)"},
              {"timeout",
               ParamType::Duration,
               false,
               1e9,
               3600e9,
               int64_t{300000000000},
               {},
               "for logrotate and the unit's reload"},
              {"max_size",
               ParamType::Size,
               false,
               1 << 20,
               1e13,
               int64_t{64ll << 30},
               {},
               "larger files are refused (a log that big is not rotated in one step)"},
              {"owners",
               ParamType::StringList,
               false,
               0,
               0,
               std::vector<std::string>{},
               {},
               "users whose logs may be rotated (default: root and the directory's owner)"}};
  s.validate = [](const std::map<std::string, ParamValue>& p, const PolicyIR&) -> std::string {
    for (const auto& g : std::get<std::vector<std::string>>(p.at("paths"))) {
      std::string dir, pattern;
      if (!split_glob(g, dir, pattern))
        return "paths: \"" + g +
               "\" must be an absolute directory (no glob, no \"..\") and a file-name glob";
      if (auto why = denied_root(dir); !why.empty())
        return "paths: " + why;
    }
    return "";
  };
  return s;
}

}  // namespace

MEND_REGISTER_ACTION(rotate_logs, spec(), RotateLogsAction::create);

}  // namespace mend
