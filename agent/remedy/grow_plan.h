// How to grow a mounted filesystem by a step, as commands (argv): pure, so every backend's
// argument construction is unit-tested, including the ones this machine cannot run (LVM,
// ext4 online). The grow_volume action gathers the facts and runs the plan.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mend/result.h"

namespace mend {

enum class GrowBackend { Loop, Lvm, None };

struct GrowFacts {
  std::string mount;   // mount point
  std::string fstype;  // xfs, ext4, ext3, btrfs, ...
  std::string device;  // /dev/loop3, /dev/mapper/vg0-data, /dev/dm-2
  GrowBackend backend = GrowBackend::None;
  std::string backing_file;         // Loop
  std::string vg, lv;               // Lvm
  uint64_t device_bytes = 0;        // the block device's size now
  uint64_t backing_free_bytes = 0;  // free in the backing filesystem (Loop) or the VG (Lvm)
};

struct GrowBounds {
  uint64_t step = 0;      // grow by this much (at most)
  uint64_t max_size = 0;  // the device never grows past this
  uint64_t reserve = 0;   // left free in the backing filesystem / VG afterwards
};

struct GrowPlan {
  uint64_t new_device_bytes = 0;
  uint64_t grow_by = 0;
  // Loop: the backing file is extended (fallocate) in-process before these run.
  std::vector<std::vector<std::string>> commands;
  std::string summary;
};

// Refused, with the reason a person reads, when: the step would pass max_size (and the device
// is already there), the backing store lacks room for the step plus the reserve, the
// filesystem cannot grow online, or no backend can grow the device.
Result<GrowPlan> plan_growth(const GrowFacts& f, const GrowBounds& b);

}  // namespace mend
