#include "guardrails.h"

#include <fnmatch.h>
#include <unistd.h>

namespace mend {

namespace {
constexpr uint64_t kHour = 3600000000000ull;
}

bool Guardrails::paused() const {
  return paused_ || (!cfg_.pause_file.empty() && access(cfg_.pause_file.c_str(), F_OK) == 0);
}

bool Guardrails::is_protected(const std::string& unit) const {
  for (const auto& g : cfg_.protected_units)
    if (fnmatch(g.c_str(), unit.c_str(), 0) == 0)
      return true;
  return false;
}

Admission Guardrails::admit(const PolicyIR& policy, const std::string& target, Mode mode,
                            uint64_t now) const {
  if (mode == Mode::Observe)
    return {false, "observe mode: the plan is described, not run"};
  if (cfg_.dry_run)
    return {false, "dry-run: the plan is described, not run"};
  if (paused())
    return {false, "paused (mendctl pause or " + cfg_.pause_file + "): no action runs"};
  if (!target.empty() && is_protected(target))
    return {false, target + " is a protected unit: never acted on"};
  if (running_ >= cfg_.node_max_concurrent)
    return {false, "node budget: " + std::to_string(running_) + " plan(s) already running"};
  uint32_t last_hour = 0;
  for (auto t : node_runs_)
    last_hour += now - t < kHour;
  if (last_hour >= cfg_.node_max_per_hour)
    return {false, "node budget: " + std::to_string(last_hour) + " plans in the last hour"};
  auto it = policy_runs_.find(policy.name + "|" + target);
  if (it != policy_runs_.end() && !it->second.empty()) {
    const uint64_t last = it->second.back();
    if (now - last < policy.guards.cooldown_ns)
      return {false, "cooldown: policy " + policy.name + " ran on " +
                         (target.empty() ? "this target" : target) + " " +
                         std::to_string((now - last) / 1000000000ull) + " s ago (cooldown " +
                         std::to_string(policy.guards.cooldown_ns / 1000000000ull) + " s)"};
    uint32_t in_window = 0;
    for (auto t : it->second)
      in_window += now - t < policy.guards.per_ns;
    if (in_window >= policy.guards.max_runs)
      return {false, "budget: policy " + policy.name + " ran " + std::to_string(in_window) +
                         " time(s) in its window (max_runs " +
                         std::to_string(policy.guards.max_runs) + ")"};
  }
  return {true, "allowed"};
}

void Guardrails::started(const PolicyIR& policy, const std::string& target, uint64_t now) {
  ++running_;
  node_runs_.push_back(now);
  while (!node_runs_.empty() && now - node_runs_.front() >= kHour)
    node_runs_.pop_front();
  auto& runs = policy_runs_[policy.name + "|" + target];
  runs.push_back(now);
  while (runs.size() > 1000)
    runs.pop_front();
}

void Guardrails::finished() {
  if (running_ > 0)
    --running_;
}

}  // namespace mend
