#include "guardrails.h"
#include "mend/text.h"

#include "../policy/state_file.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <spdlog/spdlog.h>
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace mend {

namespace {
constexpr uint64_t kHour = 3600000000000ull;
constexpr uint64_t kMaxHistory = 31 * 24 * kHour;  // longer than any policy's `per`
constexpr size_t kMaxEntries = 100000;  // per list or map read back (mendd keeps far fewer)

// Monotonic time (what the executor passes in) to wall-clock time (what survives a reboot).

std::string key(const PolicyIR& p, const std::string& target) {
  return p.name + "|" + target;
}

}  // namespace

Guardrails::Guardrails(GuardrailConfig cfg)
    : cfg_(std::move(cfg)), offset_ns_(realtime_offset_ns()) {}

uint64_t Guardrails::age(int64_t wall, uint64_t now) const {
  const int64_t a = static_cast<int64_t>(now) + offset_ns_ - wall;
  return a > 0 ? static_cast<uint64_t>(a) : 0;  // the clock was set back: count it as recent
}

Status Guardrails::load(uint64_t now) {
  damaged_.clear();
  if (cfg_.state_file.empty())
    return {};
  std::ifstream f(cfg_.state_file);
  if (!f)
    return errno == ENOENT ? Status{}
                           : Error::from_errno("Failed to read " + cfg_.state_file, errno);
  try {
    auto j = nlohmann::json::parse(f);
    // Every value of the type and range mendd writes, and no more of them than it keeps.
    const auto& p = j.contains("paused") ? j.at("paused") : nlohmann::json(false);
    if (!p.is_boolean())
      throw std::invalid_argument("paused: not true or false");
    paused_ = p.get<bool>();
    auto list = [](const nlohmann::json& a, const char* what) -> const nlohmann::json& {
      if (!a.is_array() || a.size() > kMaxEntries)
        throw std::invalid_argument(std::string(what) + ": not a list of at most " +
                                    std::to_string(kMaxEntries));
      return a;
    };
    node_runs_.clear();
    for (const auto& t : list(j.at("node_runs"), "node_runs")) {
      const int64_t w = json_int(t, 0, INT64_MAX, "node_runs");
      if (age(w, now) < kHour)
        node_runs_.push_back(w);
    }
    policy_runs_.clear();
    const auto& pr = j.at("policy_runs");
    if (!pr.is_object() || pr.size() > kMaxEntries)
      throw std::invalid_argument("policy_runs: not a map of at most " +
                                  std::to_string(kMaxEntries));
    for (auto it = pr.begin(); it != pr.end(); ++it)
      for (const auto& t : list(*it, "policy_runs")) {
        const int64_t w = json_int(t, 0, INT64_MAX, "policy_runs");
        if (age(w, now) < kMaxHistory)
          policy_runs_[it.key()].push_back(w);
      }
    successes_.clear();
    const auto& su = j.at("successes");
    if (!su.is_object() || su.size() > kMaxEntries)
      throw std::invalid_argument("successes: not a map of at most " + std::to_string(kMaxEntries));
    for (auto it = su.begin(); it != su.end(); ++it)
      successes_[it.key()] =
          static_cast<uint32_t>(json_int(it.value(), 0, UINT32_MAX, "successes"));
  } catch (const std::exception& e) {
    node_runs_.clear();
    policy_runs_.clear();
    successes_.clear();
    damaged_ = cfg_.state_file + ": damaged guardrail history (" + e.what() + ")";
    return Error{damaged_ +
                     "; every budget counts as spent until it is repaired or removed and mendd "
                     "reloads",
                 EINVAL};
  }
  return {};
}

Status Guardrails::save() const {
  // A damaged file is left as found (evidence, and the state a person must look at).
  if (cfg_.state_file.empty() || !damaged_.empty())
    return {};
  nlohmann::json j;
  j["version"] = 1;
  j["paused"] = paused_;
  j["node_runs"] = nlohmann::json::array();
  for (auto t : node_runs_)
    j["node_runs"].push_back(t);
  j["policy_runs"] = nlohmann::json::object();
  for (const auto& [k, runs] : policy_runs_) {
    auto& a = j["policy_runs"][k] = nlohmann::json::array();
    for (auto t : runs)
      a.push_back(t);
  }
  j["successes"] = successes_;
  if (auto st = write_file_atomic(cfg_.state_file, dump_json(j) + "\n"); !st.ok()) {
    SPDLOG_WARN("Failed to save the guardrail history: {}", st.error().message);
    return Error{"failed to save the guardrail history: " + st.error().message, st.error().code};
  }
  return {};
}

void Guardrails::reconfigure(GuardrailConfig cfg) {
  cfg.state_file = cfg_.state_file;  // the history stays where it is
  cfg_ = std::move(cfg);
}

Status Guardrails::set_paused(bool p) {
  paused_ = p;
  return save();
}

void Guardrails::succeeded(const PolicyIR& policy, const std::string& target) {
  ++successes_[key(policy, target)];
  (void)save();  // a lost success only delays auto_after_successes: fails safe
}

uint32_t Guardrails::successes(const PolicyIR& policy, const std::string& target) const {
  auto it = successes_.find(key(policy, target));
  return it == successes_.end() ? 0 : it->second;
}

uint32_t Guardrails::runs_last_hour(uint64_t now) const {
  uint32_t n = 0;
  for (auto t : node_runs_)
    n += age(t, now) < kHour;
  return n;
}

uint32_t Guardrails::target_runs_last_hour(const std::string& target, uint64_t now) const {
  uint32_t n = 0;
  const std::string suffix = "|" + target;
  for (const auto& [k, runs] : policy_runs_)
    if (k.size() >= suffix.size() &&
        k.compare(k.size() - suffix.size(), suffix.size(), suffix) == 0)
      for (auto it = runs.rbegin(); it != runs.rend() && age(*it, now) < kHour; ++it)
        ++n;
  return n;
}

bool Guardrails::paused() const {
  return paused_ || (!cfg_.pause_file.empty() && access(cfg_.pause_file.c_str(), F_OK) == 0);
}

bool Guardrails::matches(const std::vector<std::string>& globs, const std::string& unit) {
  for (const auto& g : globs)
    if (fnmatch(g.c_str(), unit.c_str(), 0) == 0)
      return true;
  return false;
}

bool Guardrails::is_protected(const std::string& unit) const {
  return matches(cfg_.protected_units, unit);
}

Admission Guardrails::admit(const PolicyIR& policy, const std::string& target, Mode mode,
                            uint64_t now) const {
  if (mode == Mode::Observe)
    return {false, "observe mode: the plan is described, not run"};
  if (cfg_.dry_run)
    return {false, "dry-run: the plan is described, not run"};
  if (paused())
    return {false, "paused (mendctl pause or " + cfg_.pause_file + "): no action runs"};
  if (!damaged_.empty())
    return {false, damaged_ + ": every budget counts as spent until a person repairs it", true};
  if (!target.empty() && is_protected(target))
    return {false, target + " is a protected unit: never acted on", true};
  if (running_ >= cfg_.node_max_concurrent)
    return {false, "node budget: " + std::to_string(running_) + " plan(s) already running", true,
            true};
  const uint32_t last_hour = runs_last_hour(now);
  if (last_hour >= cfg_.node_max_per_hour)
    return {false, "node budget: " + std::to_string(last_hour) + " plans in the last hour", true};
  if (!target.empty()) {
    const uint32_t on_target = target_runs_last_hour(target, now);
    if (on_target >= cfg_.target_max_per_hour)
      return {false,
              "target budget: " + std::to_string(on_target) + " plans on " + target +
                  " in the last hour (target_max_per_hour " +
                  std::to_string(cfg_.target_max_per_hour) + ")",
              true};
  }
  auto it = policy_runs_.find(key(policy, target));
  if (it != policy_runs_.end() && !it->second.empty()) {
    const uint64_t since = age(it->second.back(), now);
    if (since < policy.guards.cooldown_ns)
      return {false,
              "cooldown: policy " + policy.name + " ran on " +
                  (target.empty() ? "this target" : target) + " " +
                  std::to_string(since / 1000000000ull) + " s ago (cooldown " +
                  std::to_string(policy.guards.cooldown_ns / 1000000000ull) + " s)",
              true};
    uint32_t in_window = 0;
    for (auto t : it->second)
      in_window += age(t, now) < policy.guards.per_ns;
    if (in_window >= policy.guards.max_runs)
      return {false,
              "budget: policy " + policy.name + " ran " + std::to_string(in_window) +
                  " time(s) in its window (max_runs " + std::to_string(policy.guards.max_runs) +
                  ")",
              true};
  }
  return {true, "allowed"};
}

Status Guardrails::started(const PolicyIR& policy, const std::string& target, uint64_t now) {
  ++running_;
  const int64_t wall = static_cast<int64_t>(now) + offset_ns_;
  node_runs_.push_back(wall);
  while (!node_runs_.empty() && age(node_runs_.front(), now) >= kHour)
    node_runs_.pop_front();
  for (auto it = policy_runs_.begin(); it != policy_runs_.end();)
    it = !it->second.empty() && age(it->second.back(), now) >= kMaxHistory ? policy_runs_.erase(it)
                                                                           : std::next(it);
  auto& runs = policy_runs_[key(policy, target)];
  runs.push_back(wall);
  while (runs.size() > 1000)
    runs.pop_front();
  return save();
}

void Guardrails::finished() {
  if (running_ > 0)
    --running_;
}

}  // namespace mend
