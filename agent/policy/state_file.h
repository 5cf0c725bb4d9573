// mendd's small state files (guardrail history, SLO budgets): written whole to a temporary
// file, fsync'd, renamed over the old one; times kept in wall-clock ns so they mean the same
// after a reboot.
#pragma once

#include <cstdint>
#include <string>

#include "mend/result.h"

namespace mend {

Status write_file_atomic(const std::string& path, const std::string& body);
// CLOCK_REALTIME - CLOCK_MONOTONIC now: monotonic time + this = wall-clock time.
int64_t realtime_offset_ns();

}  // namespace mend
