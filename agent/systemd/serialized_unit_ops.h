// UnitOps for more than one thread: one sd-bus connection is not thread-safe, and a remedy step
// running in the background (ExecutorConfig::background_steps) shares mendd's operations
// connection with the event loop (the recovery probe, draining the connection's signals). Every
// call holds one mutex; the loop's own use of the connection goes through try_lock().
#pragma once

#include <mutex>

#include "unit_ops.h"

namespace mend {

class SerializedUnitOps final : public UnitOps {
 public:
  explicit SerializedUnitOps(UnitOps& inner) : inner_(inner) {}

  Result<std::string> start(const std::string& u, uint64_t t) override {
    std::lock_guard<std::mutex> l(mu_);
    return inner_.start(u, t);
  }
  Result<std::string> stop(const std::string& u, uint64_t t) override {
    std::lock_guard<std::mutex> l(mu_);
    return inner_.stop(u, t);
  }
  Result<std::string> restart(const std::string& u, uint64_t t) override {
    std::lock_guard<std::mutex> l(mu_);
    return inner_.restart(u, t);
  }
  Result<std::string> try_restart(const std::string& u, uint64_t t) override {
    std::lock_guard<std::mutex> l(mu_);
    return inner_.try_restart(u, t);
  }
  Result<std::string> reload(const std::string& u, uint64_t t) override {
    std::lock_guard<std::mutex> l(mu_);
    return inner_.reload(u, t);
  }
  Result<std::string> unit_of_pid(int pid) override {
    std::lock_guard<std::mutex> l(mu_);
    return inner_.unit_of_pid(pid);
  }
  Status reset_failed(const std::string& u) override {
    std::lock_guard<std::mutex> l(mu_);
    return inner_.reset_failed(u);
  }
  Result<std::string> active_state(const std::string& u) override {
    std::lock_guard<std::mutex> l(mu_);
    return inner_.active_state(u);
  }
  Result<std::string> try_active_state(const std::string& u) override {
    std::unique_lock<std::mutex> l(mu_, std::try_to_lock);
    if (!l.owns_lock())
      return Error{"the bus connection is busy with a remedy step", EAGAIN};
    return inner_.active_state(u);
  }
  Result<uint64_t> active_since_us(const std::string& u) override {
    std::lock_guard<std::mutex> l(mu_);
    return inner_.active_since_us(u);
  }
  Result<PropertyValue> get_property(const std::string& u, const std::string& n) override {
    std::lock_guard<std::mutex> l(mu_);
    return inner_.get_property(u, n);
  }
  Status set_property(const std::string& u, const std::string& n, const PropertyValue& v) override {
    std::lock_guard<std::mutex> l(mu_);
    return inner_.set_property(u, n, v);
  }

  // The connection for the caller alone, or not owned when a step is using it right now (a
  // restart waiting for its job): the loop then skips its housekeeping for this tick.
  std::unique_lock<std::mutex> try_lock() {
    return std::unique_lock<std::mutex>(mu_, std::try_to_lock);
  }

 private:
  UnitOps& inner_;
  std::mutex mu_;
};

}  // namespace mend
