#include "unit_tracker.h"

namespace mend {

void UnitTracker::apply(UnitInfo& u, const UnitProps& p) {
  if (p.active_state)
    u.active_state = *p.active_state;
  if (p.sub_state)
    u.sub_state = *p.sub_state;
  if (p.result)
    u.result = *p.result;
  if (p.cgroup)
    u.cgroup = *p.cgroup;
  if (p.exec_main_code)
    u.exec_main_code = *p.exec_main_code;
  if (p.n_restarts)
    u.n_restarts = *p.n_restarts;
  if (p.main_pid)
    u.main_pid = *p.main_pid;
  if (p.exec_main_status)
    u.exec_main_status = *p.exec_main_status;
  if (p.memory_current)
    u.memory_current = *p.memory_current;
  if (p.memory_max)
    u.memory_max = *p.memory_max;
  if (p.memory_high)
    u.memory_high = *p.memory_high;
  if (p.state_change_us)
    u.state_change_us = *p.state_change_us;
  if (p.requires_)
    u.requires_ = *p.requires_;
  if (p.wants)
    u.wants = *p.wants;
  if (p.after)
    u.after = *p.after;
  if (p.binds_to)
    u.binds_to = *p.binds_to;
  if (p.part_of)
    u.part_of = *p.part_of;
}

bool UnitTracker::seed(const std::string& unit, const UnitProps& p, uint64_t now) {
  auto [it, fresh] = units_.try_emplace(unit);
  UnitInfo& u = it->second;
  u.name = unit;
  const std::string prev_active = u.active_state, prev_sub = u.sub_state;
  const uint32_t prev_restarts = u.n_restarts;
  apply(u, p);
  const bool changed = !fresh && (u.active_state != prev_active || u.sub_state != prev_sub ||
                                  u.n_restarts != prev_restarts);
  if (fresh || changed)
    u.last_change_ns = now;
  return changed;
}

Event UnitTracker::make_event(const UnitInfo& u, const std::string& prev, uint64_t now,
                              const std::string& pattern) const {
  UnitState s;
  s.unit = u.name;
  s.cgroup = u.cgroup;
  s.prev_active_state = prev;
  s.active_state = u.active_state;
  s.sub_state = u.sub_state;
  s.result = u.result;
  s.n_restarts = u.n_restarts;
  s.pid = u.main_pid;
  s.pattern = pattern;
  s.exec_main_code = u.exec_main_code;
  s.exec_main_status = u.exec_main_status;
  s.memory_current = u.memory_current;
  if (pattern == "oom_killed")
    s.oom_pid = u.last_oom_pid;
  s.state_change_ns = u.state_change_us * 1000;
  s.requires_ = u.requires_;
  s.binds_to = u.binds_to;
  return Event{now, std::move(s)};
}

void UnitTracker::update(const std::string& unit, const UnitProps& p, uint64_t now,
                         std::vector<Event>& out) {
  auto [it, fresh] = units_.try_emplace(unit);
  UnitInfo& u = it->second;
  u.name = unit;
  const std::string prev_active = u.active_state, prev_sub = u.sub_state, prev_result = u.result;
  const uint32_t prev_restarts = u.n_restarts;
  apply(u, p);
  const bool state_changed = u.active_state != prev_active || u.sub_state != prev_sub;
  // systemd signals Result (Service interface) separately from ActiveState (Unit interface),
  // often after it: a new Result is news too.
  if (!state_changed && u.n_restarts == prev_restarts && u.result == prev_result)
    return;
  if (state_changed) {
    u.last_change_ns = now;
    u.stuck_reported = false;
  }

  std::string pattern;
  if (u.n_restarts > prev_restarts && !fresh) {
    for (uint32_t i = prev_restarts; i < u.n_restarts; ++i)
      u.restart_times.push_back(now);
  }
  while (!u.restart_times.empty() && now - u.restart_times.front() > cfg_.restart_loop_window_ns)
    u.restart_times.pop_front();

  const bool failing = u.active_state == "failed" || u.sub_state == "auto-restart";
  // Start limit: Result says so when a manual start is refused; when an automatic restart is
  // refused, systemd keeps the crash's Result (e.g. "signal") and the unit goes straight from
  // inactive to failed without activating: a restarting unit whose start was refused.
  const bool refused_restart =
      u.active_state == "failed" && prev_active == "inactive" && u.n_restarts > 0;
  if ((u.active_state == "failed" && u.result == "start-limit-hit" &&
       (prev_result != "start-limit-hit" || prev_active != "failed")) ||
      refused_restart) {
    pattern = "start_limit_hit";
  } else if (failing && (u.result == "oom-kill" ||
                         (u.last_oom_ns != 0 && now - u.last_oom_ns <= cfg_.oom_link_ns))) {
    pattern = "oom_killed";
    u.last_oom_ns = 0;  // one failure per kill
  } else if (u.restart_times.size() >= cfg_.restart_loop_count &&
             (u.loop_reported_ns == 0 || now - u.loop_reported_ns > cfg_.restart_loop_window_ns)) {
    // Reported once per window: a unit looping for an hour is one pattern a minute, not one
    // per restart.
    pattern = "restart_loop";
    u.loop_reported_ns = now;
  }
  out.push_back(make_event(u, prev_active, now, pattern));
}

void UnitTracker::note_oom(const std::string& unit, int32_t pid, uint64_t now) {
  auto it = units_.find(unit);
  if (it == units_.end())
    return;
  it->second.last_oom_ns = now;
  it->second.last_oom_pid = pid;
}

void UnitTracker::tick(uint64_t now, std::vector<Event>& out) {
  for (auto& [name, u] : units_) {
    if (u.stuck_reported || (u.active_state != "activating" && u.active_state != "deactivating"))
      continue;
    // auto-restart is a wait chosen by the unit (RestartSec), not a hang.
    if (u.sub_state == "auto-restart" || now - u.last_change_ns < cfg_.stuck_after_ns)
      continue;
    u.stuck_reported = true;
    out.push_back(
        make_event(u, u.active_state, now,
                   u.active_state == "activating" ? "stuck_activating" : "stuck_deactivating"));
  }
}

const UnitInfo* UnitTracker::find(const std::string& unit) const {
  auto it = units_.find(unit);
  return it == units_.end() ? nullptr : &it->second;
}

const UnitInfo* UnitTracker::by_cgroup(const std::string& cgroup) const {
  const UnitInfo* best = nullptr;
  for (const auto& [n, u] : units_) {
    if (u.cgroup.empty() || u.cgroup.size() > cgroup.size())
      continue;
    if (cgroup.compare(0, u.cgroup.size(), u.cgroup) == 0 &&
        (cgroup.size() == u.cgroup.size() || cgroup[u.cgroup.size()] == '/') &&
        (!best || u.cgroup.size() > best->cgroup.size()))
      best = &u;
  }
  return best;
}

}  // namespace mend
