#include "config.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "units.h"

namespace mend {

namespace {

struct ConfigError {
  std::string text;
};

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const YAML::Node& n, const std::string& what) const {
    auto m = n.Mark();
    std::ostringstream o;
    o << file_ << ":" << (m.line + 1) << ":" << (m.column + 1) << ": " << what;
    throw ConfigError{o.str()};
  }

  // Runs `handlers[key]` for each key of mapping `n`; any other key is an error.
  void mapping(const YAML::Node& n, const std::string& where,
               const std::map<std::string, std::function<void(const YAML::Node&)>>& handlers) {
    if (n.IsNull())
      return;
    if (!n.IsMap())
      fail(n, where + ": expected a mapping");
    for (const auto& kv : n) {
      auto key = kv.first.as<std::string>();
      auto h = handlers.find(key);
      if (h == handlers.end()) {
        std::string known;
        for (const auto& [k, f] : handlers)
          known += (known.empty() ? "" : ", ") + k;
        fail(kv.first, "unknown key \"" + (where.empty() ? key : where + "." + key) +
                           "\" (known: " + known + ")");
      }
      h->second(kv.second);
    }
  }

  std::string scalar(const YAML::Node& n, const std::string& what) const {
    if (!n.IsScalar())
      fail(n, what + ": expected a scalar");
    return n.Scalar();
  }

  uint64_t duration(const YAML::Node& n, const std::string& what, uint64_t min, uint64_t max) {
    auto r = parse_duration_ns(scalar(n, what));
    if (!r.ok())
      fail(n, what + ": " + r.error().message);
    if (*r < min || *r > max)
      fail(n, what + ": " + n.Scalar() + " is out of range");
    return *r;
  }

  uint64_t size(const YAML::Node& n, const std::string& what) {
    auto r = parse_size_bytes(scalar(n, what));
    if (!r.ok())
      fail(n, what + ": " + r.error().message);
    return *r;
  }

  double percent(const YAML::Node& n, const std::string& what) {
    auto r = parse_percent(scalar(n, what));
    if (!r.ok())
      fail(n, what + ": " + r.error().message);
    return *r;
  }

  double number(const YAML::Node& n, const std::string& what, double min, double max) {
    double v = 0;
    try {
      v = std::stod(scalar(n, what));
    } catch (const std::exception&) {
      fail(n, what + ": expected a number");
    }
    if (v < min || v > max)
      fail(n, what + ": " + n.Scalar() + " is out of range [" + std::to_string(min) + ", " +
                  std::to_string(max) + "]");
    return v;
  }

  bool boolean(const YAML::Node& n, const std::string& what) {
    auto s = scalar(n, what);
    if (s == "true" || s == "yes" || s == "on")
      return true;
    if (s == "false" || s == "no" || s == "off")
      return false;
    fail(n, what + ": expected true or false");
  }

  std::vector<std::string> strings(const YAML::Node& n, const std::string& what) {
    if (!n.IsSequence())
      fail(n, what + ": expected a list");
    std::vector<std::string> out;
    for (const auto& e : n)
      out.push_back(scalar(e, what));
    return out;
  }

  void sensors(const YAML::Node& n, AgentConfig& c) {
    SensorConfig& s = c.sensors;
    mapping(
        n, "sensors",
        {{"enabled",
          [&](const YAML::Node& v) {
            c.enabled_sensors = strings(v, "sensors.enabled");
            for (const auto& name : c.enabled_sensors)
              if (name != "oom" && name != "io" && name != "fs" && name != "psi" && name != "units")
                fail(v, "sensors.enabled: unknown sensor \"" + name +
                            "\" (known: oom, io, fs, psi, units)");
          }},
         {"sample_interval",
          [&](const YAML::Node& v) {
            s.sample_interval_ns =
                duration(v, "sensors.sample_interval", 10000000ull, 60000000000ull);
          }},
         {"io", [&](const YAML::Node& v) { io(v, s.io); }},
         {"fs", [&](const YAML::Node& v) { fs(v, s.fs); }},
         {"psi", [&](const YAML::Node& v) { psi(v, s.psi); }}});
  }

  void io(const YAML::Node& n, IoSensorConfig& c) {
    const uint64_t ms = 1000000ull, hour = 3600000000000ull;
    mapping(n, "sensors.io",
            {{"latency_threshold",
              [&](const YAML::Node& v) {
                c.latency_threshold_us =
                    duration(v, "sensors.io.latency_threshold", 100000ull, hour) / 1000;
              }},
             {"window",
              [&](const YAML::Node& v) {
                c.window_ns = duration(v, "sensors.io.window", 10 * ms, hour);
              }},
             {"duration",
              [&](const YAML::Node& v) {
                c.duration_ns = duration(v, "sensors.io.duration", 0, hour);
              }},
             {"clear_after",
              [&](const YAML::Node& v) {
                c.clear_after_ns = duration(v, "sensors.io.clear_after", 0, hour);
              }},
             {"clear_ratio",
              [&](const YAML::Node& v) {
                c.clear_ratio = number(v, "sensors.io.clear_ratio", 0.1, 1);
              }},
             {"min_ios",
              [&](const YAML::Node& v) {
                c.min_ios = static_cast<uint64_t>(number(v, "sensors.io.min_ios", 1, 1e9));
              }},
             {"reminder",
              [&](const YAML::Node& v) {
                c.reminder_ns = duration(v, "sensors.io.reminder", 0, 24 * hour);
              }},
             {"top_units", [&](const YAML::Node& v) {
                c.top_units = static_cast<uint32_t>(number(v, "sensors.io.top_units", 1, 100));
              }}});
  }

  void fs(const YAML::Node& n, FsSensorConfig& c) {
    const uint64_t hour = 3600000000000ull;
    mapping(
        n, "sensors.fs",
        {{"used_threshold",
          [&](const YAML::Node& v) { c.used_pct = percent(v, "sensors.fs.used_threshold"); }},
         {"inode_threshold",
          [&](const YAML::Node& v) {
            c.inode_used_pct = percent(v, "sensors.fs.inode_threshold");
          }},
         {"hysteresis",
          [&](const YAML::Node& v) { c.hysteresis_pct = percent(v, "sensors.fs.hysteresis"); }},
         {"horizon",
          [&](const YAML::Node& v) {
            c.horizon_ns = duration(v, "sensors.fs.horizon", 0, 30 * 24 * hour);
          }},
         {"rate_window",
          [&](const YAML::Node& v) {
            c.rate_window_ns = duration(v, "sensors.fs.rate_window", 1000000000ull, hour);
          }},
         {"min_rate",
          [&](const YAML::Node& v) { c.min_rate_bps = size(v, "sensors.fs.min_rate"); }},
         {"reminder",
          [&](const YAML::Node& v) {
            c.reminder_ns = duration(v, "sensors.fs.reminder", 0, 24 * hour);
          }},
         {"enospc_fold",
          [&](const YAML::Node& v) {
            c.enospc_fold_ns = duration(v, "sensors.fs.enospc_fold", 0, 60000000000ull);
          }},
         {"top_writers",
          [&](const YAML::Node& v) {
            c.top_writers = static_cast<uint32_t>(number(v, "sensors.fs.top_writers", 1, 100));
          }},
         {"count_writers",
          [&](const YAML::Node& v) { c.count_writers = boolean(v, "sensors.fs.count_writers"); }},
         {"fstypes",
          [&](const YAML::Node& v) {
            auto l = strings(v, "sensors.fs.fstypes");
            c.fstypes = std::set<std::string>(l.begin(), l.end());
          }},
         {"exclude_mounts", [&](const YAML::Node& v) {
            c.exclude_mounts = strings(v, "sensors.fs.exclude_mounts");
          }}});
    if (c.hysteresis_pct >= c.used_pct)
      fail(n, "sensors.fs.hysteresis must be smaller than used_threshold");
  }

  void psi(const YAML::Node& n, PsiSensorConfig& c) {
    mapping(
        n, "sensors.psi",
        {{"cpu",
          [&](const YAML::Node& v) { c.cpu_some_avg10 = number(v, "sensors.psi.cpu", 0, 100); }},
         {"memory",
          [&](const YAML::Node& v) {
            c.memory_some_avg10 = number(v, "sensors.psi.memory", 0, 100);
          }},
         {"io",
          [&](const YAML::Node& v) { c.io_some_avg10 = number(v, "sensors.psi.io", 0, 100); }},
         {"hysteresis", [&](const YAML::Node& v) {
            c.hysteresis = number(v, "sensors.psi.hysteresis", 0, 100);
          }}});
  }

  AgentConfig load(const std::string& text) {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::ParserException& e) {
      std::ostringstream o;
      o << file_ << ":" << (e.mark.line + 1) << ":" << (e.mark.column + 1) << ": " << e.msg;
      throw ConfigError{o.str()};
    }
    AgentConfig c;
    if (!root || root.IsNull())
      return c;
    mapping(root, "", {{"sensors", [&](const YAML::Node& v) { sensors(v, c); }}});
    return c;
  }

 private:
  std::string file_;
};

}  // namespace

Result<AgentConfig> parse_agent_config(const std::string& text, const std::string& name) {
  try {
    return Loader(name).load(text);
  } catch (const ConfigError& e) {
    return Error{e.text};
  } catch (const YAML::Exception& e) {
    return Error{name + ":" + std::to_string(e.mark.line + 1) + ":" +
                 std::to_string(e.mark.column + 1) + ": " + e.msg};
  }
}

Result<AgentConfig> load_agent_config(const std::string& path) {
  std::ifstream f(path);
  if (!f)
    return Error::from_errno("Failed to open " + path, errno);
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_agent_config(ss.str(), path);
}

}  // namespace mend
