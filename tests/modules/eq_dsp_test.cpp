// Tests for eq_dsp: static responses against the analytic RBJ cookbook
// response (with both kernel builds), click-free glides and toggles,
// stability while modulating, denormal and non-finite hygiene (per-channel
// bands: eq_channels_test.cpp; shared helpers: eq_test_util.hpp). Single-threaded; process() is called the way the module's
// block thread calls it. FTZ/DAZ is deliberately NOT set here, so the denormal
// tests check the DSP's own hygiene.
#include "modules/eq/eq_dsp.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <complex>
#include <cstdint>
#include <cstring>
#include <numbers>
#include <random>
#include <vector>

#include "tests/modules/eq_test_util.hpp"

namespace rackd::eq {
namespace {

using namespace test;


// ---------------------------------------------------------------------------
// Static response.

// The realised coefficients, run through Simper's SVF equations (as documented
// in eq_dsp.hpp) with complex phasors, match the cookbook to 1e-6 dB over the
// whole parameter range.
cd svf_response(const SvfCoefs& c, double hz) {
  const cd z = std::polar(1.0, 2 * kPi * hz / kRate);
  // x = 1; states I1, I2 (value before the sample). From the equations:
  //   v3 = 1 - I2, v1 = a1 I1 + a2 v3, v2 = I2 + a2 I1 + a3 v3,
  //   z I1 = 2 v1 - I1, z I2 = 2 v2 - I2.
  // Linear in (I1, I2): solve the 2x2 system.
  const cd m11 = z + 1.0 - 2 * c.a1, m12 = 2 * c.a2;
  const cd m21 = -2 * c.a2, m22 = z - 1.0 + 2 * c.a3;
  const cd r1 = 2 * c.a2, r2 = 2 * c.a3;
  const cd det = m11 * m22 - m12 * m21;
  const cd i1 = (r1 * m22 - m12 * r2) / det, i2 = (m11 * r2 - m21 * r1) / det;
  const cd v3 = 1.0 - i2, v1 = c.a1 * i1 + c.a2 * v3, v2 = i2 + c.a2 * i1 + c.a3 * v3;
  return c.m0 + c.m1 * v1 + c.m2 * v2;
}

TEST(EqDesign, RealisedCoefficientsMatchCookbookOverWholeRange) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  const auto freqs = log_freqs(200, 20, 20000);
  for (int t = 0; t < kBandTypeCount; ++t) {
    for (int trial = 0; trial < 20; ++trial) {
      BandParams p;
      p.type = static_cast<BandType>(t);
      p.freq_hz = 10 * std::pow(2200.0, u(rng));  // 10 Hz .. 22 kHz
      p.gain_db = -30 + 60 * u(rng);
      p.q = 0.05 * std::pow(600.0, u(rng));       // 0.05 .. 30
      const SvfCoefs c = design(p, kRate);
      const Rbj ref = cookbook(p);
      for (double hz : freqs) {
        const double r = ref.magnitude(hz), m = std::abs(svf_response(c, hz));
        if (r < 1e-6) {
          EXPECT_NEAR(m, r, 1e-9);
        } else {
          ASSERT_NEAR(db(m), db(r), 1e-6) << band_type_name(p.type) << " f=" << p.freq_hz
                                          << " g=" << p.gain_db << " q=" << p.q << " @" << hz;
        }
      }
    }
  }
}

// What runs: an impulse through Equalizer::process (float I/O, two channels),
// its spectrum at 200 log-spaced frequencies, against the cookbook, within
// 0.01 dB, for every type at low, mid and high settings.
TEST(EqResponse, ImpulseResponseMatchesCookbookWithinHundredthDbForEveryType) {
  struct Setting {
    double hz, gain_db, q;
  };
  const Setting settings[] = {{60, 9, 2.0}, {1000, -12, 0.5}, {9000, 6, 4.0}};
  const auto freqs = log_freqs(200, 20, 20000);
  constexpr uint32_t kLength = 1u << 16;
  for (bool portable : {false, true}) {
  for (int t = 0; t < kBandTypeCount; ++t) {
    for (const Setting& s : settings) {
      const BandParams p{true, static_cast<BandType>(t), s.hz, s.gain_db, s.q};
      Equalizer eq;
      eq.setup(kRate, 2);
      if (portable) eq.use_portable_kernels();
      eq.set_band(5, p);  // any slot
      std::vector<float> impulse(kLength, 0.0f);
      impulse[0] = 1.0f;
      const std::vector<float> h = render(eq, impulse, 128);
      std::size_t n = h.size();
      while (n > 0 && std::fabs(h[n - 1]) < 1e-13f) --n;
      ASSERT_LT(n, h.size() - 1000) << "impulse response did not decay";
      const Rbj ref = cookbook(p);
      for (double hz : freqs) {
        // Spectrum by direct DFT at hz, rotating phasor renormalised per step.
        const cd step = std::polar(1.0, -2 * kPi * hz / kRate);
        cd rot = 1.0, sum = 0.0;
        for (std::size_t i = 0; i < n; ++i) {
          sum += static_cast<double>(h[i]) * rot;
          rot *= step;
        }
        expect_close(std::abs(sum), ref.magnitude(hz), hz,
                     (std::string(band_type_name(p.type)) + (portable ? " (portable)" : "")).c_str());
      }
    }
  }
  }
}

TEST(EqResponse, AllBandsOffAtZeroPreampIsBitExact) {
  Equalizer eq;
  eq.setup(kRate, 3);
  eq.set_band(0, {false, BandType::kPeak, 1000, 6, 1});
  std::vector<float> in(1000);
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = std::sin(0.01f * i) * 0.7f + 1e-3f;
  const auto out = render(eq, in, 100);
  EXPECT_EQ(0, std::memcmp(in.data(), out.data(), in.size() * sizeof(float)));
  EXPECT_EQ(eq.active_bands(), 0);
}

TEST(EqResponse, PreampScalesOutput) {
  Equalizer eq;
  eq.setup(kRate, 1);
  eq.set_preamp_db(-6.0);
  std::vector<float> in(256, 0.5f);
  const auto out = render(eq, in, 128);
  for (float v : out) EXPECT_NEAR(v, 0.5 * std::pow(10.0, -6.0 / 20), 1e-6);
}

// ---------------------------------------------------------------------------
// Live control: no clicks, no zipper noise.

TEST(EqGlide, FrequencySweep20HzTo20kHzInOneSecondHasNoSteps) {
  for (double sine_hz : {200.0, 1000.0}) {
    for (double gain : {12.0, -12.0}) {
      Equalizer eq;
      eq.setup(kRate, 2);
      const auto in = sine(sine_hz, 0.5, 48000);
      const std::size_t blocks = in.size() / 128;
      // OSC-driven: one new frequency per block, exponential from 20 Hz to 20 kHz.
      const auto out = render(eq, in, 128, [&](std::size_t k) {
        const double f = 20 * std::pow(1000.0, static_cast<double>(k) / (blocks - 1));
        eq.set_band(0, {true, BandType::kPeak, f, gain, 2.0});
      });
      EXPECT_LT(max_step(out), step_bound(in, 12)) << sine_hz << " Hz sine, gain " << gain;
      for (float v : out) ASSERT_TRUE(std::isfinite(v));
    }
  }
}

TEST(EqGlide, GainJumpsOfTwentyFourDbHaveNoSteps) {
  Equalizer eq;
  eq.setup(kRate, 2);
  const auto in = sine(200, 0.5, 48000);
  // Abrupt ±12 dB jumps every 100 ms, plus a sinusoidal gain move, at the sine.
  const auto out = render(eq, in, 128, [&](std::size_t k) {
    const double jump = (k / 37) % 2 ? 12.0 : -12.0;
    eq.set_band(0, {true, BandType::kPeak, 200, jump, 1.0});
    eq.set_band(1, {true, BandType::kLowShelf, 300, 6 * std::sin(k * 0.05), 0.7});
  });
  EXPECT_LT(max_step(out), step_bound(in, 18));
}

TEST(EqGlide, TogglingBandsAndTypesHasNoClicks) {
  for (BandType type : {BandType::kPeak, BandType::kLowPass, BandType::kNotch, BandType::kBandPass}) {
    Equalizer eq;
    eq.setup(kRate, 2);
    const auto in = sine(200, 0.5, 48000);
    const auto out = render(eq, in, 128, [&](std::size_t k) {
      const bool on = (k / 19) % 2 == 1;  // toggles every ~50 ms
      eq.set_band(0, {on, type, 200, 12, 1.0});
      // Band 2 changes type every ~80 ms (fade out, swap, fade in).
      eq.set_band(1, {true, (k / 30) % 2 ? BandType::kHighShelf : BandType::kPeak, 150, 6, 0.7});
    });
    EXPECT_LT(max_step(out), step_bound(in, 12 + 6)) << band_type_name(type);
  }
}

// Zipper noise is what a coefficient step adds above the signal: here a 200 Hz
// tone, so everything above 3 kHz (4th-order Butterworth high-pass) is the
// glide's own residue. A band toggled at the tone and +-12 dB gain jumps leave
// at most -46 dB and -40 dB of it relative to the output peak (per-frame
// coefficient steps leave -61 and -55 dB; 4-frame steps -49 and -44; 8-frame
// steps -41 and -36, which this test refuses).
TEST(EqGlide, SteppedCoefficientsLeaveNoZipperResidue) {
  auto residue_db = [](const std::vector<float>& out) {
    std::vector<double> x(out.begin(), out.end());
    for (double q : {0.54119610, 1.30656296}) {  // 4th-order Butterworth as two sections
      BandParams hp{true, BandType::kHighPassQ, 3000, 0, q};
      const Rbj f = cookbook(hp);
      double s1 = 0, s2 = 0;
      for (double& v : x) {
        const double y = (f.b0 * v + s1) / f.a0;
        s1 = f.b1 * v - f.a1 * y + s2;
        s2 = f.b2 * v - f.a2 * y;
        v = y;
      }
    }
    double peak = 0, residue = 0;
    for (float v : out) peak = std::max(peak, double(std::fabs(v)));
    for (std::size_t i = 4800; i < x.size(); ++i) residue = std::max(residue, std::fabs(x[i]));
    return db(residue / peak);
  };
  const auto in = sine(200, 0.5, 48000);
  {
    Equalizer eq;
    eq.setup(kRate, 1);
    const auto out = render(eq, in, 128, [&](std::size_t k) {
      eq.set_band(0, {(k / 19) % 2 == 1, BandType::kPeak, 200, 12, 1.0});
    });
    EXPECT_LT(residue_db(out), -46.0) << "toggle";
  }
  {
    Equalizer eq;
    eq.setup(kRate, 1);
    const auto out = render(eq, in, 128, [&](std::size_t k) {
      eq.set_band(0, {true, BandType::kPeak, 200, (k / 37) % 2 ? 12.0 : -12.0, 1.0});
    });
    EXPECT_LT(residue_db(out), -40.0) << "gain jumps";
  }
}

// The detector is sensitive: the same toggle with the glide disabled (changes
// applied within one 32-frame segment) does step beyond the bound.
TEST(EqGlide, ToggleWithoutGlideIsCaughtByTheStepBound) {
  Equalizer eq;
  eq.setup(kRate, 1, 0.0);
  const auto in = sine(100, 0.5, 48000);
  const auto out = render(eq, in, 128, [&](std::size_t k) {
    eq.set_band(0, {(k / 19) % 2 == 1, BandType::kHighPass, 1000, 0, 0.7071});
  });
  EXPECT_GT(max_step(out), step_bound(in, 0));
}

// ---------------------------------------------------------------------------
// Stability.

// Every per-sample loop matrix of a glide is a convex combination of two
// designs; eq_dsp.cpp argues it is stable. Check the Jury conditions on random
// pairs across the whole parameter range.
TEST(EqStability, ConvexCombinationsOfDesignsAreStable) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(0, 1);
  auto random_band = [&] {
    BandParams p;
    p.type = static_cast<BandType>(static_cast<int>(u(rng) * kBandTypeCount) % kBandTypeCount);
    p.freq_hz = 10 * std::pow(2400.0, u(rng));
    p.gain_db = -30 + 60 * u(rng);
    p.q = 0.05 * std::pow(600.0, u(rng));
    return design(p, kRate);
  };
  for (int trial = 0; trial < 20000; ++trial) {
    const SvfCoefs x = random_band(), y = random_band();
    const double l = u(rng);
    const double a1 = l * x.a1 + (1 - l) * y.a1, a2 = l * x.a2 + (1 - l) * y.a2,
                 a3 = l * x.a3 + (1 - l) * y.a3;
    const double m11 = 2 * a1 - 1, m12 = -2 * a2, m21 = 2 * a2, m22 = 1 - 2 * a3;
    const double tr = m11 + m22, det = m11 * m22 - m12 * m21;
    ASSERT_LT(std::fabs(det), 1.0);
    ASSERT_LT(std::fabs(tr), 1.0 + det);
  }
}

TEST(EqStability, RandomJumpsAcrossWholeRangeStayBounded) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(0, 1);
  Equalizer eq;
  eq.setup(kRate, 2);
  std::vector<float> noise(48000 * 20);
  for (float& v : noise) v = static_cast<float>(u(rng) - 0.5);
  const auto out = render(eq, noise, 64, [&](std::size_t k) {
    for (int b = 0; b < 4; ++b) {
      if ((k + b) % 3 != 0) continue;
      BandParams p;
      p.on = u(rng) < 0.9;
      p.type = static_cast<BandType>(static_cast<int>(u(rng) * kBandTypeCount) % kBandTypeCount);
      p.freq_hz = 10 * std::pow(2400.0, u(rng));
      p.gain_db = -30 + 60 * u(rng);
      p.q = 0.05 * std::pow(600.0, u(rng));
      eq.set_band(b, p);
    }
  });
  double peak = 0;
  for (float v : out) {
    ASSERT_TRUE(std::isfinite(v));
    peak = std::max(peak, static_cast<double>(std::fabs(v)));
  }
  // Four bands of at most +30 dB each on noise of peak 0.5, plus Q 30
  // resonances; an unstable filter would grow without bound instead.
  EXPECT_LT(peak, 1e4);
  EXPECT_EQ(eq.nonfinite_resets(), 0u);
}

TEST(EqStability, FastSweepAtHighQAndLowFrequencyDecaysAfterwards) {
  Equalizer eq;
  eq.setup(kRate, 1, 1.0);
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(-0.5, 0.5);
  std::vector<float> in(48000 * 4, 0.0f);
  for (std::size_t i = 0; i < 48000 * 2; ++i) in[i] = static_cast<float>(u(rng));
  const auto out = render(eq, in, 32, [&](std::size_t k) {
    const double f = 10 * std::pow(2.0, 11 * (0.5 + 0.5 * std::sin(k * 0.3)));
    eq.set_band(0, {true, BandType::kPeak, f, 24, 30});
    eq.set_band(1, {true, BandType::kLowPassQ, f * 1.3, 0, 20});
  });
  // After the input stops, the output decays (no self-oscillation).
  double tail = 0;
  for (std::size_t i = out.size() - 4800; i < out.size(); ++i) tail = std::max(tail, double(std::fabs(out[i])));
  EXPECT_LT(tail, 1e-3);
}

// ---------------------------------------------------------------------------
// Denormals and non-finite values.

bool subnormal(float v) { return std::fpclassify(v) == FP_SUBNORMAL; }


// 60 s of 1e-40 (a float denormal) with FTZ/DAZ off: the eq reads it as
// zero, so it computes exactly what silence gives, never holds a subnormal in
// a filter state and never writes one. (Subnormal arithmetic is what would
// make such input slow; eq_bench reports the cost itself, beside noise.)
TEST(EqDenormals, SixtySecondsOfTinyInputAreReadAsSilence) {
  constexpr uint32_t kBlock = 128, kChannels = 2;
  constexpr uint32_t kBlocks = 375 * 60;
  Equalizer tiny_eq, silent_eq;
  for (Equalizer* e : {&tiny_eq, &silent_eq}) {
    e->setup(kRate, kChannels);
    const auto bands = ten_bands();
    for (int i = 0; i < 10; ++i) e->set_band(i, bands[i]);
  }
  Planar tiny(kChannels, kBlock), silence(kChannels, kBlock), out(kChannels, kBlock), ref(kChannels, kBlock);
  for (uint32_t c = 0; c < kChannels; ++c)
    for (uint32_t i = 0; i < kBlock; ++i) tiny.data[c][i] = (i % 2 ? 1e-40f : -1e-40f);
  ASSERT_TRUE(subnormal(tiny.data[0][0]));
  bool any_subnormal = false, any_state = false, same = true;
  for (uint32_t b = 0; b < kBlocks; ++b) {
    tiny_eq.process(tiny.in(), out.out(), kBlock);
    silent_eq.process(silence.in(), ref.out(), kBlock);
    for (uint32_t c = 0; c < kChannels; ++c) {
      for (float v : out.data[c]) any_subnormal |= subnormal(v);
      same = same && out.data[c] == ref.data[c];
    }
    any_state |= tiny_eq.any_subnormal_state();
  }
  EXPECT_FALSE(any_subnormal);
  EXPECT_FALSE(any_state);
  EXPECT_TRUE(same) << "1e-40 input is not read as silence";
}

// Signal, then silence: the states decay towards the denormal range; they are
// flushed instead, the outputs never go subnormal, and the decay is not slow.
TEST(EqDenormals, DecayToSilenceProducesNoSubnormalOutput) {
  Equalizer eq;
  eq.setup(kRate, 2);
  const auto bands = ten_bands();
  for (int i = 0; i < 10; ++i) eq.set_band(i, bands[i]);
  std::vector<float> in(48000 * 60, 0.0f);
  for (std::size_t i = 0; i < 4800; ++i) in[i] = std::sin(i * 0.05f) * 0.5f;
  const auto out = render(eq, in, 128);
  for (float v : out) ASSERT_FALSE(subnormal(v));
  EXPECT_EQ(out.back(), 0.0f);
  EXPECT_FALSE(eq.any_subnormal_state());
}

TEST(EqNonFinite, NaNOrInfinityInputResetsTheStates) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    Equalizer eq;
    eq.setup(kRate, 2);
    eq.set_band(0, {true, BandType::kPeak, 100, 6, 5});
    eq.set_band(1, {true, BandType::kLowPassQ, 3000, 0, 2});
    auto in = sine(440, 0.5, 4800);
    in[1000] = bad;
    const auto out = render(eq, in, 128);
    EXPECT_GE(eq.nonfinite_resets(), 1u);
    // Finite again from the segment after the bad sample on.
    for (std::size_t i = 1024 + 32; i < out.size(); ++i) ASSERT_TRUE(std::isfinite(out[i])) << i;
    EXPECT_GT(max_step(out, 2000), 0.0);
  }
}

// ---------------------------------------------------------------------------
// Names and channels.

TEST(EqTypes, NamesAndApoCodesRoundTrip) {
  const char* codes[] = {"PK", "LSC", "HSC", "LS", "HS", "LP", "HP", "LPQ", "HPQ", "BP", "NO", "AP"};
  for (int t = 0; t < kBandTypeCount; ++t) {
    const auto type = static_cast<BandType>(t);
    EXPECT_EQ(band_type_from_name(band_type_name(type)), type);
    EXPECT_EQ(band_type_from_name(codes[t]), type);
  }
  EXPECT_EQ(band_type_name(BandType::kLowShelfFixed), "low_shelf_fixed");
  EXPECT_FALSE(band_type_from_name("peek"));
}

TEST(EqKernels, PortableAndDispatchedBuildsAgree) {
  Equalizer fast, portable;
  fast.setup(kRate, 3);
  portable.setup(kRate, 3);
  portable.use_portable_kernels();
  if (fast.isa() == Equalizer::Isa::kPortable) GTEST_SKIP() << "no AVX2+FMA on this CPU";
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  std::vector<std::vector<float>> in(3, std::vector<float>(48000));
  for (auto& c : in) {
    for (float& v : c) v = u(rng);
  }
  auto drive = [](Equalizer& eq) {
    return [&eq](std::size_t k) {
      const auto bands = ten_bands();
      for (int i = 0; i < 10; ++i) {
        BandParams p = bands[i];
        p.freq_hz *= std::exp2(0.5 * std::sin(0.05 * k + i));
        p.on = (k / 50 + i) % 4 != 0;
        p.channel = i % 4;
        eq.set_band(i, p);
      }
    };
  };
  const auto a = render_channels(fast, in, 128, drive(fast));
  const auto b = render_channels(portable, in, 128, drive(portable));
  double worst = 0;
  for (int c = 0; c < 3; ++c) {
    for (std::size_t i = 0; i < a[c].size(); ++i) worst = std::max(worst, double(std::fabs(a[c][i] - b[c][i])));
  }
  EXPECT_LT(worst, 1e-5);
}

}  // namespace
}  // namespace rackd::eq
