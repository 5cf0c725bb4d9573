#include <gtest/gtest.h>

#include <set>

#include "sinks/journal.h"

using namespace mend;

TEST(Journal, MessageIdsAreStableDistinct128BitIds) {
  std::set<std::string> seen;
  for (auto k : {RecordKind::IncidentOpened, RecordKind::RootCause, RecordKind::ActionStarted,
                 RecordKind::ActionFinished, RecordKind::Verified, RecordKind::RolledBack,
                 RecordKind::Escalated}) {
    std::string id(message_id(k));
    EXPECT_EQ(id.size(), 32u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_TRUE(seen.insert(id).second);
  }
  // Pinned: the catalog and people's saved searches depend on these.
  EXPECT_EQ(message_id(RecordKind::Escalated), "5fb1f1d3f46548ae889377939428dfb2");
}

TEST(Journal, RecordFields) {
  Record r;
  r.kind = RecordKind::ActionFinished;
  r.priority = 5;
  r.message = "restart_unit app.service: done";
  r.incident_id = "inc-1";
  r.root_cause = "fs_full";
  r.action = "restart_unit";
  r.result = "done";
  r.policy = "log-volume-full";
  r.unit = "app.service";
  r.extra = {{"mount", "/var/log"}, {"culprit-unit", "noisy.service"}};
  auto f = record_fields(r);
  EXPECT_EQ(f["MESSAGE_ID"], "666e06a737c04222b04538ba13cb14b8");
  EXPECT_EQ(f["PRIORITY"], "5");
  EXPECT_EQ(f["MEND_INCIDENT_ID"], "inc-1");
  EXPECT_EQ(f["MEND_ROOT_CAUSE"], "fs_full");
  EXPECT_EQ(f["MEND_ACTION"], "restart_unit");
  EXPECT_EQ(f["MEND_RESULT"], "done");
  EXPECT_EQ(f["MEND_POLICY"], "log-volume-full");
  EXPECT_EQ(f["OBJECT_SYSTEMD_UNIT"], "app.service");
  EXPECT_EQ(f["MEND_MOUNT"], "/var/log");
  EXPECT_EQ(f["MEND_CULPRIT_UNIT"], "noisy.service");
  EXPECT_EQ(f["MEND_RECORD"], "action_finished");
  // Empty fields are left out rather than sent empty.
  Record bare;
  EXPECT_EQ(record_fields(bare).count("OBJECT_SYSTEMD_UNIT"), 0u);
}
