// Tests for eq_dsp: static responses against the analytic RBJ cookbook
// response (with both kernel builds), click-free glides and toggles, bands
// restricted to one channel, stability while modulating, denormal and
// non-finite hygiene. Single-threaded; process() is called the way the module's
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

namespace rackd::eq {
namespace {

constexpr double kRate = 48000.0;
constexpr double kPi = std::numbers::pi;
using cd = std::complex<double>;

// ---------------------------------------------------------------------------
// The reference: RBJ Audio EQ Cookbook biquads, written out from the cookbook
// text, evaluated on the unit circle. Independent of eq_dsp (which realises the
// same responses as state-variable filters).
struct Rbj {
  double b0, b1, b2, a0, a1, a2;
  double magnitude(double hz) const {
    const cd z1 = std::polar(1.0, -2 * kPi * hz / kRate);  // z^-1
    return std::abs((b0 + b1 * z1 + b2 * z1 * z1) / (a0 + a1 * z1 + a2 * z1 * z1));
  }
};

Rbj cookbook(const BandParams& p) {
  const double w0 = 2 * kPi * p.freq_hz / kRate;
  const double cw = std::cos(w0), sw = std::sin(w0);
  const double a = std::pow(10.0, p.gain_db / 40.0);
  double q = p.q;
  switch (p.type) {
    case BandType::kLowShelfFixed:
    case BandType::kHighShelfFixed: {
      const double s = 1.0;  // shelf slope S = 1: alpha = sin(w0)/2 * sqrt((A + 1/A)(1/S - 1) + 2)
      q = 1.0 / std::sqrt((a + 1 / a) * (1 / s - 1) + 2);
      break;
    }
    case BandType::kLowPass:
    case BandType::kHighPass:
      q = 1.0 / std::sqrt(2.0);
      break;
    default:
      break;
  }
  const double alpha = sw / (2 * q);
  const double sa = 2 * std::sqrt(a) * alpha;
  switch (p.type) {
    case BandType::kPeak:
      return {1 + alpha * a, -2 * cw, 1 - alpha * a, 1 + alpha / a, -2 * cw, 1 - alpha / a};
    case BandType::kLowShelf:
    case BandType::kLowShelfFixed:
      return {a * ((a + 1) - (a - 1) * cw + sa), 2 * a * ((a - 1) - (a + 1) * cw),
              a * ((a + 1) - (a - 1) * cw - sa), (a + 1) + (a - 1) * cw + sa,
              -2 * ((a - 1) + (a + 1) * cw),     (a + 1) + (a - 1) * cw - sa};
    case BandType::kHighShelf:
    case BandType::kHighShelfFixed:
      return {a * ((a + 1) + (a - 1) * cw + sa), -2 * a * ((a - 1) + (a + 1) * cw),
              a * ((a + 1) + (a - 1) * cw - sa), (a + 1) - (a - 1) * cw + sa,
              2 * ((a - 1) - (a + 1) * cw),      (a + 1) - (a - 1) * cw - sa};
    case BandType::kLowPass:
    case BandType::kLowPassQ:
      return {(1 - cw) / 2, 1 - cw, (1 - cw) / 2, 1 + alpha, -2 * cw, 1 - alpha};
    case BandType::kHighPass:
    case BandType::kHighPassQ:
      return {(1 + cw) / 2, -(1 + cw), (1 + cw) / 2, 1 + alpha, -2 * cw, 1 - alpha};
    case BandType::kBandPass:  // constant 0 dB peak gain
      return {alpha, 0, -alpha, 1 + alpha, -2 * cw, 1 - alpha};
    case BandType::kNotch:
      return {1, -2 * cw, 1, 1 + alpha, -2 * cw, 1 - alpha};
    case BandType::kAllPass:
      return {1 - alpha, -2 * cw, 1 + alpha, 1 + alpha, -2 * cw, 1 - alpha};
  }
  return {1, 0, 0, 1, 0, 0};
}

std::vector<double> log_freqs(int n, double lo, double hi) {
  std::vector<double> f(n);
  for (int i = 0; i < n; ++i) f[i] = lo * std::pow(hi / lo, static_cast<double>(i) / (n - 1));
  return f;
}

double db(double mag) { return 20 * std::log10(mag); }

// Compares magnitudes in dB; where the reference lies below -80 dB (notch and
// band edges) a linear error of 1e-5 is accepted instead, since float output
// cannot resolve 0.01 dB there.
void expect_close(double measured, double reference, double hz, const char* what) {
  if (reference < 1e-4) {
    EXPECT_NEAR(measured, reference, 1e-5) << what << " at " << hz << " Hz";
  } else {
    EXPECT_NEAR(db(measured), db(reference), 0.01) << what << " at " << hz << " Hz";
  }
}

// Planar buffers plus the pointer arrays process() takes.
struct Planar {
  Planar(uint32_t channels, uint32_t frames) : data(channels, std::vector<float>(frames)) {
    for (auto& c : data) ptrs.push_back(c.data());
  }
  std::vector<std::vector<float>> data;
  std::vector<float*> ptrs;
  const float* const* in() const { return ptrs.data(); }
  float* const* out() { return ptrs.data(); }
};

// Runs `frames` of `in` (mono, copied to every channel) through `eq` in blocks;
// `before_block(k)` may change targets, like OSC arriving between blocks.
template <class F>
std::vector<float> render(Equalizer& eq, const std::vector<float>& in, uint32_t block,
                          F&& before_block) {
  const uint32_t ch = eq.channels();
  std::vector<float> out(in.size());
  Planar a(ch, block), b(ch, block);
  for (std::size_t off = 0, k = 0; off < in.size(); off += block, ++k) {
    const uint32_t n = static_cast<uint32_t>(std::min<std::size_t>(block, in.size() - off));
    before_block(k);
    for (uint32_t c = 0; c < ch; ++c) std::copy_n(in.begin() + off, n, a.data[c].begin());
    eq.process(a.in(), b.out(), n);
    std::copy_n(b.data[0].begin(), n, out.begin() + off);
    for (uint32_t c = 1; c < ch; ++c) {
      EXPECT_EQ(0, std::memcmp(b.data[c].data(), b.data[0].data(), n * sizeof(float)))
          << "channel " << c << " differs from channel 0";
    }
  }
  return out;
}

std::vector<float> render(Equalizer& eq, const std::vector<float>& in, uint32_t block) {
  return render(eq, in, block, [](std::size_t) {});
}

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

std::vector<float> sine(double hz, double amp, std::size_t frames) {
  std::vector<float> s(frames);
  for (std::size_t i = 0; i < frames; ++i) s[i] = static_cast<float>(amp * std::sin(2 * kPi * hz * i / kRate));
  return s;
}

double max_step(const std::vector<float>& v, std::size_t from = 1) {
  double m = 0;
  for (std::size_t i = std::max<std::size_t>(from, 1); i < v.size(); ++i) {
    m = std::max(m, std::fabs(static_cast<double>(v[i]) - v[i - 1]));
  }
  return m;
}

// A steady filter turns a sine into a sine of the same frequency, at most
// `max_gain` louder, so its sample steps are at most max_gain x the input's. A
// click or zipper step shows up as a step beyond that; we allow 2x.
double step_bound(const std::vector<float>& in, double max_gain_db) {
  return 2.0 * max_step(in) * std::pow(10.0, max_gain_db / 20);
}

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

std::vector<BandParams> ten_bands() {
  return {{true, BandType::kLowShelf, 105, 6.5, 0.7}, {true, BandType::kPeak, 190, -3.1, 0.6},
          {true, BandType::kPeak, 1200, 1.8, 1.4},    {true, BandType::kPeak, 2600, -2.4, 2.2},
          {true, BandType::kPeak, 3900, 3.3, 3.5},    {true, BandType::kPeak, 5500, -4.0, 4.1},
          {true, BandType::kPeak, 7300, 2.2, 2.0},    {true, BandType::kHighShelf, 10000, -2.5, 0.7},
          {true, BandType::kHighPass, 20, 0, 0.7071}, {true, BandType::kLowPassQ, 30, 0, 8.0}};
}

// 60 s of 1e-40 (a float denormal) costs no more per block than ordinary
// input, and no output sample is subnormal. The two inputs alternate second by
// second so that machine load affects both alike; FTZ/DAZ is off.
TEST(EqDenormals, SixtySecondsOfTinyInputCostNoMoreThanNoise) {
  constexpr uint32_t kBlock = 128, kChannels = 2;
  constexpr uint32_t kBlocksPerSecond = 375;
  Equalizer tiny_eq, noise_eq;
  for (Equalizer* e : {&tiny_eq, &noise_eq}) {
    e->setup(kRate, kChannels);
    const auto bands = ten_bands();
    for (int i = 0; i < 10; ++i) e->set_band(i, bands[i]);
  }
  Planar tiny(kChannels, kBlock), noise(kChannels, kBlock), out(kChannels, kBlock);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  for (uint32_t c = 0; c < kChannels; ++c) {
    for (uint32_t i = 0; i < kBlock; ++i) {
      tiny.data[c][i] = (i % 2 ? 1e-40f : -1e-40f);
      noise.data[c][i] = u(rng);
    }
  }
  ASSERT_TRUE(subnormal(tiny.data[0][0]));
  using clock = std::chrono::steady_clock;
  clock::duration t_tiny{}, t_noise{};
  bool any_subnormal = false;
  for (int second = 0; second < 60; ++second) {
    auto t0 = clock::now();
    for (uint32_t b = 0; b < kBlocksPerSecond; ++b) {
      tiny_eq.process(tiny.in(), out.out(), kBlock);
      for (uint32_t c = 0; c < kChannels; ++c)
        for (float v : out.data[c]) any_subnormal |= subnormal(v);
    }
    auto t1 = clock::now();
    for (uint32_t b = 0; b < kBlocksPerSecond; ++b) {
      noise_eq.process(noise.in(), out.out(), kBlock);
      for (uint32_t c = 0; c < kChannels; ++c)
        for (float v : out.data[c]) any_subnormal |= subnormal(v);
    }
    auto t2 = clock::now();
    t_tiny += t1 - t0;
    t_noise += t2 - t1;
  }
  EXPECT_FALSE(any_subnormal);
  const double ratio = std::chrono::duration<double>(t_tiny).count() /
                       std::chrono::duration<double>(t_noise).count();
  RecordProperty("tiny_over_noise", std::to_string(ratio));
  EXPECT_LT(ratio, 3.0) << "per-block cost of 1e-40 input vs noise";
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

TEST(EqChannels, OddChannelCountProcessesEveryChannelAlike) {
  Equalizer eq;
  eq.setup(kRate, 5);
  eq.set_band(0, {true, BandType::kPeak, 500, 6, 1});
  const auto in = sine(500, 0.25, 4096);
  const auto out = render(eq, in, 256);  // render() checks channels 1..4 == channel 0
  double peak = 0;
  for (std::size_t i = 2048; i < out.size(); ++i) peak = std::max(peak, double(std::fabs(out[i])));
  EXPECT_NEAR(db(peak / 0.25), 6.0, 0.05);
}

// ---------------------------------------------------------------------------
// Bands restricted to one channel.

// Runs `in` (one buffer per channel) through `eq` in blocks; returns every
// output channel. `before_block(k)` may change targets between blocks.
template <class F>
std::vector<std::vector<float>> render_channels(Equalizer& eq, const std::vector<std::vector<float>>& in,
                                                uint32_t block, F&& before_block) {
  const uint32_t ch = eq.channels();
  const std::size_t frames = in[0].size();
  std::vector<std::vector<float>> out(ch, std::vector<float>(frames));
  Planar a(ch, block), b(ch, block);
  for (std::size_t off = 0, k = 0; off < frames; off += block, ++k) {
    const uint32_t n = static_cast<uint32_t>(std::min<std::size_t>(block, frames - off));
    before_block(k);
    for (uint32_t c = 0; c < ch; ++c) std::copy_n(in[c].begin() + off, n, a.data[c].begin());
    eq.process(a.in(), b.out(), n);
    for (uint32_t c = 0; c < ch; ++c) std::copy_n(b.data[c].begin(), n, out[c].begin() + off);
  }
  return out;
}

std::vector<std::vector<float>> render_channels(Equalizer& eq, const std::vector<std::vector<float>>& in,
                                                uint32_t block) {
  return render_channels(eq, in, block, [](std::size_t) {});
}

// Magnitude of h at hz by direct DFT.
double magnitude_at(const std::vector<float>& h, double hz) {
  const cd step = std::polar(1.0, -2 * kPi * hz / kRate);
  cd rot = 1.0, sum = 0.0;
  for (float v : h) {
    sum += static_cast<double>(v) * rot;
    rot *= step;
  }
  return std::abs(sum);
}

// Six channels (three pairs, so the pairs' band lists differ): a linked band,
// and bands on channels 2, 3 and 6. Every channel's impulse response matches
// the cookbook cascade of exactly the bands that apply to it, to 0.01 dB;
// a channel no band applies to passes the impulse bit for bit.
TEST(EqChannels, BandsOnOneChannelFilterOnlyThatChannel) {
  const BandParams linked{true, BandType::kHighShelf, 6000, -4, 0.7, 0};
  const BandParams on2{true, BandType::kPeak, 1000, 9, 2.0, 2};
  const BandParams on3{true, BandType::kLowShelf, 150, 6, 0.7, 3};
  const BandParams on6{true, BandType::kNotch, 3000, 0, 4.0, 6};
  const auto freqs = log_freqs(120, 20, 20000);
  for (bool portable : {false, true}) {
    for (bool with_linked : {true, false}) {
      Equalizer eq;
      eq.setup(kRate, 6);
      if (portable) eq.use_portable_kernels();
      eq.set_band(0, on2);
      if (with_linked) eq.set_band(1, linked);
      eq.set_band(2, on3);
      eq.set_band(7, on6);
      std::vector<std::vector<float>> in(6, std::vector<float>(1u << 15, 0.0f));
      for (auto& c : in) c[0] = 1.0f;
      const auto out = render_channels(eq, in, 128);
      EXPECT_EQ(eq.active_bands(), with_linked ? 4 : 3);
      for (int c = 1; c <= 6; ++c) {
        std::vector<const BandParams*> applied;
        if (with_linked) applied.push_back(&linked);
        for (const BandParams* b : {&on2, &on3, &on6}) {
          if (b->channel == c) applied.push_back(b);
        }
        const auto& h = out[c - 1];
        if (applied.empty()) {
          EXPECT_EQ(0, std::memcmp(h.data(), in[c - 1].data(), h.size() * sizeof(float)))
              << "channel " << c << " has no band but changed";
          continue;
        }
        for (double hz : freqs) {
          double reference = 1;
          for (const BandParams* b : applied) reference *= cookbook(*b).magnitude(hz);
          expect_close(magnitude_at(h, hz), reference, hz,
                       ("channel " + std::to_string(c) + (portable ? " (portable)" : "")).c_str());
        }
      }
    }
  }
}

// Stereo with a band on the right only: the left channel is the input bit for
// bit while the right one is filtered, also while the band glides.
TEST(EqChannels, OtherChannelOfThePairStaysBitExactWhileTheBandMoves) {
  Equalizer eq;
  eq.setup(kRate, 2);
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  std::vector<std::vector<float>> in(2, std::vector<float>(48000));
  for (auto& c : in) {
    for (float& v : c) v = u(rng);
  }
  const auto out = render_channels(eq, in, 128, [&](std::size_t k) {
    eq.set_band(0, {true, BandType::kPeak, 200 * std::pow(2.0, (k % 50) / 10.0), 12, 3, 2});
    eq.set_band(1, {(k / 40) % 2 == 0, BandType::kLowPassQ, 2000, 0, 1, 2});
  });
  EXPECT_EQ(0, std::memcmp(out[0].data(), in[0].data(), in[0].size() * sizeof(float)));
  EXPECT_NE(0, std::memcmp(out[1].data(), in[1].data(), in[1].size() * sizeof(float)));
}

// Mono and stereo instances: a band on channel 3 (or any channel beyond the
// instance) is inactive; the output is the input bit for bit.
TEST(EqChannels, BandOnAChannelTheInstanceLacksIsInactive) {
  for (uint32_t channels : {1u, 2u}) {
    Equalizer eq;
    eq.setup(kRate, channels);
    eq.set_band(0, {true, BandType::kPeak, 1000, 12, 1, 3});
    eq.set_band(1, {true, BandType::kPeak, 1000, 12, 1, 32});
    eq.set_band(2, {true, BandType::kPeak, 1000, 12, 1, 40});  // out of range: never sounds
    eq.set_band(3, {true, BandType::kPeak, 1000, 12, 1, -1});
    std::vector<std::vector<float>> in(channels, sine(1000, 0.5, 4096));
    const auto out = render_channels(eq, in, 100);
    for (uint32_t c = 0; c < channels; ++c) {
      EXPECT_EQ(0, std::memcmp(out[c].data(), in[c].data(), in[c].size() * sizeof(float))) << c;
    }
    EXPECT_EQ(eq.active_bands(), 0);
  }
}

// Moving a sounding band from channel to channel fades it out on the old one
// and in on the new one: no sample step beyond the bound on either channel. The
// same moves without the glide do step beyond it (the detector is sensitive).
TEST(EqChannels, ChangingTheChannelOfARunningBandHasNoClicks) {
  for (double smoothing_ms : {Equalizer::kDefaultSmoothingMs, 0.0}) {
    Equalizer eq;
    eq.setup(kRate, 3, smoothing_ms);
    const auto tone = sine(200, 0.5, 48000);
    const std::vector<std::vector<float>> in(3, tone);
    const int cycle[] = {1, 2, 0, 3, 1, 9, 2};  // 9: not on this instance, fades out
    const auto out = render_channels(eq, in, 128, [&](std::size_t k) {
      eq.set_band(4, {true, BandType::kPeak, 200, 12, 1.0, cycle[(k / 23) % 7]});
    });
    double worst = 0;
    for (const auto& c : out) worst = std::max(worst, max_step(c));
    if (smoothing_ms > 0) {
      EXPECT_LT(worst, step_bound(tone, 12)) << "a click when the channel changed";
    } else {
      EXPECT_GT(worst, step_bound(tone, 12)) << "the step detector missed an unsmoothed change";
    }
  }
}

// After a channel change has settled, the band filters only the new channel.
TEST(EqChannels, ChannelChangeSettlesOnTheNewChannel) {
  Equalizer eq;
  eq.setup(kRate, 2);
  eq.set_band(0, {true, BandType::kPeak, 500, 12, 1, 1});
  const std::vector<std::vector<float>> in(2, sine(500, 0.25, 48000));
  const auto out = render_channels(eq, in, 128, [&](std::size_t k) {
    if (k == 100) eq.set_band(0, {true, BandType::kPeak, 500, 12, 1, 2});
  });
  auto peak = [](const std::vector<float>& v, std::size_t from, std::size_t to) {
    double p = 0;
    for (std::size_t i = from; i < to; ++i) p = std::max(p, double(std::fabs(v[i])));
    return p;
  };
  EXPECT_NEAR(db(peak(out[0], 8000, 12000) / 0.25), 12.0, 0.1);  // before: left boosted
  EXPECT_NEAR(db(peak(out[1], 8000, 12000) / 0.25), 0.0, 0.01);
  EXPECT_NEAR(db(peak(out[0], 30000, 48000) / 0.25), 0.0, 0.01);  // after: right boosted
  EXPECT_NEAR(db(peak(out[1], 30000, 48000) / 0.25), 12.0, 0.1);
  EXPECT_FALSE(eq.moving());
}

// Five channels (pairs with different band lists, an odd last pair), ten
// bands on fixed channels, toggled and swept at random: each channel comes out
// as a mono equalizer with just the bands that apply to it would make it.
TEST(EqChannels, EachChannelMatchesAMonoEqualizerWithItsOwnBands) {
  constexpr uint32_t kChannels = 5;
  const int channel_of[10] = {0, 1, 2, 3, 4, 5, 0, 5, 3, 1};
  std::mt19937 rng(13);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<std::vector<float>> in(kChannels, std::vector<float>(24000));
  for (auto& c : in) {
    for (float& v : c) v = static_cast<float>(u(rng) - 0.5);
  }
  // One random schedule of targets, replayed into every equalizer.
  const auto base = ten_bands();
  std::vector<std::vector<BandParams>> schedule;
  for (std::size_t k = 0; k * 128 < in[0].size(); ++k) {
    std::vector<BandParams> row = base;
    for (int i = 0; i < 10; ++i) {
      row[i].channel = channel_of[i];
      row[i].on = u(rng) < 0.8;
      row[i].freq_hz *= std::exp2(u(rng) - 0.5);
    }
    schedule.push_back(row);
  }
  Equalizer multi;
  multi.setup(kRate, kChannels);
  const auto out = render_channels(multi, in, 128, [&](std::size_t k) {
    for (int i = 0; i < 10; ++i) multi.set_band(i, schedule[k][i]);
  });
  for (uint32_t c = 1; c <= kChannels; ++c) {
    Equalizer mono;
    mono.setup(kRate, 1);
    const auto ref = render_channels(mono, {in[c - 1]}, 128, [&](std::size_t k) {
      for (int i = 0; i < 10; ++i) {
        BandParams p = schedule[k][i];
        const bool applies = p.channel == 0 || p.channel == static_cast<int>(c);
        p.channel = 0;
        p.on = p.on && applies;
        mono.set_band(i, p);
      }
    });
    double worst = 0;
    for (std::size_t i = 0; i < ref[0].size(); ++i) {
      worst = std::max(worst, double(std::fabs(out[c - 1][i] - ref[0][i])));
    }
    EXPECT_LT(worst, 1e-7) << "channel " << c;
  }
}

// ---------------------------------------------------------------------------
// Kernel builds.

// The AVX2+FMA build and the portable one compute the same filters (they
// differ only in rounding), including while bands glide and toggle.
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
