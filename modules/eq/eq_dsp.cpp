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
// The glide: every kSegmentFrames (32) frames each moving band takes one
// one-pole step (time constant smoothing_ms, 10 ms by default) towards its
// target in log2(frequency), dB and log2(Q), the band is re-designed there
// (tan, exp: a few hundred ns per moving band per segment, nothing when idle),
// and the coefficients are interpolated linearly per sample across the segment.
// On/off and type changes fade the band's output mix between the identity and
// its response (a type change fades out, swaps type with fresh states, fades
// in). OSC changes that arrive block by block therefore become one continuous
// motion, with no coefficient step anywhere.
//
// Stability while moving: the loop matrix of the SVF (zero input) is
//   M = [[2a1 - 1, -2a2], [2a2, 1 - 2a3]]
// and every valid design has 0 < a1, 0 < a3, a1 + a3 < 1 and a2^2 = a1*a3.
// Per-sample values are convex combinations of two designs; they keep the
// linear conditions and satisfy a2^2 <= a1*a3 (Cauchy-Schwarz). From these the
// Jury conditions follow: 1 - tr + det >= 4*a3*(1 - a1) > 0,
// 1 + tr + det >= 4*a1*(1 - a3) > 0, det <= 2(a1 + a3) - 1 < 1 and
// det >= (2a1 - 1)(1 - 2a3) > -1. So every per-sample matrix is stable, and
// the matrices change slowly (one small glide step per segment); the test
// suite also checks random jumps across the whole parameter range.
//
// Speed: the SVF runs in an equivalent state-space form (6 coefficients, the
// same integrator states; x -> y is one multiply-add, so a cascade of bands
// pipelines well), in double precision with a channel pair in one vector
// register. Bands run in chunks of up to four (two while interpolating) per
// pass over the segment, so a chunk's states and ramps stay in registers. Idle
// bands (off and faded out) cost nothing; when nothing moves in a segment, no
// band interpolates.
//
// Denormals: the module thread runs with FTZ/DAZ, and the kernels do not rely
// on it: input float denormals are read as zero (bit test, no FP assist),
// states are double (their denormal range is 1e-308, far below anything a
// 32-frame segment can decay to from the 1e-30 floor), states below 1e-30 are
// flushed to zero at every segment, and outputs below 1e-30 are written as 0.
#include "modules/eq/eq_dsp.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <stdexcept>

namespace rackd::eq {
namespace {

using V2 = Equalizer::V2;
using Kernel = Equalizer::Kernel;

constexpr double kTiny = 1e-30;       // flush threshold for states and outputs
constexpr double kSnapOctaves = 1e-5;  // glide ends this close to the target
constexpr double kSnapDb = 1e-4;
constexpr double kSnapMix = 1e-5;
constexpr double kSnapGain = 1e-7;     // preamp, linear
constexpr double kMaxFreqFraction = 0.49;  // of the rate: keeps tan() finite
constexpr double kMinQ = 0.01;
constexpr int kMaxChunk = 4;
constexpr int kMaxChunkRamp = 2;

constexpr std::string_view kNames[kBandTypeCount] = {
    "peak",     "low_shelf",  "high_shelf", "low_shelf_fixed", "high_shelf_fixed", "low_pass",
    "high_pass", "low_pass_q", "high_pass_q", "band_pass",     "notch",            "all_pass"};
constexpr std::string_view kApoCodes[kBandTypeCount] = {"PK", "LSC", "HSC", "LS", "HS", "LP",
                                                        "HP", "LPQ", "HPQ", "BP", "NO", "AP"};

double cookbook_a(double gain_db) noexcept { return std::exp(gain_db * (std::numbers::ln10 / 40.0)); }

// Design at a given pre-warped tan(pi*fc/fs) and cookbook A = 10^(gain/40),
// which the glide caches.
SvfCoefs design_at(BandType type, double tan_w, double a, double q) noexcept RACKD_RT {
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

// The SVF with output mix `mix` (0: identity) in state-space form. With
// s = (ic1, ic2): v1 = a1*ic1 - a2*ic2 + a2*x, v2 = a2*ic1 + (1-a3)*ic2 + a3*x,
// ic' = 2v - ic, y = m0*x + m1*v1 + m2*v2. The loop part (m11, b1, b2) is affine
// in (a1, a2, a3), so interpolating it linearly interpolates the design's a's.
Kernel to_kernel(const SvfCoefs& c, double mix) noexcept {
  const double m0 = 1 + mix * (c.m0 - 1), m1 = mix * c.m1, m2 = mix * c.m2;
  auto both = [](double v) { return V2{v, v}; };
  Kernel k;
  k.m11 = both(2 * c.a1 - 1);
  k.b1 = both(2 * c.a2);
  k.b2 = both(2 * c.a3);
  k.c1 = both(m1 * c.a1 + m2 * c.a2);
  k.c2 = both(-m1 * c.a2 + m2 * (1 - c.a3));
  k.d = both(m0 + m1 * c.a2 + m2 * c.a3);
  return k;
}

const Kernel kIdentity = to_kernel(SvfCoefs{}, 0.0);

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

bool finite_bits(double v) noexcept {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return (bits & 0x7ff0'0000'0000'0000ull) != 0x7ff0'0000'0000'0000ull;
}

// Reads a float sample, with float denormals (and -0) as +0. An integer test,
// so a denormal never reaches the FPU without DAZ.
double load_sample(const float* p) noexcept {
  uint32_t bits;
  std::memcpy(&bits, p, sizeof bits);
  if ((bits & 0x7f80'0000u) == 0) return 0.0;
  return static_cast<double>(*p);
}

float store_sample(double v) noexcept {
  return std::fabs(v) < kTiny ? 0.0f : static_cast<float>(v);
}

// [rt] The kernel: N bands (N <= kMaxChunk) over `frames` frames of one channel
// pair, in place. With kRamp each coefficient advances by its delta before each
// frame, so the last frame uses start + frames * delta (the segment's end).
template <int N, bool kRamp>
void run_chunk(const Kernel* start, const Kernel* delta, Equalizer::State* const* states,
               Equalizer::Frame* buf, uint32_t frames) noexcept RACKD_RT {
  // Static coefficients are read from memory as they are; ramped ones advance
  // in a local copy.
  Kernel ramp[kRamp ? N : 1];
  V2 s1[N], s2[N];
  for (int j = 0; j < N; ++j) {
    if constexpr (kRamp) ramp[j] = start[j];
    s1[j] = states[j]->ic1;
    s2[j] = states[j]->ic2;
  }
  const Kernel* k = kRamp ? ramp : start;
  for (uint32_t i = 0; i < frames; ++i) {
    V2 x = buf[i].v;
    // Unrolled so that the states of the chunk live in registers.
#pragma GCC unroll 4
    for (int j = 0; j < N; ++j) {
      if constexpr (kRamp) {
        Kernel& r = ramp[j];
        const Kernel& d = delta[j];
        r.m11 += d.m11, r.b1 += d.b1, r.b2 += d.b2, r.c1 += d.c1, r.c2 += d.c2, r.d += d.d;
      }
      const V2 a = s1[j], b = s2[j];
      const V2 u = x - b;
      const V2 y = k[j].c1 * a + k[j].c2 * b + k[j].d * x;
      s1[j] = k[j].m11 * a + k[j].b1 * u;
      s2[j] = b + k[j].b1 * a + k[j].b2 * u;
      x = y;
    }
    buf[i].v = x;
  }
  for (int j = 0; j < N; ++j) {
    states[j]->ic1 = s1[j];
    states[j]->ic2 = s2[j];
  }
}

template <bool kRamp>
void run_bands(const Kernel* start, const Kernel* delta, Equalizer::State* const* states, int count,
               Equalizer::Frame* buf, uint32_t frames) noexcept RACKD_RT {
  // Ramped chunks carry their coefficients in registers too: fewer per pass.
  constexpr int kChunk = kRamp ? kMaxChunkRamp : kMaxChunk;
  int j = 0;
  for (; j + kChunk <= count; j += kChunk) {
    run_chunk<kChunk, kRamp>(start + j, delta + j, states + j, buf, frames);
  }
  switch (count - j) {
    case 3: run_chunk<3, kRamp>(start + j, delta + j, states + j, buf, frames); break;
    case 2: run_chunk<2, kRamp>(start + j, delta + j, states + j, buf, frames); break;
    case 1: run_chunk<1, kRamp>(start + j, delta + j, states + j, buf, frames); break;
    default: break;
  }
}

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
  buf_.assign(kSegmentFrames, Frame{});
  for (int i = 0; i < kMaxBands; ++i) set_band(i, bands_[i].target);
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
  if (t.on == b.target.on && t.type == b.target.type && t.freq_hz == b.target.freq_hz &&
      t.gain_db == b.target.gain_db && t.q == b.target.q && !b.dirty) {
    return;
  }
  b.target = t;
  b.target_log2_hz = std::log2(t.freq_hz);
  b.target_log2_q = std::log2(std::min(t.q, 1e3));
  b.dirty = true;
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

void Equalizer::snap_to_targets() noexcept RACKD_RT {
  for (Band& b : bands_) {
    b.type = b.target.type;
    b.log2_hz = b.target_log2_hz;
    b.gain_db = b.target.gain_db;
    b.log2_q = b.target_log2_q;
    b.mix = b.target.on ? 1.0 : 0.0;
    b.now = band_kernel(b);
    b.moving = false;
    b.dirty = false;
  }
  preamp_now_ = preamp_target_;
}

Kernel Equalizer::band_kernel(Band& b) noexcept RACKD_RT {
  if (b.mix <= 0.0) return kIdentity;
  // Only what moved is recomputed (tan, exp and exp2 dominate the design).
  if (b.cache_log2_hz != b.log2_hz) {
    b.tan_w = tan_for(std::exp2(b.log2_hz), rate_hz_);
    b.cache_log2_hz = b.log2_hz;
  }
  if (b.cache_gain_db != b.gain_db) {
    b.a = cookbook_a(b.gain_db);
    b.cache_gain_db = b.gain_db;
  }
  if (b.cache_log2_q != b.log2_q) {
    b.q = std::exp2(b.log2_q);
    b.cache_log2_q = b.log2_q;
  }
  return to_kernel(design_at(b.type, b.tan_w, b.a, b.q), b.mix);
}

void Equalizer::step_glide(uint32_t frames) noexcept RACKD_RT {
  const double alpha = frames == kSegmentFrames || smoothing_frames_ <= 0
                           ? alpha_segment_
                           : -std::expm1(-static_cast<double>(frames) / smoothing_frames_);
  const double inv_frames = 1.0 / frames;
  active_count_ = 0;
  any_moving_ = false;
  for (int i = 0; i < kMaxBands; ++i) {
    Band& b = bands_[i];
    if (!b.moving && !b.dirty) {
      if (b.mix <= 0.0) continue;  // off and faded out: costs nothing
      start_[active_count_] = b.now;
      delta_[active_count_] = Kernel{};
      active_[active_count_++] = i;
      continue;
    }
    const double mix_before = b.mix;
    if (b.type != b.target.type && b.mix <= 0.0) {
      // Silent: swap the type, jump to the new settings, start from rest.
      b.type = b.target.type;
      b.log2_hz = b.target_log2_hz;
      b.gain_db = b.target.gain_db;
      b.log2_q = b.target_log2_q;
      for (uint32_t p = 0; p < pairs_; ++p) states_[std::size_t{p} * kMaxBands + i] = State{};
    }
    const double mix_target = b.target.on && b.type == b.target.type ? 1.0 : 0.0;
    bool moving = glide(b.mix, mix_target, alpha, kSnapMix);
    if (b.type == b.target.type) {
      moving |= glide(b.log2_hz, b.target_log2_hz, alpha, kSnapOctaves);
      moving |= glide(b.gain_db, b.target.gain_db, alpha, kSnapDb);
      moving |= glide(b.log2_q, b.target_log2_q, alpha, kSnapOctaves);
    } else {
      moving = true;  // still fading out before the swap
    }
    b.moving = moving;
    b.dirty = false;
    const Kernel end = band_kernel(b);
    if (mix_before <= 0.0 && b.mix <= 0.0) {
      // Stays silent this segment (off, or about to swap type).
      b.now = end;
      continue;
    }
    if (mix_before <= 0.0) {
      for (uint32_t p = 0; p < pairs_; ++p) states_[std::size_t{p} * kMaxBands + i] = State{};
    }
    const Kernel& s = b.now;
    Kernel d;
    const V2 inv = {inv_frames, inv_frames};
    d.m11 = (end.m11 - s.m11) * inv, d.b1 = (end.b1 - s.b1) * inv, d.b2 = (end.b2 - s.b2) * inv;
    d.c1 = (end.c1 - s.c1) * inv, d.c2 = (end.c2 - s.c2) * inv, d.d = (end.d - s.d) * inv;
    start_[active_count_] = s;
    delta_[active_count_] = d;
    active_[active_count_++] = i;
    any_moving_ = true;
    b.now = end;
  }
}

void Equalizer::scrub_states() noexcept RACKD_RT {
  for (uint32_t p = 0; p < pairs_; ++p) {
    State* row = &states_[std::size_t{p} * kMaxBands];
    bool finite = true;
    for (int j = 0; j < active_count_; ++j) {
      State& s = row[active_[j]];
      for (int lane = 0; lane < 2; ++lane) {
        finite = finite && finite_bits(s.ic1[lane]) && finite_bits(s.ic2[lane]);
        if (std::fabs(s.ic1[lane]) < kTiny) s.ic1[lane] = 0.0;
        if (std::fabs(s.ic2[lane]) < kTiny) s.ic2[lane] = 0.0;
      }
    }
    if (!finite) {
      for (int j = 0; j < kMaxBands; ++j) row[j] = State{};
      ++nonfinite_resets_;
    }
  }
}

void Equalizer::process(const float* const* in, float* const* out, uint32_t frames) noexcept RACKD_RT {
  if (channels_ == 0) return;
  if (snap_) {
    snap_to_targets();
    snap_ = false;
  }
  State* chunk_states[kMaxBands];
  for (uint32_t offset = 0; offset < frames; offset += kSegmentFrames) {
    const uint32_t n = std::min(kSegmentFrames, frames - offset);
    step_glide(n);
    const double gain_start = preamp_now_;
    {
      const double alpha = n == kSegmentFrames || smoothing_frames_ <= 0
                               ? alpha_segment_
                               : -std::expm1(-static_cast<double>(n) / smoothing_frames_);
      glide(preamp_now_, preamp_target_, alpha, kSnapGain * preamp_target_);
    }
    const double gain_step = (preamp_now_ - gain_start) / n;

    for (uint32_t p = 0; p < pairs_; ++p) {
      const uint32_t c0 = 2 * p, c1 = 2 * p + 1;
      const float* in0 = in[c0] + offset;
      const float* in1 = c1 < channels_ ? in[c1] + offset : nullptr;
      Frame* buf = buf_.data();
      for (uint32_t i = 0; i < n; ++i) {
        const double g = gain_start + gain_step * (i + 1);
        const V2 x = {load_sample(in0 + i), in1 ? load_sample(in1 + i) : 0.0};
        buf[i].v = x * g;
      }
      State* row = &states_[std::size_t{p} * kMaxBands];
      for (int j = 0; j < active_count_; ++j) chunk_states[j] = &row[active_[j]];
      if (any_moving_) {
        run_bands<true>(start_, delta_, chunk_states, active_count_, buf, n);
      } else {
        run_bands<false>(start_, delta_, chunk_states, active_count_, buf, n);
      }
      float* out0 = out[c0] + offset;
      for (uint32_t i = 0; i < n; ++i) out0[i] = store_sample(buf[i].v[0]);
      if (c1 < channels_) {
        float* out1 = out[c1] + offset;
        for (uint32_t i = 0; i < n; ++i) out1[i] = store_sample(buf[i].v[1]);
      }
    }
    scrub_states();
  }
}

}  // namespace rackd::eq
