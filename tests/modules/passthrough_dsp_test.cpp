// Tests for passthrough_dsp: bit-exact paths and the gain ramp. Single-threaded;
// process() is called the way the module's block thread calls it.
#include "modules/passthrough/passthrough_dsp.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <numbers>
#include <vector>

#include "tests/modules/planar.hpp"

namespace rackd::passthrough {
namespace {

constexpr uint32_t kChannels = 2;

using rackd::test::Planar;

// Awkward values (subnormal-adjacent, negative zero, odd mantissas) that a
// multiply by 1.0f would still keep, but any other arithmetic might not.
Planar awkward_input(uint32_t frames) {
  Planar p(kChannels, frames);
  uint32_t bits = 0x3f800001u;
  for (uint32_t c = 0; c < kChannels; ++c) {
    for (uint32_t i = 0; i < frames; ++i) {
      bits = bits * 1664525u + 1013904223u;
      float v;
      uint32_t finite = (bits & 0x807fffffu) | (((bits >> 23) % 200 + 20) << 23);
      std::memcpy(&v, &finite, sizeof v);
      p.data[c][i] = v;
    }
  }
  p.data[0][0] = -0.0f;
  return p;
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(Passthrough, UnityGainIsBitExact) {
  Passthrough p;
  const uint32_t frames = 97;
  Planar in = awkward_input(frames);
  Planar out(kChannels, frames);
  for (int block = 0; block < 3; ++block) {
    p.process(in.in(), out.out(), kChannels, frames, 1.0f, false);
    for (uint32_t c = 0; c < kChannels; ++c) EXPECT_TRUE(bit_equal(in.data[c], out.data[c]));
  }
}

TEST(Passthrough, BypassIsBitExactWhateverTheGain) {
  Passthrough p;
  const uint32_t frames = 64;
  Planar in = awkward_input(frames);
  Planar out(kChannels, frames);
  p.process(in.in(), out.out(), kChannels, frames, 0.25f, false);
  p.process(in.in(), out.out(), kChannels, frames, 0.25f, true);
  for (uint32_t c = 0; c < kChannels; ++c) EXPECT_TRUE(bit_equal(in.data[c], out.data[c]));
}

TEST(Passthrough, LeavingBypassRampsFromUnity) {
  Passthrough p;
  const uint32_t frames = 100;
  Planar in(kChannels, frames);
  for (auto& c : in.data) std::fill(c.begin(), c.end(), 1.0f);
  Planar out(kChannels, frames);
  p.process(in.in(), out.out(), kChannels, frames, 0.0f, true);
  p.process(in.in(), out.out(), kChannels, frames, 0.0f, false);
  EXPECT_NEAR(out.data[0][0], 0.99f, 1e-6f);
  EXPECT_EQ(out.data[0][frames - 1], 0.0f);
}

TEST(Passthrough, FirstBlockStartsAtItsTargetGain) {
  Passthrough p;
  Planar in(kChannels, 64);
  for (auto& c : in.data) std::fill(c.begin(), c.end(), 1.0f);
  Planar out(kChannels, 64);
  p.process(in.in(), out.out(), kChannels, 64, 0.5f, false);
  for (const auto& c : out.data) EXPECT_EQ(c, std::vector<float>(64, 0.5f));
}

TEST(Passthrough, GainRampIsLinearAndReachesTarget) {
  Passthrough p;
  const uint32_t frames = 128;
  Planar in(kChannels, frames);
  for (auto& c : in.data) std::fill(c.begin(), c.end(), 1.0f);
  Planar out(kChannels, frames);
  const float target = 0.25f;
  p.process(in.in(), out.out(), kChannels, frames, 1.0f, false);  // settle at unity first
  p.process(in.in(), out.out(), kChannels, frames, target, false);
  const float expected_step = (1.0f - target) / frames;
  for (uint32_t c = 0; c < kChannels; ++c) {
    float prev = 1.0f;  // the gain before the block
    for (uint32_t i = 0; i < frames; ++i) {
      const float step = prev - out.data[c][i];
      EXPECT_NEAR(step, expected_step, 1e-6f) << "frame " << i;
      prev = out.data[c][i];
    }
    EXPECT_EQ(out.data[c][frames - 1], target);
  }
  // The next block holds the target steadily.
  p.process(in.in(), out.out(), kChannels, frames, target, false);
  for (uint32_t i = 0; i < frames; ++i) EXPECT_EQ(out.data[0][i], target);
}

TEST(Passthrough, RampToZeroEndsAtExactZero) {
  Passthrough p;
  const uint32_t frames = 48;
  Planar in = awkward_input(frames);
  Planar out(kChannels, frames);
  p.process(in.in(), out.out(), kChannels, frames, 0.0f, false);
  for (uint32_t c = 0; c < kChannels; ++c) EXPECT_EQ(out.data[c][frames - 1], 0.0f);
  p.process(in.in(), out.out(), kChannels, frames, 0.0f, false);
  for (uint32_t c = 0; c < kChannels; ++c) {
    for (float v : out.data[c]) EXPECT_EQ(v, 0.0f);
  }
}

TEST(Passthrough, GainChangesStayContinuousAcrossBlocks) {
  // A slow sine through a series of gain changes in blocks of uneven size: the
  // output never jumps by more than the signal's own step plus one ramp step.
  Passthrough p;
  const double rate_hz = 48000.0;
  const double freq_hz = 100.0;
  const uint32_t sizes[] = {64, 37, 128, 1, 200, 90};
  const float gains[] = {0.5f, 2.0f, 2.0f, 0.0f, 1.0f, 0.7f};
  uint64_t n = 0;
  float last = 0.0f;
  float gain_before = 1.0f;
  bool first = true;
  for (int round = 0; round < 4; ++round) {
    for (size_t b = 0; b < std::size(sizes); ++b) {
      const uint32_t frames = sizes[b];
      Planar in(1, frames);
      Planar out(1, frames);
      for (uint32_t i = 0; i < frames; ++i, ++n) {
        in.data[0][i] = static_cast<float>(0.5 * std::sin(2.0 * std::numbers::pi * freq_hz * n / rate_hz));
      }
      p.process(in.in(), out.out(), 1, frames, gains[b], false);
      const float max_gain = std::max(gain_before, gains[b]);
      const float signal_step = static_cast<float>(0.5 * 2.0 * std::numbers::pi * freq_hz / rate_hz);
      const float ramp_step = std::abs(gains[b] - gain_before) / frames * 0.5f;
      const float bound = max_gain * signal_step + ramp_step + 1e-6f;
      for (uint32_t i = 0; i < frames; ++i) {
        if (!first) {
          EXPECT_LE(std::abs(out.data[0][i] - last), bound) << "sample " << n;
        }
        last = out.data[0][i];
        first = false;
      }
      gain_before = gains[b];
    }
  }
}

}  // namespace
}  // namespace rackd::passthrough
