#include "systemd_bus.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "bus_names.h"
#include "host/clock.h"
#include "mend/text.h"
#include "transient_child.h"

namespace mend {

namespace {

using bus::kDest;
using bus::kManager;
using bus::kPath;
constexpr const char* kUnitPrefix = "/org/freedesktop/systemd1/unit";
constexpr uint64_t kCallTimeoutUs = 5000000;

uint64_t now_ns() {
  return monotonic_ns();
}

// "Failed to <what>: <D-Bus error message>", with an errno that says what kind of failure.
Error bus_error(const std::string& what, const sd_bus_error* e, int r) {
  std::string msg = what + ": ";
  if (e && sd_bus_error_is_set(e))
    msg += e->message ? e->message : e->name;
  else
    msg += std::strerror(r < 0 ? -r : r);
  int code = e && sd_bus_error_is_set(e) ? sd_bus_error_get_errno(e) : (r < 0 ? -r : r);
  return Error{msg, code};
}

// The D-Bus interface holding a unit type's cgroup and runtime properties.
std::string type_interface(const std::string& unit) {
  static const std::pair<const char*, const char*> kTypes[] = {
      {".service", "Service"}, {".scope", "Scope"}, {".slice", "Slice"},
      {".socket", "Socket"},   {".mount", "Mount"}, {".swap", "Swap"}};
  for (auto [suffix, iface] : kTypes) {
    size_t n = std::strlen(suffix);
    if (unit.size() > n && unit.compare(unit.size() - n, n, suffix) == 0)
      return std::string("org.freedesktop.systemd1.") + iface;
  }
  return "";
}

std::string exec_code_name(int32_t code) {
  switch (code) {
    case 1:
      return "exited";
    case 2:
      return "killed";
    case 3:
      return "dumped";
    default:
      return "";
  }
}

// Reads one (key, variant) into `p` when the key is one we track; skips it otherwise.
int read_prop(sd_bus_message* m, const char* key, UnitProps& p) {
  auto str = [&](std::optional<std::string>& out) {
    const char* s = nullptr;
    int r = sd_bus_message_read(m, "v", "s", &s);
    if (r >= 0)
      out = s ? s : "";
    return r;
  };
  auto strv = [&](std::optional<std::vector<std::string>>& out) {
    int r = sd_bus_message_enter_container(m, 'v', "as");
    if (r < 0)
      return r;
    char** l = nullptr;
    r = sd_bus_message_read_strv(m, &l);
    if (r < 0)
      return r;
    std::vector<std::string> v;
    for (char** i = l; i && *i; ++i) {
      v.emplace_back(*i);
      free(*i);
    }
    free(l);
    out = std::move(v);
    return sd_bus_message_exit_container(m);
  };
  auto u64 = [&](std::optional<uint64_t>& out) {
    uint64_t v = 0;
    int r = sd_bus_message_read(m, "v", "t", &v);
    if (r >= 0)
      out = v;
    return r;
  };
  std::string k = key;
  if (k == "ActiveState")
    return str(p.active_state);
  if (k == "SubState")
    return str(p.sub_state);
  if (k == "Result")
    return str(p.result);
  if (k == "ControlGroup")
    return str(p.cgroup);
  if (k == "NRestarts" || k == "MainPID") {
    uint32_t v = 0;
    int r = sd_bus_message_read(m, "v", "u", &v);
    if (r >= 0) {
      if (k == "NRestarts")
        p.n_restarts = v;
      else
        p.main_pid = static_cast<int32_t>(v);
    }
    return r;
  }
  if (k == "ExecMainStatus" || k == "ExecMainCode") {
    int32_t v = 0;
    int r = sd_bus_message_read(m, "v", "i", &v);
    if (r >= 0) {
      if (k == "ExecMainStatus")
        p.exec_main_status = v;
      else
        p.exec_main_code = exec_code_name(v);
    }
    return r;
  }
  if (k == "MemoryCurrent")
    return u64(p.memory_current);
  if (k == "MemoryMax")
    return u64(p.memory_max);
  if (k == "MemoryHigh")
    return u64(p.memory_high);
  if (k == "StateChangeTimestampMonotonic")
    return u64(p.state_change_us);
  if (k == "Requires")
    return strv(p.requires_);
  if (k == "Wants")
    return strv(p.wants);
  if (k == "After")
    return strv(p.after);
  if (k == "BindsTo")
    return strv(p.binds_to);
  if (k == "PartOf")
    return strv(p.part_of);
  return sd_bus_message_skip(m, "v");
}

// Reads an a{sv} into `p`.
int read_props(sd_bus_message* m, UnitProps& p) {
  int r = sd_bus_message_enter_container(m, 'a', "{sv}");
  if (r < 0)
    return r;
  while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
    const char* key = nullptr;
    if ((r = sd_bus_message_read(m, "s", &key)) < 0)
      return r;
    if ((r = read_prop(m, key, p)) < 0)
      return r;
    if ((r = sd_bus_message_exit_container(m)) < 0)
      return r;
  }
  if (r < 0)
    return r;
  return sd_bus_message_exit_container(m);
}

}  // namespace

SystemdBus::SystemdBus(BusScope scope, UnitTracker& tracker, Role role)
    : scope_(scope), role_(role), tracker_(tracker) {}

SystemdBus::~SystemdBus() {
  disconnect();
}

void SystemdBus::disconnect() {
  for (auto* s : slots_)
    sd_bus_slot_unref(s);
  slots_.clear();
  for (auto& [unit, f] : fetching_)
    if (f->slot)
      sd_bus_slot_unref(f->slot);
  fetching_.clear();
  fetch_backlog_.clear();
  in_flight_ = 0;
  if (bus_)
    sd_bus_flush_close_unref(bus_);
  bus_ = nullptr;
}

Result<sd_bus*> open_manager_bus(BusScope scope, bool* direct) {
  // Prefer the manager's private socket (no bus daemon in the way, works before D-Bus is up
  // and for root only); fall back to the bus.
  std::string priv;
  if (scope == BusScope::System) {
    priv = "/run/systemd/private";
  } else if (const char* rt = getenv("XDG_RUNTIME_DIR")) {
    priv = std::string(rt) + "/systemd/private";
  }
  if (direct)
    *direct = false;
  sd_bus* b = nullptr;
  int r = -ENOENT;
  if (!priv.empty() && access(priv.c_str(), W_OK) == 0) {
    r = sd_bus_new(&b);
    if (r >= 0)
      r = sd_bus_set_address(b, ("unix:path=" + priv).c_str());
    if (r >= 0)
      r = sd_bus_negotiate_fds(b, 1);
    if (r >= 0)
      r = sd_bus_start(b);
    if (r >= 0) {
      if (direct)
        *direct = true;
      return b;
    }
    if (b)
      sd_bus_unref(b);
    b = nullptr;
  }
  r = scope == BusScope::System ? sd_bus_open_system(&b) : sd_bus_open_user(&b);
  if (r < 0)
    return Error::from_errno(std::string("Failed to connect to the systemd ") +
                                 (scope == BusScope::System ? "system" : "user") + " manager",
                             -r);
  return b;
}

int SystemdBus::fd() const {
  return bus_ ? sd_bus_get_fd(bus_) : -1;
}

Status SystemdBus::connect(uint64_t now, std::vector<Event>& out) {
  disconnect();
  bool direct = false;
  auto b = open_manager_bus(scope_, &direct);
  if (!b.ok())
    return b.error();
  bus_ = *b;
  int r = 0;
  // On a direct connection messages carry no sender: match on path and interface only.
  const char* sender = direct ? nullptr : kDest;
  sd_bus_slot* s = nullptr;
  r = 0;
  if (role_ == Role::Watch) {
    r = sd_bus_match_signal(bus_, &s, sender, nullptr, "org.freedesktop.DBus.Properties",
                            "PropertiesChanged", &SystemdBus::on_properties_changed, this);
    if (r >= 0) {
      slots_.push_back(s);
      r = sd_bus_match_signal(bus_, &s, sender, kPath, kManager, "UnitRemoved",
                              &SystemdBus::on_unit_removed, this);
    }
    if (r >= 0)
      slots_.push_back(s);
  }
  if (r >= 0)
    r = sd_bus_match_signal(bus_, &s, sender, kPath, kManager, "JobRemoved",
                            &SystemdBus::on_job_removed, this);
  if (r >= 0)
    slots_.push_back(s);
  if (r < 0) {
    disconnect();
    return Error::from_errno("Failed to subscribe to systemd signals", -r);
  }
  sd_bus_error err = SD_BUS_ERROR_NULL;
  // Subscribed either way: the manager sends JobRemoved only to subscribers. An operating
  // connection lets the unit signals go unread (no match, no fetch, dropped at each drain).
  r = sd_bus_call_method(bus_, kDest, kPath, kManager, "Subscribe", &err, nullptr, "");
  if (r < 0) {
    Error e = bus_error("Failed to subscribe to the systemd manager", &err, r);
    sd_bus_error_free(&err);
    disconnect();
    return e;
  }
  char* cg = nullptr;
  if (sd_bus_get_property_string(bus_, kDest, kPath, kManager, "ControlGroup", &err, &cg) >= 0 &&
      cg) {
    manager_cgroup_ = cg;
    free(cg);
  }
  sd_bus_error_free(&err);
  return role_ == Role::Watch ? seed_all(now, out) : Status{};
}

Status SystemdBus::seed_all(uint64_t now, std::vector<Event>& out) {
  sd_bus_error err = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  int r = sd_bus_call_method(bus_, kDest, kPath, kManager, "ListUnits", &err, &reply, "");
  if (r < 0) {
    Error e = bus_error("Failed to list units", &err, r);
    sd_bus_error_free(&err);
    return e;
  }
  // First connection: seed silently. Reconnection: a unit whose state moved while we were
  // away is reported as a transition, so nothing is lost across a bus restart.
  const bool first = tracker_.all().empty();
  r = sd_bus_message_enter_container(reply, 'a', "(ssssssouso)");
  const char *name, *desc, *load, *active, *sub, *follow, *path, *jtype, *jpath;
  uint32_t jid;
  while (r >= 0 && (r = sd_bus_message_read(reply, "(ssssssouso)", &name, &desc, &load, &active,
                                            &sub, &follow, &path, &jid, &jtype, &jpath)) > 0) {
    if (is_mend_child_unit(name))
      continue;
    UnitProps p;
    p.active_state = active;
    p.sub_state = sub;
    const UnitInfo* u = tracker_.find(name);
    if (first || !u) {
      tracker_.seed(name, p, now);
    } else if (u->active_state != active || u->sub_state != sub) {
      UnitProps full;
      if (fetch_unit(name, full).ok())
        fetched_.insert(name);
      full.active_state = active;
      full.sub_state = sub;
      tracker_.update(name, full, now, out);
    }
  }
  sd_bus_message_unref(reply);
  sd_bus_error_free(&err);
  if (r < 0)
    return Error::from_errno("Failed to parse the unit list", -r);
  return {};
}

Status SystemdBus::fetch_unit(const std::string& unit, UnitProps& p) {
  char* path = nullptr;
  if (sd_bus_path_encode(kUnitPrefix, unit.c_str(), &path) < 0)
    return Error{"Failed to encode the object path of " + unit};
  std::string opath = path;
  free(path);
  for (const std::string& iface :
       {std::string("org.freedesktop.systemd1.Unit"), type_interface(unit)}) {
    if (iface.empty())
      continue;
    sd_bus_error err = SD_BUS_ERROR_NULL;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call_method(bus_, kDest, opath.c_str(), "org.freedesktop.DBus.Properties",
                               "GetAll", &err, &reply, "s", iface.c_str());
    if (r >= 0)
      r = read_props(reply, p);
    sd_bus_message_unref(reply);
    if (r < 0) {
      Error e = bus_error("Failed to read the properties of " + unit, &err, r);
      sd_bus_error_free(&err);
      return e;
    }
    sd_bus_error_free(&err);
  }
  return {};
}

Status SystemdBus::process(uint64_t now, std::vector<Event>& out) {
  if (!bus_)
    return Error{"not connected"};
  out_ = &out;
  now_ = now;
  int r;
  while ((r = sd_bus_process(bus_, nullptr)) > 0) {
  }
  out_ = nullptr;
  if (r < 0 || !sd_bus_is_open(bus_)) {
    disconnect();
    return Error::from_errno("Lost the connection to the systemd manager", r < 0 ? -r : ECONNRESET);
  }
  return {};
}

int SystemdBus::on_properties_changed(sd_bus_message* m, void* ud, sd_bus_error*) {
  auto* self = static_cast<SystemdBus*>(ud);
  const char* path = sd_bus_message_get_path(m);
  char* name = nullptr;
  if (!path || sd_bus_path_decode(path, kUnitPrefix, &name) <= 0 || !name)
    return 0;
  std::string unit = name;
  free(name);
  // mendd's own commands: their failures are in the step's record, never an incident.
  if (is_mend_child_unit(unit))
    return 0;
  const char* iface = nullptr;
  if (sd_bus_message_read(m, "s", &iface) < 0)
    return 0;
  UnitProps p;
  if (read_props(m, p) < 0) {
    SPDLOG_DEBUG("Ignoring a malformed PropertiesChanged for {}", unit);
    return 0;
  }
  if (!self->fetched_.count(unit)) {
    // First sight of this unit in detail: its cgroup, counters and dependencies are not in
    // every signal. Fetched once, without waiting; later signals carry the changes.
    self->begin_fetch(unit, std::move(p));
    return 0;
  }
  self->apply(unit, p);
  return 0;
}

void SystemdBus::apply(const std::string& unit, const UnitProps& p) {
  std::vector<Event> local;
  tracker_.update(unit, p, now_ ? now_ : now_ns(), out_ ? *out_ : local);
}

void SystemdBus::begin_fetch(const std::string& unit, UnitProps change) {
  if (auto it = fetching_.find(unit); it != fetching_.end()) {
    it->second->changes.push_back(std::move(change));
    return;
  }
  if (fetching_.size() >= kMaxFetches + kMaxBacklog) {
    ++fetch_overflow_;
    apply(unit, change);  // as much as the signal says
    return;
  }
  auto f = std::make_unique<Fetch>();
  f->self = this;
  f->unit = unit;
  f->changes.push_back(std::move(change));
  char* path = nullptr;
  if (sd_bus_path_encode(kUnitPrefix, unit.c_str(), &path) < 0) {
    apply(unit, f->changes.front());
    return;
  }
  f->path = path;
  free(path);
  Fetch& ref = *f;
  fetching_.emplace(unit, std::move(f));
  if (in_flight_ >= kMaxFetches) {
    fetch_backlog_.push_back(unit);
    return;
  }
  if (!ask(ref))
    end_fetch(unit, false);
}

bool SystemdBus::ask(Fetch& f) {
  const std::string iface =
      f.stage == 0 ? std::string("org.freedesktop.systemd1.Unit") : type_interface(f.unit);
  int r = sd_bus_call_method_async(bus_, &f.slot, kDest, f.path.c_str(),
                                   "org.freedesktop.DBus.Properties", "GetAll",
                                   &SystemdBus::on_fetched, &f, "s", iface.c_str());
  if (r < 0) {
    f.slot = nullptr;
    return false;
  }
  ++in_flight_;
  return true;
}

int SystemdBus::on_fetched(sd_bus_message* m, void* ud, sd_bus_error*) {
  auto* f = static_cast<Fetch*>(ud);
  SystemdBus* self = f->self;
  --self->in_flight_;
  sd_bus_slot_unref(f->slot);
  f->slot = nullptr;
  const bool ok = !sd_bus_message_is_method_error(m, nullptr) && read_props(m, f->full) >= 0;
  if (ok && f->stage == 0 && !type_interface(f->unit).empty()) {
    f->stage = 1;
    if (self->ask(*f))
      return 0;
  }
  self->end_fetch(f->unit, ok);
  return 0;
}

void SystemdBus::end_fetch(const std::string& unit, bool ok) {
  auto it = fetching_.find(unit);
  if (it == fetching_.end())
    return;
  std::unique_ptr<Fetch> f = std::move(it->second);
  fetching_.erase(it);
  if (ok) {
    fetched_.insert(unit);
    f->full.active_state.reset();  // the transitions themselves come from the signals
    f->full.sub_state.reset();
    tracker_.seed(unit, f->full, now_ ? now_ : now_ns());
  }
  for (const auto& c : f->changes)
    apply(unit, c);
  // The next one waiting.
  while (in_flight_ < kMaxFetches && !fetch_backlog_.empty()) {
    const std::string next = std::move(fetch_backlog_.front());
    fetch_backlog_.pop_front();
    auto n = fetching_.find(next);
    if (n != fetching_.end() && !ask(*n->second))
      end_fetch(next, false);
  }
}

int SystemdBus::on_unit_removed(sd_bus_message* m, void* ud, sd_bus_error*) {
  auto* self = static_cast<SystemdBus*>(ud);
  const char *unit = nullptr, *path = nullptr;
  if (sd_bus_message_read(m, "so", &unit, &path) >= 0 && unit) {
    const UnitInfo* u = self->tracker_.find(unit);
    // Keep failed units a while: their state is evidence (and a unit loaded again under the
    // same name keeps its restart history). Bounded: past kMaxRemovedKept the oldest go.
    if (u && u->active_state == "inactive") {
      self->tracker_.remove(unit);
      self->fetched_.erase(unit);
    } else if (u) {
      self->removed_failed_.push_back(unit);
      while (self->removed_failed_.size() > kMaxRemovedKept) {
        const std::string old = std::move(self->removed_failed_.front());
        self->removed_failed_.pop_front();
        const UnitInfo* o = self->tracker_.find(old);
        if (o && o->active_state != "active" && o->active_state != "activating") {
          self->tracker_.remove(old);
          self->fetched_.erase(old);
          ++self->removed_forgotten_;
        }
      }
    }
  }
  return 0;
}

int SystemdBus::on_job_removed(sd_bus_message* m, void* ud, sd_bus_error*) {
  auto* self = static_cast<SystemdBus*>(ud);
  uint32_t id = 0;
  const char *job = nullptr, *unit = nullptr, *result = nullptr;
  if (sd_bus_message_read(m, "uoss", &id, &job, &unit, &result) >= 0 && job && result) {
    if (self->finished_jobs_.insert_or_assign(job, result).second)
      self->finished_order_.push_back(job);
    // Bounded: results nobody waits for are dropped oldest first. By arrival, not by the
    // map's order: a path's order is its digits' ("/job/401622" before "/job/99999"), so once
    // the manager's job numbers grew a digit each new result was the first to go, the awaited
    // one included (seen after 5 minutes of 200 crash-looping units: a restart that finished in
    // a second timed out after 20).
    while (self->finished_jobs_.size() > 256 && !self->finished_order_.empty()) {
      self->finished_jobs_.erase(self->finished_order_.front());
      self->finished_order_.pop_front();
    }
  }
  return 0;
}

Result<std::string> SystemdBus::job(const char* method, const std::string& unit,
                                    uint64_t timeout_ns) {
  if (!bus_)
    return Error{std::string("Failed to ") + method + " " + unit + ": not connected", ENOTCONN};
  const uint64_t deadline = now_ns() + timeout_ns;
  sd_bus_error err = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  int r = sd_bus_call_method(bus_, kDest, kPath, kManager, method, &err, &reply, "ss", unit.c_str(),
                             "replace");
  if (r < 0) {
    Error e = bus_error(std::string("Failed to ") + method + " " + unit, &err, r);
    sd_bus_error_free(&err);
    return e;
  }
  const char* jp = nullptr;
  r = sd_bus_message_read(reply, "o", &jp);
  std::string job_path = jp ? jp : "";
  sd_bus_message_unref(reply);
  if (r < 0)
    return Error::from_errno(std::string("Failed to read the job of ") + method, -r);
  // Pump the bus until our job is removed; other signals keep flowing to the tracker.
  std::vector<Event> pending;
  while (true) {
    if (auto it = finished_jobs_.find(job_path); it != finished_jobs_.end()) {
      std::string res = it->second;
      finished_jobs_.erase(it);
      if (auto o = std::find(finished_order_.begin(), finished_order_.end(), job_path);
          o != finished_order_.end())
        finished_order_.erase(o);
      return res;
    }
    const uint64_t now = now_ns();
    if (now >= deadline)
      return Error{std::string("Failed to ") + method + " " + unit + ": job " + job_path +
                       " did not finish within the deadline",
                   ETIMEDOUT};
    out_ = &pending;
    r = sd_bus_process(bus_, nullptr);
    out_ = nullptr;
    if (r < 0)
      return Error::from_errno(std::string("Failed to ") + method + " " + unit, -r);
    if (r == 0)
      sd_bus_wait(bus_, (deadline - now) / 1000);
  }
}

Result<std::string> SystemdBus::start(const std::string& u, uint64_t t) {
  return job("StartUnit", u, t);
}
Result<std::string> SystemdBus::stop(const std::string& u, uint64_t t) {
  return job("StopUnit", u, t);
}
Result<std::string> SystemdBus::restart(const std::string& u, uint64_t t) {
  return job("RestartUnit", u, t);
}
Result<std::string> SystemdBus::try_restart(const std::string& u, uint64_t t) {
  return job("TryRestartUnit", u, t);
}
Result<std::string> SystemdBus::reload(const std::string& u, uint64_t t) {
  return job("ReloadUnit", u, t);
}

Result<std::string> SystemdBus::unit_of_pid(int pid) {
  if (!bus_)
    return Error{"Failed to ask for the unit of pid " + std::to_string(pid) + ": not connected",
                 ENOTCONN};
  sd_bus_error err = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  int r = sd_bus_call_method(bus_, kDest, kPath, kManager, "GetUnitByPID", &err, &reply, "u",
                             static_cast<uint32_t>(pid));
  const char* path = nullptr;
  if (r >= 0)
    r = sd_bus_message_read(reply, "o", &path);
  std::string opath = path ? path : "";
  sd_bus_message_unref(reply);
  if (r < 0) {
    Error e = bus_error("Failed to find the unit of pid " + std::to_string(pid), &err, r);
    sd_bus_error_free(&err);
    return e;
  }
  char* id = nullptr;
  r = sd_bus_get_property_string(bus_, kDest, opath.c_str(), "org.freedesktop.systemd1.Unit", "Id",
                                 &err, &id);
  std::string name = id ? id : "";
  free(id);
  if (r < 0) {
    Error e = bus_error("Failed to read the unit of pid " + std::to_string(pid), &err, r);
    sd_bus_error_free(&err);
    return e;
  }
  return to_utf8(name);
}

Status SystemdBus::reset_failed(const std::string& unit) {
  if (!bus_)
    return Error{"Failed to reset " + unit + ": not connected", ENOTCONN};
  sd_bus_error err = SD_BUS_ERROR_NULL;
  int r = sd_bus_call_method(bus_, kDest, kPath, kManager, "ResetFailedUnit", &err, nullptr, "s",
                             unit.c_str());
  if (r < 0) {
    Error e = bus_error("Failed to reset the failed state of " + unit, &err, r);
    sd_bus_error_free(&err);
    return e;
  }
  return {};
}

Result<std::string> SystemdBus::load_unit_path(const std::string& unit) {
  sd_bus_error err = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  // LoadUnit: the unit may be inactive and not loaded; its object path comes back either way.
  int r =
      sd_bus_call_method(bus_, kDest, kPath, kManager, "LoadUnit", &err, &reply, "s", unit.c_str());
  const char* path = nullptr;
  if (r >= 0)
    r = sd_bus_message_read(reply, "o", &path);
  std::string opath = path ? path : "";
  sd_bus_message_unref(reply);
  if (r < 0) {
    Error e = bus_error("Failed to load " + unit, &err, r);
    sd_bus_error_free(&err);
    return e;
  }
  return opath;
}

Result<std::string> SystemdBus::active_state(const std::string& unit) {
  if (!bus_)
    return Error{"Failed to read the state of " + unit + ": not connected", ENOTCONN};
  auto path = load_unit_path(unit);
  if (!path.ok())
    return path.error();
  sd_bus_error err = SD_BUS_ERROR_NULL;
  char* state = nullptr;
  int r = sd_bus_get_property_string(bus_, kDest, path->c_str(), "org.freedesktop.systemd1.Unit",
                                     "ActiveState", &err, &state);
  if (r < 0) {
    Error e = bus_error("Failed to read the state of " + unit, &err, r);
    sd_bus_error_free(&err);
    return e;
  }
  std::string s = state ? state : "";
  free(state);
  return s;
}

Result<uint64_t> SystemdBus::active_since_us(const std::string& unit) {
  if (!bus_)
    return Error{"Failed to read when " + unit + " became active: not connected", ENOTCONN};
  auto path = load_unit_path(unit);
  if (!path.ok())
    return path.error();
  sd_bus_error err = SD_BUS_ERROR_NULL;
  uint64_t us = 0;
  int r = sd_bus_get_property_trivial(bus_, kDest, path->c_str(), "org.freedesktop.systemd1.Unit",
                                      "ActiveEnterTimestampMonotonic", &err, 't', &us);
  if (r < 0) {
    Error e = bus_error("Failed to read when " + unit + " became active", &err, r);
    sd_bus_error_free(&err);
    return e;
  }
  return us;
}

Result<PropertyValue> SystemdBus::get_property(const std::string& unit, const std::string& name) {
  if (!bus_)
    return Error{"Failed to read " + name + " of " + unit + ": not connected", ENOTCONN};
  const std::string iface = type_interface(unit);
  if (iface.empty())
    return Error{"Failed to read " + name + " of " + unit + ": not a unit type with resources"};
  auto opath = load_unit_path(unit);
  if (!opath.ok())
    return opath.error();
  sd_bus_error err = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  const bool is_list = name.rfind("IO", 0) == 0;
  int r = sd_bus_get_property(bus_, kDest, opath->c_str(), iface.c_str(), name.c_str(), &err,
                              &reply, is_list ? "a(st)" : "t");
  if (r < 0) {
    Error e = bus_error("Failed to read " + name + " of " + unit, &err, r);
    sd_bus_error_free(&err);
    sd_bus_message_unref(reply);
    return e;
  }
  PropertyValue v;
  if (is_list) {
    DeviceLimits l;
    r = sd_bus_message_enter_container(reply, 'a', "(st)");
    const char* dev = nullptr;
    uint64_t val = 0;
    while (r >= 0 && (r = sd_bus_message_read(reply, "(st)", &dev, &val)) > 0)
      l.emplace_back(dev, val);
    v = l;
  } else {
    uint64_t val = 0;
    r = sd_bus_message_read(reply, "t", &val);
    v = val;
  }
  sd_bus_message_unref(reply);
  if (r < 0)
    return Error::from_errno("Failed to parse " + name + " of " + unit, -r);
  return v;
}

Status SystemdBus::set_property(const std::string& unit, const std::string& name,
                                const PropertyValue& value) {
  if (!bus_)
    return Error{"Failed to set " + name + " of " + unit + ": not connected", ENOTCONN};
  sd_bus_message* m = nullptr;
  int r = sd_bus_message_new_method_call(bus_, &m, kDest, kPath, kManager, "SetUnitProperties");
  if (r >= 0)
    r = sd_bus_message_append(m, "sb", unit.c_str(), 1 /* runtime */);
  if (r >= 0)
    r = sd_bus_message_open_container(m, 'a', "(sv)");
  // One (name, value) entry of the property array.
  auto entry = [&](const PropertyValue& v) {
    if (r >= 0)
      r = sd_bus_message_open_container(m, 'r', "sv");
    if (r >= 0)
      r = sd_bus_message_append(m, "s", name.c_str());
    if (r >= 0) {
      if (const auto* n = std::get_if<uint64_t>(&v)) {
        r = sd_bus_message_append(m, "v", "t", *n);
      } else {
        r = sd_bus_message_open_container(m, 'v', "a(st)");
        if (r >= 0)
          r = sd_bus_message_open_container(m, 'a', "(st)");
        for (const auto& [dev, val] : std::get<DeviceLimits>(v))
          if (r >= 0)
            r = sd_bus_message_append(m, "(st)", dev.c_str(), val);
        if (r >= 0)
          r = sd_bus_message_close_container(m);
        if (r >= 0)
          r = sd_bus_message_close_container(m);
      }
    }
    if (r >= 0)
      r = sd_bus_message_close_container(m);
  };
  // systemd merges a non-empty device list into the present one and resets all on an empty
  // list. To set exactly `value` (a rollback must remove what the fix added), a list is sent as
  // an empty list followed by the entries, in one call, applied in order.
  if (const auto* l = std::get_if<DeviceLimits>(&value); l && !l->empty())
    entry(DeviceLimits{});
  entry(value);
  if (r >= 0)
    r = sd_bus_message_close_container(m);
  if (r < 0) {
    sd_bus_message_unref(m);
    return Error::from_errno("Failed to build SetUnitProperties for " + unit, -r);
  }
  sd_bus_error err = SD_BUS_ERROR_NULL;
  r = sd_bus_call(bus_, m, kCallTimeoutUs, &err, nullptr);
  sd_bus_message_unref(m);
  if (r < 0) {
    Error e = bus_error("Failed to set " + name + " of " + unit, &err, r);
    sd_bus_error_free(&err);
    return e;
  }
  return {};
}

}  // namespace mend
