// Structured journald records for every remediation step. One record per step, a stable
// MESSAGE_ID per kind (packaging/mend.catalog explains each), MEND_* fields, and
// OBJECT_SYSTEMD_UNIT so `journalctl -u <unit>` shows mend's record inline with the unit's log.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "mend/result.h"

namespace mend {

enum class RecordKind {
  IncidentOpened,
  RootCause,
  ActionStarted,
  ActionFinished,
  Verified,
  RolledBack,
  Escalated,
};

// The 128-bit MESSAGE_ID of each kind, as 32 hex digits. Stable: never change one.
std::string_view message_id(RecordKind k);
std::string_view record_kind_name(RecordKind k);

struct Record {
  RecordKind kind = RecordKind::IncidentOpened;
  int priority = 6;  // syslog priority: 2 crit (escalations), 4 warning, 5 notice, 6 info
  std::string message;
  std::string incident_id;
  std::string root_cause;
  std::string action;
  std::string result;
  std::string policy;
  std::string unit;                          // OBJECT_SYSTEMD_UNIT
  std::map<std::string, std::string> extra;  // further MEND_<KEY> fields (KEY upper-cased)
};

// The journald fields of a record, in order (pure; tested without journald).
std::map<std::string, std::string> record_fields(const Record& r);
// Sends to journald (sd_journal_sendv).
Status journal_send(const Record& r);

}  // namespace mend
