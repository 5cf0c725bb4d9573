// exec: a site script named by the policy, for fixes only the site knows (a dependency
// failover, a cache flush). argv only, no shell; its own process group, killed at the timeout;
// the incident as JSON on stdin and MEND_* variables in a minimal environment. Reversible only
// when the policy names a rollback_command; without one the policy must say allow_irreversible.
// Under mendd's service it runs as a transient unit with nothing of mendd's: root without any
// capability, no network, /usr /boot /etc read-only, unless the policy grants `user:`,
// `capabilities:` or `network: true`.
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

// A user name as useradd(8) and systemd accept it (not a number: a uid is not resolved).
std::string user_name_problem(const std::string& u) {
  if (u.empty())
    return "";
  if (u.size() > 32)
    return "longer than 32 characters";
  if (!((u[0] >= 'a' && u[0] <= 'z') || u[0] == '_'))
    return "\"" + u + "\" must start with a lowercase letter or _";
  for (char ch : u)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
      return "\"" + u + "\" may hold only a-z, 0-9, _ and -";
  return "";
}

class ExecAction final : public Action {
 public:
  ExecAction(const Params& p, const ActionContext& ctx)
      : ctx_(ctx),
        command_(p.list("command")),
        rollback_(p.list("rollback_command")),
        verify_(p.list("verify_command")),
        timeout_ns_(static_cast<uint64_t>(p.integer("timeout"))) {
    sandbox_.user = p.str("user");
    sandbox_.capabilities = p.list("capabilities");
    sandbox_.network = p.flag("network");
  }

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
    o.purpose = "exec";
    o.sandbox = sandbox_;
    o.launcher = ctx_.children;
    return spawn_and_wait(o);
  }

  ActionContext ctx_;
  std::vector<std::string> command_, rollback_, verify_;
  uint64_t timeout_ns_;
  ChildSandbox sandbox_;
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
       "killed (with its process group) after this"},
      {"user",
       ParamType::String,
       false,
       0,
       0,
       std::string{},
       {},
       "run as this user (default root, without capabilities)"},
      {"capabilities",
       ParamType::StringList,
       false,
       0,
       0,
       std::vector<std::string>{},
       {},
       "capabilities(7) the commands keep (default none)"},
      {"network", ParamType::Bool, false, 0, 0, false, {}, "may use the network (default no)"}};
  s.validate = [](const std::map<std::string, ParamValue>& p, const PolicyIR& ir) -> std::string {
    for (const char* k : {"command", "rollback_command", "verify_command"}) {
      const auto& argv = std::get<std::vector<std::string>>(p.at(k));
      if (std::string(k) != "command" && argv.empty())
        continue;
      if (auto e = unsafe_command(argv); !e.empty())
        return std::string(k) + ": " + e;
    }
    if (auto caps = capability_mask(std::get<std::vector<std::string>>(p.at("capabilities")));
        !caps.ok())
      return "capabilities: " + caps.error().message;
    if (auto why = user_name_problem(std::get<std::string>(p.at("user"))); !why.empty())
      return "user: " + why;
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
