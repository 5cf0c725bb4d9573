// UnitsSensor: unit_state events from the systemd manager (sd-bus signals), with the patterns
// of unit_tracker.h. Reconnects when the bus goes away.
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "../sensors/sensor.h"
#include "systemd_bus.h"
#include "unit_resolver.h"

namespace mend {

namespace {

constexpr uint64_t kReconnectNs = 1000000000ull;

class UnitsSensor final : public Sensor {
 public:
  explicit UnitsSensor(const SensorContext& ctx)
      : ctx_(ctx), bus_(ctx.bus == "user" ? BusScope::User : BusScope::System, tracker_) {}
  ~UnitsSensor() override {
    if (epfd_ >= 0)
      close(epfd_);
  }

  static std::unique_ptr<Sensor> create(const SensorContext& ctx) {
    return std::make_unique<UnitsSensor>(ctx);
  }

  const char* name() const override { return "units"; }

  Status start() override {
    if (ctx_.bus == "none")
      return Error{"no systemd bus configured (--bus none)"};
    // The bus fd changes when we reconnect; the hub watches this epoll fd instead.
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0)
      return Error::from_errno("Failed to create epoll instance", errno);
    std::vector<Event> ignored;
    if (auto st = bus_.connect(monotonic_ns(), ignored); !st.ok())
      return st;
    return watch();
  }

  std::vector<int> fds() const override { return {epfd_}; }

  void drain(const EventSink& emit) override {
    if (!bus_.connected())
      return;
    std::vector<Event> out;
    Status st = bus_.process(monotonic_ns(), out);
    for (auto& e : out) {
      ++events_;
      emit(std::move(e));
    }
    if (!st.ok()) {
      SPDLOG_WARN("units sensor: {}; reconnecting", st.error().message);
      ++disconnects_;
    }
  }

  void tick(uint64_t now, const EventSink& emit) override {
    std::vector<Event> out;
    if (!bus_.connected() && now - last_attempt_ >= kReconnectNs) {
      last_attempt_ = now;
      if (auto st = bus_.connect(now, out); st.ok() && watch().ok())
        SPDLOG_INFO("units sensor: reconnected to the systemd manager");
    }
    tracker_.tick(now, out);
    for (auto& e : out) {
      ++events_;
      emit(std::move(e));
    }
  }

  // Which unit a cgroup belongs to is the manager's word: its own unit -> ControlGroup map
  // (the tracker's cache of it), else a path laid out the way the manager lays out its tree
  // below its own cgroup, unless the manager places the named unit elsewhere.
  void attribute(Event& e) override {
    if (auto* k = std::get_if<OomKill>(&e.payload)) {
      std::string u = owner(k->dfl_cgroup, k->unit);
      k->unit = u.empty() ? owner(k->cgroup, k->unit) : u;
    } else if (auto* f = std::get_if<FsEnospc>(&e.payload)) {
      f->unit = owner(f->cgroup, f->unit);
    } else if (auto* x = std::get_if<FsFill>(&e.payload)) {
      for (auto& w : x->top_writers)
        w.unit = owner(w.cgroup, w.unit);
    } else if (auto* io = std::get_if<IoStall>(&e.payload)) {
      for (auto& u : io->top_units)
        u.unit = owner(u.cgroup, u.unit);
    }
  }

  void observe(const Event& e) override {
    if (const auto* k = std::get_if<OomKill>(&e.payload); k && !k->unit.empty())
      tracker_.note_oom(k->unit, k->pid, e.ts_ns);
  }

  SensorStats stats() const override {
    SensorStats s;
    s.name = name();
    s.enabled = true;
    s.events = events_;
    s.decode_errors = disconnects_;
    s.unattributed = unattributed_;
    return s;
  }

 private:
  std::string owner(const std::string& cgroup, const std::string& claimed) {
    if (cgroup.empty() || cgroup.front() != '/')
      return "";  // unknown ("cgroup-id:N"): no unit
    if (const UnitInfo* m = tracker_.by_cgroup(cgroup);
        m && m->name.size() > 6 && m->name.compare(m->name.size() - 6, 6, ".slice") != 0)
      return m->name;
    if (!bus_.manager_cgroup().empty())
      root_ = bus_.manager_cgroup();
    std::string unit = unit_from_cgroup(cgroup, root_).unit;
    if (unit.empty() && claimed.empty())
      return "";
    // The manager knows the unit and puts it somewhere else: an impersonation (or a stale
    // name); no unit rather than the wrong one.
    const UnitInfo* known = unit.empty() ? nullptr : tracker_.find(unit);
    if (unit.empty() || (known && !known->cgroup.empty())) {
      if (++unattributed_ <= 10 || unattributed_ % 1000 == 0)
        SPDLOG_WARN(
            "units sensor: cgroup {} is not {}'s by the manager's tree; no unit ({} so far)",
            cgroup, unit.empty() ? claimed : unit, unattributed_);
      return "";
    }
    return unit;
  }

  Status watch() {
    epoll_event ev{};
    ev.events = EPOLLIN;
    int fd = bus_.fd();
    epoll_ctl(epfd_, EPOLL_CTL_DEL, watched_fd_, nullptr);
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0)
      return Error::from_errno("Failed to watch the systemd bus", errno);
    watched_fd_ = fd;
    return {};
  }

  SensorContext ctx_;
  UnitTracker tracker_;
  SystemdBus bus_;
  int epfd_ = -1;
  int watched_fd_ = -1;
  uint64_t last_attempt_ = 0;
  uint64_t events_ = 0;
  uint64_t disconnects_ = 0;
  uint64_t unattributed_ = 0;
  std::string root_ = "/";
};

}  // namespace

MEND_REGISTER_SENSOR(units, UnitsSensor::create);

}  // namespace mend
