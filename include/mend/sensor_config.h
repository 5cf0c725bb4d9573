// Sensor settings: the plain IR of the `sensors:` section of mend.yaml (and of mendd's flags).
#pragma once

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace mend {

struct IoSensorConfig {
  bool enabled = true;
  uint64_t latency_threshold_us = 200000;  // p99 over the window, or oldest in-flight
  uint64_t window_ns = 1000000000;         // latency percentiles are taken over this window
  uint64_t duration_ns = 1000000000;       // over threshold this long before firing
  uint64_t clear_after_ns = 3000000000;    // under threshold * clear_ratio this long to clear
  double clear_ratio = 0.8;                // hysteresis: clear only well under the threshold
  uint64_t min_ios = 3;                    // fewer completions in the window: p99 not trusted
  uint64_t reminder_ns = 30000000000;      // re-emit while firing (0: never)
  uint32_t top_units = 5;
};

struct FsSensorConfig {
  bool enabled = true;
  double used_pct = 90;                   // space threshold
  double inode_used_pct = 90;             // inode threshold
  double hysteresis_pct = 5;              // clear only this many points under
  uint64_t horizon_ns = 600000000000;     // fire when time-to-full falls under this
  uint64_t rate_window_ns = 10000000000;  // fill rate is the slope over this window
  uint64_t min_rate_bps = 4096;           // slower is "not filling"
  uint64_t reminder_ns = 30000000000;
  uint64_t enospc_fold_ns = 1000000;  // fold repeated failures of one process and fs
  uint32_t top_writers = 5;
  bool count_writers = true;
  // The syscall-exit probe (ENOSPC/EDQUOT errors, bytes written per cgroup) costs every
  // syscall of every task while attached. "auto": attached only while some filesystem is at
  // risk (usage at or over arm_pct, or a time-to-full under three horizons, or quotas that can
  // fail a write on an empty disk), detached after disarm_after with none at risk; "always"
  // (the default until writers can be named without it: in "auto" a volume filled from under
  // arm_pct inside one sample is first reported without its writer).
  std::string enospc_probe = "always";
  double arm_pct = -1;                     // default: used_pct - 20 (at least 0)
  uint64_t disarm_after_ns = 60000000000;  // no filesystem at risk this long: detach
  double effective_arm_pct() const { return arm_pct >= 0 ? arm_pct : std::max(0.0, used_pct - 20); }
  std::set<std::string> fstypes = {"ext2",     "ext3",   "ext4",  "xfs",     "btrfs",
                                   "f2fs",     "vfat",   "exfat", "jfs",     "zfs",
                                   "bcachefs", "nilfs2", "ntfs3", "reiserfs"};
  std::vector<std::string> exclude_mounts;  // mount points never reported
};

struct PsiSensorConfig {
  bool enabled = true;
  double cpu_some_avg10 = 80;
  double memory_some_avg10 = 40;
  double io_some_avg10 = 40;
  double hysteresis = 10;  // clear when this far under
};

struct SensorConfig {
  uint64_t sample_interval_ns = 250000000;
  // While every sampler is calm and nothing is in progress, ticks come this far apart (0: never
  // slower than sample_interval_ns).
  uint64_t idle_interval_ns = 1000000000;
  bool oom_enabled = true;
  IoSensorConfig io;
  FsSensorConfig fs;
  PsiSensorConfig psi;
  // Kernel features to pretend are missing (fault injection for degradation tests).
  std::set<std::string> pretend_missing;
};

}  // namespace mend
