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
    auto r = parse_number(scalar(n, what));
    if (!r.ok())
      fail(n, what + ": " + r.error().message);
    const double v = *r;
    if (v < min || v > max)
      fail(n, what + ": " + n.Scalar() + " is out of range [" + std::to_string(min) + ", " +
                  std::to_string(max) + "]");
    return v;
  }

  bool boolean(const YAML::Node& n, const std::string& what) {
    auto r = parse_bool(scalar(n, what));
    if (!r.ok())
      fail(n, what + ": " + r.error().message);
    return *r;
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
         {"idle_interval",
          [&](const YAML::Node& v) {
            s.idle_interval_ns = duration(v, "sensors.idle_interval", 0, 10000000000ull);
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
         {"enospc_probe",
          [&](const YAML::Node& v) {
            c.enospc_probe = scalar(v, "sensors.fs.enospc_probe");
            if (c.enospc_probe != "auto" && c.enospc_probe != "always")
              fail(v, "sensors.fs.enospc_probe: expected auto or always");
          }},
         {"arm_threshold",
          [&](const YAML::Node& v) { c.arm_pct = percent(v, "sensors.fs.arm_threshold"); }},
         {"disarm_after",
          [&](const YAML::Node& v) {
            c.disarm_after_ns = duration(v, "sensors.fs.disarm_after", 0, 24 * hour);
          }},
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

  void executor(const YAML::Node& n, ExecutorSettings& e) {
    const uint64_t s = 1000000000ull, hour = 3600 * s;
    mapping(
        n, "executor",
        {{"dry_run", [&](const YAML::Node& v) { e.dry_run = boolean(v, "executor.dry_run"); }},
         {"max_actions_per_hour",
          [&](const YAML::Node& v) {
            e.max_actions_per_hour =
                static_cast<uint32_t>(number(v, "executor.max_actions_per_hour", 0, 1000));
          }},
         {"max_actions_per_unit_per_hour",
          [&](const YAML::Node& v) {
            e.max_actions_per_unit_per_hour =
                static_cast<uint32_t>(number(v, "executor.max_actions_per_unit_per_hour", 1, 1000));
          }},
         {"max_concurrent",
          [&](const YAML::Node& v) {
            e.max_concurrent = static_cast<uint32_t>(number(v, "executor.max_concurrent", 1, 16));
          }},
         {"protected_units",
          [&](const YAML::Node& v) { e.protected_units = strings(v, "executor.protected_units"); }},
         {"pause_file",
          [&](const YAML::Node& v) {
            e.pause_file = scalar(v, "executor.pause_file");
            if (e.pause_file.empty() || e.pause_file[0] != '/')
              fail(v, "executor.pause_file: expected an absolute path");
          }},
         {"children",
          [&](const YAML::Node& v) {
            e.children = scalar(v, "executor.children");
            if (e.children != "auto" && e.children != "transient" && e.children != "inline")
              fail(v, "executor.children: expected auto, transient or inline");
          }},
         {"approval_timeout",
          [&](const YAML::Node& v) {
            e.approval_timeout_ns = duration(v, "executor.approval_timeout", 10 * s, 7 * 24 * hour);
          }},
         {"shutdown_grace",
          [&](const YAML::Node& v) {
            e.shutdown_grace_ns = duration(v, "executor.shutdown_grace", 0, 300 * s);
          }},
         {"notify", [&](const YAML::Node& v) {
            mapping(v, "executor.notify",
                    {{"command",
                      [&](const YAML::Node& c) {
                        e.notify_command = strings(c, "executor.notify.command");
                        if (e.notify_command.empty() || e.notify_command[0].empty() ||
                            e.notify_command[0][0] != '/')
                          fail(c,
                               "executor.notify.command: argv[0] must be an absolute path "
                               "(no shell)");
                      }},
                     {"user",
                      [&](const YAML::Node& c) {
                        e.notify_user = scalar(c, "executor.notify.user");
                        for (char ch : e.notify_user)
                          if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                                ch == '-'))
                            fail(c, "executor.notify.user: a user name (a-z, 0-9, _, -)");
                      }},
                     {"timeout", [&](const YAML::Node& c) {
                        e.notify_timeout_ns =
                            duration(c, "executor.notify.timeout", 1 * s, 300 * s);
                      }}});
          }}});
  }

  void correlation(const YAML::Node& n, CorrelationSettings& c) {
    const uint64_t s = 1000000000ull, hour = 3600 * s;
    mapping(n, "correlation",
            {{"window",
              [&](const YAML::Node& v) {
                c.window_ns = duration(v, "correlation.window", 1 * s, 24 * hour);
              }},
             {"quiet",
              [&](const YAML::Node& v) {
                c.quiet_ns = duration(v, "correlation.quiet", 1 * s, 24 * hour);
              }},
             {"reorder", [&](const YAML::Node& v) {
                c.reorder_ns = duration(v, "correlation.reorder", 0, 60 * s);
              }}});
  }

  void control(const YAML::Node& n, ControlSettings& c) {
    mapping(n, "control",
            {{"socket",
              [&](const YAML::Node& v) {
                c.socket = scalar(v, "control.socket");
                if (c.socket.empty() || c.socket[0] != '/' || c.socket.size() > 100)
                  fail(v, "control.socket: expected an absolute path of at most 100 characters");
              }},
             {"group", [&](const YAML::Node& v) { c.group = scalar(v, "control.group"); }}});
  }

  void slos(const YAML::Node& n, std::vector<SloObjective>& out) {
    if (!n.IsSequence())
      fail(n, "slo: expected a list of {unit, objective, window}");
    const uint64_t day = 86400000000000ull;
    for (const auto& e : n) {
      SloObjective o;
      bool has_unit = false, has_objective = false;
      mapping(e, "slo[]",
              {{"unit",
                [&](const YAML::Node& v) {
                  o.unit = scalar(v, "slo.unit");
                  has_unit = true;
                }},
               {"objective",
                [&](const YAML::Node& v) {
                  const double pct = percent(v, "slo.objective");
                  if (pct < 50 || pct >= 100)
                    fail(v, "slo.objective: " + v.Scalar() + " is out of range [50%, 100%)");
                  o.objective = pct / 100.0;
                  has_objective = true;
                }},
               {"window", [&](const YAML::Node& v) {
                  o.window_ns = duration(v, "slo.window", 3600000000000ull, 365 * day);
                }}});
      if (!has_unit || !has_objective)
        fail(e, "slo: each entry needs unit and objective");
      for (const auto& other : out)
        if (other.unit == o.unit)
          fail(e, "slo: " + o.unit + " has two objectives");
      out.push_back(o);
    }
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
    mapping(root, "",
            {{"sensors", [&](const YAML::Node& v) { sensors(v, c); }},
             {"state_dir",
              [&](const YAML::Node& v) {
                c.state_dir = scalar(v, "state_dir");
                if (c.state_dir.empty() || c.state_dir[0] != '/')
                  fail(v, "state_dir: expected an absolute path");
              }},
             {"control", [&](const YAML::Node& v) { control(v, c.control); }},
             {"executor", [&](const YAML::Node& v) { executor(v, c.executor); }},
             {"correlation", [&](const YAML::Node& v) { correlation(v, c.correlation); }},
             {"slo", [&](const YAML::Node& v) { slos(v, c.slos); }},
             {"metrics", [&](const YAML::Node& v) {
                mapping(v, "metrics", {{"listen", [&](const YAML::Node& l) {
                                          c.metrics.listen = scalar(l, "metrics.listen");
                                          const auto colon = c.metrics.listen.rfind(':');
                                          if (colon == std::string::npos || colon == 0 ||
                                              colon + 1 == c.metrics.listen.size() ||
                                              c.metrics.listen.find_first_not_of(
                                                  "0123456789", colon + 1) != std::string::npos)
                                            fail(l,
                                                 "metrics.listen: expected HOST:PORT, e.g. "
                                                 "127.0.0.1:9464");
                                        }}});
              }}});
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
