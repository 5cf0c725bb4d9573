#include "journal.h"

#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include <cctype>
#include <vector>

namespace mend {

std::string_view message_id(RecordKind k) {
  switch (k) {
    case RecordKind::IncidentOpened:
      return "9d87041f009d451f971634f2032ae22a";
    case RecordKind::RootCause:
      return "49094a6c7ca84536a6a2e24920d92434";
    case RecordKind::ActionStarted:
      return "14b7cdd70abd4e548e11a28f87926cf0";
    case RecordKind::ActionFinished:
      return "666e06a737c04222b04538ba13cb14b8";
    case RecordKind::Verified:
      return "b4ddfefef4364a55ae919fd52183aa01";
    case RecordKind::RolledBack:
      return "7ea0ae3874d44a649df7160679c818f7";
    case RecordKind::Escalated:
      return "5fb1f1d3f46548ae889377939428dfb2";
  }
  return "";
}

std::string_view record_kind_name(RecordKind k) {
  switch (k) {
    case RecordKind::IncidentOpened:
      return "incident_opened";
    case RecordKind::RootCause:
      return "root_cause";
    case RecordKind::ActionStarted:
      return "action_started";
    case RecordKind::ActionFinished:
      return "action_finished";
    case RecordKind::Verified:
      return "verified";
    case RecordKind::RolledBack:
      return "rolled_back";
    case RecordKind::Escalated:
      return "escalated";
  }
  return "";
}

std::map<std::string, std::string> record_fields(const Record& r) {
  std::map<std::string, std::string> f;
  f["MESSAGE"] = r.message;
  f["MESSAGE_ID"] = std::string(message_id(r.kind));
  f["PRIORITY"] = std::to_string(r.priority);
  f["SYSLOG_IDENTIFIER"] = "mendd";
  f["MEND_RECORD"] = std::string(record_kind_name(r.kind));
  auto opt = [&](const char* k, const std::string& v) {
    if (!v.empty())
      f[k] = v;
  };
  opt("MEND_INCIDENT_ID", r.incident_id);
  opt("MEND_ROOT_CAUSE", r.root_cause);
  opt("MEND_ACTION", r.action);
  opt("MEND_RESULT", r.result);
  opt("MEND_POLICY", r.policy);
  opt("OBJECT_SYSTEMD_UNIT", r.unit);
  for (const auto& [k, v] : r.extra) {
    std::string key = "MEND_";
    for (char c : k)
      key += std::isalnum(static_cast<unsigned char>(c))
                 ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
                 : '_';
    f[key] = v;
  }
  return f;
}

Status journal_send(const Record& r) {
  auto fields = record_fields(r);
  std::vector<std::string> lines;
  lines.reserve(fields.size());
  for (const auto& [k, v] : fields)
    lines.push_back(k + "=" + v);
  std::vector<iovec> iov;
  for (auto& l : lines)
    iov.push_back({l.data(), l.size()});
  int rc = sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
  if (rc < 0)
    return Error::from_errno("Failed to send a record to journald", -rc);
  return {};
}

}  // namespace mend
