// Userspace side of the kernel's log-linear latency histogram (bpf/mend_common.bpf.h).
#pragma once

#include <array>
#include <cstdint>

extern "C" {
#include "mend_events.h"
}

namespace mend {

using LatencyHist = std::array<uint64_t, MEND_HIST_BUCKETS>;

// Lower bound (µs) of bucket b: b < 4 hold 0..3; above, each power of two is split in four.
constexpr uint64_t hist_bucket_lower(uint32_t b) {
  if (b < 4)
    return b;
  uint32_t p = b / 4 + 1;
  uint32_t sub = b % 4;
  return (4ull + sub) << (p - 2);
}

// Same mapping as the BPF side, for tests and for synthesising histograms.
constexpr uint32_t hist_bucket(uint64_t us) {
  if (us < 4)
    return static_cast<uint32_t>(us);
  uint32_t p = 63 - static_cast<uint32_t>(__builtin_clzll(us));
  uint32_t sub = (us >> (p - MEND_HIST_SUB_BITS)) & 3;
  uint32_t b = 4 * (p - 1) + sub;
  return b < MEND_HIST_BUCKETS ? b : MEND_HIST_BUCKETS - 1;
}

// The q-quantile (0 < q <= 1) of a histogram, interpolated linearly inside its bucket; 0 for
// an empty histogram.
inline uint64_t hist_quantile(const LatencyHist& h, double q) {
  uint64_t total = 0;
  for (auto c : h)
    total += c;
  if (total == 0)
    return 0;
  double rank = q * static_cast<double>(total);
  uint64_t seen = 0;
  for (uint32_t b = 0; b < MEND_HIST_BUCKETS; ++b) {
    if (h[b] == 0)
      continue;
    if (static_cast<double>(seen + h[b]) >= rank) {
      double lo = static_cast<double>(hist_bucket_lower(b));
      double hi =
          b + 1 < MEND_HIST_BUCKETS ? static_cast<double>(hist_bucket_lower(b + 1)) : lo * 2;
      double frac = (rank - static_cast<double>(seen)) / static_cast<double>(h[b]);
      return static_cast<uint64_t>(lo + (hi - lo) * frac);
    }
    seen += h[b];
  }
  return hist_bucket_lower(MEND_HIST_BUCKETS - 1);
}

}  // namespace mend
