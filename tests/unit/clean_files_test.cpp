// clean_files: bounds, age, open files, dry-run, and the confinement attacks that need no
// mount (the bind-mount case is in tests/privileged/disk_test.cpp).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "fake_units.h"
#include "policy/policy_loader.h"
#include "remedy/action.h"
#include "remedy/confine.h"

using namespace mend;
namespace fs = std::filesystem;

namespace {

struct Tree {
  std::string path;
  Tree() {
    char tmpl[] = "/tmp/mend-clean-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~Tree() { fs::remove_all(path); }
  std::string file(const std::string& rel, size_t size, int age_days) {
    const std::string p = path + "/" + rel;
    fs::create_directories(fs::path(p).parent_path());
    std::ofstream(p) << std::string(size, 'x');
    const timespec t[2] = {{time(nullptr) - age_days * 86400, 0},
                           {time(nullptr) - age_days * 86400, 0}};
    utimensat(AT_FDCWD, p.c_str(), t, AT_SYMLINK_NOFOLLOW);
    return p;
  }
  // Every file (and symlink) with its size: a cheap checksum of the tree.
  std::map<std::string, uintmax_t> listing() const {
    std::map<std::string, uintmax_t> m;
    for (const auto& e : fs::recursive_directory_iterator(path))
      m[e.path().string()] = e.is_symlink() ? 0 : (e.is_regular_file() ? e.file_size() : 1);
    return m;
  }
};

std::unique_ptr<Action> clean(const std::vector<std::string>& roots,
                              const std::vector<std::string>& patterns, int64_t max_files,
                              int64_t max_bytes, const ActionContext& ctx,
                              bool allow_open = false) {
  return ActionRegistry::instance().create(
      "clean_files",
      Params({{"roots", roots},
              {"patterns", patterns},
              {"older_than", int64_t{86400000000000}},  // 1 day
              {"max_files", max_files},
              {"max_bytes", max_bytes},
              {"allow_open_files", allow_open}}),
      ctx);
}

ActionContext ctx() {
  ActionContext c;
  c.procfs = "/proc";
  return c;
}

}  // namespace

TEST(CleanFiles, CountBoundLargestOldestFirstAndYoungFilesStay) {
  Tree t;
  for (int i = 1; i <= 6; ++i)
    t.file("cache/f" + std::to_string(i) + ".tmp", 1000 * i, 10);
  t.file("cache/young.tmp", 99999, 0);
  t.file("cache/keep.dat", 99999, 10);
  auto a = clean({t.path}, {"cache/*.tmp"}, 3, 1 << 30, ctx());
  ASSERT_TRUE(a->check().ok());
  ASSERT_TRUE(a->apply().ok()) << a->describe();
  EXPECT_TRUE(*a->verify());
  EXPECT_FALSE(a->reversible());
  // Exactly the three largest old ones.
  for (int i = 1; i <= 6; ++i)
    EXPECT_EQ(fs::exists(t.path + "/cache/f" + std::to_string(i) + ".tmp"), i <= 3) << i;
  EXPECT_TRUE(fs::exists(t.path + "/cache/young.tmp"));
  EXPECT_TRUE(fs::exists(t.path + "/cache/keep.dat"));
  EXPECT_NE(a->describe().find("deleted 3"), std::string::npos) << a->describe();
}

TEST(CleanFiles, ByteBoundIsNeverExceeded) {
  Tree t;
  t.file("a.log", 5000, 9);
  t.file("b.log", 4000, 9);
  t.file("c.log", 3000, 9);
  t.file("d.log", 1500, 9);
  auto a = clean({t.path}, {"*.log"}, 100, 6000, ctx());
  ASSERT_TRUE(a->check().ok());
  ASSERT_TRUE(a->apply().ok());
  // 5000 fits; 4000 and 3000 would exceed 6000; 1500 doesn't fit after 5000 either.
  EXPECT_FALSE(fs::exists(t.path + "/a.log"));
  EXPECT_TRUE(fs::exists(t.path + "/b.log"));
  EXPECT_TRUE(fs::exists(t.path + "/c.log"));
  EXPECT_TRUE(fs::exists(t.path + "/d.log"));
}

TEST(CleanFiles, DryRunChangesNothingOnDisk) {
  Tree t;
  t.file("x/1.tmp", 100, 30);
  t.file("x/2.tmp", 100, 30);
  const auto before = t.listing();
  auto a = clean({t.path}, {"x/*.tmp"}, 10, 1 << 20, ctx());
  ASSERT_TRUE(a->check().ok());  // what the executor runs under dry-run and observe
  EXPECT_NE(a->describe().find("2 files"), std::string::npos) << a->describe();
  EXPECT_EQ(t.listing(), before);
}

TEST(CleanFiles, SymlinkToAFileOutsideIsNeverFollowed) {
  Tree t, outside;
  const std::string passwd = outside.file("passwd", 2048, 100);  // stands in for /etc/passwd
  t.file("logs/old.log", 100, 30);
  fs::create_symlink(passwd, t.path + "/logs/evil.log");
  auto a = clean({t.path}, {"logs/*.log"}, 10, 1 << 20, ctx());
  ASSERT_TRUE(a->check().ok());
  ASSERT_TRUE(a->apply().ok());
  EXPECT_TRUE(fs::exists(passwd));
  EXPECT_EQ(fs::file_size(passwd), 2048u);
  EXPECT_TRUE(fs::is_symlink(t.path + "/logs/evil.log"));  // not ours to delete either
  EXPECT_FALSE(fs::exists(t.path + "/logs/old.log"));
}

TEST(CleanFiles, DirectorySwappedForASymlinkBetweenScanAndDelete) {
  Tree t, outside;
  t.file("logs/app.log", 100, 30);
  const std::string victim = outside.file("app.log", 100, 30);
  auto a = clean({t.path}, {"logs/*.log"}, 10, 1 << 20, ctx());
  ASSERT_TRUE(a->check().ok());  // scanned: logs/app.log
  fs::rename(t.path + "/logs", t.path + "/logs.real");
  fs::create_directory_symlink(outside.path, t.path + "/logs");
  EXPECT_FALSE(a->apply().ok());  // nothing deleted
  EXPECT_TRUE(fs::exists(victim));
  EXPECT_TRUE(fs::exists(t.path + "/logs.real/app.log"));
}

TEST(CleanFiles, FileReplacedAfterTheScanIsLeftAlone) {
  Tree t;
  t.file("a.tmp", 100, 30);
  auto a = clean({t.path}, {"*.tmp"}, 10, 1 << 20, ctx());
  ASSERT_TRUE(a->check().ok());
  t.file("a.new", 100, 30);  // another inode, moved over the scanned name
  fs::rename(t.path + "/a.new", t.path + "/a.tmp");
  auto st = a->apply();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("not the file that was scanned"), std::string::npos)
      << st.error().message;
  EXPECT_TRUE(fs::exists(t.path + "/a.tmp"));
}

TEST(CleanFiles, FilesOpenForWritingAreSkippedUnlessAllowed) {
  Tree t;
  const std::string p = t.file("w.log", 100, 30);
  int fd = open(p.c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  auto a = clean({t.path}, {"*.log"}, 10, 1 << 20, ctx());
  auto st = a->check();
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(fs::exists(p));
  auto b = clean({t.path}, {"*.log"}, 10, 1 << 20, ctx(), /*allow_open=*/true);
  ASSERT_TRUE(b->check().ok());
  ASSERT_TRUE(b->apply().ok());
  EXPECT_FALSE(fs::exists(p));
  close(fd);
}

TEST(CleanFiles, PolicyMustAllowIrreversibleAndConfineRootsAndPatterns) {
  auto compile = [](const std::string& action, bool allow) {
    auto irs = parse_policies(std::string("policies:\n  - name: c\n    match: {root_cause: "
                                          "fs_full}\n    mode: auto\n") +
                                  (allow ? "    allow_irreversible: true\n" : "") +
                                  "    actions:\n      - " + action + "\n",
                              "c.yaml");
    EXPECT_TRUE(irs.ok());
    return compile_policies(*irs);
  };
  EXPECT_TRUE(compile("clean_files: {roots: [/srv/cache], patterns: ['*.tmp']}", true).ok());
  auto no_flag = compile("clean_files: {roots: [/srv/cache], patterns: ['*.tmp']}", false);
  ASSERT_FALSE(no_flag.ok());
  EXPECT_NE(no_flag.error().message.find("allow_irreversible"), std::string::npos);
  for (const char* bad : {"clean_files: {roots: [/srv/../etc], patterns: ['*']}",
                          "clean_files: {roots: [/etc], patterns: ['*']}",
                          "clean_files: {roots: [/], patterns: ['*']}",
                          "clean_files: {roots: [/var/], patterns: ['*']}",
                          "clean_files: {roots: [/home//], patterns: ['*']}",
                          "clean_files: {roots: [/var/lib/mend/x], patterns: ['*']}",
                          "clean_files: {roots: [srv], patterns: ['*']}",
                          "clean_files: {roots: [/srv], patterns: ['../etc/*']}",
                          "clean_files: {roots: [/srv], patterns: ['a/../../etc/passwd']}",
                          "clean_files: {roots: [/srv], patterns: ['/etc/passwd']}"}) {
    auto r = compile(bad, true);
    EXPECT_FALSE(r.ok()) << bad;
  }
}

TEST(Confine, DotDotAndAbsolutePathsAreRefusedByTheKernel) {
  Tree t, outside;
  outside.file("secret", 10, 0);
  auto root = open_root(t.path);
  ASSERT_TRUE(root.ok());
  const std::string rel = fs::relative(outside.path + "/secret", t.path).string();  // ../x/secret
  ASSERT_EQ(rel.rfind("..", 0), 0u);
  EXPECT_FALSE(open_beneath(root->get(), rel, O_RDONLY).ok());
  EXPECT_FALSE(open_beneath(root->get(), outside.path + "/secret", O_RDONLY).ok());
  fs::create_directory_symlink(outside.path, t.path + "/link");
  EXPECT_FALSE(open_root(t.path + "/link").ok());
  EXPECT_FALSE(open_beneath(root->get(), "link/secret", O_RDONLY).ok());
  EXPECT_FALSE(is_clean_absolute("/a/../b"));
  EXPECT_FALSE(is_clean_absolute("/a//b"));
  EXPECT_TRUE(is_clean_absolute("/var/log/app"));
}

// One deny-list for every disk action, normalised first: a trailing slash is no way around it.
TEST(Confine, OneDenyListNormalisedWithTheStateDirectory) {
  for (const char* bad : {"/", "/var", "/var/", "/var//", "/home/", "//home", "/var/lib", "/usr/",
                          "/usr/local/logs", "/etc/app", "/proc/1", "/run", "/run/systemd/x",
                          "/var/lib/mend", "/var/lib/mend/staging", "/root/logs", "/srv", "/opt/"})
    EXPECT_NE(denied_root(bad), "") << bad;
  for (const char* ok : {"/var/log", "/var/log/app/", "/srv/cache", "/opt/app/logs", "/tmp/x",
                         "/home/u/logs", "/run/user/1000/app"})
    EXPECT_EQ(denied_root(ok), "") << ok;
  EXPECT_NE(denied_root("/data/mend-state", "/data/mend-state/"), "");
  EXPECT_NE(denied_root("/data/mend-state/sub", "/data/mend-state"), "");
  EXPECT_NE(denied_root("/data", "/data/mend-state"), "");  // holds it
  EXPECT_EQ(denied_root("/data/logs", "/data/mend-state"), "");
}

// A hard link planted in an allowed directory (to a file outside it) is never deleted through,
// and neither is a file of an owner the policy does not allow.
TEST(CleanFiles, HardLinksAndForeignOwnersAreLeftAlone) {
  Tree t, outside;
  const std::string secret = outside.file("secret", 100, 30);
  ASSERT_EQ(link(secret.c_str(), (t.path + "/planted.tmp").c_str()), 0);
  const std::string mine = t.file("mine.tmp", 100, 30);
  std::string foreign;
  if (geteuid() == 0) {
    foreign = t.file("foreign.tmp", 100, 30);
    ASSERT_EQ(chown(foreign.c_str(), 4242, 4242), 0);
  }
  auto a = clean({t.path}, {"*.tmp"}, 10, 1 << 20, ctx());
  ASSERT_TRUE(a->check().ok()) << a->check().error().message;
  EXPECT_NE(a->describe().find("1 with more than one link"), std::string::npos) << a->describe();
  ASSERT_TRUE(a->apply().ok());
  EXPECT_FALSE(fs::exists(mine));
  EXPECT_TRUE(fs::exists(t.path + "/planted.tmp"));
  EXPECT_EQ(fs::hard_link_count(secret), 2u);
  if (!foreign.empty()) {
    EXPECT_TRUE(fs::exists(foreign));
    EXPECT_NE(a->describe().find("1 of an owner not allowed"), std::string::npos) << a->describe();
  }
}
