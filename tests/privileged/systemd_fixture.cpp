#include "systemd_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

namespace mend::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// blkio: units with IOAccounting get a v1 blkio cgroup of their own (IO*Max limits, the io
// sensor's attribution).
const char* kHierarchies[] = {"systemd", "unified", "memory", "pids", "cpu", "cpuacct", "blkio"};

bool journald_listening() {
  int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strcpy(a.sun_path, "/run/systemd/journal/socket");
  bool ok = connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(s);
  return ok;
}

void remove_cgroup_tree(const std::string& dir) {
  if (!fs::exists(dir))
    return;
  std::vector<std::string> dirs;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec))
    if (it->is_directory(ec))
      dirs.push_back(it->path());
  dirs.push_back(dir);
  std::sort(dirs.begin(), dirs.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (int attempt = 0; attempt < 100; ++attempt) {
    bool all = true;
    for (const auto& d : dirs) {
      std::ifstream procs(d + "/cgroup.procs");
      pid_t p;
      while (procs >> p)
        kill(p, SIGKILL);
      if (rmdir(d.c_str()) != 0 && errno != ENOENT)
        all = false;
    }
    if (all)
      return;
    std::this_thread::sleep_for(50ms);
  }
}

}  // namespace

void ensure_journald() {
  static bool done = false;
  if (done || journald_listening()) {
    done = true;
    return;
  }
  done = true;
  const bool had_run_log = fs::exists("/run/log/journal");
  const bool had_run_journal = fs::exists("/run/systemd/journal");
  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execl("/lib/systemd/systemd-journald", "systemd-journald", nullptr);
    _exit(127);
  }
  for (int i = 0; i < 100 && !journald_listening(); ++i)
    std::this_thread::sleep_for(50ms);
  on_cleanup([pid, had_run_log, had_run_journal] {
    kill(pid, SIGTERM);
    wait_exit(pid);
    std::error_code ec;
    if (!had_run_log)
      fs::remove_all("/run/log/journal", ec);
    if (!had_run_journal)
      fs::remove_all("/run/systemd/journal", ec);
  });
}

UserManager::UserManager() : cg_(unique_name("mend-test-sd")) {
  ensure_journald();
  runtime_ = dir_.path() + "/run";
  config_ = dir_.path() + "/config";
  fs::create_directories(runtime_);
  chmod(runtime_.c_str(), 0700);
  fs::create_directories(config_ + "/systemd/user");
  setenv("XDG_RUNTIME_DIR", runtime_.c_str(), 1);
  setenv("XDG_CONFIG_HOME", config_.c_str(), 1);
  std::string cg = cg_;
  handle_ = on_cleanup([this, cg] {
    stop();
    for (const char* h : kHierarchies)
      remove_cgroup_tree("/sys/fs/cgroup/" + std::string(h) + "/" + cg);
  });
  start();
}

UserManager::~UserManager() {
  forget_cleanup(handle_);
  unsetenv("XDG_RUNTIME_DIR");
  unsetenv("XDG_CONFIG_HOME");
}

void UserManager::start() {
  // sd_booted() must be true while the manager starts; only then, so remove our marker again.
  const bool had_marker = fs::exists("/run/systemd/system");
  fs::create_directories("/run/systemd/system");
  pid_ = fork();
  if (pid_ == 0) {
    setsid();
    // Its own cgroup in every hierarchy, or it moves every process of the root cgroup (PID 1
    // included) into its init.scope.
    for (const char* h : kHierarchies) {
      std::string d = "/sys/fs/cgroup/" + std::string(h);
      if (!fs::exists(d))
        continue;
      d += "/" + cg_;
      fs::create_directories(d);
      std::ofstream(d + "/cgroup.procs") << getpid();
    }
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execl("/lib/systemd/systemd", "systemd", "--user", nullptr);
    _exit(127);
  }
  bool up = false;
  for (int i = 0; i < 200 && !up; ++i) {
    auto r = run({"systemctl", "--user", "is-system-running"});
    up = r.out.find("running") != std::string::npos || r.out.find("degraded") != std::string::npos;
    if (!up)
      std::this_thread::sleep_for(50ms);
  }
  if (!had_marker)
    rmdir("/run/systemd/system");
  if (!up)
    throw std::runtime_error("systemd --user did not come up");
}

void UserManager::stop() {
  if (pid_ <= 0)
    return;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    int st;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(50ms);
  }
  kill(pid_, SIGKILL);
  wait_exit(pid_);
  pid_ = -1;
}

void UserManager::crash_and_restart() {
  kill(pid_, SIGKILL);
  wait_exit(pid_);
  pid_ = -1;
  // Its units lose their manager; a new manager starts them afresh.
  start();
}

void UserManager::add_unit(const std::string& name, const std::string& text) {
  std::ofstream(config_ + "/systemd/user/" + name) << text;
  must_run({"systemctl", "--user", "daemon-reload"});
}

RunResult UserManager::systemctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"systemctl", "--user"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

std::string UserManager::show(const std::string& unit, const std::string& prop) {
  auto r = systemctl({"show", "-p", prop, "--value", unit});
  std::string v = r.out;
  while (!v.empty() && v.back() == '\n')
    v.pop_back();
  return v;
}

}  // namespace mend::test
