#include "spawn.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

namespace mend {

namespace {

void close_fd(int& fd) {
  if (fd >= 0)
    close(fd);
  fd = -1;
}

// A child process of mendd's, in its own process group. Seen to exit without being reaped
// (WNOWAIT) until it is dropped: until then its pid and process group are still its own, so a
// kill can never reach a process that reused the number, and a kill after the exit still reaches
// what it left running in its group.
class InlineChild final : public Child {
 public:
  explicit InlineChild(pid_t pid) : pid_(pid) {}
  ~InlineChild() override {
    if (!exited_)
      kill();
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  bool ended(ChildExit& e) override {
    if (!exited_) {
      siginfo_t info{};
      if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
          info.si_pid != pid_)
        return false;
      exited_ = true;
      if (info.si_code == CLD_EXITED)
        exit_.exit_code = info.si_status;
      else
        exit_.signal = info.si_status;
    }
    e = exit_;
    return true;
  }
  void kill() override {
    ::kill(-pid_, SIGKILL);
    if (!exited_)
      ::kill(pid_, SIGKILL);
  }
  std::string where() const override { return "pid " + std::to_string(pid_); }

 private:
  pid_t pid_;
  bool exited_ = false;
  ChildExit exit_;
};

class InlineLauncher final : public ChildLauncher {
 public:
  Result<std::unique_ptr<Child>> launch(const ChildCommand& c) override {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, c.stdin_fd, 0);
    posix_spawn_file_actions_adddup2(&fa, c.stdout_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, c.stderr_fd, 2);
    // Nothing of mendd's but the three descriptors: one opened without O_CLOEXEC anywhere in
    // the process (a library's, a step's) never reaches a command.
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // Own process group (a timeout kills the script and its children), default signal
    // handling and an empty mask whatever mendd's are.
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(
        &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::vector<std::string> env = c.env;
    std::vector<char*> envp, argv;
    for (auto& e : env)
      envp.push_back(e.data());
    envp.push_back(nullptr);
    for (const auto& a : c.argv)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
      return Error::from_errno("Failed to run " + c.argv[0], rc);
    return std::unique_ptr<Child>(std::make_unique<InlineChild>(pid));
  }
  std::string name() const override { return "inline"; }
};

}  // namespace

ChildLauncher& inline_launcher() {
  static InlineLauncher l;
  return l;
}

std::string SpawnResult::summary() const {
  std::string s;
  if (timed_out)
    s = "killed at its timeout";
  else if (signal)
    s = std::string("killed by signal ") + strsignal(signal);
  else
    s = "exit " + std::to_string(exit_code);
  if (!note.empty())
    s += " (" + note + ")";
  // The last non-empty output line says most about a failure.
  std::string out = output;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
    out.pop_back();
  if (!out.empty()) {
    auto nl = out.rfind('\n');
    s += ": " + (nl == std::string::npos ? out : out.substr(nl + 1));
  }
  return s;
}

Result<SpawnResult> spawn_and_wait(const SpawnOptions& opt) {
  if (opt.argv.empty() || opt.argv[0].empty() || opt.argv[0][0] != '/')
    return Error{"command must be an absolute path (argv, no shell)", EINVAL};
  signal(SIGPIPE, SIG_IGN);  // a command that closes its stdin must not kill mendd
  if (access(opt.argv[0].c_str(), X_OK) != 0)
    return Error::from_errno("Cannot execute " + opt.argv[0], errno);
  int in[2] = {-1, -1}, out[2] = {-1, -1};
  if (pipe2(in, O_CLOEXEC) != 0)
    return Error::from_errno("pipe", errno);
  if (pipe2(out, O_CLOEXEC) != 0) {
    close_fd(in[0]);
    close_fd(in[1]);
    return Error::from_errno("pipe", errno);
  }
  ChildCommand cmd;
  cmd.purpose = opt.purpose;
  cmd.argv = opt.argv;
  cmd.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"};
  for (const auto& [k, v] : opt.env)
    cmd.env.push_back(k + "=" + v);
  cmd.stdin_fd = in[0];
  cmd.stdout_fd = out[1];
  cmd.stderr_fd = out[1];
  cmd.timeout_ns = opt.timeout_ns;
  cmd.sandbox = opt.sandbox;
  ChildLauncher& launcher = opt.launcher ? *opt.launcher : inline_launcher();
  auto launched = launcher.launch(cmd);
  close_fd(in[0]);
  close_fd(out[1]);
  if (!launched.ok()) {
    close_fd(in[1]);
    close_fd(out[0]);
    return launched.error();
  }
  std::unique_ptr<Child> child = std::move(*launched);
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  if (opt.input.empty())
    close_fd(in[1]);

  SpawnResult res;
  res.where = child->where();
  size_t written = 0;
  bool exited = false;
  ChildExit ex;
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::nanoseconds(opt.timeout_ns);
  char buf[4096];
  auto read_some = [&]() -> ssize_t {
    ssize_t r = read(out[0], buf, sizeof buf);
    if (r > 0) {
      const size_t keep = std::min(static_cast<size_t>(r),
                                   opt.max_output - std::min(opt.max_output, res.output.size()));
      res.output.append(buf, keep);
      res.output_dropped += static_cast<size_t>(r) - keep;
    } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
      close_fd(out[0]);
    }
    return r;
  };
  while (out[0] >= 0 || !exited) {
    if (!exited)
      exited = child->ended(ex);
    if (exited && child->holds_descriptors()) {
      // What the command wrote before it ended is in the pipe: read it, and that is all.
      while (out[0] >= 0 && read_some() > 0) {
      }
      break;
    }
    if (clock::now() >= deadline) {
      res.timed_out = true;
      break;
    }
    pollfd pf[2];
    nfds_t n = 0;
    if (out[0] >= 0)
      pf[n++] = {out[0], POLLIN, 0};
    if (in[1] >= 0)
      pf[n++] = {in[1], POLLOUT, 0};
    if (n == 0) {
      if (exited)
        break;
      usleep(10000);
      continue;
    }
    if (poll(pf, n, 20) < 0 && errno != EINTR)
      break;
    for (nfds_t i = 0; i < n; ++i) {
      if (pf[i].fd == out[0] && (pf[i].revents & (POLLIN | POLLHUP | POLLERR))) {
        read_some();
      } else if (pf[i].fd == in[1] && (pf[i].revents & (POLLOUT | POLLERR | POLLHUP))) {
        ssize_t w = write(in[1], opt.input.data() + written, opt.input.size() - written);
        if (w > 0)
          written += static_cast<size_t>(w);
        // The command does not read its input (EPIPE, ...): that is its business.
        if (w < 0 && errno != EAGAIN && errno != EINTR)
          close_fd(in[1]);
        if (written >= opt.input.size())
          close_fd(in[1]);
      }
    }
  }
  close_fd(in[1]);
  if (res.timed_out) {
    // Also when the command itself has ended: what it left running holds the output open.
    child->kill();
    // Bounded: a killed command ends at once; a manager that does not say so within 10 s is
    // not waited for (the unit's own RuntimeMaxSec= ends it).
    const auto give_up = clock::now() + std::chrono::seconds(10);
    while (!(exited = child->ended(ex)) && clock::now() < give_up)
      usleep(10000);
  }
  close_fd(out[0]);
  res.exit_code = ex.exit_code;
  res.signal = ex.signal;
  res.note = ex.note;
  return res;
}

}  // namespace mend
