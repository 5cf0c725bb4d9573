// Correlation: throughput through replay, memory with 10k open entities, the cost from an
// event's arrival to its incident being updated, and alert compression on the corpus.
//
//   mend_correlate_bench [CORPUS_DIR]
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "correlate/correlator.h"
#include "correlate/replay.h"

using namespace mend;
using Clock = std::chrono::steady_clock;

namespace {

// One failure on one of `groups` filesystems, repeated: fills, ENOSPC storms, unit failures.
std::vector<Event> workload(size_t n, size_t groups) {
  std::vector<Event> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const size_t g = i % groups;
    const uint64_t ts = 1000000000ull + i * 10000;  // 100k events/s of event time
    const std::string unit = "app" + std::to_string(g) + ".service";
    const std::string mount = "/srv/vol" + std::to_string(g);
    switch (i % 10) {
      case 0: {
        FsFill f;
        f.mount = mount;
        f.device = "8:" + std::to_string(g);
        f.state = "firing";
        f.reason = "usage";
        f.used_pct = 97;
        f.top_writers = {{unit, "/system.slice/" + unit, 1 << 30}};
        out.push_back({ts, f});
        break;
      }
      case 9: {
        UnitState u;
        u.unit = unit;
        u.active_state = "activating";
        u.sub_state = "auto-restart";
        u.result = "exit-code";
        out.push_back({ts, u});
        break;
      }
      default: {
        FsEnospc e;
        e.unit = unit;
        e.comm = "app";
        e.mount = mount;
        e.device = "8:" + std::to_string(g);
        e.err = 28;
        e.syscall = "write";
        out.push_back({ts, e});
      }
    }
  }
  return out;
}

size_t heap_bytes() {
  return mallinfo2().uordblks;
}

}  // namespace

int main(int argc, char** argv) {
  nlohmann::ordered_json out;

  // 1. Throughput: 1M events, 100 concurrent failures.
  {
    auto evs = workload(1000000, 100);
    Correlator c;
    auto t0 = Clock::now();
    for (auto& e : evs)
      c.push(e);
    c.flush();
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    out["throughput"] = {{"events", evs.size()},
                         {"incidents", c.incidents().size()},
                         {"seconds", s},
                         {"events_per_s", static_cast<double>(evs.size()) / s}};
  }

  // 2. Memory with 10k open entities (10k independent failures, ~3 entities each).
  {
    auto evs = workload(100000, 10000);
    malloc_trim(0);
    const size_t before = heap_bytes();
    Correlator c;
    for (auto& e : evs)
      c.push(e);
    c.flush();
    const size_t after = heap_bytes();
    size_t entities = 0;
    for (const auto* i : c.incidents())
      entities += i->entities.size();
    out["memory"] = {
        {"incidents", c.incidents().size()},
        {"entities", entities},
        {"heap_bytes", after - before},
        {"bytes_per_incident", (after - before) / std::max<size_t>(1, c.incidents().size())}};
  }

  // 3. Arrival -> incident updated (reorder buffer off: the live pipeline adds its tolerance).
  {
    CorrelatorConfig cfg;
    cfg.reorder_ns = 0;
    Correlator c(cfg);
    std::vector<double> lat;
    Clock::time_point t0;
    c.on_update = [&](const Incident&, const Event&) {
      lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    };
    for (auto& e : workload(200000, 1000)) {
      t0 = Clock::now();
      c.push(e);
    }
    std::sort(lat.begin(), lat.end());
    out["update_latency_us"] = {{"n", lat.size()},
                                {"p50", lat[lat.size() / 2]},
                                {"p99", lat[lat.size() * 99 / 100]},
                                {"max", lat.back()}};
  }

  // 4. Alert compression on the corpus: raw events -> incidents.
  if (argc > 1) {
    nlohmann::ordered_json corpus = nlohmann::ordered_json::array();
    uint64_t events = 0, incidents = 0;
    std::vector<std::string> files;
    for (const auto& e : std::filesystem::directory_iterator(argv[1]))
      if (e.path().extension() == ".jsonl")
        files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::ifstream in(f);
      auto r = replay(in, f, {});
      if (!r.ok())
        continue;
      events += r->events;
      incidents += r->incidents.size();
      corpus.push_back({{"file", std::filesystem::path(f).stem().string()},
                        {"events", r->events},
                        {"incidents", r->incidents.size()}});
    }
    out["compression"] = {{"events", events},
                          {"incidents", incidents},
                          {"ratio", static_cast<double>(events) / static_cast<double>(incidents)},
                          {"files", corpus}};
  }
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
