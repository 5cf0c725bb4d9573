#include "correlator.h"
#include "mend/text.h"

#include <algorithm>

#include "../sensors/event_json.h"

namespace mend {

namespace {

void add_unit(std::vector<std::string>& v, const std::string& unit) {
  if (!unit.empty())
    v.push_back("unit:" + unit);
}

// Slices and targets group units; they fail with none of them.
bool unit_is_grouping(const std::string& u) {
  auto ends = [&](std::string_view suffix) {
    return u.size() >= suffix.size() &&
           u.compare(u.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends(".slice") || ends(".target");
}

void add_cgroup(std::vector<std::string>& v, const std::string& cg) {
  // The root cgroup is shared by everything: it connects nothing.
  if (!cg.empty() && cg != "/" && cg.rfind("cgroup-id:", 0) != 0)
    v.push_back("cgroup:" + cg);
}

// The key under which repeats of the same observation fold into one evidence entry.
std::string evidence_key(const Event& e) {
  return std::visit(
      [](const auto& p) -> std::string {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, OomKill>)
          return "oom|" + p.unit + "|" + p.cgroup + "|" + p.constraint;
        else if constexpr (std::is_same_v<T, FsEnospc>)
          return "enospc|" + (p.unit.empty() ? p.comm : p.unit) + "|" + p.mount + "|" +
                 std::to_string(p.err);
        else if constexpr (std::is_same_v<T, FsFill>)
          return "fill|" + p.mount + "|" + p.state + "|" + p.reason;
        else if constexpr (std::is_same_v<T, IoStall>)
          return "io|" + p.device + "|" + p.state;
        else if constexpr (std::is_same_v<T, UnitState>)
          return "unit|" + p.unit + "|" + p.active_state + "|" + p.sub_state + "|" + p.pattern +
                 "|" + p.result;
        else
          return "psi|" + p.resource + "|" + p.state;
      },
      e.payload);
}

}  // namespace

std::string_view to_string(IncidentState s) {
  switch (s) {
    case IncidentState::Open:
      return "open";
    case IncidentState::AwaitingApproval:
      return "awaiting_approval";
    case IncidentState::Remediating:
      return "remediating";
    case IncidentState::Resolved:
      return "resolved";
    case IncidentState::RolledBack:
      return "rolled_back";
    case IncidentState::Escalated:
      return "escalated";
  }
  return "";
}

EventFacts facts_of(const Event& e) {
  EventFacts f;
  std::visit(
      [&](const auto& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, OomKill>) {
          add_unit(f.entities, p.unit);
          add_cgroup(f.entities, p.cgroup);
          f.fault = true;
        } else if constexpr (std::is_same_v<T, FsEnospc>) {
          add_unit(f.entities, p.unit);
          if (!p.mount.empty())
            f.entities.push_back("mount:" + p.mount);
          if (!p.device.empty())
            f.entities.push_back("device:" + p.device);
          if (p.unit.empty())
            add_cgroup(f.entities, p.cgroup);
          f.fault = true;
        } else if constexpr (std::is_same_v<T, FsFill>) {
          f.entities.push_back("mount:" + p.mount);
          if (!p.device.empty())
            f.entities.push_back("device:" + p.device);
          for (const auto& w : p.top_writers)
            add_unit(f.links, w.unit);
          f.fault = p.state != "cleared";
          f.conditions.push_back({"mount:" + p.mount, p.state != "cleared"});
        } else if constexpr (std::is_same_v<T, IoStall>) {
          f.entities.push_back("device:" + p.device);
          for (const auto& m : p.mounts)
            f.entities.push_back("mount:" + m);
          for (const auto& u : p.top_units)
            add_unit(f.links, u.unit);
          f.fault = p.state != "cleared";
          f.conditions.push_back({"device:" + p.device, p.state != "cleared"});
        } else if constexpr (std::is_same_v<T, UnitState>) {
          add_unit(f.entities, p.unit);
          // Every unit requires its slice, and most share the same targets: a link through
          // them would make one incident of every unrelated failure on the host.
          auto dependency = [&](const std::string& d) {
            if (!unit_is_grouping(d))
              add_unit(f.links, d);
          };
          for (const auto& d : p.requires_)
            dependency(d);
          for (const auto& d : p.binds_to)
            dependency(d);
          f.fault = is_unit_failure(p);
          if (f.fault || p.active_state == "active")
            f.conditions.push_back({"unit:" + p.unit, f.fault});
        } else {
          // PSI is host-wide: supporting evidence for an incident of the same resource, never
          // a reason to open one.
          f.entities.push_back("psi:" + p.resource);
        }
      },
      e.payload);
  return f;
}

Correlator::Correlator(CorrelatorConfig cfg)
    : cfg_(std::move(cfg)), rules_(RuleRegistry::instance().create_all()) {}

void Correlator::push(Event e) {
  ++events_seen_;
  max_ts_ = std::max(max_ts_, e.ts_ns);
  // Ties in ts are broken by content, so any arrival order gives the same processing order.
  std::string key = dump_json(to_json(e));
  buffer_.emplace(std::make_pair(e.ts_ns, std::move(key)), std::move(e));
  while (!buffer_.empty() && (buffer_.begin()->first.first + cfg_.reorder_ns <= max_ts_ ||
                              buffer_.size() > cfg_.max_buffered)) {
    if (buffer_.begin()->first.first + cfg_.reorder_ns > max_ts_)
      ++reorder_overflow_;
    auto node = buffer_.extract(buffer_.begin());
    process(node.mapped());
  }
}

void Correlator::flush() {
  while (!buffer_.empty()) {
    auto node = buffer_.extract(buffer_.begin());
    process(node.mapped());
  }
  for (auto& inc : incidents_)
    reevaluate(*inc);
}

void Correlator::advance(uint64_t now) {
  while (!buffer_.empty() && buffer_.begin()->first.first + cfg_.reorder_ns <= now) {
    auto node = buffer_.extract(buffer_.begin());
    process(node.mapped());
  }
  close_quiet(now);
}

std::vector<const Incident*> Correlator::incidents() const {
  std::vector<const Incident*> out;
  for (const auto& i : incidents_)
    out.push_back(i.get());
  return out;
}

void Correlator::index(const Incident& inc, const std::string& entity) {
  by_entity_[entity].insert(const_cast<Incident*>(&inc));
}

void Correlator::close_quiet(uint64_t now) {
  // Closing is checked at most once per second of event time: it walks every incident.
  if (now < next_close_check_)
    return;
  next_close_check_ = now + 1000000000ull;
  for (auto& inc : incidents_)
    if (!inc->closed && inc->updated_ns + cfg_.quiet_ns <= now)
      close(*inc, inc->updated_ns + cfg_.quiet_ns);
  forget_closed();
}

void Correlator::close(Incident& inc, uint64_t closed_ns) {
  inc.closed = true;
  inc.closed_ns = closed_ns;
  for (const auto& ent : inc.entities) {
    auto it = by_entity_.find(ent);
    if (it == by_entity_.end())
      continue;
    it->second.erase(&inc);
    if (it->second.empty())
      by_entity_.erase(it);
  }
  reevaluate(inc);
  // Only open incidents take events, merge or recover: what served that goes.
  faults_.erase(&inc);
  evidence_keys_.erase(&inc);
  --open_;
  ++closed_;
}

void Correlator::forget_closed() {
  if (closed_ <= cfg_.max_closed)
    return;
  // Oldest opened first; one pass.
  size_t excess = closed_ - cfg_.max_closed;
  auto keep = std::stable_partition(incidents_.begin(), incidents_.end(), [&](const auto& p) {
    if (excess == 0 || !p->closed)
      return true;
    --excess;
    return false;
  });
  for (auto it = keep; it != incidents_.end(); ++it) {
    if (on_forget)
      on_forget(**it);
    ++closed_forgotten_;
    --closed_;
  }
  incidents_.erase(keep, incidents_.end());
}

void Correlator::add_evidence(Incident& inc, const Event& e) {
  ++inc.raw_events;
  auto& keys = evidence_keys_[&inc];
  std::string key = evidence_key(e);
  auto it = keys.find(key);
  if (it != keys.end()) {
    Evidence& ev = inc.evidence[it->second];
    ev.event = e;
    ++ev.count;
    return;
  }
  if (inc.evidence.size() >= cfg_.max_evidence) {
    ++inc.evidence_dropped;
    return;
  }
  keys[key] = inc.evidence.size();
  inc.evidence.push_back(Evidence{e, e.ts_ns, 1});
  inc.root_cause.kind.clear();  // new evidence: the root cause is re-evaluated
}

void Correlator::merge_into(Incident& dst, Incident& src) {
  // Evidence in time order, folded by key, within the bound.
  std::vector<Evidence> all = dst.evidence;
  all.insert(all.end(), src.evidence.begin(), src.evidence.end());
  std::stable_sort(all.begin(), all.end(),
                   [](const Evidence& a, const Evidence& b) { return a.first_ns < b.first_ns; });
  dst.evidence.clear();
  auto& keys = evidence_keys_[&dst];
  keys.clear();
  for (auto& ev : all) {
    std::string key = evidence_key(ev.event);
    auto it = keys.find(key);
    if (it != keys.end()) {
      Evidence& d = dst.evidence[it->second];
      d.count += ev.count;
      if (ev.event.ts_ns > d.event.ts_ns)
        d.event = ev.event;
      continue;
    }
    if (dst.evidence.size() >= cfg_.max_evidence) {
      ++dst.evidence_dropped;
      continue;
    }
    keys[key] = dst.evidence.size();
    dst.evidence.push_back(ev);
  }
  dst.raw_events += src.raw_events;
  dst.evidence_dropped += src.evidence_dropped;
  dst.first_fault_ns = std::min(dst.first_fault_ns, src.first_fault_ns);
  dst.updated_ns = std::max(dst.updated_ns, src.updated_ns);
  dst.affected_units.insert(src.affected_units.begin(), src.affected_units.end());
  for (const auto& ent : src.entities) {
    dst.entities.insert(ent);
    auto& set = by_entity_[ent];
    set.erase(&src);
    set.insert(&dst);
  }
  for (const auto& [c, firing] : faults_[&src])
    faults_[&dst][c] = firing;
  faults_.erase(&src);
  evidence_keys_.erase(&src);
  dst.root_cause.kind.clear();
}

void Correlator::process(const Event& e) {
  close_quiet(e.ts_ns);
  EventFacts f = facts_of(e);
  if (const auto* u = std::get_if<UnitState>(&e.payload); u && u->memory_current > 0) {
    memory_by_unit_[u->unit] = e;
    if (memory_by_unit_.size() > cfg_.max_memory_units) {
      // The stalest reading goes: it would be outside the window of any global OOM soonest.
      auto oldest = memory_by_unit_.begin();
      for (auto it = memory_by_unit_.begin(); it != memory_by_unit_.end(); ++it)
        if (it->second.ts_ns < oldest->second.ts_ns)
          oldest = it;
      memory_by_unit_.erase(oldest);
    }
  }

  // Open incidents this event shares an entity with, or is linked to by a dependency or by
  // naming a unit as a writer / I/O issuer.
  std::set<Incident*> matches;
  auto match = [&](const std::string& ent) {
    auto it = by_entity_.find(ent);
    if (it == by_entity_.end())
      return;
    for (Incident* inc : it->second)
      if (!inc->closed && inc->updated_ns + cfg_.window_ns >= e.ts_ns)
        matches.insert(inc);
  };
  for (const auto& ent : f.entities)
    match(ent);
  for (const auto& ent : f.links)
    match(ent);
  if (std::holds_alternative<Psi>(e.payload)) {
    // PSI joins open incidents of its resource only.
    const auto& p = std::get<Psi>(e.payload);
    for (auto& inc : incidents_) {
      if (inc->closed || inc->updated_ns + cfg_.window_ns < e.ts_ns)
        continue;
      for (const auto& ev : inc->evidence) {
        const bool mem =
            p.resource == "memory" && std::holds_alternative<OomKill>(ev.event.payload);
        const bool io = p.resource == "io" && std::holds_alternative<IoStall>(ev.event.payload);
        if (mem || io) {
          matches.insert(inc.get());
          break;
        }
      }
    }
  }

  Incident* inc = nullptr;
  if (matches.empty()) {
    if (!f.fault) {
      ++events_ignored_;
      return;
    }
    if (open_ >= cfg_.max_open) {
      // Bounded: the open incident that has been quiet longest is closed now.
      Incident* stalest = nullptr;
      for (auto& i : incidents_)
        if (!i->closed && (!stalest || i->updated_ns < stalest->updated_ns))
          stalest = i.get();
      if (stalest) {
        close(*stalest, e.ts_ns);
        ++closed_early_;
        forget_closed();
      }
    }
    incidents_.push_back(std::make_unique<Incident>());
    ++open_;
    inc = incidents_.back().get();
    inc->id = cfg_.id_prefix + std::to_string(next_id_++);
    inc->opened_ns = e.ts_ns;
    inc->first_fault_ns = e.ts_ns;
  } else {
    // The earliest-opened absorbs the others: the event proved they are one failure.
    inc = *std::min_element(matches.begin(), matches.end(), [](Incident* a, Incident* b) {
      return a->opened_ns != b->opened_ns ? a->opened_ns < b->opened_ns : a->id < b->id;
    });
    for (Incident* other : matches) {
      if (other == inc)
        continue;
      merge_into(*inc, *other);
      --open_;
      if (on_forget)
        on_forget(*other);
      incidents_.erase(std::find_if(incidents_.begin(), incidents_.end(),
                                    [&](const auto& p) { return p.get() == other; }));
    }
  }

  add_evidence(*inc, e);
  if (const auto* k = std::get_if<OomKill>(&e.payload); k && k->constraint == "global") {
    const Event* top = nullptr;
    for (const auto& [unit, ev] : memory_by_unit_)
      if (!top || std::get<UnitState>(ev.payload).memory_current >
                      std::get<UnitState>(top->payload).memory_current)
        top = &ev;
    if (top && e.ts_ns - top->ts_ns <= cfg_.window_ns) {
      add_evidence(*inc, *top);
      --inc->raw_events;  // not a new event, a remembered one
      const std::string ent = "unit:" + std::get<UnitState>(top->payload).unit;
      if (inc->entities.insert(ent).second)
        index(*inc, ent);
    }
  }
  inc->updated_ns = std::max(inc->updated_ns, e.ts_ns);
  if (f.fault)
    inc->first_fault_ns = std::min(inc->first_fault_ns, e.ts_ns);
  // Linked units (top writers, I/O issuers, dependencies) become entities too: their failures
  // later in the window are symptoms of this incident.
  for (const auto* list : {&f.entities, &f.links})
    for (const auto& ent : *list)
      if (inc->entities.insert(ent).second)
        index(*inc, ent);
  if (f.fault) {
    if (const auto* u = std::get_if<UnitState>(&e.payload))
      inc->affected_units.insert(u->unit);
    else if (const auto* x = std::get_if<FsEnospc>(&e.payload); x && !x->unit.empty())
      inc->affected_units.insert(x->unit);
    else if (const auto* k = std::get_if<OomKill>(&e.payload); k && !k->unit.empty())
      inc->affected_units.insert(k->unit);
  }

  // Recovery: every fault condition this incident raised has cleared.
  auto& conds = faults_[inc];
  for (const auto& [c, firing] : f.conditions)
    if (firing || conds.count(c))
      conds[c] = firing;
  const bool any_firing =
      std::any_of(conds.begin(), conds.end(), [](auto& kv) { return kv.second; });
  if (f.fault) {
    inc->state = IncidentState::Open;
    inc->recovered_ns = 0;
  } else if (!any_firing && !conds.empty() && inc->state == IncidentState::Open) {
    inc->state = IncidentState::Resolved;
    inc->recovered_ns = e.ts_ns;
  }

  if (inc->root_cause.kind.empty())
    reevaluate(*inc);
  if (on_update)
    on_update(*inc, e);
}

void Correlator::reevaluate(Incident& inc) {
  inc.candidates.clear();
  for (const auto& r : rules_)
    if (auto c = r->evaluate(inc))
      inc.candidates.push_back(std::move(*c));
  std::stable_sort(
      inc.candidates.begin(), inc.candidates.end(),
      [](const Candidate& a, const Candidate& b) { return a.precedence < b.precedence; });
  if (inc.candidates.empty()) {
    inc.root_cause = RootCause{"unknown", {}, "", 0, "", "no rule explains this evidence"};
    inc.links.clear();
    return;
  }
  inc.root_cause = inc.candidates.front().cause;
  inc.links = inc.candidates.front().links;
}

}  // namespace mend
