// Tests for eq_dsp's per-channel bands (band/<n>/channel): a band restricted
// to one channel filters only that channel, with the cookbook response, leaves
// the other lane of its pair bit-exact, moves between channels without a
// click, and matches a mono equalizer per channel. Single-threaded.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "modules/eq/eq_dsp.hpp"
#include "tests/modules/eq_test_util.hpp"

namespace rackd::eq {
namespace {

using namespace test;

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

}  // namespace
}  // namespace rackd::eq
