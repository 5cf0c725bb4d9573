// The control socket: a Unix stream socket (default /run/mend/control.sock, 0660 root:<group>)
// speaking a small versioned JSON protocol, one request and one response per connection:
//   -> {"version": 1, "command": "status", "args": {...}}\n
//   <- {"version": 1, "ok": true, "result": ...}\n
//   <- {"version": 1, "ok": false, "error": "why", "code": "not_found"}\n
// Every request is checked against the peer's credentials (SO_PEERCRED, SO_PEERGROUPS): root,
// or a member of the configured group. docs/control.md lists the commands.
#pragma once

#include <sys/types.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "mend/agent_config.h"
#include "mend/result.h"

namespace mend {

constexpr int kControlVersion = 1;

struct Peer {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// A handler answers with the whole response object (use control_ok / control_error).
using ControlHandler = std::function<nlohmann::json(const std::string& command,
                                                    const nlohmann::json& args, const Peer& peer)>;
nlohmann::json control_ok(nlohmann::json result);
nlohmann::json control_error(const std::string& code, const std::string& message);

class ControlServer {
 public:
  ControlServer() = default;
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Creates the socket's directory (0755) if missing, replaces a stale socket (never a file
  // that is not a socket), binds, and sets mode and owner.
  Status listen(const ControlSettings& s);
  int fd() const { return fd_; }
  // Accepts and serves every pending connection. A client gets 1 s to send its request and
  // read the answer; requests are bounded to 64 KiB.
  void serve(const ControlHandler& h);
  const std::string& path() const { return path_; }

 private:
  void serve_one(int conn, const ControlHandler& h);
  bool authorized(int conn, Peer& peer, std::string& why) const;

  int fd_ = -1;
  std::string path_;
  gid_t group_ = 0;
  bool has_group_ = false;
};

// The client side (mendctl): one request, one response. Errors: cannot connect, refused,
// malformed answer.
Result<nlohmann::json> control_request(const std::string& socket, const std::string& command,
                                       const nlohmann::json& args);

}  // namespace mend
