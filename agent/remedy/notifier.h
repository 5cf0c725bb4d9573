// The escalation notify command, run off the event loop: one worker thread takes pages from a
// bounded queue and runs each (argv, no shell, killed at its timeout). A storm of escalations
// fills the queue, not the loop: past the bound the oldest waiting page is dropped and counted.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>

#include "spawn.h"

namespace mend {

class Notifier {
 public:
  static constexpr size_t kMaxQueued = 64;
  Notifier() = default;
  // Pages still queued are sent before it goes (each bounded by its own timeout).
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  void send(SpawnOptions page);
  // Waits until every queued page was run (tests, shutdown).
  void drain();
  uint64_t sent() const;
  uint64_t failed() const;
  uint64_t dropped() const;

 private:
  void run();
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::deque<SpawnOptions> queue_;
  bool busy_ = false;
  bool stop_ = false;
  uint64_t sent_ = 0, failed_ = 0, dropped_ = 0;
  std::thread worker_;
};

}  // namespace mend
