// The incident JSON of DESIGN.md and the human-readable explanation (the same text mendctl
// explain and the journald record show).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "mend/incident.h"

namespace mend {

nlohmann::ordered_json to_json(const Incident& inc);
// Why this root cause was chosen over the alternatives: the rules that matched, the evidence,
// the links. `t0` is subtracted from timestamps for display.
std::string explain(const Incident& inc, uint64_t t0);
// One line: "inc-1  fs_full  mount=/data  culprit=noisy.service  0.95  open".
std::string summary_line(const Incident& inc);
// Short description of one event, for evidence lists.
std::string describe(const Event& e);

}  // namespace mend
