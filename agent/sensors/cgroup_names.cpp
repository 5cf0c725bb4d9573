#include "cgroup_names.h"

#include <sys/stat.h>

#include <filesystem>

#include "mend/text.h"
#include "mounts.h"
#include "sensor.h"

namespace mend {

namespace fs = std::filesystem;

CgroupNames CgroupNames::from_mountinfo(const std::string& mountinfo) {
  MountTable t(mountinfo);
  std::string v2, io;
  if (t.refresh().ok()) {
    for (const auto& m : t.all()) {
      if (m.fstype == "cgroup2" && v2.empty())
        v2 = m.mountpoint;
      if (m.fstype == "cgroup" && m.super_options.find("blkio") != std::string::npos)
        io = m.mountpoint;
    }
  }
  if (io.empty())
    io = v2;
  return CgroupNames(v2, io);
}

std::string CgroupNames::lookup(const std::string& root,
                                std::unordered_map<uint64_t, std::string>& cache, uint64_t id,
                                bool fresh) {
  if (root.empty() || id == 0)
    return "";
  if (auto it = cache.find(id); it != cache.end())
    return it->second;
  // A miss rescans the hierarchy, at most ten times a second per hierarchy: a storm of unknown
  // ids (cgroups already gone) must not turn into a storm of directory walks.
  uint64_t now = monotonic_ns();
  uint64_t& last = last_scan_ns_[root];
  if (last != 0 && now - last < 100000000ull && !fresh)
    return "";
  last = now;
  // Keep what was learnt of cgroups that are gone; bounded.
  if (cache.size() > 65536)
    cache.clear();
  std::error_code ec;
  struct stat st {};
  if (::stat(root.c_str(), &st) == 0)
    cache[st.st_ino] = "/";
  for (auto it = fs::recursive_directory_iterator(
           root, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_directory(ec) || it->is_symlink(ec))
      continue;
    if (::stat(it->path().c_str(), &st) != 0)
      continue;
    cache[st.st_ino] = to_utf8("/" + fs::relative(it->path(), root, ec).string());
  }
  auto it = cache.find(id);
  return it == cache.end() ? "" : it->second;
}

}  // namespace mend
