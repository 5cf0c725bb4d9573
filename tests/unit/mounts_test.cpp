#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "sensors/mounts.h"

using namespace mend;

static const char* kMountinfo =
    "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    "30 22 0:25 / /sys/fs/cgroup/unified rw shared:5 - cgroup2 cgroup2 rw,nsdelegate\n"
    "31 22 0:26 / /sys/fs/cgroup/blkio rw shared:6 - cgroup cgroup rw,blkio\n"
    "40 22 7:3 / /mnt/with\\040space rw - xfs /dev/loop3 rw,attr2\n"
    "41 22 7:3 /sub /srv/bind rw - xfs /dev/loop3 rw,attr2\n"
    "42 22 259:1 / /data rw master:3 - btrfs /dev/nvme0n1p1 rw\n"
    "garbage line\n"
    "43 22 7:4 / /var/log rw - ext4 /dev/loop4 rw\n";

TEST(Mounts, ParsesFieldsAndUnescapes) {
  auto ms = parse_mountinfo(kMountinfo);
  ASSERT_EQ(ms.size(), 7u);  // the garbage line is skipped
  EXPECT_EQ(ms[3].mountpoint, "/mnt/with space");
  EXPECT_EQ(ms[3].fstype, "xfs");
  EXPECT_EQ(ms[3].device(), "7:3");
  EXPECT_EQ(ms[3].source, "/dev/loop3");
  EXPECT_EQ(ms[5].fstype, "btrfs");  // optional fields before "-" are skipped
  EXPECT_EQ(ms[2].super_options, "rw,blkio");
}

TEST(Mounts, LookupByDeviceAndPath) {
  MountTable t;
  t.set(parse_mountinfo(kMountinfo));
  EXPECT_EQ(t.by_device(7, 3).size(), 2u);
  EXPECT_EQ(t.by_path("/var/log/app/x.log")->mountpoint, "/var/log");
  EXPECT_EQ(t.by_path("/var/logs")->mountpoint, "/");  // component boundary
  EXPECT_EQ(t.by_path("/srv/bind/f")->device(), "7:3");
  EXPECT_EQ(t.by_path("/")->mountpoint, "/");
  auto disk = t.by_disk(259, 0, {{259, 1}});
  ASSERT_EQ(disk.size(), 1u);
  EXPECT_EQ(disk[0]->mountpoint, "/data");
}

// Issue 14: every ENOSPC event naming an unknown device re-read mountinfo.
TEST(Mounts, RefreshesAreRateLimited) {
  char tmpl[] = "/tmp/mend-mounts-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string path = dir + "/mountinfo";
  const char* line = "22 1 7:1 / /a rw - ext4 /dev/loop1 rw\n";
  std::ofstream(path) << line;
  MountTable t(path);
  EXPECT_TRUE(*t.refresh_at_most_every(1000000000ull, 100000000ull));
  std::ofstream(path, std::ios::app) << "23 1 7:2 / /b rw - ext4 /dev/loop2 rw\n";
  for (int i = 0; i < 1000; ++i)  // a storm within 100 ms: not one read
    EXPECT_FALSE(*t.refresh_at_most_every(1000000000ull + i * 1000ull, 100000000ull));
  EXPECT_EQ(t.refreshes_skipped(), 1000u);
  EXPECT_EQ(t.all().size(), 1u);
  EXPECT_TRUE(*t.refresh_at_most_every(1200000000ull, 100000000ull));
  EXPECT_EQ(t.all().size(), 2u);
  std::filesystem::remove_all(dir);
}
