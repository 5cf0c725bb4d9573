// The control socket's request parsing with the real command handlers behind it (status,
// incidents, explain, approve, deny, pause, resume) over an empty agent: any bytes give an
// answer that is valid JSON text, never an exception.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "correlate/correlator.h"
#include "ctl/commands.h"
#include "ctl/control.h"
#include "mend/text.h"
#include "policy/slo.h"
#include "remedy/executor.h"
#include "systemd/unit_ops.h"

namespace {

class NoUnits final : public mend::UnitOps {
 public:
  mend::Result<std::string> start(const std::string&, uint64_t) override { return none(); }
  mend::Result<std::string> stop(const std::string&, uint64_t) override { return none(); }
  mend::Result<std::string> restart(const std::string&, uint64_t) override { return none(); }
  mend::Result<std::string> try_restart(const std::string&, uint64_t) override { return none(); }
  mend::Result<std::string> reload(const std::string&, uint64_t) override { return none(); }
  mend::Status reset_failed(const std::string&) override { return mend::Error{"no"}; }
  mend::Result<std::string> active_state(const std::string&) override { return none(); }
  mend::Result<mend::PropertyValue> get_property(const std::string&, const std::string&) override {
    return mend::Error{"no"};
  }
  mend::Status set_property(const std::string&, const std::string&,
                            const mend::PropertyValue&) override {
    return mend::Error{"no"};
  }

 private:
  static mend::Result<std::string> none() { return mend::Error{"no systemd here"}; }
};

class NoProbe final : public mend::RecoveryProbe {
 public:
  mend::Result<bool> holds(const mend::VerifyIR&, const mend::Incident&, const std::string&,
                           uint64_t, std::string&) override {
    return false;
  }
};

struct Agent {
  NoUnits units;
  NoProbe probe;
  mend::Correlator correlator;
  mend::SloTracker slo{{}, ""};
  std::unique_ptr<mend::Executor> executor;
  mend::AgentView view;
  Agent() {
    mend::ExecutorConfig cfg;
    char tmpl[] = "/tmp/mend-fuzz-ctl-XXXXXX";
    cfg.state_dir = mkdtemp(tmpl);
    cfg.guardrails.pause_file = cfg.state_dir + "/pause";
    executor = std::make_unique<mend::Executor>(cfg, units, probe, nullptr);
    view.correlator = &correlator;
    view.executor = executor.get();
    view.slo = &slo;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Agent agent;
  const std::string line(reinterpret_cast<const char*>(data), size);
  mend::ControlHandler h = [](const std::string& c, const nlohmann::json& a, const mend::Peer& p) {
    return mend::handle_command(agent.view, c, a, p, 1000000000ull);
  };
  bool served = false;
  const nlohmann::json resp = mend::answer_request(line, h, mend::Peer{}, served);
  const std::string text = mend::dump_json(resp);
  if (!mend::is_valid_utf8(text) || nlohmann::json::parse(text, nullptr, false).is_discarded())
    __builtin_trap();
  return 0;
}
