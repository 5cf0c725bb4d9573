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
// The one number grammar of mend.yaml and policies: decimal digits with an optional fraction
// and an optional leading minus ("0.9", "12", "-1"). NaN, inf, exponents, hex, spaces and
// trailing junk are errors.
Result<double> parse_number(std::string_view s);
Result<int64_t> parse_integer(std::string_view s);  // the same, without a fraction
// The one boolean grammar, systemd's: 1 yes y true t on / 0 no n false f off (any case).
Result<bool> parse_bool(std::string_view s);

}  // namespace mend
