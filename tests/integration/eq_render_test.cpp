// Integration: the eq driven by timed parameter changes (the same slots OSC
// writes) in an offline render: a band swept 20 Hz -> 20 kHz in one second,
// gains jumping, a band toggled, a band moved from one channel to the other;
// the output never steps more than a bound derived from the signal.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "tests/integration/harness.hpp"

namespace rackd::test {
namespace {

TEST(EqRender, SweepsAndTogglesFromEventsMakeNoClicks) {
  const std::string d = temp_dir();
  // A 1 kHz tone at 0.2 peak: -6 dBFS generator, gain -7.96 dB.
  std::ofstream(d + "/eq.toml") << R"([[module]]
name = "src"
type = "capture"
source = "tone"
freq_hz = 1000.0
gain_db = -7.9588

[[module]]
name = "eq"
type = "eq"
input = "src"
bands = [ { type = "peak", freq = 20.0, gain = 12.0, q = 2.0 },
          { type = "notch", freq = 1000.0, q = 4.0, on = false } ]

[output]
from = "eq"
)";
  std::ostringstream ev;
  ev << "# band 1 swept 20 Hz -> 20 kHz in 1 s, its gain jumping between +12 and -12 dB\n";
  for (int k = 0; k <= 200; ++k) {
    const double t = 0.5 + k * 0.005;
    ev << t << " /eq/band/1/freq " << 20.0 * std::pow(1000.0, k / 200.0) << "\n";
    if (k % 40 == 20) ev << t << " /eq/band/1/gain " << ((k / 40) % 2 ? -12.0 : 12.0) << "\n";
  }
  ev << "# a notch on the tone toggled on and off\n2.0 /eq/band/2/on 1\n2.5 /eq/band/2/on 0\n";
  std::ofstream(d + "/ev.txt") << ev.str();
  Result r = run({bin("rackd"), "render", d + "/eq.toml", "--duration", "3", "--out", d + "/o.wav", "--events",
                  d + "/ev.txt"});
  ASSERT_EQ(r.status, 0) << r.err;
  const Audio o = read_audio(d + "/o.wav");
  ASSERT_EQ(o.frames(), 144000u);
  // The input's own largest step is 0.2 * 2 pi 1000 / 48000; the eq can raise
  // it by at most +12 dB (x 3.98) in steady state. Twice that is the bound.
  const double input_step = 0.2 * 2 * M_PI * 1000 / 48000;
  const double bound = 2 * 3.98 * input_step;
  double worst = 0;
  for (const auto& ch : o.ch)
    for (size_t i = 1; i < ch.size(); ++i) worst = std::max(worst, std::fabs(double(ch[i]) - ch[i - 1]));
  RecordProperty("largest_step", std::to_string(worst));
  RecordProperty("bound", std::to_string(bound));
  EXPECT_LT(worst, bound) << "a click or zipper step";
  // The notch did its job while it was on: the tone is at least 20 dB down.
  double on_peak = 0, off_peak = 0;
  for (size_t i = 2 * 48000 + 4800; i < 2 * 48000 + 19200; ++i) on_peak = std::max(on_peak, double(std::fabs(o.ch[0][i])));
  for (size_t i = 2 * 48000 + 28800; i < 3 * 48000 - 100; ++i) off_peak = std::max(off_peak, double(std::fabs(o.ch[0][i])));
  EXPECT_LT(on_peak, off_peak * 0.1) << on_peak << " vs " << off_peak;
}

// A notch written inline for channel 2 only (`channel = 2`), moved to channel 1
// over OSC (`/eq/band/1/channel 1`) at 1.5 s: it fades out on the right and in
// on the left, without a click on either.
TEST(EqRender, BandOnOneChannelMovesToTheOtherWithoutClicks) {
  const std::string d = temp_dir();
  std::ofstream(d + "/eq.toml") << R"([[module]]
name = "src"
type = "capture"
source = "tone"
channels = 2
freq_hz = 1000.0
gain_db = -7.9588

[[module]]
name = "eq"
type = "eq"
input = "src"
bands = [ { type = "notch", freq = 1000.0, q = 4.0, channel = 2 } ]

[output]
from = "eq"
)";
  std::ofstream(d + "/ev.txt") << "1.5 /eq/band/1/channel 1\n";
  Result r = run({bin("rackd"), "render", d + "/eq.toml", "--duration", "3", "--out", d + "/o.wav", "--events",
                  d + "/ev.txt"});
  ASSERT_EQ(r.status, 0) << r.err;
  const Audio o = read_audio(d + "/o.wav");
  ASSERT_EQ(o.ch.size(), 2u);
  ASSERT_EQ(o.frames(), 144000u);
  auto peak = [&](int c, double from_s, double to_s) {
    double p = 0;
    for (size_t i = size_t(from_s * 48000); i < size_t(to_s * 48000); ++i) p = std::max(p, double(std::fabs(o.ch[c][i])));
    return p;
  };
  // Before the move: left untouched (0.2 peak), right notched; after: swapped.
  EXPECT_NEAR(peak(0, 0.5, 1.4), 0.2, 0.01);
  EXPECT_LT(peak(1, 0.5, 1.4), 0.02);
  EXPECT_LT(peak(0, 1.8, 2.9), 0.02);
  EXPECT_NEAR(peak(1, 1.8, 2.9), 0.2, 0.01);
  // No step beyond twice the tone's own largest step, on either channel.
  const double bound = 2 * 0.2 * 2 * M_PI * 1000 / 48000;
  for (const auto& ch : o.ch) {
    double worst = 0;
    for (size_t i = 1; i < ch.size(); ++i) worst = std::max(worst, std::fabs(double(ch[i]) - ch[i - 1]));
    EXPECT_LT(worst, bound) << "a click when the band changed channel";
  }
}

}  // namespace
}  // namespace rackd::test
