#include "grow_plan.h"

namespace mend {

namespace {

std::string mib(uint64_t b) {
  return std::to_string(b >> 20) + " MiB";
}

}  // namespace

Result<GrowPlan> plan_growth(const GrowFacts& f, const GrowBounds& b) {
  if (f.backend == GrowBackend::None)
    return Error{"no backend can grow " + f.device + " (only LVM logical volumes and loop " +
                     "devices over a file)",
                 ENOTSUP};
  std::vector<std::string> fs_cmd;
  if (f.fstype == "xfs")
    fs_cmd = {"/usr/sbin/xfs_growfs", f.mount};
  else if (f.fstype == "ext4" || f.fstype == "ext3")
    fs_cmd = {"/usr/sbin/resize2fs", f.device};
  else if (f.fstype == "btrfs")
    fs_cmd = {"/usr/bin/btrfs", "filesystem", "resize", "max", f.mount};
  else
    return Error{f.fstype + " on " + f.mount + " cannot be grown online", ENOTSUP};
  if (f.device_bytes >= b.max_size)
    return Error{
        f.device + " is " + mib(f.device_bytes) + ", at or past the maximum " + mib(b.max_size),
        ENOSPC};
  GrowPlan p;
  p.grow_by = std::min(b.step, b.max_size - f.device_bytes);
  if (f.backend == GrowBackend::Lvm)
    p.grow_by -= p.grow_by % (4u << 20);  // whole default extents: lvextend would round up
  if (p.grow_by == 0)
    return Error{"nothing left to grow within the maximum " + mib(b.max_size), ENOSPC};
  const char* store =
      f.backend == GrowBackend::Loop ? "the backing filesystem of " : "volume group ";
  const std::string store_name = f.backend == GrowBackend::Loop ? f.backing_file : f.vg;
  if (f.backing_free_bytes < p.grow_by + b.reserve)
    return Error{std::string(store) + store_name + " has " + mib(f.backing_free_bytes) +
                     " free; growing by " + mib(p.grow_by) + " would leave less than the " +
                     "reserve of " + mib(b.reserve),
                 ENOSPC};
  p.new_device_bytes = f.device_bytes + p.grow_by;
  if (f.backend == GrowBackend::Loop) {
    p.commands.push_back({"/usr/sbin/losetup", "--set-capacity", f.device});
  } else {
    p.commands.push_back(
        {"/usr/sbin/lvextend", "--size", "+" + std::to_string(p.grow_by) + "b", f.vg + "/" + f.lv});
  }
  p.commands.push_back(fs_cmd);
  p.summary = "grow " + f.mount + " (" + f.fstype + " on " + f.device + ") from " +
              mib(f.device_bytes) + " to " + mib(p.new_device_bytes) + " (max " + mib(b.max_size) +
              ")";
  return p;
}

}  // namespace mend
