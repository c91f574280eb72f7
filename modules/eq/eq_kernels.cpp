// The eq's per-sample kernels and float I/O, and the two builds of the pair
// loop that run them (declared in eq_kernels.hpp): the portable one and, on
// x86-64, one for AVX2+FMA. All [rt]: called from Equalizer::process() on the
// module's audio thread, they work in the caller's buffers and states only (no
// allocation, no locks, no libm).
//
// Why everything a build calls lives in this file, always_inline: a callee can
// be inlined into a target("avx2,fma") function only where its body is visible
// (this translation unit; the build has no LTO), and an always_inline callee
// with the default target (a subset of AVX2+FMA) then compiles with the
// caller's target: one source becomes VEX code with fused multiply-adds in
// run_pair_avx2 and SSE2 code in run_pair_portable. A kernel defined in another
// file would instead be called, in its SSE2 build, from both.
//
// Speed: the SVF runs in an equivalent state-space form (6 coefficients, the
// same integrator states; x -> y is one multiply-add, so a cascade of bands
// pipelines well), in double precision with a channel pair in one vector
// register. Bands run in chunks of up to five per pass over the segment (10
// bands as 5 + 5), so a chunk's states stay in registers (16 vector registers:
// 10 states, the signal and temporaries) and the chunk's independent state
// recurrences overlap; the cost is then throughput-bound (7 multiplies and 6
// adds per band and frame). Idle bands (off and faded out) cost nothing, and
// when nothing moves the glide bookkeeping is skipped altogether. Float I/O
// converts and (de)interleaves four frames per vector operation. The pair loop
// (I/O, preamp, bands) is compiled twice: for the baseline target and, on
// x86-64, for AVX2+FMA, chosen at setup from the CPU; there the recurrences
// contract to fused multiply-adds, written so that the late operand (the
// signal from the previous band, the state difference u) is the one fused. See
// bench/eq_bench.cpp for figures.
//
// Coefficient steps: while a band glides, its coefficients walk from one design
// to the next in steps that process() prepares per segment (eq_dsp.cpp, the
// glide), and run_chunk adds a step every kStepFrames (4) frames, holding the
// coefficients in between. Why that is still free of zipper noise: the
// states carry on unchanged across a coefficient step and keep their meaning
// (integrator levels), so a step in the loop coefficients bends the states'
// trajectories but moves neither state: nothing jumps. Only the output mix
// (c1, c2, d) turns a step into an output step, of the coefficient step times
// the state level. A step is 1/16 of a segment's glide increment, itself alpha
// = 1 - exp(-64/480) = 12.5 % of the remaining distance (10 ms at 48 kHz): 0.8
// % of the remaining change per step, so a 24 dB gain jump moves by at most
// 0.2 dB per step, a 20 Hz..20 kHz sweep in 1 s by 1/1200 octave per step, a
// fading band's mix by 0.8 % of its effect per step, and the steps shrink as
// the glide converges. Measured against the same glide stepped every frame,
// the difference above 3 kHz peaks at -50 dB (re output peak) for a +12 dB
// band toggled on a 200 Hz tone, -45 dB for +-12 dB gain jumps, below -90 dB
// for that sweep, for the few ms the glide takes; per-frame stepping would
// double a moving band's work (six more adds per frame), this adds six per
// four frames. EqGlide.SteppedCoefficientsLeaveNoZipperResidue holds the
// line, and the click tests bound the largest sample step.
//
// Denormals: the module thread runs with FTZ/DAZ, and the kernels do not rely
// on it: input float denormals are read as zero (integer test, no FP assist),
// states are double (their denormal range is 1e-308, far below anything a
// 64-frame segment can decay to from the 1e-30 floor, short of a pole radius
// under 1e-4), states below 1e-30 are flushed to zero at every segment, and
// outputs below 1e-30 are written as 0.
#include "modules/eq/eq_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

// The kernels are written once and inlined into each build of the pair loop.
#define RACKD_EQ_INLINE inline __attribute__((always_inline))

namespace rackd::eq::kernels {
namespace {

typedef float F4 __attribute__((vector_size(16)));
typedef float F2 __attribute__((vector_size(8)));
typedef int32_t I4 __attribute__((vector_size(16)));

constexpr double kTiny = 1e-30;  // flush threshold for states and outputs
constexpr int kMaxChunk = 5;
constexpr uint32_t kStep = Equalizer::kStepFrames;

RACKD_EQ_INLINE void add_to(Kernel& k, const Kernel& d) noexcept {
  k.m11 += d.m11, k.b1 += d.b1, k.b2 += d.b2, k.c1 += d.c1, k.c2 += d.c2, k.d += d.d;
}

// ---------------------------------------------------------------------------
// Float I/O. Denormals and -0 are read as +0 by an integer test, so a denormal
// never reaches the FPU without DAZ; outputs below kTiny are written as 0.

RACKD_EQ_INLINE double load_sample(const float* p) noexcept {
  uint32_t bits;
  std::memcpy(&bits, p, sizeof bits);
  if ((bits & 0x7f80'0000u) == 0) return 0.0;
  return static_cast<double>(*p);
}

RACKD_EQ_INLINE float store_sample(double v) noexcept {
  return std::fabs(v) < kTiny ? 0.0f : static_cast<float>(v);
}

RACKD_EQ_INLINE F4 load4(const float* p) noexcept {
  F4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

RACKD_EQ_INLINE void store4(float* p, F4 v) noexcept { std::memcpy(p, &v, sizeof v); }

RACKD_EQ_INLINE F4 zero_denormals(F4 v) noexcept {
  const I4 bits = reinterpret_cast<I4>(v);
  const I4 zero_exponent = (bits & 0x7f80'0000) == 0;  // all ones where denormal or zero
  return reinterpret_cast<F4>(bits & ~zero_exponent);
}

RACKD_EQ_INLINE V2 flush_tiny(V2 v) noexcept {
  const L2 bits = reinterpret_cast<L2>(v);
  const V2 magnitude = reinterpret_cast<V2>(bits & 0x7fff'ffff'ffff'ffffll);
  const L2 tiny = magnitude < V2{kTiny, kTiny};
  return reinterpret_cast<V2>(bits & ~tiny);
}

// [rt] Interleaves n frames of two channels into `buf`, times the preamp ramp
// gain0 + gain_step * (i + 1).
RACKD_EQ_INLINE void load_pair(const float* in0, const float* in1, uint32_t n, double gain0,
                               double gain_step, Frame* buf) noexcept {
  uint32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const F4 l = zero_denormals(load4(in0 + i)), r = zero_denormals(load4(in1 + i));
    const F4 lo = __builtin_shufflevector(l, r, 0, 4, 1, 5);
    const F4 hi = __builtin_shufflevector(l, r, 2, 6, 3, 7);
    const V2 x0 = __builtin_convertvector(__builtin_shufflevector(lo, lo, 0, 1), V2);
    const V2 x1 = __builtin_convertvector(__builtin_shufflevector(lo, lo, 2, 3), V2);
    const V2 x2 = __builtin_convertvector(__builtin_shufflevector(hi, hi, 0, 1), V2);
    const V2 x3 = __builtin_convertvector(__builtin_shufflevector(hi, hi, 2, 3), V2);
    buf[i].v = x0 * (gain0 + gain_step * (i + 1));
    buf[i + 1].v = x1 * (gain0 + gain_step * (i + 2));
    buf[i + 2].v = x2 * (gain0 + gain_step * (i + 3));
    buf[i + 3].v = x3 * (gain0 + gain_step * (i + 4));
  }
  for (; i < n; ++i) {
    buf[i].v = V2{load_sample(in0 + i), load_sample(in1 + i)} * (gain0 + gain_step * (i + 1));
  }
}

// [rt] De-interleaves n frames from `buf` into two channels.
RACKD_EQ_INLINE void store_pair(const Frame* buf, uint32_t n, float* out0, float* out1) noexcept {
  uint32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const F2 f0 = __builtin_convertvector(flush_tiny(buf[i].v), F2);
    const F2 f1 = __builtin_convertvector(flush_tiny(buf[i + 1].v), F2);
    const F2 f2 = __builtin_convertvector(flush_tiny(buf[i + 2].v), F2);
    const F2 f3 = __builtin_convertvector(flush_tiny(buf[i + 3].v), F2);
    const F4 a = __builtin_shufflevector(f0, f1, 0, 1, 2, 3);
    const F4 b = __builtin_shufflevector(f2, f3, 0, 1, 2, 3);
    store4(out0 + i, __builtin_shufflevector(a, b, 0, 2, 4, 6));
    store4(out1 + i, __builtin_shufflevector(a, b, 1, 3, 5, 7));
  }
  for (; i < n; ++i) {
    out0[i] = store_sample(buf[i].v[0]);
    out1[i] = store_sample(buf[i].v[1]);
  }
}

// ---------------------------------------------------------------------------
// The kernel: N bands (N <= kMaxChunk) over `frames` frames of one channel
// pair, in place. Without kRamp the coefficients hold still; with it each band
// adds its step before every kStep frames after the first (so the last step
// ends on the segment's end design). At the end the states are flushed below
// kTiny and checked; false if any is NaN or infinite.
template <int N, bool kRamp>
RACKD_EQ_INLINE bool run_chunk(const Kernel* const* kernel, const Kernel* const* step,
                               State* const* state, Frame* buf, uint32_t frames) noexcept {
  Kernel k[N];
  V2 s1[N], s2[N];
  for (int j = 0; j < N; ++j) {
    k[j] = *kernel[j];
    s1[j] = state[j]->ic1;
    s2[j] = state[j]->ic2;
  }
  uint32_t i = 0;
  uint32_t stop = kRamp ? std::min(frames, kStep) : frames;
  for (;;) {
    for (; i < stop; ++i) {
      V2 x = buf[i].v;
      // Unrolled so that the chunk's states live in registers. The sums are
      // ordered for FMA contraction (the AVX2 build; GCC fuses products into
      // the sums that use them, in order): the late operands, x from the
      // previous band and u, reach y and the states through one fused
      // multiply-add each.
#pragma GCC unroll 8
      for (int j = 0; j < N; ++j) {
        const V2 a = s1[j], b = s2[j];
        const V2 u = x - b;
        const V2 y = k[j].c1 * a + k[j].c2 * b + k[j].d * x;
        s1[j] = k[j].b1 * u + k[j].m11 * a;
        s2[j] = k[j].b2 * u + (b + k[j].b1 * a);
        x = y;
      }
      buf[i].v = x;
    }
    if constexpr (!kRamp) {
      break;
    } else {
      if (i >= frames) break;
      for (int j = 0; j < N; ++j) add_to(k[j], *step[j]);
      stop = std::min(frames, stop + kStep);
    }
  }
  L2 finite = ~L2{};
  for (int j = 0; j < N; ++j) {
    s1[j] = flush_tiny(s1[j]);
    s2[j] = flush_tiny(s2[j]);
    finite &= ((s1[j] - s1[j]) == V2{}) & ((s2[j] - s2[j]) == V2{});  // x - x is NaN for NaN/Inf
    state[j]->ic1 = s1[j];
    state[j]->ic2 = s2[j];
  }
  return (finite[0] & finite[1]) != 0;
}

template <bool kRamp>
RACKD_EQ_INLINE bool run_bands(const Kernel* const* kernel, const Kernel* const* step,
                               State* const* state, int count, Frame* buf,
                               uint32_t frames) noexcept {
  bool finite = true;
  for (int j = 0; j < count;) {
    // Even chunks: 10 bands run as 5 + 5, 6 as 3 + 3, never 5 + 1.
    const int left = count - j;
    const int chunks = (left + kMaxChunk - 1) / kMaxChunk;
    const int n = (left + chunks - 1) / chunks;
    const Kernel* const* k = kernel + j;
    const Kernel* const* d = step + j;
    State* const* s = state + j;
    switch (n) {
      case 5: finite &= run_chunk<5, kRamp>(k, d, s, buf, frames); break;
      case 4: finite &= run_chunk<4, kRamp>(k, d, s, buf, frames); break;
      case 3: finite &= run_chunk<3, kRamp>(k, d, s, buf, frames); break;
      case 2: finite &= run_chunk<2, kRamp>(k, d, s, buf, frames); break;
      default: finite &= run_chunk<1, kRamp>(k, d, s, buf, frames); break;
    }
    j += n;
  }
  return finite;
}

RACKD_EQ_INLINE bool pair_body(const PairJob& job) noexcept {
  load_pair(job.in0, job.in1, job.frames, job.gain0, job.gain_step, job.buf);
  const bool finite =
      job.ramp ? run_bands<true>(job.kernel, job.step, job.state, job.count, job.buf, job.frames)
               : run_bands<false>(job.kernel, job.step, job.state, job.count, job.buf, job.frames);
  store_pair(job.buf, job.frames, job.out0, job.out1);
  return finite;
}

}  // namespace

bool run_pair_portable(const PairJob& job) noexcept RACKD_RT { return pair_body(job); }

#ifdef RACKD_EQ_AVX2
__attribute__((target("avx2,fma"))) bool run_pair_avx2(const PairJob& job) noexcept RACKD_RT {
  return pair_body(job);
}
#endif

}  // namespace rackd::eq::kernels
