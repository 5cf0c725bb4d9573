// IoStallSensor: io_stall when a block device's request latency (p99 over a window, or the age
// of its oldest in-flight request) stays over the threshold. The kernel half (bpf/iolat.bpf.c)
// aggregates; this reads the maps once per tick.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <sstream>

#include "../systemd/unit_resolver.h"
#include "bpf_util.h"
#include "cgroup_names.h"
#include "detectors.h"
#include "iolat.skel.h"
#include "kernel_features.h"
#include "latency_hist.h"
#include "mend/text.h"
#include "mounts.h"
#include "psi.h"
#include "sensor.h"

namespace mend {

namespace {

using DevKey = std::pair<uint32_t, uint32_t>;

struct Interval {
  LatencyHist hist{};
  uint64_t count = 0;
  uint64_t max_us = 0;
};

struct DeviceState {
  explicit DeviceState(const IoSensorConfig& c)
      : alarm(c.duration_ns, c.clear_after_ns, c.reminder_ns) {}
  uint64_t last_count = 0;
  LatencyHist last_hist{};
  bool have_last = false;
  uint64_t last_progress_ns = 0;                     // a completion, or nothing in flight
  std::deque<std::pair<uint64_t, Interval>> window;  // (end of the interval, interval)
  Hysteresis alarm;
  bool warned_untimed = false;
};

struct CgKeyLess {
  bool operator()(const mend_io_cg_key& a, const mend_io_cg_key& b) const {
    return std::tie(a.cgroup_id, a.major, a.minor) < std::tie(b.cgroup_id, b.major, b.minor);
  }
};
using CgSnapshot = std::map<mend_io_cg_key, mend_io_cg_val, CgKeyLess>;

// dev_lat summed over CPUs; max_us only from CPUs whose max belongs to `epoch`.
struct DevTotals {
  uint64_t count = 0, untimed = 0, max_us = 0;
  LatencyHist hist{};
};

class IoStallSensor final : public Sensor {
 public:
  explicit IoStallSensor(const SensorContext& ctx) : ctx_(ctx), cfg_(ctx.config->io) {}
  ~IoStallSensor() override { iolat_bpf__destroy(skel_); }

  static std::unique_ptr<Sensor> create(const SensorContext& ctx) {
    return std::make_unique<IoStallSensor>(ctx);
  }

  const char* name() const override { return "io"; }

  Status start() override {
    auto missing = ctx_.features->first_missing({"btf", "tp_btf/block_rq_complete"});
    if (!missing.empty())
      return Error{"kernel lacks " + missing};
    skel_ = iolat_bpf__open();
    if (!skel_)
      return Error::from_errno("Failed to open the io BPF object", errno);
    skel_->rodata->slow_us = cfg_.latency_threshold_us;
    if (int err = iolat_bpf__load(skel_))
      return bpf_error("Failed to load the io BPF programs", err);
    if (int err = iolat_bpf__attach(skel_))
      return bpf_error("Failed to attach tp_btf/block_rq_complete", err);
    return {};
  }

  void tick(uint64_t now, const EventSink& emit) override {
    // The window is a span of time, not of ticks: ticks come further apart while all is calm.
    // An interval belongs to it while it ended less than window_ns ago (the newest always).
    auto in_window = [&](uint64_t end) { return now - end < cfg_.window_ns; };

    const uint64_t ended_epoch = skel_->bss->epoch;
    auto totals = read_dev_lat(ended_epoch);
    skel_->bss->epoch = ended_epoch + 1;

    std::map<DevKey, uint64_t> oldest_us;
    for (const auto& [dev, cur] : totals) {
      auto [it, fresh] = devices_.try_emplace(dev, cfg_);
      DeviceState& d = it->second;
      Interval iv;
      if (d.have_last && cur.count >= d.last_count) {
        iv.count = cur.count - d.last_count;
        for (int b = 0; b < MEND_HIST_BUCKETS; ++b)
          iv.hist[b] = cur.hist[b] - std::min(cur.hist[b], d.last_hist[b]);
        iv.max_us = cur.max_us;
      }
      d.last_count = cur.count;
      d.last_hist = cur.hist;
      d.have_last = true;
      d.window.emplace_back(now, iv);
      while (d.window.size() > 1 && !in_window(d.window.front().first))
        d.window.pop_front();
      if (cur.untimed > 0 && !d.warned_untimed) {
        d.warned_untimed = true;
        SPDLOG_WARN(
            "io sensor: device {}:{} has no request timestamps (queue/iostats is 0); "
            "its latency is not measured",
            dev.first, dev.second);
      }
      // A request that never completes: the block layer counts requests in flight and none
      // has completed for a while. The age of the oldest is at least that while.
      const int64_t inflight = kernel_inflight(dev);
      if (iv.count > 0 || inflight <= 0 || d.last_progress_ns == 0)
        d.last_progress_ns = now;
      oldest_us[dev] = (now - d.last_progress_ns) / 1000;
    }

    cg_history_.emplace_back(now, snapshot_cgroups());
    // One snapshot at or before the window's start is the base the window's bytes count from.
    while (cg_history_.size() > 2 && !in_window(cg_history_[1].first))
      cg_history_.pop_front();

    const double psi_some = read_psi(ctx_.procfs, "io").some_avg10;
    calm_ = true;
    for (auto& [dev, d] : devices_) {
      LatencyHist h{};
      uint64_t n = 0, mx = 0;
      for (const auto& [end, iv] : d.window) {
        for (int b = 0; b < MEND_HIST_BUCKETS; ++b)
          h[b] += iv.hist[b];
        n += iv.count;
        mx = std::max(mx, iv.max_us);
      }
      const uint64_t p50 = hist_quantile(h, 0.5), p99 = hist_quantile(h, 0.99);
      const uint64_t old = oldest_us.count(dev) ? oldest_us[dev] : 0;
      const uint64_t thr = cfg_.latency_threshold_us;
      const auto clear_thr = static_cast<uint64_t>(static_cast<double>(thr) * cfg_.clear_ratio);
      const bool over = (n >= cfg_.min_ios && p99 >= thr) || old >= thr;
      const bool under = (n < cfg_.min_ios || p99 < clear_thr) && old < clear_thr;
      Verdict v = d.alarm.update(now, over, under);
      // Calm: nothing over half the threshold and nothing firing (a stall's duration is timed
      // at the fast pace).
      calm_ = calm_ && !d.alarm.firing() && !over && (n < cfg_.min_ios || p99 < thr / 2) &&
              old < thr / 2;
      if (v == Verdict::None)
        continue;
      IoStall s;
      s.device = std::to_string(dev.first) + ":" + std::to_string(dev.second);
      s.name = to_utf8(device_name(dev));
      for (const auto* m : ctx_.mounts->by_disk(dev.first, dev.second, partitions(s.name)))
        s.mounts.push_back(to_utf8(m->mountpoint));
      if (!s.mounts.empty())
        s.mount = s.mounts.front();
      // The quantiles are bucket estimates (within a quarter of a power of two); no quantile
      // of the samples is above their maximum, so the report never says one is.
      s.p50_us = mx ? std::min(p50, mx) : p50;
      s.p99_us = mx ? std::min(p99, mx) : p99;
      s.max_us = mx;
      s.oldest_inflight_us = old;
      s.ios = n;
      s.psi_io_some_avg10 = psi_some;
      s.state = v == Verdict::Clear ? "cleared" : "firing";
      if (v != Verdict::Clear)
        s.top_units = top_units(dev);
      ++events_;
      emit(Event{now, std::move(s)});
    }
  }

  bool calm() const override { return calm_; }

  SensorStats stats() const override {
    SensorStats s;
    s.name = name();
    s.enabled = skel_ != nullptr;
    s.events = events_;
    if (skel_) {
      auto k = read_percpu_stats(bpf_map__fd(skel_->maps.stats));
      s.kernel_drops = k[MEND_STAT_RB_DROPS];
      s.map_full = k[MEND_STAT_MAP_FULL];
      s.programs = program_stats(skel_->obj);
    }
    return s;
  }

 private:
  CgSnapshot snapshot_cgroups() {
    CgSnapshot snap;
    for (const auto& [k, v] : dump_map<mend_io_cg_key, mend_io_cg_val>(
             bpf_map__fd(skel_->maps.io_cg), bpf_map__max_entries(skel_->maps.io_cg)))
      snap[k] = v;
    return snap;
  }

  std::vector<IoUnit> top_units(DevKey dev) {
    std::vector<IoUnit> out;
    if (cg_history_.size() < 2)
      return out;
    const auto& newest = cg_history_.back().second;
    const auto& oldest = cg_history_.front().second;
    for (const auto& [k, v] : newest) {
      if (k.major != dev.first || k.minor != dev.second)
        continue;
      mend_io_cg_val base{};
      if (auto it = oldest.find(k); it != oldest.end() && it->second.slow_ios <= v.slow_ios)
        base = it->second;
      IoUnit u;
      u.slow_ios = v.slow_ios - base.slow_ios;
      u.ios = u.slow_ios;  // only slow completions are attributed (see bpf/iolat.bpf.c)
      u.bytes = v.bytes - std::min(v.bytes, base.bytes);
      if (u.slow_ios == 0)
        continue;
      u.cgroup = k.cgroup_id ? ctx_.cgroups->io_path(k.cgroup_id) : "/";
      if (u.cgroup.empty())
        u.cgroup = "cgroup-id:" + std::to_string(k.cgroup_id);
      else
        u.unit = unit_from_cgroup(u.cgroup, ctx_.manager_cgroup_root).unit;
      out.push_back(std::move(u));
    }
    // Who issued the most slow I/O; then the most slow bytes.
    std::sort(out.begin(), out.end(), [](const IoUnit& a, const IoUnit& b) {
      return std::tie(a.slow_ios, a.bytes) > std::tie(b.slow_ios, b.bytes);
    });
    if (out.size() > cfg_.top_units)
      out.resize(cfg_.top_units);
    return out;
  }

  std::string sysfs_dev(DevKey dev) const {
    return ctx_.sysfs + "/dev/block/" + std::to_string(dev.first) + ":" +
           std::to_string(dev.second);
  }

  std::string device_name(DevKey dev) const {
    std::ifstream f(sysfs_dev(dev) + "/uevent");
    std::string line;
    while (std::getline(f, line))
      if (line.rfind("DEVNAME=", 0) == 0)
        return line.substr(8);
    return "";
  }

  // (major, minor) of the partitions of disk `name`.
  std::vector<std::pair<uint32_t, uint32_t>> partitions(const std::string& name) const {
    std::vector<std::pair<uint32_t, uint32_t>> out;
    if (name.empty())
      return out;
    for (int i = 1; i < 64; ++i) {
      for (const std::string& sep : {std::string(""), std::string("p")}) {
        std::ifstream f(ctx_.sysfs + "/class/block/" + name + "/" + name + sep + std::to_string(i) +
                        "/dev");
        uint32_t ma = 0, mi = 0;
        char colon = 0;
        if (f >> ma >> colon >> mi && colon == ':')
          out.emplace_back(ma, mi);
      }
    }
    return out;
  }

  // Requests in flight according to the block layer itself; -1 when unknown.
  int64_t kernel_inflight(DevKey dev) const {
    std::ifstream f(sysfs_dev(dev) + "/inflight");
    int64_t r = 0, w = 0;
    if (!(f >> r >> w))
      return -1;
    return r + w;
  }

  std::map<DevKey, DevTotals> read_dev_lat(uint64_t epoch) {
    std::map<DevKey, DevTotals> out;
    const int fd = bpf_map__fd(skel_->maps.dev_lat);
    const int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0)
      return out;
    std::vector<mend_dev_lat> vals(static_cast<size_t>(ncpu));
    mend_dev_key key{}, next{};
    const mend_dev_key* cur = nullptr;
    while (bpf_map_get_next_key(fd, cur, &next) == 0) {
      key = next;
      cur = &key;
      if (bpf_map_lookup_elem(fd, &key, vals.data()) != 0)
        continue;
      DevTotals& t = out[{key.major, key.minor}];
      for (const auto& v : vals) {
        t.count += v.count;
        t.untimed += v.untimed;
        if (v.max_epoch == epoch)
          t.max_us = std::max<uint64_t>(t.max_us, v.max_us);
        for (int b = 0; b < MEND_HIST_BUCKETS; ++b)
          t.hist[b] += v.hist[b];
      }
    }
    return out;
  }

  SensorContext ctx_;
  const IoSensorConfig& cfg_;
  iolat_bpf* skel_ = nullptr;
  std::map<DevKey, DeviceState> devices_;
  std::deque<std::pair<uint64_t, CgSnapshot>> cg_history_;
  bool calm_ = true;
  uint64_t events_ = 0;
};

}  // namespace

MEND_REGISTER_SENSOR(io, IoStallSensor::create);

}  // namespace mend
