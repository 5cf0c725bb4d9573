// A fake systemd for unit tests of actions and the executor: properties and states in maps,
// every call recorded.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "systemd/unit_ops.h"

namespace mend {

// A fake systemd: properties and states in maps, every call recorded.
class FakeUnits : public UnitOps {
 public:
  std::map<std::string, PropertyValue> props;
  std::string state = "active";
  std::string job_result = "done";
  std::vector<std::string> calls;
  std::map<int, std::string> pid_units;               // GetUnitByPID
  std::function<void(const std::string&)> on_reload;  // the unit reopens its files
  std::function<void()> on_set;                       // before a property is set

  Result<std::string> start(const std::string& u, uint64_t) override { return job("start " + u); }
  Result<std::string> stop(const std::string& u, uint64_t) override { return job("stop " + u); }
  Result<std::string> restart(const std::string& u, uint64_t) override {
    return job("restart " + u);
  }
  Result<std::string> try_restart(const std::string& u, uint64_t) override {
    return job("try-restart " + u);
  }
  Result<std::string> reload(const std::string& u, uint64_t) override {
    if (on_reload)
      on_reload(u);
    return job("reload " + u);
  }
  Result<std::string> unit_of_pid(int pid) override {
    auto it = pid_units.find(pid);
    if (it == pid_units.end())
      return Error{"no unit has pid " + std::to_string(pid), ESRCH};
    return it->second;
  }
  Status reset_failed(const std::string& u) override {
    calls.push_back("reset-failed " + u);
    return {};
  }
  Result<std::string> active_state(const std::string&) override { return state; }
  std::map<std::string, uint64_t> active_since;  // ActiveEnterTimestampMonotonic, us
  Result<uint64_t> active_since_us(const std::string& u) override {
    auto it = active_since.find(u);
    if (it == active_since.end())
      return Error{"unknown", ENOENT};
    return it->second;
  }
  Result<PropertyValue> get_property(const std::string& u, const std::string& n) override {
    auto it = props.find(u + "/" + n);
    if (it == props.end())
      return Error{"no such property"};
    return it->second;
  }
  Status set_property(const std::string& u, const std::string& n, const PropertyValue& v) override {
    if (on_set)
      on_set();
    std::string shown;
    if (const auto* x = std::get_if<uint64_t>(&v)) {
      shown = std::to_string(*x);
    } else {
      for (const auto& [dev, val] : std::get<DeviceLimits>(v))
        shown += (shown.empty() ? "" : ",") + dev + ":" + std::to_string(val);
      shown = "[" + shown + "]";
    }
    calls.push_back("set " + u + " " + n + "=" + shown);
    props[u + "/" + n] = v;
    return {};
  }

 private:
  Result<std::string> job(const std::string& c) {
    calls.push_back(c);
    return job_result;
  }
};

}  // namespace mend
