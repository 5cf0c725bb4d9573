#include <gtest/gtest.h>

#include <cstring>

#include "sensors/bpf_decode.h"
#include "sensors/latency_hist.h"
#include "sensors/mounts.h"
#include "sensors/psi.h"
#include "systemd/unit_resolver.h"

using namespace mend;

static void set_path(mend_cgroup_path& p, std::initializer_list<const char*> leaf_first) {
  p.depth = 0;
  p.truncated = 0;
  for (const char* n : leaf_first)
    std::strncpy(p.names[p.depth++], n, MEND_CG_NAME_LEN);
}

TEST(Decode, CgroupPathJoinsLeafFirstCapture) {
  mend_cgroup_path p{};
  set_path(p, {"x.service", "app.slice", "mend-test"});
  EXPECT_EQ(join_cgroup_path(p), "/mend-test/app.slice/x.service");
  p.depth = 0;
  EXPECT_EQ(join_cgroup_path(p), "/");
  set_path(p, {"leaf"});
  p.truncated = 1;
  EXPECT_EQ(join_cgroup_path(p), "/…/leaf");
  // A name the kernel filled to the brim without a NUL stays bounded.
  std::memset(p.names[0], 'a', MEND_CG_NAME_LEN);
  p.truncated = 0;
  EXPECT_EQ(join_cgroup_path(p), "/" + std::string(MEND_CG_NAME_LEN, 'a') + "…");
  // A name cut at the kernel's limit is marked, so it cannot pass for a unit's name.
  std::string cut(MEND_CG_NAME_LEN - 1 - 8, 'n');
  cut += ".service";
  set_path(p, {cut.c_str(), "system.slice"});
  EXPECT_EQ(join_cgroup_path(p), "/system.slice/" + cut + "…");
  EXPECT_EQ(unit_from_cgroup(join_cgroup_path(p), "/").unit, "");
  p.depth = 1000;  // corrupt depth is clamped
  EXPECT_NO_THROW(join_cgroup_path(p));
}

TEST(Decode, OomEventMemcgAndGlobal) {
  mend_oom_event e{};
  e.pid = 4242;
  std::strcpy(e.comm, "python3");
  e.constrained = 1;
  e.limit_pages = 12800;
  e.rss_pages = 12000;
  e.page_size = 4096;
  e.oom_score_adj = -100;
  set_path(e.memcg, {"x.service", "app.slice", "mend-test"});
  set_path(e.dfl_cg, {"x.service", "app.slice", "mend-test"});
  auto k = decode_oom(e, "/mend-test");
  EXPECT_EQ(k.pid, 4242);
  EXPECT_EQ(k.comm, "python3");
  EXPECT_EQ(k.cgroup, "/mend-test/app.slice/x.service");
  EXPECT_EQ(k.unit, "x.service");
  EXPECT_EQ(k.constraint, "memcg");
  EXPECT_EQ(k.memcg_limit_bytes, 12800u * 4096);
  EXPECT_EQ(k.rss_bytes, 12000u * 4096);
  EXPECT_EQ(k.oom_score_adj, -100);

  e.constrained = 0;
  e.dfl_cg.depth = 0;  // pure v1 host: unit from the memory hierarchy
  k = decode_oom(e, "/mend-test");
  EXPECT_EQ(k.constraint, "global");
  EXPECT_EQ(k.memcg_limit_bytes, 0u);
  EXPECT_EQ(k.unit, "x.service");
}

TEST(Decode, FsErrorResolvesMountByDeviceOrPath) {
  MountTable t;
  t.set(
      parse_mountinfo("43 22 7:4 / /var/log rw - ext4 /dev/loop4 rw\n"
                      "22 1 254:0 / / rw - ext4 /dev/vda rw\n"));
  mend_fs_error_event e{};
  e.pid = 7;
  e.err = 28;
  e.syscall_nr = 1;
  e.dev_major = 7;
  e.dev_minor = 4;
  set_path(e.dfl_cg, {"app.service", "system.slice"});
  auto f = decode_fs_error(e, t, "/");
  EXPECT_EQ(f.mount, "/var/log");
  EXPECT_EQ(f.device, "7:4");
  EXPECT_EQ(f.syscall, "write");
  EXPECT_EQ(f.unit, "app.service");
  EXPECT_EQ(f.err, 28);

  e.dev_major = e.dev_minor = 0;
  e.syscall_nr = 257;
  e.has_path = 1;
  std::strcpy(e.path, "/var/log/new.log");
  f = decode_fs_error(e, t, "/");
  EXPECT_EQ(f.syscall, "openat");
  EXPECT_EQ(f.mount, "/var/log");
  EXPECT_EQ(f.device, "7:4");
  EXPECT_EQ(syscall_name(9999), "syscall_9999");
}

TEST(LatencyHist, BucketsAreContiguousAndMonotonic) {
  for (uint32_t b = 0; b + 1 < MEND_HIST_BUCKETS; ++b) {
    EXPECT_LT(hist_bucket_lower(b), hist_bucket_lower(b + 1));
    EXPECT_EQ(hist_bucket(hist_bucket_lower(b)), b);
    EXPECT_EQ(hist_bucket(hist_bucket_lower(b + 1) - 1), b);
  }
}

TEST(LatencyHist, QuantileWithin25Percent) {
  LatencyHist h{};
  for (int i = 0; i < 99; ++i)
    h[hist_bucket(100)]++;
  h[hist_bucket(330000)] += 1;
  EXPECT_NEAR(static_cast<double>(hist_quantile(h, 0.5)), 100, 25);
  // 1 sample in 100 at 330 ms: p99 is still the 100 µs mass, p99.5 is the slow one.
  h[hist_bucket(330000)] += 9;
  uint64_t p99 = hist_quantile(h, 0.99);
  EXPECT_GE(p99, 262144u);
  EXPECT_LE(p99, 393216u);
  EXPECT_EQ(hist_quantile(LatencyHist{}, 0.99), 0u);
}

TEST(Psi, Parses) {
  auto r = parse_psi(
      "some avg10=12.50 avg60=3.00 avg300=1.00 total=123\n"
      "full avg10=4.25 avg60=1.00 avg300=0.00 total=45\n");
  EXPECT_DOUBLE_EQ(r.some_avg10, 12.5);
  EXPECT_DOUBLE_EQ(r.full_avg10, 4.25);
  EXPECT_EQ(parse_psi("garbage").some_avg10, -1);
}
