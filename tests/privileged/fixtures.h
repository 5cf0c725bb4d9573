// Fixtures for the privileged tier: real loop filesystems, real cgroups, real processes.
// Everything they create has a unique name and is removed in the destructor, and by a
// SIGINT/SIGTERM handler if the run is interrupted, so the machine is left as it was found.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace mend::test {

// Skips (or, under MEND_REQUIRE_PRIVILEGED=1, fails) when not root.
#define MEND_REQUIRE_ROOT()                                                      \
  do {                                                                           \
    if (auto why = ::mend::test::privileged_unavailable(); !why.empty()) {       \
      if (::mend::test::privileged_required())                                   \
        FAIL() << "MEND_REQUIRE_PRIVILEGED=1 but this test cannot run: " << why; \
      GTEST_SKIP() << why;                                                       \
    }                                                                            \
  } while (0)

std::string privileged_unavailable();
bool privileged_required();

std::string unique_name(const std::string& prefix);

struct RunResult {
  int status = -1;  // exit code, or 128 + signal
  std::string out;
  std::string err;
};
// Runs argv without a shell and waits.
RunResult run(const std::vector<std::string>& argv);
// Runs argv and fails the test on a non-zero exit.
std::string must_run(const std::vector<std::string>& argv);

// Registers a cleanup to run at exit or on SIGINT/SIGTERM; returns a handle for forget().
int on_cleanup(std::function<void()> f);
void forget_cleanup(int handle);

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int handle_;
};

// An image file, a loop device over it, a filesystem on it, mounted.
class LoopFs {
 public:
  LoopFs(const std::string& dir, const std::string& fstype, const std::string& size,
         bool direct_io = false);
  ~LoopFs();
  const std::string& mnt() const { return mnt_; }
  const std::string& dev() const { return dev_; }  // /dev/loopN
  std::string majmin() const;                      // "7:N"
  std::string name() const;                        // "loopN"
  const std::string& image() const { return image_; }

 private:
  std::string image_, mnt_, dev_;
  int handle_;
};

// A cgroup in one hierarchy (e.g. /sys/fs/cgroup/memory). Killed and removed on destruction.
class Cgroup {
 public:
  Cgroup(const std::string& hierarchy, const std::string& name);
  ~Cgroup();
  const std::string& dir() const { return dir_; }
  std::string path() const { return "/" + name_; }  // as the kernel names it
  void write(const std::string& file, const std::string& value) const;

 private:
  std::string dir_, name_;
  int handle_;
};

// Starts argv in the given cgroup directories (cgroup.procs), without a shell. Returns pid.
pid_t spawn_in(const std::vector<std::string>& cgroup_dirs, const std::vector<std::string>& argv,
               uid_t uid = 0);
int wait_exit(pid_t pid);  // exit code, or 128 + signal

// The cgroup2 (unified) mount, and the v1 hierarchies, as this host has them.
std::string cgroup2_root();
std::string v1_hierarchy(const std::string& controller);  // "" when not mounted as v1

}  // namespace mend::test
