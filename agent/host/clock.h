// The clock every stage reads: CLOCK_MONOTONIC in nanoseconds (events, deadlines, windows).
#pragma once

#include <cstdint>

namespace mend {

uint64_t monotonic_ns();

}  // namespace mend
