#include "live_probe.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <vector>

#include "../correlate/rule.h"

namespace mend {

namespace {

// Past `max` entries the oldest quarter goes (a storm of transient units, each a new name).
template <class Map, class Ts>
uint64_t trim_oldest(Map& m, size_t max, Ts ts) {
  if (m.size() <= max)
    return 0;
  std::vector<uint64_t> t;
  t.reserve(m.size());
  for (const auto& [k, v] : m)
    t.push_back(ts(v));
  auto q = t.begin() + static_cast<std::ptrdiff_t>(t.size() / 4);
  std::nth_element(t.begin(), q, t.end());
  const uint64_t cut = *q;
  uint64_t n = 0;
  for (auto it = m.begin(); it != m.end();)
    if (ts(it->second) <= cut) {
      it = m.erase(it);
      ++n;
    } else {
      ++it;
    }
  return n;
}

}  // namespace

void LiveProbe::observe(const Event& e) {
  if (const auto* k = std::get_if<OomKill>(&e.payload); k && !k->unit.empty())
    last_oom_[k->unit] = std::max(last_oom_[k->unit], e.ts_ns);
  if (const auto* s = std::get_if<IoStall>(&e.payload))
    io_[s->device] = {e.ts_ns, std::max(s->p99_us, s->oldest_inflight_us), s->state == "cleared"};
  // When systemd changed the state, not when mendd read the signal: the transitions of a
  // restart mend itself ran are read after the fix was applied but happened before.
  if (const auto* u = std::get_if<UnitState>(&e.payload); u && is_unit_failure(*u)) {
    const uint64_t t = u->state_change_ns ? u->state_change_ns : e.ts_ns;
    last_failure_[u->unit] = std::max(last_failure_[u->unit], t);
  }
  auto plain = [](uint64_t v) { return v; };
  evicted_ += trim_oldest(last_oom_, kMaxEntries, plain);
  evicted_ += trim_oldest(last_failure_, kMaxEntries, plain);
  evicted_ += trim_oldest(io_, kMaxEntries, [](const DeviceLatency& d) { return d.ts_ns; });
}

Result<bool> LiveProbe::holds(const VerifyIR& v, const Incident& inc, const std::string& unit,
                              uint64_t since, std::string& why) {
  if (v.unit_active && !unit.empty()) {
    // Never waits: a step holding the connection (a restart job) makes this "not known yet".
    auto st = units_.try_active_state(unit);
    if (!st.ok())
      return st.error();
    if (*st != "active") {
      why = unit + " is " + *st;
      return false;
    }
    if (auto it = last_failure_.find(unit); it != last_failure_.end() && it->second > since) {
      why = unit + " failed again after the fix";
      return false;
    }
  }
  if (v.no_new_oom && !unit.empty())
    if (auto it = last_oom_.find(unit); it != last_oom_.end() && it->second > since) {
      why = "a new OOM kill in " + unit + " after the fix";
      return false;
    }
  if (v.usage_below_pct) {
    auto m = inc.root_cause.entities.find("mount");
    if (m == inc.root_cause.entities.end()) {
      why = "usage_below needs a mount and the root cause names none";
      return false;
    }
    struct statvfs sv {};
    if (statvfs(m->second.c_str(), &sv) != 0)
      return Error::from_errno("Failed to statvfs " + m->second, errno);
    const double used = sv.f_blocks - sv.f_bfree;
    const double pct = used + sv.f_bavail > 0 ? 100.0 * used / (used + sv.f_bavail) : 0;
    if (pct >= *v.usage_below_pct) {
      why = m->second + " is " + std::to_string(static_cast<int>(pct)) + "% used";
      return false;
    }
  }
  if (v.latency_below_us) {
    // The io sensor reports a stalled device while it stays over its threshold (reminders)
    // and once when it clears; a report after the fix under the bound is the proof.
    auto d = inc.root_cause.entities.find("device");
    if (d == inc.root_cause.entities.end()) {
      why = "latency_below needs a device and the root cause names none";
      return false;
    }
    auto it = io_.find(d->second);
    // The latest report since the fix began (reports come only while stalled and once on
    // clearing, so not "since the current window").
    if (it == io_.end() || it->second.ts_ns <= inc.remediation_start_ns) {
      why = "no latency report for " + d->second + " since the fix";
      return false;
    }
    if (!it->second.cleared && it->second.latency_us >= *v.latency_below_us) {
      why = d->second + " latency is " + std::to_string(it->second.latency_us / 1000) + " ms";
      return false;
    }
  }
  return true;
}

}  // namespace mend
