#include "fixtures.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

namespace mend::test {

namespace fs = std::filesystem;

namespace {

std::map<int, std::function<void()>>& cleanups() {
  // Never destroyed: the atexit handler that runs the cleanups may run after static
  // destructors.
  static auto* m = new std::map<int, std::function<void()>>;
  return *m;
}

void run_all_cleanups() {
  auto& m = cleanups();
  // Newest first: a mount is removed before the loop device and directory under it.
  while (!m.empty()) {
    auto it = std::prev(m.end());
    auto f = std::move(it->second);
    m.erase(it);
    f();
  }
}

void on_fatal_signal(int sig) {
  run_all_cleanups();
  signal(sig, SIG_DFL);
  raise(sig);
}

struct Installer {
  Installer() {
    signal(SIGINT, on_fatal_signal);
    signal(SIGTERM, on_fatal_signal);
    signal(SIGHUP, on_fatal_signal);
    std::atexit(run_all_cleanups);
  }
} installer;

std::string read_fd(int fd) {
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    s.append(buf, static_cast<size_t>(n));
  return s;
}

std::vector<char*> cargv(const std::vector<std::string>& argv) {
  std::vector<char*> v;
  for (const auto& a : argv)
    v.push_back(const_cast<char*>(a.c_str()));
  v.push_back(nullptr);
  return v;
}

}  // namespace

std::string privileged_unavailable() {
  if (geteuid() != 0)
    return "needs root (real BPF, loop devices, cgroups)";
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
    return "kernel has no BTF (/sys/kernel/btf/vmlinux)";
  return "";
}

bool privileged_required() {
  const char* v = getenv("MEND_REQUIRE_PRIVILEGED");
  return v && std::string(v) == "1";
}

std::string unique_name(const std::string& prefix) {
  static std::mt19937_64 rng(std::random_device{}());
  return prefix + "-" + std::to_string(getpid()) + "-" + std::to_string(rng() % 1000000);
}

int on_cleanup(std::function<void()> f) {
  static int next = 0;
  cleanups()[++next] = std::move(f);
  return next;
}

void forget_cleanup(int h) {
  auto& m = cleanups();
  auto it = m.find(h);
  if (it == m.end())
    return;
  auto f = std::move(it->second);
  m.erase(it);
  f();
}

RunResult run(const std::vector<std::string>& argv) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
    return {};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    auto v = cargv(argv);
    execvp(v[0], v.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  RunResult r;
  std::thread t([&] { r.err = read_fd(err[0]); });
  r.out = read_fd(out[0]);
  t.join();
  close(out[0]);
  close(err[0]);
  r.status = wait_exit(pid);
  return r;
}

std::string must_run(const std::vector<std::string>& argv) {
  auto r = run(argv);
  std::string cmd;
  for (const auto& a : argv)
    cmd += a + " ";
  EXPECT_EQ(r.status, 0) << cmd << "\n" << r.err;
  if (r.status != 0)
    throw std::runtime_error("command failed: " + cmd + ": " + r.err);
  return r.out;
}

int wait_exit(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR)
      return -1;
  if (WIFEXITED(st))
    return WEXITSTATUS(st);
  if (WIFSIGNALED(st))
    return 128 + WTERMSIG(st);
  return -1;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/mend-test-XXXXXX";
  path_ = mkdtemp(tmpl);
  std::string p = path_;
  handle_ = on_cleanup([p] {
    std::error_code ec;
    fs::remove_all(p, ec);
  });
}

TempDir::~TempDir() {
  forget_cleanup(handle_);
}

LoopFs::LoopFs(const std::string& dir, const std::string& fstype, const std::string& size,
               bool direct_io) {
  static int n = 0;
  std::string base = dir + "/" + fstype + std::to_string(++n);
  image_ = base + ".img";
  mnt_ = base + ".mnt";
  fs::create_directories(mnt_);
  must_run({"truncate", "-s", size, image_});
  std::vector<std::string> mkfs =
      fstype == "xfs" ? std::vector<std::string>{"mkfs.xfs", "-q", "-f", image_}
                      : std::vector<std::string>{"mkfs." + fstype, "-q", "-F", image_};
  must_run(mkfs);
  std::vector<std::string> lo = {"losetup", "-f", "--show"};
  if (direct_io)
    lo.push_back("--direct-io=on");
  lo.push_back(image_);
  dev_ = must_run(lo);
  while (!dev_.empty() && (dev_.back() == '\n' || dev_.back() == ' '))
    dev_.pop_back();
  std::string dev = dev_, mnt = mnt_, image = image_;
  handle_ = on_cleanup([dev, mnt, image] {
    // Unmount (lazily if something still holds it), then detach.
    if (run({"umount", mnt}).status != 0)
      run({"umount", "-l", mnt});
    for (int i = 0; i < 50 && run({"losetup", "-d", dev}).status != 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::error_code ec;
    fs::remove(mnt, ec);
    fs::remove(image, ec);
  });
  must_run({"mount", dev_, mnt_});
}

LoopFs::~LoopFs() {
  forget_cleanup(handle_);
}

std::string LoopFs::majmin() const {
  struct stat st {};
  stat(dev_.c_str(), &st);
  return std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev));
}

std::string LoopFs::name() const {
  return fs::path(dev_).filename().string();
}

Cgroup::Cgroup(const std::string& hierarchy, const std::string& name)
    : dir_(hierarchy + "/" + name), name_(name) {
  fs::create_directories(dir_);
  std::string d = dir_;
  handle_ = on_cleanup([d] {
    for (int i = 0; i < 100; ++i) {
      std::ifstream procs(d + "/cgroup.procs");
      pid_t p;
      bool any = false;
      while (procs >> p) {
        kill(p, SIGKILL);
        any = true;
      }
      if (!any && rmdir(d.c_str()) == 0)
        return;
      if (errno == ENOENT)
        return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
}

Cgroup::~Cgroup() {
  forget_cleanup(handle_);
}

void Cgroup::write(const std::string& file, const std::string& value) const {
  std::ofstream f(dir_ + "/" + file);
  f << value;
  f.flush();
  if (!f)
    throw std::runtime_error("Failed to write " + value + " to " + dir_ + "/" + file);
}

pid_t spawn_in(const std::vector<std::string>& cgroup_dirs, const std::vector<std::string>& argv,
               uid_t uid) {
  pid_t pid = fork();
  if (pid == 0) {
    for (const auto& d : cgroup_dirs) {
      int fd = open((d + "/cgroup.procs").c_str(), O_WRONLY);
      std::string me = std::to_string(getpid());
      if (fd < 0 || ::write(fd, me.data(), me.size()) < 0)
        _exit(126);
      close(fd);
    }
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    if (uid != 0 && (setgid(uid) != 0 || setuid(uid) != 0))
      _exit(125);
    auto v = cargv(argv);
    execvp(v[0], v.data());
    _exit(127);
  }
  return pid;
}

std::string cgroup2_root() {
  std::ifstream f("/proc/self/mountinfo");
  std::string line;
  while (std::getline(f, line)) {
    auto dash = line.find(" - cgroup2 ");
    if (dash == std::string::npos)
      continue;
    // fields: id parent maj:min root mountpoint ...
    std::istringstream ls(line);
    std::string id, parent, mm, root, mp;
    ls >> id >> parent >> mm >> root >> mp;
    return mp;
  }
  return "";
}

std::string v1_hierarchy(const std::string& controller) {
  std::string d = "/sys/fs/cgroup/" + controller;
  std::ifstream f("/proc/self/mountinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.find(" " + d + " ") != std::string::npos &&
        line.find(" - cgroup ") != std::string::npos)
      return d;
  return "";
}

}  // namespace mend::test
