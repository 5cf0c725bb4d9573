// The control socket end to end in one process (a real Unix socket, real peer credentials)
// and the commands against a correlator and an executor with a fake systemd.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "ctl/commands.h"
#include "ctl/control.h"
#include "fake_units.h"
#include "policy/plan_selector.h"
#include "policy/policy_loader.h"

using namespace mend;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/mend-ctl-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

// Serves the socket from a thread of its own, as mendd's loop would, until it goes.
struct ServeInBackground {
  ControlServer& srv;
  ControlHandler h;
  std::atomic<bool> done{false};
  std::thread t;
  ServeInBackground(ControlServer& s, ControlHandler handler) : srv(s), h(std::move(handler)) {
    t = std::thread([this] {
      while (!done.load()) {
        srv.serve(h);
        usleep(1000);
      }
    });
  }
  ~ServeInBackground() {
    done = true;
    t.join();
  }
};

// Serves one connection on a thread while the client asks.
Result<nlohmann::json> ask(ControlServer& srv, const ControlHandler& h, const std::string& cmd,
                           const nlohmann::json& args = nlohmann::json::object()) {
  ServeInBackground serving(srv, h);
  return control_request(srv.path(), cmd, args);
}

class NoProbe : public RecoveryProbe {
 public:
  Result<bool> holds(const VerifyIR&, const Incident&, const std::string&, uint64_t,
                     std::string&) override {
    return true;
  }
};

}  // namespace

TEST(ControlSocket, VersionedRequestsAndAStaleSocketIsReplaced) {
  TempDir d;
  ControlSettings s;
  s.socket = d.path + "/run/control.sock";
  {
    ControlServer first;
    ASSERT_TRUE(first.listen(s).ok());
    struct stat st {};
    ASSERT_EQ(stat(s.socket.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);  // no group configured: owner only
    // A second server must not steal a live socket.
    ControlServer second;
    auto busy = second.listen(s);
    ASSERT_FALSE(busy.ok());
    EXPECT_NE(busy.error().message.find("another mendd"), std::string::npos);
  }
  // Left behind (as after kill -9): a new server takes the path over.
  ASSERT_EQ(mkfifo((d.path + "/not-a-socket").c_str(), 0600), 0);
  ControlSettings bad = s;
  bad.socket = d.path + "/not-a-socket";
  ControlServer refuses;
  EXPECT_FALSE(refuses.listen(bad).ok());
  ControlServer srv;
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);  // a stale socket file at the path
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  strncpy(a.sun_path, s.socket.c_str(), sizeof a.sun_path - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  close(fd);
  ASSERT_TRUE(srv.listen(s).ok());
  ControlHandler echo = [](const std::string& c, const nlohmann::json& args, const Peer& p) {
    return control_ok({{"command", c}, {"args", args}, {"uid", p.uid}});
  };
  auto r = ask(srv, echo, "status", {{"x", 1}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE((*r)["ok"].get<bool>());
  EXPECT_EQ((*r)["version"], kControlVersion);
  EXPECT_EQ((*r)["result"]["command"], "status");
  EXPECT_EQ((*r)["result"]["uid"], geteuid());
  // Another protocol version gets a clear refusal, not a guess.
  auto serving = std::make_unique<ServeInBackground>(srv, echo);
  int c = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const std::string req = "{\"version\": 9, \"command\": \"status\"}\n";
  ASSERT_EQ(write(c, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  char buf[512] = {};
  ASSERT_GT(read(c, buf, sizeof buf - 1), 0);
  close(c);
  serving.reset();
  auto resp = nlohmann::json::parse(std::string(buf));
  EXPECT_FALSE(resp["ok"].get<bool>());
  EXPECT_EQ(resp["code"], "version");
}

TEST(ControlCommands, StatusIncidentsExplainApproveDenyPause) {
  TempDir d;
  FakeUnits units;
  units.props["app.service/MemoryMax"] = uint64_t{100} << 20;
  std::ofstream(d.path + "/meminfo") << "MemAvailable: 8000000 kB\n";
  NoProbe probe;
  ExecutorConfig cfg;
  cfg.state_dir = d.path;
  cfg.procfs = d.path;
  cfg.guardrails.pause_file = d.path + "/pause";
  std::vector<Record> records;
  Executor ex(cfg, units, probe, [&](const Record& r) { records.push_back(r); });
  Correlator corr;
  SloTracker slo({{"app.service", 0.999, 86400000000000ull}}, "");
  AgentView v;
  v.correlator = &corr;
  v.executor = &ex;
  v.slo = &slo;
  v.sensor_stats = [] {
    return std::vector<SensorStats>{{"oom", true, "", 3, 0, 0, 0, {}, 0, ""}};
  };
  v.policy_count = [] { return size_t{1}; };
  const Peer root{1, 0, 0};

  // An OOM kill in a unit with a memory limit: one incident, root cause memory_limit.
  Event e;
  e.ts_ns = 1000000000ull;
  OomKill k;
  k.pid = 42;
  k.comm = "app";
  k.unit = "app.service";
  k.cgroup = "/system.slice/app.service";
  k.constraint = "memcg";
  k.memcg_limit_bytes = 100 << 20;
  e.payload = k;
  corr.push(e);
  corr.flush();
  auto incs = corr.incidents();
  ASSERT_EQ(incs.size(), 1u);
  const std::string id = incs[0]->id;
  auto irs = parse_policies(
      "policies:\n  - name: mem\n    match: {root_cause: memory_limit}\n    mode: approve\n"
      "    actions: [{raise_memory_limit: {ceiling: 1G}}]\n",
      "p.yaml");
  ASSERT_TRUE(irs.ok());
  auto pols = *compile_policies(*irs);
  if (incs[0]->root_cause.kind == "memory_limit")
    ex.submit(*incs[0], select_plan(*incs[0], pols), 2000000000ull);

  auto st = handle_command(v, "status", {}, root, 3000000000ull);
  ASSERT_TRUE(st["ok"].get<bool>());
  EXPECT_EQ(st["result"]["incidents"]["open"], 1);
  EXPECT_EQ(st["result"]["sensors"][0]["sensor"], "oom");
  EXPECT_EQ(st["result"]["slo"][0]["unit"], "app.service");
  EXPECT_FALSE(st["result"]["paused"].get<bool>());
  ASSERT_EQ(incs[0]->root_cause.kind, "memory_limit");
  ASSERT_EQ(st["result"]["pending_approvals"].size(), 1u);

  auto list = handle_command(v, "incidents", {}, root, 3000000000ull);
  ASSERT_EQ(list["result"].size(), 1u);
  EXPECT_EQ(list["result"][0]["id"], id);
  EXPECT_TRUE(list["result"][0]["awaiting_approval"].get<bool>());
  EXPECT_EQ(list["result"][0]["root_cause"], "memory_limit");

  auto ex1 = handle_command(v, "explain", {{"id", id}}, root, 3000000000ull);
  ASSERT_TRUE(ex1["ok"].get<bool>());
  EXPECT_EQ(ex1["result"]["plan"]["state"], "awaiting_approval");
  EXPECT_EQ(ex1["result"]["incident"]["state"], "awaiting_approval");
  EXPECT_FALSE(ex1["result"]["explanation"].get<std::string>().empty());
  EXPECT_EQ(handle_command(v, "explain", {{"id", "nope"}}, root, 0)["code"], "not_found");

  auto ok = handle_command(v, "approve", {{"id", id}}, root, 4000000000ull);
  ASSERT_TRUE(ok["ok"].get<bool>()) << ok.dump();
  EXPECT_EQ(ok["result"]["state"], "verifying");
  EXPECT_EQ(std::get<uint64_t>(units.props["app.service/MemoryMax"]), uint64_t{125} << 20);
  auto twice = handle_command(v, "deny", {{"id", id}}, root, 5000000000ull);
  EXPECT_FALSE(twice["ok"].get<bool>());
  EXPECT_EQ(twice["code"], "not_found");

  auto p = handle_command(v, "pause", {}, root, 0);
  EXPECT_TRUE(p["result"]["paused"].get<bool>());
  EXPECT_EQ(handle_command(v, "status", {}, root, 0)["result"]["paused_by"], "mendctl pause");
  EXPECT_FALSE(handle_command(v, "resume", {}, root, 0)["result"]["paused"].get<bool>());
  EXPECT_EQ(handle_command(v, "reboot", {}, root, 0)["code"], "unknown_command");
}

namespace {

int connect_to(const std::string& path) {
  int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(c);
    return -1;
  }
  return c;
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    out.append(buf, static_cast<size_t>(n));
  return out;
}

}  // namespace

// Issue 14: a client that connects and sends nothing held the loop for 1 s; a request of one
// byte 0xff aborted mendd (the error message carried the byte into dump()).
TEST(ControlSocket, SilentClientsDoNotHoldOthersAndBadBytesAreRefused) {
  TempDir d;
  ControlSettings s;
  s.socket = d.path + "/control.sock";
  ControlServer srv;
  ASSERT_TRUE(srv.listen(s).ok());
  ControlHandler echo = [](const std::string& c, const nlohmann::json&, const Peer&) {
    return control_ok({{"command", c}});
  };
  auto serving = std::make_unique<ServeInBackground>(srv, echo);
  // Three silent clients and one that sent half a line.
  std::vector<int> silent;
  for (int i = 0; i < 3; ++i)
    silent.push_back(connect_to(s.socket));
  int half = connect_to(s.socket);
  ASSERT_EQ(write(half, "{\"version\"", 10), 10);
  for (int fd : silent)
    ASSERT_GE(fd, 0);
  // Another client is answered while they are all still connected and within their 1 s.
  auto r = control_request(s.socket, "status", nlohmann::json::object());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["result"]["command"], "status");
  EXPECT_EQ(srv.stats().timed_out, 0u);  // nobody was dropped to make room
  // One byte 0xff: a clear refusal, valid UTF-8, and the server goes on.
  int bad = connect_to(s.socket);
  ASSERT_EQ(write(bad, "\xff\n", 2), 2);
  const std::string answer = read_all(bad);
  close(bad);
  auto resp = nlohmann::json::parse(answer);
  EXPECT_FALSE(resp["ok"].get<bool>());
  EXPECT_EQ(resp["code"], "bad_request");
  // The silent ones get "no request within 1 s" and are closed.
  for (int fd : silent) {
    auto late = nlohmann::json::parse(read_all(fd));
    EXPECT_EQ(late["code"], "bad_request");
    close(fd);
  }
  close(half);
  auto again = control_request(s.socket, "status", nlohmann::json::object());
  EXPECT_TRUE(again.ok());
  serving.reset();
  EXPECT_GE(srv.stats().timed_out, 3u);
  EXPECT_EQ(srv.clients(), 0u);
}

TEST(ControlSocket, ClientsOverTheBoundAreToldBusy) {
  TempDir d;
  ControlSettings s;
  s.socket = d.path + "/control.sock";
  ControlServer srv;
  ASSERT_TRUE(srv.listen(s).ok());
  ControlHandler echo = [](const std::string& c, const nlohmann::json&, const Peer&) {
    return control_ok({{"command", c}});
  };
  std::vector<int> fds;
  for (size_t i = 0; i < ControlServer::kMaxClients + 3; ++i) {
    fds.push_back(connect_to(s.socket));
    srv.serve(echo);
  }
  EXPECT_EQ(srv.clients(), ControlServer::kMaxClients);
  EXPECT_EQ(srv.stats().refused_busy, 3u);
  const std::string busy = read_all(fds.back());
  EXPECT_EQ(nlohmann::json::parse(busy)["code"], "busy");
  for (int fd : fds)
    close(fd);
}
