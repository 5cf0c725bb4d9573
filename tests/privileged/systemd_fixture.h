// A real systemd user manager and a real journald for the privileged tier (TESTING.md,
// method 1: ~0.5 s). The manager runs in its own cgroup in every hierarchy, so it never
// touches the processes of the host; everything is stopped and removed on destruction.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "fixtures.h"

namespace mend::test {

// Starts a journald unless one already listens; it is stopped at exit.
void ensure_journald();

class UserManager {
 public:
  UserManager();
  ~UserManager();
  void add_unit(const std::string& name, const std::string& text);
  RunResult systemctl(const std::vector<std::string>& args);
  std::string show(const std::string& unit, const std::string& prop);
  pid_t manager_pid() const { return pid_; }
  const std::string& cgroup_name() const { return cg_; }
  // Kills the manager (SIGKILL) and starts a fresh one in the same cgroup and runtime dir.
  void crash_and_restart();

 private:
  void start();
  void stop();
  TempDir dir_;
  std::string cg_;
  std::string runtime_, config_;
  pid_t pid_ = -1;
  int handle_ = 0;
};

}  // namespace mend::test
