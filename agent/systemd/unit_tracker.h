// The live cache of systemd units and the patterns an on-call engineer looks for. Pure logic:
// the bus client (systemd_bus.cpp) feeds it property changes, tests feed it synthetic ones.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mend/event.h"

namespace mend {

// Changed properties of one unit; unset fields did not change.
struct UnitProps {
  std::optional<std::string> active_state, sub_state, result, cgroup, exec_main_code;
  std::optional<uint32_t> n_restarts;
  std::optional<int32_t> main_pid, exec_main_status;
  std::optional<uint64_t> memory_current, memory_max, memory_high;
  std::optional<uint64_t> state_change_us;  // StateChangeTimestampMonotonic
  std::optional<std::vector<std::string>> requires_, wants, after, binds_to, part_of;
};

struct UnitInfo {
  std::string name;
  std::string active_state, sub_state, result, cgroup, exec_main_code;
  uint32_t n_restarts = 0;
  int32_t main_pid = 0, exec_main_status = 0;
  uint64_t memory_current = 0, memory_max = UINT64_MAX, memory_high = UINT64_MAX;
  uint64_t state_change_us = 0;
  std::vector<std::string> requires_, wants, after, binds_to, part_of;
  uint64_t last_change_ns = 0;  // when active/sub state last changed (our clock)
  std::deque<uint64_t> restart_times;
  uint64_t loop_reported_ns = 0;
  bool stuck_reported = false;
  uint64_t last_oom_ns = 0;
  int32_t last_oom_pid = 0;
};

struct UnitTrackerConfig {
  uint32_t restart_loop_count = 3;                   // this many restarts ...
  uint64_t restart_loop_window_ns = 60000000000ull;  // ... within this window is a loop
  uint64_t stuck_after_ns = 90000000000ull;          // activating/deactivating longer than this
  uint64_t oom_link_ns = 5000000000ull;  // a failure this soon after an OOM kill is linked
};

class UnitTracker {
 public:
  explicit UnitTracker(UnitTrackerConfig cfg = {}) : cfg_(cfg) {}

  // Seeds or refreshes a unit without emitting (start-up, reconnection). Returns true when
  // the unit's state differs from what the cache had, so the caller can report what changed
  // while it was not looking.
  bool seed(const std::string& unit, const UnitProps& p, uint64_t now);
  // Applies a change; appends unit_state events for a transition and any pattern it completes.
  void update(const std::string& unit, const UnitProps& p, uint64_t now, std::vector<Event>& out);
  void remove(const std::string& unit) { units_.erase(unit); }
  // The kernel killed `pid` of `unit` for memory: a failure that follows is linked to it.
  void note_oom(const std::string& unit, int32_t pid, uint64_t now);
  // Time-based patterns (stuck in activating/deactivating).
  void tick(uint64_t now, std::vector<Event>& out);

  const UnitInfo* find(const std::string& unit) const;
  const std::map<std::string, UnitInfo>& all() const { return units_; }
  // The unit whose ControlGroup is `cgroup` or an ancestor of it.
  const UnitInfo* by_cgroup(const std::string& cgroup) const;

 private:
  Event make_event(const UnitInfo& u, const std::string& prev, uint64_t now,
                   const std::string& pattern) const;
  static void apply(UnitInfo& u, const UnitProps& p);
  UnitTrackerConfig cfg_;
  std::map<std::string, UnitInfo> units_;
};

}  // namespace mend
