#include "sensor_hub.h"

#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>

#include "kernel_features.h"

namespace mend {

namespace {
constexpr uint64_t kWatchedBase = uint64_t{1} << 32;  // epoll keys of watched descriptors
}

SensorHub::~SensorHub() {
  sensors_.clear();
  if (epfd_ >= 0)
    close(epfd_);
  if (timerfd_ >= 0)
    close(timerfd_);
}

Status SensorHub::start() {
  const auto& reg = SensorRegistry::instance().all();
  for (const auto& n : names_)
    if (!reg.count(n)) {
      std::string known;
      for (const auto& [k, f] : reg)
        known += (known.empty() ? "" : ", ") + k;
      return Error{"unknown sensor \"" + n + "\" (known: " + known + ")"};
    }
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0)
    return Error::from_errno("Failed to create epoll instance", errno);
  for (const auto& n : names_) {
    auto s = reg.at(n)(ctx_);
    Status st = s->start();
    if (!st.ok()) {
      SPDLOG_WARN("{} sensor disabled: {}", n, st.error().message);
      SensorStats d;
      d.name = n;
      d.disabled_reason = st.error().message;
      disabled_.push_back(d);
      continue;
    }
    for (int fd : s->fds()) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = sensors_.size();
      if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0)
        return Error::from_errno("Failed to watch the " + n + " sensor", errno);
    }
    SPDLOG_INFO("{} sensor started", n);
    sensors_.push_back(std::move(s));
  }
  // The parsed vmlinux BTF and libbpf's load-time buffers are several MB the agent no longer
  // needs: give them back.
  if (ctx_.features)
    ctx_.features->release();
  malloc_trim(0);
  if (sensors_.empty())
    return Error{"no sensor could start"};

  timerfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (timerfd_ < 0)
    return Error::from_errno("Failed to create the tick timer", errno);
  if (Status st = set_interval(ctx_.config->sample_interval_ns); !st.ok())
    return st;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = UINT64_MAX;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, timerfd_, &ev) != 0)
    return Error::from_errno("Failed to watch the tick timer", errno);
  return {};
}

Status SensorHub::set_interval(uint64_t iv) {
  if (iv == interval_ns_)
    return {};
  itimerspec its{};
  its.it_interval.tv_sec = static_cast<time_t>(iv / 1000000000ull);
  its.it_interval.tv_nsec = static_cast<long>(iv % 1000000000ull);
  its.it_value = its.it_interval;
  if (timerfd_settime(timerfd_, 0, &its, nullptr) != 0)
    return Error::from_errno("Failed to arm the tick timer", errno);
  interval_ns_ = iv;
  return {};
}

// After a tick: the idle pace while every sensor is calm and nothing is in progress, back to
// the sample interval the tick something approaches a threshold.
void SensorHub::pace() {
  const uint64_t fast = ctx_.config->sample_interval_ns;
  const uint64_t idle = std::max(fast, ctx_.config->idle_interval_ns);
  bool calm = !(busy_ && busy_());
  for (const auto& s : sensors_)
    calm = calm && s->calm();
  if (Status st = set_interval(calm ? idle : fast); !st.ok())
    SPDLOG_WARN("{}", st.error().message);
}

Status SensorHub::watch(int fd, std::function<void()> on_ready) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWatchedBase + watched_.size();
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0)
    return Error::from_errno("Failed to watch descriptor " + std::to_string(fd), errno);
  watched_.push_back(std::move(on_ready));
  return {};
}

Status SensorHub::run(const std::atomic<bool>& stop, const EventSink& out,
                      const std::function<void()>& on_tick) {
  // Every event is shown to every sensor before it leaves (see Sensor::observe).
  EventSink sink = [&](Event&& e) {
    for (auto& s : sensors_)
      s->attribute(e);
    for (auto& s : sensors_)
      s->observe(e);
    out(std::move(e));
  };
  // First tick right away: a filesystem that is already full is reported at start.
  for (auto& s : sensors_)
    s->tick(monotonic_ns(), sink);
  epoll_event evs[16];
  while (!stop.load()) {
    int n = epoll_wait(epfd_, evs, 16, 500);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return Error::from_errno("Failed to wait for sensor events", errno);
    }
    const uint64_t woke = monotonic_ns();
    struct Measure {
      SensorHub& h;
      uint64_t woke;
      ~Measure() {
        const uint64_t us = (monotonic_ns() - woke) / 1000;
        h.loop_us_[h.wakeups_ % kLoopSamples] =
            static_cast<uint32_t>(std::min<uint64_t>(us, UINT32_MAX));
        ++h.wakeups_;
        h.loop_max_us_ = std::max(h.loop_max_us_, us);
      }
    } measure{*this, woke};
    // What holds the loop for long is said (at most every 10 s): the watchdog's margin.
    auto timed = [&](const char* what, size_t sensor, auto&& f) {
      const uint64_t t = monotonic_ns();
      f();
      const uint64_t took = monotonic_ns() - t;
      if (took > kSlowNs && monotonic_ns() - last_slow_log_ns_ > 10000000000ull) {
        last_slow_log_ns_ = monotonic_ns();
        SPDLOG_WARN("Event loop: {}{}{} took {} ms", what, sensor < sensors_.size() ? " " : "",
                    sensor < sensors_.size() ? sensors_[sensor]->stats().name : "", took / 1000000);
      }
    };
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.u64 == UINT64_MAX) {
        uint64_t expirations = 0;
        if (read(timerfd_, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
          return Error::from_errno("Failed to read the tick timer", errno);
        // Drain before sampling so a tick sees the freshest kernel records.
        for (size_t k = 0; k < sensors_.size(); ++k)
          timed("draining", k, [&] { sensors_[k]->drain(sink); });
        const uint64_t now = monotonic_ns();
        for (size_t k = 0; k < sensors_.size(); ++k)
          timed("the tick of", k, [&] { sensors_[k]->tick(now, sink); });
        if (on_tick)
          timed("the pipeline's tick", SIZE_MAX, [&] { on_tick(); });
        pace();
      } else if (evs[i].data.u64 >= kWatchedBase &&
                 evs[i].data.u64 - kWatchedBase < watched_.size()) {
        timed("a watched descriptor (control socket)", SIZE_MAX,
              [&] { watched_[evs[i].data.u64 - kWatchedBase](); });
      } else if (evs[i].data.u64 < sensors_.size()) {
        timed("draining", evs[i].data.u64, [&] { sensors_[evs[i].data.u64]->drain(sink); });
        pace();  // a kernel record (an OOM kill, an ENOSPC) can end the idle pace at once
      }
    }
  }
  for (auto& s : sensors_)
    s->drain(sink);
  return {};
}

SensorHub::LoopStats SensorHub::loop_stats() const {
  LoopStats s;
  s.wakeups = wakeups_;
  s.max_ms = static_cast<double>(loop_max_us_) / 1000;
  const size_t n = std::min<uint64_t>(wakeups_, kLoopSamples);
  if (n == 0)
    return s;
  std::vector<uint32_t> v(loop_us_.begin(), loop_us_.begin() + static_cast<std::ptrdiff_t>(n));
  auto at = [&](double q) {
    auto k = v.begin() + static_cast<std::ptrdiff_t>(q * static_cast<double>(n - 1));
    std::nth_element(v.begin(), k, v.end());
    return static_cast<double>(*k) / 1000;
  };
  s.p50_ms = at(0.5);
  s.p99_ms = at(0.99);
  return s;
}

std::vector<SensorStats> SensorHub::stats() const {
  std::vector<SensorStats> out;
  for (const auto& s : sensors_)
    out.push_back(s->stats());
  for (const auto& d : disabled_)
    out.push_back(d);
  return out;
}

}  // namespace mend
