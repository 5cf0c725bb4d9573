// OomSensor: one oom_kill event per kernel OOM kill (bpf/oom.bpf.c).
#include <spdlog/spdlog.h>

#include "bpf_decode.h"
#include "bpf_util.h"
#include "kernel_features.h"
#include "oom.skel.h"
#include "sensor.h"

namespace mend {

namespace {

class OomSensor final : public Sensor {
 public:
  explicit OomSensor(const SensorContext& ctx) : ctx_(ctx) {}
  ~OomSensor() override {
    ring_buffer__free(rb_);
    oom_bpf__destroy(skel_);
  }

  static std::unique_ptr<Sensor> create(const SensorContext& ctx) {
    return std::make_unique<OomSensor>(ctx);
  }

  const char* name() const override { return "oom"; }

  Status start() override {
    auto missing = ctx_.features->first_missing({"btf", "ringbuf", "tp_btf/mark_victim"});
    if (!missing.empty())
      return Error{"kernel lacks " + missing};
    skel_ = oom_bpf__open();
    if (!skel_)
      return Error::from_errno("Failed to open the oom BPF object", errno);
    if (int err = oom_bpf__load(skel_))
      return bpf_error("Failed to load the oom BPF programs", err);
    if (int err = oom_bpf__attach(skel_))
      return bpf_error("Failed to attach tp_btf/mark_victim", err);
    rb_ = ring_buffer__new(bpf_map__fd(skel_->maps.events), &OomSensor::on_record, this, nullptr);
    if (!rb_)
      return Error::from_errno("Failed to create the oom ring buffer", errno);
    return {};
  }

  std::vector<int> fds() const override { return {ring_buffer__epoll_fd(rb_)}; }

  void drain(const EventSink& emit) override {
    emit_ = &emit;
    ring_buffer__consume(rb_);
    emit_ = nullptr;
  }

  SensorStats stats() const override {
    SensorStats s;
    s.name = name();
    s.enabled = skel_ != nullptr;
    s.events = events_;
    s.decode_errors = decode_errors_;
    if (skel_) {
      auto k = read_percpu_stats(bpf_map__fd(skel_->maps.stats));
      s.kernel_drops = k[MEND_STAT_RB_DROPS];
      s.map_full = k[MEND_STAT_MAP_FULL];
      s.programs = program_stats(skel_->obj);
    }
    return s;
  }

 private:
  static int on_record(void* self, void* data, size_t size) {
    auto* s = static_cast<OomSensor*>(self);
    if (size < sizeof(mend_oom_event)) {
      ++s->decode_errors_;
      return 0;
    }
    mend_oom_event raw;
    std::memcpy(&raw, data, sizeof raw);
    Event e{raw.ts_ns, decode_oom(raw, s->ctx_.manager_cgroup_root)};
    ++s->events_;
    if (s->emit_)
      (*s->emit_)(std::move(e));
    return 0;
  }

  SensorContext ctx_;
  oom_bpf* skel_ = nullptr;
  ring_buffer* rb_ = nullptr;
  const EventSink* emit_ = nullptr;
  uint64_t events_ = 0;
  uint64_t decode_errors_ = 0;
};

}  // namespace

MEND_REGISTER_SENSOR(oom, OomSensor::create);

}  // namespace mend
