#include "metrics.h"

#include <prometheus/exposer.h>
#include <prometheus/text_serializer.h>

namespace mend {

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  incidents_opened_ = &BuildCounter()
                           .Name("mend_incidents_opened_total")
                           .Help("Incidents opened, by root-cause kind")
                           .Register(*registry_);
  incidents_resolved_ = &BuildCounter()
                             .Name("mend_incidents_resolved_total")
                             .Help("Incidents whose fix was verified, by root-cause kind")
                             .Register(*registry_);
  incidents_escalated_ = &BuildCounter()
                              .Name("mend_incidents_escalated_total")
                              .Help("Incidents escalated to a person, by root-cause kind")
                              .Register(*registry_);
  mttr_ = &BuildHistogram()
               .Name("mend_mttr_seconds")
               .Help("First fault signal to verified recovery, by root-cause kind")
               .Register(*registry_);
  actions_ = &BuildCounter()
                  .Name("mend_actions_total")
                  .Help("Actions by name and outcome (applied, failed, not_run, ...)")
                  .Register(*registry_);
  rollbacks_ = &BuildCounter()
                    .Name("mend_rollbacks_total")
                    .Help("Rollbacks by action and result")
                    .Register(*registry_);
  events_ = &BuildCounter()
                 .Name("mend_sensor_events_total")
                 .Help("Events emitted by each sensor")
                 .Register(*registry_);
  drops_ = &BuildCounter()
                .Name("mend_sensor_dropped_total")
                .Help("Records lost by each sensor (ring buffer full, map full, undecodable)")
                .Register(*registry_);
  bpf_run_seconds_ = &BuildCounter()
                          .Name("mend_bpf_program_run_seconds_total")
                          .Help(
                              "Time the kernel spent running each sensor's BPF programs (needs "
                              "run-time statistics: on while metrics are served)")
                          .Register(*registry_);
  bpf_runs_ = &BuildCounter()
                   .Name("mend_bpf_program_runs_total")
                   .Help("Runs of each sensor's BPF programs (with the run time above)")
                   .Register(*registry_);
  sensor_up_ = &BuildGauge()
                    .Name("mend_sensor_up")
                    .Help("1 when the sensor runs, 0 when disabled (missing kernel feature)")
                    .Register(*registry_);
  approvals_ = &BuildGauge()
                    .Name("mend_approvals_pending")
                    .Help("Plans waiting for mendctl approve/deny")
                    .Register(*registry_)
                    .Add({});
  budget_ = &BuildGauge()
                 .Name("mend_slo_error_budget_remaining_ratio")
                 .Help("Fraction of each unit's SLO error budget left in its window")
                 .Register(*registry_);
  bounds_ = &BuildCounter()
                 .Name("mend_bound_dropped_total")
                 .Help(
                     "What each bounded queue, map and cache of mendd dropped, evicted or "
                     "refused (docs/bounds.md)")
                 .Register(*registry_);
}

Metrics::~Metrics() = default;

Status Metrics::listen(const std::string& address) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address, 1);
    exposer_->RegisterCollectable(registry_);
  } catch (const std::exception& e) {
    return Error{"metrics: cannot listen on " + address + ": " + e.what(), EADDRINUSE};
  }
  return {};
}

int Metrics::port() const {
  if (!exposer_)
    return 0;
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports[0];
}

void Metrics::observe(const Record& r) {
  const std::string kind = r.root_cause.empty() ? "unknown" : r.root_cause;
  switch (r.kind) {
    case RecordKind::Verified: {
      incidents_resolved_->Add({{"root_cause", kind}}).Increment();
      auto it = r.extra.find("mttr_ms");
      if (it != r.extra.end()) {
        const double s = std::strtod(it->second.c_str(), nullptr) / 1000.0;
        if (s >= 0)
          mttr_
              ->Add({{"root_cause", kind}},
                    prometheus::Histogram::BucketBoundaries{1, 2, 5, 10, 30, 60, 120, 300, 600,
                                                            1800, 3600})
              .Observe(s);
      }
      break;
    }
    case RecordKind::Escalated:
      incidents_escalated_->Add({{"root_cause", kind}}).Increment();
      break;
    case RecordKind::ActionFinished: {
      std::string outcome = r.result;
      for (auto& c : outcome)
        if (c == ' ')
          c = '_';
      if (!r.action.empty())
        actions_->Add({{"action", r.action}, {"outcome", outcome}}).Increment();
      break;
    }
    case RecordKind::RolledBack:
      if (!r.action.empty())
        rollbacks_->Add({{"action", r.action}, {"result", r.result}}).Increment();
      break;
    default:
      break;
  }
}

void Metrics::incident_opened(const std::string& root_cause) {
  incidents_opened_->Add({{"root_cause", root_cause.empty() ? "unknown" : root_cause}}).Increment();
}

void Metrics::set_sensor_stats(const std::vector<SensorStats>& stats) {
  for (const auto& s : stats) {
    const uint64_t drops = s.kernel_drops + s.map_full + s.decode_errors;
    auto& [ev, dr] = last_stats_[s.name];
    if (s.events > ev)
      events_->Add({{"sensor", s.name}}).Increment(static_cast<double>(s.events - ev));
    if (drops > dr)
      drops_->Add({{"sensor", s.name}}).Increment(static_cast<double>(drops - dr));
    ev = std::max(ev, s.events);
    dr = std::max(dr, drops);
    sensor_up_->Add({{"sensor", s.name}}).Set(s.enabled ? 1 : 0);
    for (const auto& p : s.programs) {
      auto& [ns, n] = last_prog_[{s.name, p.name}];
      const prometheus::Labels labels{{"sensor", s.name}, {"program", p.name}};
      auto& secs = bpf_run_seconds_->Add(labels);
      auto& runs = bpf_runs_->Add(labels);
      if (p.run_time_ns > ns)
        secs.Increment(static_cast<double>(p.run_time_ns - ns) / 1e9);
      if (p.run_count > n)
        runs.Increment(static_cast<double>(p.run_count - n));
      ns = std::max(ns, p.run_time_ns);
      n = std::max(n, p.run_count);
    }
  }
}

void Metrics::set_approvals_pending(size_t n) {
  approvals_->Set(static_cast<double>(n));
}

void Metrics::set_error_budget(const std::string& unit, double remaining) {
  budget_->Add({{"unit", unit}}).Set(remaining);
}

void Metrics::set_bound_totals(const std::map<std::string, uint64_t>& totals) {
  for (const auto& [bound, total] : totals) {
    auto& counter = bounds_->Add({{"bound", bound}});  // at 0 from the first call
    uint64_t& last = last_bounds_[bound];
    if (total > last)
      counter.Increment(static_cast<double>(total - last));
    last = total;
  }
}

std::string Metrics::scrape() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace mend
