// grow_volume's plans for every backend, including the ones this machine cannot run for real
// (LVM, ext4 online growth); the loop + XFS path runs for real in tests/privileged/disk_test.cpp.
#include "remedy/grow_plan.h"

#include <gtest/gtest.h>

using namespace mend;

namespace {

constexpr uint64_t M = 1ull << 20, G = 1ull << 30;

GrowFacts lvm_ext4() {
  GrowFacts f;
  f.mount = "/srv/data";
  f.fstype = "ext4";
  f.device = "/dev/mapper/vg0-data";
  f.backend = GrowBackend::Lvm;
  f.vg = "vg0";
  f.lv = "data";
  f.device_bytes = 10 * G;
  f.backing_free_bytes = 50 * G;
  return f;
}

}  // namespace

TEST(GrowPlan, LvmThenResize2fsWithExactArguments) {
  auto p = plan_growth(lvm_ext4(), {2 * G, 20 * G, 1 * G});
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->grow_by, 2 * G);
  EXPECT_EQ(p->new_device_bytes, 12 * G);
  ASSERT_EQ(p->commands.size(), 2u);
  EXPECT_EQ(p->commands[0],
            (std::vector<std::string>{"/usr/sbin/lvextend", "--size", "+2147483648b", "vg0/data"}));
  EXPECT_EQ(p->commands[1],
            (std::vector<std::string>{"/usr/sbin/resize2fs", "/dev/mapper/vg0-data"}));
  EXPECT_NE(p->summary.find("from 10240 MiB to 12288 MiB"), std::string::npos) << p->summary;
}

TEST(GrowPlan, StepIsClampedToTheMaximumAndExtents) {
  auto f = lvm_ext4();
  f.device_bytes = 19 * G + 500 * M;
  auto p = plan_growth(f, {2 * G, 20 * G, 0});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->grow_by, 524 * M);  // to the maximum, in whole 4 MiB extents
  EXPECT_LE(p->new_device_bytes, 20 * G);
}

TEST(GrowPlan, LoopXfsAndBtrfs) {
  GrowFacts f;
  f.mount = "/mnt/x";
  f.fstype = "xfs";
  f.device = "/dev/loop4";
  f.backend = GrowBackend::Loop;
  f.backing_file = "/var/tmp/x.img";
  f.device_bytes = 300 * M;
  f.backing_free_bytes = 10 * G;
  auto p = plan_growth(f, {100 * M, 1 * G, 1 * G});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->commands[0],
            (std::vector<std::string>{"/usr/sbin/losetup", "--set-capacity", "/dev/loop4"}));
  EXPECT_EQ(p->commands[1], (std::vector<std::string>{"/usr/sbin/xfs_growfs", "/mnt/x"}));
  f.fstype = "btrfs";
  p = plan_growth(f, {100 * M, 1 * G, 1 * G});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->commands[1],
            (std::vector<std::string>{"/usr/bin/btrfs", "filesystem", "resize", "max", "/mnt/x"}));
}

TEST(GrowPlan, RefusalsSayWhy) {
  auto f = lvm_ext4();
  f.device_bytes = 20 * G;
  auto p = plan_growth(f, {1 * G, 20 * G, 0});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("at or past the maximum"), std::string::npos);
  f = lvm_ext4();
  f.backing_free_bytes = 2 * G;
  p = plan_growth(f, {2 * G, 20 * G, 1 * G});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("volume group vg0 has 2048 MiB free"), std::string::npos)
      << p.error().message;
  f = lvm_ext4();
  f.fstype = "vfat";
  EXPECT_FALSE(plan_growth(f, {1 * G, 20 * G, 0}).ok());
  f = lvm_ext4();
  f.backend = GrowBackend::None;
  p = plan_growth(f, {1 * G, 20 * G, 0});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("no backend"), std::string::npos);
}
