// The sensor interface and registry. Everything downstream of agent/sensors sees Sensor and
// Event only; BPF skeletons never leave the sensor's own .cpp file.
//
// Adding a sensor: one .cpp with a class deriving from Sensor and one line
//   MEND_REGISTER_SENSOR(name, MySensor::create);
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "host/clock.h"
#include "mend/event.h"
#include "mend/result.h"
#include "mend/sensor_config.h"

namespace mend {

class KernelFeatures;
class MountTable;
class CgroupNames;

using EventSink = std::function<void(Event&&)>;

// Paths and facilities a sensor may use, injected so tests can point them elsewhere.
struct SensorContext {
  const SensorConfig* config = nullptr;
  KernelFeatures* features = nullptr;
  MountTable* mounts = nullptr;
  CgroupNames* cgroups = nullptr;
  std::string procfs = "/proc";
  std::string sysfs = "/sys";
  std::string manager_cgroup_root = "/";  // cgroup of the systemd manager units belong to
  std::string bus = "system";             // systemd manager to follow: system, user or none
};

// What the kernel accounts for one BPF program (bpf_prog_info); run time and count stay 0
// unless run-time statistics are on (enable_bpf_run_stats(), or kernel.bpf_stats_enabled=1).
struct ProgramStats {
  std::string name;
  uint64_t run_time_ns = 0;
  uint64_t run_count = 0;
};

struct SensorStats {
  std::string name;
  bool enabled = false;
  std::string disabled_reason;
  uint64_t events = 0;                 // events emitted to the pipeline
  uint64_t kernel_drops = 0;           // records the kernel could not deliver (ring buffer full)
  uint64_t map_full = 0;               // aggregation samples lost to a full BPF map
  uint64_t decode_errors = 0;          // records userspace could not decode
  std::vector<ProgramStats> programs;  // the sensor's BPF programs
  uint64_t unattributed = 0;           // cgroups whose claimed unit the manager contradicted
  std::string mode;                    // how its probes run now, e.g. "standby: ..."
};

class Sensor {
 public:
  virtual ~Sensor() = default;
  virtual const char* name() const = 0;
  // Probes the kernel features it needs, loads and attaches. An error disables this sensor
  // only; its message says what is missing.
  virtual Status start() = 0;
  // File descriptors that become readable when kernel records are waiting (may be empty).
  virtual std::vector<int> fds() const { return {}; }
  // Drains waiting kernel records into `emit`.
  virtual void drain(const EventSink& emit) { (void)emit; }
  // Periodic sampling, every SensorConfig::sample_interval_ns.
  virtual void tick(uint64_t now_ns, const EventSink& emit) {
    (void)now_ns;
    (void)emit;
  }
  // Every event any sensor emitted, before anyone sees it: a sensor that knows who owns what
  // (the units sensor, from the manager's own unit -> ControlGroup map) names or un-names the
  // unit of each cgroup the event carries.
  virtual void attribute(Event& e) { (void)e; }
  // Every event any sensor emitted, so one sensor can link its facts to another's (the units
  // sensor ties a unit's failure to the OOM kill of its process).
  virtual void observe(const Event& e) { (void)e; }
  // Nothing this sensor samples is near a threshold: the hub may tick it less often
  // (SensorConfig::idle_interval_ns). A sensor whose samples approach one says false.
  virtual bool calm() const { return true; }
  virtual SensorStats stats() const = 0;
};

using SensorFactory = std::function<std::unique_ptr<Sensor>(const SensorContext&)>;

class SensorRegistry {
 public:
  static SensorRegistry& instance();
  bool add(const std::string& name, SensorFactory f);
  const std::map<std::string, SensorFactory>& all() const { return factories_; }

 private:
  std::map<std::string, SensorFactory> factories_;
};

#define MEND_REGISTER_SENSOR(name, factory)         \
  static const bool mend_sensor_registered_##name = \
      ::mend::SensorRegistry::instance().add(#name, factory)

}  // namespace mend
