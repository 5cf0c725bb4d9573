// raise_memory_limit: raise the target unit's runtime MemoryMax (or MemoryHigh) by a step,
// never past the policy's ceiling nor past what the host has available; rollback restores the
// exact previous value.
#include <fstream>
#include <sstream>

#include "../../systemd/unit_ops.h"
#include "../action.h"
#include "mend/text.h"

namespace mend {

namespace {

constexpr uint64_t kInfinity = UINT64_MAX;

// MemAvailable from /proc/meminfo, in bytes; 0 when unknown.
uint64_t mem_available(const std::string& procfs) {
  std::ifstream f(procfs + "/meminfo");
  std::string key, unit;
  uint64_t kb = 0;
  while (f >> key >> kb >> unit)
    if (key == "MemAvailable:")
      return kb * 1024;
  return 0;
}

std::string human(uint64_t b) {
  if (b == kInfinity)
    return "infinity";
  const char* units[] = {"B", "K", "M", "G", "T"};
  int i = 0;
  double v = static_cast<double>(b);
  while (v >= 1024 && i < 4) {
    v /= 1024;
    ++i;
  }
  std::ostringstream o;
  o.precision(v < 10 ? 2 : 0);
  o << std::fixed << v << units[i];
  return o.str();
}

class RaiseMemoryLimitAction final : public Action {
 public:
  RaiseMemoryLimitAction(const Params& p, const ActionContext& ctx)
      : ctx_(ctx),
        property_(p.str("property")),
        step_pct_(p.number("step")),
        ceiling_(static_cast<uint64_t>(p.integer("ceiling"))) {}

  static std::unique_ptr<Action> create(const Params& p, const ActionContext& ctx) {
    return std::make_unique<RaiseMemoryLimitAction>(p, ctx);
  }

  std::string describe() const override {
    if (planned_)
      return "raise " + property_ + " of " + ctx_.unit + " from " + human(previous_) + " to " +
             human(target_) + " (runtime; ceiling " + human(ceiling_) + ")";
    return "raise " + property_ + " of " + ctx_.unit + " by " + std::to_string(step_pct_) +
           "% up to " + human(ceiling_) + " (runtime)";
  }

  Status check() override {
    if (ctx_.unit.empty())
      return Error{"raise_memory_limit: the incident names no unit"};
    auto cur = ctx_.units->get_property(ctx_.unit, property_);
    if (!cur.ok())
      return cur.error();
    previous_ = std::get<uint64_t>(*cur);
    if (previous_ == kInfinity)
      return Error{ctx_.unit + " has no " + property_ + " to raise (it is infinity)"};
    if (previous_ >= ceiling_)
      return Error{ctx_.unit + " " + property_ + " is already " + human(previous_) +
                   ", at or over the ceiling " + human(ceiling_)};
    const auto step = static_cast<uint64_t>(static_cast<double>(previous_) * step_pct_ / 100.0);
    target_ = std::min(previous_ + std::max<uint64_t>(step, 1), ceiling_);
    const uint64_t avail = mem_available(ctx_.procfs);
    if (avail && target_ - previous_ > avail)
      return Error{"raising " + property_ + " of " + ctx_.unit + " by " +
                   human(target_ - previous_) + " would exceed the host's available memory (" +
                   human(avail) + ")"};
    planned_ = true;
    return {};
  }

  Status apply() override {
    if (!planned_)
      if (auto st = check(); !st.ok())
        return st;
    return ctx_.units->set_property(ctx_.unit, property_, target_);
  }

  Result<bool> verify() override {
    auto cur = ctx_.units->get_property(ctx_.unit, property_);
    if (!cur.ok())
      return cur.error();
    return std::get<uint64_t>(*cur) == target_;
  }

  Status rollback() override {
    if (!planned_)
      return {};
    return ctx_.units->set_property(ctx_.unit, property_, previous_);
  }

  bool needs_target() const override { return true; }
  bool reversible() const override { return true; }

  nlohmann::json undo_state() const override {
    return {{"previous", previous_}, {"target", target_}, {"planned", planned_}};
  }

  Status restore(const nlohmann::json& u) override {
    try {
      previous_ = json_uint(u.at("previous"), "previous");
      target_ = json_uint(u.at("target"), "target");
      if (!u.at("planned").is_boolean())
        throw std::invalid_argument("planned: not true or false");
      planned_ = u.at("planned").get<bool>();
      // A raise only ever raised: an undo that would lower a limit below where it was is not one.
      if (planned_ && target_ < previous_)
        throw std::invalid_argument("target below previous");
    } catch (const std::exception& e) {
      return Error{std::string("raise_memory_limit: bad undo record: ") + e.what()};
    }
    return {};
  }

 private:
  ActionContext ctx_;
  std::string property_;
  double step_pct_;
  uint64_t ceiling_;
  uint64_t previous_ = 0, target_ = 0;
  bool planned_ = false;
};

ActionSpec spec() {
  ActionSpec s;
  s.name = "raise_memory_limit";
  s.summary = "Raise the unit's runtime MemoryMax/MemoryHigh by a step, up to a ceiling";
  s.reversible = true;
  s.params = {
      {"step", ParamType::Percent, false, 1, 100, 25.0, {}, "how much to raise, in % of now"},
      {"ceiling",
       ParamType::Size,
       true,
       16.0 * (1 << 20),
       1024.0 * (1ull << 30),
       int64_t{0},
       {},
       "never raise past this"},
      {"property",
       ParamType::String,
       false,
       0,
       0,
       std::string("MemoryMax"),
       {"MemoryMax", "MemoryHigh"},
       "which limit"}};
  return s;
}

}  // namespace

MEND_REGISTER_ACTION(raise_memory_limit, spec(), RaiseMemoryLimitAction::create);

}  // namespace mend
