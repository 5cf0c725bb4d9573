// The write-ahead intent journal (state_dir/intent.jsonl): before every apply, what is about
// to be done; after it, how to undo it; a verified plan's verdict; at the end, the outcome.
// Each line is fsync'd. When mendd starts, a plan with no end line is rolled back from it,
// never repeated blindly, unless its verification succeeded (then it is only closed).
// Writes may come from a remedy step's own thread (the "applied" line, right after apply):
// they are serialized.
//
// Never loses a record: a write that comes up short is cut off again (and a torn line left by a
// crash is ended with a newline before the next record), so a torn record never takes the
// next one with it; a reserve file (state_dir/intent.reserve) holds space on the journal's
// filesystem that is given back, a piece at a time, when a record meets a full disk, so a plan
// that started can always write its records. begin() refuses a new plan while the reserve
// cannot be restored.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "mend/result.h"

namespace mend {

struct JournalStep {
  size_t index = 0;
  std::string action;
  nlohmann::json params;
  nlohmann::json undo;  // from "applied"; else what the intent foresaw (see intent())
  bool applied = false;
  bool rolled_back = false;
};

struct UnfinishedRun {
  std::string run_id, incident_id, policy, target;
  std::vector<JournalStep> steps;
  bool verified = false;  // its verification succeeded: never rolled back
};

class IntentJournal {
 public:
  static constexpr uint64_t kReserveBytes = 1 << 20;
  // Below this a new plan does not begin (each of its records is well under 4 KiB).
  static constexpr uint64_t kReserveMin = 256 << 10;
  explicit IntentJournal(std::string dir, uint64_t max_bytes = 1 << 20)
      : dir_(dir),
        path_(dir + "/intent.jsonl"),
        reserve_path_(dir + "/intent.reserve"),
        max_bytes_(max_bytes) {}
  Status begin(const std::string& run, const std::string& incident, const std::string& policy,
               const std::string& target);
  // `undo`: how the step would be undone, as known before it runs (the value it replaces), so
  // a crash between the apply and its "applied" record can still be undone; null if unknown.
  Status intent(const std::string& run, size_t step, const std::string& action,
                const nlohmann::json& params, const nlohmann::json& undo = nullptr);
  Status applied(const std::string& run, size_t step, const nlohmann::json& undo);
  Status rolled_back(const std::string& run, size_t step);
  // The plan's verification succeeded: from here on it is never rolled back.
  Status verified(const std::string& run);
  Status end(const std::string& run, const std::string& outcome);
  // Runs begun and not ended, as the file says.
  Result<std::vector<UnfinishedRun>> unfinished() const;
  const std::string& path() const { return path_; }
  // Bytes the reserve holds now.
  uint64_t reserve_bytes() const;

 private:
  Status append(const nlohmann::json& line);
  Status write_line(const std::string& s);
  Status ensure_reserve();
  bool release_reserve();
  Status compact();
  std::string dir_, path_, reserve_path_;
  uint64_t max_bytes_;
  std::mutex mu_;  // one writer at a time: append and compact
};

}  // namespace mend
