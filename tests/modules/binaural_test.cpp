// Tests for the hrir module's DSP (modules/hrir/binaural.hpp): impulses come
// out as the HRIR pair of their speaker at frame 0, a 90 degree head turn on a
// steady sine makes no click, bypass is the plain downmix, and process() never
// allocates (a malloc interposer in this binary counts the test thread's
// allocations while a flag is set). The test thread plays the audio thread;
// the builder thread runs as in the module.
#include "modules/hrir/binaural.hpp"

#include <gtest/gtest.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <cmath>
#include <numbers>
#include <random>
#include <thread>

#include "modules/hrir/hrir_spec.hpp"

// ---- allocation counter: counts calls made on a thread while its flag is set.
namespace {
thread_local bool t_counting = false;
thread_local uint64_t t_allocs = 0;
}  // namespace

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);

void* malloc(size_t n) {
  if (t_counting) ++t_allocs;
  return __libc_malloc(n);
}
void* calloc(size_t a, size_t b) {
  if (t_counting) ++t_allocs;
  return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
  if (t_counting) ++t_allocs;
  return __libc_realloc(p, n);
}
void free(void* p) {
  if (t_counting && p) ++t_allocs;
  __libc_free(p);
}
int posix_memalign(void** out, size_t align, size_t n) {
  if (t_counting) ++t_allocs;
  void* p = __libc_memalign(align, n);
  if (!p) return 12;  // ENOMEM
  *out = p;
  return 0;
}
void* aligned_alloc(size_t align, size_t n) {
  if (t_counting) ++t_allocs;
  return __libc_memalign(align, n);
}
void* memalign(size_t align, size_t n) {
  if (t_counting) ++t_allocs;
  return __libc_memalign(align, n);
}
}

namespace rackd::hrir {
namespace {

constexpr const char* kDefaultSofa = "/usr/share/libmysofa/default.sofa";
constexpr uint32_t kRate = 48000;
constexpr uint32_t kBlock = 128;

std::vector<SpeakerConfig> speakers_of(const std::string& name) {
  std::vector<SpeakerConfig> out;
  for (const Speaker& s : layout(name)) out.push_back({s, 0, 0});
  return out;
}

// Runs `b` over planar `in` (frames a multiple of kBlock) and returns the output.
std::vector<std::vector<float>> run(Binaural& b, const std::vector<std::vector<float>>& in,
                                    const std::function<void(size_t block)>& before = {}) {
  const size_t frames = in[0].size();
  std::vector<std::vector<float>> out(2, std::vector<float>(frames));
  std::vector<const float*> ip(in.size());
  for (size_t k = 0; k * kBlock < frames; ++k) {
    if (before) before(k);
    for (size_t c = 0; c < in.size(); ++c) ip[c] = in[c].data() + k * kBlock;
    float* op[2] = {out[0].data() + k * kBlock, out[1].data() + k * kBlock};
    b.process(ip.data(), op);
  }
  return out;
}

float max_step(const std::vector<float>& x, size_t from, size_t to) {
  float m = 0;
  for (size_t n = std::max<size_t>(from, 1); n < to; ++n) m = std::max(m, std::fabs(x[n] - x[n - 1]));
  return m;
}

TEST(Binaural, DeclaredChannelCountsMatchTheLayouts) {
  const rackd::ModuleSpec t = rackd::hrir::module_spec();
  ASSERT_EQ(t.channels.in.key, "layout");
  ASSERT_EQ(t.channels.in.map.size(), 4u);
  for (const auto& [name, count] : t.channels.in.map) EXPECT_EQ(count, layout(name).size()) << name;
  EXPECT_EQ(t.channels.in.map_default, "7.1");
  EXPECT_EQ(t.channels.out.value, 2u);
  for (uint32_t n = 1; n <= rackd::hrir::kMaxLayoutChannels; ++n)
    EXPECT_GE(t.index("channel/" + std::to_string(n) + "/gain_db"), 0) << n;
  EXPECT_EQ(layout("7.1.4").size(), rackd::hrir::kMaxLayoutChannels);
}

// One impulse per channel, far enough apart that their responses do not
// overlap; every response is its speaker's HRIR pair (gain and delay overrides
// included) from the impulse's own frame, and LFE is the impulse to both ears.
TEST(Binaural, ImpulsePerSpeakerIsItsFilterPairAtFrameZero) {
  auto speakers = speakers_of("7.1");
  speakers[6].speaker.dir = {100, 10};  // SL moved and up
  speakers[6].gain_db = -6;
  speakers[6].delay_ms = 1;             // 48 frames
  speakers[3].gain_db = -3;             // LFE
  const HrtfSet reference = HrtfSet::load_sofa(kDefaultSofa, kRate);
  const uint32_t taps = reference.filter_frames();
  const size_t spacing = 2048;
  ASSERT_LT(taps + 48, spacing);

  Binaural b;
  b.setup(speakers, HrtfSet::load_sofa(kDefaultSofa, kRate), {kRate, kBlock, 20, true});
  const size_t frames = spacing * 9;
  std::vector<std::vector<float>> in(8, std::vector<float>(frames, 0.0f));
  const float amp = 0.5f;
  for (size_t c = 0; c < 8; ++c) in[c][c * spacing + (c == 2 ? 77 : 0)] = amp;  // FC off the block grid
  const auto out = run(b, in);

  for (size_t c = 0; c < 8; ++c) {
    SCOPED_TRACE(speakers[c].speaker.name);
    const size_t at = c * spacing + (c == 2 ? 77 : 0);
    const float g = amp * static_cast<float>(std::pow(10.0, speakers[c].gain_db / 20.0));
    const size_t delay = c == 6 ? 48 : 0;
    std::vector<float> want[2];
    if (speakers[c].speaker.lfe) {
      want[0] = want[1] = {1.0f};
    } else {
      const HrirPair p = reference.filter_for(speakers[c].speaker.dir);
      want[0] = p.left;
      want[1] = p.right;
    }
    for (int e = 0; e < 2; ++e) {
      float peak = 0, err = 0;
      for (size_t n = c * spacing; n < (c + 1) * spacing; ++n) {
        const size_t rel = n - at;  // wraps for n < at: outside the filter
        const float w = n >= at + delay && rel - delay < want[e].size() ? g * want[e][rel - delay] : 0.0f;
        peak = std::max(peak, std::fabs(w));
        err = std::max(err, std::fabs(out[e][n] - w));
      }
      EXPECT_GT(peak, 0.01f) << "ear " << e;
      EXPECT_LT(err, 1e-5f * std::max(peak, 1.0f)) << "ear " << e << " peak " << peak;
    }
  }
}

struct TurnResult {
  float steady_step = 0, transition_step = 0;
  uint64_t swaps = 0;
  bool settled = false;
};

// A 997 Hz sine on every speaker but LFE; the head turns 90 degrees left at
// 0.5 s. Steady: the largest sample-to-sample step before the turn and after
// the new filters are fully in; transition: the largest step in between.
TurnResult turn_head(double fade_ms) {
  Binaural b;
  b.setup(speakers_of("7.1"), HrtfSet::load_sofa(kDefaultSofa, kRate), {kRate, kBlock, fade_ms, true});
  const size_t blocks = kRate * 2 / kBlock, turn_block = kRate / 2 / kBlock;
  std::vector<std::vector<float>> in(8, std::vector<float>(blocks * kBlock));
  for (size_t c = 0; c < 8; ++c) {
    if (c == 3) continue;
    for (size_t n = 0; n < in[c].size(); ++n)
      in[c][n] = 0.2f * static_cast<float>(std::sin(2 * std::numbers::pi * 997.0 * n / kRate + c));
  }
  size_t swapped_block = 0;
  const auto out = run(b, in, [&](size_t k) {
    if (k == turn_block) {
      b.set_orientation(90, 0, 0);
      // Wait for the builder, so the swap happens at the next block even on a
      // loaded machine (in the module the audio simply goes on meanwhile).
      for (int i = 0; i < 5000 && b.build_pending(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (!swapped_block && b.swaps() == 1) swapped_block = k;
  });
  TurnResult r;
  r.swaps = b.swaps();
  r.settled = b.settled();
  const size_t transient = 2048;  // longer than the filters
  const size_t turn = turn_block * kBlock;
  const size_t after = (swapped_block + b.fade_blocks() + 1) * kBlock + transient;
  for (int e = 0; e < 2; ++e) {
    r.steady_step = std::max({r.steady_step, max_step(out[e], transient, turn), max_step(out[e], after, out[e].size())});
    r.transition_step = std::max(r.transition_step, max_step(out[e], turn, after));
  }
  return r;
}

TEST(Binaural, NinetyDegreeTurnOnASteadySineMakesNoClick) {
  const TurnResult r = turn_head(20);
  ASSERT_EQ(r.swaps, 1u);
  EXPECT_TRUE(r.settled);
  EXPECT_GT(r.steady_step, 0.01f);
  // A linear crossfade of two sines of the same frequency: its slope is a blend
  // of theirs plus (difference / fade length), a fraction of a percent here.
  EXPECT_LE(r.transition_step, r.steady_step * 1.01f)
      << "steady " << r.steady_step << " transition " << r.transition_step;
  RecordProperty("transition_to_steady_step", std::to_string(r.transition_step / r.steady_step));
  std::printf("  largest step: steady %.5f, during the turn %.5f (ratio %.4f)\n", r.steady_step, r.transition_step,
              r.transition_step / r.steady_step);
}

// The same turn without a crossfade does click: the measure above can see one.
TEST(Binaural, TheSameTurnWithoutCrossfadeClicks) {
  const TurnResult r = turn_head(0);
  ASSERT_EQ(r.swaps, 1u);
  EXPECT_GT(r.transition_step, r.steady_step * 1.2f)
      << "steady " << r.steady_step << " transition " << r.transition_step;
  std::printf("  without crossfade: steady %.5f, at the swap %.5f\n", r.steady_step, r.transition_step);
}

TEST(Binaural, StereoBypassIsThePlainInputAndFadesBackWithinABlock) {
  Binaural b;
  b.setup(speakers_of("2.0"), HrtfSet::load_sofa(kDefaultSofa, kRate), {kRate, kBlock, 20, true});
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> d(-0.5f, 0.5f);
  std::vector<std::vector<float>> in(2, std::vector<float>(kBlock * 40));
  for (auto& c : in)
    for (auto& x : c) x = d(rng);
  const auto out = run(b, in, [&](size_t k) {
    if (k == 10) b.set_bypass(true);
    if (k == 30) b.set_bypass(false);
  });
  for (int e = 0; e < 2; ++e)
    for (size_t n = 11 * kBlock; n < 30 * kBlock; ++n) ASSERT_NEAR(out[e][n], in[e][n], 1e-7f) << n;
  EXPECT_EQ(b.downmix(0, 0), 1.0f);
  EXPECT_EQ(b.downmix(1, 1), 1.0f);
}

TEST(Binaural, DownmixIsFrontsCentreAndSurroundsAtMinus3DbWithoutLfe) {
  Binaural b;
  b.setup(speakers_of("7.1.4"), HrtfSet::load_sofa(kDefaultSofa, kRate), {kRate, kBlock, 20, true});
  const float h = 0.70710678f;
  const float want[12][2] = {{1, 0}, {0, 1}, {h, h}, {0, 0}, {h, 0}, {0, h},
                             {h, 0}, {0, h}, {h, 0}, {0, h}, {h, 0}, {0, h}};
  for (uint32_t i = 0; i < 12; ++i)
    for (uint32_t e = 0; e < 2; ++e) EXPECT_EQ(b.downmix(i, e), want[i][e]) << i << " " << e;
}

TEST(Binaural, ChannelAndMasterGainsScaleTheOutput) {
  Binaural ref, b;
  ref.setup(speakers_of("5.1"), HrtfSet::load_sofa(kDefaultSofa, kRate), {kRate, kBlock, 20, true});
  b.setup(speakers_of("5.1"), HrtfSet::load_sofa(kDefaultSofa, kRate), {kRate, kBlock, 20, true});
  std::vector<std::vector<float>> in(6, std::vector<float>(kBlock * 20, 0.0f));
  in[2][kBlock * 4] = 0.5f;   // FC; its response ends before the LFE impulse
  in[3][kBlock * 12] = 0.5f;  // LFE
  b.set_channel_gain_db(2, -6);
  b.set_channel_gain_db(3, -12);
  b.set_master_gain_db(6);
  const auto want = run(ref, in);
  const auto got = run(b, in);
  const float fc = std::pow(10.0f, 0.0f / 20), lfe = std::pow(10.0f, -6.0f / 20);
  for (int e = 0; e < 2; ++e) {
    for (size_t n = kBlock * 4; n < kBlock * 12; ++n) ASSERT_NEAR(got[e][n], fc * want[e][n], 1e-6f);
    for (size_t n = kBlock * 12; n < kBlock * 20; ++n) ASSERT_NEAR(got[e][n], lfe * want[e][n], 1e-6f);
  }
}

TEST(Binaural, SetupRefusesBadOverridesWithTheSpeakerName) {
  auto s = speakers_of("2.0");
  s[1].delay_ms = 500;
  Binaural b;
  try {
    b.setup(s, HrtfSet::load_sofa(kDefaultSofa, kRate), {kRate, kBlock, 20, true});
    FAIL() << "accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("speaker FR: delay_ms"), std::string::npos) << e.what();
  }
}

// A head tracker that keeps sending the same orientation (or a patch that
// polls it every block) costs nothing: no rebuild, no swap, no fade.
TEST(Binaural, RepeatingTheSameOrientationRebuildsNothing) {
  Binaural b;
  b.setup(speakers_of("7.1"), HrtfSet::load_sofa(kDefaultSofa, kRate), {kRate, kBlock, 20, true});
  std::vector<std::vector<float>> in(8, std::vector<float>(kBlock, 0.1f));
  std::vector<std::vector<float>> out(2, std::vector<float>(kBlock));
  std::vector<const float*> ip;
  for (auto& c : in) ip.push_back(c.data());
  float* op[2] = {out[0].data(), out[1].data()};
  b.set_orientation(30, 0, 0);
  for (int i = 0; i < 5000 && b.build_pending(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (uint32_t k = 0; k <= b.fade_blocks() + 1; ++k) b.process(ip.data(), op);
  ASSERT_EQ(b.swaps(), 1u);
  ASSERT_TRUE(b.settled());
  for (int k = 0; k < 1000; ++k) {
    b.set_orientation(30, 0, 0);
    b.process(ip.data(), op);
    EXPECT_FALSE(b.build_pending());
  }
  EXPECT_EQ(b.swaps(), 1u);
  EXPECT_TRUE(b.settled());
}

// Head turns every few blocks (some while a fade runs), gain and bypass
// changes: the audio thread allocates and frees nothing.
TEST(Binaural, ProcessNeverAllocatesWhileTheHeadTurns) {
  Binaural b;
  b.setup(speakers_of("7.1.4"), HrtfSet::load_sofa(kDefaultSofa, kRate), {kRate, kBlock, 20, true});
  std::vector<std::vector<float>> in(12, std::vector<float>(kBlock, 0.1f));
  std::vector<std::vector<float>> out(2, std::vector<float>(kBlock));
  std::vector<const float*> ip;
  for (auto& c : in) ip.push_back(c.data());
  float* op[2] = {out[0].data(), out[1].data()};
  t_allocs = 0;
  for (int k = 0; k < 3000; ++k) {
    t_counting = true;
    if (k % 7 == 0) b.set_orientation(k % 360 - 180, (k % 90) - 45, 0);
    if (k % 50 == 0) b.set_bypass(k % 100 == 0);
    b.set_channel_gain_db(k % 12, -(k % 20));
    b.set_master_gain_db(-(k % 10));
    b.process(ip.data(), op);
    t_counting = false;
    // A rebuild takes tens of ms (hrtf.cpp resamples per call): let some finish.
    if (k % 32 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(t_allocs, 0u);
  EXPECT_GT(b.swaps(), 2u);
  // The counter works: an allocation on this thread is seen.
  t_counting = true;
  void* volatile p = malloc(16);
  free(p);
  t_counting = false;
  EXPECT_EQ(t_allocs, 2u);
}

}  // namespace
}  // namespace rackd::hrir
