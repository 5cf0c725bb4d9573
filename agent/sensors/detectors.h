// Threshold state machines shared by the sampling sensors: a condition must hold for a while
// before it fires and must be clearly gone for a while before it clears, so a signal that
// flaps around its threshold is one event, not fifty. Pure: time is passed in.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

namespace mend {

enum class Verdict { None, Fire, Remind, Clear };

// over(): the alarm condition; under(): clearly back to normal (stricter than !over()).
class Hysteresis {
 public:
  Hysteresis(uint64_t fire_after_ns, uint64_t clear_after_ns, uint64_t reminder_ns)
      : fire_after_(fire_after_ns), clear_after_(clear_after_ns), reminder_(reminder_ns) {}

  Verdict update(uint64_t now_ns, bool over, bool under);
  bool firing() const { return state_ == State::Firing || state_ == State::Clearing; }

 private:
  enum class State { Idle, Pending, Firing, Clearing };
  uint64_t fire_after_, clear_after_, reminder_;
  State state_ = State::Idle;
  uint64_t since_ = 0;
  uint64_t last_emit_ = 0;
  bool dipped_ = false;  // went clearly under since the last report
};

// Fill rate of a filesystem: least-squares slope of used bytes over a time window.
class FillRate {
 public:
  explicit FillRate(uint64_t window_ns) : window_(window_ns) {}
  void add(uint64_t now_ns, uint64_t used_bytes);
  // Bytes per second; 0 with fewer than two samples or a window shorter than 1/4 of a second.
  double bytes_per_second() const;
  // Seconds until `avail_bytes` is used up at the current rate, -1 when not filling.
  double eta_seconds(uint64_t avail_bytes, double min_rate_bps) const;

 private:
  struct Sample {
    uint64_t t;
    uint64_t used;
  };
  uint64_t window_;
  std::deque<Sample> samples_;
};

}  // namespace mend
