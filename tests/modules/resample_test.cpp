// Tests for dsp::resample against analytic references (ideal sines, DC).
// [setup]-only code, tested single-threaded.
#include "modules/common/resample.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <numbers>
#include <stdexcept>
#include <vector>

namespace rackd::dsp {
namespace {

std::vector<float> sine(double freq_hz, double rate_hz, size_t frames, double amplitude = 0.5) {
  std::vector<float> s(frames);
  for (size_t i = 0; i < frames; ++i) {
    s[i] = static_cast<float>(amplitude *
                              std::sin(2.0 * std::numbers::pi * freq_hz * i / rate_hz));
  }
  return s;
}

// RMS error against the ideal sine, relative to the sine's RMS, in dB, over
// out[margin .. size - margin): the edges see the zero padding outside the input.
double error_db(const std::vector<float>& out, double freq_hz, double rate_hz, size_t margin) {
  const std::vector<float> ideal = sine(freq_hz, rate_hz, out.size());
  double err = 0.0;
  double ref = 0.0;
  for (size_t i = margin; i + margin < out.size(); ++i) {
    const double d = static_cast<double>(out[i]) - ideal[i];
    err += d * d;
    ref += static_cast<double>(ideal[i]) * ideal[i];
  }
  return 10.0 * std::log10(err / ref);
}

double rms(const std::vector<float>& x, size_t margin) {
  double sum = 0.0;
  size_t n = 0;
  for (size_t i = margin; i + margin < x.size(); ++i, ++n) sum += static_cast<double>(x[i]) * x[i];
  return std::sqrt(sum / n);
}

TEST(Resample, EqualRatesCopyExactly) {
  const std::vector<float> in = {0.1f, -0.0f, 1e-30f, -0.75f, 3.0f};
  EXPECT_EQ(resample(in, 48000.0, 48000.0), in);
  EXPECT_TRUE(resample({}, 44100.0, 48000.0).empty());
}

TEST(Resample, OutputLengthIsRoundedRatio) {
  EXPECT_EQ(resample(std::vector<float>(44100), 44100.0, 48000.0).size(), 48000u);
  EXPECT_EQ(resample(std::vector<float>(1000), 44100.0, 48000.0).size(), 1088u);  // 1088.4
  EXPECT_EQ(resample(std::vector<float>(1000), 48000.0, 44100.0).size(), 919u);   // 918.75
  EXPECT_EQ(resample(std::vector<float>(333), 96000.0, 8000.0).size(), 28u);      // 27.75
  EXPECT_EQ(resample(std::vector<float>(512), 44100.0, 44100.5).size(), 512u);
}

TEST(Resample, SineUpsampled44100To48000IsWithinMinus80dB) {
  const auto out = resample(sine(1000.0, 44100.0, 44100), 44100.0, 48000.0);
  ASSERT_EQ(out.size(), 48000u);
  EXPECT_LT(error_db(out, 1000.0, 48000.0, 1000), -80.0);
}

TEST(Resample, SineDownsampled48000To44100IsWithinMinus80dB) {
  const auto out = resample(sine(1000.0, 48000.0, 48000), 48000.0, 44100.0);
  EXPECT_LT(error_db(out, 1000.0, 44100.0, 1000), -80.0);
}

TEST(Resample, HighPassbandSineIsAccurate) {
  // 15 kHz is well inside the passband (cutoff 0.95 x 22050 Hz).
  const auto out = resample(sine(15000.0, 44100.0, 22050), 44100.0, 96000.0);
  EXPECT_LT(error_db(out, 15000.0, 96000.0, 1000), -80.0);
}

TEST(Resample, NonIntegerRatioIsAccurate) {
  // No small integer ratio: exercises the per-sample tap path.
  const double to_hz = 47999.37;
  const auto out = resample(sine(1000.0, 44100.0, 8820), 44100.0, to_hz);
  EXPECT_LT(error_db(out, 1000.0, to_hz, 500), -80.0);
}

TEST(Resample, DcGainIsOne) {
  const std::vector<float> dc(4000, 0.5f);
  for (const auto& [from, to] : {std::pair{44100.0, 48000.0}, std::pair{48000.0, 44100.0},
                                  std::pair{48000.0, 16000.0}, std::pair{44100.0, 47999.37}}) {
    const auto out = resample(dc, from, to);
    for (size_t i = 500; i + 500 < out.size(); ++i) {
      ASSERT_NEAR(out[i], 0.5f, 1e-6f) << from << " -> " << to << " at " << i;
    }
  }
}

TEST(Resample, DownsamplingRemovesWhatWouldAlias) {
  // 23 kHz cannot exist at 44.1 kHz; it must not fold back to 21.1 kHz.
  const auto out = resample(sine(23000.0, 48000.0, 48000), 48000.0, 44100.0);
  EXPECT_LT(rms(out, 1000), 0.5 / std::sqrt(2.0) * 1e-4);  // below -80 dB
}

TEST(Resample, RejectsNonPositiveRates) {
  const std::vector<float> in(10);
  EXPECT_THROW(resample(in, 0.0, 48000.0), std::invalid_argument);
  EXPECT_THROW(resample(in, 48000.0, -1.0), std::invalid_argument);
}

}  // namespace
}  // namespace rackd::dsp
