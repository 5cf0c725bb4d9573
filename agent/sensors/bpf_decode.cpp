#include "bpf_decode.h"

#include <cstring>
#include <map>

#include "../systemd/unit_resolver.h"
#include "mend/text.h"
#include "mounts.h"

namespace mend {

std::string bounded_string(const char* s, size_t max) {
  // Kernel strings are whatever a process or a cgroup's creator chose: made text here.
  return to_utf8(std::string_view(s, strnlen(s, max)));
}

std::string join_cgroup_path(const mend_cgroup_path& p) {
  uint32_t depth = p.depth > MEND_CG_LEVELS ? MEND_CG_LEVELS : p.depth;
  if (depth == 0)
    return "/";
  std::string out = p.truncated ? "/…" : "";
  for (uint32_t i = depth; i-- > 0;) {
    out += '/';
    out += bounded_string(p.names[i], MEND_CG_NAME_LEN);
    // A name as long as the kernel side keeps may have been cut: marked, so it can never
    // pass for a shorter unit's name.
    if (strnlen(p.names[i], MEND_CG_NAME_LEN) >= MEND_CG_NAME_LEN - 1)
      out += "…";
  }
  return out;
}

std::string syscall_name(uint32_t nr) {
  static const std::map<uint32_t, const char*> kNames = {{1, "write"},
                                                         {2, "open"},
                                                         {3, "close"},
                                                         {18, "pwrite64"},
                                                         {20, "writev"},
                                                         {40, "sendfile"},
                                                         {74, "fsync"},
                                                         {75, "fdatasync"},
                                                         {77, "ftruncate"},
                                                         {83, "mkdir"},
                                                         {85, "creat"},
                                                         {133, "mknod"},
                                                         {257, "openat"},
                                                         {258, "mkdirat"},
                                                         {259, "mknodat"},
                                                         {275, "splice"},
                                                         {277, "sync_file_range"},
                                                         {285, "fallocate"},
                                                         {296, "pwritev"},
                                                         {326, "copy_file_range"},
                                                         {328, "pwritev2"},
                                                         {437, "openat2"}};
  auto it = kNames.find(nr);
  return it != kNames.end() ? it->second : "syscall_" + std::to_string(nr);
}

OomKill decode_oom(const mend_oom_event& e, std::string_view manager_root) {
  OomKill k;
  k.pid = static_cast<int32_t>(e.pid);
  k.comm = bounded_string(e.comm, sizeof e.comm);
  k.cgroup = join_cgroup_path(e.memcg);
  k.dfl_cgroup = join_cgroup_path(e.dfl_cg);
  // systemd tracks units in the default hierarchy on v2 and hybrid hosts; on a pure v1 host
  // that is the root and the memory hierarchy (which systemd mirrors) names the unit.
  k.unit = unit_from_cgroup(k.dfl_cgroup, manager_root).unit;
  if (k.unit.empty())
    k.unit = unit_from_cgroup(k.cgroup, manager_root).unit;
  k.constraint = e.constrained ? "memcg" : "global";
  const uint64_t page = e.page_size ? e.page_size : 4096;
  k.rss_bytes = e.rss_pages * page;
  k.oom_score_adj = e.oom_score_adj;
  k.memcg_limit_bytes = e.constrained ? e.limit_pages * page : 0;
  k.trigger_pid = static_cast<int32_t>(e.trigger_pid);
  k.trigger_comm = bounded_string(e.trigger_comm, sizeof e.trigger_comm);
  return k;
}

FsEnospc decode_fs_error(const mend_fs_error_event& e, const MountTable& mounts,
                         std::string_view manager_root) {
  FsEnospc f;
  f.pid = static_cast<int32_t>(e.pid);
  f.comm = bounded_string(e.comm, sizeof e.comm);
  f.cgroup = join_cgroup_path(e.dfl_cg);
  f.unit = unit_from_cgroup(f.cgroup, manager_root).unit;
  f.err = e.err;
  f.syscall = syscall_name(e.syscall_nr);
  f.folded = e.folded;
  // The raw bytes find the mount; the event carries them as text.
  const std::string raw_path =
      e.has_path ? std::string(e.path, strnlen(e.path, sizeof e.path)) : "";
  f.path = to_utf8(raw_path);
  const Mount* m = nullptr;
  if (e.dev_major != 0 || e.dev_minor != 0) {
    f.device = std::to_string(e.dev_major) + ":" + std::to_string(e.dev_minor);
    auto ms = mounts.by_device(e.dev_major, e.dev_minor);
    if (!ms.empty())
      m = ms.front();
  } else if (!raw_path.empty() && raw_path.front() == '/') {
    m = mounts.by_path(raw_path);
    if (m)
      f.device = m->device();
  }
  if (m)
    f.mount = to_utf8(m->mountpoint);
  return f;
}

}  // namespace mend
