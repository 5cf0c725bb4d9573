// vacuum_journal: journald's own vacuum (journalctl --vacuum-size / --vacuum-time), which
// removes archived journal files only, never the active ones. Irreversible and destructive
// (old records are gone): a policy must say allow_irreversible.
#include "../action.h"
#include "../spawn.h"

namespace mend {

namespace {

class VacuumJournalAction final : public Action {
 public:
  VacuumJournalAction(const Params& p, const ActionContext& ctx)
      : children_(ctx.children),
        max_size_(static_cast<uint64_t>(p.integer("max_size"))),
        max_age_ns_(static_cast<uint64_t>(p.integer("max_age"))),
        directory_(p.str("directory")),
        timeout_ns_(static_cast<uint64_t>(p.integer("timeout"))) {}

  static std::unique_ptr<Action> create(const Params& p, const ActionContext& ctx) {
    return std::make_unique<VacuumJournalAction>(p, ctx);
  }

  std::vector<std::string> argv() const {
    std::vector<std::string> a = {"/usr/bin/journalctl"};
    if (!directory_.empty())
      a.push_back("--directory=" + directory_);
    if (max_size_)
      a.push_back("--vacuum-size=" + std::to_string(max_size_));
    if (max_age_ns_)
      a.push_back("--vacuum-time=" + std::to_string(max_age_ns_ / 1000000000ull) + "s");
    return a;
  }

  std::string describe() const override {
    std::string d;
    for (const auto& a : argv())
      d += (d.empty() ? "" : " ") + a;
    return d + (result_.empty() ? "" : " (" + result_ + ")");
  }

  Status check() override {
    if (access("/usr/bin/journalctl", X_OK) != 0)
      return Error{"vacuum_journal: /usr/bin/journalctl is not there"};
    return {};
  }

  Status apply() override {
    SpawnOptions o;
    o.argv = argv();
    o.timeout_ns = timeout_ns_;
    // Deletes archived journal files (root's, in root's directories): no capability needed.
    o.purpose = "journalctl";
    o.launcher = children_;
    auto r = spawn_and_wait(o);
    if (!r.ok())
      return r.error();
    result_ = r->summary();
    if (!r->ok())
      return Error{"journalctl vacuum: " + result_};
    done_ = true;
    return {};
  }

  Result<bool> verify() override { return done_; }
  Status rollback() override { return Error{"vacuumed journal files are gone"}; }
  bool reversible() const override { return false; }

 private:
  ChildLauncher* children_;
  uint64_t max_size_, max_age_ns_;
  std::string directory_;
  uint64_t timeout_ns_;
  std::string result_;
  bool done_ = false;
};

ActionSpec spec() {
  ActionSpec s;
  s.name = "vacuum_journal";
  s.summary = "journald's own vacuum of archived journal files (by size and/or age)";
  s.reversible = false;
  s.destructive = true;
  s.params = {{"max_size",
               ParamType::Size,
               false,
               16.0 * (1 << 20),
               1e13,
               int64_t{0},
               {},
               "archived journal files beyond this total are removed, oldest first"},
              {"max_age",
               ParamType::Duration,
               false,
               3600e9,
               3650 * 86400e9,
               int64_t{0},
               {},
               "archived journal files older than this are removed"},
              {"directory",
               ParamType::String,
               false,
               0,
               0,
               std::string(),
               {},
               "a journal directory (default: the system journal)"},
              {"timeout", ParamType::Duration, false, 1e9, 3600e9, int64_t{300000000000}, {}, ""}};
  s.validate = [](const std::map<std::string, ParamValue>& p, const PolicyIR&) -> std::string {
    if (std::get<int64_t>(p.at("max_size")) == 0 && std::get<int64_t>(p.at("max_age")) == 0)
      return "set max_size or max_age";
    const auto& d = std::get<std::string>(p.at("directory"));
    if (!d.empty() && d[0] != '/')
      return "directory must be an absolute path";
    return "";
  };
  return s;
}

}  // namespace

MEND_REGISTER_ACTION(vacuum_journal, spec(), VacuumJournalAction::create);

}  // namespace mend
