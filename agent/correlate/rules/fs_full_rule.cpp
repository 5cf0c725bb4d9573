// fs_full / fs_filling: a filesystem out of space (or about to be) explains the ENOSPC errors
// of the units writing to it and their failures. The culprit is the top writer, which may be a
// different unit than the ones failing.
#include <algorithm>
#include <map>

#include "../rule.h"

namespace mend {

namespace {

// After every other rule (unit_crash is 50): a forecast set aside is the cause of last resort.
constexpr int kSetAside = 100;

class FsFullRule final : public RootCauseRule {
 public:
  static std::unique_ptr<RootCauseRule> create() { return std::make_unique<FsFullRule>(); }
  const char* name() const override { return "fs_full"; }
  int precedence() const override { return 10; }

  std::vector<std::string> kinds() const override { return {"fs_full", "fs_filling"}; }

  std::optional<Candidate> evaluate(const Incident& inc) const override {
    auto fills = evidence_of<FsFill>(inc);
    auto enospc = evidence_of<FsEnospc>(inc);
    // The mount: the one a firing fs_fill names, else the one most ENOSPC errors hit.
    const FsFill* fill = nullptr;
    size_t fill_idx = 0;
    for (auto [i, f] : fills)
      if (f->state == "firing" && (!fill || f->used_pct >= fill->used_pct)) {
        fill = f;
        fill_idx = i;
      }
    std::map<std::string, uint64_t> hits;
    for (auto [i, e] : enospc)
      hits[e->mount] += inc.evidence[i].count * (1 + e->folded);
    std::string mount;
    if (fill) {
      mount = fill->mount;
    } else {
      uint64_t best = 0;
      for (const auto& [m, n] : hits)
        if (n > best && !m.empty()) {
          best = n;
          mount = m;
        }
    }
    if (!fill && mount.empty())
      return std::nullopt;

    Candidate c;
    c.precedence = precedence();
    c.cause.rule = name();
    const bool only_eta = fill && fill->reason == "eta" && hits.empty();
    c.cause.kind = only_eta ? "fs_filling" : "fs_full";
    c.cause.entities["mount"] = mount;
    if (fill) {
      c.cause.entities["device"] = fill->device;
      c.cause.entities["fstype"] = fill->fstype;
    }
    // Culprit: who wrote most; failing that, who hit ENOSPC most. The newest report may come
    // after the writing stopped (a full volume, a writer that gave up): then the fullest report
    // of the same mount that saw writers names them.
    auto has_writers = [](const FsFill* f) {
      return !f->top_writers.empty() && !f->top_writers[0].unit.empty();
    };
    const FsFill* writers = fill && has_writers(fill) ? fill : nullptr;
    if (fill && !writers)
      for (auto [i, f] : fills)  // the fullest earlier report of this mount that saw writers
        if (f->mount == mount && has_writers(f) && (!writers || f->used_pct > writers->used_pct))
          writers = f;
    if (writers) {
      c.cause.culprit_unit = writers->top_writers[0].unit;
      c.why.push_back("top writer of " + mount + " over the last window" +
                      (writers == fill ? "" : " that saw writes") + ": " + c.cause.culprit_unit +
                      " (" + std::to_string(writers->top_writers[0].bytes) + " bytes)");
    } else {
      std::map<std::string, uint64_t> by_unit;
      for (auto [i, e] : enospc)
        if (e->mount == mount && !e->unit.empty())
          by_unit[e->unit] += inc.evidence[i].count;
      uint64_t best = 0;
      for (const auto& [u, n] : by_unit)
        if (n > best) {
          best = n;
          c.cause.culprit_unit = u;
        }
      if (!c.cause.culprit_unit.empty())
        c.why.push_back("no writer accounting; " + c.cause.culprit_unit +
                        " hit ENOSPC most often on " + mount);
    }
    if (fill)
      c.why.push_back(
          mount + " " + (only_eta ? "filling" : "full") + ": " +
          std::to_string(static_cast<int>(fill->used_pct)) + "% used, " +
          (fill->eta_full_s >= 0
               ? "full in " + std::to_string(static_cast<int64_t>(fill->eta_full_s)) + " s"
               : "not filling further"));
    uint64_t errors = 0;
    for (const auto& [m, n] : hits)
      if (m == mount)
        errors += n;
    if (errors)
      c.why.push_back(std::to_string(errors) + " write(s) failed with ENOSPC/EDQUOT on " + mount);

    // Links: the fill causes each ENOSPC on that mount; each ENOSPC causes the writer's failure.
    for (auto [i, e] : enospc) {
      if (e->mount != mount)
        continue;
      if (fill)
        c.links.push_back({fill_idx, i, "fills"});
      for (auto [j, s] : evidence_of<UnitState>(inc))
        if (s->unit == e->unit && is_unit_failure(*s))
          c.links.push_back({i, j, "fails"});
    }
    // A forecast (nothing has failed for space yet) explains no other failure: where the
    // incident holds one (a device stall on the same disk, an OOM kill, a crash), or where the
    // forecast passed by itself (the mount's latest report cleared), it is set aside. It stays
    // the root cause where nothing else is (a volume grown ahead of time clears its forecast
    // too).
    if (only_eta) {
      uint64_t last_firing = 0, last_cleared = 0;
      for (auto [i, f] : fills)
        if (f->mount == mount) {
          uint64_t& last = f->state == "cleared" ? last_cleared : last_firing;
          last = std::max(last, inc.evidence[i].event.ts_ns);
        }
      bool other_failure = false;
      for (const auto& ev : inc.evidence)
        std::visit(
            [&](const auto& p) {
              using T = std::decay_t<decltype(p)>;
              if constexpr (std::is_same_v<T, IoStall>)
                other_failure |= p.state == "firing";
              else if constexpr (std::is_same_v<T, OomKill>)
                other_failure = true;
              else if constexpr (std::is_same_v<T, UnitState>)
                other_failure |= is_unit_failure(p);
            },
            ev.event.payload);
      if (last_cleared > last_firing)
        c.set_aside = "the forecast no longer holds: " + mount + " stopped filling";
      else if (other_failure)
        c.set_aside = "a forecast for " + mount + ", which explains none of the failures here";
      if (!c.set_aside.empty()) {
        c.precedence = kSetAside;
        c.why.push_back(c.set_aside);
      }
    }
    c.cause.confidence = fill && errors ? 0.95 : fill ? (only_eta ? 0.7 : 0.85) : 0.75;
    c.cause.summary =
        std::string(only_eta ? "filesystem filling: " : "filesystem full: ") + mount +
        (c.cause.culprit_unit.empty() ? "" : ", written mostly by " + c.cause.culprit_unit);
    return c;
  }
};

}  // namespace

MEND_REGISTER_RULE(fs_full, FsFullRule::create);

}  // namespace mend
