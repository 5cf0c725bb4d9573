// Userspace hot paths: what every event and every tick costs.
#include <benchmark/benchmark.h>

#include "sensors/event_json.h"
#include "sensors/latency_hist.h"
#include "systemd/unit_resolver.h"

using namespace mend;

static Event sample_enospc() {
  FsEnospc f;
  f.pid = 4242;
  f.comm = "app";
  f.cgroup = "/system.slice/app.service";
  f.unit = "app.service";
  f.mount = "/var/log";
  f.device = "7:3";
  f.syscall = "write";
  f.err = 28;
  return Event{123456789, f};
}

static void BM_EventToJsonLine(benchmark::State& s) {
  Event e = sample_enospc();
  for (auto _ : s)
    benchmark::DoNotOptimize(to_json_line(e));
}
BENCHMARK(BM_EventToJsonLine);

static void BM_EventFromJsonLine(benchmark::State& s) {
  std::string line = to_json_line(sample_enospc());
  for (auto _ : s)
    benchmark::DoNotOptimize(event_from_json_line(line));
}
BENCHMARK(BM_EventFromJsonLine);

static void BM_UnitFromCgroup(benchmark::State& s) {
  for (auto _ : s)
    benchmark::DoNotOptimize(
        unit_from_cgroup("/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service"));
}
BENCHMARK(BM_UnitFromCgroup);

static void BM_HistQuantile(benchmark::State& s) {
  LatencyHist h{};
  for (uint32_t b = 0; b < MEND_HIST_BUCKETS; b += 3)
    h[b] = b * 7 + 1;
  for (auto _ : s)
    benchmark::DoNotOptimize(hist_quantile(h, 0.99));
}
BENCHMARK(BM_HistQuantile);

BENCHMARK_MAIN();
