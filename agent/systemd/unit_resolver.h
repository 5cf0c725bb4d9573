// cgroup path -> systemd unit, and pid -> cgroup path. Shared by the sensors (to name an OOM
// victim or an ENOSPC writer by unit) and the systemd stage.
#pragma once

#include <string>
#include <string_view>

#include "mend/result.h"

namespace mend {

struct UnitRef {
  std::string unit;       // the unit of the manager at `manager_root` (system: "app.service")
  std::string user_unit;  // inside a user@UID.service: the user manager's unit, else empty
};

bool is_valid_unit_name(std::string_view name);

// Units that hold other units or a person's whole session (slices, init.scope,
// user@UID.service, session-N.scope): acting on one acts on everything below it.
bool holds_other_units(std::string_view unit);

// The unit owning `cgroup_path` (e.g. "/system.slice/app.service/sub") as the manager whose
// tree starts at `manager_root` lays it out: below the root only slices, nested the way systemd
// nests them ("a-b.slice" in "a.slice"), then the unit. Anything else is not that manager's:
// a path outside the root, a non-unit component before the unit
// ("/lxc.payload.c1/system.slice/nginx.service", "/X/app.slice/web.service"), a truncated
// kernel path ("/…/..."). What lies below a unit is the unit's (a delegated subtree cannot
// name another unit). Works the same for v1 controller hierarchies, v2 and hybrid (systemd
// mirrors its tree in each); never assumes /system.slice. The units sensor then checks the
// name against the manager's own unit -> ControlGroup map (Sensor::attribute).
UnitRef unit_from_cgroup(std::string_view cgroup_path, std::string_view manager_root = "/");

// From the text of /proc/PID/cgroup, the path systemd tracks units by: the v2 ("0::") line
// when it is not the root, else the v1 "name=systemd" line, else the memory controller's.
std::string pick_unit_cgroup(std::string_view proc_pid_cgroup);

Result<std::string> cgroup_of_pid(int pid, const std::string& procfs = "/proc");

}  // namespace mend
