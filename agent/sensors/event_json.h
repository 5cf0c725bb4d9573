// Event <-> JSON, one object per line: what `mendd --trace` prints and `mendctl replay` reads.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "mend/event.h"
#include "mend/result.h"
#include "sensor.h"

namespace mend {

nlohmann::json to_json(const Event& e);
std::string to_json_line(const Event& e);  // compact, no trailing newline

// Strict: an unknown `type`, a missing `ts_ns` or a field of the wrong type is an error naming
// the field. Unknown fields are accepted (newer producers may add them).
Result<Event> event_from_json(const nlohmann::json& j);
Result<Event> event_from_json_line(const std::string& line);

// Per-sensor health and counters (mendd --trace's summary, mendctl status).
nlohmann::json stats_json(const std::vector<SensorStats>& stats);

}  // namespace mend
