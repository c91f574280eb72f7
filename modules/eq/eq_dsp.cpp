// Equalizer DSP: band design, the glide, and the per-sample kernels. setup() is
// [setup]; everything else runs on the module's audio thread ([rt]) or anywhere.
//
// Why a TPT state-variable filter, and how it moves
// -------------------------------------------------
// Each band is a trapezoidal-integrated (TPT, "zero-delay feedback") SVF in
// Simper's form. Its transfer function is the bilinear transform, pre-warped at
// the band frequency, of the cookbook's analog prototype, so its static
// response *is* the RBJ cookbook response. We chose it over a direct-form
// biquad with interpolated coefficients because its two states are integrator
// states (a signal level and its band-passed rate of change) whose meaning does
// not depend on the coefficients: when the frequency moves, the stored energy
// is not re-scaled, so a moving SVF neither thumps nor blows up, where a DF1/DF2
// biquad's delayed samples suddenly stand for a different filter (large
// transients at low frequencies, and no stability guarantee when modulated).
//
// The glide: every kSegmentFrames (64) frames each moving band takes one
// one-pole step (time constant smoothing_ms, 10 ms by default) towards its
// target, in ln g (g = tan(pi*fc/fs), the pre-warped frequency: log frequency,
// stretched towards Nyquist), dB and ln Q, and the band is re-designed there.
// Between the exact designs at the targets (libm, once per change, in
// set_band) the designs come from an inline exp (a few ns per moving band per
// segment; nothing when idle). Across the segment the coefficients walk from
// the old design to the new one in kStepFrames (4) frame steps: the linear
// interpolation between the two designs, sampled at the end of each step and
// held for its 4 frames. On/off, type and channel changes fade the band's
// output mix between the identity and its response (a type or channel change
// fades out, swaps with fresh states, fades in). OSC changes that arrive block
// by block therefore become one continuous motion.
//
// Why holding coefficients for 4 frames is still free of zipper noise: the
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
// Stability while moving: the loop matrix of the SVF (zero input) is
//   M = [[2a1 - 1, -2a2], [2a2, 1 - 2a3]]
// and every valid design has 0 < a1, 0 < a3, a1 + a3 < 1 and a2^2 = a1*a3.
// Every held coefficient set is a convex combination of two designs (the
// segment's start and end; rounding aside); it keeps the linear conditions
// and satisfies a2^2 <= a1*a3 (Cauchy-Schwarz). From these the Jury conditions follow:
// 1 - tr + det >= 4*a3*(1 - a1) > 0, 1 + tr + det >= 4*a1*(1 - a3) > 0,
// det <= 2(a1 + a3) - 1 < 1 and det >= (2a1 - 1)(1 - 2a3) > -1. So every
// matrix that runs is stable, and the matrices change slowly (one small glide
// step per segment); the test suite also checks random jumps across the whole
// parameter range.
//
// Channels: a band applies to every channel (linked) or to one. Two channels
// share a vector register, so a band restricted to one channel of a pair runs
// with identity coefficients in the other lane (exact: y = 1*x + 0*states) and
// runs on that pair only; each pair has its own list of bands.
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
// Denormals: the module thread runs with FTZ/DAZ, and the kernels do not rely
// on it: input float denormals are read as zero (integer test, no FP assist),
// states are double (their denormal range is 1e-308, far below anything a
// 64-frame segment can decay to from the 1e-30 floor, short of a pole radius
// under 1e-4), states below 1e-30 are flushed to zero at every segment, and
// outputs below 1e-30 are written as 0.
#include "modules/eq/eq_dsp.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <stdexcept>

// The kernels are written once and inlined into each build of the pair loop.
#define RACKD_EQ_INLINE inline __attribute__((always_inline))

namespace rackd::eq {
namespace {

using V2 = Equalizer::V2;
using Kernel = Equalizer::Kernel;
using State = Equalizer::State;
using Frame = Equalizer::Frame;
typedef float F4 __attribute__((vector_size(16)));
typedef float F2 __attribute__((vector_size(8)));
typedef int32_t I4 __attribute__((vector_size(16)));
typedef int64_t L2 __attribute__((vector_size(16)));

constexpr double kTiny = 1e-30;       // flush threshold for states and outputs
constexpr double kSnapLn = 1e-5 * std::numbers::ln2;  // glide ends 1e-5 octave from the target
constexpr double kSnapDb = 1e-4;
constexpr double kSnapMix = 1e-5;
constexpr double kSnapGain = 1e-7;     // preamp, linear
constexpr double kMaxFreqFraction = 0.49;  // of the rate: keeps tan() finite
constexpr double kMinQ = 0.01;
constexpr int kMaxChunk = 5;
constexpr uint32_t kStep = Equalizer::kStepFrames;

constexpr std::string_view kNames[kBandTypeCount] = {
    "peak",     "low_shelf",  "high_shelf", "low_shelf_fixed", "high_shelf_fixed", "low_pass",
    "high_pass", "low_pass_q", "high_pass_q", "band_pass",     "notch",            "all_pass"};
constexpr std::string_view kApoCodes[kBandTypeCount] = {"PK", "LSC", "HSC", "LS", "HS", "LP",
                                                        "HP", "LPQ", "HPQ", "BP", "NO", "AP"};

double cookbook_a(double gain_db) noexcept { return std::exp(gain_db * (std::numbers::ln10 / 40.0)); }

// Design at a given pre-warped tan(pi*fc/fs) and cookbook A = 10^(gain/40)
// (exact from set_band at the targets, from fast_exp along the glide).
inline SvfCoefs design_at(BandType type, double tan_w, double a, double q) noexcept RACKD_RT {
  q = std::max(q, kMinQ);
  double g = tan_w;
  double k = 1.0 / q;
  SvfCoefs c;
  switch (type) {
    case BandType::kPeak:
      k = 1.0 / (q * a);
      c.m0 = 1, c.m1 = k * (a * a - 1), c.m2 = 0;
      break;
    case BandType::kLowShelfFixed:
      k = 1.0 / kButterworthQ;
      [[fallthrough]];
    case BandType::kLowShelf:
      g = tan_w / std::sqrt(a);
      c.m0 = 1, c.m1 = k * (a - 1), c.m2 = a * a - 1;
      break;
    case BandType::kHighShelfFixed:
      k = 1.0 / kButterworthQ;
      [[fallthrough]];
    case BandType::kHighShelf:
      g = tan_w * std::sqrt(a);
      c.m0 = a * a, c.m1 = k * (1 - a) * a, c.m2 = 1 - a * a;
      break;
    case BandType::kLowPass:
      k = 1.0 / kButterworthQ;
      [[fallthrough]];
    case BandType::kLowPassQ:
      c.m0 = 0, c.m1 = 0, c.m2 = 1;
      break;
    case BandType::kHighPass:
      k = 1.0 / kButterworthQ;
      [[fallthrough]];
    case BandType::kHighPassQ:
      c.m0 = 1, c.m1 = -k, c.m2 = -1;
      break;
    case BandType::kBandPass:
      c.m0 = 0, c.m1 = k, c.m2 = 0;
      break;
    case BandType::kNotch:
      c.m0 = 1, c.m1 = -k, c.m2 = 0;
      break;
    case BandType::kAllPass:
      c.m0 = 1, c.m1 = -2 * k, c.m2 = 0;
      break;
  }
  c.a1 = 1.0 / (1.0 + g * (g + k));
  c.a2 = g * c.a1;
  c.a3 = g * c.a2;
  return c;
}

double clamp_freq(double hz, double rate_hz) noexcept {
  // Written so that NaN ends at 1 kHz rather than inside tan().
  if (!(hz >= 1.0)) hz = hz > 0 ? 1.0 : 1000.0;
  return std::min(hz, kMaxFreqFraction * rate_hz);
}

double tan_for(double hz, double rate_hz) noexcept {
  return std::tan(std::numbers::pi * clamp_freq(hz, rate_hz) / rate_hz);
}

// e^x, lane by lane, for |x| <= 700 within a few ulp; inline, branch-free,
// both lanes at once: what the glide designs from between a band's old and new
// settings (ln g and ln A of a band together), where glibc's exp, exp2 and tan
// cost several times as much. Cody-Waite reduction to |r| <= ln(2)/2, the
// Taylor series to r^13 (truncation below 1e-17), 2^n added to the exponent.
inline V2 fast_exp(V2 x) noexcept {
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
void to_kernel(const SvfCoefs& c, double mix, int lanes, Kernel& k) noexcept {
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

Kernel to_kernel(const SvfCoefs& c, double mix, int lanes) noexcept {
  Kernel k;
  to_kernel(c, mix, lanes, k);
  return k;
}

const Kernel kIdentity = to_kernel(SvfCoefs{}, 0.0, 3);
const Kernel kNoStep{};

RACKD_EQ_INLINE void add_to(Kernel& k, const Kernel& d) noexcept {
  k.m11 += d.m11, k.b1 += d.b1, k.b2 += d.b2, k.c1 += d.c1, k.c2 += d.c2, k.d += d.d;
}

// One-pole step towards `target`; true while still moving (snaps when close).
bool glide(double& now, double target, double alpha, double snap) noexcept {
  const double diff = target - now;
  if (std::fabs(diff) <= snap || alpha >= 1.0) {
    now = target;
    return false;
  }
  now += diff * alpha;
  return true;
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

RACKD_EQ_INLINE bool pair_body(const PairJob& job) noexcept {
  load_pair(job.in0, job.in1, job.frames, job.gain0, job.gain_step, job.buf);
  const bool finite =
      job.ramp ? run_bands<true>(job.kernel, job.step, job.state, job.count, job.buf, job.frames)
               : run_bands<false>(job.kernel, job.step, job.state, job.count, job.buf, job.frames);
  store_pair(job.buf, job.frames, job.out0, job.out1);
  return finite;
}

// [rt] The builds. Returns false when a state went non-finite.
bool run_pair_portable(const PairJob& job) noexcept RACKD_RT { return pair_body(job); }

#if defined(__x86_64__)
#define RACKD_EQ_AVX2 1
__attribute__((target("avx2,fma"))) bool run_pair_avx2(const PairJob& job) noexcept RACKD_RT {
  return pair_body(job);
}
#endif

}  // namespace

std::string_view band_type_name(BandType type) noexcept {
  const int i = static_cast<int>(type);
  return i >= 0 && i < kBandTypeCount ? kNames[i] : std::string_view{};
}

std::optional<BandType> band_type_from_name(std::string_view name) noexcept {
  for (int i = 0; i < kBandTypeCount; ++i) {
    if (name == kNames[i] || name == kApoCodes[i]) return static_cast<BandType>(i);
  }
  return std::nullopt;
}

bool band_type_uses_gain(BandType type) noexcept {
  return type == BandType::kPeak || type == BandType::kLowShelf || type == BandType::kHighShelf ||
         type == BandType::kLowShelfFixed || type == BandType::kHighShelfFixed;
}

bool band_type_uses_q(BandType type) noexcept {
  switch (type) {
    case BandType::kLowShelfFixed:
    case BandType::kHighShelfFixed:
    case BandType::kLowPass:
    case BandType::kHighPass:
      return false;
    default:
      return true;
  }
}

SvfCoefs design(const BandParams& band, double rate_hz) noexcept RACKD_RT {
  return design_at(band.type, tan_for(band.freq_hz, rate_hz), cookbook_a(band.gain_db), band.q);
}

void Equalizer::setup(double rate_hz, uint32_t channels, double smoothing_ms) {
  if (!(rate_hz >= 1000.0 && rate_hz <= 1e6)) throw std::runtime_error("eq: unsupported rate");
  if (channels == 0) throw std::runtime_error("eq: needs at least one channel");
  rate_hz_ = rate_hz;
  channels_ = channels;
  pairs_ = (channels + 1) / 2;
  smoothing_frames_ = std::max(0.0, smoothing_ms) * 1e-3 * rate_hz;
  alpha_segment_ =
      smoothing_frames_ > 0 ? -std::expm1(-static_cast<double>(kSegmentFrames) / smoothing_frames_) : 1.0;
  states_.assign(std::size_t{pairs_} * kMaxBands, State{});
  pair_kernel_.assign(std::size_t{pairs_} * kMaxBands, nullptr);
  pair_step_.assign(std::size_t{pairs_} * kMaxBands, nullptr);
  pair_state_.assign(std::size_t{pairs_} * kMaxBands, nullptr);
  pair_count_.assign(pairs_, 0);
  pair_ramp_.assign(pairs_, 0);
  buf_.assign(kSegmentFrames, Frame{});
  spill_.assign(kSegmentFrames, 0.0f);
  isa_ = Isa::kPortable;
#ifdef RACKD_EQ_AVX2
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) isa_ = Isa::kAvx2Fma;
#endif
  for (Band& b : bands_) {
    BandParams t = b.target;  // validated by set_band, but for the old rate
    t.freq_hz = clamp_freq(t.freq_hz, rate_hz_);
    retarget(b, t, true);
  }
  reset();
}

void Equalizer::set_preamp_db(double db) noexcept RACKD_RT {
  if (!(std::fabs(db) < 200.0)) db = 0.0;
  preamp_target_ = std::exp(db * (std::numbers::ln10 / 20.0));
}

void Equalizer::set_band(int index, const BandParams& band) noexcept RACKD_RT {
  if (index < 0 || index >= kMaxBands) return;
  Band& b = bands_[index];
  BandParams t = band;
  const int type = static_cast<int>(t.type);
  if (type < 0 || type >= kBandTypeCount) t.type = BandType::kPeak;
  if (!(std::fabs(t.gain_db) < 200.0)) t.gain_db = 0.0;
  if (!(t.q >= kMinQ)) t.q = t.q > 0 ? kMinQ : kButterworthQ;
  t.freq_hz = clamp_freq(t.freq_hz, rate_hz_);
  if (t.channel < 0 || t.channel > kMaxBandChannel) t.channel = -1;  // never sounds
  if (t.on == b.target.on && t.type == b.target.type && t.freq_hz == b.target.freq_hz &&
      t.gain_db == b.target.gain_db && t.q == b.target.q && t.channel == b.target.channel) {
    return;
  }
  retarget(b, t, false);
}

void Equalizer::retarget(Band& b, const BandParams& t, bool all) noexcept RACKD_RT {
  // The exact values a band designs from once it arrives (libm; a change costs
  // these once, the glide towards them uses fast_exp).
  if (all || t.freq_hz != b.target.freq_hz) {
    b.target_g = tan_for(t.freq_hz, rate_hz_);
    b.target_ln_g = std::log(b.target_g);
  }
  if (all || t.gain_db != b.target.gain_db) b.target_a = cookbook_a(t.gain_db);
  if (all || t.q != b.target.q) {
    b.target_q = std::min(t.q, 1e3);
    b.target_ln_q = std::log(b.target_q);
  }
  b.target = t;
  b.dirty = true;
  glide_pending_ = true;
}

void Equalizer::reset() noexcept RACKD_RT {
  std::fill(states_.begin(), states_.end(), State{});
  snap_ = true;
}

bool Equalizer::moving() const noexcept {
  if (preamp_now_ != preamp_target_) return true;
  for (const Band& b : bands_) {
    if (b.moving || b.dirty) return true;
  }
  return false;
}

int Equalizer::active_bands() const noexcept {
  int n = 0;
  for (const Band& b : bands_) n += b.mix > 0 ? 1 : 0;
  return n;
}

Equalizer::Placement Equalizer::placement(int channel) const noexcept {
  if (channel == 0) return {-2, 3};
  if (channel < 0 || static_cast<uint32_t>(channel) > channels_) return {-1, 0};
  return {(channel - 1) / 2, 1 << ((channel - 1) & 1)};
}

void Equalizer::clear_band_states(int band) noexcept RACKD_RT {
  for (uint32_t p = 0; p < pairs_; ++p) states_[std::size_t{p} * kMaxBands + band] = State{};
}

void Equalizer::snap_to_targets() noexcept RACKD_RT {
  for (Band& b : bands_) {
    b.type = b.target.type;
    b.channel = b.target.channel;
    b.at = placement(b.channel);
    b.ln_g = b.target_ln_g;
    b.gain_db = b.target.gain_db;
    b.ln_q = b.target_ln_q;
    b.mix = b.target.on && b.at.pair != -1 ? 1.0 : 0.0;
    design_band(b, b.now);
    b.moving = false;
    b.dirty = false;
  }
  preamp_now_ = preamp_target_;
  glide_pending_ = true;  // the band lists follow
}

void Equalizer::design_band(const Band& b, Kernel& out) const noexcept RACKD_RT {
  if (b.mix <= 0.0) {
    out = kIdentity;
    return;
  }
  // Exact (libm, from set_band) where the glide has arrived, fast_exp between.
  const bool g_there = b.ln_g == b.target_ln_g, a_there = b.gain_db == b.target.gain_db;
  double g = b.target_g, a = b.target_a, q = b.target_q;
  if (!g_there || !a_there) {
    const V2 e = fast_exp(V2{b.ln_g, b.gain_db * (std::numbers::ln10 / 40.0)});
    if (!g_there) g = e[0];
    if (!a_there) a = e[1];
  }
  if (b.ln_q != b.target_ln_q) q = fast_exp(V2{b.ln_q, b.ln_q})[0];
  to_kernel(design_at(b.type, g, a, q), b.mix, b.at.lanes, out);
}

void Equalizer::step_glide(uint32_t frames) noexcept RACKD_RT {
  const double alpha = frames == kSegmentFrames || smoothing_frames_ <= 0
                           ? alpha_segment_
                           : -std::expm1(-static_cast<double>(frames) / smoothing_frames_);
  const double inv_steps = 1.0 / ((frames + kStepFrames - 1) / kStepFrames);
  bool pending = false;
  std::fill(pair_count_.begin(), pair_count_.end(), 0);
  std::fill(pair_ramp_.begin(), pair_ramp_.end(), 0);
  for (int i = 0; i < kMaxBands; ++i) {
    Band& b = bands_[i];
    bool ramp = false;
    if (!b.moving && !b.dirty) {
      if (b.mix <= 0.0) continue;  // off and faded out: costs nothing
      seg_kernel_[i] = b.now;
    } else {
      const double mix_before = b.mix;
      if ((b.type != b.target.type || b.channel != b.target.channel) && b.mix <= 0.0) {
        // Silent: swap type and channel, jump to the new settings, start from rest.
        b.type = b.target.type;
        b.channel = b.target.channel;
        b.at = placement(b.channel);
        b.ln_g = b.target_ln_g;
        b.gain_db = b.target.gain_db;
        b.ln_q = b.target_ln_q;
        clear_band_states(i);
      }
      const bool swapped = b.type == b.target.type && b.channel == b.target.channel;
      const double mix_target =
          b.target.on && swapped && b.at.pair != -1 ? 1.0 : 0.0;
      bool moving = glide(b.mix, mix_target, alpha, kSnapMix);
      if (swapped) {
        moving |= glide(b.ln_g, b.target_ln_g, alpha, kSnapLn);
        moving |= glide(b.gain_db, b.target.gain_db, alpha, kSnapDb);
        moving |= glide(b.ln_q, b.target_ln_q, alpha, kSnapLn);
      } else {
        moving = true;  // still fading out before the swap
      }
      b.moving = moving;
      b.dirty = false;
      pending |= moving;
      Kernel end;
      design_band(b, end);
      if (mix_before <= 0.0 && b.mix <= 0.0) {
        // Stays silent this segment (off, or about to swap).
        b.now = end;
        continue;
      }
      if (mix_before <= 0.0) clear_band_states(i);
      // From b.now to `end` in `steps` equal steps, the first one taken now.
      Kernel& k = seg_kernel_[i];
      Kernel& d = seg_step_[i];
      Kernel& now = b.now;
      d.m11 = (end.m11 - now.m11) * inv_steps, k.m11 = now.m11 + d.m11;
      d.b1 = (end.b1 - now.b1) * inv_steps, k.b1 = now.b1 + d.b1;
      d.b2 = (end.b2 - now.b2) * inv_steps, k.b2 = now.b2 + d.b2;
      d.c1 = (end.c1 - now.c1) * inv_steps, k.c1 = now.c1 + d.c1;
      d.c2 = (end.c2 - now.c2) * inv_steps, k.c2 = now.c2 + d.c2;
      d.d = (end.d - now.d) * inv_steps, k.d = now.d + d.d;
      now = end;
      ramp = true;
      pending = true;  // the next segment holds it still again
    }
    // Only a band that sounds gets here, so b.at.pair != -1.
    const uint32_t first = b.at.pair == -2 ? 0 : static_cast<uint32_t>(b.at.pair);
    const uint32_t last = b.at.pair == -2 ? pairs_ : first + 1;
    for (uint32_t p = first; p < last; ++p) {
      const std::size_t slot = std::size_t{p} * kMaxBands + pair_count_[p]++;
      pair_kernel_[slot] = &seg_kernel_[i];
      pair_step_[slot] = ramp ? &seg_step_[i] : &kNoStep;
      pair_state_[slot] = &states_[std::size_t{p} * kMaxBands + i];
      pair_ramp_[p] |= ramp ? 1 : 0;
    }
  }
  glide_pending_ = pending;
}

void Equalizer::process(const float* const* in, float* const* out, uint32_t frames) noexcept RACKD_RT {
  if (channels_ == 0) return;
  if (snap_) {
    snap_to_targets();
    snap_ = false;
  }
  static constexpr float kSilence[kSegmentFrames] = {};
  bool (*run_pair)(const PairJob&) noexcept RACKD_RT = run_pair_portable;
#ifdef RACKD_EQ_AVX2
  if (isa_ == Isa::kAvx2Fma) run_pair = run_pair_avx2;
#endif
  for (uint32_t offset = 0; offset < frames; offset += kSegmentFrames) {
    const uint32_t n = std::min(kSegmentFrames, frames - offset);
    if (glide_pending_) step_glide(n);
    const double gain0 = preamp_now_;
    if (preamp_now_ != preamp_target_) {
      const double alpha = n == kSegmentFrames || smoothing_frames_ <= 0
                               ? alpha_segment_
                               : -std::expm1(-static_cast<double>(n) / smoothing_frames_);
      glide(preamp_now_, preamp_target_, alpha, kSnapGain * preamp_target_);
    }
    PairJob job;
    job.frames = n;
    job.gain0 = gain0;
    job.gain_step = (preamp_now_ - gain0) / n;
    job.buf = buf_.data();
    for (uint32_t p = 0; p < pairs_; ++p) {
      const uint32_t c0 = 2 * p, c1 = 2 * p + 1;
      const bool has_c1 = c1 < channels_;
      job.in0 = in[c0] + offset;
      job.in1 = has_c1 ? in[c1] + offset : kSilence;
      job.out0 = out[c0] + offset;
      job.out1 = has_c1 ? out[c1] + offset : spill_.data();
      const std::size_t row = std::size_t{p} * kMaxBands;
      job.kernel = &pair_kernel_[row];
      job.step = &pair_step_[row];
      job.state = &pair_state_[row];
      job.count = pair_count_[p];
      job.ramp = pair_ramp_[p] != 0;
      if (!run_pair(job)) {
        std::fill_n(&states_[row], kMaxBands, State{});
        ++nonfinite_resets_;
      }
    }
  }
}

}  // namespace rackd::eq
