#include "intent_journal.h"
#include "mend/text.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace mend {

namespace {

Status write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return Error::from_errno("write", w < 0 ? errno : EIO);
    p += w;
    n -= static_cast<size_t>(w);
  }
  return {};
}

Status fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return Error::from_errno("open " + dir, errno);
  int r = ::fsync(fd);
  int e = errno;
  ::close(fd);
  return r == 0 ? Status{} : Error::from_errno("fsync " + dir, e);
}

}  // namespace

uint64_t IntentJournal::reserve_bytes() const {
  struct stat st {};
  if (::stat(reserve_path_.c_str(), &st) != 0)
    return 0;
  // Allocated, not apparent: only blocks on disk are space held back.
  return std::min<uint64_t>(static_cast<uint64_t>(st.st_size),
                            static_cast<uint64_t>(st.st_blocks) * 512);
}

Status IntentJournal::ensure_reserve() {
  if (reserve_bytes() >= kReserveBytes)
    return {};
  int fd = ::open(reserve_path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return Error::from_errno("Failed to open " + reserve_path_, errno);
  int r = ::posix_fallocate(fd, 0, static_cast<off_t>(kReserveBytes));
  if (r == EOPNOTSUPP || r == EINVAL) {
    // No fallocate here: write the blocks.
    std::string zeros(64 << 10, '\0');
    r = 0;
    for (uint64_t off = 0; off < kReserveBytes && r == 0; off += zeros.size())
      if (::pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(off)) !=
          static_cast<ssize_t>(zeros.size()))
        r = errno ? errno : EIO;
  }
  if (r == 0 && ::fsync(fd) != 0)
    r = errno;
  ::close(fd);
  if (r != 0)
    return Error::from_errno("Failed to reserve space for the intent journal in " + reserve_path_,
                             r);
  return {};
}

bool IntentJournal::release_reserve() {
  const uint64_t have = reserve_bytes();
  if (have == 0)
    return false;
  const uint64_t keep = have > (64u << 10) ? have - (64u << 10) : 0;
  if (::truncate(reserve_path_.c_str(), static_cast<off_t>(keep)) != 0)
    return false;
  SPDLOG_WARN(
      "The intent journal's filesystem is full: {} KiB of its reserve given back ({} KiB "
      "left)",
      (have - keep) >> 10, keep >> 10);
  return true;
}

Status IntentJournal::write_line(const std::string& line) {
  int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return Error::from_errno("Failed to open the intent journal " + path_, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return Error::from_errno("Failed to stat the intent journal " + path_, e);
  }
  std::string s = line;
  // A torn line left by a crash: ended here, so it cannot swallow this record.
  char last = '\n';
  if (st.st_size > 0 && ::pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n')
    s.insert(s.begin(), '\n');
  Status w = write_all(fd, s.data(), s.size());
  // The record must be on disk before the action it announces runs.
  if (w.ok() && ::fsync(fd) != 0)
    w = Error::from_errno("fsync", errno);
  if (!w.ok()) {
    // What came out short is cut off again: the next record starts on a clean line.
    if (::ftruncate(fd, st.st_size) == 0)
      (void)::fsync(fd);
  }
  ::close(fd);
  if (!w.ok())
    return Error{"Failed to write the intent journal " + path_ + ": " + w.error().message,
                 w.error().code};
  return {};
}

Status IntentJournal::append(const nlohmann::json& line) {
  const std::string s = dump_json(line) + "\n";
  std::lock_guard<std::mutex> l(mu_);
  Status st = write_line(s);
  // A full disk: give back part of the reserve and write again (a plan that started can
  // always finish its records).
  while (!st.ok() && (st.error().code == ENOSPC || st.error().code == EDQUOT) && release_reserve())
    st = write_line(s);
  return st;
}

Status IntentJournal::verified(const std::string& run) {
  return append({{"run", run}, {"phase", "verified"}});
}

Status IntentJournal::begin(const std::string& run, const std::string& incident,
                            const std::string& policy, const std::string& target) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (Status r = ensure_reserve(); !r.ok() && reserve_bytes() < kReserveMin)
      return Error{r.error().message + " (" + std::to_string(reserve_bytes() >> 10) +
                       " KiB left): no new plan starts until there is room",
                   r.error().code};
  }
  return append({{"run", run},
                 {"phase", "begin"},
                 {"incident", incident},
                 {"policy", policy},
                 {"target", target}});
}

Status IntentJournal::intent(const std::string& run, size_t step, const std::string& action,
                             const nlohmann::json& params, const nlohmann::json& undo) {
  nlohmann::json j = {
      {"run", run}, {"phase", "intent"}, {"step", step}, {"action", action}, {"params", params}};
  if (undo.is_object() && !undo.empty())
    j["undo"] = undo;
  return append(j);
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
  // The end is on disk; a compaction that fails leaves the journal longer, never shorter.
  if (auto c = compact(); !c.ok())
    SPDLOG_WARN("{}", c.error().message);
  return {};
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
    if (line.empty())
      continue;  // the newline that ended a torn line
    auto j = nlohmann::json::parse(line, nullptr, false);
    // A torn line (crash mid-write) is what an fsync'd append-only file can hold: skip it; it
    // never takes the next record with it (each write starts on a clean line).
    if (j.is_discarded() || !j.is_object() || !j.contains("run") || !j.contains("phase")) {
      SPDLOG_WARN("Ignoring torn or damaged line {} of the intent journal {}", n, path_);
      continue;
    }
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
    if (phase == "verified") {
      it->second.verified = true;
      continue;
    }
    const size_t step = j.value("step", size_t{0});
    auto& steps = it->second.steps;
    if (phase == "intent") {
      JournalStep s;
      s.index = step;
      s.action = j.value("action", "");
      s.params = j.value("params", nlohmann::json::object());
      s.undo = j.value("undo", nlohmann::json::object());
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
  const std::string data = kept.str();
  const std::string tmp = path_ + ".tmp";
  // Every write checked, the file and the directory fsync'd, and the journal replaced only by
  // a file of exactly the intended size.
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return Error::from_errno("Failed to compact the intent journal", errno);
  Status w = write_all(fd, data.data(), data.size());
  if (w.ok() && ::fsync(fd) != 0)
    w = Error::from_errno("fsync", errno);
  struct stat st {};
  if (w.ok() && (::fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) != data.size()))
    w = Error{"the compacted journal is not the size intended", EIO};
  ::close(fd);
  if (!w.ok()) {
    ::unlink(tmp.c_str());
    return Error{"Failed to compact the intent journal (kept as it is): " + w.error().message,
                 w.error().code};
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return Error::from_errno("Failed to compact the intent journal", e);
  }
  return fsync_dir(dir_);
}

}  // namespace mend
