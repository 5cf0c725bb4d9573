#include <gtest/gtest.h>

#include "systemd/transient_child.h"
#include "systemd/unit_resolver.h"

using namespace mend;

TEST(UnitResolver, ValidUnitNames) {
  EXPECT_TRUE(is_valid_unit_name("app.service"));
  EXPECT_TRUE(is_valid_unit_name("foo@bar.service"));
  EXPECT_TRUE(is_valid_unit_name("user@1000.service"));
  EXPECT_TRUE(is_valid_unit_name("session-3.scope"));
  EXPECT_TRUE(is_valid_unit_name("system-getty.slice"));
  EXPECT_TRUE(is_valid_unit_name("dev-disk-by\\x2duuid.device"));
  EXPECT_FALSE(is_valid_unit_name("mend-test"));
  EXPECT_FALSE(is_valid_unit_name(".service"));
  EXPECT_FALSE(is_valid_unit_name("@x.service"));
  EXPECT_FALSE(is_valid_unit_name("a@b@c.service"));
  EXPECT_FALSE(is_valid_unit_name("bad name.service"));
}

struct Case {
  const char* path;
  const char* root;
  const char* unit;
  const char* user_unit;
};

class UnitFromCgroup : public ::testing::TestWithParam<Case> {};

TEST_P(UnitFromCgroup, Resolves) {
  const auto& c = GetParam();
  auto r = unit_from_cgroup(c.path, c.root);
  EXPECT_EQ(r.unit, c.unit) << c.path;
  EXPECT_EQ(r.user_unit, c.user_unit) << c.path;
}

INSTANTIATE_TEST_SUITE_P(
    Paths, UnitFromCgroup,
    ::testing::Values(
        // v2 / unified system units
        Case{"/system.slice/nginx.service", "/", "nginx.service", ""},
        // nested cgroups inside a unit (delegation)
        Case{"/system.slice/docker.service/payload/x", "/", "docker.service", ""},
        // nested slices
        Case{"/a.slice/a-b.slice/a-b-c.slice/deep.service", "/", "deep.service", ""},
        // templated units
        Case{"/system.slice/system-getty.slice/getty@tty1.service", "/", "getty@tty1.service", ""},
        // scopes
        Case{"/user.slice/user-1000.slice/session-3.scope", "/", "session-3.scope", ""},
        // user managers: the system unit and the user's own unit
        Case{"/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service", "/",
             "user@1000.service", "foo.service"},
        Case{"/user.slice/user-1000.slice/user@1000.service/init.scope", "/", "user@1000.service",
             "init.scope"},
        // a user manager started under a non-unit prefix (the test harness): its root given
        Case{"/mend-test/app.slice/x.service", "/mend-test", "x.service", ""},
        // impersonation: a path that only ends in a unit's name is no unit's
        Case{"/mend-test/app.slice/x.service", "/", "", ""},
        Case{"/lxc.payload.c1/system.slice/nginx.service", "/", "", ""},
        Case{"/X/app.slice/web.service", "/", "", ""},
        Case{"/system.slice/nginx.service", "/mend-test", "", ""},
        Case{"/…/system.slice/nginx.service", "/", "", ""},
        // slices nest the way systemd nests them
        Case{"/system.slice/user-1000.slice/x.service", "/", "", ""},
        Case{"/a.slice/a-b-c.slice/x.service", "/", "", ""},
        // below a unit everything is the unit's: a delegated subtree cannot name another
        Case{"/system.slice/lxc.service/system.slice/nginx.service", "/", "lxc.service", ""},
        Case{"/user.slice/user-1000.slice/user@1000.service/x/app.slice/foo.service", "/",
             "user@1000.service", ""},
        // manager root given: units relative to it
        Case{"/user.slice/user-1000.slice/user@1000.service/app.slice/foo@a.service",
             "/user.slice/user-1000.slice/user@1000.service", "foo@a.service", ""},
        // no unit: the root, a slice only, a plain cgroup
        Case{"/", "/", "", ""}, Case{"/system.slice", "/", "", ""},
        Case{"/mend-test-oom", "/", "", ""},
        // v1 controller hierarchies mirror the same paths
        Case{"/system.slice/cron.service", "/", "cron.service", ""}));

TEST(PickUnitCgroup, Hybrid) {
  const char* text =
      "12:memory:/system.slice/app.service\n"
      "1:name=systemd:/system.slice/app.service\n"
      "0::/system.slice/app.service\n";
  EXPECT_EQ(pick_unit_cgroup(text), "/system.slice/app.service");
}

TEST(PickUnitCgroup, V1OnlyUsesNamedSystemd) {
  const char* text =
      "4:memory:/system.slice\n"
      "1:name=systemd:/system.slice/app.service\n"
      "0::/\n";
  EXPECT_EQ(pick_unit_cgroup(text), "/system.slice/app.service");
}

TEST(PickUnitCgroup, PureV2) {
  EXPECT_EQ(pick_unit_cgroup("0::/a.slice/b.service\n"), "/a.slice/b.service");
}

TEST(PickUnitCgroup, MemoryAsLastResort) {
  EXPECT_EQ(pick_unit_cgroup("5:cpu,memory:/mend-test-oom\n0::/\n"), "/mend-test-oom");
}

TEST(TransientChildren, OnlyMenddsOwnNamingIsMenddsChild) {
  EXPECT_TRUE(is_mend_child_unit("mend-exec-0123456789abcdef.service"));
  EXPECT_TRUE(is_mend_child_unit("mend-notify-c1e074d65d77baaa.service"));
  EXPECT_FALSE(is_mend_child_unit("mend.service"));
  EXPECT_FALSE(is_mend_child_unit("mend-exec.service"));
  EXPECT_FALSE(is_mend_child_unit("mend--0123456789abcdef.service"));
  EXPECT_FALSE(is_mend_child_unit("mend-exec-0123456789ABCDEF.service"));
  EXPECT_FALSE(is_mend_child_unit("mend-exec-0123456789abcde.service"));
  EXPECT_FALSE(is_mend_child_unit("mend-Exec-0123456789abcdef.service"));
  EXPECT_FALSE(is_mend_child_unit("mend-exec-0123456789abcdef.scope"));
  EXPECT_FALSE(is_mend_child_unit("xmend-exec-0123456789abcdef.service"));
  EXPECT_FALSE(is_mend_child_unit("mend-" + std::string(33, 'a') + "-0123456789abcdef.service"));
  EXPECT_FALSE(is_mend_child_unit("mend-web-api-0123456789abcdef.service"));
}
