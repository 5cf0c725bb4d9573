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

}  // namespace mend
