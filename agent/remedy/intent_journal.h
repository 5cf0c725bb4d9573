// The write-ahead intent journal (state_dir/intent.jsonl): before every apply, what is about
// to be done; after it, how to undo it; at the end, the outcome. Each line is fsync'd. When
// mendd starts, a plan with no end line is rolled back from it, never repeated blindly.
// Writes may come from a remedy step's own thread (the "applied" line, right after apply):
// they are serialized.
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
  nlohmann::json undo;
  bool applied = false;
  bool rolled_back = false;
};

struct UnfinishedRun {
  std::string run_id, incident_id, policy, target;
  std::vector<JournalStep> steps;
};

class IntentJournal {
 public:
  explicit IntentJournal(std::string dir, uint64_t max_bytes = 1 << 20)
      : path_(std::move(dir) + "/intent.jsonl"), max_bytes_(max_bytes) {}
  Status begin(const std::string& run, const std::string& incident, const std::string& policy,
               const std::string& target);
  Status intent(const std::string& run, size_t step, const std::string& action,
                const nlohmann::json& params);
  Status applied(const std::string& run, size_t step, const nlohmann::json& undo);
  Status rolled_back(const std::string& run, size_t step);
  Status end(const std::string& run, const std::string& outcome);
  // Runs begun and not ended, as the file says.
  Result<std::vector<UnfinishedRun>> unfinished() const;
  const std::string& path() const { return path_; }

 private:
  Status append(const nlohmann::json& line);
  Status compact();
  std::string path_;
  uint64_t max_bytes_;
  std::mutex mu_;  // one writer at a time: append and compact
};

}  // namespace mend
