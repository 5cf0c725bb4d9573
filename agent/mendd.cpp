// mendd: the mend agent. This build runs the sensors (`--trace`) and validates the
// configuration (`--check-config`); correlation, policy and remedies land in later stages.
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <systemd/sd-daemon.h>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent.h"
#include "mend/text.h"
#include "policy/config.h"
#include "policy/policy_loader.h"
#include "policy/units.h"
#include "sensors/cgroup_names.h"
#include "sensors/event_json.h"
#include "sensors/kernel_features.h"
#include "sensors/mounts.h"
#include "sensors/sensor_hub.h"
#include "sinks/logging.h"

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

void on_signal(int) {
  g_stop.store(true);
}
void on_hup(int) {
  g_reload.store(true);
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty())
      out.push_back(item);
  return out;
}

// A flag value with a unit, validated by CLI11 so a bad value is a usage error (exit 2).
template <class T, class Parse>
void unit_option(CLI::App& app, const std::string& name, std::optional<T>& out, Parse parse,
                 const std::string& help) {
  app.add_option_function<std::string>(
         name,
         [&out, parse, name](const std::string& v) {
           auto r = parse(v);
           if (!r.ok())
             throw CLI::ValidationError(name, r.error().message);
           out = *r;
         },
         help)
      ->type_name("VALUE");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mendd - node-level self-healing agent", "mendd"};
  std::string config_path = "/etc/mend/mend.yaml";
  bool trace = false, check_config = false, verbose = false;
  std::string sensors_flag;
  std::vector<std::string> pretend_missing;
  std::optional<uint64_t> io_threshold_ns, io_duration_ns, interval_ns, fs_horizon_ns;
  std::optional<double> fs_used_pct;

  auto* cfg_opt =
      app.add_option("-c,--config", config_path, "Agent configuration file")->capture_default_str();
  std::string policies_dir = "/etc/mend/policies.d";
  auto* pol_opt = app.add_option("--policies", policies_dir, "Policy directory (*.yaml)")
                      ->capture_default_str();
  app.add_flag("--trace", trace,
               "Run the sensors only and print one JSON event per line on stdout");
  app.add_flag("--check-config", check_config,
               "Validate the configuration and exit 0 (valid) or 1 (invalid)");
  app.add_option("--sensors", sensors_flag,
                 "Comma-separated sensors to run: oom,io,fs,psi,units (default: all)");
  std::string bus = "system";
  app.add_option("--bus", bus, "systemd manager to follow: system, user or none")
      ->check(CLI::IsMember({"system", "user", "none"}))
      ->capture_default_str();
  unit_option(app, "--sample-interval", interval_ns, mend::parse_duration_ns,
              "How often samplers run (default 250ms)");
  unit_option(app, "--io-latency-threshold", io_threshold_ns, mend::parse_duration_ns,
              "I/O stall threshold on p99 or oldest in-flight request (default 200ms)");
  unit_option(app, "--io-duration", io_duration_ns, mend::parse_duration_ns,
              "How long latency must stay over the threshold (default 1s)");
  unit_option(app, "--fs-used-threshold", fs_used_pct, mend::parse_percent,
              "Filesystem usage that fires fs_fill (default 90%)");
  unit_option(app, "--fs-horizon", fs_horizon_ns, mend::parse_duration_ns,
              "fs_fill fires when time-to-full falls under this (default 10m)");
  std::string fs_probe;
  app.add_option("--fs-enospc-probe", fs_probe,
                 "auto: the syscall-exit probe attached only while a filesystem is at risk; "
                 "always (default: mend.yaml's sensors.fs.enospc_probe, always)")
      ->check(CLI::IsMember({"auto", "always"}));
  app.add_option("--pretend-missing", pretend_missing,
                 "Treat a kernel feature as absent, e.g. tp_btf/mark_victim (testing degradation)")
      ->group("Testing");
  std::optional<std::string> state_dir, control_socket;
  bool dry_run = false;
  app.add_option("--state-dir", state_dir,
                 "Intent journal, guardrail and SLO history (default: mend.yaml's state_dir, "
                 "/var/lib/mend)");
  app.add_option("--control-socket", control_socket,
                 "mendctl's socket (default: mend.yaml's control.socket, /run/mend/control.sock)");
  app.add_flag("--dry-run", dry_run, "Run the whole pipeline but only describe actions");
  bool lock_memory = false;
  app.add_flag("--lock-memory", lock_memory,
               "Lock mendd's memory (mlockall, on fault) so it is not paged out while it heals "
               "a host short of memory");
  app.add_flag("-v,--verbose", verbose, "Debug logging");
  CLI11_PARSE(app, argc, argv);

  mend::init_logging(verbose);

  // The configuration file is optional unless named explicitly; flags override it, on every
  // (re)load.
  const bool explicit_config = cfg_opt->count() > 0;
  auto load_config = [&]() -> mend::Result<mend::AgentConfig> {
    mend::AgentConfig c;
    if (explicit_config || access(config_path.c_str(), F_OK) == 0) {
      // StrictModes, as for policies: whoever can write mend.yaml steers every remedy
      // (/dev/null: no configuration, the defaults).
      if (config_path != "/dev/null")
        if (auto st = mend::check_root_owned(config_path, "configuration file"); !st.ok())
          return st.error();
      auto loaded = mend::load_agent_config(config_path);
      if (!loaded.ok())
        return loaded.error();
      c = std::move(*loaded);
    }
    if (state_dir)
      c.state_dir = *state_dir;
    if (control_socket)
      c.control.socket = *control_socket;
    if (dry_run)
      c.executor.dry_run = true;
    // The notify command runs as root with every incident: checked like a policy.
    if (!c.executor.notify_command.empty())
      if (auto st = mend::check_root_owned(c.executor.notify_command[0], "notify command");
          !st.ok())
        return st.error();
    return c;
  };
  auto loaded = load_config();
  if (!loaded.ok()) {
    SPDLOG_ERROR("Invalid configuration: {}", loaded.error().message);
    return 1;
  }
  mend::AgentConfig cfg = std::move(*loaded);
  if (check_config) {
    // Policies: as the agent will load them, permissions included (StrictModes).
    size_t n = 0;
    if (pol_opt->count() > 0 || access(policies_dir.c_str(), F_OK) == 0) {
      auto pols = mend::load_policy_dir(policies_dir, /*strict_modes=*/true);
      if (!pols.ok()) {
        SPDLOG_ERROR("Invalid policies:\n{}", pols.error().message);
        return 1;
      }
      n = pols->size();
    }
    std::cout << "configuration OK (" << n << " polic" << (n == 1 ? "y" : "ies") << ")"
              << std::endl;
    return 0;
  }
  if (!sensors_flag.empty())
    cfg.enabled_sensors = split_list(sensors_flag);
  if (interval_ns)
    cfg.sensors.sample_interval_ns = *interval_ns;
  if (io_threshold_ns)
    cfg.sensors.io.latency_threshold_us = *io_threshold_ns / 1000;
  if (io_duration_ns)
    cfg.sensors.io.duration_ns = *io_duration_ns;
  if (fs_used_pct)
    cfg.sensors.fs.used_pct = *fs_used_pct;
  if (fs_horizon_ns)
    cfg.sensors.fs.horizon_ns = *fs_horizon_ns;
  if (!fs_probe.empty())
    cfg.sensors.fs.enospc_probe = fs_probe;
  if (cfg.sensors.sample_interval_ns < 10000000ull) {
    SPDLOG_ERROR("--sample-interval must be at least 10ms");
    return 2;
  }
  cfg.sensors.pretend_missing = {pretend_missing.begin(), pretend_missing.end()};

  struct sigaction stop_sa {};
  stop_sa.sa_handler = on_signal;
  sigaction(SIGINT, &stop_sa, nullptr);
  sigaction(SIGTERM, &stop_sa, nullptr);
  struct sigaction hup_sa {};
  hup_sa.sa_handler = on_hup;
  sigaction(SIGHUP, &hup_sa, nullptr);
  if (!trace) {
    mend::AgentOptions opt;
    opt.config = cfg;
    opt.policies_dir = policies_dir;
    opt.policies_required = pol_opt->count() > 0;
    opt.bus = bus;
    opt.lock_memory = lock_memory;
    // Sensor flags are fixed for the process; a reload re-reads the file and re-applies them.
    opt.reload_config = [&, sensors = cfg.sensors,
                         enabled = cfg.enabled_sensors]() -> mend::Result<mend::AgentConfig> {
      auto c = load_config();
      if (c.ok()) {
        c->sensors = sensors;
        c->enabled_sensors = enabled;
      }
      return c;
    };
    return mend::run_agent(opt, g_stop, g_reload);
  }

  if (auto st = mend::check_bpf_privileges(); !st.ok()) {
    SPDLOG_ERROR("{}", st.error().message);
    return 1;
  }

  mend::KernelFeatures features(cfg.sensors.pretend_missing);
  mend::MountTable mounts;
  if (auto r = mounts.refresh(); !r.ok()) {
    SPDLOG_ERROR("{}", r.error().message);
    return 1;
  }
  auto cgroups = mend::CgroupNames::from_mountinfo();
  mend::SensorContext ctx;
  ctx.config = &cfg.sensors;
  ctx.features = &features;
  ctx.mounts = &mounts;
  ctx.cgroups = &cgroups;
  ctx.bus = bus;

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  mend::SensorHub hub(ctx, cfg.enabled_sensors);
  if (auto st = hub.start(); !st.ok()) {
    SPDLOG_ERROR("Failed to start sensors: {}", st.error().message);
    return 1;
  }
  // Machine-readable readiness for scripts and tests: all probes attached.
  std::cerr << "mendd: tracing" << std::endl;
  sd_notify(0, "READY=1\nSTATUS=tracing");
  uint64_t watchdog_usec = 0;
  const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;
  auto sink = [](mend::Event&& e) {
    std::string line = mend::to_json_line(e);
    line += '\n';
    fwrite(line.data(), 1, line.size(), stdout);
    fflush(stdout);
  };
  auto st = hub.run(g_stop, sink, [watchdog] {
    if (watchdog)
      sd_notify(0, "WATCHDOG=1");
  });
  sd_notify(0, "STOPPING=1");
  std::cerr << mend::dump_json(nlohmann::json{{"type", "trace_summary"},
                                              {"sensors", mend::stats_json(hub.stats())}})
            << std::endl;
  if (!st.ok()) {
    SPDLOG_ERROR("{}", st.error().message);
    return 1;
  }
  return 0;
}
