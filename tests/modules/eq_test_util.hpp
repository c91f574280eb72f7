// Shared by the eq DSP tests (eq_dsp_test.cpp, eq_channels_test.cpp): the
// independent RBJ cookbook reference, planar buffers, block-wise rendering and
// the click bound derived from the signal. Test code only, single-threaded.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <cstring>
#include <numbers>
#include <vector>

#include "modules/eq/eq_dsp.hpp"
#include "tests/modules/planar.hpp"

namespace rackd::eq::test {

inline constexpr double kRate = 48000.0;
inline constexpr double kPi = std::numbers::pi;
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

inline Rbj cookbook(const BandParams& p) {
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

inline std::vector<double> log_freqs(int n, double lo, double hi) {
  std::vector<double> f(n);
  for (int i = 0; i < n; ++i) f[i] = lo * std::pow(hi / lo, static_cast<double>(i) / (n - 1));
  return f;
}

inline double db(double mag) { return 20 * std::log10(mag); }

// Compares magnitudes in dB; where the reference lies below -80 dB (notch and
// band edges) a linear error of 1e-5 is accepted instead, since float output
// cannot resolve 0.01 dB there.
inline void expect_close(double measured, double reference, double hz, const char* what) {
  if (reference < 1e-4) {
    EXPECT_NEAR(measured, reference, 1e-5) << what << " at " << hz << " Hz";
  } else {
    EXPECT_NEAR(db(measured), db(reference), 0.01) << what << " at " << hz << " Hz";
  }
}

using rackd::test::Planar;

// Runs `frames` of `in` (mono, copied to every channel) through `eq` in blocks;
// `before_block(k)` may change targets, like OSC arriving between blocks.
template <class F>
inline std::vector<float> render(Equalizer& eq, const std::vector<float>& in, uint32_t block,
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

inline std::vector<float> render(Equalizer& eq, const std::vector<float>& in, uint32_t block) {
  return render(eq, in, block, [](std::size_t) {});
}

inline std::vector<float> sine(double hz, double amp, std::size_t frames) {
  std::vector<float> s(frames);
  for (std::size_t i = 0; i < frames; ++i) s[i] = static_cast<float>(amp * std::sin(2 * kPi * hz * i / kRate));
  return s;
}

inline double max_step(const std::vector<float>& v, std::size_t from = 1) {
  double m = 0;
  for (std::size_t i = std::max<std::size_t>(from, 1); i < v.size(); ++i) {
    m = std::max(m, std::fabs(static_cast<double>(v[i]) - v[i - 1]));
  }
  return m;
}

// A steady filter turns a sine into a sine of the same frequency, at most
// `max_gain` louder, so its sample steps are at most max_gain x the input's. A
// click or zipper step shows up as a step beyond that; we allow 2x.
inline double step_bound(const std::vector<float>& in, double max_gain_db) {
  return 2.0 * max_step(in) * std::pow(10.0, max_gain_db / 20);
}

inline std::vector<BandParams> ten_bands() {
  return {{true, BandType::kLowShelf, 105, 6.5, 0.7}, {true, BandType::kPeak, 190, -3.1, 0.6},
          {true, BandType::kPeak, 1200, 1.8, 1.4},    {true, BandType::kPeak, 2600, -2.4, 2.2},
          {true, BandType::kPeak, 3900, 3.3, 3.5},    {true, BandType::kPeak, 5500, -4.0, 4.1},
          {true, BandType::kPeak, 7300, 2.2, 2.0},    {true, BandType::kHighShelf, 10000, -2.5, 0.7},
          {true, BandType::kHighPass, 20, 0, 0.7071}, {true, BandType::kLowPassQ, 30, 0, 8.0}};
}

// Runs `in` (one buffer per channel) through `eq` in blocks; returns every
// output channel. `before_block(k)` may change targets between blocks.
template <class F>
inline std::vector<std::vector<float>> render_channels(Equalizer& eq, const std::vector<std::vector<float>>& in,
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

inline std::vector<std::vector<float>> render_channels(Equalizer& eq, const std::vector<std::vector<float>>& in,
                                                uint32_t block) {
  return render_channels(eq, in, block, [](std::size_t) {});
}

// Magnitude of h at hz by direct DFT.
inline double magnitude_at(const std::vector<float>& h, double hz) {
  const cd step = std::polar(1.0, -2 * kPi * hz / kRate);
  cd rot = 1.0, sum = 0.0;
  for (float v : h) {
    sum += static_cast<double>(v) * rot;
    rot *= step;
  }
  return std::abs(sum);
}

}  // namespace rackd::eq::test
