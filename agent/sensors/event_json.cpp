#include "event_json.h"
#include "mend/text.h"

#include <array>
#include <cmath>
#include <limits>

namespace mend {

using nlohmann::json;

namespace {

constexpr std::array<std::string_view, 6> kTypeNames = {"oom_kill", "fs_enospc",  "fs_fill",
                                                        "io_stall", "unit_state", "psi"};

json payload_json(const OomKill& p) {
  return {{"pid", p.pid},
          {"comm", p.comm},
          {"cgroup", p.cgroup},
          {"dfl_cgroup", p.dfl_cgroup},
          {"unit", p.unit},
          {"constraint", p.constraint},
          {"rss_bytes", p.rss_bytes},
          {"oom_score_adj", p.oom_score_adj},
          {"memcg_limit_bytes", p.memcg_limit_bytes},
          {"trigger_pid", p.trigger_pid},
          {"trigger_comm", p.trigger_comm}};
}

json payload_json(const FsEnospc& p) {
  return {{"pid", p.pid},     {"comm", p.comm},     {"cgroup", p.cgroup},   {"unit", p.unit},
          {"mount", p.mount}, {"device", p.device}, {"syscall", p.syscall}, {"errno", p.err},
          {"path", p.path},   {"folded", p.folded}};
}

json payload_json(const FsFill& p) {
  json writers = json::array();
  for (const auto& w : p.top_writers)
    writers.push_back({{"unit", w.unit}, {"cgroup", w.cgroup}, {"bytes", w.bytes}});
  return {{"mount", p.mount},
          {"device", p.device},
          {"fstype", p.fstype},
          {"used_pct", p.used_pct},
          {"avail_bytes", p.avail_bytes},
          {"size_bytes", p.size_bytes},
          {"inode_used_pct", p.inode_used_pct},
          {"fill_rate_bps", p.fill_rate_bps},
          {"eta_full_s", p.eta_full_s},
          {"state", p.state},
          {"reason", p.reason},
          {"top_writers", writers}};
}

json payload_json(const IoStall& p) {
  json units = json::array();
  for (const auto& u : p.top_units)
    units.push_back({{"unit", u.unit},
                     {"cgroup", u.cgroup},
                     {"ios", u.ios},
                     {"bytes", u.bytes},
                     {"slow_ios", u.slow_ios}});
  return {{"device", p.device}, {"name", p.name},
          {"mount", p.mount},   {"mounts", p.mounts},
          {"p50_us", p.p50_us}, {"p99_us", p.p99_us},
          {"max_us", p.max_us}, {"oldest_inflight_us", p.oldest_inflight_us},
          {"ios", p.ios},       {"psi_io_some_avg10", p.psi_io_some_avg10},
          {"state", p.state},   {"top_units", units}};
}

json payload_json(const UnitState& p) {
  return {{"unit", p.unit},
          {"cgroup", p.cgroup},
          {"prev_active_state", p.prev_active_state},
          {"active_state", p.active_state},
          {"sub_state", p.sub_state},
          {"result", p.result},
          {"n_restarts", p.n_restarts},
          {"pid", p.pid},
          {"pattern", p.pattern},
          {"exec_main_code", p.exec_main_code},
          {"exec_main_status", p.exec_main_status},
          {"memory_current", p.memory_current},
          {"oom_pid", p.oom_pid},
          {"state_change_ns", p.state_change_ns},
          {"requires", p.requires_},
          {"binds_to", p.binds_to}};
}

json payload_json(const Psi& p) {
  return {{"resource", p.resource},
          {"some_avg10", p.some_avg10},
          {"full_avg10", p.full_avg10},
          {"state", p.state}};
}

// Reads optional field `key` into `out`, failing on a present field of the wrong type.
class Reader {
 public:
  explicit Reader(const json& j) : j_(j) {}

  template <class T>
  void get(const char* key, T& out) {
    if (!err_.empty())
      return;
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null())
      return;
    try {
      if constexpr (std::is_same_v<T, std::string>) {
        if (!it->is_string())
          throw std::invalid_argument("expected a string");
      } else if constexpr (std::is_same_v<T, bool>) {
        if (!it->is_boolean())
          throw std::invalid_argument("expected true or false");
      } else if constexpr (std::is_integral_v<T>) {
        // A number outside the field's range is an error, not a conversion with undefined
        // behaviour (found by fuzz_event_json: 4.6e55 in a uint64 field).
        using L = std::numeric_limits<T>;
        if (it->is_number_unsigned()) {
          const auto v = it->template get<uint64_t>();
          if (v > static_cast<uint64_t>(L::max()))
            throw std::out_of_range("out of range");
          out = static_cast<T>(v);
        } else if (it->is_number_integer()) {
          const auto v = it->template get<int64_t>();
          if ((std::is_unsigned_v<T> && v < 0) ||
              (std::is_signed_v<T> &&
               (v < static_cast<int64_t>(L::min()) || v > static_cast<int64_t>(L::max()))))
            throw std::out_of_range("out of range");
          out = static_cast<T>(v);
        } else if (it->is_number_float()) {
          const double d = it->template get<double>();
          if (!(d >= static_cast<double>(L::min()) && d < static_cast<double>(L::max())) ||
              d != std::floor(d))
            throw std::out_of_range("not a whole number in range");
          out = static_cast<T>(d);
        } else {
          throw std::invalid_argument("expected a number");
        }
        return;
      } else if constexpr (std::is_floating_point_v<T>) {
        if (!it->is_number())
          throw std::invalid_argument("expected a number");
      }
      out = it->get<T>();
    } catch (const std::exception& e) {
      err_ = std::string("field \"") + key + "\": " + e.what();
    }
  }

  template <class T, class F>
  void list(const char* key, std::vector<T>& out, F&& each) {
    if (!err_.empty())
      return;
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null())
      return;
    if (!it->is_array()) {
      err_ = std::string("field \"") + key + "\": expected an array";
      return;
    }
    for (const auto& el : *it) {
      if (!el.is_object()) {
        err_ = std::string("field \"") + key + "\": expected an array of objects";
        return;
      }
      Reader r(el);
      T v;
      each(r, v);
      if (!r.err_.empty()) {
        err_ = std::string("field \"") + key + "\": " + r.err_;
        return;
      }
      out.push_back(std::move(v));
    }
  }

  const std::string& error() const { return err_; }

 private:
  const json& j_;
  std::string err_;
};

void read(Reader& r, OomKill& p) {
  r.get("pid", p.pid);
  r.get("comm", p.comm);
  r.get("cgroup", p.cgroup);
  r.get("dfl_cgroup", p.dfl_cgroup);
  r.get("unit", p.unit);
  r.get("constraint", p.constraint);
  r.get("rss_bytes", p.rss_bytes);
  r.get("oom_score_adj", p.oom_score_adj);
  r.get("memcg_limit_bytes", p.memcg_limit_bytes);
  r.get("trigger_pid", p.trigger_pid);
  r.get("trigger_comm", p.trigger_comm);
}

void read(Reader& r, FsEnospc& p) {
  r.get("pid", p.pid);
  r.get("comm", p.comm);
  r.get("cgroup", p.cgroup);
  r.get("unit", p.unit);
  r.get("mount", p.mount);
  r.get("device", p.device);
  r.get("syscall", p.syscall);
  r.get("errno", p.err);
  r.get("path", p.path);
  r.get("folded", p.folded);
}

void read(Reader& r, FsFill& p) {
  r.get("mount", p.mount);
  r.get("device", p.device);
  r.get("fstype", p.fstype);
  r.get("used_pct", p.used_pct);
  r.get("avail_bytes", p.avail_bytes);
  r.get("size_bytes", p.size_bytes);
  r.get("inode_used_pct", p.inode_used_pct);
  r.get("fill_rate_bps", p.fill_rate_bps);
  r.get("eta_full_s", p.eta_full_s);
  r.get("state", p.state);
  r.get("reason", p.reason);
  r.list("top_writers", p.top_writers, [](Reader& w, Writer& v) {
    w.get("unit", v.unit);
    w.get("cgroup", v.cgroup);
    w.get("bytes", v.bytes);
  });
}

void read(Reader& r, IoStall& p) {
  r.get("device", p.device);
  r.get("name", p.name);
  r.get("mount", p.mount);
  r.get("mounts", p.mounts);
  r.get("p50_us", p.p50_us);
  r.get("p99_us", p.p99_us);
  r.get("max_us", p.max_us);
  r.get("oldest_inflight_us", p.oldest_inflight_us);
  r.get("ios", p.ios);
  r.get("psi_io_some_avg10", p.psi_io_some_avg10);
  r.get("state", p.state);
  r.list("top_units", p.top_units, [](Reader& u, IoUnit& v) {
    u.get("unit", v.unit);
    u.get("cgroup", v.cgroup);
    u.get("ios", v.ios);
    u.get("bytes", v.bytes);
    u.get("slow_ios", v.slow_ios);
  });
}

void read(Reader& r, UnitState& p) {
  r.get("unit", p.unit);
  r.get("cgroup", p.cgroup);
  r.get("prev_active_state", p.prev_active_state);
  r.get("active_state", p.active_state);
  r.get("sub_state", p.sub_state);
  r.get("result", p.result);
  r.get("n_restarts", p.n_restarts);
  r.get("pid", p.pid);
  r.get("pattern", p.pattern);
  r.get("exec_main_code", p.exec_main_code);
  r.get("exec_main_status", p.exec_main_status);
  r.get("memory_current", p.memory_current);
  r.get("oom_pid", p.oom_pid);
  r.get("state_change_ns", p.state_change_ns);
  r.get("requires", p.requires_);
  r.get("binds_to", p.binds_to);
}

void read(Reader& r, Psi& p) {
  r.get("resource", p.resource);
  r.get("some_avg10", p.some_avg10);
  r.get("full_avg10", p.full_avg10);
  r.get("state", p.state);
}

template <class P>
Result<Event> decode(const json& j, uint64_t ts) {
  Reader r(j);
  P p;
  read(r, p);
  if (!r.error().empty())
    return Error{r.error()};
  return Event{ts, std::move(p)};
}

}  // namespace

std::string_view to_string(EventType t) {
  return kTypeNames.at(static_cast<size_t>(t));
}

json to_json(const Event& e) {
  json j = std::visit([](const auto& p) { return payload_json(p); }, e.payload);
  j["type"] = to_string(e.type());
  j["ts_ns"] = e.ts_ns;
  return j;
}

std::string to_json_line(const Event& e) {
  // type and ts_ns first, for people reading a trace; the rest in a stable order.
  nlohmann::ordered_json o;
  o["type"] = to_string(e.type());
  o["ts_ns"] = e.ts_ns;
  const json fields = to_json(e);
  for (auto it = fields.begin(); it != fields.end(); ++it)
    if (it.key() != "type" && it.key() != "ts_ns")
      o[it.key()] = *it;
  return dump_json(o);
}

Result<Event> event_from_json(const json& j) {
  if (!j.is_object())
    return Error{"expected a JSON object"};
  auto t = j.find("type");
  if (t == j.end() || !t->is_string())
    return Error{"missing string field \"type\""};
  auto ts = j.find("ts_ns");
  if (ts == j.end() || !ts->is_number_unsigned())
    return Error{"missing non-negative integer field \"ts_ns\""};
  const auto type = t->get<std::string>();
  const uint64_t when = ts->get<uint64_t>();
  if (type == "oom_kill")
    return decode<OomKill>(j, when);
  if (type == "fs_enospc")
    return decode<FsEnospc>(j, when);
  if (type == "fs_fill")
    return decode<FsFill>(j, when);
  if (type == "io_stall")
    return decode<IoStall>(j, when);
  if (type == "unit_state")
    return decode<UnitState>(j, when);
  if (type == "psi")
    return decode<Psi>(j, when);
  return Error{"unknown event type \"" + type + "\""};
}

Result<Event> event_from_json_line(const std::string& line) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return Error{"not valid JSON"};
  return event_from_json(j);
}

nlohmann::json stats_json(const std::vector<SensorStats>& stats) {
  nlohmann::json sensors = nlohmann::json::array();
  for (const auto& s : stats)
    sensors.push_back({{"sensor", s.name},
                       {"enabled", s.enabled},
                       {"disabled_reason", s.disabled_reason},
                       {"events", s.events},
                       {"kernel_drops", s.kernel_drops},
                       {"map_full", s.map_full},
                       {"decode_errors", s.decode_errors},
                       {"unattributed", s.unattributed},
                       {"mode", s.mode}});
  return sensors;
}

}  // namespace mend
