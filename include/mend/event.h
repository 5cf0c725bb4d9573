// The event model: what sensors emit, what correlation consumes, what `mendd --trace` prints
// and `mendctl replay` reads (docs/events.md is the contract; fields are added, never renamed).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace mend {

enum class EventType { OomKill, FsEnospc, FsFill, IoStall, UnitState, Psi };

std::string_view to_string(EventType t);

struct OomKill {
  int32_t pid = 0;
  std::string comm;
  std::string cgroup;      // memory cgroup of the victim ("/" for the root)
  std::string dfl_cgroup;  // default-hierarchy (v2/unified) cgroup of the victim
  std::string unit;        // systemd unit, empty when none
  std::string constraint;  // "memcg" or "global"
  uint64_t rss_bytes = 0;
  int32_t oom_score_adj = 0;
  uint64_t memcg_limit_bytes = 0;  // the limit that was hit, for "memcg"
  int32_t trigger_pid = 0;         // the task whose allocation triggered the OOM
  std::string trigger_comm;
};

struct FsEnospc {
  int32_t pid = 0;
  std::string comm;
  std::string cgroup;  // default-hierarchy cgroup of the writer
  std::string unit;
  std::string mount;   // mount point, empty when it could not be resolved
  std::string device;  // "major:minor"
  std::string syscall;
  int32_t err = 0;      // 28 ENOSPC or 122 EDQUOT; JSON field "errno"
  std::string path;     // the syscall's path argument, for path-based syscalls
  uint64_t folded = 0;  // earlier failures of the same process and filesystem folded into this one
};

struct Writer {
  std::string unit;
  std::string cgroup;
  uint64_t bytes = 0;
};

struct FsFill {
  std::string mount;
  std::string device;
  std::string fstype;
  double used_pct = 0;
  uint64_t avail_bytes = 0;
  uint64_t size_bytes = 0;
  double inode_used_pct = 0;
  double fill_rate_bps = 0;
  double eta_full_s = -1;  // -1 when not filling
  std::string state;       // "firing" or "cleared"
  std::string reason;      // "usage", "inodes", "eta" (what crossed), empty when cleared
  std::vector<Writer> top_writers;
};

struct IoUnit {
  std::string unit;
  std::string cgroup;
  uint64_t ios = 0;
  uint64_t bytes = 0;
  uint64_t slow_ios = 0;
};

struct IoStall {
  std::string device;  // "major:minor"
  std::string name;    // kernel name, e.g. "loop3"
  std::string mount;   // first mount point, empty when not mounted
  std::vector<std::string> mounts;
  uint64_t p50_us = 0;
  uint64_t p99_us = 0;
  uint64_t max_us = 0;
  uint64_t oldest_inflight_us = 0;
  uint64_t ios = 0;  // completions in the last interval
  double psi_io_some_avg10 = -1;
  std::string state;  // "firing" or "cleared"
  std::vector<IoUnit> top_units;
};

struct UnitState {
  std::string unit;
  std::string cgroup;
  std::string prev_active_state;
  std::string active_state;
  std::string sub_state;
  std::string result;
  uint32_t n_restarts = 0;
  int32_t pid = 0;
  // What an on-call engineer would call it, when the transition completes a pattern:
  // "restart_loop", "start_limit_hit", "oom_killed", "stuck_activating", "stuck_deactivating".
  std::string pattern;
  std::string exec_main_code;  // "exited", "killed", "dumped", or empty
  int32_t exec_main_status = 0;
  uint64_t memory_current = 0;   // bytes; 0 when accounting is off
  int32_t oom_pid = 0;           // for "oom_killed": the victim the kernel reported
  uint64_t state_change_ns = 0;  // when systemd changed the state (CLOCK_MONOTONIC), 0 unknown
  std::vector<std::string> requires_;  // JSON "requires": units this one Requires=
  std::vector<std::string> binds_to;   // JSON "binds_to"
};

struct Psi {
  std::string resource;  // "cpu", "memory", "io"
  double some_avg10 = 0;
  double full_avg10 = 0;
  std::string state;  // "firing" or "cleared"
};

using EventPayload = std::variant<OomKill, FsEnospc, FsFill, IoStall, UnitState, Psi>;

struct Event {
  uint64_t ts_ns = 0;  // CLOCK_MONOTONIC (live) or any ordered clock (replay)
  EventPayload payload;

  EventType type() const { return static_cast<EventType>(payload.index()); }
};

}  // namespace mend
