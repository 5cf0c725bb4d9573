// exec: a site script named by the policy, for fixes only the site knows (a dependency
// failover, a cache flush). argv only, no shell; its own process group, killed at the timeout;
// the incident as JSON on stdin and MEND_* variables in a minimal environment. Reversible only
// when the policy names a rollback_command; without one the policy must say allow_irreversible.
#include <sys/stat.h>

#include "../../correlate/incident_json.h"
#include "../action.h"
#include "../spawn.h"
#include "mend/text.h"

namespace mend {

namespace {

std::string joined(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv)
    s += (s.empty() ? "" : " ") + a;
  return s;
}

// A script mendd runs as root must not be writable by anyone but root, like the policy naming it.
std::string unsafe_command(const std::vector<std::string>& argv) {
  if (argv.empty())
    return "an empty command";
  if (argv[0].empty() || argv[0][0] != '/')
    return "\"" + argv[0] + "\" is not an absolute path (argv, no shell, no PATH lookup)";
  return "";
}

class ExecAction final : public Action {
 public:
  ExecAction(const Params& p, const ActionContext& ctx)
      : ctx_(ctx),
        command_(p.list("command")),
        rollback_(p.list("rollback_command")),
        verify_(p.list("verify_command")),
        timeout_ns_(static_cast<uint64_t>(p.integer("timeout"))) {}

  static std::unique_ptr<Action> create(const Params& p, const ActionContext& ctx) {
    return std::make_unique<ExecAction>(p, ctx);
  }

  std::string describe() const override {
    std::string d = "run " + joined(command_) + " (timeout " +
                    std::to_string(timeout_ns_ / 1000000000ull) + " s";
    if (!rollback_.empty())
      d += "; rollback: " + joined(rollback_);
    return d + ")";
  }

  Status check() override {
    for (const auto* argv : {&command_, &rollback_, &verify_}) {
      if (argv->empty())
        continue;
      if (auto e = unsafe_command(*argv); !e.empty())
        return Error{"exec: " + e};
      struct stat st {};
      if (stat((*argv)[0].c_str(), &st) != 0)
        return Error::from_errno("exec: " + (*argv)[0], errno);
      if (!S_ISREG(st.st_mode) || !(st.st_mode & S_IXUSR))
        return Error{"exec: " + (*argv)[0] + " is not an executable file"};
      if (st.st_uid != 0 && st.st_uid != geteuid())
        return Error{"exec: " + (*argv)[0] + " is not owned by root"};
      if (st.st_mode & (S_IWGRP | S_IWOTH))
        return Error{"exec: " + (*argv)[0] + " is group- or world-writable"};
    }
    return {};
  }

  Status apply() override {
    auto r = run(command_);
    if (!r.ok())
      return r.error();
    last_ = r->summary();
    if (!r->ok())
      return Error{joined(command_) + ": " + last_};
    return {};
  }

  Result<bool> verify() override {
    if (verify_.empty())
      return true;  // the plan's verify block is the proof
    auto r = run(verify_);
    if (!r.ok())
      return r.error();
    return r->ok();
  }

  Status rollback() override {
    if (rollback_.empty())
      return Error{"exec: no rollback_command"};
    auto r = run(rollback_);
    if (!r.ok())
      return r.error();
    if (!r->ok())
      return Error{joined(rollback_) + ": " + r->summary()};
    return {};
  }

  bool reversible() const override { return !rollback_.empty(); }

 private:
  Result<SpawnResult> run(const std::vector<std::string>& argv) {
    SpawnOptions o;
    o.argv = argv;
    o.timeout_ns = timeout_ns_;
    if (ctx_.incident) {
      o.input = dump_json(to_json(*ctx_.incident)) + "\n";
      o.env["MEND_INCIDENT_ID"] = ctx_.incident->id;
      o.env["MEND_ROOT_CAUSE"] = ctx_.incident->root_cause.kind;
      for (const auto& [k, v] : ctx_.incident->root_cause.entities)
        if (k == "mount" || k == "device")
          o.env[k == "mount" ? "MEND_MOUNT" : "MEND_DEVICE"] = v;
    }
    o.env["MEND_UNIT"] = ctx_.unit;
    return spawn_and_wait(o);
  }

  ActionContext ctx_;
  std::vector<std::string> command_, rollback_, verify_;
  uint64_t timeout_ns_;
  std::string last_;
};

ActionSpec spec() {
  ActionSpec s;
  s.name = "exec";
  s.summary = "Run a site script (argv, no shell, timeout, incident JSON on stdin)";
  s.reversible = false;  // unless rollback_command is given (checked below)
  s.params = {
      {"command", ParamType::StringList, true, 0, 0, std::vector<std::string>{}, {}, "argv"},
      {"rollback_command",
       ParamType::StringList,
       false,
       0,
       0,
       std::vector<std::string>{},
       {},
       "argv that undoes command"},
      {"verify_command",
       ParamType::StringList,
       false,
       0,
       0,
       std::vector<std::string>{},
       {},
       "argv; exit 0 when command's effect is in place"},
      {"timeout",
       ParamType::Duration,
       false,
       1e9,
       1800e9,
       int64_t{60000000000},
       {},
       "killed (with its process group) after this"}};
  s.validate = [](const std::map<std::string, ParamValue>& p, const PolicyIR& ir) -> std::string {
    for (const char* k : {"command", "rollback_command", "verify_command"}) {
      const auto& argv = std::get<std::vector<std::string>>(p.at(k));
      if (std::string(k) != "command" && argv.empty())
        continue;
      if (auto e = unsafe_command(argv); !e.empty())
        return std::string(k) + ": " + e;
    }
    if (std::get<std::vector<std::string>>(p.at("rollback_command")).empty() &&
        !ir.allow_irreversible)
      return "without a rollback_command it is irreversible: the policy must say "
             "allow_irreversible: true";
    return "";
  };
  return s;
}

}  // namespace

MEND_REGISTER_ACTION(exec, spec(), ExecAction::create);

}  // namespace mend
