// Runs the selected sensors: starts each (a sensor that cannot start is disabled alone, with
// one log line naming what is missing), then waits on their ring buffers and a tick timer.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sensor.h"

namespace mend {

class SensorHub {
 public:
  SensorHub(const SensorContext& ctx, std::vector<std::string> names)
      : ctx_(ctx), names_(std::move(names)) {}
  ~SensorHub();
  // Error only when a name is unknown or no sensor at all could start.
  Status start();
  // Until `stop` is set (a signal handler may set it): drains kernel records as they arrive
  // and ticks the samplers every sample interval.
  // `on_tick` runs after each tick (the watchdog keep-alive).
  Status run(const std::atomic<bool>& stop, const EventSink& sink,
             const std::function<void()>& on_tick = {});
  std::vector<SensorStats> stats() const;
  // How long the loop spent on each wake-up (reading rings, ticking, serving the control
  // socket): what a kernel record or a mendctl request may wait behind. Over the last
  // kLoopSamples wake-ups; `max_ms` since start.
  static constexpr size_t kLoopSamples = 4096;
  struct LoopStats {
    uint64_t wakeups = 0;
    double p50_ms = 0, p99_ms = 0, max_ms = 0;
  };
  LoopStats loop_stats() const;
  // Another descriptor served from the same loop (the control socket): `on_ready` runs when
  // it is readable. Call after start().
  Status watch(int fd, std::function<void()> on_ready);
  // What besides the sensors needs the fast pace (open incidents, plans in progress): while it
  // says true, or any sensor is not calm, ticks come every sample interval.
  void set_busy(std::function<bool()> busy) { busy_ = std::move(busy); }
  uint64_t tick_interval_ns() const { return interval_ns_; }

 private:
  SensorContext ctx_;
  std::vector<std::string> names_;
  std::vector<std::unique_ptr<Sensor>> sensors_;
  std::vector<SensorStats> disabled_;
  std::vector<std::function<void()>> watched_;
  int epfd_ = -1;
  int timerfd_ = -1;
  std::atomic<uint64_t> interval_ns_{0};  // read by tests from another thread
  std::function<bool()> busy_;
  Status set_interval(uint64_t ns);
  void pace();
  std::vector<uint32_t> loop_us_ = std::vector<uint32_t>(kLoopSamples, 0);
  uint64_t wakeups_ = 0;
  uint64_t loop_max_us_ = 0;
  static constexpr uint64_t kSlowNs = 100000000ull;  // a call holding the loop longer is logged
  uint64_t last_slow_log_ns_ = 0;
};

}  // namespace mend
