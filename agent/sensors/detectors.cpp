#include "detectors.h"

namespace mend {

Verdict Hysteresis::update(uint64_t now, bool over, bool under) {
  switch (state_) {
    case State::Idle:
      if (!over)
        return Verdict::None;
      state_ = State::Pending;
      since_ = now;
      [[fallthrough]];
    case State::Pending:
      if (!over) {
        state_ = State::Idle;
        return Verdict::None;
      }
      if (now - since_ < fire_after_)
        return Verdict::None;
      state_ = State::Firing;
      last_emit_ = now;
      dipped_ = false;
      return Verdict::Fire;
    case State::Firing:
      if (under) {
        state_ = State::Clearing;
        since_ = now;
        dipped_ = true;
        return clear_after_ == 0 ? (state_ = State::Idle, Verdict::Clear) : Verdict::None;
      }
      break;
    case State::Clearing:
      if (!under) {
        state_ = State::Firing;
        break;
      }
      if (now - since_ >= clear_after_) {
        state_ = State::Idle;
        return Verdict::Clear;
      }
      return Verdict::None;
  }
  // Clearly back to normal for a while (a fix, say), then over the threshold again before it
  // could clear: the condition returned, and is said again at once, not at the next reminder.
  if (dipped_ && over) {
    dipped_ = false;
    last_emit_ = now;
    return Verdict::Remind;
  }
  if (reminder_ != 0 && now - last_emit_ >= reminder_) {
    last_emit_ = now;
    return Verdict::Remind;
  }
  return Verdict::None;
}

void FillRate::add(uint64_t now, uint64_t used) {
  samples_.push_back({now, used});
  while (samples_.size() > 2 && now - samples_.front().t > window_)
    samples_.pop_front();
}

double FillRate::bytes_per_second() const {
  if (samples_.size() < 2)
    return 0;
  const uint64_t t0 = samples_.front().t;
  if (samples_.back().t - t0 < 250000000ull)
    return 0;
  const double u0 = static_cast<double>(samples_.front().used);
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const auto& s : samples_) {
    double x = static_cast<double>(s.t - t0) / 1e9;
    double y = static_cast<double>(s.used) - u0;
    n += 1;
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  double den = n * sxx - sx * sx;
  return den > 0 ? (n * sxy - sx * sy) / den : 0;
}

double FillRate::eta_seconds(uint64_t avail, double min_rate_bps) const {
  double r = bytes_per_second();
  if (r < min_rate_bps || r <= 0)
    return -1;
  return static_cast<double>(avail) / r;
}

}  // namespace mend
