// Disk remedies on real loop filesystems (as root): rotate_logs cutting a live, written-to log
// on ext4 and xfs without losing a byte; grow_volume growing an XFS loop volume within bounds
// and refusing past them; clean_files never entering a bind mount inside its root.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "fixtures.h"
#include "remedy/action.h"
#include "remedy/intent_journal.h"

using namespace mend;
using namespace mend::test;
namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string gunzip(const std::string& p) {
  gzFile g = gzopen(p.c_str(), "rb");
  std::string out;
  char buf[65536];
  int n;
  while (g && (n = gzread(g, buf, sizeof buf)) > 0)
    out.append(buf, static_cast<size_t>(n));
  if (g)
    gzclose(g);
  return out;
}

double used_pct(const std::string& mnt) {
  struct statvfs sv {};
  statvfs(mnt.c_str(), &sv);
  const double used = static_cast<double>(sv.f_blocks - sv.f_bfree);
  return 100.0 * used / (used + static_cast<double>(sv.f_bavail));
}

ActionContext host_ctx() {
  ActionContext c;
  c.procfs = "/proc";
  c.sysfs = "/sys";
  return c;
}

// A writer appending numbered lines (O_APPEND, as loggers do) until stopped; it remembers
// every byte it wrote.
class Writer {
 public:
  explicit Writer(const std::string& path) {
    fd_ = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    t_ = std::thread([this] {
      for (uint64_t i = 0; !stop_.load(); ++i) {
        std::string line = "line " + std::to_string(i) + " " + std::string(100, 'x') + "\n";
        if (write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
          break;
        written_ += line;
        if (i % 64 == 0 && slow_.load())
          usleep(1000);
      }
    });
  }
  ~Writer() { stop(); }
  void slow_down() { slow_ = true; }
  std::string stop() {
    stop_ = true;
    if (t_.joinable())
      t_.join();
    if (fd_ >= 0)
      close(fd_);
    fd_ = -1;
    return written_;
  }
  size_t size() const { return written_.size(); }

 private:
  int fd_ = -1;
  std::atomic<bool> stop_{false}, slow_{false};
  std::string written_;
  std::thread t_;
};

void rotate_while_writing(const std::string& fstype, const std::string& size) {
  TempDir d;
  LoopFs lfs(d.path(), fstype, size);
  const std::string log = lfs.mnt() + "/app.log";
  Writer w(log);
  while (fs::exists(log) && fs::file_size(log) < (24u << 20))
    usleep(10000);
  w.slow_down();
  const double before = used_pct(lfs.mnt());
  auto ctx = host_ctx();
  auto a = ActionRegistry::instance().create(
      "rotate_logs",
      Params({{"paths", std::vector<std::string>{lfs.mnt() + "/*.log"}},
              {"keep", int64_t{3}},
              {"min_size", int64_t{1 << 20}},
              {"max_files", int64_t{10}},
              {"method", std::string("copytruncate")},
              {"compress", true},
              {"logrotate_configs", std::string()},
              {"logrotate_state", std::string()},
              {"timeout", int64_t{60000000000}}}),
      ctx);
  ASSERT_TRUE(a->check().ok()) << a->check().error().message;
  ASSERT_TRUE(a->apply().ok()) << a->describe();
  usleep(300000);  // the writer goes on after the cut
  const std::string all = w.stop();
  const std::string rotated = gunzip(log + ".1.gz");
  const std::string live = slurp(log);
  EXPECT_GT(rotated.size(), 20u << 20);
  // Not a byte lost or doubled: the rotated part and the live file are exactly what was written.
  EXPECT_EQ(rotated.size() + live.size(), all.size());
  EXPECT_TRUE(rotated + live == all) << "content differs";
  EXPECT_LT(used_pct(lfs.mnt()), before - 10) << a->describe();
}

}  // namespace

TEST(RotateLogs, CopyTruncateOnExt4LosesNoAppendedByte) {
  MEND_REQUIRE_ROOT();
  rotate_while_writing("ext4", "64M");
}

TEST(RotateLogs, CopyTruncateOnXfsLosesNoAppendedByte) {
  MEND_REQUIRE_ROOT();
  rotate_while_writing("xfs", "300M");
}

// The attack: in a log directory its owner (an unprivileged user) controls, files planted to
// turn the rotation against the host. A hard link to a root file outside the tree (as with
// fs.protected_hardlinks=0), a symlink, a FIFO, a sparse 4 TiB "log" and another user's file are
// refused or left alone; the real log is rotated, and its rotation keeps its owner and mode.
TEST(RotateLogs, PlantedFilesAreRefusedWhileTheRealLogIsRotated) {
  MEND_REQUIRE_ROOT();
  TempDir d;
  LoopFs lfs(d.path(), "xfs", "300M");  // xfs: a sparse file may be terabytes
  const uid_t user = 65534;             // nobody: owns the log directory and its log
  const std::string logs = lfs.mnt() + "/logs", outside = lfs.mnt() + "/outside";
  fs::create_directories(logs);
  fs::create_directories(outside);
  ASSERT_EQ(chown(logs.c_str(), user, user), 0);
  const std::string secret = outside + "/shadow";
  std::ofstream(secret) << std::string(4 << 20, 's');
  chmod(secret.c_str(), 0600);
  const std::string secret_before = slurp(secret);
  ASSERT_EQ(link(secret.c_str(), (logs + "/hard.log").c_str()), 0);
  std::ofstream(outside + "/other") << std::string(4 << 20, 'o');
  fs::create_symlink(outside + "/other", logs + "/sym.log");
  ASSERT_EQ(mkfifo((logs + "/pipe.log").c_str(), 0644), 0);
  {
    int fd = open((logs + "/huge.log").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, off_t{4} << 40), 0) << strerror(errno);  // 4 TiB, a few blocks
    ASSERT_EQ(pwrite(fd, "x", 1, 0), 1);
    close(fd);
    ASSERT_EQ(chown((logs + "/huge.log").c_str(), user, user), 0);
  }
  std::ofstream(logs + "/foreign.log") << std::string(4 << 20, 'f');
  ASSERT_EQ(chown((logs + "/foreign.log").c_str(), 4242, 4242), 0);
  const std::string log = logs + "/app.log";
  std::ofstream(log) << std::string(8 << 20, 'a') << "tail\n";
  ASSERT_EQ(chown(log.c_str(), user, 4243), 0);
  ASSERT_EQ(chmod(log.c_str(), 0640), 0);

  auto ctx = host_ctx();
  auto a = ActionRegistry::instance().create(
      "rotate_logs",
      Params({{"paths", std::vector<std::string>{logs + "/*.log"}},
              {"min_size", int64_t{1 << 20}},
              {"logrotate_configs", std::string()}}),
      ctx);
  ASSERT_TRUE(a->check().ok()) << a->check().error().message;
  ASSERT_TRUE(a->apply().ok()) << a->describe();
  const std::string what = a->describe();
  EXPECT_NE(what.find("rotated 1"), std::string::npos) << what;
  EXPECT_NE(what.find("1 with more than one link"), std::string::npos) << what;
  EXPECT_NE(what.find("1 of an owner not allowed"), std::string::npos) << what;
  EXPECT_NE(what.find("2 not regular files"), std::string::npos) << what;  // symlink, FIFO
  EXPECT_NE(what.find("huge.log is larger than max_size"), std::string::npos) << what;
  // The outside files, the planted ones and the sparse one are as they were.
  EXPECT_EQ(slurp(secret), secret_before);
  EXPECT_EQ(fs::hard_link_count(secret), 2u);
  EXPECT_EQ(fs::file_size(outside + "/other"), 4u << 20);
  EXPECT_EQ(fs::file_size(logs + "/huge.log"), uintmax_t{4} << 40);
  EXPECT_EQ(fs::file_size(logs + "/foreign.log"), 4u << 20);
  for (const char* n : {"hard", "sym", "pipe", "huge", "foreign"})
    EXPECT_FALSE(fs::exists(logs + "/" + n + ".log.1.gz")) << n;
  // The real log: rotated, nothing lost, the rotation the original's owner and mode.
  const std::string rotated = gunzip(log + ".1.gz");
  EXPECT_EQ(rotated.size() + fs::file_size(log), (8u << 20) + 5);
  struct stat rs {};
  ASSERT_EQ(stat((log + ".1.gz").c_str(), &rs), 0);
  EXPECT_EQ(rs.st_uid, user);
  EXPECT_EQ(rs.st_gid, 4243u);
  EXPECT_EQ(rs.st_mode & 07777, 0640u);
}

// The state directory on a full filesystem: a plan that began writes every record it has
// (the journal's reserve gives back space), nothing is lost or glued together, the verified
// verdict is there, and a new plan is refused loudly while the reserve cannot be restored.
TEST(IntentJournal, FullStateFilesystemLosesNoRecordAndRefusesNewPlans) {
  MEND_REQUIRE_ROOT();
  TempDir d;
  LoopFs lfs(d.path(), "ext4", "16M");
  IntentJournal j(lfs.mnt());
  ASSERT_TRUE(j.begin("run-1", "inc-1", "mem", "app.service").ok());
  ASSERT_GE(j.reserve_bytes(), IntentJournal::kReserveBytes);
  // Full, reserved blocks included (root writes them too).
  run({"dd", "if=/dev/zero", "of=" + lfs.mnt() + "/fill", "bs=1M", "count=64"});
  run({"dd", "if=/dev/zero", "of=" + lfs.mnt() + "/fill2", "bs=1k", "count=65536"});
  run({"dd", "if=/dev/zero", "of=" + lfs.mnt() + "/fill3", "bs=512", "count=65536"});
  ASSERT_NE(
      run({"dd", "if=/dev/zero", "of=" + lfs.mnt() + "/probe", "bs=64k", "count=1", "conv=fsync"})
          .status,
      0)
      << "the filesystem is not full";
  const nlohmann::json big = {{"note", std::string(900, 'p')}};
  const size_t steps = 300;  // ~600 KiB of records: more than the disk has, less than the reserve
  for (size_t i = 0; i < steps; ++i) {
    ASSERT_TRUE(j.intent("run-1", i, "raise_memory_limit", big).ok()) << i;
    ASSERT_TRUE(j.applied("run-1", i, big).ok()) << i;
  }
  ASSERT_TRUE(j.verified("run-1").ok());
  EXPECT_LT(j.reserve_bytes(), IntentJournal::kReserveBytes);  // some of it was given back
  auto u = j.unfinished();
  ASSERT_TRUE(u.ok());
  ASSERT_EQ(u->size(), 1u);
  EXPECT_TRUE((*u)[0].verified);
  ASSERT_EQ((*u)[0].steps.size(), steps);
  for (const auto& s : (*u)[0].steps)
    EXPECT_TRUE(s.applied) << s.index;
  // Every line is a whole record.
  std::ifstream in(j.path());
  size_t lines = 0;
  for (std::string line; std::getline(in, line); ++lines)
    EXPECT_FALSE(nlohmann::json::parse(line, nullptr, false).is_discarded()) << line.substr(0, 80);
  EXPECT_EQ(lines, 2 * steps + 2);
  // Spend the reserve down: past its minimum, a new plan does not begin.
  for (size_t i = 0; j.reserve_bytes() >= IntentJournal::kReserveMin && i < 2000; ++i)
    ASSERT_TRUE(j.applied("run-1", 0, big).ok());
  auto refused = j.begin("run-2", "inc-2", "mem", "app.service");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("no new plan starts"), std::string::npos)
      << refused.error().message;
  ASSERT_TRUE(j.end("run-1", "verified").ok());  // the started plan still finishes its record
  EXPECT_TRUE(j.unfinished()->empty());
  // Room again: the reserve is restored and plans begin.
  fs::remove(lfs.mnt() + "/fill");
  ASSERT_TRUE(j.begin("run-3", "inc-3", "mem", "app.service").ok());
  EXPECT_GE(j.reserve_bytes(), IntentJournal::kReserveBytes);
}

// mendd killed in the middle of a growth (issue 15): the loop file extended, the filesystem not
// grown. Restarted, it takes the file back from the state written ahead with the intent; once
// the device has the new capacity, or the filesystem has grown, it leaves things as they are.
TEST(GrowVolume, AGrowthKilledBeforeTheFilesystemTookItIsTakenBack) {
  MEND_REQUIRE_ROOT();
  TempDir d;
  LoopFs lfs(d.path(), "xfs", "300M");
  auto make = [&] {
    auto ctx = host_ctx();
    return ActionRegistry::instance().create("grow_volume",
                                             Params({{"mount", lfs.mnt()},
                                                     {"step", int64_t{100} << 20},
                                                     {"max_size", int64_t{600} << 20},
                                                     {"reserve", int64_t{0}},
                                                     {"timeout", int64_t{60000000000}}}),
                                             ctx);
  };
  auto a = make();
  ASSERT_TRUE(a->check().ok()) << a->check().error().message;
  const nlohmann::json undo = a->undo_state();  // what the intent record carries
  ASSERT_EQ(undo.value("device", ""), lfs.dev()) << undo.dump();
  // The first thing apply does, then the kill: the file is longer, nothing else changed.
  must_run({"fallocate", "-o", std::to_string(300u << 20), "-l", std::to_string(100u << 20),
            lfs.image()});
  ASSERT_EQ(fs::file_size(lfs.image()), 400u << 20);
  auto after = make();  // a new mendd: only the journal's state
  ASSERT_TRUE(after->restore(undo).ok());
  ASSERT_TRUE(after->rollback().ok());
  EXPECT_EQ(fs::file_size(lfs.image()), 300u << 20);
  EXPECT_EQ(must_run({"blockdev", "--getsize64", lfs.dev()}), std::to_string(300u << 20) + "\n");

  // Killed after losetup --set-capacity: a filesystem growth may be in flight; left as is.
  must_run({"fallocate", "-o", std::to_string(300u << 20), "-l", std::to_string(100u << 20),
            lfs.image()});
  must_run({"losetup", "--set-capacity", lfs.dev()});
  auto third = make();
  ASSERT_TRUE(third->restore(undo).ok());
  auto st = third->rollback();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("new capacity"), std::string::npos) << st.error().message;
  EXPECT_EQ(fs::file_size(lfs.image()), 400u << 20);

  // Grown: never shrunk.
  must_run({"xfs_growfs", lfs.mnt()});
  auto fourth = make();
  ASSERT_TRUE(fourth->restore(undo).ok());
  st = fourth->rollback();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("has grown"), std::string::npos) << st.error().message;
  EXPECT_EQ(fs::file_size(lfs.image()), 400u << 20);
  // A damaged state is refused, not trusted.
  EXPECT_FALSE(make()->restore({{"device", "/dev/sda"}}).ok());
  EXPECT_FALSE(make()
                   ->restore({{"backing_file", "/x"},
                              {"device", "/dev/loop0/../sda"},
                              {"mount", "/x"},
                              {"device_bytes", 1},
                              {"fs_bytes", 1}})
                   .ok());
}

TEST(GrowVolume, LoopXfsGrowsWithinBoundsAndRefusesPastThem) {
  MEND_REQUIRE_ROOT();
  TempDir d;
  LoopFs lfs(d.path(), "xfs", "300M");
  auto grow = [&](const std::string& step, int64_t max, int64_t reserve) {
    auto ctx = host_ctx();
    return ActionRegistry::instance().create(
        "grow_volume",
        Params({{"mount", lfs.mnt()},
                {"step", static_cast<int64_t>(std::stoll(step)) << 20},
                {"max_size", max << 20},
                {"reserve", reserve << 20},
                {"timeout", int64_t{60000000000}}}),
        ctx);
  };
  struct statvfs sv {};
  statvfs(lfs.mnt().c_str(), &sv);
  const uint64_t before = sv.f_blocks * sv.f_frsize;
  auto a = grow("100", 400, 0);
  ASSERT_TRUE(a->check().ok()) << a->check().error().message;
  EXPECT_NE(a->describe().find("from 300 MiB to 400 MiB"), std::string::npos) << a->describe();
  ASSERT_TRUE(a->apply().ok());
  ASSERT_TRUE(*a->verify());
  statvfs(lfs.mnt().c_str(), &sv);
  EXPECT_GT(sv.f_blocks * sv.f_frsize, before + (90u << 20));
  EXPECT_EQ(fs::file_size(lfs.image()), 400u << 20);
  // At the maximum: refused with the reason, nothing changed.
  auto b = grow("100", 400, 0);
  auto st = b->check();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("at or past the maximum"), std::string::npos);
  EXPECT_FALSE(b->apply().ok());
  EXPECT_EQ(fs::file_size(lfs.image()), 400u << 20);
  // No room in the backing filesystem for the step plus the reserve: refused.
  auto c = grow("100", 1000, int64_t{1} << 30 << 10);  // a 1 PiB reserve
  st = c->check();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("reserve"), std::string::npos) << st.error().message;
  EXPECT_EQ(fs::file_size(lfs.image()), 400u << 20);
}

TEST(CleanFiles, BindMountOfAnotherFilesystemInsideTheRootIsNotEntered) {
  MEND_REQUIRE_ROOT();
  TempDir d;
  LoopFs other(d.path(), "ext4", "32M");
  const std::string root = d.path() + "/root";
  fs::create_directories(root + "/sub");
  auto age = [](const std::string& p) {
    std::ofstream(p) << std::string(1000, 'x');
    const timespec t[2] = {{time(nullptr) - 30 * 86400, 0}, {time(nullptr) - 30 * 86400, 0}};
    utimensat(AT_FDCWD, p.c_str(), t, 0);
  };
  age(other.mnt() + "/data.tmp");
  age(root + "/own.tmp");
  must_run({"mount", "--bind", other.mnt(), root + "/sub"});
  const std::string sub = root + "/sub";
  int h = on_cleanup([sub] { run({"umount", "-l", sub}); });
  auto ctx = host_ctx();
  auto a = ActionRegistry::instance().create(
      "clean_files",
      Params({{"roots", std::vector<std::string>{root}},
              {"patterns", std::vector<std::string>{"*.tmp", "sub/*.tmp"}},
              {"older_than", int64_t{86400000000000}},
              {"max_files", int64_t{100}},
              {"max_bytes", int64_t{1} << 30},
              {"allow_open_files", false}}),
      ctx);
  ASSERT_TRUE(a->check().ok());
  ASSERT_TRUE(a->apply().ok());
  EXPECT_FALSE(fs::exists(root + "/own.tmp"));
  EXPECT_TRUE(fs::exists(root + "/sub/data.tmp"));
  EXPECT_TRUE(fs::exists(other.mnt() + "/data.tmp"));
  run({"umount", sub});
  forget_cleanup(h);
}
