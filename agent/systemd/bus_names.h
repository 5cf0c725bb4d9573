// The systemd manager's D-Bus names, for every connection mendd makes to it.
#pragma once

namespace mend::bus {

constexpr const char* kDest = "org.freedesktop.systemd1";
constexpr const char* kPath = "/org/freedesktop/systemd1";
constexpr const char* kManager = "org.freedesktop.systemd1.Manager";

}  // namespace mend::bus
