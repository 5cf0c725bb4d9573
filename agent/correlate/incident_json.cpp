#include "incident_json.h"

#include <cstdio>
#include <sstream>

#include "../sensors/event_json.h"

namespace mend {

namespace {

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string rel(uint64_t t, uint64_t t0) {
  if (t < t0)
    return "-" + fixed(static_cast<double>(t0 - t) / 1e9, 3) + "s";
  return "+" + fixed(static_cast<double>(t - t0) / 1e9, 3) + "s";
}

nlohmann::ordered_json cause_json(const RootCause& c) {
  nlohmann::ordered_json j;
  j["kind"] = c.kind;
  for (const auto& [k, v] : c.entities)
    j[k] = v;
  j["culprit_unit"] = c.culprit_unit;
  j["confidence"] = c.confidence;
  j["rule"] = c.rule;
  j["summary"] = c.summary;
  return j;
}

}  // namespace

std::string describe(const Event& e) {
  return std::visit(
      [](const auto& p) -> std::string {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, OomKill>)
          return "oom_kill " + p.comm + "[" + std::to_string(p.pid) + "] in " +
                 (p.unit.empty() ? p.cgroup : p.unit) + " (" + p.constraint + ")";
        else if constexpr (std::is_same_v<T, FsEnospc>)
          return "fs_enospc " + (p.unit.empty() ? p.comm : p.unit) + " " + p.syscall + " on " +
                 (p.mount.empty() ? p.device : p.mount) + (p.err == 122 ? " (EDQUOT)" : "");
        else if constexpr (std::is_same_v<T, FsFill>)
          return "fs_fill " + p.mount + " " + p.state +
                 (p.state == "cleared" ? "" : " (" + p.reason + ")") + " " + fixed(p.used_pct, 1) +
                 "% used";
        else if constexpr (std::is_same_v<T, IoStall>)
          return "io_stall " + p.device + " " + p.state + " p99 " +
                 std::to_string(p.p99_us / 1000) + " ms";
        else if constexpr (std::is_same_v<T, UnitState>)
          return "unit_state " + p.unit + " " + p.prev_active_state + " -> " + p.active_state +
                 "/" + p.sub_state + (p.result.empty() ? "" : " result=" + p.result) +
                 (p.pattern.empty() ? "" : " [" + p.pattern + "]");
        else
          return "psi " + p.resource + " " + p.state + " some " + fixed(p.some_avg10, 1);
      },
      e.payload);
}

nlohmann::ordered_json to_json(const Incident& inc) {
  nlohmann::ordered_json j;
  j["id"] = inc.id;
  j["root_cause"] = cause_json(inc.root_cause);
  j["state"] = to_string(inc.state);
  j["closed"] = inc.closed;
  j["affected_units"] = inc.affected_units;
  j["entities"] = inc.entities;
  nlohmann::ordered_json ev = nlohmann::ordered_json::array();
  for (const auto& e : inc.evidence) {
    nlohmann::ordered_json x;
    x["event"] = nlohmann::ordered_json::parse(to_json_line(e.event));
    x["first_ns"] = e.first_ns;
    x["count"] = e.count;
    ev.push_back(std::move(x));
  }
  j["evidence"] = std::move(ev);
  nlohmann::ordered_json links = nlohmann::ordered_json::array();
  for (const auto& l : inc.links)
    links.push_back({{"from", l.from}, {"to", l.to}, {"relation", l.relation}});
  j["links"] = std::move(links);
  nlohmann::ordered_json alts = nlohmann::ordered_json::array();
  for (size_t i = 1; i < inc.candidates.size(); ++i)
    alts.push_back(cause_json(inc.candidates[i].cause));
  j["alternatives"] = std::move(alts);
  j["plan"] = inc.plan;
  j["slo_impact"] = inc.slo_impact;
  j["raw_events"] = inc.raw_events;
  j["evidence_dropped"] = inc.evidence_dropped;
  j["first_fault_ns"] = inc.first_fault_ns;
  j["opened_ns"] = inc.opened_ns;
  j["updated_ns"] = inc.updated_ns;
  j["closed_ns"] = inc.closed_ns;
  j["remediation_start_ns"] = inc.remediation_start_ns;
  j["recovered_ns"] = inc.recovered_ns;
  j["mttr_ms"] = inc.mttr_ms();
  return j;
}

std::string summary_line(const Incident& inc) {
  std::ostringstream o;
  o << inc.id << "  " << inc.root_cause.kind;
  for (const auto& [k, v] : inc.root_cause.entities)
    o << "  " << k << "=" << v;
  if (!inc.root_cause.culprit_unit.empty())
    o << "  culprit=" << inc.root_cause.culprit_unit;
  o << "  confidence=" << fixed(inc.root_cause.confidence, 2) << "  " << to_string(inc.state);
  return o.str();
}

std::string explain(const Incident& inc, uint64_t t0) {
  std::ostringstream o;
  o << "Incident " << inc.id << " (" << to_string(inc.state) << (inc.closed ? ", closed" : "")
    << ")\n";
  o << "Root cause: " << inc.root_cause.summary << " [" << inc.root_cause.kind << ", confidence "
    << fixed(inc.root_cause.confidence, 2) << "]\n";
  if (!inc.candidates.empty()) {
    o << "Why:\n";
    for (const auto& w : inc.candidates.front().why)
      o << "  - " << w << "\n";
  }
  if (inc.candidates.size() > 1) {
    o << "Alternatives considered:\n";
    for (size_t i = 1; i < inc.candidates.size(); ++i) {
      const auto& c = inc.candidates[i];
      o << "  - " << c.cause.kind << " (" << c.cause.summary << ", confidence "
        << fixed(c.cause.confidence, 2) << "): ";
      if (!c.set_aside.empty())
        o << "set aside, " << c.set_aside << "\n";
      else
        o << "a symptom here; " << inc.root_cause.kind << " comes first in causal order\n";
    }
  }
  if (!inc.affected_units.empty()) {
    o << "Affected units:";
    for (const auto& u : inc.affected_units)
      o << " " << u;
    o << "\n";
  }
  o << "Evidence (" << inc.raw_events << " events, " << inc.evidence.size() << " distinct"
    << (inc.evidence_dropped ? ", " + std::to_string(inc.evidence_dropped) + " more not kept" : "")
    << "):\n";
  for (size_t i = 0; i < inc.evidence.size(); ++i) {
    const auto& e = inc.evidence[i];
    o << "  [" << i << "] " << rel(e.first_ns, t0) << "  " << describe(e.event);
    if (e.count > 1)
      o << "  (x" << e.count << ")";
    o << "\n";
  }
  if (!inc.links.empty()) {
    o << "Causal links:\n";
    for (const auto& l : inc.links)
      o << "  [" << l.from << "] " << l.relation << " [" << l.to << "]\n";
  }
  o << "Timeline: first fault " << rel(inc.first_fault_ns, t0) << ", opened "
    << rel(inc.opened_ns, t0);
  if (inc.recovered_ns)
    o << ", recovered " << rel(inc.recovered_ns, t0) << " (MTTR " << inc.mttr_ms() << " ms)";
  o << "\n";
  return o.str();
}

}  // namespace mend
