#include "agent.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "correlate/correlator.h"
#include "correlate/incident_json.h"
#include "policy/plan_selector.h"
#include "policy/policy_loader.h"
#include "remedy/executor.h"
#include "remedy/live_probe.h"
#include "sensors/cgroup_names.h"
#include "sensors/kernel_features.h"
#include "sensors/mounts.h"
#include "sensors/sensor_hub.h"
#include "sinks/journal.h"
#include "systemd/systemd_bus.h"

namespace mend {

namespace {

void emit(const Record& r) {
  if (auto st = journal_send(r); !st.ok())
    SPDLOG_WARN("{}", st.error().message);
  SPDLOG_INFO("[{}] {}: {}", record_kind_name(r.kind), r.incident_id, r.message);
}

}  // namespace

int run_agent(const AgentOptions& opt, const std::atomic<bool>& stop, std::atomic<bool>& reload) {
  if (auto st = check_bpf_privileges(); !st.ok()) {
    SPDLOG_ERROR("{}", st.error().message);
    return 1;
  }
  std::vector<CompiledPolicy> policies;
  if (opt.policies_required || access(opt.policies_dir.c_str(), F_OK) == 0) {
    auto p = load_policy_dir(opt.policies_dir, /*strict_modes=*/true);
    if (!p.ok()) {
      SPDLOG_ERROR("Invalid policies:\n{}", p.error().message);
      return 1;
    }
    policies = std::move(*p);
  }
  if (policies.empty())
    SPDLOG_WARN("No policies in {}: mend will observe and explain, never act", opt.policies_dir);
  std::error_code ec;
  std::filesystem::create_directories(opt.state_dir, ec);
  if (ec) {
    SPDLOG_ERROR("Failed to create the state directory {}: {}", opt.state_dir, ec.message());
    return 1;
  }

  KernelFeatures features(opt.config.sensors.pretend_missing);
  MountTable mounts;
  (void)mounts.refresh();
  auto cgroups = CgroupNames::from_mountinfo();
  SensorContext ctx;
  ctx.config = &opt.config.sensors;
  ctx.features = &features;
  ctx.mounts = &mounts;
  ctx.cgroups = &cgroups;
  ctx.bus = opt.bus;

  // The connection remedies act through; the units sensor has its own.
  UnitTracker ops_tracker;
  SystemdBus ops(opt.bus == "user" ? BusScope::User : BusScope::System, ops_tracker);
  std::vector<Event> ignored;
  if (opt.bus != "none")
    if (auto st = ops.connect(monotonic_ns(), ignored); !st.ok())
      SPDLOG_WARN("Unit operations unavailable: {}", st.error().message);

  LiveProbe probe(ops);
  ExecutorConfig ecfg;
  ecfg.state_dir = opt.state_dir;
  ecfg.guardrails.dry_run = opt.dry_run;
  Executor executor(ecfg, ops, probe, emit);
  if (auto st = executor.recover(monotonic_ns()); !st.ok())
    SPDLOG_WARN("Failed to read the intent journal: {}", st.error().message);

  CorrelatorConfig ccfg;
  ccfg.reorder_ns = 500000000ull;  // live events come from one clock, nearly in order
  ccfg.id_prefix = "inc-" + std::to_string(time(nullptr)) + "-";
  Correlator correlator(ccfg);
  std::map<std::string, std::string> announced;  // incident -> root cause kind announced
  correlator.on_update = [&](const Incident& inc, const Event&) {
    auto [it, fresh] = announced.try_emplace(inc.id, "");
    if (fresh) {
      Record r;
      r.kind = RecordKind::IncidentOpened;
      r.priority = 5;
      r.incident_id = inc.id;
      r.message = "Incident opened";
      emit(r);
    }
    if (it->second != inc.root_cause.kind) {
      it->second = inc.root_cause.kind;
      Record r;
      r.kind = RecordKind::RootCause;
      r.priority = 5;
      r.incident_id = inc.id;
      r.root_cause = inc.root_cause.kind;
      r.unit = inc.root_cause.culprit_unit;
      r.message = "Root cause: " + inc.root_cause.summary + "\n" + explain(inc, inc.first_fault_ns);
      emit(r);
    }
    // One plan per incident, once its root cause has a policy.
    if (executor.find(inc.id))
      return;
    PlanChoice choice = select_plan(inc, policies);
    if (!choice.policy)
      return;
    executor.submit(inc, choice, monotonic_ns());
  };

  SensorHub hub(ctx, opt.config.enabled_sensors);
  if (auto st = hub.start(); !st.ok()) {
    SPDLOG_ERROR("Failed to start sensors: {}", st.error().message);
    return 1;
  }
  SPDLOG_INFO("mendd: running ({} policies{})", policies.size(), opt.dry_run ? ", dry-run" : "");
  sd_notify(0, "READY=1\nSTATUS=running");
  uint64_t watchdog_usec = 0;
  const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;
  auto st = hub.run(
      stop,
      [&](Event&& e) {
        probe.observe(e);
        correlator.push(std::move(e));
      },
      [&] {
        const uint64_t now = monotonic_ns();
        if (reload.exchange(false)) {
          auto p = load_policy_dir(opt.policies_dir, /*strict_modes=*/true);
          if (p.ok()) {
            policies = std::move(*p);
            SPDLOG_INFO("Reloaded {} policies from {}", policies.size(), opt.policies_dir);
          } else {
            SPDLOG_ERROR("Reload refused, keeping the previous {} policies:\n{}", policies.size(),
                         p.error().message);
          }
        }
        correlator.advance(now);
        executor.tick(now);
        if (ops.connected()) {
          std::vector<Event> drained;  // the ops connection's own signals: not needed
          (void)ops.process(now, drained);
        }
        if (watchdog)
          sd_notify(0, "WATCHDOG=1");
      });
  sd_notify(0, "STOPPING=1");
  if (!st.ok()) {
    SPDLOG_ERROR("{}", st.error().message);
    return 1;
  }
  return 0;
}

}  // namespace mend
