// Typed values with units, as written in mend.yaml and on mendd's command line:
// durations "250ms", "30s", "5m", "1h", "2d"; sizes "4096", "512K", "10G" (binary, also
// "10GiB"); percentages "85%".
#pragma once

#include <cstdint>
#include <string_view>

#include "mend/result.h"

namespace mend {

Result<uint64_t> parse_duration_ns(std::string_view s);
Result<uint64_t> parse_size_bytes(std::string_view s);
Result<double> parse_percent(std::string_view s);  // "85%" or "85" -> 85.0, within [0, 100]

}  // namespace mend
