// Tests for hrir::Convolver against an independent reference: direct
// time-domain convolution in double precision. Single-threaded test code; the
// convolver's tail thread runs where filters are long (process() finishes a
// late tail chunk itself when it runs faster than real time, so results are
// deterministic). Also: the partition planner's invariants, the baseline
// (non-AVX2) kernels, and tail chunks finished on the audio thread. No timing
// assertions.
#include "modules/hrir/convolver.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <numbers>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "modules/hrir/convolver_parts.hpp"

namespace rackd::hrir {
namespace {

using Filters = std::vector<std::vector<std::vector<float>>>;  // [input][ear][tap]
using Signal = std::vector<std::vector<float>>;                // [channel][frame]

Filters random_filters(uint32_t inputs, size_t taps, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Filters f(inputs, std::vector<std::vector<float>>(2, std::vector<float>(taps)));
  for (auto& in : f) {
    for (auto& ear : in) {
      for (float& v : ear) v = u(rng);
    }
  }
  return f;
}

Signal random_signal(uint32_t channels, size_t frames, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Signal s(channels, std::vector<float>(frames));
  for (auto& ch : s) {
    for (float& v : ch) v = u(rng);
  }
  return s;
}

// Direct convolution, double precision, output frame n of ear e.
double direct(const Filters& h, const Signal& x, uint32_t e, size_t n) {
  double sum = 0.0;
  for (size_t i = 0; i < h.size(); ++i) {
    const auto& f = h[i][e];
    const size_t k_end = std::min(f.size(), n + 1);
    for (size_t k = 0; k < k_end; ++k) sum += static_cast<double>(f[k]) * x[i][n - k];
  }
  return sum;
}

// Runs the convolver block by block (frames: a multiple of block); before_block(b)
// may swap filter sets.
Signal run(Convolver& conv, const Signal& x, uint32_t block,
           const std::function<void(size_t)>& before_block = {}) {
  const size_t frames = x[0].size();
  Signal y(2, std::vector<float>(frames));
  std::vector<const float*> in(x.size());
  for (size_t b = 0; b * block < frames; ++b) {
    if (before_block) before_block(b);
    for (size_t i = 0; i < x.size(); ++i) in[i] = x[i].data() + b * block;
    float* out[2] = {y[0].data() + b * block, y[1].data() + b * block};
    conv.process(in.data(), out);
  }
  return y;
}

// Relative RMS error of y against a reference over the given frames, both ears.
double relative_rms(const Signal& y, const std::vector<size_t>& frames,
                    const std::function<double(uint32_t, size_t)>& reference) {
  double err = 0.0, ref = 0.0;
  for (uint32_t e = 0; e < 2; ++e) {
    for (size_t n : frames) {
      const double r = reference(e, n);
      const double d = y[e][n] - r;
      err += d * d;
      ref += r * r;
    }
  }
  return std::sqrt(err / std::max(ref, 1e-300));
}

std::vector<size_t> frame_range(size_t begin, size_t end, size_t step = 1) {
  std::vector<size_t> v;
  for (size_t n = begin; n < end; n += step) v.push_back(n);
  return v;
}

// Frames to compare: all of them for short filters; for long ones a spread
// sample (direct convolution costs taps per frame) including the first blocks.
std::vector<size_t> sample_frames(size_t frames, size_t taps) {
  if (taps <= 1024) return frame_range(0, frames);
  std::vector<size_t> v = frame_range(0, 600);
  for (size_t n = 600; n < frames; n += 61) v.push_back(n);
  return v;
}

// Convolver is neither copyable nor movable (the tail thread points into it).
std::unique_ptr<Convolver> make(uint32_t inputs, uint32_t block, uint32_t max_frames,
                                bool tail_thread = true) {
  auto c = std::make_unique<Convolver>();
  c->setup(ConvolverConfig{inputs, block, max_frames, tail_thread});
  return c;
}

void swap_in(Convolver& conv, std::unique_ptr<FilterSet> set, uint32_t fade_blocks) {
  ASSERT_TRUE(conv.try_swap(set.get(), fade_blocks));
  set.release();  // the convolver owns it now
}

int tail_threads() {
  int n = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name == "rackd-conv-tail") ++n;
  }
  return n;
}

// Reference outputs are shared between block sizes (same filters and input).
struct Case {
  Filters h;
  Signal x;
  std::vector<size_t> frames;
  std::vector<double> ref[2];
};

const Case& accuracy_case(size_t taps) {
  static std::map<size_t, Case> cases;
  auto it = cases.find(taps);
  if (it != cases.end()) return it->second;
  Case c;
  constexpr uint32_t kInputs = 8;
  const size_t frames = taps <= 1024 ? 6144 : (taps / 256 + 32) * 256;  // multiple of 256
  c.h = random_filters(kInputs, taps, 11 + static_cast<uint32_t>(taps));
  c.x = random_signal(kInputs, frames, 7);
  c.frames = sample_frames(frames, taps);
  for (uint32_t e = 0; e < 2; ++e) {
    for (size_t n : c.frames) c.ref[e].push_back(direct(c.h, c.x, e, n));
  }
  return cases.emplace(taps, std::move(c)).first->second;
}

// Relative RMS error of y against the case's direct convolution, both ears.
double case_error(const Signal& y, const Case& c) {
  double err = 0.0, ref = 0.0;
  for (uint32_t e = 0; e < 2; ++e) {
    for (size_t k = 0; k < c.frames.size(); ++k) {
      const double d = y[e][c.frames[k]] - c.ref[e][k];
      err += d * d;
      ref += c.ref[e][k] * c.ref[e][k];
    }
  }
  return std::sqrt(err / ref);
}

class ConvolverAccuracy : public ::testing::TestWithParam<std::tuple<size_t, uint32_t>> {};

TEST_P(ConvolverAccuracy, MatchesDoubleDirectConvolutionEightInputsTwoEars) {
  const auto [taps, block] = GetParam();
  const Case& c = accuracy_case(taps);
  auto conv_owner = make(8, block, static_cast<uint32_t>(taps));
  Convolver& conv = *conv_owner;
  swap_in(conv, conv.prepare(c.h), 0);
  const Signal y = run(conv, c.x, block);
  EXPECT_LE(case_error(y, c), 1e-5) << "taps " << taps << " block " << block;
}

INSTANTIATE_TEST_SUITE_P(LengthsAndBlocks, ConvolverAccuracy,
                         ::testing::Combine(::testing::Values(size_t{128}, size_t{558},
                                                              size_t{48000}),
                                            ::testing::Values(64u, 128u, 256u)));

// Every plan: the head at the block size from tap 0, levels back to back,
// each later level starting at >= 2 of its partitions (its result is then due
// a partition after its input chunk completes), growing by 2, 4 or 8 up to
// 8192, covering every tap with no partition left wholly past the end.
TEST(Convolver, PlansCoverEveryTapWithLaterLevelsStartingAtTwiceTheirPartition) {
  for (uint32_t inputs : {1u, 2u, 8u, 16u}) {
    for (uint32_t block : {16u, 64u, 128u, 256u, 1024u, 8192u}) {
      for (uint32_t frames : {1u, 100u, 558u, 2048u, 20000u, 48000u, 100800u}) {
        const auto levels = detail::make_levels(inputs, block, frames);
        const std::string what = std::to_string(inputs) + " inputs, block " + std::to_string(block) +
                                 ", " + std::to_string(frames) + " frames";
        ASSERT_FALSE(levels.empty()) << what;
        EXPECT_EQ(levels[0].part, block) << what;
        EXPECT_EQ(levels[0].offset, 0u) << what;
        uint32_t end = 0;
        for (size_t k = 0; k < levels.size(); ++k) {
          const detail::Level& l = levels[k];
          EXPECT_EQ(l.offset, end) << what << ", level " << k;
          EXPECT_GE(l.count, 1u) << what << ", level " << k;
          if (k > 0) {
            const uint32_t ratio = l.part / levels[k - 1].part;
            EXPECT_TRUE(l.part == ratio * levels[k - 1].part && (ratio == 2 || ratio == 4 || ratio == 8))
                << what << ", level " << k;
            EXPECT_LE(l.part, 8192u) << what << ", level " << k;
            EXPECT_GE(l.offset, 2 * l.part) << what << ", level " << k;
          }
          end = l.offset + l.count * l.part;
        }
        EXPECT_GE(end, frames) << what;
        EXPECT_LT(end - levels.back().part, frames) << what;
        if (frames <= 4 * block) {
          EXPECT_EQ(levels.size(), 1u) << what;  // HRIR lengths: one level
        }
      }
    }
  }
}

// The SSE2 kernels (what a CPU without AVX2+FMA runs) against the reference
// too, and against the AVX2 ones where this CPU has them.
TEST(Convolver, BaselineKernelsMatchDirectAndTheNativeKernels) {
  for (const auto& [taps, block] : {std::pair{size_t{558}, 64u}, {size_t{48000}, 256u}}) {
    const Case& c = accuracy_case(taps);
    Signal y[2];
    for (int baseline = 0; baseline < 2; ++baseline) {
      detail::use_baseline_kernels(baseline == 1);
      auto conv = make(8, block, static_cast<uint32_t>(taps));
      swap_in(*conv, conv->prepare(c.h), 0);
      y[baseline] = run(*conv, c.x, block);
      conv.reset();  // no convolver runs when the kernels change
      detail::use_baseline_kernels(false);
    }
    double diff = 0.0, norm = 0.0;
    for (uint32_t e = 0; e < 2; ++e) {
      for (size_t n = 0; n < y[0][e].size(); ++n) {
        diff += (y[1][e][n] - static_cast<double>(y[0][e][n])) * (y[1][e][n] - y[0][e][n]);
        norm += static_cast<double>(y[0][e][n]) * y[0][e][n];
      }
    }
    EXPECT_LE(case_error(y[1], c), 1e-5) << "taps " << taps << " block " << block;
    EXPECT_LE(std::sqrt(diff / norm), 1e-6) << "taps " << taps << " block " << block;
  }
}

// With the tail thread held back the audio thread computes every tail chunk
// itself when it is due; releasing and holding it again every few blocks hands
// levels back and forth mid-job. The output stays the exact convolution.
TEST(Convolver, AudioThreadFinishesTailChunksTheTailThreadHasNot) {
  constexpr uint32_t kBlock = 64;
  constexpr size_t kTaps = 48000;
  const Case& c = accuracy_case(kTaps);
  for (int mode = 0; mode < 2; ++mode) {
    auto conv_owner = make(8, kBlock, kTaps);
    Convolver& conv = *conv_owner;
    swap_in(conv, conv.prepare(c.h), 0);
    conv.pause_tail_thread(true);
    const Signal y = run(conv, c.x, kBlock, [&](size_t blk) {
      if (mode == 1) conv.pause_tail_thread(blk % 7 < 3);  // held 3 blocks in 7
    });
    EXPECT_GT(conv.late_chunks(), 0u) << "mode " << mode;
    EXPECT_LE(case_error(y, c), 1e-5) << "mode " << mode;
  }
}

// Paths that are silent in some partitions of every level (a one-tap LFE
// path, a long leading delay, an all-zero input, a short path) are left out of
// the sums; the rest is the exact convolution.
TEST(Convolver, LongFiltersWithSilentPartitionsMatchDirect) {
  constexpr uint32_t kBlock = 128, kInputs = 4;
  constexpr size_t kTaps = 20000;
  Filters h = random_filters(kInputs, kTaps, 51);
  h[0][0].assign(1, 0.5f);                                      // LFE-like: one tap
  h[0][1].assign(1, -0.25f);
  std::fill(h[1][0].begin(), h[1][0].begin() + 9000, 0.0f);    // a delay into the last level
  std::fill(h[1][1].begin(), h[1][1].begin() + 2500, 0.0f);
  std::fill(h[2][0].begin(), h[2][0].end(), 0.0f);             // silent input, one ear
  h[2][1].clear();
  h[3][1].resize(700);                                          // short path on one ear
  const Signal x = random_signal(kInputs, 24576, 52);
  auto conv_owner = make(kInputs, kBlock, kTaps);
  Convolver& conv = *conv_owner;
  swap_in(conv, conv.prepare(h), 0);
  const Signal y = run(conv, x, kBlock);
  EXPECT_LE(relative_rms(y, sample_frames(x[0].size(), kTaps),
                         [&](uint32_t e, size_t n) { return direct(h, x, e, n); }),
            1e-5);
}

TEST(Convolver, ImpulseInGivesFilterOutFromFrameZero) {
  for (uint32_t block : {64u, 256u}) {
    for (size_t taps : {size_t{558}, size_t{20000}}) {
      auto conv_owner = make(2, block, static_cast<uint32_t>(taps));
      Convolver& conv = *conv_owner;
      const Filters h = random_filters(2, taps, 3);
      swap_in(conv, conv.prepare(h), 0);
      Signal x(2, std::vector<float>((taps / block + 2) * block));
      x[0][0] = 1.0f;
      const Signal y = run(conv, x, block);
      double peak = 0.0;
      for (float v : h[0][0]) peak = std::max(peak, std::fabs(static_cast<double>(v)));
      for (uint32_t e = 0; e < 2; ++e) {
        for (size_t n = 0; n < x[0].size(); ++n) {
          const double want = n < taps ? h[0][e][n] : 0.0;
          ASSERT_NEAR(y[e][n], want, 1e-5 * peak) << "block " << block << " taps " << taps
                                                  << " ear " << e << " frame " << n;
        }
      }
    }
  }
}

TEST(Convolver, SwapWithoutFadeEqualsDirectConvolutionOfWholeHistoryWithNewFilters) {
  for (size_t taps : {size_t{128}, size_t{558}}) {
    for (uint32_t block : {64u, 128u, 256u}) {
      auto conv_owner = make(4, block, static_cast<uint32_t>(taps));
      Convolver& conv = *conv_owner;
      const Filters a = random_filters(4, taps, 21), b = random_filters(4, taps, 22);
      const Signal x = random_signal(4, 4096, 23);
      auto set_a = conv.prepare(a);
      auto set_b = conv.prepare(b);
      const size_t swap_block = 2048 / block;
      const Signal y = run(conv, x, block, [&](size_t blk) {
        if (blk == 0) swap_in(conv, std::move(set_a), 0);
        if (blk == swap_block) swap_in(conv, std::move(set_b), 0);
      });
      EXPECT_LE(relative_rms(y, frame_range(0, 2048),
                             [&](uint32_t e, size_t n) { return direct(a, x, e, n); }),
                1e-5);
      EXPECT_LE(relative_rms(y, frame_range(2048, 4096),
                             [&](uint32_t e, size_t n) { return direct(b, x, e, n); }),
                1e-5)
          << "taps " << taps << " block " << block;
    }
  }
}

// w for output frame n of a fade that starts at frame t0 over `fade` frames.
double fade_weight(size_t n, size_t t0, size_t fade) {
  if (n < t0) return 0.0;
  return std::min(1.0, static_cast<double>(n - t0 + 1) / static_cast<double>(fade));
}

Signal sines(uint32_t channels, size_t frames) {
  Signal s(channels, std::vector<float>(frames));
  for (uint32_t c = 0; c < channels; ++c) {
    for (size_t n = 0; n < frames; ++n) {
      s[c][n] = static_cast<float>(0.5 * std::sin(2.0 * std::numbers::pi * (220.0 + 110.0 * c) *
                                                  static_cast<double>(n) / 48000.0));
    }
  }
  return s;
}

// Two different but similar filter sets: b = 0.8 a + 0.2 other.
std::pair<Filters, Filters> similar_filters(uint32_t inputs, size_t taps) {
  Filters a = random_filters(inputs, taps, 31);
  Filters b = random_filters(inputs, taps, 32);
  for (uint32_t i = 0; i < inputs; ++i) {
    for (uint32_t e = 0; e < 2; ++e) {
      for (size_t k = 0; k < taps; ++k) {
        // Decaying, like a room or head response.
        const float env = std::exp(-static_cast<float>(k) / (0.25f * static_cast<float>(taps)));
        a[i][e][k] *= env;
        b[i][e][k] = 0.8f * a[i][e][k] + 0.2f * b[i][e][k] * env;
      }
    }
  }
  return {a, b};
}

double max_step(const Signal& y, size_t begin, size_t end) {
  double m = 0.0;
  for (uint32_t e = 0; e < 2; ++e) {
    for (size_t n = std::max<size_t>(begin, 1); n < end; ++n) {
      m = std::max(m, std::fabs(static_cast<double>(y[e][n]) - y[e][n - 1]));
    }
  }
  return m;
}

TEST(Convolver, FadeIsContinuousAndFollowsLinearRampThenEqualsNewSet) {
  constexpr uint32_t kBlock = 128, kFadeBlocks = 8, kInputs = 2;
  constexpr size_t kTaps = 558, kSwap = 4096, kFade = kFadeBlocks * kBlock, kFrames = 8192;
  auto conv_owner = make(kInputs, kBlock, kTaps);
  Convolver& conv = *conv_owner;
  const auto [a, b] = similar_filters(kInputs, kTaps);
  const Signal x = sines(kInputs, kFrames);
  auto set_a = conv.prepare(a);
  auto set_b = conv.prepare(b);
  const Signal y = run(conv, x, kBlock, [&](size_t blk) {
    if (blk == 0) swap_in(conv, std::move(set_a), 0);
    if (blk == kSwap / kBlock) swap_in(conv, std::move(set_b), kFadeBlocks);
  });
  // Steady before and after; the fade's largest step stays within the largest
  // step either steady signal makes on its own.
  const double own = std::max(max_step(y, 1024, kSwap), max_step(y, kSwap + kFade, kFrames));
  EXPECT_LE(max_step(y, kSwap - kBlock, kSwap + kFade + kBlock), own * 1.001);
  EXPECT_LE(relative_rms(y, frame_range(kSwap - kBlock, kSwap + kFade),
                         [&](uint32_t e, size_t n) {
                           const double w = fade_weight(n, kSwap, kFade);
                           return (1 - w) * direct(a, x, e, n) + w * direct(b, x, e, n);
                         }),
            1e-5);
  EXPECT_LE(relative_rms(y, frame_range(kSwap + kFade, kFrames),
                         [&](uint32_t e, size_t n) { return direct(b, x, e, n); }),
            1e-5);
}

TEST(Convolver, TrySwapIsRefusedDuringFadeAndOldSetIsRetiredAfter) {
  constexpr uint32_t kBlock = 64;
  auto conv_owner = make(2, kBlock, 558);
  Convolver& conv = *conv_owner;
  auto a = conv.prepare(random_filters(2, 558, 1));
  auto b = conv.prepare(random_filters(2, 558, 2));
  auto c = conv.prepare(random_filters(2, 300, 3));
  FilterSet* a_ptr = a.get();
  FilterSet* b_ptr = b.get();
  const Signal x = random_signal(2, kBlock, 4);
  float out_l[kBlock], out_r[kBlock];
  float* out[2] = {out_l, out_r};
  const float* in[2] = {x[0].data(), x[1].data()};

  swap_in(conv, std::move(a), 0);
  conv.process(in, out);
  EXPECT_FALSE(conv.fading());
  EXPECT_EQ(conv.take_retired(), nullptr);  // nothing came before a
  swap_in(conv, std::move(b), 4);
  EXPECT_TRUE(conv.fading());
  for (int k = 0; k < 4; ++k) {
    EXPECT_FALSE(conv.try_swap(c.get(), 0)) << "block " << k;
    EXPECT_EQ(conv.take_retired(), nullptr);
    conv.process(in, out);
  }
  EXPECT_FALSE(conv.fading());
  std::unique_ptr<FilterSet> old = conv.take_retired();
  EXPECT_EQ(old.get(), a_ptr);
  EXPECT_EQ(conv.take_retired(), nullptr);
  swap_in(conv, std::move(c), 0);
  conv.process(in, out);
  EXPECT_EQ(conv.take_retired().get(), b_ptr);
}

TEST(Convolver, ShorterFiltersEmptyAndAllZeroPathsMatchDirect) {
  constexpr uint32_t kBlock = 64;
  auto conv_owner = make(6, kBlock, 558);
  Convolver& conv = *conv_owner;
  Filters h = random_filters(6, 558, 41);
  h[0][0].clear();                              // zero-length path
  h[0][1].resize(1);                            // a gain
  h[1][0].resize(100);
  h[1][1].resize(300);
  std::fill(h[2][0].begin(), h[2][0].end(), 0.0f);  // all-zero path
  h[3][1].assign(200, 0.0f);
  h[4][0].resize(65);                           // one tap into the second partition
  const Signal x = random_signal(6, 2048, 42);
  swap_in(conv, conv.prepare(h), 0);
  const Signal y = run(conv, x, kBlock);
  EXPECT_LE(relative_rms(y, frame_range(0, 2048),
                         [&](uint32_t e, size_t n) { return direct(h, x, e, n); }),
            1e-5);
}

TEST(Convolver, AllZeroSetAndNoSetGiveSilence) {
  constexpr uint32_t kBlock = 128;
  auto conv_owner = make(3, kBlock, 48000);
  Convolver& conv = *conv_owner;
  const Signal x = random_signal(3, 8 * kBlock, 5);
  Signal y = run(conv, x, kBlock);  // no set yet
  for (const auto& ch : y) EXPECT_TRUE(std::all_of(ch.begin(), ch.end(), [](float v) { return v == 0; }));
  Filters zero(3, std::vector<std::vector<float>>(2));
  swap_in(conv, conv.prepare(zero), 0);
  y = run(conv, x, kBlock);
  for (const auto& ch : y) EXPECT_TRUE(std::all_of(ch.begin(), ch.end(), [](float v) { return v == 0; }));
}

TEST(Convolver, PrepareRejectsWrongShapesWithMessages) {
  auto conv_owner = make(2, 64, 128);
  Convolver& conv = *conv_owner;
  EXPECT_THROW(conv.prepare(random_filters(3, 64, 1)), std::invalid_argument);
  EXPECT_THROW(conv.prepare(random_filters(2, 129, 1)), std::invalid_argument);
  Filters one_ear = random_filters(2, 64, 1);
  one_ear[1].pop_back();
  EXPECT_THROW(conv.prepare(one_ear), std::invalid_argument);
  EXPECT_THROW(make(2, 100, 128), std::invalid_argument);  // not a power of two
}

TEST(Convolver, LongFilterUsesTheTailThreadOnlyWhenAskedAndNeeded) {
  const int before = tail_threads();
  {
    auto longer = make(2, 64, 48000);
    EXPECT_EQ(tail_threads(), before + 1);
    auto inline_tail = make(2, 64, 48000, false);
    auto hrir = make(2, 64, 558);
    EXPECT_EQ(tail_threads(), before + 1);
  }
  EXPECT_EQ(tail_threads(), before);
}

TEST(Convolver, LongFilterWithoutTailThreadMatchesDirect) {
  constexpr uint32_t kBlock = 64;
  constexpr size_t kTaps = 48000;
  const Case& c = accuracy_case(kTaps);
  const Filters h(c.h.begin(), c.h.begin() + 2);
  const Signal x(c.x.begin(), c.x.begin() + 2);
  auto conv_owner = make(2, kBlock, kTaps, false);
  Convolver& conv = *conv_owner;
  swap_in(conv, conv.prepare(h), 0);
  const Signal y = run(conv, x, kBlock);
  EXPECT_LE(relative_rms(y, sample_frames(x[0].size(), kTaps),
                         [&](uint32_t e, size_t n) { return direct(h, x, e, n); }),
            1e-5);
}

// Long filters: the head switches at the swap, each tail level one to three of
// its partitions later (see convolver.cpp); then the output is exactly the new
// set over the whole history, and every step stays continuous.
TEST(Convolver, LongFilterSwapReachesNewSetOverWholeHistoryAndStaysContinuous) {
  constexpr uint32_t kBlock = 256, kInputs = 2;
  constexpr size_t kTaps = 48000, kSwap = 49152, kSettle = 32768, kFrames = kSwap + kSettle + 4096;
  for (uint32_t fade_blocks : {0u, 16u}) {
    auto conv_owner = make(kInputs, kBlock, kTaps);
    Convolver& conv = *conv_owner;
    const auto [a, b] = similar_filters(kInputs, kTaps);
    const Signal x = fade_blocks ? sines(kInputs, kFrames) : random_signal(kInputs, kFrames, 9);
    auto set_a = conv.prepare(a);
    auto set_b = conv.prepare(b);
    FilterSet* a_ptr = set_a.get();
    const Signal y = run(conv, x, kBlock, [&](size_t blk) {
      if (blk == 0) swap_in(conv, std::move(set_a), 0);
      if (blk == kSwap / kBlock) swap_in(conv, std::move(set_b), fade_blocks);
    });
    EXPECT_FALSE(conv.fading());
    EXPECT_EQ(conv.take_retired().get(), a_ptr);
    EXPECT_LE(relative_rms(y, frame_range(0, kSwap, 37),
                           [&](uint32_t e, size_t n) { return direct(a, x, e, n); }),
              1e-5);
    EXPECT_LE(relative_rms(y, frame_range(kSwap + kSettle, kFrames, 37),
                           [&](uint32_t e, size_t n) { return direct(b, x, e, n); }),
              1e-5)
        << "fade blocks " << fade_blocks;
    if (fade_blocks) {
      // Steady before (the filter is shorter than kSwap) and after.
      const double own = std::max(max_step(y, kSwap - 4096, kSwap),
                                  max_step(y, kSwap + kSettle, kFrames));
      EXPECT_LE(max_step(y, kSwap, kSwap + kSettle), own * 1.05);
    }
  }
}

}  // namespace
}  // namespace rackd::hrir
