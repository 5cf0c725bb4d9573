// Prometheus metrics (prometheus-cpp), exposed on a localhost address when mend.yaml says
// `metrics: {listen: 127.0.0.1:9464}`, off otherwise. Counters follow mend's own records (what
// journald gets, the metrics count), gauges are set every tick from the pipeline's state.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../sensors/sensor.h"
#include "journal.h"
#include "mend/result.h"

namespace prometheus {
class Exposer;
}

namespace mend {

class Metrics {
 public:
  Metrics();
  ~Metrics();
  // Serves /metrics on `address` ("127.0.0.1:9464"; port 0 picks one). Error when it cannot bind.
  Status listen(const std::string& address);
  int port() const;  // the bound port, 0 when not listening

  // Every record mendd emits (verified, escalated, actions, rollbacks).
  void observe(const Record& r);
  // An incident's root cause was named for the first time.
  void incident_opened(const std::string& root_cause);
  void set_sensor_stats(const std::vector<SensorStats>& stats);
  void set_approvals_pending(size_t n);
  void set_error_budget(const std::string& unit, double remaining_fraction);
  // What each bound of docs/bounds.md dropped, evicted or refused so far (totals).
  void set_bound_totals(const std::map<std::string, uint64_t>& totals);
  // The text exposition format (tests, and `mendctl status -o json` could use it).
  std::string scrape() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  prometheus::Family<prometheus::Counter>* incidents_opened_;
  prometheus::Family<prometheus::Counter>* incidents_resolved_;
  prometheus::Family<prometheus::Counter>* incidents_escalated_;
  prometheus::Family<prometheus::Histogram>* mttr_;
  prometheus::Family<prometheus::Counter>* actions_;
  prometheus::Family<prometheus::Counter>* rollbacks_;
  prometheus::Family<prometheus::Counter>* events_;
  prometheus::Family<prometheus::Counter>* drops_;
  prometheus::Family<prometheus::Gauge>* sensor_up_;
  prometheus::Family<prometheus::Counter>* bpf_run_seconds_;
  prometheus::Family<prometheus::Counter>* bpf_runs_;
  // (sensor, program) -> (run time ns, runs) already counted
  std::map<std::pair<std::string, std::string>, std::pair<uint64_t, uint64_t>> last_prog_;
  prometheus::Gauge* approvals_;
  prometheus::Family<prometheus::Gauge>* budget_;
  std::map<std::string, std::pair<uint64_t, uint64_t>> last_stats_;  // sensor -> (events, drops)
  prometheus::Family<prometheus::Counter>* bounds_;
  std::map<std::string, uint64_t> last_bounds_;
};

}  // namespace mend
