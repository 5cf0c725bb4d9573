// Correlation: groups the events of one failure into one incident and names its root cause.
// Time is the events' own ts_ns (live: CLOCK_MONOTONIC; replay: whatever the file says), so a
// replay is deterministic and as fast as the CPU allows.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "mend/incident.h"
#include "rule.h"

namespace mend {

struct CorrelatorConfig {
  uint64_t window_ns = 300000000000ull;  // an event joins an incident active within this window
  uint64_t quiet_ns = 600000000000ull;   // an incident closes after this long without events
  uint64_t reorder_ns = 2000000000ull;   // events may arrive this much out of order
  size_t max_evidence = 64;              // distinct evidence entries kept per incident
  std::string id_prefix = "inc-";
  // Closed incidents kept for mendctl after their quiet period, oldest forgotten first (the
  // live agent keeps a few hundred; a replay keeps them all, its input bounds them).
  size_t max_closed = SIZE_MAX;
  // Open incidents at once: past it the least recently updated one is closed early (counted).
  size_t max_open = 10000;
  // Units whose latest memory reading is remembered (global OOM: the largest consumer).
  size_t max_memory_units = 4096;
  // Events held for reordering: past it the oldest is processed at once (counted), whatever
  // the reorder tolerance says.
  size_t max_buffered = 65536;
};

class Correlator {
 public:
  explicit Correlator(CorrelatorConfig cfg = {});
  // Buffers the event; events are processed in ts order once they are older than the reorder
  // tolerance relative to the newest seen.
  void push(Event e);
  // Processes everything still buffered (end of input) and brings every root cause up to date.
  void flush();
  // Advances time without an event (live: closes incidents whose quiet period is over).
  void advance(uint64_t now_ns);
  // Every incident opened so far, in opening order (merged ones are gone).
  std::vector<const Incident*> incidents() const;
  uint64_t events_seen() const { return events_seen_; }
  uint64_t events_ignored() const { return events_ignored_; }  // joined nothing, opened nothing
  size_t open_incidents() const { return open_; }
  uint64_t opened() const { return next_id_ - 1; }                 // every incident so far
  uint64_t closed_forgotten() const { return closed_forgotten_; }  // over max_closed
  uint64_t closed_early() const { return closed_early_; }          // over max_open
  uint64_t reorder_overflow() const { return reorder_overflow_; }  // over max_buffered
  size_t buffered() const { return buffer_.size(); }
  // Called after an incident changed (live pipeline, latency benchmark).
  std::function<void(const Incident&, const Event&)> on_update;
  // Called just before an incident is forgotten: closed and over max_closed, or merged into
  // another (its pointer is invalid afterwards).
  std::function<void(const Incident&)> on_forget;

 private:
  struct Pending {
    Event event;
    std::string order_key;
  };
  void process(const Event& e);
  void close_quiet(uint64_t now);
  void close(Incident& inc, uint64_t closed_ns);
  void forget_closed();
  void reevaluate(Incident& inc);
  void add_evidence(Incident& inc, const Event& e);
  void merge_into(Incident& dst, Incident& src);
  void index(const Incident& inc, const std::string& entity);

  CorrelatorConfig cfg_;
  std::vector<std::unique_ptr<RootCauseRule>> rules_;
  std::multimap<std::pair<uint64_t, std::string>, Event> buffer_;
  uint64_t max_ts_ = 0;
  std::vector<std::unique_ptr<Incident>> incidents_;
  std::unordered_map<std::string, std::set<Incident*>> by_entity_;  // open incidents only
  std::map<Incident*, std::map<std::string, bool>> faults_;         // condition -> firing
  std::map<Incident*, std::map<std::string, size_t>> evidence_keys_;
  // The latest unit_state with memory accounting of each unit: at a global OOM the largest
  // consumer is evidence even if it is not the victim and did not fail.
  std::map<std::string, Event> memory_by_unit_;
  uint64_t next_id_ = 1;
  uint64_t next_close_check_ = 0;
  uint64_t events_seen_ = 0;
  uint64_t events_ignored_ = 0;
  size_t open_ = 0, closed_ = 0;
  uint64_t closed_forgotten_ = 0, closed_early_ = 0, reorder_overflow_ = 0;
};

// What an event says about the world, for grouping: its entities ("unit:x", "mount:/m",
// "device:7:1", "cgroup:/c", "pid:42"), whether it is a fault signal that may open an incident,
// and the fault conditions it raises or clears.
struct EventFacts {
  std::vector<std::string> entities;
  std::vector<std::string> links;  // entities it only connects to (dependencies)
  bool fault = false;
  std::vector<std::pair<std::string, bool>> conditions;  // (condition, firing)
};
EventFacts facts_of(const Event& e);

}  // namespace mend
