// mendd's own log: spdlog to stderr (journald captures it under systemd).
#pragma once

#include <string>

namespace mend {

void init_logging(bool verbose);

}  // namespace mend
