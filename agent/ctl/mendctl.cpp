// mendctl: mend's command line. Offline: `replay` and `policy check` (no agent, no root).
// Online, over mendd's control socket (agent/ctl/control.h): status, incidents, explain,
// approve, deny, pause, resume.
//
// Exit codes: 0 done; 1 mendd refused or found nothing (e.g. no such incident), or a policy
// file is invalid; 2 usage; 3 mendd not reachable; 4 permission denied.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

#include "correlate/incident_json.h"
#include "correlate/replay.h"
#include "ctl/control.h"
#include "mend/text.h"
#include "policy/plan_selector.h"
#include "policy/policy_loader.h"
#include "policy/units.h"

namespace {

// Collects what a stream gets and writes it terminal-safe when it goes out of scope.
class TerminalSafeOutput {
 public:
  TerminalSafeOutput(std::ostream& os, bool on) : os_(os) {
    if (on)
      orig_ = os_.rdbuf(buf_.rdbuf());
  }
  ~TerminalSafeOutput() {
    if (!orig_)
      return;
    os_.rdbuf(orig_);
    os_ << mend::terminal_safe(buf_.str()) << std::flush;
  }
  TerminalSafeOutput(const TerminalSafeOutput&) = delete;
  TerminalSafeOutput& operator=(const TerminalSafeOutput&) = delete;

 private:
  std::ostream& os_;
  std::ostringstream buf_;
  std::streambuf* orig_ = nullptr;
};

int cmd_replay(const std::string& file, const std::string& output, bool skip_bad,
               const std::optional<uint64_t>& window, const std::optional<uint64_t>& quiet,
               const std::string& policies_dir) {
  std::vector<mend::CompiledPolicy> policies;
  if (!policies_dir.empty()) {
    // Offline: the files' syntax and meaning are checked, not their owner and mode.
    auto p = mend::load_policy_dir(policies_dir, /*strict_modes=*/false);
    if (!p.ok()) {
      std::cerr << "mendctl: " << p.error().message << "\n";
      return 1;
    }
    policies = std::move(*p);
  }
  std::ifstream f;
  std::istream* in = &std::cin;
  if (file != "-") {
    f.open(file);
    if (!f) {
      std::cerr << "mendctl: Failed to open " << file << ": " << std::strerror(errno) << "\n";
      return 1;
    }
    in = &f;
  }
  mend::ReplayOptions opt;
  opt.skip_bad = skip_bad;
  if (window)
    opt.correlator.window_ns = *window;
  if (quiet)
    opt.correlator.quiet_ns = *quiet;
  auto r = mend::replay(*in, file == "-" ? "<stdin>" : file, opt);
  if (!r.ok()) {
    std::cerr << "mendctl: " << r.error().message << "\n";
    return 1;
  }
  for (const auto& w : r->warnings)
    std::cerr << "mendctl: skipped " << w << "\n";
  // Policy selection: which plan each incident would get (nothing is run).
  std::vector<std::string> plan_lines;
  for (auto& inc : r->incidents) {
    if (policies_dir.empty()) {
      plan_lines.emplace_back();
      continue;
    }
    auto choice = mend::select_plan(inc, policies);
    inc.plan = choice.policy ? choice.policy->ir.name : "";
    std::string line = "Plan: " + choice.reason;
    if (choice.policy) {
      const char* mode = choice.mode == mend::Mode::Auto      ? "auto"
                         : choice.mode == mend::Mode::Approve ? "approve"
                                                              : "observe";
      line += " (mode " + std::string(mode) + "):";
      for (const auto& a : choice.policy->actions)
        line += " " + a.name;
    }
    plan_lines.push_back(line);
  }
  if (output == "json") {
    nlohmann::ordered_json j;
    j["events"] = r->events;
    j["bad_lines"] = r->bad_lines;
    nlohmann::ordered_json incs = nlohmann::ordered_json::array();
    for (const auto& i : r->incidents)
      incs.push_back(mend::to_json(i));
    j["incidents"] = std::move(incs);
    std::cout << mend::dump_json(j, 2) << "\n";
    return 0;
  }
  std::cout << r->incidents.size() << " incident(s) from " << r->events << " event(s)";
  if (r->bad_lines)
    std::cout << " (" << r->bad_lines << " malformed line(s) skipped)";
  std::cout << "\n";
  for (size_t i = 0; i < r->incidents.size(); ++i) {
    std::cout << "\n" << mend::explain(r->incidents[i], r->first_ts);
    if (!plan_lines[i].empty())
      std::cout << plan_lines[i] << "\n";
  }
  return 0;
}

int cmd_policy_check(const std::vector<std::string>& files, bool strict_modes,
                     const std::string& output) {
  int rc = 0;
  nlohmann::ordered_json report = nlohmann::ordered_json::array();
  for (const auto& f : files) {
    auto r = mend::load_policy_file(f, strict_modes);
    nlohmann::ordered_json entry;
    entry["file"] = f;
    entry["ok"] = r.ok();
    if (r.ok()) {
      std::vector<std::string> names;
      for (const auto& p : *r)
        names.push_back(p.ir.name);
      entry["policies"] = names;
      if (output != "json")
        std::cout << f << ": " << names.size() << " polic" << (names.size() == 1 ? "y" : "ies")
                  << " OK\n";
    } else {
      rc = 1;
      entry["errors"] = r.error().message;
      if (output != "json")
        std::cerr << r.error().message << "\n";
    }
    report.push_back(std::move(entry));
  }
  if (output == "json")
    std::cout << mend::dump_json(report, 2) << "\n";
  return rc;
}

// A duration flag ("30s", "5m"), validated by CLI11 so a bad value is a usage error.
void duration_option(CLI::App* app, const std::string& name, std::optional<uint64_t>& out,
                     const std::string& help) {
  app->add_option_function<std::string>(
      name,
      [&out, name](const std::string& v) {
        auto d = mend::parse_duration_ns(v);
        if (!d.ok())
          throw CLI::ValidationError(name, d.error().message);
        out = *d;
      },
      help);
}

// --- online commands --------------------------------------------------------------------

std::string seconds(uint64_t s) {
  if (s < 120)
    return std::to_string(s) + "s";
  if (s < 7200)
    return std::to_string(s / 60) + "m";
  if (s < 172800)
    return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

// Columns padded to their widest cell.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (w.size() <= i)
        w.push_back(0);
      w[i] = std::max(w[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i)
      line += r[i] + (i + 1 < r.size() ? std::string(w[i] - r[i].size() + 2, ' ') : "");
    std::cout << "  " << line << "\n";
  }
}

std::string str(const nlohmann::json& j, const char* k) {
  if (!j.contains(k) || j[k].is_null())
    return "";
  return j[k].is_string() ? j[k].get<std::string>() : mend::dump_json(j[k]);
}

void print_status(const nlohmann::json& r) {
  std::cout << "mendd pid " << r["pid"] << ", up " << seconds(r["uptime_s"].get<uint64_t>()) << ", "
            << r["policies"] << " policies" << (r["dry_run"].get<bool>() ? ", DRY-RUN" : "")
            << (r.value("memory_locked", false) ? ", memory locked" : "")
            << (r["paused"].get<bool>() ? ", PAUSED (" + str(r, "paused_by") + ")" : "") << "\n";
  std::cout << "Sensors:\n";
  std::vector<std::vector<std::string>> rows = {{"SENSOR", "STATE", "EVENTS", "DROPS", "NOTE"}};
  for (const auto& x : r["sensors"])
    rows.push_back(
        {str(x, "sensor"), x["enabled"].get<bool>() ? "running" : "disabled", str(x, "events"),
         std::to_string(x["kernel_drops"].get<uint64_t>() + x["map_full"].get<uint64_t>() +
                        x["decode_errors"].get<uint64_t>()),
         str(x, "disabled_reason").empty() ? str(x, "mode") : str(x, "disabled_reason")});
  print_table(rows);
  std::cout << "Incidents: " << r["incidents"]["open"] << " open, " << r["incidents"]["total"]
            << " total; " << r.value("plans_applying", 0) << " plan(s) applying a step, "
            << r["plans_verifying"] << " verifying\n";
  if (r["pending_approvals"].empty())
    std::cout << "Pending approvals: none\n";
  for (const auto& p : r["pending_approvals"])
    std::cout << "Pending approval: " << str(p, "incident") << " (policy " << str(p, "policy")
              << " on " << str(p, "target") << ")  -> mendctl approve|deny " << str(p, "incident")
              << "\n";
  const auto& b = r["budget"];
  std::cout << "Budget: " << b["running"] << "/" << b["max_concurrent"] << " running, "
            << b["last_hour"] << "/" << b["max_per_hour"] << " in the last hour\n";
  if (!r["slo"].empty()) {
    std::cout << "SLOs:\n";
    rows = {{"UNIT", "OBJECTIVE", "BAD", "BUDGET LEFT", "BURN", "STATE"}};
    for (const auto& x : r["slo"]) {
      char obj[32], left[32], burn[32];
      snprintf(obj, sizeof obj, "%.3f%%", x["objective"].get<double>() * 100);
      snprintf(left, sizeof left, "%.1f%%", x["budget_remaining"].get<double>() * 100);
      snprintf(burn, sizeof burn, "%.1fx", x["burn_rate"].get<double>());
      rows.push_back({str(x, "unit"), obj, seconds(static_cast<uint64_t>(x["bad_s"].get<double>())),
                      left, burn, x["down"].get<bool>() ? "down" : "up"});
    }
    print_table(rows);
  }
}

void print_incidents(const nlohmann::json& r) {
  if (r.empty()) {
    std::cout << "No incidents.\n";
    return;
  }
  std::vector<std::vector<std::string>> rows = {
      {"ID", "STATE", "ROOT CAUSE", "CULPRIT", "AGE", "PLAN", "OUTCOME", "MTTR"}};
  for (const auto& x : r) {
    const auto mttr = x["mttr_ms"].get<int64_t>();
    rows.push_back({str(x, "id"), str(x, "state") + (x["closed"].get<bool>() ? " (closed)" : ""),
                    str(x, "root_cause"), str(x, "culprit_unit"),
                    seconds(x["age_s"].get<uint64_t>()), str(x, "plan"), str(x, "outcome"),
                    mttr < 0 ? "-" : std::to_string(mttr) + "ms"});
  }
  print_table(rows);
}

void print_plan(const nlohmann::json& p) {
  if (str(p, "policy").empty()) {
    std::cout << "Plan: none (" << str(p, "reason") << ")\n";
    return;
  }
  std::cout << "Plan: policy " << str(p, "policy") << " on " << str(p, "target") << ", mode "
            << str(p, "mode") << (p["promoted"].get<bool>() ? " (approval earned)" : "") << ", "
            << str(p, "state");
  if (p.contains("approval_deadline_s"))
    std::cout << " (escalates in " << seconds(p["approval_deadline_s"].get<uint64_t>()) << ")";
  if (p.contains("verify_deadline_s"))
    std::cout << " (deadline in " << seconds(p["verify_deadline_s"].get<uint64_t>()) << ")";
  if (str(p, "outcome") != "none")
    std::cout << ", " << str(p, "outcome") << ": " << str(p, "reason");
  std::cout << "\n";
  for (const auto& s : p["steps"]) {
    std::cout << "  - " << str(s, "action") << ": " << str(s, "description") << " -> "
              << (str(s, "result").empty() ? "not run" : str(s, "result"));
    if (s.contains("running_s")) {
      std::cout << " for " << fmt::format("{:.1f}", s["running_s"].get<double>()) << " s";
      if (!str(s, "progress").empty())
        std::cout << ": " << str(s, "progress");
      if (s.contains("fraction"))
        std::cout << fmt::format(" ({:.0f}%)", 100 * s["fraction"].get<double>());
    }
    std::cout << "\n";
  }
}

int cmd_online(const std::string& socket, const std::string& command, const nlohmann::json& args,
               const std::string& output) {
  auto r = mend::control_request(socket, command, args);
  if (!r.ok()) {
    std::cerr << "mendctl: " << r.error().message
              << (r.error().code == ENOENT || r.error().code == ECONNREFUSED
                      ? " (is mendd running? --socket names another socket)"
                      : "")
              << "\n";
    return r.error().code == EACCES ? 4 : 3;
  }
  const auto& resp = *r;
  if (!resp.value("ok", false)) {
    std::cerr << "mendctl: " << command << ": " << resp.value("error", "failed") << "\n";
    return resp.value("code", "") == "permission_denied" ? 4 : 1;
  }
  const auto& res = resp["result"];
  if (output == "json") {
    std::cout << mend::dump_json(res, 2) << "\n";
    return 0;
  }
  if (command == "status") {
    print_status(res);
  } else if (command == "incidents") {
    print_incidents(res);
  } else if (command == "explain") {
    std::cout << res["explanation"].get<std::string>();
    if (res.contains("plan"))
      print_plan(res["plan"]);
    else
      std::cout << "Plan: none (no policy matched)\n";
  } else if (command == "approve" || command == "deny") {
    print_plan(res);
  } else if (command == "pause" || command == "resume") {
    std::cout << (res["paused"].get<bool>() ? "Paused: no action will run (mendctl resume)"
                                            : "Resumed: actions run as policies say")
              << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "mendctl - inspect and steer mend\n\n"
      "  mendctl status                   sensors, open incidents, pending approvals, budgets\n"
      "  mendctl incidents                open and recent incidents\n"
      "  mendctl explain ID               root cause, evidence, plan, each step and its result\n"
      "  mendctl approve ID | deny ID     decide a plan waiting in approve mode\n"
      "  mendctl pause | resume           hold every action node-wide / let them run again\n"
      "  mendctl replay EVENTS.jsonl      correlate recorded events (mendd --trace output)\n"
      "                                   offline: no agent, no root\n"
      "  mendctl policy check FILE...     validate policy files offline\n\n"
      "Exit codes: 0 done, 1 refused/not found/invalid, 2 usage, 3 mendd not reachable,\n"
      "4 permission denied (root or the control group only).",
      "mendctl"};
  app.require_subcommand(1);
  std::string output = "text";
  app.add_option("-o,--output", output, "Output format: text or json")
      ->check(CLI::IsMember({"text", "json"}));

  std::string socket = "/run/mend/control.sock";
  if (const char* e = getenv("MEND_CONTROL_SOCKET"); e && *e)
    socket = e;
  app.add_option("--socket", socket, "mendd's control socket (env MEND_CONTROL_SOCKET)")
      ->capture_default_str();
  struct Online {
    CLI::App* app;
    std::string command;
    std::string id;
    bool all = false;
  };
  std::vector<Online> online;
  online.reserve(8);  // options bind to the elements' fields: no reallocation
  auto add_online = [&](const std::string& name, const std::string& help, bool takes_id) {
    auto* sub = app.add_subcommand(name, help);
    online.push_back({sub, name, "", false});
    sub->add_option("-o,--output", output, "Output format: text or json")
        ->check(CLI::IsMember({"text", "json"}));
    if (takes_id)
      sub->add_option("ID", online.back().id, "Incident id (mendctl incidents)")->required();
    return sub;
  };
  add_online("status",
             "What mendd is doing: sensors and their health (events, drops), open incidents, "
             "plans awaiting approval, action budgets, pause, SLO error budgets",
             false);
  auto* inc_cmd = add_online("incidents", "Open and recent incidents (the last 50; --all)", false);
  add_online("explain",
             "One incident: root cause, evidence chain, alternatives, the plan, each action "
             "and verification with its result and timings",
             true);
  add_online("approve", "Run the plan of an incident waiting in approve mode", true);
  add_online("deny", "Refuse the plan of an incident waiting in approve mode (escalates)", true);
  add_online("pause", "Hold every action node-wide until resume (kept across restarts of mendd)",
             false);
  add_online("resume", "Let actions run again (a pause file in /etc/mend still holds them)", false);
  inc_cmd->add_flag("--all", online[1].all, "Every incident mendd remembers");

  auto* rp = app.add_subcommand(
      "replay",
      "Run correlation over recorded events and print the incidents, their root cause and "
      "evidence. Event time comes from ts_ns: deterministic, a day of events in seconds.");
  std::string file;
  bool skip_bad = false;
  std::optional<uint64_t> window, quiet;
  rp->add_option("EVENTS", file, "JSON lines as mendd --trace prints them ('-' for stdin)")
      ->required();
  std::string replay_policies;
  rp->add_option("--policies", replay_policies,
                 "Also select the plan each incident would get from this policy directory");
  rp->add_flag("--skip-bad", skip_bad,
               "Skip malformed lines (reported on stderr) instead of failing");
  duration_option(rp, "--window", window,
                  "Events join an incident active within this window (default 5m)");
  duration_option(rp, "--quiet", quiet,
                  "An incident closes after this long without events (default 10m)");
  rp->add_option("-o,--output", output, "Output format: text or json")
      ->check(CLI::IsMember({"text", "json"}));

  auto* pol = app.add_subcommand("policy", "Work with policy files");
  pol->require_subcommand(1);
  auto* pc = pol->add_subcommand(
      "check",
      "Validate policy files offline (no agent needed): syntax, types, bounds, root causes and "
      "actions; every error as FILE:LINE:COLUMN. Exit 0 when all are valid, 1 otherwise.");
  std::vector<std::string> policy_files;
  bool strict_modes = false;
  pc->add_option("FILE", policy_files, "Policy files (YAML)")->required();
  pc->add_flag("--strict-modes", strict_modes,
               "Also refuse files not owned by root or writable by group/others, as mendd does");
  pc->add_option("-o,--output", output, "Output format: text or json")
      ->check(CLI::IsMember({"text", "json"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help or the usage error
    return rc == 0 ? 0 : 2;
  }
  // Names in incidents come from processes, cgroups and files anyone may name: what reaches
  // the terminal has its control characters escaped (JSON output escapes them itself).
  TerminalSafeOutput safe_out(std::cout, output != "json");
  TerminalSafeOutput safe_err(std::cerr, true);
  for (const auto& o : online)
    if (o.app->parsed()) {
      nlohmann::json args = nlohmann::json::object();
      if (!o.id.empty())
        args["id"] = o.id;
      if (o.all)
        args["all"] = true;
      return cmd_online(socket, o.command, args, output);
    }
  if (rp->parsed())
    return cmd_replay(file, output, skip_bad, window, quiet, replay_policies);
  if (pc->parsed())
    return cmd_policy_check(policy_files, strict_modes, output);
  return 2;
}
