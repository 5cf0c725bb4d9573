// Replay: recorded events (the JSON lines `mendd --trace` prints) through correlation.
#pragma once

#include <istream>
#include <string>
#include <vector>

#include "correlator.h"
#include "mend/result.h"

namespace mend {

struct ReplayOptions {
  bool skip_bad = false;  // go on past malformed lines (counted and reported)
  CorrelatorConfig correlator;
};

struct ReplayResult {
  uint64_t events = 0;
  uint64_t bad_lines = 0;
  std::vector<std::string> warnings;  // "FILE:LINE: message" for each skipped line
  uint64_t first_ts = 0;
  std::vector<Incident> incidents;
};

// A malformed line is an error naming FILE:LINE unless skip_bad.
Result<ReplayResult> replay(std::istream& in, const std::string& name, const ReplayOptions& opt);

}  // namespace mend
