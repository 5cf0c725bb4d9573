#include "bpf_util.h"

#include <unistd.h>

#include <cerrno>

namespace mend {

std::vector<ProgramStats> program_stats(const bpf_object* obj) {
  std::vector<ProgramStats> out;
  if (!obj)
    return out;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, obj) {
    const int fd = bpf_program__fd(prog);
    if (fd < 0)
      continue;
    bpf_prog_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0)
      continue;
    out.push_back({bpf_program__name(prog), info.run_time_ns, info.run_cnt});
  }
  return out;
}

Result<int> enable_bpf_run_stats() {
  const int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (fd < 0)
    return Error::from_errno("BPF_ENABLE_STATS", errno);
  return fd;
}

std::array<uint64_t, MEND_STAT_MAX> read_percpu_stats(int map_fd) {
  std::array<uint64_t, MEND_STAT_MAX> out{};
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0)
    return out;
  std::vector<uint64_t> vals(static_cast<size_t>(ncpu));
  for (uint32_t i = 0; i < MEND_STAT_MAX; ++i) {
    if (bpf_map_lookup_elem(map_fd, &i, vals.data()) != 0)
      continue;
    for (auto v : vals)
      out[i] += v;
  }
  return out;
}

}  // namespace mend
