// mendctl: mend's command line. This build has `replay` (no agent, no root) and `policy check`
// arrives with the policy stage; the agent commands (status, incidents, explain, approve, deny)
// arrive with the control socket.
#include <CLI/CLI.hpp>

#include <fstream>
#include <iostream>

#include "correlate/incident_json.h"
#include "correlate/replay.h"
#include "policy/plan_selector.h"
#include "policy/policy_loader.h"
#include "policy/units.h"

namespace {

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
    std::cout << j.dump(2) << "\n";
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
    std::cout << report.dump(2) << "\n";
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "mendctl - inspect and steer mend\n\n"
      "  mendctl replay EVENTS.jsonl      correlate recorded events (mendd --trace output)\n"
      "                                   offline: no agent, no root\n"
      "  mendctl policy check FILE...     validate policy files offline",
      "mendctl"};
  app.require_subcommand(1);
  std::string output = "text";
  app.add_option("-o,--output", output, "Output format: text or json")
      ->check(CLI::IsMember({"text", "json"}));

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

  CLI11_PARSE(app, argc, argv);
  if (rp->parsed())
    return cmd_replay(file, output, skip_bad, window, quiet, replay_policies);
  if (pc->parsed())
    return cmd_policy_check(policy_files, strict_modes, output);
  return 2;
}
