#include "commands.h"

#include <spdlog/spdlog.h>

#include "../correlate/incident_json.h"
#include "../sensors/event_json.h"

namespace mend {

namespace {

// The correlator's incident is the evidence; the executor's copy knows what was done to it.
Incident merged(const Incident& inc, const PlanRun* run) {
  Incident m = inc;
  if (run) {
    if (run->incident.state != IncidentState::Open || m.state == IncidentState::Open)
      m.state = run->incident.state;
    m.plan = run->incident.plan.empty() ? m.plan : run->incident.plan;
    m.slo_impact = run->incident.slo_impact;
    m.remediation_start_ns = run->incident.remediation_start_ns;
    m.recovered_ns = std::max(m.recovered_ns, run->incident.recovered_ns);
  }
  return m;
}

nlohmann::json run_json(const PlanRun& r, uint64_t now) {
  nlohmann::json j;
  j["run"] = r.id;
  j["policy"] = r.policy ? r.policy->ir.name : "";
  j["target"] = r.target;
  j["mode"] = to_string(r.mode);
  j["promoted"] = r.promoted;
  j["state"] = to_string(r.state);
  j["outcome"] = to_string(r.outcome);
  j["reason"] = r.reason;
  if (r.state == RunState::AwaitingApproval && r.approval_deadline_ns > now)
    j["approval_deadline_s"] = (r.approval_deadline_ns - now) / 1000000000ull;
  if (r.state == RunState::Verifying && r.deadline_ns > now)
    j["verify_deadline_s"] = (r.deadline_ns - now) / 1000000000ull;
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& s : r.earlier_steps)
    steps.push_back({{"action", s.action}, {"description", s.description}, {"result", s.result}});
  for (size_t i = 0; i < r.steps.size(); ++i) {
    const auto& s = r.steps[i];
    nlohmann::json step = {
        {"action", s.action}, {"description", s.description}, {"result", s.result}};
    if (r.state == RunState::Applying && i == r.step) {
      // A long step (a rotation of many GB, a volume growth) says how far it is.
      const auto p = r.progress->get();
      step["result"] = "running";
      step["running_s"] =
          now > r.step_started_ns ? static_cast<double>(now - r.step_started_ns) / 1e9 : 0.0;
      step["progress"] = p.text;
      if (p.fraction >= 0)
        step["fraction"] = p.fraction;
    }
    steps.push_back(step);
  }
  j["steps"] = steps;
  return j;
}

const PlanRun* run_of(const Executor& e, const std::string& id) {
  return e.find(id);
}

}  // namespace

nlohmann::json incident_row(const Incident& in, const PlanRun* run, uint64_t now) {
  const Incident inc = merged(in, run);
  nlohmann::json j;
  j["id"] = inc.id;
  j["state"] = to_string(inc.state);
  j["closed"] = inc.closed;
  j["root_cause"] = inc.root_cause.kind;
  j["summary"] = inc.root_cause.summary;
  j["culprit_unit"] = inc.root_cause.culprit_unit;
  j["confidence"] = inc.root_cause.confidence;
  j["age_s"] = now > inc.opened_ns ? (now - inc.opened_ns) / 1000000000ull : 0;
  j["raw_events"] = inc.raw_events;
  j["plan"] = inc.plan;
  j["slo_impact"] = inc.slo_impact;
  j["mttr_ms"] = inc.mttr_ms();
  j["outcome"] = run ? std::string(to_string(run->outcome)) : "";
  j["awaiting_approval"] = run && run->state == RunState::AwaitingApproval;
  return j;
}

nlohmann::json incident_detail(const Incident& in, const PlanRun* run, uint64_t now) {
  const Incident inc = merged(in, run);
  nlohmann::json j;
  j["incident"] = to_json(inc);
  j["explanation"] = explain(inc, inc.first_fault_ns);
  if (run && run->policy)
    j["plan"] = run_json(*run, now);
  else if (run)
    j["plan"] = {{"policy", ""}, {"reason", run->reason}};
  return j;
}

nlohmann::json handle_command(AgentView& v, const std::string& cmd, const nlohmann::json& args_in,
                              const Peer& peer, uint64_t now) {
  const nlohmann::json args = args_in.is_object() ? args_in : nlohmann::json::object();
  auto id_arg = [&]() -> std::string {
    return args.contains("id") && args["id"].is_string() ? args["id"].get<std::string>() : "";
  };
  if (cmd == "status") {
    nlohmann::json j;
    j["pid"] = getpid();
    j["uptime_s"] = (now - v.started_ns) / 1000000000ull;
    j["dry_run"] = v.dry_run;
    j["memory_locked"] = v.memory_locked;
    auto& g = v.executor->guardrails();
    j["paused"] = g.paused();
    j["paused_by"] = g.paused_by_command() ? "mendctl pause"
                     : g.paused()          ? g.config().pause_file
                                           : "";
    j["policies"] = v.policy_count ? v.policy_count() : 0;
    j["sensors"] = v.sensor_stats ? stats_json(v.sensor_stats()) : nlohmann::json::array();
    size_t open = 0, total = 0;
    for (const auto* inc : v.correlator->incidents()) {
      ++total;
      open += !inc->closed;
    }
    // total: the incidents mendd still holds (closed ones are forgotten past a bound); opened:
    // every incident since it started.
    if (v.loop_stats)
      j["loop"] = v.loop_stats();
    j["incidents"] = {{"open", open},
                      {"total", total},
                      {"opened", v.correlator->opened()},
                      {"forgotten", v.correlator->closed_forgotten()},
                      {"closed_early", v.correlator->closed_early()}};
    const auto ec = v.executor->counters();
    j["executor"] = {{"queued_now", v.executor->queued()},
                     {"abandoned_steps", v.executor->abandoned()},
                     {"queued", ec.queued},
                     {"queue_timeouts", ec.queue_timeouts},
                     {"queue_full", ec.queue_full},
                     {"step_deadlines", ec.step_deadlines},
                     {"runs_evicted", ec.runs_evicted},
                     {"notify_dropped", ec.notify_dropped}};
    nlohmann::json pending = nlohmann::json::array();
    size_t verifying = 0, applying = 0;
    for (const auto* r : v.executor->runs()) {
      if (r->state == RunState::AwaitingApproval)
        pending.push_back({{"incident", r->incident.id},
                           {"policy", r->policy ? r->policy->ir.name : ""},
                           {"target", r->target}});
      verifying += r->state == RunState::Verifying;
      applying += r->state == RunState::Applying;
    }
    j["pending_approvals"] = pending;
    j["plans_verifying"] = verifying;
    j["plans_applying"] = applying;
    j["budget"] = {{"running", g.running()},
                   {"max_concurrent", g.config().node_max_concurrent},
                   {"last_hour", g.runs_last_hour(now)},
                   {"max_per_hour", g.config().node_max_per_hour}};
    nlohmann::json slo = nlohmann::json::array();
    if (v.slo)
      for (const auto& s : v.slo->status(now))
        slo.push_back({{"unit", s.unit},
                       {"objective", s.objective},
                       {"window_s", s.window_ns / 1000000000ull},
                       {"bad_s", static_cast<double>(s.bad_ns) / 1e9},
                       {"budget_s", static_cast<double>(s.budget_ns) / 1e9},
                       {"budget_remaining", s.budget_remaining},
                       {"burn_rate", s.burn_rate},
                       {"down", s.down}});
    j["slo"] = slo;
    return control_ok(j);
  }
  if (cmd == "incidents") {
    const bool all = args.value("all", false);
    nlohmann::json rows = nlohmann::json::array();
    auto incs = v.correlator->incidents();
    const size_t limit = all ? incs.size() : 50;
    const size_t first = incs.size() > limit ? incs.size() - limit : 0;
    for (size_t i = first; i < incs.size(); ++i)
      rows.push_back(incident_row(*incs[i], run_of(*v.executor, incs[i]->id), now));
    return control_ok(rows);
  }
  if (cmd == "explain") {
    const std::string id = id_arg();
    for (const auto* inc : v.correlator->incidents())
      if (inc->id == id)
        return control_ok(incident_detail(*inc, run_of(*v.executor, id), now));
    return control_error("not_found", "no incident " + id);
  }
  if (cmd == "approve" || cmd == "deny") {
    const std::string id = id_arg();
    SPDLOG_INFO("{} of {} requested by uid {} (pid {})", cmd, id, peer.uid, peer.pid);
    Status st = cmd == "approve" ? v.executor->approve(id, now) : v.executor->deny(id, now);
    if (!st.ok())
      return control_error(st.error().code == ENOENT ? "not_found" : "refused", st.error().message);
    const PlanRun* r = v.executor->find(id);
    return control_ok(r ? run_json(*r, now) : nlohmann::json::object());
  }
  if (cmd == "pause" || cmd == "resume") {
    SPDLOG_INFO("{} requested by uid {} (pid {})", cmd, peer.uid, peer.pid);
    if (auto st = v.executor->guardrails().set_paused(cmd == "pause"); !st.ok())
      return control_error(
          "not_persisted",
          cmd + " holds until mendd restarts but could not be saved: " + st.error().message);
    return control_ok({{"paused", v.executor->guardrails().paused()}});
  }
  return control_error("unknown_command",
                       "unknown command \"" + cmd +
                           "\" (known: status, incidents, explain, approve, deny, pause, resume)");
}

}  // namespace mend
