// The control socket: a Unix stream socket (default /run/mend/control.sock, 0660 root:<group>)
// speaking a small versioned JSON protocol, one request and one response per connection
// (several connections are served at once, none of them can hold the event loop):
//   -> {"version": 1, "command": "status", "args": {...}}\n
//   <- {"version": 1, "ok": true, "result": ...}\n
//   <- {"version": 1, "ok": false, "error": "why", "code": "not_found"}\n
// Every request is checked against the peer's credentials (SO_PEERCRED, SO_PEERGROUPS): root,
// or a member of the configured group. docs/control.md lists the commands.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
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
  // Clients served at once; one more is answered "busy" and closed (counted).
  static constexpr size_t kMaxClients = 32;
  // A client has this long from connecting to send its request line, and as long again to
  // read its answer; then it is dropped (counted). The loop never waits on a client.
  static constexpr uint64_t kRequestDeadlineNs = 1000000000ull;
  static constexpr uint64_t kAnswerDeadlineNs = 10000000000ull;

  struct Stats {
    uint64_t served = 0;
    uint64_t refused_busy = 0;  // over kMaxClients
    uint64_t timed_out = 0;     // no request, or the answer not read, within the deadline
    uint64_t bad_requests = 0;  // malformed, over 64 KiB, other version
    uint64_t denied = 0;        // peer neither root nor in the control group
  };

  ControlServer() = default;
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Creates the socket's directory (0755) if missing, replaces a stale socket (never a file
  // that is not a socket), binds, and sets mode and owner.
  Status listen(const ControlSettings& s);
  // Readable when a client connects or one of the clients being served is ready: an epoll
  // descriptor covering the listening socket and every client.
  int fd() const { return epfd_; }
  // Non-blocking: accepts pending connections, reads what clients sent, answers complete
  // requests, writes what the sockets take, and drops clients past their deadline. Call it
  // when fd() is readable and on every tick (deadlines). Requests are bounded to 64 KiB.
  void serve(const ControlHandler& h);
  const std::string& path() const { return path_; }
  size_t clients() const { return clients_.size(); }
  const Stats& stats() const { return stats_; }

 private:
  struct Client {
    int fd = -1;
    Peer peer;
    std::string in;
    std::string out;
    size_t out_off = 0;
    bool answered = false;
    uint64_t deadline_ns = 0;
  };
  void accept_all(const ControlHandler& h);
  // False when the client is done (answered and flushed, or failed).
  bool advance(Client& c, const ControlHandler& h, uint64_t now);
  void answer(Client& c, const nlohmann::json& resp, uint64_t now);
  void drop(int fd);
  bool authorized(int conn, Peer& peer, std::string& why) const;

  int fd_ = -1;
  int epfd_ = -1;
  std::string path_;
  gid_t group_ = 0;
  bool has_group_ = false;
  std::map<int, Client> clients_;
  Stats stats_;
};

// One request line -> its response: the protocol checks, then the handler. Never throws.
// `served`: the handler answered (false: the request itself was refused).
nlohmann::json answer_request(const std::string& line, const ControlHandler& h, const Peer& peer,
                              bool& served);

// The client side (mendctl): one request, one response. Errors: cannot connect, refused,
// malformed answer.
Result<nlohmann::json> control_request(const std::string& socket, const std::string& command,
                                       const nlohmann::json& args);

}  // namespace mend
