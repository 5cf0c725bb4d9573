// mendd's own log: spdlog to stderr (journald captures it under systemd).
#pragma once

#include <string>

namespace mend {

void init_logging(bool verbose);
// Whether stderr is connected to journald (run as a systemd service).
bool stderr_is_journal();

}  // namespace mend
