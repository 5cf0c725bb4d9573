// The mount table (/proc/self/mountinfo): device -> mount points, path -> mount.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mend/result.h"

namespace mend {

struct Mount {
  uint32_t major = 0;
  uint32_t minor = 0;
  std::string root;  // root of the mount within its filesystem
  std::string mountpoint;
  std::string fstype;
  std::string source;
  std::string options;  // per-mount options
  std::string super_options;

  std::string device() const { return std::to_string(major) + ":" + std::to_string(minor); }
};

// Parses mountinfo text. Malformed lines are skipped (the kernel writes this file; a line we
// cannot read is a reason to ignore that line, not to stop seeing the others).
std::vector<Mount> parse_mountinfo(std::string_view text);
std::string unescape_mount_field(std::string_view s);

class MountTable {
 public:
  explicit MountTable(std::string path = "/proc/self/mountinfo") : path_(std::move(path)) {}
  // Re-reads the table when its content changed. Returns whether it changed.
  Result<bool> refresh();
  // The same, at most once per `min_interval_ns` (an event naming a device not mounted at
  // the last read): a storm of such events must not become a storm of mountinfo reads.
  Result<bool> refresh_at_most_every(uint64_t now_ns, uint64_t min_interval_ns);
  uint64_t refreshes_skipped() const { return skipped_; }
  void set(std::vector<Mount> mounts) { mounts_ = std::move(mounts); }
  const std::vector<Mount>& all() const { return mounts_; }
  std::vector<const Mount*> by_device(uint32_t major, uint32_t minor) const;
  // Mounts of a whole disk's partitions too: block requests are accounted to the disk.
  std::vector<const Mount*> by_disk(uint32_t major, uint32_t first_minor,
                                    const std::vector<std::pair<uint32_t, uint32_t>>& parts) const;
  // The mount a path lies on: the longest mount point prefix at a component boundary (the last
  // mounted wins when a mount point is stacked).
  const Mount* by_path(std::string_view path) const;

 private:
  std::string path_;
  std::string last_text_;
  uint64_t last_refresh_ns_ = 0;
  uint64_t skipped_ = 0;
  std::vector<Mount> mounts_;
};

}  // namespace mend
