// Small helpers for the sensors that own BPF skeletons.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "mend/result.h"
#include "sensor.h"

extern "C" {
#include "mend_events.h"
}

namespace mend {

// Run time and run count of every program of a loaded object.
std::vector<ProgramStats> program_stats(const bpf_object* obj);

// Turns on the kernel's run-time accounting of BPF programs (BPF_ENABLE_STATS) for as long as
// the returned descriptor stays open. Costs two clock reads per program run.
Result<int> enable_bpf_run_stats();

// Sums a BPF_MAP_TYPE_PERCPU_ARRAY of u64 counters (enum mend_stat) over all CPUs.
std::array<uint64_t, MEND_STAT_MAX> read_percpu_stats(int map_fd);

// Every (key, value) of a hash map, by batch lookup where the kernel supports it.
template <class K, class V>
std::vector<std::pair<K, V>> dump_map(int map_fd, uint32_t max_entries) {
  std::vector<std::pair<K, V>> out;
  std::vector<K> keys(max_entries);
  std::vector<V> vals(max_entries);
  K out_batch{};
  uint32_t count = max_entries;
  int err =
      bpf_map_lookup_batch(map_fd, nullptr, &out_batch, keys.data(), vals.data(), &count, nullptr);
  if (err == 0 || errno == ENOENT) {
    for (uint32_t i = 0; i < count; ++i)
      out.emplace_back(keys[i], vals[i]);
    return out;
  }
  // No batch support: walk the keys.
  K key{}, next{};
  const K* cur = nullptr;
  while (bpf_map_get_next_key(map_fd, cur, &next) == 0) {
    V v{};
    if (bpf_map_lookup_elem(map_fd, &next, &v) == 0)
      out.emplace_back(next, v);
    key = next;
    cur = &key;
  }
  return out;
}

// libbpf returns -errno; make it a readable error.
inline Error bpf_error(const std::string& what, int err) {
  return Error::from_errno(what, err < 0 ? -err : err);
}

}  // namespace mend
