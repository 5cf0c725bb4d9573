#include "bpf_util.h"

namespace mend {

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
