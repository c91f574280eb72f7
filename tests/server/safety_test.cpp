// SafetyStage: non-finite scrub, hard ceiling, bit-exact when idle.
#include "server/safety.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <limits>
#include <random>
#include <vector>

namespace rackd::server {
namespace {

TEST(Safety, NonFiniteSamplesBecomeZeroAndAreCounted) {
  SafetyStage s;
  s.setup(48000);
  std::vector<float> a = {0.1f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity()};
  float* ch[] = {a.data()};
  EXPECT_EQ(s.process(ch, 1, 4), 3u);
  EXPECT_EQ(a[0], 0.1f);
  EXPECT_EQ(a[1], 0.0f);
  EXPECT_EQ(a[2], 0.0f);
  EXPECT_EQ(a[3], 0.0f);
}

TEST(Safety, SignalsBelowTheCeilingPassBitExact) {
  SafetyStage s;
  s.setup(48000);
  std::vector<float> a(512), b(512);
  for (int i = 0; i < 512; ++i) a[i] = b[i] = 0.9f * std::sin(i * 0.1f);
  float* ch[] = {a.data()};
  s.process(ch, 1, 512);
  EXPECT_EQ(a, b);
}

TEST(Safety, HugeAndFullScaleOutputNeverExceedsTheCeiling) {
  SafetyStage s;
  s.setup(48000);
  for (float level : {1.0f, 4.0f, 1e30f, -1e30f, std::numeric_limits<float>::max()}) {
    std::vector<float> l(256, level), r(256, -level * 0.5f);
    float* ch[] = {l.data(), r.data()};
    s.process(ch, 2, 256);
    for (int i = 0; i < 256; ++i) {
      EXPECT_LE(std::fabs(l[i]), SafetyStage::kCeiling);
      EXPECT_LE(std::fabs(r[i]), SafetyStage::kCeiling);
    }
  }
}

TEST(Safety, GainRecoversToBitExactAfterAPeak) {
  SafetyStage s;
  s.setup(48000, 5.0);
  std::vector<float> a(48000, 0.25f);
  a[0] = 2.0f;
  float* ch[] = {a.data()};
  s.process(ch, 1, 48000);
  EXPECT_EQ(s.gain(), 1.0f);
  EXPECT_EQ(a.back(), 0.25f);
}

TEST(Safety, IsNonFiniteUsesTheBitPattern) {
  EXPECT_TRUE(is_nonfinite(std::numeric_limits<float>::quiet_NaN()));
  EXPECT_TRUE(is_nonfinite(-std::numeric_limits<float>::infinity()));
  EXPECT_FALSE(is_nonfinite(std::numeric_limits<float>::max()));
  EXPECT_FALSE(is_nonfinite(std::numeric_limits<float>::denorm_min()));
}

}  // namespace
}  // namespace rackd::server

namespace rackd::server {
namespace {

// block_stats() against a plain double-precision loop: NaN and both
// infinities counted and left out of peak and mean, lengths that are not a
// multiple of its lane count, the empty block.
TEST(BlockStats, MatchesAPlainLoop) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> d(-2.0f, 2.0f);
  for (uint32_t n : {0u, 1u, 15u, 16u, 17u, 128u, 1024u + 5u}) {
    std::vector<float> x(n);
    for (auto& v : x) v = d(rng) + 0.25f;  // some DC
    if (n > 3) {
      x[1] = std::numeric_limits<float>::quiet_NaN();
      x[n / 2] = std::numeric_limits<float>::infinity();
      x[n - 1] = -std::numeric_limits<float>::infinity();
    }
    if (n > 9) x[9] = -7.5f;  // the peak, negative
    uint32_t bad = 0;
    float peak = 0.0f;
    double sum = 0.0;
    for (float v : x) {
      if (!std::isfinite(v)) {
        ++bad;
        continue;
      }
      peak = std::max(peak, std::fabs(v));
      sum += v;
    }
    const BlockStats st = block_stats(x.data(), n);
    EXPECT_EQ(st.nonfinite, bad) << n;
    EXPECT_EQ(st.peak, peak) << n;
    const double mean = n > bad ? sum / (n - bad) : 0.0;
    EXPECT_NEAR(st.mean, mean, 1e-6) << n;
  }
  const std::vector<float> nans(40, std::numeric_limits<float>::quiet_NaN());
  const BlockStats st = block_stats(nans.data(), 40);
  EXPECT_EQ(st.nonfinite, 40u);
  EXPECT_EQ(st.peak, 0.0f);
  EXPECT_EQ(st.mean, 0.0f);
}

}  // namespace
}  // namespace rackd::server
