#include "agent.h"

#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <cstring>

#include <filesystem>
#include <map>
#include <thread>

#include "correlate/correlator.h"
#include "correlate/incident_json.h"
#include "ctl/commands.h"
#include "ctl/control.h"
#include "policy/plan_selector.h"
#include "policy/policy_loader.h"
#include "policy/slo.h"
#include "remedy/confine.h"
#include "remedy/executor.h"
#include "remedy/live_probe.h"
#include "sensors/bpf_util.h"
#include "sensors/cgroup_names.h"
#include "sensors/kernel_features.h"
#include "sensors/mounts.h"
#include "sensors/sensor_hub.h"
#include "sinks/journal.h"
#include "sinks/metrics.h"
#include "systemd/serialized_unit_ops.h"
#include "systemd/systemd_bus.h"
#include "systemd/transient_child.h"

namespace mend {

namespace {

constexpr size_t kMaxClosedIncidents = 256;

void emit(const Record& r, Metrics& metrics) {
  if (auto st = journal_send(r); !st.ok())
    SPDLOG_WARN("{}", st.error().message);
  metrics.observe(r);
  SPDLOG_INFO("[{}] {}: {}", record_kind_name(r.kind), r.incident_id, r.message);
}

ExecutorConfig executor_config(const AgentConfig& c, ChildLauncher* children) {
  ExecutorConfig e;
  e.children = children;
  e.state_dir = c.state_dir;
  e.guardrails.dry_run = c.executor.dry_run;
  e.guardrails.node_max_per_hour = c.executor.max_actions_per_hour;
  e.guardrails.node_max_concurrent = c.executor.max_concurrent;
  e.guardrails.target_max_per_hour = c.executor.max_actions_per_unit_per_hour;
  for (const auto& u : c.executor.protected_units)
    e.guardrails.protected_units.push_back(u);
  e.guardrails.pause_file = c.executor.pause_file;
  e.guardrails.state_file = c.state_dir + "/guardrails.json";
  e.approval_timeout_ns = c.executor.approval_timeout_ns;
  e.notify_command = c.executor.notify_command;
  e.notify_timeout_ns = c.executor.notify_timeout_ns;
  e.notify_user = c.executor.notify_user;
  // Steps on a thread of their own: the loop keeps reading the sensors (no ring buffer fills
  // up behind a rotation of many GB) and serving mendctl, whose explain shows the progress.
  e.background_steps = true;
  return e;
}

}  // namespace

int run_agent(const AgentOptions& opt, const std::atomic<bool>& stop, std::atomic<bool>& reload) {
  if (auto st = check_bpf_privileges(); !st.ok()) {
    SPDLOG_ERROR("{}", st.error().message);
    return 1;
  }
  bool memory_locked = false;
  if (opt.lock_memory) {
    // MCL_ONFAULT: pages are locked as they are touched, so reserved but unused memory (thread
    // stacks, ring buffer mappings) is not made resident up front.
    if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0)
      memory_locked = true;
    else
      SPDLOG_WARN("--lock-memory: mlockall failed ({}); running unlocked", strerror(errno));
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
  AgentConfig cfg = opt.config;
  std::filesystem::create_directories(cfg.state_dir, ec);
  if (ec) {
    SPDLOG_ERROR("Failed to create the state directory {}: {}", cfg.state_dir, ec.message());
    return 1;
  }

  KernelFeatures features(cfg.sensors.pretend_missing);
  MountTable mounts;
  (void)mounts.refresh();
  auto cgroups = CgroupNames::from_mountinfo();
  SensorContext ctx;
  ctx.config = &cfg.sensors;
  ctx.features = &features;
  ctx.mounts = &mounts;
  ctx.cgroups = &cgroups;
  ctx.bus = opt.bus;

  // The connection remedies act through; the units sensor has its own.
  UnitTracker ops_tracker;
  SystemdBus ops(opt.bus == "user" ? BusScope::User : BusScope::System, ops_tracker,
                 SystemdBus::Role::Operate);
  std::vector<Event> ignored;
  if (opt.bus != "none")
    if (auto st = ops.connect(monotonic_ns(), ignored); !st.ok())
      SPDLOG_WARN("Unit operations unavailable: {}", st.error().message);
  // Units are named below the manager's own cgroup (a user manager's is not "/").
  if (!ops.manager_cgroup().empty())
    ctx.manager_cgroup_root = ops.manager_cgroup();

  Metrics metrics;
  if (!cfg.metrics.listen.empty()) {
    if (auto st = metrics.listen(cfg.metrics.listen); !st.ok()) {
      SPDLOG_ERROR("{}", st.error().message);
      return 1;
    }
    SPDLOG_INFO("Metrics on http://{}/metrics", cfg.metrics.listen);
  }
  // BPF program run time, for mend_bpf_program_run_seconds_total: accounted by the kernel while
  // this descriptor is open, only when someone scrapes the metrics.
  Fd bpf_stats;
  if (!cfg.metrics.listen.empty()) {
    if (auto fd = enable_bpf_run_stats(); fd.ok())
      bpf_stats = Fd(*fd);
    else
      SPDLOG_WARN(
          "BPF run-time statistics unavailable ({}); mend_bpf_program_run_seconds_total "
          "stays 0 unless kernel.bpf_stats_enabled=1",
          fd.error().message);
  }
  auto emit_record = [&](const Record& r) { emit(r, metrics); };

  // Shared by the loop (the probe) and remedy steps running in the background.
  SerializedUnitOps units(ops);
  // The connection's own signals are not needed; drained when no step is using it.
  auto drain_ops = [&] {
    if (auto l = units.try_lock(); l.owns_lock() && ops.connected()) {
      std::vector<Event> drained;
      (void)ops.process(monotonic_ns(), drained);
    }
  };
  // Commands run as transient units of the manager, with their own sandbox, unless mend.yaml
  // says inline (or mendd has no system manager to ask).
  TransientLauncher transient(opt.bus == "user" ? BusScope::User : BusScope::System);
  auto launcher_for = [&](const AgentConfig& c) -> ChildLauncher* {
    const std::string& m = c.executor.children;
    return m == "transient" || (m == "auto" && opt.bus == "system") ? &transient : nullptr;
  };
  if (launcher_for(cfg)) {
    auto swept = transient.sweep();
    if (!swept.ok())
      SPDLOG_WARN("{}", swept.error().message);
    else if (*swept)
      SPDLOG_INFO("Collected {} transient unit(s) a previous mendd left behind", *swept);
  }
  SPDLOG_INFO("Commands run {}", launcher_for(cfg) ? "as transient units of the manager"
                                                   : "as children of mendd (executor.children)");
  LiveProbe probe(units);
  Executor executor(executor_config(cfg, launcher_for(cfg)), units, probe, emit_record);
  if (auto st = executor.guardrails().load(monotonic_ns()); !st.ok())
    SPDLOG_ERROR("{}", st.error().message);
  if (auto st = executor.recover(monotonic_ns()); !st.ok())
    SPDLOG_WARN("Failed to read the intent journal: {}", st.error().message);
  executor.set_next_plan([&](const Incident& inc, const std::set<std::string>& tried) {
    // The choice points into `policies`; the executor copies the policy at once.
    return select_plan(inc, policies, inc.slo_impact, tried);
  });

  SloTracker slo(cfg.slos, cfg.state_dir + "/slo.json");
  if (auto st = slo.load(); !st.ok())
    SPDLOG_WARN("{}", st.error().message);

  CorrelatorConfig ccfg;
  ccfg.window_ns = cfg.correlation.window_ns;
  ccfg.quiet_ns = cfg.correlation.quiet_ns;
  ccfg.reorder_ns = cfg.correlation.reorder_ns;  // live events: one clock, nearly in order
  ccfg.id_prefix = "inc-" + std::to_string(time(nullptr)) + "-";
  // Bounded: closed incidents stay for mendctl a while (the executor keeps its own copy of
  // every incident it planned for), then go; their records are in the journal.
  ccfg.max_closed = kMaxClosedIncidents;
  Correlator correlator(ccfg);
  std::map<std::string, std::string> announced;  // incident -> root cause kind announced
  correlator.on_forget = [&](const Incident& inc) { announced.erase(inc.id); };
  correlator.on_update = [&](const Incident& inc, const Event& e) {
    auto [it, fresh] = announced.try_emplace(inc.id, "");
    if (fresh) {
      Record r;
      r.kind = RecordKind::IncidentOpened;
      r.priority = 5;
      r.incident_id = inc.id;
      r.message = "Incident opened";
      emit_record(r);
    }
    if (it->second != inc.root_cause.kind) {
      if (it->second.empty())
        metrics.incident_opened(inc.root_cause.kind);
      it->second = inc.root_cause.kind;
      Record r;
      r.kind = RecordKind::RootCause;
      r.priority = 5;
      r.incident_id = inc.id;
      r.root_cause = inc.root_cause.kind;
      r.unit = inc.root_cause.culprit_unit;
      if (!inc.root_cause.culprit_unit.empty())
        r.extra["culprit_unit"] = inc.root_cause.culprit_unit;
      // The root cause's entities (mount, device, cgroup, ...) as MEND_<KEY> fields.
      for (const auto& [k, v] : inc.root_cause.entities)
        if (!v.empty() && k != "unit")
          r.extra[k] = v;
      r.extra["confidence"] = fmt::format("{:.2f}", inc.root_cause.confidence);
      r.message = "Root cause: " + inc.root_cause.summary + "\n" + explain(inc, inc.first_fault_ns);
      emit_record(r);
    }
    // One plan per incident, once its root cause has a policy; a running plan sees the
    // incident grow (a victim that starts failing after the plan was chosen). A fault after
    // a verified fix (it did not hold) gets the policies again, within their guardrails.
    if (executor.find(inc.id) && !(facts_of(e).fault && executor.recurred(inc.id, e.ts_ns))) {
      executor.refresh(inc);
      return;
    }
    const uint64_t now = monotonic_ns();
    const std::string impact = slo.impact(inc, now);
    PlanChoice choice = select_plan(inc, policies, impact);
    if (!choice.policy)
      return;
    Incident planned = inc;
    planned.slo_impact = impact;
    executor.submit(planned, choice, now);
  };

  SensorHub hub(ctx, cfg.enabled_sensors);
  if (auto st = hub.start(); !st.ok()) {
    SPDLOG_ERROR("Failed to start sensors: {}", st.error().message);
    return 1;
  }

  AgentView view;
  view.correlator = &correlator;
  view.executor = &executor;
  view.slo = &slo;
  view.sensor_stats = [&] { return hub.stats(); };
  view.policy_count = [&] { return policies.size(); };
  view.loop_stats = [&] {
    const auto l = hub.loop_stats();
    return nlohmann::json{
        {"wakeups", l.wakeups}, {"p50_ms", l.p50_ms}, {"p99_ms", l.p99_ms}, {"max_ms", l.max_ms}};
  };
  view.dry_run = cfg.executor.dry_run;
  view.memory_locked = memory_locked;
  view.started_ns = monotonic_ns();
  ControlServer control;
  const ControlHandler serve_control = [&](const std::string& c, const nlohmann::json& a,
                                           const Peer& p) {
    return handle_command(view, c, a, p, monotonic_ns());
  };
  if (!cfg.control.socket.empty()) {
    if (auto st = control.listen(cfg.control); !st.ok()) {
      SPDLOG_ERROR("Control socket: {}", st.error().message);
      return 1;
    }
    if (auto st = hub.watch(control.fd(), [&] { control.serve(serve_control); }); !st.ok()) {
      SPDLOG_ERROR("{}", st.error().message);
      return 1;
    }
  }
  SPDLOG_INFO("mendd: running ({} policies{}, control {})", policies.size(),
              cfg.executor.dry_run ? ", dry-run" : "", control.path());
  sd_notify(0, "READY=1\nSTATUS=running");
  // The watchdog is pinged from a thread of its own while the loop is alive: its last tick is
  // recent, or it is inside a remedy step, which the step's own timeout bounds (an exec or a
  // restart job: at most 30 min). A loop stuck anywhere else stops the pings and systemd
  // restarts mendd; the intent journal then rolls back what was half-done.
  constexpr uint64_t kMaxStepNs = 3600ull * 1000000000ull;
  std::atomic<uint64_t> heartbeat{monotonic_ns()};
  std::atomic<bool> watchdog_stop{false};
  std::thread watchdog_thread;
  uint64_t watchdog_usec = 0;
  if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0) {
    const uint64_t period_ns = watchdog_usec * 1000ull / 2;
    watchdog_thread = std::thread([&, period_ns] {
      uint64_t next = 0;
      while (!watchdog_stop.load()) {
        const uint64_t now = monotonic_ns();
        if (now >= next) {
          const uint64_t step = executor.step_started_ns();
          if (now - heartbeat.load() < period_ns || (step != 0 && now - step < kMaxStepNs))
            sd_notify(0, "WATCHDOG=1");
          else
            SPDLOG_ERROR("Event loop stalled for {} ms: not pinging the watchdog",
                         (now - heartbeat.load()) / 1000000ull);
          next = now + period_ns / 2;
        }
        usleep(100000);
      }
    });
  }
  struct JoinWatchdog {
    std::atomic<bool>& stop;
    std::thread& t;
    ~JoinWatchdog() {
      stop = true;
      if (t.joinable())
        t.join();
    }
  } join_watchdog{watchdog_stop, watchdog_thread};
  uint64_t trimmed_at = 0;
  // Incidents open or plans in progress keep the fast pace: steps, verification and the next
  // fault's evidence are timed at the sample interval.
  hub.set_busy([&] {
    if (correlator.open_incidents() > 0)
      return true;
    for (const auto* r : executor.runs())
      if (r->state != RunState::Done)
        return true;
    return false;
  });
  auto st = hub.run(
      stop,
      [&](Event&& e) {
        probe.observe(e);
        slo.observe(e);
        correlator.push(std::move(e));
      },
      [&] {
        const uint64_t now = monotonic_ns();
        if (reload.exchange(false)) {
          // All or nothing: mend.yaml and every policy file, or the previous set stays.
          Result<AgentConfig> c =
              opt.reload_config ? opt.reload_config() : Result<AgentConfig>(cfg);
          auto p = load_policy_dir(opt.policies_dir, /*strict_modes=*/true);
          if (!c.ok()) {
            SPDLOG_ERROR("Reload refused, keeping the previous configuration and {} policies:\n{}",
                         policies.size(), c.error().message);
          } else if (!p.ok()) {
            SPDLOG_ERROR("Reload refused, keeping the previous {} policies:\n{}", policies.size(),
                         p.error().message);
          } else {
            policies = std::move(*p);
            if (c->state_dir != cfg.state_dir || c->control.socket != cfg.control.socket ||
                c->control.group != cfg.control.group || c->enabled_sensors != cfg.enabled_sensors)
              SPDLOG_WARN("state_dir, control and the sensor set change at the next restart");
            executor.reconfigure(executor_config(*c, launcher_for(*c)));
            // A damaged guardrail history holds every budget spent until a person repairs
            // or removes it; a reload is when it is read again.
            if (!executor.guardrails().damaged().empty()) {
              if (auto st = executor.guardrails().load(now); !st.ok())
                SPDLOG_ERROR("{}", st.error().message);
              else
                SPDLOG_INFO("Guardrail history readable again: budgets apply as recorded");
            }
            slo.configure(c->slos);
            view.dry_run = c->executor.dry_run;
            cfg.executor = c->executor;
            cfg.slos = c->slos;
            SPDLOG_INFO("Reloaded mend.yaml and {} policies from {}", policies.size(),
                        opt.policies_dir);
          }
        }
        correlator.advance(now);
        if (const uint64_t f = correlator.closed_forgotten(); f >= trimmed_at + 64) {
          // A storm's incidents are gone: give their memory back to the system, not only to
          // the allocator (glibc keeps freed arenas otherwise).
          trimmed_at = f;
          malloc_trim(0);
        }
        executor.tick(now);
        slo.save(now);
        if (!cfg.metrics.listen.empty()) {
          metrics.set_sensor_stats(hub.stats());
          size_t pending = 0;
          for (const auto* r : executor.runs())
            pending += r->state == RunState::AwaitingApproval;
          metrics.set_approvals_pending(pending);
          for (const auto& s : slo.status(now))
            metrics.set_error_budget(s.unit, s.budget_remaining);
          const auto ec = executor.counters();
          metrics.set_bound_totals({
              {"correlator_closed_forgotten", correlator.closed_forgotten()},
              {"correlator_open_closed_early", correlator.closed_early()},
              {"correlator_reorder_overflow", correlator.reorder_overflow()},
              {"executor_runs_evicted", ec.runs_evicted},
              {"executor_queue_full", ec.queue_full},
              {"executor_queue_timeouts", ec.queue_timeouts},
              {"executor_step_deadlines", ec.step_deadlines},
              {"notify_dropped", ec.notify_dropped},
              {"probe_evicted", probe.evicted()},
              {"control_busy", control.stats().refused_busy},
              {"control_timed_out", control.stats().timed_out},
              {"mount_refresh_skipped", mounts.refreshes_skipped()},
          });
        }
        drain_ops();
        // Control clients past their deadline are dropped even when none of them is ready.
        control.serve(serve_control);
        heartbeat.store(monotonic_ns());
      });
  sd_notify(0, "STOPPING=1");
  // A clean stop leaves no plan half-done: verifications get a grace period to finish, then
  // whatever is still unproven is rolled back (and escalated), so the next start finds nothing.
  const uint64_t grace_end = monotonic_ns() + cfg.executor.shutdown_grace_ns;
  executor.begin_shutdown();
  while (executor.verifying() > 0 && monotonic_ns() < grace_end) {
    drain_ops();
    executor.tick(monotonic_ns());
    heartbeat.store(monotonic_ns());
    usleep(100000);
  }
  executor.shutdown(monotonic_ns());
  slo.save(monotonic_ns(), 0);
  if (!st.ok()) {
    SPDLOG_ERROR("{}", st.error().message);
    return 1;
  }
  return 0;
}

}  // namespace mend
