#include <time.h>

#include "sensor.h"

namespace mend {

SensorRegistry& SensorRegistry::instance() {
  static SensorRegistry r;
  return r;
}

bool SensorRegistry::add(const std::string& name, SensorFactory f) {
  return factories_.emplace(name, std::move(f)).second;
}

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace mend
