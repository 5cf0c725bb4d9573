#include "intent_journal.h"
#include "mend/text.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace mend {

Status IntentJournal::append(const nlohmann::json& line) {
  std::string s = dump_json(line) + "\n";
  std::lock_guard<std::mutex> l(mu_);
  int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0)
    return Error::from_errno("Failed to open the intent journal " + path_, errno);
  ssize_t n = ::write(fd, s.data(), s.size());
  int err = errno;
  // The record must be on disk before the action it announces runs.
  if (n == static_cast<ssize_t>(s.size()) && ::fsync(fd) != 0)
    err = errno, n = -1;
  ::close(fd);
  if (n != static_cast<ssize_t>(s.size()))
    return Error::from_errno("Failed to write the intent journal " + path_, err ? err : EIO);
  return {};
}

Status IntentJournal::begin(const std::string& run, const std::string& incident,
                            const std::string& policy, const std::string& target) {
  return append({{"run", run},
                 {"phase", "begin"},
                 {"incident", incident},
                 {"policy", policy},
                 {"target", target}});
}

Status IntentJournal::intent(const std::string& run, size_t step, const std::string& action,
                             const nlohmann::json& params) {
  return append(
      {{"run", run}, {"phase", "intent"}, {"step", step}, {"action", action}, {"params", params}});
}

Status IntentJournal::applied(const std::string& run, size_t step, const nlohmann::json& undo) {
  return append({{"run", run}, {"phase", "applied"}, {"step", step}, {"undo", undo}});
}

Status IntentJournal::rolled_back(const std::string& run, size_t step) {
  return append({{"run", run}, {"phase", "rolled_back"}, {"step", step}});
}

Status IntentJournal::end(const std::string& run, const std::string& outcome) {
  if (auto st = append({{"run", run}, {"phase", "end"}, {"outcome", outcome}}); !st.ok())
    return st;
  return compact();
}

Result<std::vector<UnfinishedRun>> IntentJournal::unfinished() const {
  std::ifstream f(path_);
  std::vector<UnfinishedRun> out;
  if (!f)
    return out;  // no journal: nothing was ever started
  std::map<std::string, UnfinishedRun> runs;
  std::vector<std::string> order;
  std::string line;
  size_t n = 0;
  while (std::getline(f, line)) {
    ++n;
    auto j = nlohmann::json::parse(line, nullptr, false);
    // A torn last line (crash mid-write) is what an fsync'd append-only file can hold: skip it.
    if (j.is_discarded() || !j.is_object() || !j.contains("run") || !j.contains("phase"))
      continue;
    // A line of the right shape with a field of the wrong type is damage too: skipped and
    // said, never an exception that stops mendd from starting.
    if (!j["run"].is_string() || !j["phase"].is_string() ||
        (j.contains("step") && !j["step"].is_number_unsigned()) ||
        (j.contains("params") && !j["params"].is_object()) ||
        (j.contains("undo") && !j["undo"].is_object())) {
      SPDLOG_WARN("Ignoring damaged line {} of the intent journal {}", n, path_);
      continue;
    }
    for (const char* k : {"incident", "policy", "target", "action"})
      if (j.contains(k) && !j[k].is_string()) {
        SPDLOG_WARN("Ignoring damaged line {} of the intent journal {}", n, path_);
        j.erase(k);
      }
    const std::string run = j["run"].get<std::string>();
    const std::string phase = j["phase"].get<std::string>();
    if (phase == "begin") {
      UnfinishedRun r;
      r.run_id = run;
      r.incident_id = j.value("incident", "");
      r.policy = j.value("policy", "");
      r.target = j.value("target", "");
      runs[run] = r;
      order.push_back(run);
      continue;
    }
    auto it = runs.find(run);
    if (it == runs.end())
      continue;
    if (phase == "end") {
      runs.erase(it);
      continue;
    }
    const size_t step = j.value("step", size_t{0});
    auto& steps = it->second.steps;
    if (phase == "intent") {
      JournalStep s;
      s.index = step;
      s.action = j.value("action", "");
      s.params = j.value("params", nlohmann::json::object());
      steps.push_back(s);
    }
    for (auto& s : steps) {
      if (s.index != step)
        continue;
      if (phase == "applied") {
        s.applied = true;
        s.undo = j.value("undo", nlohmann::json::object());
      } else if (phase == "rolled_back") {
        s.rolled_back = true;
      }
    }
  }
  for (const auto& id : order)
    if (runs.count(id))
      out.push_back(runs[id]);
  return out;
}

Status IntentJournal::compact() {
  // Bounded: past max_bytes, keep only the lines of runs still unfinished.
  std::lock_guard<std::mutex> l(mu_);
  std::ifstream f(path_, std::ios::ate);
  if (!f || static_cast<uint64_t>(f.tellg()) < max_bytes_)
    return {};
  auto open = unfinished();
  if (!open.ok())
    return open.error();
  std::set<std::string> keep;
  for (const auto& r : *open)
    keep.insert(r.run_id);
  f.seekg(0);
  std::stringstream kept;
  std::string line;
  while (std::getline(f, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object() && keep.count(j.value("run", "")))
      kept << line << "\n";
  }
  const std::string tmp = path_ + ".tmp";
  {
    std::ofstream o(tmp, std::ios::trunc);
    o << kept.str();
    if (!o)
      return Error::from_errno("Failed to compact the intent journal", errno);
  }
  int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0)
    return Error::from_errno("Failed to compact the intent journal", errno);
  return {};
}

}  // namespace mend
