// Benchmark of the eq DSP (modules/eq/eq_dsp.*): 10 bands, stereo, 48 kHz,
// block 128, in ns per stereo frame, with smoothing active (every band's
// frequency and gain targets move every block, so the glide never settles:
// every segment re-designs every band and steps its coefficients) and idle
// (static parameters), beside a plain direct-form (transposed DF2, double)
// RBJ biquad cascade with the same 10 bands, measured in the same run. The eq
// runs with the kernel build setup() picks for this CPU (AVX2+FMA on most
// x86-64) and again with the portable build (SSE2), which is what any x86-64
// gets. Single-threaded; standalone main, no test framework.
//
//   g++ -std=c++20 -O2 -Wall -Wextra -I. bench/eq_bench.cpp modules/eq/eq_dsp.cpp modules/eq/eq_kernels.cpp -o /tmp/eq_bench
//   /tmp/eq_bench [runs]
//
// Prints median, min and max over the runs (default 9, at least 5) and the
// ratios of the medians to the plain cascade; the configurations take turns
// within each run, so machine load affects them alike. The active run's
// targets are computed before timing (the LFO is not the eq's work).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numbers>
#include <vector>

#include "modules/eq/eq_dsp.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace {

using rackd::eq::BandParams;
using rackd::eq::BandType;

constexpr double kRate = 48000.0;
constexpr uint32_t kChannels = 2;
constexpr uint32_t kBlock = 128;
constexpr uint32_t kBlocksPerRun = 3000;  // 8 s of audio per run

// A realistic headphone correction (AutoEQ-like) with a few other types.
std::vector<BandParams> bands() {
  return {
      {true, BandType::kLowShelf, 105, 6.5, 0.7},  {true, BandType::kPeak, 190, -3.1, 0.6},
      {true, BandType::kPeak, 1200, 1.8, 1.4},     {true, BandType::kPeak, 2600, -2.4, 2.2},
      {true, BandType::kPeak, 3900, 3.3, 3.5},     {true, BandType::kPeak, 5500, -4.0, 4.1},
      {true, BandType::kPeak, 7300, 2.2, 2.0},     {true, BandType::kHighShelf, 10000, -2.5, 0.7},
      {true, BandType::kHighPass, 20, 0, 0.7071},  {true, BandType::kNotch, 60, 0, 8.0},
  };
}

// The baseline: RBJ cookbook biquads, transposed direct form II, double.
struct Biquad {
  double b0, b1, b2, a1, a2;
};

Biquad rbj(const BandParams& p) {
  const double w0 = 2 * std::numbers::pi * p.freq_hz / kRate;
  const double cw = std::cos(w0), sw = std::sin(w0);
  const double a = std::pow(10.0, p.gain_db / 40.0);
  const double q = p.q;
  const double alpha = sw / (2 * q);
  const double sa = 2 * std::sqrt(a) * alpha;
  double b0, b1, b2, a0, a1, a2;
  switch (p.type) {
    case BandType::kLowShelf:
      b0 = a * ((a + 1) - (a - 1) * cw + sa), b1 = 2 * a * ((a - 1) - (a + 1) * cw);
      b2 = a * ((a + 1) - (a - 1) * cw - sa), a0 = (a + 1) + (a - 1) * cw + sa;
      a1 = -2 * ((a - 1) + (a + 1) * cw), a2 = (a + 1) + (a - 1) * cw - sa;
      break;
    case BandType::kHighShelf:
      b0 = a * ((a + 1) + (a - 1) * cw + sa), b1 = -2 * a * ((a - 1) + (a + 1) * cw);
      b2 = a * ((a + 1) + (a - 1) * cw - sa), a0 = (a + 1) - (a - 1) * cw + sa;
      a1 = 2 * ((a - 1) - (a + 1) * cw), a2 = (a + 1) - (a - 1) * cw - sa;
      break;
    case BandType::kHighPass:
      b0 = (1 + cw) / 2, b1 = -(1 + cw), b2 = (1 + cw) / 2, a0 = 1 + alpha, a1 = -2 * cw,
      a2 = 1 - alpha;
      break;
    case BandType::kNotch:
      b0 = 1, b1 = -2 * cw, b2 = 1, a0 = 1 + alpha, a1 = -2 * cw, a2 = 1 - alpha;
      break;
    default:  // peak
      b0 = 1 + alpha * a, b1 = -2 * cw, b2 = 1 - alpha * a, a0 = 1 + alpha / a, a1 = -2 * cw,
      a2 = 1 - alpha / a;
      break;
  }
  return {b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0};
}

// The plain cascade as one would write it first: per channel, per band, per
// sample, TDF2 in double with float I/O.
struct PlainCascade {
  std::vector<Biquad> q;
  std::vector<double> s;  // channels x bands x 2
  std::vector<double> work;

  explicit PlainCascade(const std::vector<BandParams>& b) {
    for (const auto& p : b) q.push_back(rbj(p));
    s.assign(kChannels * q.size() * 2, 0.0);
    work.assign(kBlock, 0.0);
  }

  void process(const float* const* in, float* const* out, uint32_t frames) {
    for (uint32_t c = 0; c < kChannels; ++c) {
      for (uint32_t i = 0; i < frames; ++i) work[i] = in[c][i];
      for (std::size_t k = 0; k < q.size(); ++k) {
        const Biquad f = q[k];
        double s1 = s[(c * q.size() + k) * 2], s2 = s[(c * q.size() + k) * 2 + 1];
        for (uint32_t i = 0; i < frames; ++i) {
          const double x = work[i];
          const double y = f.b0 * x + s1;
          s1 = f.b1 * x - f.a1 * y + s2;
          s2 = f.b2 * x - f.a2 * y;
          work[i] = y;
        }
        s[(c * q.size() + k) * 2] = s1;
        s[(c * q.size() + k) * 2 + 1] = s2;
      }
      for (uint32_t i = 0; i < frames; ++i) out[c][i] = static_cast<float>(work[i]);
    }
  }
};

struct Buffers {
  std::vector<std::vector<float>> in, out;
  std::vector<const float*> in_ptr;
  std::vector<float*> out_ptr;
  Buffers() : in(kChannels, std::vector<float>(kBlock)), out(kChannels, std::vector<float>(kBlock)) {
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (auto& ch : in) {
      for (float& v : ch) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        v = static_cast<float>(static_cast<double>(rng >> 11) / 9007199254740992.0 - 0.5) * 0.5f;
      }
    }
    for (auto& ch : in) in_ptr.push_back(ch.data());
    for (auto& ch : out) out_ptr.push_back(ch.data());
  }
};

volatile float g_sink;

template <class F>
double ns_per_frame(F&& block_fn, Buffers& io) {
  const auto t0 = std::chrono::steady_clock::now();
  for (uint32_t blk = 0; blk < kBlocksPerRun; ++blk) block_fn(blk);
  const auto t1 = std::chrono::steady_clock::now();
  g_sink = io.out[0][kBlock - 1];
  return std::chrono::duration<double, std::nano>(t1 - t0).count() /
         (static_cast<double>(kBlocksPerRun) * kBlock);
}

struct Stats {
  double median, min, max;
};

Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

}  // namespace

int main(int argc, char** argv) {
#if defined(__x86_64__) || defined(__i386__)
  _mm_setcsr(_mm_getcsr() | 0x8040u);  // FTZ/DAZ, as every rackd audio thread
#endif
  const int runs = argc > 1 ? std::max(5, std::atoi(argv[1])) : 9;
  const std::vector<BandParams> base = bands();
  Buffers io;

  // Every block, every band's frequency and gain move (a slow LFO, as a
  // tablet fader would: +-1/2 octave, +-3 dB, period 1 s), so the glide never
  // settles.
  constexpr uint32_t kLfoBlocks = 375;
  std::vector<std::vector<BandParams>> lfo(kLfoBlocks, base);
  for (uint32_t blk = 0; blk < kLfoBlocks; ++blk) {
    const double phase = 2 * std::numbers::pi * blk / kLfoBlocks;
    for (std::size_t i = 0; i < base.size(); ++i) {
      lfo[blk][i].freq_hz *= std::exp2(0.5 * std::sin(phase + static_cast<double>(i)));
      lfo[blk][i].gain_db += 3.0 * std::cos(phase + static_cast<double>(i));
    }
  }

  auto idle_run = [&](bool portable) {
    rackd::eq::Equalizer eq;
    eq.setup(kRate, kChannels);
    if (portable) eq.use_portable_kernels();
    for (int i = 0; i < static_cast<int>(base.size()); ++i) eq.set_band(i, base[i]);
    eq.process(io.in_ptr.data(), io.out_ptr.data(), kBlock);  // settles at the targets
    return ns_per_frame([&](uint32_t) { eq.process(io.in_ptr.data(), io.out_ptr.data(), kBlock); }, io);
  };
  auto active_run = [&](bool portable) {
    rackd::eq::Equalizer eq;
    eq.setup(kRate, kChannels);
    if (portable) eq.use_portable_kernels();
    for (int i = 0; i < static_cast<int>(base.size()); ++i) eq.set_band(i, base[i]);
    eq.process(io.in_ptr.data(), io.out_ptr.data(), kBlock);
    bool was_moving = true;
    const double ns = ns_per_frame(
        [&](uint32_t blk) {
          const std::vector<BandParams>& targets = lfo[blk % kLfoBlocks];
          for (int i = 0; i < static_cast<int>(targets.size()); ++i) eq.set_band(i, targets[i]);
          eq.process(io.in_ptr.data(), io.out_ptr.data(), kBlock);
          was_moving = was_moving && eq.moving();
        },
        io);
    if (!was_moving) std::fprintf(stderr, "warning: the active run settled at some point\n");
    return ns;
  };

  // Denormal input with FTZ/DAZ off (the eq must not rely on them): 1e-40
  // against the noise above, both idle.
  Buffers tiny;
  for (auto& ch : tiny.in)
    for (std::size_t k = 0; k < ch.size(); ++k) ch[k] = k % 2 ? 1e-40f : -1e-40f;
  auto no_ftz_run = [&](Buffers& b) {
#if defined(__x86_64__) || defined(__i386__)
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(csr & ~0x8040u);
#endif
    rackd::eq::Equalizer eq;
    eq.setup(kRate, kChannels);
    for (int i = 0; i < static_cast<int>(base.size()); ++i) eq.set_band(i, base[i]);
    eq.process(b.in_ptr.data(), b.out_ptr.data(), kBlock);
    const double ns = ns_per_frame([&](uint32_t) { eq.process(b.in_ptr.data(), b.out_ptr.data(), kBlock); }, b);
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(csr);
#endif
    return ns;
  };

  rackd::eq::Equalizer probe;
  probe.setup(kRate, kChannels);
  const bool dispatched = probe.isa() != rackd::eq::Equalizer::Isa::kPortable;

  std::vector<double> plain_ns, idle_ns, active_ns, idle_portable_ns, active_portable_ns, noise_off_ns, tiny_off_ns;
  for (int r = 0; r < runs; ++r) {
    PlainCascade plain(base);
    plain_ns.push_back(ns_per_frame(
        [&](uint32_t) { plain.process(io.in_ptr.data(), io.out_ptr.data(), kBlock); }, io));
    idle_ns.push_back(idle_run(false));
    active_ns.push_back(active_run(false));
    if (dispatched) {
      idle_portable_ns.push_back(idle_run(true));
      active_portable_ns.push_back(active_run(true));
    }
    noise_off_ns.push_back(no_ftz_run(io));
    tiny_off_ns.push_back(no_ftz_run(tiny));
  }

  const Stats p = stats(plain_ns), i = stats(idle_ns), a = stats(active_ns);
  std::printf("eq_bench: 10 bands, %u ch, %.0f Hz, block %u, %d runs of %u blocks\n", kChannels,
              kRate, kBlock, runs, kBlocksPerRun);
  std::printf("  eq kernels: %s\n", dispatched ? "AVX2+FMA (chosen at setup), portable SSE2 below"
                                               : "portable (no AVX2+FMA on this CPU)");
  auto line = [&](const char* what, const Stats& s) {
    std::printf("  %-28s median %7.2f ns/frame  (min %7.2f, max %7.2f)  %.2fx plain\n", what,
                s.median, s.min, s.max, s.median / p.median);
  };
  std::printf("  %-28s median %7.2f ns/frame  (min %7.2f, max %7.2f)\n", "plain TDF2 biquad cascade",
              p.median, p.min, p.max);
  line("eq, smoothing idle", i);
  line("eq, smoothing active", a);
  if (dispatched) {
    line("eq portable, idle", stats(idle_portable_ns));
    line("eq portable, active", stats(active_portable_ns));
  }
  const Stats n_off = stats(noise_off_ns), t_off = stats(tiny_off_ns);
  std::printf("  %-28s median %7.2f ns/frame  (min %7.2f, max %7.2f)\n", "eq idle, FTZ/DAZ off, noise", n_off.median,
              n_off.min, n_off.max);
  std::printf("  %-28s median %7.2f ns/frame  (min %7.2f, max %7.2f)  %.2fx noise\n", "eq idle, FTZ/DAZ off, 1e-40",
              t_off.median, t_off.min, t_off.max, t_off.median / n_off.median);
  constexpr double kGoalNs = 50.0;
  auto verdict = [&](double ns) { return ns <= kGoalNs ? "met" : "NOT met"; };
  std::printf("  goal: <= 50 ns per stereo frame for 10 bands: idle %.2f (%s), active %.2f (%s)\n",
              i.median, verdict(i.median), a.median, verdict(a.median));
  return 0;
}
