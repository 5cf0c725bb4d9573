#include "control.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "host/clock.h"
#include "mend/text.h"

namespace mend {

namespace {

constexpr size_t kMaxRequest = 64 * 1024;
constexpr size_t kMaxResponse = 64 * 1024 * 1024;

void set_timeouts(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

bool write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t w = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return false;
    off += static_cast<size_t>(w);
  }
  return true;
}

// Reads until a newline or EOF, at most `max` bytes. False on timeout, error or overflow.
bool read_line(int fd, std::string& out, size_t max) {
  char buf[4096];
  while (out.find('\n') == std::string::npos) {
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return false;
    if (r == 0)
      break;
    out.append(buf, static_cast<size_t>(r));
    if (out.size() > max)
      return false;
  }
  if (auto nl = out.find('\n'); nl != std::string::npos)
    out.resize(nl);
  return !out.empty();
}

sockaddr_un address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  return a;
}

}  // namespace

nlohmann::json control_ok(nlohmann::json result) {
  return {{"version", kControlVersion}, {"ok", true}, {"result", std::move(result)}};
}

nlohmann::json control_error(const std::string& code, const std::string& message) {
  return {{"version", kControlVersion}, {"ok", false}, {"code", code}, {"error", message}};
}

ControlServer::~ControlServer() {
  for (auto& [fd, c] : clients_)
    close(fd);
  if (epfd_ >= 0)
    close(epfd_);
  if (fd_ >= 0) {
    close(fd_);
    unlink(path_.c_str());
  }
}

Status ControlServer::listen(const ControlSettings& s) {
  path_ = s.socket;
  if (path_.size() >= sizeof(sockaddr_un::sun_path))
    return Error{"control socket path too long: " + path_, ENAMETOOLONG};
  if (!s.group.empty()) {
    group* g = getgrnam(s.group.c_str());
    if (!g)
      return Error{"control.group: no group named " + s.group, ENOENT};
    group_ = g->gr_gid;
    has_group_ = true;
  }
  const auto dir = std::filesystem::path(path_).parent_path();
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec)
      return Error::from_errno("Failed to create " + dir.string(), ec.value());
    chmod(dir.c_str(), 0755);
  }
  struct stat st {};
  if (lstat(path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return Error{path_ + " exists and is not a socket; refusing to replace it", EEXIST};
    // Another mendd answering there? Then this one must not steal its socket.
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a = address(path_);
    const bool live = probe >= 0 && connect(probe, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    if (probe >= 0)
      close(probe);
    if (live)
      return Error{"another mendd is listening on " + path_, EADDRINUSE};
    unlink(path_.c_str());
  }
  fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0)
    return Error::from_errno("socket", errno);
  sockaddr_un a = address(path_);
  // Created with no permissions for anyone else, then opened up to exactly 0660.
  const mode_t old = umask(0177);
  int r = bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  umask(old);
  if (r != 0 || ::listen(fd_, 16) != 0) {
    Error e = Error::from_errno("Failed to listen on " + path_, errno);
    close(fd_);
    fd_ = -1;
    return e;
  }
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd_;
  if (epfd_ < 0 || epoll_ctl(epfd_, EPOLL_CTL_ADD, fd_, &ev) != 0)
    return Error::from_errno("Failed to watch the control socket", errno);
  if (chown(path_.c_str(), 0, has_group_ ? group_ : 0) != 0 && geteuid() == 0)
    SPDLOG_WARN("Failed to set the owner of {}: {}", path_, std::strerror(errno));
  chmod(path_.c_str(), has_group_ ? 0660 : 0600);
  return {};
}

bool ControlServer::authorized(int conn, Peer& peer, std::string& why) const {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    why = "cannot read the peer's credentials";
    return false;
  }
  peer = {cred.pid, cred.uid, cred.gid};
  // The same user as mendd (root in production; the test user in tests) may always talk.
  if (cred.uid == 0 || cred.uid == geteuid())
    return true;
  if (has_group_) {
    if (cred.gid == group_)
      return true;
    gid_t groups[256];
    socklen_t glen = sizeof groups;
    if (getsockopt(conn, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0)
      for (size_t i = 0; i < glen / sizeof(gid_t); ++i)
        if (groups[i] == group_)
          return true;
  }
  why = "uid " + std::to_string(cred.uid) + " is not root" +
        (has_group_ ? " nor in the control group" : "") + "";
  return false;
}

void ControlServer::serve(const ControlHandler& h) {
  if (fd_ < 0)
    return;
  // Takes the epoll descriptor's readiness (clients are edge-triggered, so this clears it until
  // something new happens); each client is then advanced as far as it can go.
  epoll_event evs[kMaxClients + 1];
  (void)epoll_wait(epfd_, evs, kMaxClients + 1, 0);
  accept_all(h);
  const uint64_t now = monotonic_ns();
  for (auto it = clients_.begin(); it != clients_.end();) {
    Client& c = it->second;
    if (advance(c, h, now)) {
      ++it;
      continue;
    }
    const int fd = it->first;
    it = clients_.erase(it);
    drop(fd);
  }
}

void ControlServer::accept_all(const ControlHandler& h) {
  (void)h;
  for (;;) {
    int conn = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn < 0)
      return;  // EAGAIN: nothing more pending
    if (clients_.size() >= kMaxClients) {
      ++stats_.refused_busy;
      const std::string busy =
          dump_json(control_error("busy", "mendd is serving too many clients; try again")) + "\n";
      (void)send(conn, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      close(conn);
      continue;
    }
    Client c;
    c.fd = conn;
    c.deadline_ns = monotonic_ns() + kRequestDeadlineNs;
    std::string why;
    if (!authorized(conn, c.peer, why)) {
      ++stats_.denied;
      SPDLOG_WARN("Control request refused: {}", why);
      answer(c, control_error("permission_denied", why), monotonic_ns());
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.fd = conn;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, conn, &ev) != 0) {
      close(conn);
      continue;
    }
    clients_.emplace(conn, std::move(c));
  }
}

void ControlServer::answer(Client& c, const nlohmann::json& resp, uint64_t now) {
  c.out = dump_json(resp) + "\n";
  c.out_off = 0;
  c.answered = true;
  c.deadline_ns = now + kAnswerDeadlineNs;
}

bool ControlServer::advance(Client& c, const ControlHandler& h, uint64_t now) {
  if (!c.answered) {
    char buf[4096];
    bool eof = false;
    for (;;) {
      ssize_t r = recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        break;  // EAGAIN (or an error: the deadline ends it)
      if (r == 0) {
        eof = true;
        break;
      }
      c.in.append(buf, static_cast<size_t>(r));
      if (c.in.size() > kMaxRequest || c.in.find('\n') != std::string::npos)
        break;
    }
    const auto nl = c.in.find('\n');
    if (nl == std::string::npos && c.in.size() > kMaxRequest) {
      ++stats_.bad_requests;
      answer(c, control_error("bad_request", "request over 64 KiB"), now);
    } else if (nl != std::string::npos || (eof && !c.in.empty())) {
      bool served = false;
      nlohmann::json resp = answer_request(c.in.substr(0, nl), h, c.peer, served);
      ++(served ? stats_.served : stats_.bad_requests);
      answer(c, resp, now);
    } else if (eof) {
      return false;  // went away without asking
    } else if (now >= c.deadline_ns) {
      ++stats_.timed_out;
      ++stats_.bad_requests;
      answer(c, control_error("bad_request", "no request line (or over 64 KiB) within 1 s"), now);
    } else {
      return true;
    }
  }
  while (c.out_off < c.out.size()) {
    ssize_t w =
        send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (now >= c.deadline_ns) {
        ++stats_.timed_out;
        return false;
      }
      return true;
    }
    if (w <= 0)
      return false;
    c.out_off += static_cast<size_t>(w);
  }
  return false;  // answered in full: close
}

void ControlServer::drop(int fd) {
  epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  close(fd);
}

nlohmann::json answer_request(const std::string& line, const ControlHandler& h, const Peer& peer,
                              bool& served) {
  served = false;
  try {
    auto req = nlohmann::json::parse(line);
    // Read as a whole number of any size: a huge or fractional version is another version,
    // not a conversion with undefined behaviour (found by fuzz_control_request).
    const auto vj = req.is_object() ? req.find("version") : req.end();
    const int64_t v = vj != req.end() && vj->is_number_integer() ? vj->get<int64_t>() : 0;
    if (v != kControlVersion)
      return control_error("version", "protocol version " + std::to_string(v) +
                                          " not supported (this mendd speaks " +
                                          std::to_string(kControlVersion) + ")");
    const auto cmd = req.at("command").get<std::string>();
    const auto args = req.value("args", nlohmann::json::object());
    if (!args.is_object())
      return control_error("bad_request", "args: expected an object");
    served = true;
    return h(cmd, args, peer);
  } catch (const std::exception& e) {
    served = false;
    return control_error("bad_request", to_utf8(std::string("malformed request: ") + e.what()));
  }
}

Result<nlohmann::json> control_request(const std::string& socket_path, const std::string& command,
                                       const nlohmann::json& args) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return Error::from_errno("socket", errno);
  sockaddr_un a = address(socket_path);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    Error e = Error::from_errno("Cannot reach mendd at " + socket_path, errno);
    close(fd);
    return e;
  }
  set_timeouts(fd, 30000);
  nlohmann::json req = {{"version", kControlVersion}, {"command", command}, {"args", args}};
  std::string line;
  const bool ok = write_all(fd, dump_json(req) + "\n") && read_line(fd, line, kMaxResponse);
  close(fd);
  if (!ok)
    return Error{"mendd did not answer on " + socket_path, EPROTO};
  try {
    return nlohmann::json::parse(line);
  } catch (const std::exception& e) {
    return Error{std::string("malformed answer from mendd: ") + e.what(), EPROTO};
  }
}

}  // namespace mend
