// Agent settings beyond the sensors: the plain IR of mend.yaml's `state_dir`, `control`,
// `executor`, `correlation` and `slo` sections (agent/policy/config.cpp parses them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mend {

struct ControlSettings {
  std::string socket = "/run/mend/control.sock";
  // Members of this group may use the socket as root can (status, approve, pause, ...);
  // empty: root only. The socket is created 0660 root:<group>.
  std::string group;
};

struct ExecutorSettings {
  bool dry_run = false;
  uint32_t max_actions_per_hour = 10;          // node-wide
  uint32_t max_concurrent = 1;                 // node-wide plans running at once
  uint32_t max_actions_per_unit_per_hour = 4;  // on one target unit, all policies together
  // Added to the built-in protected units (init.scope, *.slice, dbus, systemd-*, mend, ssh):
  // never acted on, whatever a policy says.
  std::vector<std::string> protected_units;
  std::string pause_file = "/etc/mend/pause";
  uint64_t approval_timeout_ns = 900000000000ull;  // then escalate
  // On SIGTERM, plans still verifying get this long to finish, then are rolled back.
  uint64_t shutdown_grace_ns = 15000000000ull;
  std::vector<std::string> notify_command;  // argv, no shell; incident JSON on stdin
  uint64_t notify_timeout_ns = 10000000000ull;
  std::string notify_user;  // empty: root without capabilities
  // Where commands (exec, notify, logrotate, journalctl, volume tools) run: "transient" units
  // of the manager with their own sandbox, "inline" as children of mendd's, or "auto":
  // transient when mendd talks to the system manager.
  std::string children = "auto";
};

struct CorrelationSettings {
  uint64_t window_ns = 300000000000ull;
  uint64_t quiet_ns = 600000000000ull;
  // Live events are stamped as they are read (units, samplers) or in the kernel microseconds
  // earlier (ring buffers), so this only needs to cover a busy loop; every ms of it is latency.
  uint64_t reorder_ns = 100000000ull;
};

struct MetricsSettings {
  std::string listen;  // "127.0.0.1:9464"; empty: no metrics endpoint
};

// A per-unit availability objective: the unit is "up" unless failed or restarting.
struct SloObjective {
  std::string unit;
  double objective = 0.999;                        // fraction, e.g. 0.999 for 99.9%
  uint64_t window_ns = 30ull * 86400000000000ull;  // 30 days
};

}  // namespace mend
