// PsiSensor: psi events when a resource's pressure (some avg10) crosses its threshold.
#include <fstream>
#include <sstream>

#include "detectors.h"
#include "kernel_features.h"
#include "psi.h"
#include "sensor.h"

namespace mend {

PsiReading parse_psi(std::string_view text) {
  PsiReading r;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string kind, field;
    ls >> kind;
    while (ls >> field) {
      if (field.rfind("avg10=", 0) != 0)
        continue;
      try {
        double v = std::stod(field.substr(6));
        (kind == "some" ? r.some_avg10 : r.full_avg10) = v;
      } catch (const std::exception&) {
      }
    }
  }
  return r;
}

PsiReading read_psi(const std::string& procfs, const std::string& resource) {
  std::ifstream f(procfs + "/pressure/" + resource);
  if (!f)
    return {};
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_psi(ss.str());
}

namespace {

class PsiSensor final : public Sensor {
 public:
  explicit PsiSensor(const SensorContext& ctx) : ctx_(ctx), cfg_(ctx.config->psi) {}
  static std::unique_ptr<Sensor> create(const SensorContext& ctx) {
    return std::make_unique<PsiSensor>(ctx);
  }
  const char* name() const override { return "psi"; }

  Status start() override {
    for (const char* r : {"cpu", "memory", "io"})
      if (ctx_.features->has(std::string("psi/") + r))
        resources_.push_back({r, Hysteresis(0, 5000000000ull, 0)});
    if (resources_.empty())
      return Error{"kernel lacks psi (/proc/pressure)"};
    return {};
  }

  // Calm while every pressure is under half its threshold and nothing fires.
  bool calm() const override { return calm_; }

  void tick(uint64_t now, const EventSink& emit) override {
    calm_ = true;
    for (auto& [name, alarm] : resources_) {
      PsiReading r = read_psi(ctx_.procfs, name);
      if (r.some_avg10 < 0)
        continue;
      double thr = name == "cpu"      ? cfg_.cpu_some_avg10
                   : name == "memory" ? cfg_.memory_some_avg10
                                      : cfg_.io_some_avg10;
      calm_ = calm_ && r.some_avg10 < thr / 2 && !alarm.firing();
      Verdict v = alarm.update(now, r.some_avg10 >= thr, r.some_avg10 < thr - cfg_.hysteresis);
      if (v == Verdict::None || v == Verdict::Remind)
        continue;
      Psi p{name, r.some_avg10, r.full_avg10 < 0 ? 0 : r.full_avg10,
            v == Verdict::Clear ? "cleared" : "firing"};
      ++events_;
      emit(Event{now, std::move(p)});
    }
  }

  SensorStats stats() const override {
    SensorStats s;
    s.name = name();
    s.enabled = !resources_.empty();
    s.events = events_;
    return s;
  }

 private:
  SensorContext ctx_;
  const PsiSensorConfig& cfg_;
  std::vector<std::pair<std::string, Hysteresis>> resources_;
  uint64_t events_ = 0;
  bool calm_ = true;
};

}  // namespace

MEND_REGISTER_SENSOR(psi, PsiSensor::create);

}  // namespace mend
