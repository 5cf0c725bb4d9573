// rotate_logs: rotate the log files a policy names (a glob in a directory) in small bounded
// steps. Where a logrotate configuration covers a file, logrotate is run for that configuration
// (forced), as users expect. Otherwise natively, confined to the directory (confine.h):
//   copytruncate  the file's block-aligned prefix is copied (gzip) to NAME.1.gz, fsync'd, then
//                 cut from the live file with fallocate(FALLOC_FL_COLLAPSE_RANGE), so nothing
//                 a writer appends meanwhile is lost and nothing is copied twice (ext4, xfs);
//   reload        NAME is renamed to NAME.1, the policy's unit is reloaded (it reopens its log),
//                 then NAME.1 is compressed.
// Older rotations shift up (NAME.1.gz -> NAME.2.gz ...), at most `keep` are kept. Content
// that has not been rotated is never deleted. Not reversible (a rotation is not undone), not
// destructive (no flag needed): only rotations beyond `keep` are removed, as logrotate does.
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/falloc.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../../systemd/unit_ops.h"
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
    gz = gzdopen(dup(out), "wb6");
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
        timeout_ns_(static_cast<uint64_t>(p.integer("timeout"))) {}

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
    if (method_ == "reload" && ctx_.unit.empty())
      return Error{"rotate_logs: method reload needs a unit and the incident names none"};
    for (const auto& g : paths_) {
      std::string dir, pattern;
      if (!split_glob(g, dir, pattern))
        return Error{"rotate_logs: bad path glob " + g};
      auto root = open_root(dir);
      if (!root.ok())
        return root.error();
      auto found = find_files(root->get(), {pattern});
      if (!found.ok())
        return found.error();
      for (const auto& f : *found) {
        if (is_rotation(f.rel))
          continue;  // app.log.1, app.log.2.gz: already rotated, whatever the glob says
        if (f.size < min_size_ || native_.size() + logrotate_.size() >= max_files_)
          continue;
        const std::string full = dir + "/" + f.rel;
        const std::string conf = logrotate_dir_.empty() || access(kLogrotate, X_OK) != 0
                                     ? ""
                                     : logrotate_config_for(logrotate_dir_, full);
        if (!conf.empty())
          logrotate_[conf]++;
        else
          native_.push_back({dir, f.rel, f.size});
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
  };

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
    if (auto f = open_beneath(dfd, t.name, O_RDWR | O_NOFOLLOW); f.ok())
      live = std::move(*f);
    else
      return f.error();
    struct stat st {};
    if (fstat(live.get(), &st) != 0 || !S_ISREG(st.st_mode))
      return Error{"not a regular file"};
    // Shift older rotations; the one past `keep` goes.
    unlinkat(dfd, rotated_name(t.name, keep_).c_str(), 0);
    for (int i = keep_ - 1; i >= 1; --i)
      renameat(dfd, rotated_name(t.name, i).c_str(), dfd, rotated_name(t.name, i + 1).c_str());
    const std::string tmp = "." + t.name + ".mend-rotating";
    unlinkat(dfd, tmp.c_str(), 0);
    if (method_ == "reload") {
      if (renameat(dfd, t.name.c_str(), dfd, (t.name + ".1").c_str()) != 0)
        return Error::from_errno("rename", errno);
      auto r = ctx_.units->reload(ctx_.unit, timeout_ns_);
      if (!r.ok() || *r != "done")
        return Error{"reload of " + ctx_.unit + " failed (" + (r.ok() ? *r : r.error().message) +
                     "); " + t.name + ".1 keeps the old content"};
      ++rotated_;
      if (!compress_)
        return {};
      auto out =
          open_beneath(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, st.st_mode & 0666);
      auto in = open_beneath(dfd, t.name + ".1", O_RDONLY | O_NOFOLLOW);
      if (!out.ok() || !in.ok())
        return Error{"cannot compress " + t.name + ".1 (left uncompressed)"};
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
      unlinkat(dfd, (t.name + ".1").c_str(), 0);
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
    const std::string staged = ctx_.state_dir + "/rotate-" + std::to_string(getpid()) + "-" +
                               std::to_string(st.st_ino) + ".part";
    Fd sfd(::open(staged.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (sfd.get() < 0)
      return Error{copied.error().message + "; no staging either: " + std::strerror(errno)};
    if (auto c = copy_prefix(live.get(), sfd.get(), len, compress_, reporter(t)); !c.ok()) {
      unlink(staged.c_str());
      return Error{copied.error().message + "; staging failed too: " + c.error().message};
    }
    if (Status cut = collapse(live.get(), len); !cut.ok()) {
      unlink(staged.c_str());
      return cut;
    }
    // Space is free now: the staged copy goes next to the log.
    struct stat sst {};
    fstat(sfd.get(), &sst);
    auto in_dir =
        open_beneath(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, st.st_mode & 0666);
    Status moved = in_dir.ok() ? copy_prefix(sfd.get(), in_dir->get(),
                                             static_cast<uint64_t>(sst.st_size), false)
                               : in_dir.error();
    if (!moved.ok() || renameat(dfd, tmp.c_str(), dfd, rotated_name(t.name, 1).c_str()) != 0) {
      unlinkat(dfd, tmp.c_str(), 0);
      ++rotated_;  // the live file was cut: space is free, the old part is kept in staging
      return Error{"rotated, but the rotated part stays at " + staged + " (" +
                   (moved.ok() ? std::strerror(errno) : moved.error().message) + ")"};
    }
    unlink(staged.c_str());
    ++rotated_;
    freed_ += len - std::min<uint64_t>(len, static_cast<uint64_t>(sst.st_size));
    return {};
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

  Status cut_and_publish(const Target& t, int dfd, int live, uint64_t len, int out,
                         const std::string& tmp) {
    if (Status cut = collapse(live, len); !cut.ok()) {
      unlinkat(dfd, tmp.c_str(), 0);
      return cut;
    }
    struct stat ost {};
    fstat(out, &ost);
    if (renameat(dfd, tmp.c_str(), dfd, rotated_name(t.name, 1).c_str()) != 0)
      return Error::from_errno("rename", errno);
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
               "for logrotate and the unit's reload"}};
  s.validate = [](const std::map<std::string, ParamValue>& p, const PolicyIR&) -> std::string {
    for (const auto& g : std::get<std::vector<std::string>>(p.at("paths"))) {
      std::string dir, pattern;
      if (!split_glob(g, dir, pattern))
        return "paths: \"" + g +
               "\" must be an absolute directory (no glob, no \"..\") and a file-name glob";
    }
    return "";
  };
  return s;
}

}  // namespace

MEND_REGISTER_ACTION(rotate_logs, spec(), RotateLogsAction::create);

}  // namespace mend
