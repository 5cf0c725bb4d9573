// grow_volume: grow a mounted filesystem by a step, never past a maximum size, with room left
// in what backs it: a loop device's backing file (extended with fallocate, losetup
// --set-capacity) or an LVM logical volume (lvextend), then the filesystem online (xfs_growfs,
// resize2fs, btrfs filesystem resize). Filesystems do not shrink online: irreversible and
// destructive (capacity taken for good), so a policy must say allow_irreversible. The argv of
// every backend is built by plan_growth (grow_plan.h).
//
// What can be taken back is: a loop file extended (and a device given the capacity) that the
// filesystem never took, when a later command fails or mendd is killed in the middle. The file
// goes back to its length and the device to its capacity, so a half-done growth never stays.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "../../sensors/mounts.h"
#include "../action.h"
#include "../grow_plan.h"
#include "../spawn.h"
#include "mend/incident.h"

namespace mend {

namespace {

std::string read_line(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

// A number from sysfs or a tool's output; 0 when there is none.
uint64_t to_u64(const std::string& s) {
  const auto b = s.find_first_of("0123456789");
  return b == std::string::npos ? 0 : std::strtoull(s.c_str() + b, nullptr, 10);
}

uint64_t fs_bytes(const std::string& mount) {
  struct statvfs sv {};
  if (statvfs(mount.c_str(), &sv) != 0)
    return 0;
  return static_cast<uint64_t>(sv.f_blocks) * sv.f_frsize;
}

class GrowVolumeAction final : public Action {
 public:
  GrowVolumeAction(const Params& p, const ActionContext& ctx) : ctx_(ctx), mount_(p.str("mount")) {
    bounds_.step = static_cast<uint64_t>(p.integer("step"));
    bounds_.max_size = static_cast<uint64_t>(p.integer("max_size"));
    bounds_.reserve = static_cast<uint64_t>(p.integer("reserve"));
    timeout_ns_ = static_cast<uint64_t>(p.integer("timeout"));
  }

  static std::unique_ptr<Action> create(const Params& p, const ActionContext& ctx) {
    return std::make_unique<GrowVolumeAction>(p, ctx);
  }

  std::string describe() const override {
    if (planned_)
      return plan_.summary;
    return "grow " + (target().empty() ? std::string("the root cause's mount") : target()) +
           " by " + std::to_string(bounds_.step >> 20) + " MiB up to " +
           std::to_string(bounds_.max_size >> 20) + " MiB";
  }

  Status check() override {
    planned_ = false;
    const std::string mnt = target();
    if (mnt.empty())
      return Error{"grow_volume: the incident names no mount"};
    MountTable table(ctx_.procfs + "/self/mountinfo");
    if (auto r = table.refresh(); !r.ok())
      return r.error();
    const Mount* m = table.by_path(mnt);
    if (!m || m->mountpoint != mnt)
      return Error{"grow_volume: " + mnt + " is not a mount point"};
    const std::string sys = ctx_.sysfs + "/dev/block/" + m->device();
    GrowFacts f;
    f.mount = mnt;
    f.fstype = m->fstype;
    std::string devname;
    {
      std::ifstream u(sys + "/uevent");
      for (std::string line; std::getline(u, line);)
        if (line.rfind("DEVNAME=", 0) == 0)
          devname = line.substr(8);
    }
    if (devname.empty())
      return Error{"grow_volume: no block device behind " + mnt};
    f.device = "/dev/" + devname;
    f.device_bytes = to_u64(read_line(sys + "/size")) * 512;
    if (std::filesystem::exists(sys + "/loop/backing_file")) {
      f.backend = GrowBackend::Loop;
      f.backing_file = read_line(sys + "/loop/backing_file");
      if (read_line(sys + "/loop/offset") != "0" || read_line(sys + "/loop/sizelimit") != "0")
        return Error{"grow_volume: " + f.device + " has an offset or size limit"};
      struct stat st {};
      if (lstat(f.backing_file.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
        return Error{"grow_volume: backing file " + f.backing_file + " is not a regular file"};
      if (static_cast<uint64_t>(st.st_size) != f.device_bytes)
        return Error{"grow_volume: " + f.backing_file + " and " + f.device + " differ in size"};
      struct statvfs sv {};
      if (statvfs(std::filesystem::path(f.backing_file).parent_path().c_str(), &sv) == 0)
        f.backing_free_bytes = static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
    } else if (read_line(sys + "/dm/uuid").rfind("LVM-", 0) == 0) {
      f.backend = GrowBackend::Lvm;
      SpawnOptions o;
      o.argv = {"/usr/sbin/lvs",
                "--noheadings",
                "--nosuffix",
                "--units",
                "b",
                "--separator",
                ",",
                "-o",
                "vg_name,lv_name,vg_free",
                f.device};
      o.timeout_ns = timeout_ns_;
      volume_tool(o);
      auto r = spawn_and_wait(o);
      if (!r.ok() || !r->ok())
        return Error{"grow_volume: lvs " + f.device + ": " +
                     (r.ok() ? r->summary() : r.error().message)};
      std::string line = r->output;
      line.erase(0, line.find_first_not_of(" \t"));
      const auto c1 = line.find(','), c2 = line.find(',', c1 + 1);
      if (c1 == std::string::npos || c2 == std::string::npos)
        return Error{"grow_volume: cannot read lvs output: " + line};
      f.vg = line.substr(0, c1);
      f.lv = line.substr(c1 + 1, c2 - c1 - 1);
      f.backing_free_bytes = to_u64(line.substr(c2 + 1));
    }
    auto p = plan_growth(f, bounds_);
    if (!p.ok())
      return Error{"grow_volume refused: " + p.error().message, p.error().code};
    plan_ = *p;
    facts_ = f;
    fs_before_ = fs_bytes(mnt);
    planned_ = true;
    return {};
  }

  Status apply() override {
    if (!planned_)
      if (auto st = check(); !st.ok())
        return st;
    const size_t phases = plan_.commands.size() + (facts_.backend == GrowBackend::Loop);
    size_t phase = 0;
    if (facts_.backend == GrowBackend::Loop) {
      ctx_.report(
          "allocating " + std::to_string(plan_.grow_by >> 20) + " MiB in " + facts_.backing_file,
          0);
      ++phase;
      // Real blocks, not a sparse promise: ENOSPC here, not inside the filesystem later.
      int fd = open(facts_.backing_file.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0)
        return Error::from_errno("Failed to open " + facts_.backing_file, errno);
      const int r = fallocate(fd, 0, static_cast<off_t>(facts_.device_bytes),
                              static_cast<off_t>(plan_.grow_by));
      const int e = errno;
      if (r == 0)
        fsync(fd);
      close(fd);
      if (r != 0)
        return Error::from_errno("Failed to extend " + facts_.backing_file, e);
    }
    for (const auto& argv : plan_.commands) {
      ctx_.report("running " + argv[0], static_cast<double>(phase++) / static_cast<double>(phases));
      SpawnOptions o;
      o.argv = argv;
      o.timeout_ns = timeout_ns_;
      volume_tool(o);
      auto r = spawn_and_wait(o);
      if (!r.ok() || !r->ok()) {
        const std::string why = argv[0] + ": " + (r.ok() ? r->summary() : r.error().message);
        if (facts_.backend != GrowBackend::Loop)
          return Error{why};
        // The commands ran one after the other and none is running now.
        const Status back = take_back(/*nothing_in_flight=*/true);
        return Error{why + (back.ok() ? "; the loop file and device were taken back to " +
                                            std::to_string(facts_.device_bytes >> 20) + " MiB"
                                      : "; not taken back: " + back.error().message)};
      }
    }
    return {};
  }

  Result<bool> verify() override { return fs_bytes(target()) > fs_before_; }
  // Not a shrink: only a growth the filesystem never took is taken back.
  Status rollback() override { return take_back(/*nothing_in_flight=*/false); }
  bool reversible() const override { return false; }

  // Written ahead with the intent: enough to take back a loop file's growth after a kill.
  nlohmann::json undo_state() const override {
    if (!planned_ || facts_.backend != GrowBackend::Loop)
      return nlohmann::json::object();
    return {{"backing_file", facts_.backing_file},
            {"device", facts_.device},
            {"device_bytes", facts_.device_bytes},
            {"fs_bytes", fs_before_},
            {"mount", facts_.mount}};
  }
  Status restore(const nlohmann::json& u) override {
    auto str = [&](const char* k) { return u.contains(k) && u[k].is_string(); };
    auto num = [&](const char* k) { return u.contains(k) && u[k].is_number_unsigned(); };
    if (!u.is_object() || !str("backing_file") || !str("device") || !str("mount") ||
        !num("device_bytes") || !num("fs_bytes"))
      return Error{"grow_volume: unreadable undo state"};
    const std::string dev = u["device"].get<std::string>();
    if (dev.rfind("/dev/loop", 0) != 0 || dev.find('/', 5) != std::string::npos)
      return Error{"grow_volume: " + dev + " is not a loop device"};
    facts_ = GrowFacts{};
    facts_.backend = GrowBackend::Loop;
    facts_.backing_file = u["backing_file"].get<std::string>();
    facts_.device = dev;
    facts_.device_bytes = u["device_bytes"].get<uint64_t>();
    facts_.mount = u["mount"].get<std::string>();
    fs_before_ = u["fs_bytes"].get<uint64_t>();
    return {};
  }

 private:
  // The loop file back to its length and the device to its capacity, when the filesystem has
  // not grown into them. After a kill a command of the grow may still be running: then the
  // device must still have its old capacity (a filesystem growth in flight could be using the
  // new one); a losetup in flight ends at the old length too, since the file is cut first.
  Status take_back(bool nothing_in_flight) {
    if (facts_.backend != GrowBackend::Loop || facts_.backing_file.empty())
      return Error{"a filesystem is not shrunk back"};
    if (fs_bytes(facts_.mount) > fs_before_)
      return Error{"the filesystem has grown into the new space: it is not shrunk back"};
    const std::string sys = ctx_.sysfs + "/block/" + facts_.device.substr(5);
    if (read_line(sys + "/loop/backing_file") != facts_.backing_file)
      return Error{facts_.device + " is no longer backed by " + facts_.backing_file};
    const uint64_t dev_now = to_u64(read_line(sys + "/size")) * 512;
    if (dev_now != facts_.device_bytes && !nothing_in_flight)
      return Error{facts_.device + " has its new capacity already (the filesystem has not " +
                   "grown); left as is"};
    int fd = open(facts_.backing_file.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
      return Error::from_errno("Failed to open " + facts_.backing_file, errno);
    struct stat st {};
    int r = fstat(fd, &st);
    if (r == 0 && (!S_ISREG(st.st_mode) || st.st_nlink != 1)) {
      close(fd);
      return Error{facts_.backing_file + " is not the plain file it was"};
    }
    if (r == 0 && static_cast<uint64_t>(st.st_size) > facts_.device_bytes)
      r = ftruncate(fd, static_cast<off_t>(facts_.device_bytes));
    const int e = errno;
    if (r == 0)
      fsync(fd);
    close(fd);
    if (r != 0)
      return Error::from_errno("Failed to cut " + facts_.backing_file + " back", e);
    SpawnOptions o;
    o.argv = {"/usr/sbin/losetup", "--set-capacity", facts_.device};
    o.timeout_ns = timeout_ns_;
    volume_tool(o);
    auto res = spawn_and_wait(o);
    if (!res.ok() || !res->ok())
      return Error{"losetup --set-capacity " + facts_.device + ": " +
                   (res.ok() ? res->summary() : res.error().message)};
    return {};
  }

  std::string target() const {
    if (!mount_.empty() || !ctx_.incident)
      return mount_;
    auto it = ctx_.incident->root_cause.entities.find("mount");
    return it == ctx_.incident->root_cause.entities.end() ? "" : it->second;
  }

  // The volume tools (lvs, lvextend, losetup, resize2fs, xfs_growfs) and what they need:
  // block-device ioctls and device-mapper (CAP_SYS_ADMIN, CAP_SYS_RAWIO), lvm's locked memory
  // (CAP_IPC_LOCK) and ext4's reserved blocks (CAP_SYS_RESOURCE); lvm backs its metadata up
  // below /etc/lvm.
  void volume_tool(SpawnOptions& o) const {
    o.purpose = "volume";
    o.launcher = ctx_.children;
    o.sandbox.capabilities = {"CAP_SYS_ADMIN", "CAP_SYS_RAWIO", "CAP_IPC_LOCK", "CAP_SYS_RESOURCE",
                              "CAP_DAC_OVERRIDE"};
    o.sandbox.write_paths = {"-/etc/lvm"};
  }

  ActionContext ctx_;
  std::string mount_;
  GrowBounds bounds_;
  uint64_t timeout_ns_ = 0;
  GrowFacts facts_;
  GrowPlan plan_;
  uint64_t fs_before_ = 0;
  bool planned_ = false;
};

ActionSpec spec() {
  ActionSpec s;
  s.name = "grow_volume";
  s.summary = "Grow a filesystem online by a step up to a maximum (LVM, loop file)";
  s.reversible = false;
  s.destructive = true;
  const double M = 1 << 20;
  s.params = {{"mount",
               ParamType::String,
               false,
               0,
               0,
               std::string(),
               {},
               "mount point; default: the root cause's mount"},
              {"step",
               ParamType::Size,
               true,
               16 * M,
               16.0 * (1ull << 40),
               int64_t{0},
               {},
               "grow by this much per run"},
              {"max_size",
               ParamType::Size,
               true,
               64 * M,
               1024.0 * (1ull << 40),
               int64_t{0},
               {},
               "the device never grows past this"},
              {"reserve",
               ParamType::Size,
               false,
               0,
               1024.0 * (1ull << 40),
               int64_t{1ll << 30},
               {},
               "left free in the backing filesystem or volume group"},
              {"timeout",
               ParamType::Duration,
               false,
               1e9,
               3600e9,
               int64_t{600000000000},
               {},
               "per command"}};
  return s;
}

}  // namespace

MEND_REGISTER_ACTION(grow_volume, spec(), GrowVolumeAction::create);

}  // namespace mend
