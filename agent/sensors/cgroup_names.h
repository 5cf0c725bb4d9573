// cgroup id (kernfs node id, as bpf_get_current_cgroup_id() and blkcg ids give it) -> path,
// per hierarchy. Ids are inode numbers of the cgroup directories on 64-bit kernels.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

namespace mend {

class CgroupNames {
 public:
  // `v2_root`: where the default (v2/unified) hierarchy is mounted; `io_root`: the hierarchy
  // of the io/blkio controller (the v2 root on pure v2 hosts, /sys/fs/cgroup/blkio on v1).
  CgroupNames(std::string v2_root, std::string io_root)
      : v2_root_(std::move(v2_root)), io_root_(std::move(io_root)) {}
  // Finds the mounts from a mountinfo file (hybrid, v1 and v2 hosts).
  static CgroupNames from_mountinfo(const std::string& mountinfo = "/proc/self/mountinfo");

  // "" when the id is unknown (the cgroup is gone); "/" for a hierarchy root.
  // A miss rescans the hierarchy at most ten times a second; `fresh` rescans regardless, for a
  // rare caller that must not lose a live cgroup's name to that limit (a fill report's writers).
  std::string v2_path(uint64_t id, bool fresh = false) {
    return lookup(v2_root_, v2_cache_, id, fresh);
  }
  std::string io_path(uint64_t id) { return lookup(io_root_, io_cache_, id, false); }
  // A path the kernel reported along with its id (fs_enospc records carry both): good even
  // after the cgroup is gone.
  void remember_v2(uint64_t id, const std::string& path) { v2_cache_[id] = path; }
  const std::string& v2_root() const { return v2_root_; }
  const std::string& io_root() const { return io_root_; }

 private:
  std::string lookup(const std::string& root, std::unordered_map<uint64_t, std::string>& cache,
                     uint64_t id, bool fresh);
  std::string v2_root_, io_root_;
  std::unordered_map<uint64_t, std::string> v2_cache_, io_cache_;
  std::unordered_map<std::string, uint64_t> last_scan_ns_;
};

}  // namespace mend
