// Runs the real `mendd --trace` and collects the events it prints.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "mend/event.h"

namespace mend::test {

class TraceRunner {
 public:
  // `trace`: mendd --trace (events on stdout); otherwise the whole agent (ready when it logs
  // "mendd: running").
  explicit TraceRunner(std::vector<std::string> args, bool trace = true);
  ~TraceRunner();

  // Waits until mendd says its probes are attached. False if it exited first.
  bool wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Waits for an event matching `pred`; returns it, or nullopt on timeout.
  std::optional<Event> wait_for(const std::function<bool(const Event&)>& pred,
                                std::chrono::milliseconds timeout);
  std::vector<Event> events();
  // SIGTERM, wait; returns the exit code.
  int stop();
  // kill -9, wait: mendd gets no chance to finish anything.
  void kill_hard();
  pid_t pid() const { return pid_; }
  std::string err();
  // The drop counters mendd prints on exit: {"type":"trace_summary","sensors":[...]}.
  // Call after stop(). Returns the entry of `sensor`, or null.
  nlohmann::json summary(const std::string& sensor);
  int exit_code() const { return exit_code_; }
  // The control socket given to an agent-mode mendd when the test named none.
  const std::string& socket() const { return socket_; }

 private:
  void reader(int fd, bool is_stdout);
  void end(int sig);  // signal, wait, join the readers
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::string socket_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Event> events_;
  std::string err_;
  std::vector<std::string> bad_lines_;
  bool out_closed_ = false;
  std::thread out_thread_, err_thread_;
  int cleanup_ = 0;
  std::string ready_marker_;
};

}  // namespace mend::test
