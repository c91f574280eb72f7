// The eq's kernel interface, internal to the module (included by eq_dsp.cpp
// and eq_kernels.cpp only): the state-space Kernel a design becomes
// (to_kernel), the inline exp the glide designs with (fast_exp), and one
// segment of one channel pair (float in, preamp ramp, the pair's bands, float
// out) as Equalizer::process() hands it to the two kernel builds defined in
// eq_kernels.cpp. Everything here is [rt]: it runs on the module's audio
// thread, allocates nothing, takes no lock and does not throw.
#pragma once

#include <cstdint>

#include "modules/eq/eq_dsp.hpp"
#include "shm/rt.hpp"

namespace rackd::eq::kernels {

using V2 = Equalizer::V2;
using Kernel = Equalizer::Kernel;
using State = Equalizer::State;
using Frame = Equalizer::Frame;
typedef int64_t L2 __attribute__((vector_size(16)));

// e^x, lane by lane, for |x| <= 700 within a few ulp; inline, branch-free,
// both lanes at once: what the glide designs from between a band's old and new
// settings (ln g and ln A of a band together), where glibc's exp, exp2 and tan
// cost several times as much. Cody-Waite reduction to |r| <= ln(2)/2, the
// Taylor series to r^13 (truncation below 1e-17), 2^n added to the exponent.
inline V2 fast_exp(V2 x) noexcept RACKD_RT {
  constexpr double kLog2e = 1.4426950408889634074;
  constexpr double kLn2Hi = 6.93147180369123816490e-01;  // ln 2, high 32 bits
  constexpr double kLn2Lo = 1.90821492927058770002e-10;  // ln 2 - kLn2Hi
  constexpr V2 kRound = {0x1.8p52, 0x1.8p52};  // adding it rounds to an integer
  x = x < -700.0 ? V2{-700.0, -700.0} : x;
  x = x > 700.0 ? V2{700.0, 700.0} : x;
  const V2 shifted = x * kLog2e + kRound;  // n in the low mantissa bits
  const V2 n = shifted - kRound;
  const V2 r = (x - n * kLn2Hi) - n * kLn2Lo;
  // Estrin's scheme: short chains instead of one of thirteen.
  const V2 r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
  const V2 p01 = 1.0 + r, p23 = 1.0 / 2 + r * (1.0 / 6), p45 = 1.0 / 24 + r * (1.0 / 120),
           p67 = 1.0 / 720 + r * (1.0 / 5040), p89 = 1.0 / 40320 + r * (1.0 / 362880),
           p1011 = 1.0 / 3628800 + r * (1.0 / 39916800),
           p1213 = 1.0 / 479001600 + r * (1.0 / 6227020800);
  const V2 p03 = p01 + r2 * p23, p47 = p45 + r2 * p67, p811 = p89 + r2 * p1011;
  const V2 p = p03 + r4 * p47 + r8 * (p811 + r4 * p1213);
  const L2 n_bits = reinterpret_cast<L2>(shifted) - reinterpret_cast<L2>(kRound);
  return reinterpret_cast<V2>(reinterpret_cast<L2>(p) + (n_bits << 52));
}

// The SVF with output mix `mix` (0: identity) in state-space form. With
// s = (ic1, ic2): v1 = a1*ic1 - a2*ic2 + a2*x, v2 = a2*ic1 + (1-a3)*ic2 + a3*x,
// ic' = 2v - ic, y = m0*x + m1*v1 + m2*v2. The loop part (m11, b1, b2) is affine
// in (a1, a2, a3), so interpolating it linearly interpolates the design's a's.
// Lanes not in `lanes` (bit 0: lane 0, bit 1: lane 1) get the identity.
inline void to_kernel(const SvfCoefs& c, double mix, int lanes, Kernel& k) noexcept RACKD_RT {
  const double m0 = 1 + mix * (c.m0 - 1), m1 = mix * c.m1, m2 = mix * c.m2;
  const double m11 = 2 * c.a1 - 1, b1 = 2 * c.a2, b2 = 2 * c.a3;
  const double c1 = m1 * c.a1 + m2 * c.a2, c2 = -m1 * c.a2 + m2 * (1 - c.a3);
  const double d = m0 + m1 * c.a2 + m2 * c.a3;
  if (lanes == 3) {
    k = {V2{m11, m11}, V2{b1, b1}, V2{b2, b2}, V2{c1, c1}, V2{c2, c2}, V2{d, d}};
    return;
  }
  const bool l0 = lanes & 1, l1 = lanes & 2;
  k.m11 = V2{l0 ? m11 : 1.0, l1 ? m11 : 1.0};
  k.b1 = V2{l0 ? b1 : 0.0, l1 ? b1 : 0.0};
  k.b2 = V2{l0 ? b2 : 0.0, l1 ? b2 : 0.0};
  k.c1 = V2{l0 ? c1 : 0.0, l1 ? c1 : 0.0};
  k.c2 = V2{l0 ? c2 : 0.0, l1 ? c2 : 0.0};
  k.d = V2{l0 ? d : 1.0, l1 ? d : 1.0};
}

inline Kernel to_kernel(const SvfCoefs& c, double mix, int lanes) noexcept RACKD_RT {
  Kernel k;
  to_kernel(c, mix, lanes, k);
  return k;
}

// One segment of one channel pair: what process() hands to a kernel build.
struct PairJob {
  const float* in0;
  const float* in1;     // a silent buffer for the missing lane of an odd count
  float* out0;
  float* out1;          // a scratch buffer for the missing lane
  uint32_t frames;      // <= kSegmentFrames
  double gain0, gain_step;
  const Kernel* const* kernel;  // per band of the pair, in order
  const Kernel* const* step;
  State* const* state;
  int count;
  bool ramp;
  Frame* buf;
};

// [rt] The builds; process() runs one, chosen by setup() from the CPU. Each
// returns false when a state of the pair went non-finite (the caller resets).
bool run_pair_portable(const PairJob& job) noexcept RACKD_RT;

#if defined(__x86_64__)
#define RACKD_EQ_AVX2 1
// [rt] Only where the CPU has AVX2 and FMA (Equalizer::setup() checks); the
// declaration repeats the definition's target so that callers see it.
__attribute__((target("avx2,fma"))) bool run_pair_avx2(const PairJob& job) noexcept RACKD_RT;
#endif

}  // namespace rackd::eq::kernels
