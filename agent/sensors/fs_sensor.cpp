// FsSensor: fs_enospc for every write-class syscall failing with ENOSPC/EDQUOT (kernel), and
// fs_fill from sampling every local filesystem's usage, fill rate and time-to-full, naming the
// top writers counted per (cgroup, filesystem) in the kernel (bpf/fs.bpf.c).
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cstring>
#include <deque>

#include <map>
#include <unordered_map>
#include "mend/text.h"

#include "../systemd/unit_resolver.h"
#include "bpf_decode.h"
#include "bpf_util.h"
#include "cgroup_names.h"
#include "detectors.h"
#include "fs.skel.h"
#include "kernel_features.h"
#include "mounts.h"
#include "sensor.h"

namespace mend {

namespace {

constexpr uint64_t kClearAfterNs = 3000000000ull;
constexpr uint64_t kWriterSnapshotNs = 1000000000ull;

struct WriterKeyLess {
  bool operator()(const mend_writer_key& a, const mend_writer_key& b) const {
    return std::tie(a.cgroup_id, a.dev_major, a.dev_minor) <
           std::tie(b.cgroup_id, b.dev_major, b.dev_minor);
  }
};
using WriterSnapshot = std::map<mend_writer_key, uint64_t, WriterKeyLess>;

struct MountState {
  MountState(const FsSensorConfig& c)
      : rate(c.rate_window_ns), alarm(0, kClearAfterNs, c.reminder_ns) {}
  FillRate rate;
  Hysteresis alarm;
  std::string reason;
  bool seen = true;
};

class FsSensor final : public Sensor {
 public:
  explicit FsSensor(const SensorContext& ctx) : ctx_(ctx), cfg_(ctx.config->fs) {}
  ~FsSensor() override {
    disarm();
    ring_buffer__free(rb_);
    fs_bpf__destroy(skel_);
  }

  static std::unique_ptr<Sensor> create(const SensorContext& ctx) {
    return std::make_unique<FsSensor>(ctx);
  }

  const char* name() const override { return "fs"; }

  Status start() override {
    auto missing = ctx_.features->first_missing({"btf", "ringbuf", "tp_btf/sys_exit"});
    if (!missing.empty()) {
      // Usage sampling needs no kernel support: keep fs_fill, without ENOSPC events and
      // without writer attribution.
      kernel_reason_ = "kernel lacks " + missing;
      SPDLOG_WARN(
          "fs sensor: ENOSPC/EDQUOT events and top writers disabled: {}; usage "
          "sampling continues",
          kernel_reason_);
      return {};
    }
    skel_ = fs_bpf__open();
    if (!skel_)
      return Error::from_errno("Failed to open the fs BPF object", errno);
    skel_->rodata->min_interval_ns = cfg_.enospc_fold_ns;
    skel_->rodata->count_writers = cfg_.count_writers ? 1 : 0;
    if (int err = fs_bpf__load(skel_))
      return bpf_error("Failed to load the fs BPF programs", err);
    rb_ = ring_buffer__new(bpf_map__fd(skel_->maps.events), &FsSensor::on_record, this, nullptr);
    if (!rb_)
      return Error::from_errno("Failed to create the fs ring buffer", errno);
    // Loaded now (a kernel that refuses the program says so at start), attached when needed.
    if (cfg_.enospc_probe == "always")
      if (Status st = arm(); !st.ok())
        return st;
    return {};
  }

  // The syscall-exit probe on: every syscall of every task pays for it from now on.
  Status arm() {
    if (link_)
      return {};
    link_ = bpf_program__attach(skel_->progs.handle_sys_exit);
    if (!link_) {
      int err = -errno;
      link_ = nullptr;
      return bpf_error("Failed to attach tp_btf/sys_exit", err);
    }
    ++arms_;
    return {};
  }

  void disarm() {
    if (!link_)
      return;
    bpf_link__destroy(link_);
    link_ = nullptr;
  }

  // What puts a filesystem at risk of failing a write soon: usage or inodes near the threshold,
  // a time-to-full under the horizon, or quotas (they fail writes on an empty disk).
  std::string risk_of(const Mount& m, double used_pct, double inode_pct, double eta) const {
    const double arm = cfg_.effective_arm_pct();
    const double arm_inodes = std::max(0.0, cfg_.inode_used_pct - (cfg_.used_pct - arm));
    const double horizon_s = static_cast<double>(cfg_.horizon_ns) / 1e9;
    auto pct = [](double v) { return std::to_string(static_cast<int>(v)) + "%"; };
    if (used_pct >= arm)
      return m.mountpoint + " at " + pct(used_pct) + " (arms at " + pct(arm) + ")";
    if (inode_pct >= arm_inodes)
      return m.mountpoint + " inodes at " + pct(inode_pct);
    // Three horizons out: armed (and counting writers) before the forecast itself fires.
    if (eta >= 0 && eta < 3 * horizon_s)
      return m.mountpoint + " full in " + std::to_string(static_cast<int64_t>(eta)) + " s";
    for (const std::string* o : {&m.options, &m.super_options})
      if (has_quota_option(*o))
        return m.mountpoint + " has quotas";
    return "";
  }

  // Quota options of ext4 and XFS (usrquota, grpquota, prjquota, quota, uquota, gquota, pquota,
  // ...qnoenforce, usrjquota=...); "noquota" is none.
  static bool has_quota_option(const std::string& opts) {
    size_t pos = 0;
    while (pos <= opts.size()) {
      size_t end = opts.find(',', pos);
      if (end == std::string::npos)
        end = opts.size();
      std::string o = opts.substr(pos, end - pos);
      o = o.substr(0, o.find('='));
      if (o != "noquota" && (o.find("quota") != std::string::npos || o == "qnoenforce" ||
                             o == "uqnoenforce" || o == "gqnoenforce" || o == "pqnoenforce"))
        return true;
      pos = end + 1;
    }
    return false;
  }

  // After a tick's samples: arm on the first filesystem at risk, disarm once none has been for
  // disarm_after.
  void arm_or_disarm(uint64_t now, const std::string& risk) {
    if (!skel_ || cfg_.enospc_probe == "always")
      return;
    if (!risk.empty()) {
      last_risk_ns_ = now;
      risk_ = risk;
      if (!link_) {
        if (Status st = arm(); !st.ok()) {
          SPDLOG_WARN("fs sensor: {}", st.error().message);
        } else {
          SPDLOG_INFO("fs sensor: ENOSPC/writer probe armed: {}", risk);
        }
      }
      return;
    }
    if (link_ && now - last_risk_ns_ >= cfg_.disarm_after_ns) {
      disarm();
      SPDLOG_INFO("fs sensor: ENOSPC/writer probe on standby: no filesystem at risk for {} s",
                  cfg_.disarm_after_ns / 1000000000ull);
    }
  }

  std::vector<int> fds() const override {
    if (!rb_)
      return {};
    return {ring_buffer__epoll_fd(rb_)};
  }

  void drain(const EventSink& emit) override {
    if (!rb_)
      return;
    emit_ = &emit;
    ring_buffer__consume(rb_);
    emit_ = nullptr;
  }

  void tick(uint64_t now, const EventSink& emit) override {
    if (auto r = ctx_.mounts->refresh(); !r.ok())
      SPDLOG_WARN("fs sensor: {}", r.error().message);
    if (link_ && cfg_.count_writers && now - last_snapshot_ >= kWriterSnapshotNs) {
      snapshot_writers(now);
      last_snapshot_ = now;
    }
    for (auto& [dev, st] : states_)
      st.seen = false;
    tick_risk_.clear();
    std::map<std::pair<uint32_t, uint32_t>, bool> done;
    for (const auto& m : ctx_.mounts->all()) {
      if (!cfg_.fstypes.count(m.fstype))
        continue;
      if (std::find(cfg_.exclude_mounts.begin(), cfg_.exclude_mounts.end(), m.mountpoint) !=
          cfg_.exclude_mounts.end())
        continue;
      // A filesystem mounted (or bind-mounted) several times is one filesystem.
      if (!done.emplace(std::make_pair(m.major, m.minor), true).second)
        continue;
      sample(now, m, emit);
    }
    for (auto it = states_.begin(); it != states_.end();)
      it = it->second.seen ? std::next(it) : states_.erase(it);
    arm_or_disarm(now, tick_risk_);
  }

  bool calm() const override {
    if (!tick_risk_.empty())
      return false;
    for (const auto& [dev, st] : states_)
      if (st.alarm.firing())
        return false;
    return true;
  }

  SensorStats stats() const override {
    SensorStats s;
    s.name = name();
    s.enabled = true;
    s.disabled_reason = kernel_reason_;
    s.events = events_;
    s.decode_errors = decode_errors_;
    if (skel_) {
      auto k = read_percpu_stats(bpf_map__fd(skel_->maps.stats));
      s.kernel_drops = k[MEND_STAT_RB_DROPS];
      s.map_full = k[MEND_STAT_MAP_FULL];
      s.programs = program_stats(skel_->obj);
      const std::string arms = ", armed " + std::to_string(arms_) + " time(s) since start";
      if (cfg_.enospc_probe == "always")
        s.mode = "ENOSPC/writer probe always attached (sensors.fs.enospc_probe: always)";
      else if (link_)
        s.mode = "ENOSPC/writer probe armed: " + risk_ + arms;
      else
        s.mode = "ENOSPC/writer probe on standby (no filesystem at " +
                 std::to_string(static_cast<int>(cfg_.effective_arm_pct())) + "% or filling)" +
                 arms;
    }
    return s;
  }

 private:
  static int on_record(void* self, void* data, size_t size) {
    auto* s = static_cast<FsSensor*>(self);
    if (size < sizeof(mend_fs_error_event)) {
      ++s->decode_errors_;
      return 0;
    }
    mend_fs_error_event raw;
    std::memcpy(&raw, data, sizeof raw);
    FsEnospc f = decode_fs_error(raw, *s->ctx_.mounts, s->ctx_.manager_cgroup_root);
    if (f.mount.empty() && !f.device.empty()) {
      // Mounted since the last refresh: look again, at most ten times a second.
      if (auto r = s->ctx_.mounts->refresh_at_most_every(monotonic_ns(), 100000000ull);
          r.ok() && *r)
        f = decode_fs_error(raw, *s->ctx_.mounts, s->ctx_.manager_cgroup_root);
    }
    if (raw.cgroup_id) {
      // The writer's cgroup as mendd's own cgroup mount shows it, found by its identity (the
      // id): the kernel's path starts at the host's root, which is not the manager's root when
      // mendd runs in a cgroup namespace (a container, the booted-system test).
      const std::string seen = s->ctx_.cgroups->v2_path(raw.cgroup_id);
      if (!seen.empty() && seen != f.cgroup) {
        f.cgroup = seen;
        f.unit = unit_from_cgroup(seen, s->ctx_.manager_cgroup_root).unit;
      } else if (seen.empty() && !f.cgroup.empty() && f.cgroup.find("/…") == std::string::npos) {
        s->ctx_.cgroups->remember_v2(raw.cgroup_id, f.cgroup);  // gone already: the kernel's
      }
    }
    ++s->events_;
    if (s->emit_)
      (*s->emit_)(Event{raw.ts_ns, std::move(f)});
    return 0;
  }

  void snapshot_writers(uint64_t now) {
    auto entries = dump_map<mend_writer_key, mend_writer_val>(
        bpf_map__fd(skel_->maps.writers), bpf_map__max_entries(skel_->maps.writers));
    WriterSnapshot snap;
    for (const auto& [k, v] : entries)
      snap[k] = v.bytes;
    writer_history_.emplace_back(now, std::move(snap));
    while (writer_history_.size() > 2 &&
           now - writer_history_.front().first > cfg_.rate_window_ns + kWriterSnapshotNs)
      writer_history_.pop_front();
  }

  // Bytes written to (major, minor) per cgroup over the recent window, largest first.
  std::vector<Writer> top_writers(uint32_t major, uint32_t minor) {
    std::vector<Writer> out;
    if (writer_history_.empty())
      return out;
    const auto& newest = writer_history_.back().second;
    const auto& oldest = writer_history_.front().second;
    std::vector<std::pair<uint64_t, uint64_t>> by_cg;  // (bytes, cgroup id)
    for (const auto& [k, bytes] : newest) {
      if (k.dev_major != major || k.dev_minor != minor)
        continue;
      uint64_t base = 0;
      if (writer_history_.size() > 1)
        if (auto it = oldest.find(k); it != oldest.end() && it->second <= bytes)
          base = it->second;  // an LRU-evicted and re-created entry counts from zero
      if (bytes > base)
        by_cg.emplace_back(bytes - base, k.cgroup_id);
    }
    std::sort(by_cg.rbegin(), by_cg.rend());
    bool rescanned = false;  // one walk names every writer still alive
    for (const auto& [bytes, id] : by_cg) {
      if (out.size() >= cfg_.top_writers)
        break;
      Writer w;
      w.cgroup = ctx_.cgroups->v2_path(id, !rescanned);
      rescanned |= w.cgroup.empty();
      if (w.cgroup.empty())
        w.cgroup = "cgroup-id:" + std::to_string(id);
      else
        w.unit = unit_from_cgroup(w.cgroup, ctx_.manager_cgroup_root).unit;
      w.bytes = bytes;
      out.push_back(std::move(w));
    }
    return out;
  }

  void sample(uint64_t now, const Mount& m, const EventSink& emit) {
    struct statvfs sv {};
    if (statvfs(m.mountpoint.c_str(), &sv) != 0 || sv.f_blocks == 0)
      return;  // unmounted under us, or not a block filesystem: nothing to say
    const uint64_t frsize = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
    const uint64_t used_blocks = sv.f_blocks - sv.f_bfree;
    const uint64_t denom = used_blocks + sv.f_bavail;  // as df: reserved blocks are not usable
    const double used_pct = denom ? 100.0 * static_cast<double>(used_blocks) / denom : 0;
    const double inode_pct =
        sv.f_files ? 100.0 * static_cast<double>(sv.f_files - sv.f_ffree) / sv.f_files : 0;
    const uint64_t avail = sv.f_bavail * frsize;

    auto [it, fresh] = states_.try_emplace(m.device(), cfg_);
    MountState& st = it->second;
    st.seen = true;
    st.rate.add(now, used_blocks * frsize);
    const double rate = st.rate.bytes_per_second();
    const double eta = st.rate.eta_seconds(avail, static_cast<double>(cfg_.min_rate_bps));
    const double horizon_s = static_cast<double>(cfg_.horizon_ns) / 1e9;
    if (tick_risk_.empty())
      tick_risk_ = risk_of(m, used_pct, inode_pct, eta);

    std::string reason;
    if (used_pct >= cfg_.used_pct)
      reason = "usage";
    else if (inode_pct >= cfg_.inode_used_pct)
      reason = "inodes";
    else if (eta >= 0 && eta < horizon_s)
      reason = "eta";
    const bool under = used_pct < cfg_.used_pct - cfg_.hysteresis_pct &&
                       inode_pct < cfg_.inode_used_pct - cfg_.hysteresis_pct &&
                       (eta < 0 || eta > 1.5 * horizon_s);
    Verdict v = st.alarm.update(now, !reason.empty(), under);
    // The forecast came true: a volume firing on time-to-full has crossed the usage (or inode)
    // threshold. Said at once, as a new firing report: policies for a full volume act on it.
    // Again after a fix that freed space while the fill went on (firing on the forecast in
    // between, never clearly back to normal).
    const bool came_true = v == Verdict::None && st.alarm.firing() && st.reason == "eta" &&
                           (reason == "usage" || reason == "inodes");
    if (v == Verdict::Fire || (st.alarm.firing() && !reason.empty()))
      st.reason = reason;
    if (v == Verdict::None && !came_true)
      return;

    FsFill f;
    f.mount = to_utf8(m.mountpoint);
    f.device = m.device();
    f.fstype = to_utf8(m.fstype);
    f.used_pct = used_pct;
    f.avail_bytes = avail;
    f.size_bytes = sv.f_blocks * frsize;
    f.inode_used_pct = inode_pct;
    f.fill_rate_bps = rate;
    f.eta_full_s = eta;
    f.state = v == Verdict::Clear ? "cleared" : "firing";
    f.reason = v == Verdict::Clear ? "" : (reason.empty() ? st.reason : reason);
    if (v != Verdict::Clear && skel_ && cfg_.count_writers) {
      // A fast fill can cross the threshold between two periodic snapshots: take one now.
      snapshot_writers(now);
      f.top_writers = top_writers(m.major, m.minor);
    }
    ++events_;
    emit(Event{now, std::move(f)});
  }

  SensorContext ctx_;
  const FsSensorConfig& cfg_;
  fs_bpf* skel_ = nullptr;
  ring_buffer* rb_ = nullptr;
  bpf_link* link_ = nullptr;  // the syscall-exit probe, while attached
  uint64_t arms_ = 0;
  uint64_t last_risk_ns_ = 0;
  std::string risk_, tick_risk_;  // why it was armed; what this tick found at risk
  const EventSink* emit_ = nullptr;
  std::string kernel_reason_;
  std::map<std::string, MountState> states_;
  std::deque<std::pair<uint64_t, WriterSnapshot>> writer_history_;
  uint64_t last_snapshot_ = 0;
  uint64_t events_ = 0;
  uint64_t decode_errors_ = 0;
};

}  // namespace

MEND_REGISTER_SENSOR(fs, FsSensor::create);

}  // namespace mend
