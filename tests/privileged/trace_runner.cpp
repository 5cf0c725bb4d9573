#include "trace_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>

#include "fixtures.h"
#include "sensors/event_json.h"

namespace mend::test {

TraceRunner::TraceRunner(std::vector<std::string> args, bool trace)
    : ready_marker_(trace ? "mendd: tracing" : "mendd: running") {
  auto has = [&](const char* flag) {
    return std::find(args.begin(), args.end(), flag) != args.end();
  };
  // No host configuration, and never the host's control socket.
  if (!has("--config"))
    args.insert(args.begin(), {"--config", "/dev/null"});
  if (!trace && !has("--control-socket")) {
    socket_ = "/tmp/" + unique_name("mend-ctl") + ".sock";
    args.insert(args.begin(), {"--control-socket", socket_});
  }
  if (trace)
    args.insert(args.begin(), "--trace");
  args.insert(args.begin(), MENDD_PATH);
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe");
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    std::vector<char*> v;
    for (auto& a : args)
      v.push_back(a.data());
    v.push_back(nullptr);
    execv(v[0], v.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  pid_t p = pid_;
  cleanup_ = on_cleanup([p] { kill(p, SIGKILL); });
  out_thread_ = std::thread([this, fd = out[0]] { reader(fd, true); });
  err_thread_ = std::thread([this, fd = err[0]] { reader(fd, false); });
}

TraceRunner::~TraceRunner() {
  stop();
  forget_cleanup(cleanup_);
  if (!socket_.empty())
    unlink(socket_.c_str());  // left behind when mendd was killed -9
}

void TraceRunner::reader(int fd, bool is_stdout) {
  std::string buf;
  char chunk[8192];
  ssize_t n;
  while ((n = read(fd, chunk, sizeof chunk)) > 0) {
    buf.append(chunk, static_cast<size_t>(n));
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      std::lock_guard<std::mutex> g(mu_);
      if (is_stdout) {
        auto e = event_from_json_line(line);
        if (e.ok())
          events_.push_back(std::move(*e));
        else
          bad_lines_.push_back(line);
      } else {
        err_ += line + "\n";
      }
      cv_.notify_all();
    }
  }
  close(fd);
  std::lock_guard<std::mutex> g(mu_);
  if (is_stdout)
    out_closed_ = true;
  cv_.notify_all();
}

bool TraceRunner::wait_ready(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> l(mu_);
  return cv_.wait_for(l, timeout, [&] {
    return err_.find(ready_marker_) != std::string::npos || out_closed_;
  }) && !out_closed_;
}

std::optional<Event> TraceRunner::wait_for(const std::function<bool(const Event&)>& pred,
                                           std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> l(mu_);
  std::optional<Event> found;
  cv_.wait_for(l, timeout, [&] {
    for (const auto& e : events_)
      if (pred(e)) {
        found = e;
        return true;
      }
    return out_closed_;
  });
  return found;
}

std::vector<Event> TraceRunner::events() {
  std::lock_guard<std::mutex> g(mu_);
  return events_;
}

std::string TraceRunner::err() {
  std::lock_guard<std::mutex> g(mu_);
  return err_;
}

nlohmann::json TraceRunner::summary(const std::string& sensor) {
  std::istringstream in(err());
  std::string line;
  nlohmann::json found;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '{')
      continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("type", "") != "trace_summary")
      continue;
    for (const auto& s : j["sensors"])
      if (s.value("sensor", "") == sensor)
        found = s;
  }
  return found;
}

void TraceRunner::end(int sig) {
  if (pid_ > 0) {
    kill(pid_, sig);
    exit_code_ = wait_exit(pid_);
    pid_ = -1;
  }
  if (out_thread_.joinable())
    out_thread_.join();
  if (err_thread_.joinable())
    err_thread_.join();
}

void TraceRunner::kill_hard() {
  end(SIGKILL);
}

int TraceRunner::stop() {
  end(SIGTERM);
  {
    std::lock_guard<std::mutex> g(mu_);
    EXPECT_TRUE(bad_lines_.empty())
        << "mendd printed a line that is not an event: " << bad_lines_.front();
  }
  return exit_code_;
}

}  // namespace mend::test
