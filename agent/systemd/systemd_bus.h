// The sd-bus client: subscribes to the systemd manager, keeps the UnitTracker current from its
// signals, survives the bus going away, and performs unit operations with job tracking.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <systemd/sd-bus.h>

#include "mend/event.h"
#include "unit_ops.h"
#include "unit_tracker.h"

namespace mend {

enum class BusScope { System, User };

// A new connection to the manager: its private socket when mendd may use it (root), else the
// bus. `direct` says which (messages on a direct connection carry no sender).
Result<sd_bus*> open_manager_bus(BusScope scope, bool* direct = nullptr);

class SystemdBus final : public UnitOps {
 public:
  // What a connection is for: Watch follows every unit (the units sensor); Operate only runs
  // operations and waits for its own jobs (remedies): it subscribes to nothing, so a storm
  // of unit changes does not queue up behind a remedy's calls.
  enum class Role { Watch, Operate };
  SystemdBus(BusScope scope, UnitTracker& tracker, Role role = Role::Watch);
  ~SystemdBus() override;
  SystemdBus(const SystemdBus&) = delete;
  SystemdBus& operator=(const SystemdBus&) = delete;

  // Connects, subscribes and seeds the cache. Events for units whose state changed while
  // disconnected are appended to `out`.
  Status connect(uint64_t now, std::vector<Event>& out);
  bool connected() const { return bus_ != nullptr; }
  int fd() const;
  // Processes everything waiting on the bus; transitions become events in `out`. A broken
  // connection is closed (connected() turns false) and reported.
  Status process(uint64_t now, std::vector<Event>& out);
  // The manager's own cgroup (ControlGroup of the manager): units live below it.
  const std::string& manager_cgroup() const { return manager_cgroup_; }

  // UnitOps
  Result<std::string> start(const std::string& unit, uint64_t timeout_ns) override;
  Result<std::string> stop(const std::string& unit, uint64_t timeout_ns) override;
  Result<std::string> restart(const std::string& unit, uint64_t timeout_ns) override;
  Result<std::string> try_restart(const std::string& unit, uint64_t timeout_ns) override;
  Result<std::string> reload(const std::string& unit, uint64_t timeout_ns) override;
  Result<std::string> unit_of_pid(int pid) override;
  Status reset_failed(const std::string& unit) override;
  Result<std::string> active_state(const std::string& unit) override;
  Result<uint64_t> active_since_us(const std::string& unit) override;
  Result<PropertyValue> get_property(const std::string& unit, const std::string& name) override;
  Status set_property(const std::string& unit, const std::string& name,
                      const PropertyValue& value) override;

 private:
  static int on_properties_changed(sd_bus_message* m, void* self, sd_bus_error* err);
  static int on_unit_removed(sd_bus_message* m, void* self, sd_bus_error* err);
  static int on_job_removed(sd_bus_message* m, void* self, sd_bus_error* err);
  Result<std::string> job(const char* method, const std::string& unit, uint64_t timeout_ns);
  Status seed_all(uint64_t now, std::vector<Event>& out);
  Result<std::string> load_unit_path(const std::string& unit);
  Status fetch_unit(const std::string& unit, UnitProps& p);
  // The first sight of a unit in detail (cgroup, counters, dependencies) without waiting: the
  // properties are asked for asynchronously and the unit's changes wait for the answer, then
  // go to the tracker in order. At most kMaxFetches at once; more wait in a bounded backlog.
  struct Fetch {
    SystemdBus* self = nullptr;
    std::string unit, path;
    size_t stage = 0;  // 0: the Unit interface, 1: the type's interface
    UnitProps full;
    std::vector<UnitProps> changes;  // signals that came before the answer, in order
    sd_bus_slot* slot = nullptr;
  };
  static constexpr size_t kMaxFetches = 64;
  static constexpr size_t kMaxBacklog = 4096;
  static int on_fetched(sd_bus_message* m, void* fetch, sd_bus_error* err);
  void begin_fetch(const std::string& unit, UnitProps change);
  bool ask(Fetch& f);
  void end_fetch(const std::string& unit, bool ok);
  void apply(const std::string& unit, const UnitProps& p);
  void disconnect();

  BusScope scope_;
  Role role_ = Role::Watch;
  UnitTracker& tracker_;
  sd_bus* bus_ = nullptr;
  std::vector<sd_bus_slot*> slots_;
  std::map<std::string, std::string> finished_jobs_;  // job path -> result
  std::deque<std::string> finished_order_;            // the same paths, oldest first
  std::vector<Event>* out_ = nullptr;                 // while process() runs
  uint64_t now_ = 0;
  std::string manager_cgroup_;
  std::set<std::string> fetched_;                           // units whose full properties were read
  std::map<std::string, std::unique_ptr<Fetch>> fetching_;  // in flight, or in the backlog
  std::deque<std::string> fetch_backlog_;
  size_t in_flight_ = 0;
  uint64_t fetch_overflow_ = 0;  // changes applied without their unit's details (backlog full)
  // Failed units the manager unloaded (transient units, CollectMode=), oldest first.
  static constexpr size_t kMaxRemovedKept = 256;
  std::deque<std::string> removed_failed_;
  uint64_t removed_forgotten_ = 0;
};

}  // namespace mend
