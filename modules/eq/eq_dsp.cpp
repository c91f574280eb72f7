// Equalizer DSP: band types, band design (cookbook responses as TPT SVFs) and
// the Equalizer's setup, targets, glide and process(); the per-sample kernels
// that process() runs, their speed and their denormal handling are in
// eq_kernels.*. setup() is [setup]; set_*(), reset(), process() and the glide
// run on the module's audio thread ([rt]); names, design() and meters: [any].
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
// held for its 4 frames (why that is free of zipper noise: eq_kernels.cpp).
// On/off, type and channel changes fade the band's output mix between the
// identity and its response (a type or channel change fades out, swaps with
// fresh states, fades in). OSC changes that arrive block by block therefore
// become one continuous motion.
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
#include "modules/eq/eq_dsp.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

#include "modules/eq/eq_kernels.hpp"

namespace rackd::eq {
namespace {

using kernels::fast_exp;
using kernels::Kernel;
using kernels::PairJob;
using kernels::to_kernel;

constexpr double kSnapLn = 1e-5 * std::numbers::ln2;  // glide ends 1e-5 octave from the target
constexpr double kSnapDb = 1e-4;
constexpr double kSnapMix = 1e-5;
constexpr double kSnapGain = 1e-7;     // preamp, linear
constexpr double kMaxFreqFraction = 0.49;  // of the rate: keeps tan() finite
constexpr double kMinQ = 0.01;

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

const Kernel kIdentity = to_kernel(SvfCoefs{}, 0.0, 3);
const Kernel kNoStep{};

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

bool Equalizer::any_subnormal_state() const noexcept {
  for (const State& st : states_) {
    for (int lane = 0; lane < 2; ++lane) {
      if (std::fpclassify(st.ic1[lane]) == FP_SUBNORMAL || std::fpclassify(st.ic2[lane]) == FP_SUBNORMAL)
        return true;
    }
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

void Equalizer::jump_to_target(Band& b) noexcept RACKD_RT {
  b.type = b.target.type;
  b.channel = b.target.channel;
  b.at = placement(b.channel);
  b.ln_g = b.target_ln_g;
  b.gain_db = b.target.gain_db;
  b.ln_q = b.target_ln_q;
}

void Equalizer::snap_to_targets() noexcept RACKD_RT {
  for (Band& b : bands_) {
    jump_to_target(b);
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
        jump_to_target(b);
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
  bool (*run_pair)(const PairJob&) noexcept RACKD_RT = kernels::run_pair_portable;
#ifdef RACKD_EQ_AVX2
  if (isa_ == Isa::kAvx2Fma) run_pair = kernels::run_pair_avx2;
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
