#include "transient_child.h"

#include <signal.h>
#include <sys/random.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "bus_names.h"

namespace mend {

namespace {

using bus::kDest;
using bus::kManager;
using bus::kPath;
constexpr const char* kUnitIface = "org.freedesktop.systemd1.Unit";
constexpr const char* kServiceIface = "org.freedesktop.systemd1.Service";
constexpr uint64_t kCallTimeoutUs = 10000000;  // one manager call
constexpr uint64_t kBackstopUs = 5000000;      // RuntimeMaxSec= beyond the caller's timeout

std::string bus_text(const sd_bus_error& e, int r) {
  if (sd_bus_error_is_set(&e))
    return e.message ? e.message : e.name;
  return std::strerror(r < 0 ? -r : r);
}

// mend-<purpose>-<16 hex digits>.service; the purpose reduced to what a unit name may hold.
std::string unit_name(const std::string& purpose) {
  std::string p;
  for (char ch : purpose)
    if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
      p += ch;
  if (p.empty())
    p = "command";
  p.resize(std::min<size_t>(p.size(), 32));
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof v))
    v = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
        static_cast<uint64_t>(getpid());
  char hex[17];
  snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(v));
  return "mend-" + p + "-" + hex + ".service";
}

bool is_hex(char ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

}  // namespace

bool is_mend_child_unit(const std::string& unit) {
  static const std::string kPrefix = "mend-", kSuffix = ".service";
  if (unit.size() < kPrefix.size() + 1 + 1 + 16 + kSuffix.size() || unit.rfind(kPrefix, 0) != 0 ||
      unit.compare(unit.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0)
    return false;
  const std::string mid =
      unit.substr(kPrefix.size(), unit.size() - kPrefix.size() - kSuffix.size());
  const size_t dash = mid.size() - 17;
  if (mid[dash] != '-' || dash < 1 || dash > 32)
    return false;
  for (size_t i = 0; i < dash; ++i)
    if (!((mid[i] >= 'a' && mid[i] <= 'z') || (mid[i] >= '0' && mid[i] <= '9')))
      return false;
  for (size_t i = dash + 1; i < mid.size(); ++i)
    if (!is_hex(mid[i]))
      return false;
  return true;
}

namespace {

int append_strv_prop(sd_bus_message* m, const char* name, const std::vector<std::string>& v) {
  std::vector<char*> strv;
  for (const auto& s : v)
    strv.push_back(const_cast<char*>(s.c_str()));
  strv.push_back(nullptr);
  int r = sd_bus_message_open_container(m, 'r', "sv");
  if (r >= 0)
    r = sd_bus_message_append(m, "s", name);
  if (r >= 0)
    r = sd_bus_message_open_container(m, 'v', "as");
  if (r >= 0)
    r = sd_bus_message_append_strv(m, strv.data());
  if (r >= 0)
    r = sd_bus_message_close_container(m);
  if (r >= 0)
    r = sd_bus_message_close_container(m);
  return r;
}

// The manager expands $VAR, ${VAR} and $$ in a command line when it runs it; "$$" is its
// literal "$", so every "$" doubled passes argv through as given (ExecStartEx's
// no-env-expand would too, but only from systemd 243 on).
int append_exec_start(sd_bus_message* m, const std::vector<std::string>& argv_in) {
  std::vector<std::string> argv;
  for (const auto& a : argv_in) {
    std::string e;
    for (char ch : a)
      e += ch == '$' ? std::string("$$") : std::string(1, ch);
    argv.push_back(std::move(e));
  }
  std::vector<char*> strv;
  for (const auto& s : argv)
    strv.push_back(const_cast<char*>(s.c_str()));
  strv.push_back(nullptr);
  int r = sd_bus_message_open_container(m, 'r', "sv");
  if (r >= 0)
    r = sd_bus_message_append(m, "s", "ExecStart");
  if (r >= 0)
    r = sd_bus_message_open_container(m, 'v', "a(sasb)");
  if (r >= 0)
    r = sd_bus_message_open_container(m, 'a', "(sasb)");
  if (r >= 0)
    r = sd_bus_message_open_container(m, 'r', "sasb");
  if (r >= 0)
    r = sd_bus_message_append(m, "s", argv_in[0].c_str());
  if (r >= 0)
    r = sd_bus_message_append_strv(m, strv.data());
  if (r >= 0)
    r = sd_bus_message_append(m, "b", 0);  // a failing exit is reported, not ignored
  for (int i = 0; i < 4 && r >= 0; ++i)
    r = sd_bus_message_close_container(m);
  return r;
}

class TransientChild final : public Child {
 public:
  TransientChild(sd_bus* bus, std::string unit, std::string path)
      : bus_(bus), unit_(std::move(unit)), path_(std::move(path)) {}
  ~TransientChild() override {
    collect();
    sd_bus_flush_close_unref(bus_);
  }

  bool ended(ChildExit& e) override {
    if (ended_) {
      e = exit_;
      return true;
    }
    sd_bus_error err = SD_BUS_ERROR_NULL;
    char* sub = nullptr;
    int r =
        sd_bus_get_property_string(bus_, kDest, path_.c_str(), kUnitIface, "SubState", &err, &sub);
    if (r < 0) {
      const bool gone = sd_bus_error_has_name(&err, "org.freedesktop.DBus.Error.UnknownObject") ||
                        sd_bus_error_has_name(&err, "org.freedesktop.systemd1.NoSuchUnit");
      const bool lost = r == -ECONNRESET || r == -ENOTCONN || r == -EPIPE;
      if (gone || lost) {
        ended_ = true;
        exit_.note = gone ? "its unit " + unit_ + " vanished before its exit was read"
                          : "lost the manager while " + unit_ + " ran: " + bus_text(err, r);
        sub_ = gone ? "gone" : "";
      }
      sd_bus_error_free(&err);
      e = exit_;
      return ended_;
    }
    std::string state = sub ? sub : "";
    free(sub);
    sd_bus_message* reply = nullptr;
    uint32_t job = 0;
    if (sd_bus_get_property(bus_, kDest, path_.c_str(), kUnitIface, "Job", &err, &reply, "(uo)") >=
        0) {
      const char* jp = nullptr;
      if (sd_bus_message_read(reply, "(uo)", &job, &jp) < 0)
        job = 0;
      sd_bus_message_unref(reply);
    }
    sd_bus_error_free(&err);
    // Queued or starting (a job), or running: not yet. RemainAfterExit=: "exited" after a
    // clean exit, "failed" otherwise; "dead" only when something stopped it.
    if (job != 0 || (state != "exited" && state != "failed" && state != "dead"))
      return false;
    sub_ = state;
    ended_ = true;
    read_exit();
    e = exit_;
    return true;
  }

  void kill() override {
    sd_bus_error err = SD_BUS_ERROR_NULL;
    sd_bus_call_method(bus_, kDest, kPath, kManager, "KillUnit", &err, nullptr, "ssi",
                       unit_.c_str(), "all", SIGKILL);
    sd_bus_error_free(&err);
  }

  std::string where() const override { return unit_; }
  bool holds_descriptors() const override { return true; }

 private:
  void read_exit() {
    sd_bus_error err = SD_BUS_ERROR_NULL;
    int32_t code = 0, status = 0;
    char* result = nullptr;
    sd_bus_get_property_trivial(bus_, kDest, path_.c_str(), kServiceIface, "ExecMainCode", &err,
                                'i', &code);
    sd_bus_error_free(&err);
    sd_bus_get_property_trivial(bus_, kDest, path_.c_str(), kServiceIface, "ExecMainStatus", &err,
                                'i', &status);
    sd_bus_error_free(&err);
    sd_bus_get_property_string(bus_, kDest, path_.c_str(), kServiceIface, "Result", &err, &result);
    sd_bus_error_free(&err);
    const std::string res = result ? result : "";
    free(result);
    if (code == CLD_EXITED) {
      exit_.exit_code = status;
    } else if (code == CLD_KILLED || code == CLD_DUMPED) {
      exit_.signal = status;
    } else {
      exit_.note = "never ran";
    }
    // 200 and up are systemd's own exit codes: the command itself never started (203 EXEC,
    // 217 USER, 218 CAPABILITIES, 226 NAMESPACE, ...; systemd.exec(5)). A plain exit or kill
    // of the command says enough by itself.
    const bool systemds = code == CLD_EXITED && status >= 200 && status < 256;
    const bool plain = res == "success" || (res == "exit-code" && !systemds) ||
                       (res == "signal" && code != CLD_EXITED);
    if (!res.empty() && !plain) {
      std::string n = "systemd: " + res;
      if (systemds)
        n += ", exit status " + std::to_string(status) + " is systemd's (see systemd.exec(5))";
      exit_.note = exit_.note.empty() ? n : exit_.note + "; " + n;
    }
  }

  // Nothing of the unit stays: stopped (its leftovers killed), or its failure reset, so the
  // manager unloads it.
  void collect() {
    sd_bus_error err = SD_BUS_ERROR_NULL;
    if (!ended_) {
      kill();
      sd_bus_call_method(bus_, kDest, kPath, kManager, "StopUnit", &err, nullptr, "ss",
                         unit_.c_str(), "replace");
    } else if (sub_ == "failed") {
      sd_bus_call_method(bus_, kDest, kPath, kManager, "ResetFailedUnit", &err, nullptr, "s",
                         unit_.c_str());
    } else if (sub_ == "exited") {
      sd_bus_call_method(bus_, kDest, kPath, kManager, "StopUnit", &err, nullptr, "ss",
                         unit_.c_str(), "replace");
    }
    sd_bus_error_free(&err);
  }

  sd_bus* bus_;
  std::string unit_, path_;
  bool ended_ = false;
  std::string sub_;
  ChildExit exit_;
};

}  // namespace

Result<std::unique_ptr<Child>> TransientLauncher::launch(const ChildCommand& c) {
  if (c.argv.empty() || c.argv[0].empty() || c.argv[0][0] != '/')
    return Error{"command must be an absolute path (argv, no shell)", EINVAL};
  auto caps = capability_mask(c.sandbox.capabilities);
  if (!caps.ok())
    return caps.error();
  auto b = open_manager_bus(scope_);
  if (!b.ok())
    return Error{"Cannot run " + c.argv[0] + " as a transient unit: " + b.error().message,
                 b.error().code};
  sd_bus* bus = *b;
  sd_bus_set_method_call_timeout(bus, kCallTimeoutUs);
  const std::string unit = unit_name(c.purpose);
  const bool as_user = !c.sandbox.user.empty() && c.sandbox.user != "root";
  sd_bus_message* m = nullptr;
  int r = sd_bus_message_new_method_call(bus, &m, kDest, kPath, kManager, "StartTransientUnit");
  if (r >= 0)
    r = sd_bus_message_append(m, "ss", unit.c_str(), "fail");
  if (r >= 0)
    r = sd_bus_message_open_container(m, 'a', "(sv)");
  const std::string desc = "mend " + c.purpose + ": " + c.argv[0];
  auto s = [&](const char* name, const std::string& v) {
    if (r >= 0)
      r = sd_bus_message_append(m, "(sv)", name, "s", v.c_str());
  };
  auto flag = [&](const char* name, bool v) {
    if (r >= 0)
      r = sd_bus_message_append(m, "(sv)", name, "b", static_cast<int>(v));
  };
  auto num = [&](const char* name, uint64_t v) {
    if (r >= 0)
      r = sd_bus_message_append(m, "(sv)", name, "t", v);
  };
  auto fd = [&](const char* name, int v) {
    if (r >= 0)
      r = sd_bus_message_append(m, "(sv)", name, "h", v);
  };
  s("Description", desc);
  s("Type", "exec");
  flag("RemainAfterExit", true);  // the exit status stays readable until collect()
  if (r >= 0)
    r = append_exec_start(m, c.argv);
  if (r >= 0)
    r = append_strv_prop(m, "Environment", c.env);
  fd("StandardInputFileDescriptor", c.stdin_fd);
  fd("StandardOutputFileDescriptor", c.stdout_fd);
  fd("StandardErrorFileDescriptor", c.stderr_fd);
  num("RuntimeMaxUSec", c.timeout_ns / 1000 + kBackstopUs);
  num("TimeoutStopUSec", kBackstopUs);
  s("KillMode", "control-group");
  flag("SendSIGKILL", true);
  flag("IgnoreSIGPIPE", false);
  // The sandbox: the least, and what the caller grants.
  if (as_user && scope_ == BusScope::System)
    s("User", c.sandbox.user);
  num("CapabilityBoundingSet", *caps);
  if (as_user && *caps != 0)
    num("AmbientCapabilities", *caps);
  flag("NoNewPrivileges", true);
  flag("PrivateNetwork", !c.sandbox.network);
  flag("PrivateTmp", true);
  s("ProtectSystem", c.sandbox.read_only ? "strict" : "full");
  s("ProtectHome", "read-only");
  if (r >= 0 && !c.sandbox.write_paths.empty())
    r = append_strv_prop(m, "ReadWritePaths", c.sandbox.write_paths);
  // A user manager (tests) cannot remount /proc/sys here (226/NAMESPACE); the system one can.
  if (scope_ == BusScope::System)
    flag("ProtectKernelTunables", true);
  flag("ProtectKernelModules", true);
  flag("ProtectControlGroups", true);
  flag("RestrictSUIDSGID", true);
  flag("RestrictRealtime", true);
  flag("LockPersonality", true);
  if (r >= 0)
    r = sd_bus_message_close_container(m);
  if (r >= 0)
    r = sd_bus_message_append(m, "a(sa(sv))", 0);
  if (r < 0) {
    sd_bus_message_unref(m);
    sd_bus_flush_close_unref(bus);
    return Error::from_errno("Failed to build the transient unit " + unit, -r);
  }
  sd_bus_error err = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  r = sd_bus_call(bus, m, kCallTimeoutUs, &err, &reply);
  sd_bus_message_unref(m);
  sd_bus_message_unref(reply);
  if (r < 0) {
    Error e{"Failed to start " + c.argv[0] + " as " + unit + ": " + bus_text(err, r), -r};
    sd_bus_error_free(&err);
    sd_bus_flush_close_unref(bus);
    return e;
  }
  reply = nullptr;
  r = sd_bus_call_method(bus, kDest, kPath, kManager, "GetUnit", &err, &reply, "s", unit.c_str());
  const char* path = nullptr;
  if (r >= 0)
    r = sd_bus_message_read(reply, "o", &path);
  std::string unit_path = r >= 0 && path ? path : "";
  sd_bus_message_unref(reply);
  if (r < 0) {
    // Started but not to be found: it ran and was collected already (cannot be, with
    // RemainAfterExit=), or the manager went away. Its exit is unknown.
    Error e{"Started " + unit + " but cannot follow it: " + bus_text(err, r), -r};
    sd_bus_error_free(&err);
    sd_bus_flush_close_unref(bus);
    return e;
  }
  sd_bus_error_free(&err);
  return std::unique_ptr<Child>(std::make_unique<TransientChild>(bus, unit, unit_path));
}

Result<size_t> TransientLauncher::sweep() {
  auto b = open_manager_bus(scope_);
  if (!b.ok())
    return b.error();
  sd_bus* bus = *b;
  sd_bus_error err = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  const char* patterns[] = {"mend-*.service", nullptr};
  sd_bus_message* m = nullptr;
  int r = sd_bus_message_new_method_call(bus, &m, kDest, kPath, kManager, "ListUnitsByPatterns");
  if (r >= 0)
    r = sd_bus_message_append_strv(m, nullptr);
  if (r >= 0)
    r = sd_bus_message_append_strv(m, const_cast<char**>(patterns));
  if (r >= 0)
    r = sd_bus_call(bus, m, kCallTimeoutUs, &err, &reply);
  sd_bus_message_unref(m);
  if (r < 0) {
    Error e{"Failed to list mend's transient units: " + bus_text(err, r), -r};
    sd_bus_error_free(&err);
    sd_bus_flush_close_unref(bus);
    return e;
  }
  std::vector<std::pair<std::string, std::string>> ended;  // (unit, sub state)
  r = sd_bus_message_enter_container(reply, 'a', "(ssssssouso)");
  while (r > 0) {
    const char *name, *desc, *load, *active, *sub, *following, *path, *jtype, *jpath;
    uint32_t jid = 0;
    r = sd_bus_message_read(reply, "(ssssssouso)", &name, &desc, &load, &active, &sub, &following,
                            &path, &jid, &jtype, &jpath);
    if (r > 0 && jid == 0 && is_mend_child_unit(name) &&
        (std::strcmp(sub, "exited") == 0 || std::strcmp(sub, "failed") == 0))
      ended.emplace_back(name, sub);
  }
  sd_bus_message_unref(reply);
  for (const auto& [name, sub] : ended) {
    if (sub == "failed")
      sd_bus_call_method(bus, kDest, kPath, kManager, "ResetFailedUnit", &err, nullptr, "s",
                         name.c_str());
    else
      sd_bus_call_method(bus, kDest, kPath, kManager, "StopUnit", &err, nullptr, "ss", name.c_str(),
                         "replace");
    sd_bus_error_free(&err);
  }
  sd_bus_flush_close_unref(bus);
  return ended.size();
}

}  // namespace mend
