// throttle_io: runtime I/O limits (bandwidth and/or IOPS, read and/or write) on a noisy
// neighbour unit for the one device whose latency it drives up. Never loosens a limit already
// tighter; rollback restores each property's exact previous device list.
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <fstream>

#include "../../systemd/unit_ops.h"
#include "../action.h"
#include "mend/incident.h"
#include "mend/text.h"

namespace mend {

namespace {

struct Limit {
  const char* param;
  const char* property;
};
constexpr Limit kLimits[] = {{"read_bandwidth", "IOReadBandwidthMax"},
                             {"write_bandwidth", "IOWriteBandwidthMax"},
                             {"read_iops", "IOReadIOPSMax"},
                             {"write_iops", "IOWriteIOPSMax"}};

// "major:minor" -> "/dev/<name>" from sysfs, checked to be that block device.
Result<std::string> device_node(const std::string& majmin, const std::string& sysfs) {
  std::ifstream f(sysfs + "/dev/block/" + majmin + "/uevent");
  if (!f)
    return Error{"no block device " + majmin + " in " + sysfs + "/dev/block", ENODEV};
  std::string line, name;
  while (std::getline(f, line))
    if (line.rfind("DEVNAME=", 0) == 0)
      name = line.substr(8);
  if (name.empty() || name.find("..") != std::string::npos)
    return Error{"block device " + majmin + " has no DEVNAME", ENODEV};
  const std::string node = "/dev/" + name;
  struct stat st {};
  if (stat(node.c_str(), &st) != 0 || !S_ISBLK(st.st_mode) ||
      std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev)) != majmin)
    return Error{node + " is not block device " + majmin, ENODEV};
  return node;
}

class ThrottleIoAction final : public Action {
 public:
  ThrottleIoAction(const Params& p, const ActionContext& ctx)
      : ctx_(ctx), device_(p.str("device")) {
    for (const auto& l : kLimits)
      if (const int64_t v = p.integer(l.param); v > 0)
        wanted_[l.property] = static_cast<uint64_t>(v);
  }

  static std::unique_ptr<Action> create(const Params& p, const ActionContext& ctx) {
    return std::make_unique<ThrottleIoAction>(p, ctx);
  }

  std::string describe() const override {
    std::string limits;
    for (const auto& [prop, v] : wanted_)
      limits += (limits.empty() ? "" : ", ") + prop + "=" + std::to_string(v);
    return "limit I/O of " + ctx_.unit + " on " + (node_.empty() ? device_or_incident() : node_) +
           " to " + limits + " (runtime)";
  }

  Status check() override {
    if (ctx_.unit.empty())
      return Error{"throttle_io: the incident names no unit to throttle"};
    const std::string dev = device_or_incident();
    if (dev.empty())
      return Error{"throttle_io: the incident names no device"};
    auto node = device_node(dev, ctx_.sysfs);
    if (!node.ok())
      return node.error();
    node_ = *node;
    previous_.clear();
    planned_.clear();
    for (const auto& [prop, v] : wanted_) {
      auto cur = ctx_.units->get_property(ctx_.unit, prop);
      if (!cur.ok())
        return cur.error();
      const auto& list = std::get<DeviceLimits>(*cur);
      previous_[prop] = list;
      DeviceLimits next = list;
      bool found = false;
      for (auto& [path, val] : next)
        if (path == node_) {
          val = std::min(val, v);  // never loosen
          found = true;
        }
      if (!found)
        next.emplace_back(node_, v);
      planned_[prop] = next;
    }
    return {};
  }

  Status apply() override {
    if (planned_.empty())
      if (auto st = check(); !st.ok())
        return st;
    for (const auto& [prop, list] : planned_)
      if (auto st = ctx_.units->set_property(ctx_.unit, prop, list); !st.ok())
        return st;
    return {};
  }

  Result<bool> verify() override {
    for (const auto& [prop, list] : planned_) {
      auto cur = ctx_.units->get_property(ctx_.unit, prop);
      if (!cur.ok())
        return cur.error();
      if (std::get<DeviceLimits>(*cur) != list)
        return false;
    }
    return true;
  }

  Status rollback() override {
    Status first;
    for (const auto& [prop, list] : previous_)
      if (auto st = ctx_.units->set_property(ctx_.unit, prop, list); !st.ok() && first.ok())
        first = st;
    return first;
  }

  bool reversible() const override { return true; }

  nlohmann::json undo_state() const override {
    nlohmann::json j = {{"device", node_}, {"previous", nlohmann::json::object()}};
    for (const auto& [prop, list] : previous_) {
      auto& a = j["previous"][prop] = nlohmann::json::array();
      for (const auto& [path, v] : list)
        a.push_back({path, v});
    }
    return j;
  }

  Status restore(const nlohmann::json& u) override {
    try {
      node_ = u.at("device").get<std::string>();
      if (node_.empty())
        throw std::invalid_argument("no device");
      previous_.clear();
      for (auto it = u.at("previous").begin(); it != u.at("previous").end(); ++it) {
        DeviceLimits l;
        for (const auto& e : *it)
          l.emplace_back(e.at(0).get<std::string>(), json_uint(e.at(1), "limit"));
        previous_[it.key()] = l;
      }
    } catch (const std::exception& e) {
      return Error{std::string("throttle_io: bad undo record: ") + e.what()};
    }
    return {};
  }

 private:
  std::string device_or_incident() const {
    if (!device_.empty() || !ctx_.incident)
      return device_;
    auto it = ctx_.incident->root_cause.entities.find("device");
    return it == ctx_.incident->root_cause.entities.end() ? "" : it->second;
  }

  ActionContext ctx_;
  std::string device_;
  std::map<std::string, uint64_t> wanted_;
  std::string node_;
  std::map<std::string, DeviceLimits> previous_, planned_;
};

ActionSpec spec() {
  ActionSpec s;
  s.name = "throttle_io";
  s.summary = "Limit a noisy neighbour's I/O on the stalled device (runtime, exact rollback)";
  s.reversible = true;
  const double M = 1 << 20;
  s.params = {
      {"device",
       ParamType::String,
       false,
       0,
       0,
       std::string(),
       {},
       "major:minor; default: the device the root cause names"},
      {"read_bandwidth", ParamType::Size, false, 64 * 1024, 100e3 * M, int64_t{0}, {}, "bytes/s"},
      {"write_bandwidth", ParamType::Size, false, 64 * 1024, 100e3 * M, int64_t{0}, {}, "bytes/s"},
      {"read_iops", ParamType::Int, false, 10, 1e7, int64_t{0}, {}, "I/O operations/s"},
      {"write_iops", ParamType::Int, false, 10, 1e7, int64_t{0}, {}, "I/O operations/s"}};
  s.validate = [](const std::map<std::string, ParamValue>& p, const PolicyIR&) -> std::string {
    for (const auto& l : kLimits)
      if (std::get<int64_t>(p.at(l.param)) > 0)
        return "";
    return "set at least one of read_bandwidth, write_bandwidth, read_iops, write_iops";
  };
  return s;
}

}  // namespace

MEND_REGISTER_ACTION(throttle_io, spec(), ThrottleIoAction::create);

}  // namespace mend
