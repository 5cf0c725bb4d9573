// clean_files: delete files matching globs under allowed roots, older than an age, largest
// (then oldest) first, bounded by a count and a byte total per run. Irreversible and
// destructive: a policy must say allow_irreversible. Every path is resolved by the kernel
// beneath its root without symlinks or mount crossings (confine.h); a file is deleted only if
// it is still the very inode that was scanned, and never while a process has it open for
// writing (unless the policy allows it).
#include <fcntl.h>
#include <time.h>

#include <algorithm>
#include <cstring>

#include "../action.h"
#include "../confine.h"

namespace mend {

namespace {

std::string human(uint64_t b) {
  const char* u[] = {"B", "K", "M", "G", "T"};
  int i = 0;
  double v = static_cast<double>(b);
  while (v >= 1024 && i < 4) {
    v /= 1024;
    ++i;
  }
  char buf[32];
  snprintf(buf, sizeof buf, i ? "%.1f%s" : "%.0f%s", v, u[i]);
  return buf;
}

struct Candidate {
  size_t root = 0;
  FoundFile f;
};

class CleanFilesAction final : public Action {
 public:
  CleanFilesAction(const Params& p, const ActionContext& ctx)
      : ctx_(ctx),
        roots_(p.list("roots")),
        patterns_(p.list("patterns")),
        older_than_ns_(static_cast<uint64_t>(p.integer("older_than"))),
        max_files_(static_cast<uint64_t>(p.integer("max_files"))),
        max_bytes_(static_cast<uint64_t>(p.integer("max_bytes"))),
        allow_open_(p.flag("allow_open_files")),
        owner_names_(p.list("owners")) {}

  static std::unique_ptr<Action> create(const Params& p, const ActionContext& ctx) {
    return std::make_unique<CleanFilesAction>(p, ctx);
  }

  std::string describe() const override {
    std::string where;
    for (const auto& r : roots_)
      where += (where.empty() ? "" : ", ") + r;
    std::string pats;
    for (const auto& p : patterns_)
      pats += (pats.empty() ? "" : " ") + p;
    std::string d = "delete files matching " + pats + " under " + where + " older than " +
                    std::to_string(older_than_ns_ / 1000000000ull / 3600) + " h (at most " +
                    std::to_string(max_files_) + " files, " + human(max_bytes_) + ")";
    if (planned_)
      d += ": " + std::to_string(plan_.size()) + " files, " + human(plan_bytes_) +
           (skipped_open_ ? ", " + std::to_string(skipped_open_) + " open for writing skipped"
                          : "") +
           (skipped_.summary().empty() ? "" : ", " + skipped_.summary());
    if (applied_)
      d += "; deleted " + std::to_string(deleted_) + " (" + human(deleted_bytes_) + ")";
    return d;
  }

  Status check() override {
    plan_.clear();
    plan_bytes_ = 0;
    skipped_open_ = 0;
    root_fds_.clear();
    owners_.clear();
    skipped_ = {};
    std::vector<Candidate> all;
    for (size_t i = 0; i < roots_.size(); ++i) {
      if (auto why = denied_root(roots_[i], ctx_.state_dir); !why.empty())
        return Error{"clean_files: " + why, EPERM};
      auto fd = open_root(roots_[i]);
      if (!fd.ok())
        return fd.error();
      auto owners = allowed_owners(owner_names_, fd->get());
      if (!owners.ok())
        return owners.error();
      auto found = find_files(fd->get(), patterns_, 100000, &*owners, &skipped_);
      if (!found.ok())
        return found.error();
      for (auto& f : *found)
        all.push_back({i, std::move(f)});
      root_fds_.push_back(std::move(*fd));
      owners_.push_back(std::move(*owners));
    }
    const OpenForWriting open =
        allow_open_ ? OpenForWriting{} : files_open_for_writing(ctx_.procfs);
    if (open.unreadable)
      return Error{"clean_files: the open files of " + std::to_string(open.unreadable) +
                       " process(es) cannot be read, so a file they write could be deleted; "
                       "nothing is deleted",
                   EACCES};
    const int64_t now = time(nullptr);
    const auto min_age = static_cast<int64_t>(older_than_ns_ / 1000000000ull);
    std::vector<Candidate> old;
    for (auto& c : all) {
      if (now - c.f.mtime_s < min_age)
        continue;
      if (open.count({c.f.dev, c.f.ino})) {
        ++skipped_open_;
        continue;
      }
      old.push_back(std::move(c));
    }
    std::sort(old.begin(), old.end(), [](const Candidate& a, const Candidate& b) {
      if (a.f.size != b.f.size)
        return a.f.size > b.f.size;
      if (a.f.mtime_s != b.f.mtime_s)
        return a.f.mtime_s < b.f.mtime_s;
      return a.f.rel < b.f.rel;
    });
    for (auto& c : old) {
      if (plan_.size() >= max_files_)
        break;
      if (plan_bytes_ + c.f.size > max_bytes_)
        continue;  // too big for what is left of the budget; a smaller one may still fit
      plan_bytes_ += c.f.size;
      plan_.push_back(std::move(c));
    }
    planned_ = true;
    if (plan_.empty())
      return Error{"clean_files: nothing to delete (" + std::to_string(all.size()) +
                   " matching files, none old enough, closed and within the bounds)"};
    return {};
  }

  Status apply() override {
    if (!planned_)
      if (auto st = check(); !st.ok())
        return st;
    deleted_ = deleted_bytes_ = 0;
    std::string first_error;
    for (const auto& c : plan_) {
      const auto slash = c.f.rel.rfind('/');
      const std::string dir = slash == std::string::npos ? "" : c.f.rel.substr(0, slash);
      const std::string name = slash == std::string::npos ? c.f.rel : c.f.rel.substr(slash + 1);
      const int root = root_fds_[c.root].get();
      // The parent again, resolved beneath the root now: a directory swapped for a symlink
      // since the scan fails here (ELOOP/EXDEV) instead of leading elsewhere.
      Fd parent;
      if (!dir.empty()) {
        auto p = open_beneath(root, dir, O_PATH | O_DIRECTORY | O_NOFOLLOW);
        if (!p.ok()) {
          if (first_error.empty())
            first_error = p.error().message;
          continue;
        }
        parent = std::move(*p);
      }
      const int pfd = dir.empty() ? root : parent.get();
      // The file itself, without following a link, checked on its descriptor: the very inode
      // scanned, one link, an allowed owner.
      auto fd = open_beneath(pfd, name, O_PATH | O_NOFOLLOW);
      Status same =
          fd.ok() ? check_open_file(fd->get(), owners_[c.root], &c.f, c.f.rel) : Status(fd.error());
      if (!same.ok()) {
        if (first_error.empty())
          first_error = same.error().message;
        continue;
      }
      if (unlinkat(pfd, name.c_str(), 0) != 0) {
        if (first_error.empty())
          first_error = c.f.rel + ": " + std::strerror(errno);
        continue;
      }
      ++deleted_;
      deleted_bytes_ += c.f.size;
    }
    applied_ = true;
    if (deleted_ == 0)
      return Error{"clean_files deleted nothing: " + first_error};
    return {};
  }

  Result<bool> verify() override { return applied_ && deleted_ > 0; }
  Status rollback() override { return Error{"clean_files is irreversible"}; }
  bool reversible() const override { return false; }

 private:
  ActionContext ctx_;
  std::vector<std::string> roots_, patterns_;
  uint64_t older_than_ns_, max_files_, max_bytes_;
  bool allow_open_;
  std::vector<std::string> owner_names_;
  std::vector<std::set<uid_t>> owners_;  // per root
  FindSkipped skipped_;
  std::vector<Fd> root_fds_;
  std::vector<Candidate> plan_;
  uint64_t plan_bytes_ = 0, skipped_open_ = 0, deleted_ = 0, deleted_bytes_ = 0;
  bool planned_ = false, applied_ = false;
};

ActionSpec spec() {
  ActionSpec s;
  s.name = "clean_files";
  s.summary = "Delete old files matching globs under allowed roots, bounded per run";
  s.reversible = false;
  s.destructive = true;
  const double day = 86400e9;
  s.params = {
      {"roots",
       ParamType::StringList,
       true,
       0,
       0,
       std::vector<std::string>{},
       {},
       "allowed directories (absolute, no symlinks on the way)"},
      {"patterns",
       ParamType::StringList,
       true,
       0,
       0,
       std::vector<std::string>{},
       {},
       "globs on the path relative to a root, e.g. \"*.tmp\", \"cache/*/*.bin\""},
      {"older_than",
       ParamType::Duration,
       false,
       0,
       3650 * day,
       int64_t{7 * 86400000000000ll},
       {},
       "only files not modified for this long"},
      {"max_files", ParamType::Int, false, 1, 100000, int64_t{100}, {}, "per run"},
      {"max_bytes",
       ParamType::Size,
       false,
       1,
       100.0 * (1ull << 40),
       int64_t{1ll << 30},
       {},
       "per run"},
      {"allow_open_files",
       ParamType::Bool,
       false,
       0,
       0,
       false,
       {},
       "delete files a process has open for writing (space is freed only when it closes them)"},
      {"owners",
       ParamType::StringList,
       false,
       0,
       0,
       std::vector<std::string>{},
       {},
       "users whose files may be deleted (default: root and the owner of the root)"}};
  s.validate = [](const std::map<std::string, ParamValue>& p, const PolicyIR&) -> std::string {
    for (const auto& r : std::get<std::vector<std::string>>(p.at("roots"))) {
      if (auto why = denied_root(r); !why.empty())
        return "roots: " + why;
    }
    for (const auto& g : std::get<std::vector<std::string>>(p.at("patterns")))
      if (g.empty() || g[0] == '/' || g == ".." || g.rfind("../", 0) == 0 ||
          g.find("/../") != std::string::npos ||
          (g.size() >= 3 && g.compare(g.size() - 3, 3, "/..") == 0))
        return "patterns: \"" + g + "\" must be relative to a root, without \"..\"";
    return "";
  };
  return s;
}

}  // namespace

MEND_REGISTER_ACTION(clean_files, spec(), CleanFilesAction::create);

}  // namespace mend
