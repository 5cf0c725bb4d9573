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

}  // namespace

std::string SpawnResult::summary() const {
  std::string s;
  if (timed_out)
    s = "killed at its timeout";
  else if (signal)
    s = std::string("killed by signal ") + strsignal(signal);
  else
    s = "exit " + std::to_string(exit_code);
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
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, out[1], 2);
  // Nothing of mendd's but the three pipes: a descriptor opened without O_CLOEXEC anywhere in
  // the process (a library's, a step's) never reaches a command.
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Own process group (a timeout kills the script and its children), default signal handling
  // and an empty mask whatever mendd's are.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<std::string> env_strings = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"};
  for (const auto& [k, v] : opt.env)
    env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& e : env_strings)
    envp.push_back(e.data());
  envp.push_back(nullptr);
  for (const auto& a : opt.argv)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close_fd(in[0]);
  close_fd(out[1]);
  if (rc != 0) {
    close_fd(in[1]);
    close_fd(out[0]);
    return Error::from_errno("Failed to run " + opt.argv[0], rc);
  }
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  if (opt.input.empty())
    close_fd(in[1]);

  SpawnResult res;
  size_t written = 0;
  bool exited = false;
  int status = 0;
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::nanoseconds(opt.timeout_ns);
  char buf[4096];
  while (out[0] >= 0 || !exited) {
    if (!exited) {
      // Seen, not reaped (WNOWAIT): until the end the pid stays this child's, so the kill at a
      // timeout can never reach a process that reused the number.
      siginfo_t info{};
      if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == pid)
        exited = true;
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
        ssize_t r = read(out[0], buf, sizeof buf);
        if (r > 0) {
          const size_t keep = std::min(
              static_cast<size_t>(r), opt.max_output - std::min(opt.max_output, res.output.size()));
          res.output.append(buf, keep);
          res.output_dropped += static_cast<size_t>(r) - keep;
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          close_fd(out[0]);
        }
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
  close_fd(out[0]);
  if (res.timed_out) {
    // The child is not reaped yet: its pid and process group are still its own.
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
  }
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status))
    res.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    res.signal = WTERMSIG(status);
  return res;
}

}  // namespace mend
