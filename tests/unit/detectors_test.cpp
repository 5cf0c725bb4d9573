#include <gtest/gtest.h>

#include "sensors/detectors.h"

using namespace mend;

constexpr uint64_t kMs = 1000000;

TEST(Hysteresis, FiresOnlyAfterDurationAndClearsOnlyAfterQuiet) {
  Hysteresis h(1000 * kMs, 3000 * kMs, 0);
  EXPECT_EQ(h.update(0, true, false), Verdict::None);
  EXPECT_EQ(h.update(500 * kMs, true, false), Verdict::None);
  EXPECT_EQ(h.update(1000 * kMs, true, false), Verdict::Fire);
  EXPECT_TRUE(h.firing());
  EXPECT_EQ(h.update(1250 * kMs, true, false), Verdict::None);
  EXPECT_EQ(h.update(1500 * kMs, false, true), Verdict::None);  // clearing starts
  EXPECT_EQ(h.update(4000 * kMs, false, true), Verdict::None);
  EXPECT_EQ(h.update(4500 * kMs, false, true), Verdict::Clear);
  EXPECT_FALSE(h.firing());
}

TEST(Hysteresis, ABlipShorterThanDurationNeverFires) {
  Hysteresis h(1000 * kMs, 0, 0);
  for (uint64_t t = 0; t < 10000; t += 250) {
    bool over = (t / 250) % 3 != 0;  // over 2 ticks in 3: never 1 s in a row
    EXPECT_NE(h.update(t * kMs, over, !over), Verdict::Fire) << t;
  }
}

TEST(Hysteresis, FlappingAroundTheThresholdIsOneEvent) {
  // over/under alternate, but "under" (the clear condition) is never true: stays firing.
  Hysteresis h(0, 2000 * kMs, 0);
  int fires = 0, clears = 0;
  for (uint64_t t = 0; t < 60000; t += 250) {
    bool over = (t / 250) % 2 == 0;
    auto v = h.update(t * kMs, over, false);
    fires += v == Verdict::Fire;
    clears += v == Verdict::Clear;
  }
  EXPECT_EQ(fires, 1);
  EXPECT_EQ(clears, 0);
}

TEST(Hysteresis, ClearingIsAbortedWhenTheConditionReturns) {
  Hysteresis h(0, 1000 * kMs, 0);
  EXPECT_EQ(h.update(0, true, false), Verdict::Fire);
  EXPECT_EQ(h.update(100 * kMs, false, true), Verdict::None);
  // Back over the threshold: said again at once (a fix that did not hold).
  EXPECT_EQ(h.update(600 * kMs, true, false), Verdict::Remind);
  EXPECT_EQ(h.update(700 * kMs, true, false), Verdict::None);
  EXPECT_EQ(h.update(1200 * kMs, false, true), Verdict::None);
  EXPECT_EQ(h.update(2100 * kMs, false, true), Verdict::None);
  EXPECT_EQ(h.update(2200 * kMs, false, true), Verdict::Clear);
}

TEST(Hysteresis, ReturnThroughTheBandIsSaidOnceWhenOverAgain) {
  Hysteresis h(0, 5000 * kMs, 0);
  EXPECT_EQ(h.update(0, true, false), Verdict::Fire);
  EXPECT_EQ(h.update(250 * kMs, false, true), Verdict::None);    // fixed: clearly under
  EXPECT_EQ(h.update(500 * kMs, false, false), Verdict::None);   // in the band: not yet
  EXPECT_EQ(h.update(750 * kMs, true, false), Verdict::Remind);  // over again
  for (uint64_t t = 1000; t < 10000; t += 250)
    EXPECT_EQ(h.update(t * kMs, true, false), Verdict::None) << t;  // once, not every tick
}

TEST(Hysteresis, Reminders) {
  Hysteresis h(0, 0, 10000 * kMs);
  EXPECT_EQ(h.update(0, true, false), Verdict::Fire);
  EXPECT_EQ(h.update(5000 * kMs, true, false), Verdict::None);
  EXPECT_EQ(h.update(10000 * kMs, true, false), Verdict::Remind);
  EXPECT_EQ(h.update(15000 * kMs, true, false), Verdict::None);
}

TEST(FillRate, SlopeAndEta) {
  FillRate r(10000 * kMs);
  EXPECT_EQ(r.bytes_per_second(), 0);
  for (uint64_t i = 0; i <= 8; ++i)
    r.add(i * 250 * kMs, 1000000 + i * 250000);  // 1 MB/s
  EXPECT_NEAR(r.bytes_per_second(), 1e6, 1);
  EXPECT_NEAR(r.eta_seconds(5000000, 4096), 5, 0.01);
  EXPECT_EQ(r.eta_seconds(5000000, 2e6), -1);  // slower than min rate: not filling
}

TEST(FillRate, WindowForgetsOldSamples) {
  FillRate r(1000 * kMs);
  for (uint64_t i = 0; i < 20; ++i)
    r.add(i * 250 * kMs, i < 10 ? i * 1000000 : 9000000);  // fills, then stops
  EXPECT_NEAR(r.bytes_per_second(), 0, 1);
}
