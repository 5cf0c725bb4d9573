#include "slo.h"
#include "mend/text.h"

#include "state_file.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

namespace mend {

namespace {

constexpr uint64_t kShortWindow = 300000000000ull;  // 5 min
constexpr size_t kMaxIntervals = 10000;             // per unit; older ones are merged

bool is_bad(const UnitState& u) {
  return u.active_state == "failed" || u.sub_state == "auto-restart";
}

bool is_good(const UnitState& u) {
  // Running again, or stopped cleanly by someone (not a failure the unit's users see as ours).
  return u.active_state == "active" || (u.active_state == "inactive" && u.sub_state == "dead" &&
                                        (u.result.empty() || u.result == "success"));
}

}  // namespace

SloTracker::SloTracker(std::vector<SloObjective> objectives, std::string state_file)
    : objectives_(std::move(objectives)),
      state_file_(std::move(state_file)),
      offset_ns_(realtime_offset_ns()) {}

void SloTracker::configure(std::vector<SloObjective> objectives) {
  objectives_ = std::move(objectives);
  for (auto it = bad_.begin(); it != bad_.end();)
    it = std::none_of(objectives_.begin(), objectives_.end(),
                      [&](const SloObjective& o) { return o.unit == it->first; })
             ? bad_.erase(it)
             : std::next(it);
  dirty_ = true;
}

Status SloTracker::load() {
  if (state_file_.empty())
    return {};
  std::ifstream f(state_file_);
  if (!f)
    return errno == ENOENT ? Status{} : Error::from_errno("Failed to read " + state_file_, errno);
  try {
    auto j = nlohmann::json::parse(f);
    bad_.clear();
    // Every value of the type and range mendd writes, and no more of them than it keeps.
    constexpr size_t kMaxIntervals = 100000;
    const auto& bad = j.at("bad");
    if (!bad.is_object())
      throw std::invalid_argument("bad: not a map");
    for (auto it = bad.begin(); it != bad.end(); ++it) {
      if (std::none_of(objectives_.begin(), objectives_.end(),
                       [&](const SloObjective& o) { return o.unit == it.key(); }))
        continue;
      if (!it->is_array() || it->size() > kMaxIntervals)
        throw std::invalid_argument(it.key() + ": not a list of at most " +
                                    std::to_string(kMaxIntervals) + " intervals");
      auto& v = bad_[it.key()];
      for (const auto& iv : *it) {
        const int64_t from = json_int(iv.at(0), 0, INT64_MAX, "interval start");
        const int64_t to = json_int(iv.at(1), 0, INT64_MAX, "interval end");
        if (to != 0 && to < from)
          throw std::invalid_argument(it.key() + ": an interval ends before it starts");
        v.push_back({from, to});
      }
      // A unit that was down when mendd stopped: its bad time ends where the record ends;
      // the units sensor reports its state again at start.
      if (!v.empty() && v.back().end == 0)
        v.back().end = json_int(j.at("saved"), v.back().start, INT64_MAX, "saved");
    }
  } catch (const std::exception& e) {
    bad_.clear();
    return Error{state_file_ + ": damaged SLO history (" + e.what() + ")", EINVAL};
  }
  return {};
}

void SloTracker::observe(const Event& e) {
  const auto* u = std::get_if<UnitState>(&e.payload);
  if (!u)
    return;
  if (std::none_of(objectives_.begin(), objectives_.end(),
                   [&](const SloObjective& o) { return o.unit == u->unit; }))
    return;
  const int64_t t =
      static_cast<int64_t>(u->state_change_ns ? u->state_change_ns : e.ts_ns) + offset_ns_;
  auto& v = bad_[u->unit];
  const bool open = !v.empty() && v.back().end == 0;
  if (is_bad(*u) && !open) {
    v.push_back({t, 0});
    if (v.size() > kMaxIntervals) {
      v[1].start = v[0].start;  // merged: over-counts the gap, the conservative side
      v.pop_front();
    }
    dirty_ = true;
  } else if (is_good(*u) && open) {
    v.back().end = std::max(t, v.back().start);
    dirty_ = true;
  }
}

uint64_t SloTracker::bad_between(const std::deque<Interval>& v, int64_t from, int64_t to) const {
  uint64_t sum = 0;
  for (const auto& iv : v) {
    const int64_t s = std::max(iv.start, from);
    const int64_t e = std::min(iv.end ? iv.end : to, to);
    if (e > s)
      sum += static_cast<uint64_t>(e - s);
  }
  return sum;
}

SloStatus SloTracker::compute(const SloObjective& o, uint64_t now) const {
  SloStatus s;
  s.unit = o.unit;
  s.objective = o.objective;
  s.window_ns = o.window_ns;
  s.budget_ns = static_cast<uint64_t>((1.0 - o.objective) * static_cast<double>(o.window_ns));
  const int64_t wall = static_cast<int64_t>(now) + offset_ns_;
  auto it = bad_.find(o.unit);
  if (it == bad_.end())
    return s;
  s.bad_ns = bad_between(it->second, wall - static_cast<int64_t>(o.window_ns), wall);
  s.budget_remaining =
      s.budget_ns ? 1.0 - static_cast<double>(s.bad_ns) / static_cast<double>(s.budget_ns) : 0;
  s.down = !it->second.empty() && it->second.back().end == 0;
  const double allowed = 1.0 - o.objective;
  if (s.down) {
    s.burn_rate = 1.0 / allowed;
  } else {
    const double bad5 = static_cast<double>(
        bad_between(it->second, wall - static_cast<int64_t>(kShortWindow), wall));
    s.burn_rate = bad5 / static_cast<double>(kShortWindow) / allowed;
  }
  return s;
}

std::vector<SloStatus> SloTracker::status(uint64_t now) const {
  std::vector<SloStatus> out;
  for (const auto& o : objectives_)
    out.push_back(compute(o, now));
  return out;
}

std::string SloTracker::impact(const Incident& inc, uint64_t now) const {
  int level = 0;  // 0 none, 1 low, 2 medium, 3 high
  for (const auto& o : objectives_) {
    if (o.unit != inc.root_cause.culprit_unit && !inc.affected_units.count(o.unit))
      continue;
    const SloStatus s = compute(o, now);
    int l = 0;
    if (s.bad_ns > 0 && s.budget_remaining <= 0)
      l = 3;
    else if (s.burn_rate >= 14.4)
      l = 3;
    else if (s.burn_rate >= 6)
      l = 2;
    else if (s.burn_rate > 0)
      l = 1;
    level = std::max(level, l);
  }
  static const char* names[] = {"none", "low", "medium", "high"};
  return names[level];
}

void SloTracker::save(uint64_t now, uint64_t min_interval) {
  if (state_file_.empty() || !dirty_ || (saved_ns_ && now - saved_ns_ < min_interval))
    return;
  nlohmann::json j;
  j["version"] = 1;
  j["saved"] = static_cast<int64_t>(now) + offset_ns_;
  j["bad"] = nlohmann::json::object();
  for (const auto& o : objectives_) {
    auto it = bad_.find(o.unit);
    auto& a = j["bad"][o.unit] = nlohmann::json::array();
    if (it == bad_.end())
      continue;
    const int64_t horizon =
        static_cast<int64_t>(now) + offset_ns_ - static_cast<int64_t>(o.window_ns);
    for (const auto& iv : it->second)
      if (iv.end == 0 || iv.end > horizon)
        a.push_back({iv.start, iv.end});
  }
  if (auto st = write_file_atomic(state_file_, dump_json(j) + "\n"); !st.ok()) {
    SPDLOG_WARN("Failed to save the SLO history: {}", st.error().message);
    return;
  }
  dirty_ = false;
  saved_ns_ = now;
}

}  // namespace mend
