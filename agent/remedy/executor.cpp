#include "executor.h"
#include "mend/text.h"

#include <spdlog/spdlog.h>

#include "../correlate/incident_json.h"
#include "../sensors/sensor.h"
#include "spawn.h"

#include <thread>

namespace mend {

namespace {

nlohmann::json params_json(const std::map<std::string, ParamValue>& params) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& kv : params)
    std::visit([&](const auto& x) { j[kv.first] = x; }, kv.second);
  return j;
}

std::map<std::string, ParamValue> params_from_json(const nlohmann::json& j) {
  std::map<std::string, ParamValue> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it->is_boolean())
      out[it.key()] = it->get<bool>();
    else if (it->is_number_integer())
      out[it.key()] = it->get<int64_t>();
    else if (it->is_number())
      out[it.key()] = it->get<double>();
    else if (it->is_array())
      out[it.key()] = it->get<std::vector<std::string>>();
    else if (it->is_string())
      out[it.key()] = it->get<std::string>();
  }
  return out;
}

}  // namespace

std::string_view to_string(RunState s) {
  switch (s) {
    case RunState::AwaitingApproval:
      return "awaiting_approval";
    case RunState::Queued:
      return "queued";
    case RunState::Applying:
      return "applying";
    case RunState::Verifying:
      return "verifying";
    case RunState::Done:
      return "done";
  }
  return "";
}

std::string_view to_string(Mode m) {
  switch (m) {
    case Mode::Auto:
      return "auto";
    case Mode::Approve:
      return "approve";
    case Mode::Observe:
      return "observe";
  }
  return "";
}

std::string_view to_string(Outcome o) {
  switch (o) {
    case Outcome::None:
      return "none";
    case Outcome::Verified:
      return "verified";
    case Outcome::RolledBack:
      return "rolled_back";
    case Outcome::Escalated:
      return "escalated";
    case Outcome::Observed:
      return "observed";
    case Outcome::Refused:
      return "refused";
  }
  return "";
}

Executor::Executor(ExecutorConfig cfg, UnitOps& units, RecoveryProbe& probe,
                   std::function<void(const Record&)> records)
    : cfg_(std::move(cfg)),
      units_(units),
      probe_(probe),
      records_(std::move(records)),
      guards_(cfg_.guardrails),
      journal_(std::make_shared<IntentJournal>(cfg_.state_dir)) {}

Executor::~Executor() {
  // A step thread still running uses its run's action and incident: give it a moment, then
  // leave that run allocated (the process is ending) rather than free what it reads.
  auto keep_if_running = [&](PlanRun* r, std::chrono::seconds wait) {
    if (!r->pending.valid() || r->pending.wait_for(wait) == std::future_status::ready)
      return;
    for (auto& [id, rp] : runs_)
      if (rp.get() == r)
        (void)rp.release();
    for (auto& rp : retired_)
      if (rp.get() == r)
        (void)rp.release();
  };
  for (auto& ab : abandoned_)
    keep_if_running(ab.run, std::chrono::seconds(1));
  for (auto& [id, rp] : runs_)
    if (rp && rp->state == RunState::Applying)
      keep_if_running(rp.get(), std::chrono::seconds(5));
}

const PlanRun* Executor::find(const std::string& id) const {
  auto it = runs_.find(id);
  return it == runs_.end() ? nullptr : it->second.get();
}

bool Executor::recurred(const std::string& id, uint64_t fault_ns) const {
  const PlanRun* r = find(id);
  return r && r->state == RunState::Done && r->outcome == Outcome::Verified &&
         fault_ns > r->incident.recovered_ns;
}

void Executor::record(RecordKind k, int prio, const PlanRun& r, const std::string& msg,
                      const std::string& action, const std::string& result,
                      const std::map<std::string, std::string>& extra) {
  Record rec;
  rec.kind = k;
  rec.priority = prio;
  rec.message = msg;
  rec.incident_id = r.incident.id;
  rec.root_cause = r.incident.root_cause.kind;
  rec.action = action;
  rec.result = result;
  rec.policy = r.policy ? r.policy->ir.name : "";
  rec.unit = r.target;
  if (!r.incident.root_cause.culprit_unit.empty())
    rec.extra["culprit_unit"] = r.incident.root_cause.culprit_unit;
  for (const auto& [k, v] : extra)
    rec.extra[k] = v;
  if (records_)
    records_(rec);
}

void Executor::reconfigure(const ExecutorConfig& cfg) {
  const std::string state_dir = cfg_.state_dir;
  cfg_ = cfg;
  cfg_.state_dir = state_dir;  // the journal stays where it is
  guards_.reconfigure(cfg.guardrails);
}

size_t Executor::verifying() const {
  size_t n = 0;
  for (const auto& [id, r] : runs_)
    n += r->state == RunState::Verifying || r->state == RunState::Applying;
  return n;
}

size_t Executor::queued() const {
  size_t n = 0;
  for (const auto& [id, r] : runs_)
    n += r->state == RunState::Queued;
  return n;
}

Executor::Counters Executor::counters() const {
  Counters c = counters_;
  c.notify_dropped = notifier_.dropped();
  return c;
}

std::vector<const PlanRun*> Executor::runs() const {
  std::vector<const PlanRun*> out;
  for (const auto& r : retired_)
    out.push_back(r.get());
  for (const auto& id : order_)
    out.push_back(runs_.at(id).get());
  return out;
}

PlanRun& Executor::start_run(const Incident& inc, const PlanChoice& plan, uint64_t now,
                             bool retire) {
  (void)now;
  auto run = std::make_unique<PlanRun>();
  PlanRun& r = *run;
  r.id = "run-" + std::to_string(next_run_++);
  r.incident = inc;
  if (plan.policy) {
    r.policy_copy = *plan.policy;
    r.policy = &r.policy_copy;
  }
  r.target = plan.target_unit;
  r.mode = plan.mode;
  auto& slot = runs_[inc.id];
  const bool fresh = !slot;
  if (slot && retire) {
    // The run it replaces stays readable (explain, the caller's reference): retired, bounded.
    retired_.push_back(std::move(slot));
    for (auto it = retired_.begin(); retired_.size() > 64 && it != retired_.end();)
      it = (*it)->end_deferred ? std::next(it) : retired_.erase(it);
  }
  slot = std::move(run);
  if (fresh) {
    order_.push_back(inc.id);
    // Bounded; only finished runs are forgotten, oldest first: a run that waits, applies or
    // verifies holds a slot, a journal entry or a thread and is never dropped.
    for (size_t i = 0; order_.size() > kMaxRuns && i < order_.size();) {
      const PlanRun& old = *runs_.at(order_[i]);
      if (old.state != RunState::Done || old.end_deferred) {
        ++i;
        continue;
      }
      runs_.erase(order_[i]);
      order_.erase(order_.begin() + static_cast<std::ptrdiff_t>(i));
      ++counters_.runs_evicted;
    }
  }
  return r;
}

const PlanRun& Executor::submit(const Incident& inc_in, const PlanChoice& plan, uint64_t now) {
  PlanRun& r = start_run(inc_in, plan, now);
  if (!r.policy) {
    r.outcome = Outcome::Refused;
    r.reason = plan.reason;
    return r;
  }
  submit_prepared(r, now);
  return r;
}

void Executor::submit_prepared(PlanRun& r, uint64_t now) {
  Incident& inc = r.incident;
  inc.plan = r.policy->ir.name;
  ActionContext ctx;
  ctx.units = &units_;
  ctx.incident = &inc;
  ctx.unit = r.target;
  ctx.procfs = cfg_.procfs;
  ctx.sysfs = cfg_.sysfs;
  ctx.state_dir = cfg_.state_dir;
  ctx.children = cfg_.children;
  // A copy: a reload may change the guardrails while a step reads them from its own thread.
  ctx.is_protected = [globs = cfg_.guardrails.protected_units](const std::string& u) {
    return Guardrails::matches(globs, u);
  };
  ctx.progress = r.progress;
  if (r.mode == Mode::Approve && r.policy->ir.auto_after_successes > 0 &&
      guards_.successes(r.policy->ir, r.target) >= r.policy->ir.auto_after_successes) {
    // Trust earned: this policy has been verified on this target often enough.
    r.mode = Mode::Auto;
    r.promoted = true;
  }
  for (const auto& a : r.policy->actions) {
    r.actions.push_back(
        std::shared_ptr<Action>(ActionRegistry::instance().create(a.name, Params(a.params), ctx)));
    r.steps.push_back({a.name, r.actions.back()->describe(), ""});
    r.step_deadline_ns.push_back(a.step_deadline_ns);
  }
  r.applied.assign(r.actions.size(), false);

  Admission adm = stopping_ ? Admission{false, "mendd is stopping"}
                            : guards_.admit(r.policy->ir, r.target, r.mode, now);
  if (r.target.empty())
    for (size_t i = 0; i < r.actions.size(); ++i)
      if (r.actions[i]->needs_target()) {
        // An OOM kill in a cgroup that is no unit's, say: nothing for this plan to act on.
        adm = {false, "the root cause names no unit for " + r.steps[i].action + " to act on"};
        break;
      }
  if (adm.allowed && abandoned_.size() >= kMaxAbandoned)
    adm = {false,
           std::to_string(abandoned_.size()) +
               " remedy steps are still running past their deadline: no new plan starts",
           true};
  if (!adm.allowed && adm.concurrency && !stopping_) {
    // Only the node's concurrency budget is in the way: wait for a slot (approval needs none).
    if (r.mode != Mode::Approve) {
      queue(r, adm.reason, now);
      return;
    }
    adm.allowed = true;
  }
  if (!adm.allowed) {
    // Observe, dry-run, pause and budgets: say exactly what would have been done.
    for (size_t i = 0; i < r.actions.size(); ++i) {
      Status st = r.actions[i]->check();
      r.steps[i].description = r.actions[i]->describe();
      r.steps[i].result = st.ok() ? "would run" : "would fail: " + st.error().message;
      record(RecordKind::ActionFinished, 5, r,
             "Would have run " + r.steps[i].action + ": " + r.steps[i].description + " (" +
                 adm.reason + ")",
             r.steps[i].action, "not run");
    }
    finish(
        r,
        r.mode == Mode::Observe || cfg_.guardrails.dry_run ? Outcome::Observed : Outcome::Refused,
        adm.reason, now);
    if (adm.page) {
      // Nothing will fix this one on its own: say so, once, like any escalation.
      inc.state = IncidentState::Escalated;
      page(r, "the plan was refused by a guardrail: " + adm.reason);
    }
    return;
  }
  if (r.mode == Mode::Approve) {
    r.state = RunState::AwaitingApproval;
    r.approval_deadline_ns = now + cfg_.approval_timeout_ns;
    inc.state = IncidentState::AwaitingApproval;
    std::string plan_text;
    for (const auto& s : r.steps)
      plan_text += (plan_text.empty() ? "" : "; ") + s.description;
    record(RecordKind::ActionStarted, 5, r,
           "Awaiting approval (mendctl approve " + inc.id + "): " + plan_text, "", "pending");
    return;
  }
  if (r.promoted)
    SPDLOG_INFO("Policy {} on {}: approval not needed after {} verified runs", r.policy->ir.name,
                r.target, guards_.successes(r.policy->ir, r.target));
  apply(r, now);
}

void Executor::refresh(const Incident& inc) {
  auto it = runs_.find(inc.id);
  if (it == runs_.end() || it->second->state == RunState::Done)
    return;
  if (it->second->state == RunState::Applying) {
    // A step may be reading the incident on its own thread: later.
    it->second->pending_refresh = std::make_unique<Incident>(inc);
    return;
  }
  Incident& mine = it->second->incident;
  Incident fresh = inc;
  // A plan that waits for a slot has not touched anything yet: the correlator's word on the
  // fault (it may have cleared) is the incident's state.
  if (it->second->state != RunState::Queued)
    fresh.state = mine.state;
  fresh.plan = mine.plan;
  fresh.slo_impact = mine.slo_impact;
  fresh.remediation_start_ns = mine.remediation_start_ns;
  fresh.recovered_ns = mine.recovered_ns;
  mine = std::move(fresh);  // in place: actions hold a pointer to it
}

Status Executor::approve(const std::string& id, uint64_t now) {
  auto it = runs_.find(id);
  if (it == runs_.end() || it->second->state != RunState::AwaitingApproval)
    return Error{"no plan awaiting approval for incident " + id, ENOENT};
  PlanRun& r = *it->second;
  // Guardrails again: time has passed since the plan was chosen.
  Admission adm = guards_.admit(r.policy->ir, r.target, Mode::Auto, now);
  r.approved = true;
  if (!adm.allowed && adm.concurrency) {
    queue(r, adm.reason, now);
    return {};
  }
  if (!adm.allowed) {
    escalate(r, "approved, but refused by guardrails: " + adm.reason, now);
    return Error{adm.reason, EAGAIN};
  }
  apply(r, now);
  return {};
}

void Executor::queue(PlanRun& r, const std::string& reason, uint64_t now) {
  if (r.queued_ns == 0 && queued() >= cfg_.max_queued) {
    ++counters_.queue_full;
    finish(r, Outcome::Refused,
           reason + "; " + std::to_string(cfg_.max_queued) + " plans already wait for a slot", now);
    r.incident.state = IncidentState::Escalated;
    page(r, "the plan could not wait for a slot: " + r.reason);
    return;
  }
  if (r.queued_ns == 0) {
    ++counters_.queued;
    r.queued_ns = now;
  }
  r.queue_deadline_ns = r.queued_ns + cfg_.queue_timeout_ns;
  r.state = RunState::Queued;
  r.incident.state = IncidentState::Open;
  record(RecordKind::ActionStarted, 5, r,
         "Queued: " + reason + "; runs when a slot frees (escalates after " +
             std::to_string(cfg_.queue_timeout_ns / 1000000000ull) + " s of waiting)",
         "", "queued");
}

namespace {
int impact_rank(const std::string& impact) {
  return impact == "high" ? 3 : impact == "medium" ? 2 : impact == "low" ? 1 : 0;
}
}  // namespace

void Executor::run_queue(uint64_t now) {
  for (auto& [id, rp] : runs_) {
    PlanRun& r = *rp;
    if (r.state != RunState::Queued)
      continue;
    // A loop looks recovered between its failures (the unit is active for a moment): the fault
    // has cleared only when it stays so for the policy's stable_for.
    if (r.incident.state != IncidentState::Resolved)
      r.cleared_since_ns = 0;
    else if (r.cleared_since_ns == 0)
      r.cleared_since_ns = now;
    if (r.cleared_since_ns && now - r.cleared_since_ns >= r.policy->ir.verify.stable_ns) {
      finish(r, Outcome::None, "the fault cleared while the plan waited for a slot", now);
      record(RecordKind::ActionFinished, 5, r, "Not run: the fault cleared while the plan waited",
             "", "not run");
    } else if (now >= r.queue_deadline_ns) {
      ++counters_.queue_timeouts;
      escalate(
          r,
          "waited " + std::to_string((now - r.queued_ns) / 1000000000ull) +
              " s for a slot (node budget: " + std::to_string(cfg_.guardrails.node_max_concurrent) +
              " plan(s) at once) while the fault goes on",
          now);
    }
  }
  // At most one attempt per waiting plan and tick: a plan refused again stays where it is.
  for (size_t tries = queued(); tries > 0 && !stopping_; --tries) {
    if (guards_.running() >= cfg_.guardrails.node_max_concurrent)
      return;
    PlanRun* best = nullptr;
    for (auto& [id, rp] : runs_)
      if (rp->state == RunState::Queued &&
          (!best || impact_rank(rp->incident.slo_impact) > impact_rank(best->incident.slo_impact) ||
           (impact_rank(rp->incident.slo_impact) == impact_rank(best->incident.slo_impact) &&
            rp->queued_ns < best->queued_ns)))
        best = rp.get();
    if (!best)
      return;
    PlanRun& r = *best;
    if (r.approved) {
      Admission adm = guards_.admit(r.policy->ir, r.target, Mode::Auto, now);
      if (adm.allowed)
        apply(r, now);
      else if (!adm.concurrency)
        escalate(r, "approved, but refused by guardrails: " + adm.reason, now);
      continue;
    }
    // The policies again, against the incident as it is now: it may have grown or changed.
    PlanChoice choice;
    if (next_plan_) {
      choice = next_plan_(r.incident, r.tried_policies);
    } else {
      choice.policy = r.policy;
      choice.mode = r.mode;
      choice.target_unit = r.target;
      choice.reason = "the plan chosen before it waited";
    }
    if (!choice.policy) {
      finish(r, Outcome::Refused, "no policy matches any more: " + choice.reason, now);
      continue;
    }
    Incident inc = r.incident;
    const uint64_t queued_ns = r.queued_ns;
    std::set<std::string> tried = r.tried_policies;
    std::vector<StepLog> earlier = r.earlier_steps;
    // Replaces the waiting run in place (`r` is gone after this).
    PlanRun& n = start_run(inc, choice, now, /*retire=*/false);
    n.queued_ns = queued_ns;
    n.tried_policies = std::move(tried);
    n.earlier_steps = std::move(earlier);
    submit_prepared(n, now);
  }
}

Status Executor::deny(const std::string& id, uint64_t now) {
  auto it = runs_.find(id);
  if (it == runs_.end() || it->second->state != RunState::AwaitingApproval)
    return Error{"no plan awaiting approval for incident " + id, ENOENT};
  escalate(*it->second, "plan denied by an operator", now);
  return {};
}

Executor::StepClock::StepClock(std::atomic<uint64_t>& a) : a_(a) {
  a_.store(monotonic_ns(), std::memory_order_relaxed);
}

void Executor::apply(PlanRun& r, uint64_t now) {
  Incident& inc = r.incident;
  inc.state = IncidentState::Remediating;
  inc.remediation_start_ns = now;
  Status counted = guards_.started(r.policy->ir, r.target, now);
  r.started = true;
  if (!counted.ok()) {
    // A run the history does not hold would not count against a budget after a restart.
    escalate(r, "cannot persist the guardrail history: " + counted.error().message, now);
    return;
  }
  if (auto st = journal_->begin(r.id, inc.id, r.policy->ir.name, r.target); !st.ok()) {
    // Without the journal a crash could leave a change nobody can undo: do not act.
    escalate(r, "cannot write the intent journal: " + st.error().message, now);
    return;
  }
  r.step = 0;
  run_steps(r, now);
}

void Executor::run_steps(PlanRun& r, uint64_t now) {
  for (; r.step < r.actions.size(); ++r.step) {
    if (stopping_) {
      rollback(r, now);
      escalate(r, "mendd is stopping before every step of the plan ran; rolled back", now);
      return;
    }
    const size_t i = r.step;
    Action& a = *r.actions[i];
    StepLog& step = r.steps[i];
    r.progress->mark_plan_started(monotonic_ns());
    if (Status st = a.check(); !st.ok()) {
      step.result = "precondition failed: " + st.error().message;
      record(RecordKind::ActionFinished, 4, r, step.action + ": " + step.result, step.action,
             "precondition_failed");
      fail(r, step.action + ": " + st.error().message, now);
      return;
    }
    step.description = a.describe();
    record(RecordKind::ActionStarted, 5, r, "Running " + step.action + ": " + step.description,
           step.action, "started");
    // What undoes the step is known before it runs (the value it replaces): written with the
    // intent, so a kill between the apply and its "applied" record is undone too.
    // An irreversible action may know how to take back a half-done apply (a loop file grown
    // but not yet used): its state is written too.
    nlohmann::json foreseen = a.undo_state();
    if (auto st = journal_->intent(r.id, i, step.action, params_json(r.policy->actions[i].params),
                                   foreseen);
        !st.ok()) {
      rollback(r, now);
      escalate(r, "cannot write the intent journal: " + st.error().message, now);
      return;
    }
    // The undo record goes to the journal the moment apply returns, from the step's thread:
    // a mendd killed after that finds it and rolls the step back.
    // The thread owns what it uses (the action, the journal): a step abandoned at its deadline
    // may return long after the plan was rolled back.
    auto work = [action = r.actions[i], journal = journal_, run = r.id, i] {
      PlanRun::StepResult res;
      res.status = action->apply();
      res.applied = res.status.ok();
      if (res.applied) {
        if (Status j = journal->applied(run, i, action->undo_state()); !j.ok()) {
          // Without its undo record a crash would leave this change unknown: undone at once,
          // and the plan stops.
          Status rb = action->reversible() ? action->rollback() : Error{"irreversible"};
          res.applied = !rb.ok();
          res.status = Error{"cannot write the undo record to the intent journal (" +
                             j.error().message + "); " +
                             (rb.ok() ? "the step was undone at once"
                                      : "undoing it failed: " + rb.error().message)};
          return res;
        }
        auto v = action->verify();
        if (!v.ok() || !*v)
          res.status = Error{v.ok() ? "its effect is not in place after apply" : v.error().message};
      }
      return res;
    };
    r.step_started_ns = now;
    r.progress->set("");
    if (cfg_.background_steps) {
      r.state = RunState::Applying;
      std::promise<PlanRun::StepResult> done;
      r.pending = done.get_future();
      // Detached, not std::async: a future of std::async would make whoever drops it wait for
      // a step that may never return.
      std::thread([work = std::move(work), done = std::move(done)]() mutable {
        PlanRun::StepResult res;
        try {
          res = work();
        } catch (const std::exception& e) {
          res.status = Error{std::string("the step threw: ") + e.what()};
        }
        done.set_value(std::move(res));
      }).detach();
      return;
    }
    PlanRun::StepResult res;
    {
      StepClock clock(step_started_ns_);
      res = work();
    }
    if (!step_done(r, std::move(res), now))
      return;
  }
  r.state = RunState::Verifying;
  r.applied_ns = now;
  r.window_from_ns = now;
  r.stable_since_ns = 0;
  r.deadline_ns = now + r.policy->ir.verify.deadline_ns;
}

bool Executor::step_done(PlanRun& r, PlanRun::StepResult res, uint64_t now) {
  const size_t i = r.step;
  Action& a = *r.actions[i];
  StepLog& step = r.steps[i];
  r.step_started_ns = 0;
  if (res.applied)
    r.applied[i] = true;  // journaled by the step itself
  if (!res.status.ok()) {
    step.result = "failed: " + res.status.error().message;
    record(RecordKind::ActionFinished, 4, r, step.action + " failed: " + res.status.error().message,
           step.action, "failed");
    fail(r, step.action + " failed: " + res.status.error().message, now);
    return false;
  }
  step.description = a.describe();
  step.result = "applied";
  record(RecordKind::ActionFinished, 5, r, step.action + " done: " + step.description, step.action,
         "applied");
  return true;
}

void Executor::collect(PlanRun& r, uint64_t now) {
  if (r.state != RunState::Applying || !r.pending.valid() ||
      r.pending.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
    return;
  PlanRun::StepResult res = r.pending.get();
  // Verifying (not Applying) while the result is taken up: a failure rolls back from here.
  r.state = RunState::Verifying;
  take_refresh(r);
  if (!step_done(r, std::move(res), now))
    return;
  ++r.step;
  run_steps(r, now);
}

void Executor::take_refresh(PlanRun& r) {
  if (auto inc = std::move(r.pending_refresh))
    refresh(*inc);
}

void Executor::abandon(PlanRun& r, uint64_t now) {
  const size_t i = r.step;
  ++counters_.step_deadlines;
  const std::string limit = std::to_string(r.step_deadline_ns[i] / 1000000000ull) + " s";
  StepLog& step = r.steps[i];
  step.result = "abandoned at its deadline (" + limit + "); undone if it returns";
  record(RecordKind::ActionFinished, 3, r,
         step.action + " did not finish within its deadline of " + limit + ": abandoned",
         step.action, "timeout");
  r.state = RunState::Verifying;
  r.step_started_ns = 0;
  // The step may still apply: the journal keeps the run open until it returns, so a restart
  // in between rolls it back.
  r.end_deferred = true;
  abandoned_.push_back({&r, i, now});
  rollback(r, now);
  escalate(r,
           step.action + " did not finish within its deadline of " + limit +
               "; the plan was rolled back and the step is undone if it returns",
           now);
}

void Executor::reap_abandoned(uint64_t now) {
  (void)now;
  for (auto it = abandoned_.begin(); it != abandoned_.end();) {
    PlanRun& r = *it->run;
    if (r.pending.valid() &&
        r.pending.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      ++it;
      continue;
    }
    PlanRun::StepResult res = r.pending.valid() ? r.pending.get() : PlanRun::StepResult{};
    const size_t i = it->step;
    Action& a = *r.actions[i];
    std::string what, result = "abandoned";
    if (!res.applied) {
      what = "returned after its deadline without applying" +
             (res.status.ok() ? std::string() : " (" + res.status.error().message + ")");
    } else if (!a.reversible()) {
      what = "returned after its deadline and applied; irreversible, left as is";
    } else {
      Status st;
      {
        StepClock clock(step_started_ns_);
        st = a.rollback();
      }
      if (st.ok()) {
        (void)journal_->rolled_back(r.id, i);
        what = "returned after its deadline and was rolled back";
        result = "rolled_back";
      } else {
        what = "returned after its deadline; rollback failed: " + st.error().message;
        result = "rollback_failed";
      }
    }
    r.steps[i].result = "abandoned at its deadline; " + what;
    record(RecordKind::RolledBack, 4, r, r.steps[i].action + " " + what, r.steps[i].action, result);
    r.end_deferred = false;
    end_run(r.id, "escalated");
    it = abandoned_.erase(it);
  }
}

void Executor::tick(uint64_t now) {
  for (auto it = pending_ends_.begin(); it != pending_ends_.end();)
    it = journal_->end(it->first, it->second).ok() ? pending_ends_.erase(it) : std::next(it);
  for (auto& [id, rp] : runs_)
    collect(*rp, now);
  for (auto& [id, rp] : runs_) {
    PlanRun& r = *rp;
    if (r.state == RunState::Applying && cfg_.background_steps && r.pending.valid() &&
        r.step < r.step_deadline_ns.size() && r.step_deadline_ns[r.step] > 0 &&
        now >= r.step_started_ns + r.step_deadline_ns[r.step])
      abandon(r, now);
  }
  reap_abandoned(now);
  for (auto& [id, rp] : runs_) {
    PlanRun& r = *rp;
    if (r.state == RunState::AwaitingApproval && now >= r.approval_deadline_ns) {
      escalate(r, "no approval before the deadline", now);
      continue;
    }
    if (r.state != RunState::Verifying)
      continue;
    std::string why;
    // Failures and OOM kills count from the start of the current stabilisation attempt: one
    // that happened before (a death of the instance the fix replaced, read late) resets the
    // window once; a unit that keeps failing never gets a full window and the deadline passes.
    auto ok = probe_.holds(r.policy->ir.verify, r.incident, r.target, r.window_from_ns, why);
    if (!ok.ok() && ok.error().code == EAGAIN && now < r.deadline_ns)
      continue;  // not known this tick (the bus is busy with a step): the window stays as it is
    if (ok.ok() && *ok) {
      if (r.stable_since_ns == 0)
        r.stable_since_ns = now;
      if (now - r.stable_since_ns >= r.policy->ir.verify.stable_ns) {
        r.incident.recovered_ns = now;
        record(RecordKind::Verified, 6, r,
               "Recovery verified: " + r.incident.root_cause.summary + " fixed by policy " +
                   r.policy->ir.name,
               "", "verified", {{"mttr_ms", std::to_string(r.incident.mttr_ms())}});
        guards_.succeeded(r.policy->ir, r.target);
        // The verdict before the end: a restart that finds no end never undoes a verified fix.
        if (Status v = journal_->verified(r.id); !v.ok())
          SPDLOG_ERROR("Failed to record the verification of {} in the intent journal: {}", r.id,
                       v.error().message);
        finish(r, Outcome::Verified, "verified", now);
        r.incident.state = IncidentState::Resolved;
      }
      continue;
    }
    r.stable_since_ns = 0;
    r.window_from_ns = now;
    if (now >= r.deadline_ns) {
      const std::string reason =
          "verification failed within the deadline: " + (ok.ok() ? why : ok.error().message);
      fail(r, reason, now);
    }
  }
  run_queue(now);
}

void Executor::fail(PlanRun& r, const std::string& reason, uint64_t now) {
  rollback(r, now);
  if (r.policy && r.policy->ir.on_failure == OnFailure::RollbackThenNext && next_plan_ &&
      !stopping_) {
    std::set<std::string> tried = r.tried_policies;
    tried.insert(r.policy->ir.name);
    PlanChoice next = next_plan_(r.incident, tried);
    if (next.policy && !tried.count(next.policy->ir.name)) {
      record(RecordKind::RolledBack, 4, r,
             "Plan " + r.policy->ir.name + " failed (" + reason + "); trying policy " +
                 next.policy->ir.name,
             "", "next_plan");
      std::vector<StepLog> earlier = r.earlier_steps;
      for (const auto& s : r.steps)
        earlier.push_back({r.policy->ir.name + "/" + s.action, s.description, s.result});
      finish(r, Outcome::RolledBack, reason, now);
      Incident inc = r.incident;
      inc.state = IncidentState::Open;
      // Built like submit(), with the history carried over; `r` stays valid (retired).
      PlanRun& n = start_run(inc, next, now);
      n.tried_policies = tried;
      n.earlier_steps = std::move(earlier);
      submit_prepared(n, now);
      if (n.state == RunState::Done && n.outcome != Outcome::Escalated &&
          n.outcome != Outcome::Verified)
        escalate(n, "the next plan " + next.policy->ir.name + " could not run: " + n.reason, now);
      return;
    }
  }
  escalate(r, reason, now);
}

void Executor::shutdown(uint64_t now) {
  stopping_ = true;  // nothing a failure below rolls back may start a next plan
  for (auto& [id, rp] : runs_) {
    PlanRun& r = *rp;
    if (r.state == RunState::Queued) {
      escalate(r, "mendd is stopping; the plan was waiting for a slot", now);
      continue;
    }
    if (r.state == RunState::Applying && r.pending.valid()) {
      // A step cannot be interrupted halfway safely: let it end, up to its deadline; one that
      // does not is abandoned, and the intent journal has the next start roll it back.
      SPDLOG_INFO("Waiting for {} of {} to finish before stopping", r.steps[r.step].action,
                  r.incident.id);
      StepClock clock(step_started_ns_);
      const uint64_t limit = r.step < r.step_deadline_ns.size() ? r.step_deadline_ns[r.step] : 0;
      const uint64_t elapsed = now > r.step_started_ns ? now - r.step_started_ns : 0;
      if (limit > 0 && r.pending.wait_for(std::chrono::nanoseconds(
                           limit > elapsed ? limit - elapsed : 0)) != std::future_status::ready) {
        abandon(r, now);
        continue;
      }
      PlanRun::StepResult res = r.pending.get();
      r.state = RunState::Verifying;
      take_refresh(r);
      if (!step_done(r, std::move(res), now))
        continue;
    }
    if (r.state == RunState::Verifying) {
      rollback(r, now);
      escalate(r, "mendd is stopping before the fix was verified; rolled back", now);
    } else if (r.state == RunState::AwaitingApproval) {
      escalate(r, "mendd is stopping; the plan was never approved", now);
    }
  }
}

void Executor::rollback(PlanRun& r, uint64_t now) {
  bool any = false;
  for (size_t i = r.actions.size(); i-- > 0;) {
    if (!r.applied[i] || !r.actions[i]->reversible())
      continue;
    Status st;
    {
      StepClock clock(step_started_ns_);
      st = r.actions[i]->rollback();
    }
    r.applied[i] = !st.ok();
    r.steps[i].result = st.ok() ? "rolled back" : "rollback failed: " + st.error().message;
    if (st.ok() && !journal_->rolled_back(r.id, i).ok() && !journal_->rolled_back(r.id, i).ok())
      SPDLOG_ERROR("Failed to record the rollback of {} step {}: a restart may undo it again", r.id,
                   i);
    record(RecordKind::RolledBack, 4, r, r.steps[i].action + ": " + r.steps[i].result,
           r.steps[i].action, st.ok() ? "rolled_back" : "rollback_failed");
    any = true;
  }
  if (any) {
    r.incident.state = IncidentState::RolledBack;
    r.outcome = Outcome::RolledBack;
  }
  (void)now;
}

void Executor::escalate(PlanRun& r, const std::string& reason, uint64_t now) {
  finish(r, Outcome::Escalated, reason, now);
  r.incident.state = IncidentState::Escalated;
  page(r, reason);  // the notify command sees the incident escalated
}

void Executor::page(const PlanRun& r, const std::string& reason) {
  const Incident& inc = r.incident;
  std::string tried;
  for (const auto& s : r.earlier_steps)
    tried += "\n  - " + s.action + ": " + s.description + " -> " +
             (s.result.empty() ? "not run" : s.result);
  for (const auto& s : r.steps)
    tried += "\n  - " + (r.earlier_steps.empty() ? "" : r.policy->ir.name + "/") + s.action + ": " +
             s.description + " -> " + (s.result.empty() ? "not run" : s.result);
  const std::string msg =
      "Escalated incident " + inc.id + ": " + inc.root_cause.summary + " [" + inc.root_cause.kind +
      "]. " + reason + ". " + (r.outcome == Outcome::Refused ? "Not run:" : "Tried:") +
      (tried.empty() ? " nothing" : tried) + "\nLook at: " + explain(inc, inc.first_fault_ns);
  Record rec;
  rec.kind = RecordKind::Escalated;
  rec.priority = 2;
  rec.message = msg;
  rec.incident_id = inc.id;
  rec.root_cause = inc.root_cause.kind;
  rec.policy = r.policy ? r.policy->ir.name : "";
  rec.result = "escalated";
  rec.unit = r.target;
  rec.extra["reason"] = reason;
  if (!inc.root_cause.culprit_unit.empty())
    rec.extra["culprit_unit"] = inc.root_cause.culprit_unit;
  if (records_)
    records_(rec);
  notify(r);
}

void Executor::finish(PlanRun& r, Outcome o, const std::string& reason, uint64_t now) {
  if (r.started) {
    // Counted against the concurrency budget and begun in the journal: close both once.
    r.started = false;
    guards_.finished();
    if (!r.end_deferred)
      end_run(r.id, std::string(to_string(o)));
  }
  r.state = RunState::Done;
  r.outcome = o;
  r.reason = reason;
  (void)now;
}

void Executor::end_run(const std::string& run, const std::string& outcome) {
  if (Status st = journal_->end(run, outcome); !st.ok()) {
    SPDLOG_ERROR("Failed to write the end of {} to the intent journal ({}); retrying", run,
                 st.error().message);
    pending_ends_[run] = outcome;
  }
}

void Executor::notify(const PlanRun& r) {
  if (cfg_.notify_command.empty())
    return;
  // argv, no shell; the incident JSON on stdin; killed after the timeout.
  SpawnOptions o;
  o.argv = cfg_.notify_command;
  o.input = dump_json(to_json(r.incident)) + "\n";
  o.timeout_ns = cfg_.notify_timeout_ns;
  o.env["MEND_INCIDENT_ID"] = r.incident.id;
  o.env["MEND_ROOT_CAUSE"] = r.incident.root_cause.kind;
  o.env["MEND_UNIT"] = r.target;
  // A page must reach the pager: the network (which mendd itself has not), nothing else.
  o.purpose = "notify";
  o.launcher = cfg_.children;
  o.sandbox.user = cfg_.notify_user;
  o.sandbox.network = true;
  o.sandbox.read_only = true;
  notifier_.send(std::move(o));  // off the loop; bounded
}

Status Executor::recover(uint64_t now) {
  auto open = journal_->unfinished();
  if (!open.ok())
    return open.error();
  for (const auto& u : *open) {
    if (u.verified) {
      // Stopped after its verification succeeded, before its end was written: the fix stays.
      Record rec;
      rec.kind = RecordKind::Verified;
      rec.priority = 5;
      rec.incident_id = u.incident_id;
      rec.policy = u.policy;
      rec.unit = u.target;
      rec.result = "verified";
      rec.message = "mendd restarted after plan " + u.policy + " for incident " + u.incident_id +
                    " on " + u.target + " was verified; nothing undone";
      if (records_)
        records_(rec);
      end_run(u.run_id, "verified");
      continue;
    }
    // mendd stopped in the middle of this plan. Undo what it applied, newest first, then say so.
    std::string tried;
    for (auto it = u.steps.rbegin(); it != u.steps.rend(); ++it) {
      // Not known to be applied, but its undo was foreseen: killed between the apply and its
      // record. Undone all the same (restoring the value it would have replaced changes nothing
      // if it never ran).
      const bool maybe = !it->applied && !it->undo.empty();
      if ((!it->applied && !maybe) || it->rolled_back)
        continue;
      ActionContext ctx;
      ctx.units = &units_;
      ctx.unit = u.target;
      ctx.procfs = cfg_.procfs;
      ctx.sysfs = cfg_.sysfs;
      ctx.state_dir = cfg_.state_dir;
      ctx.children = cfg_.children;
      std::unique_ptr<Action> a;
      std::string result;
      try {
        a = ActionRegistry::instance().create(it->action, Params(params_from_json(it->params)),
                                              ctx);
      } catch (const std::exception& e) {
        result = std::string("unreadable parameters (") + e.what() + "), not rolled back";
      }
      if (result.empty()) {
        if (!a) {
          result = "unknown action, not rolled back";
        } else if (!a->reversible() && it->undo.empty()) {
          result = "irreversible, left as is";
        } else if (!a->reversible()) {
          // What a killed apply left half-done, taken back if it never took effect.
          Status st = a->restore(it->undo);
          if (st.ok())
            st = a->rollback();
          if (st.ok()) {
            result = "taken back (it had not taken effect)";
            (void)journal_->rolled_back(u.run_id, it->index);
          } else {
            result = "irreversible, left as is (" + st.error().message + ")";
          }
        } else if (Status st = a->restore(it->undo); !st.ok()) {
          result = "rollback impossible: " + st.error().message;
        } else if (Status rb = a->rollback(); !rb.ok()) {
          result = "rollback failed: " + rb.error().message;
        } else {
          result = maybe ? "rolled back (killed while it applied)" : "rolled back";
          (void)journal_->rolled_back(u.run_id, it->index);
        }
      }
      tried += "\n  - " + it->action + ": " + result;
    }
    Record rec;
    rec.kind = RecordKind::Escalated;
    rec.priority = 2;
    rec.incident_id = u.incident_id;
    rec.policy = u.policy;
    rec.unit = u.target;
    rec.result = "escalated";
    rec.message = "mendd restarted during plan " + u.policy + " for incident " + u.incident_id +
                  " on " + u.target + "; its applied steps were undone, not repeated:" +
                  (tried.empty() ? " nothing was applied" : tried);
    rec.extra["reason"] = "interrupted";
    if (records_)
      records_(rec);
    end_run(u.run_id, "rolled_back");
  }
  (void)now;
  return {};
}

}  // namespace mend
