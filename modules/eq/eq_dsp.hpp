// Equalizer: the eq module's DSP. Pure: no shared memory, no OSC, no threads.
// Band design (RBJ Audio EQ Cookbook responses, realised as TPT state-variable
// filters, double precision) and the smoothed multi-band process(). setup()
// and use_portable_kernels() allocate or choose code and may throw ([setup]);
// set_*(), reset() and process() are [rt] and run on the module's audio
// thread. Implemented in eq_dsp.cpp; the per-sample kernels in eq_kernels.*.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "shm/rt.hpp"

namespace rackd::eq {

inline constexpr int kMaxBands = 32;
// Highest value of `band/<n>/channel` (channels are 1-based; 0 means all).
inline constexpr int kMaxBandChannel = 32;

// Band types. The numeric value is the `band/<n>/type` parameter (kInt), so
// this order is part of the OSC contract: append only, never reorder.
enum class BandType : int {
  kPeak = 0,            // peaking EQ, gain + Q
  kLowShelf = 1,        // low shelf, gain + Q (APO "LSC")
  kHighShelf = 2,       // high shelf, gain + Q (APO "HSC")
  kLowShelfFixed = 3,   // low shelf at Q = 1/sqrt(2), i.e. cookbook slope S = 1 (APO "LS")
  kHighShelfFixed = 4,  // high shelf at Q = 1/sqrt(2) (APO "HS")
  kLowPass = 5,         // 2nd-order Butterworth low-pass, Q fixed at 1/sqrt(2) (APO "LP")
  kHighPass = 6,        // 2nd-order Butterworth high-pass (APO "HP")
  kLowPassQ = 7,        // low-pass with Q (APO "LPQ")
  kHighPassQ = 8,       // high-pass with Q (APO "HPQ")
  kBandPass = 9,        // band-pass, constant 0 dB peak gain (APO "BP")
  kNotch = 10,          // notch (APO "NO")
  kAllPass = 11,        // all-pass (APO "AP")
};
inline constexpr int kBandTypeCount = 12;
inline constexpr double kButterworthQ = 0.70710678118654752440;

// [any] "peak", "low_shelf", ... (the names patches use); "" for an invalid value.
std::string_view band_type_name(BandType type) noexcept;
// [any] Parses a patch name ("peak", ...) or an APO short code ("PK", "LSC", ...).
std::optional<BandType> band_type_from_name(std::string_view name) noexcept;
// [any] True for the types whose response uses `gain_db` / `q`.
bool band_type_uses_gain(BandType type) noexcept;
bool band_type_uses_q(BandType type) noexcept;

struct BandParams {
  bool on = false;
  BandType type = BandType::kPeak;
  double freq_hz = 1000.0;   // clamped to [1 Hz, 0.49 * rate] by the design
  double gain_db = 0.0;
  double q = kButterworthQ;  // clamped to >= 0.01 by the design
  // 0: every channel (linked, the default). 1..kMaxBandChannel: only that
  // channel (1-based); a band restricted to a channel the instance does not
  // have, or given any other value, is inactive.
  int channel = 0;
};

// Coefficients of one trapezoidal (TPT) state-variable filter, Simper's form:
//   v3 = x - ic2;  v1 = a1*ic1 + a2*v3;  v2 = ic2 + a2*ic1 + a3*v3
//   ic1 = 2*v1 - ic1;  ic2 = 2*v2 - ic2;  y = m0*x + m1*v1 + m2*v2
// with g = tan(pi*fc/fs) (pre-warped), k = 1/Q, a1 = 1/(1+g(g+k)), a2 = g*a1,
// a3 = g*a2. Its transfer function is the bilinear transform, pre-warped at
// fc, of the cookbook's analog prototype, i.e. exactly the cookbook biquad.
struct SvfCoefs {
  double a1 = 1, a2 = 0, a3 = 0;  // the loop: every valid set has 0 < a1, a3 and a1 + a3 < 1
  double m0 = 1, m1 = 0, m2 = 0;  // the output mix: (1, 0, 0) is the identity
};

// [any] Allocation-free design of one band (ignores `on`).
SvfCoefs design(const BandParams& band, double rate_hz) noexcept RACKD_RT;

// Multi-band equalizer for 1..32 channels. Bands apply to every channel
// (linked) unless restricted to one (BandParams::channel). Parameter changes
// are targets: process() glides to them (see the modulation notes in
// eq_dsp.cpp), so any change made at a block boundary is free of clicks and
// zipper noise. The first block after setup()/reset() starts at the targets
// without gliding.
class Equalizer {
 public:
  static constexpr double kDefaultSmoothingMs = 10.0;  // time constant of the glide
  static constexpr uint32_t kSegmentFrames = 64;       // glide step and re-design interval
  static constexpr uint32_t kStepFrames = 4;           // coefficients held this long while gliding

  // Kernel builds: process() runs one, chosen by setup() from the CPU.
  enum class Isa {
    kPortable,  // the baseline target (SSE2 on x86-64, NEON on AArch64)
    kAvx2Fma,   // x86-64 with AVX2 and FMA: VEX encoding, fused multiply-adds
  };

  Equalizer() = default;
  // The per-pair band lists point into the object itself: neither copied nor moved.
  Equalizer(const Equalizer&) = delete;
  Equalizer& operator=(const Equalizer&) = delete;

  // [setup] smoothing_ms = 0 applies changes at the next segment without a
  // glide (for tests that need a click to detect).
  void setup(double rate_hz, uint32_t channels, double smoothing_ms = kDefaultSmoothingMs);
  // [setup] Runs the portable build even where AVX2+FMA exist (tests compare
  // the two, the benchmark reports both). Call after setup().
  void use_portable_kernels() noexcept { isa_ = Isa::kPortable; }
  Isa isa() const noexcept { return isa_; }

  // [rt] Targets. `index` < kMaxBands; out-of-range indices are ignored.
  void set_preamp_db(double db) noexcept RACKD_RT;
  void set_band(int index, const BandParams& band) noexcept RACKD_RT;

  // [rt] out[c] = eq(in[c]) for c < channels (as given to setup). in[c] may
  // equal out[c]. Float denormals in the input are read as zero, outputs below
  // 1e-30 are written as zero, and a filter state that turns non-finite (NaN or
  // Inf input) is reset to zero at the next segment boundary.
  void process(const float* const* in, float* const* out, uint32_t frames) noexcept RACKD_RT;

  // [rt] Clears filter states; the next block starts at the targets.
  void reset() noexcept RACKD_RT;

  // [any] For tests, benchmarks and meters.
  bool moving() const noexcept;                 // any glide still in progress
  bool any_subnormal_state() const noexcept;    // a filter state holds a subnormal double
  uint64_t nonfinite_resets() const noexcept { return nonfinite_resets_; }
  int active_bands() const noexcept;            // bands that cost CPU now (on some channel)
  uint32_t channels() const noexcept { return channels_; }

  // Two channels in one SSE2/NEON register (GCC/clang vector extension): the
  // kernels process channel pairs, so stereo costs what mono costs.
  typedef double V2 __attribute__((vector_size(16)));
  struct State {
    V2 ic1, ic2;  // the two integrator states of one band, for one channel pair
  };
  struct Frame {
    V2 v;         // one frame of one channel pair
  };
  // One band in state-space form, derived from SvfCoefs (see eq_kernels.hpp):
  //   u = x - ic2;  y = c1*ic1 + c2*ic2 + d*x
  //   ic1 = m11*ic1 + b1*u;  ic2 = ic2 + b1*ic1 + b2*u   (right side: old ic)
  // Each coefficient is stored per lane, so the kernel multiplies straight from
  // memory: both lanes alike for a linked band; for a band restricted to one
  // channel, the other lane holds the identity (m11 = d = 1, the rest 0), which
  // passes its input through bit for bit.
  struct Kernel {
    V2 m11, b1, b2, c1, c2, d;
  };

 private:
  // Where a band runs: on every channel pair (pair == -2, lanes == 3), or on one
  // lane of one pair (the other lane passes its input through), or nowhere
  // (pair == -1: a channel this instance does not have).
  struct Placement {
    int pair;
    int lanes;  // bit 0: lane 0 (even channels), bit 1: lane 1 (odd channels)
  };
  Placement placement(int channel) const noexcept;

  struct Band {
    BandParams target;
    // Glide position: what the coefficients were designed from at the end of
    // the last segment, in the domains the glide is linear in: ln g (g =
    // tan(pi*fc/fs), the pre-warped frequency: log frequency, stretched near
    // Nyquist), gain in dB and ln Q. `mix` fades between identity (0) and the
    // band's response (1) for on/off, type and channel changes (a type or
    // channel change fades out, swaps, fades in).
    BandType type = BandType::kPeak;
    int channel = 0;
    Placement at{-2, 3};  // of `channel`
    double ln_g = 0, gain_db = 0, ln_q = 0, mix = 0;
    // Of `target`, computed in set_band: the glide's goals, and the exact g, A
    // (10^(gain/40)) and Q that a band designs from once it has arrived.
    double target_ln_g = 0, target_ln_q = 0;
    double target_g = 0, target_a = 1, target_q = 1;
    Kernel now;                            // coefficients at the segment end
    bool moving = false;
    bool dirty = true;                     // target changed since the last glide step
  };

  // [rt] Per-segment glide step: advances every glide, designs the bands that
  // move, fills seg_kernel_/seg_step_ and the per-pair band lists.
  void step_glide(uint32_t frames) noexcept RACKD_RT;
  void snap_to_targets() noexcept RACKD_RT;
  void design_band(const Band& b, Kernel& out) const noexcept RACKD_RT;
  void clear_band_states(int band) noexcept RACKD_RT;
  // [rt] Type, channel and settings jump to the target (no glide; the caller
  // knows the band is silent).
  void jump_to_target(Band& b) noexcept RACKD_RT;
  // [rt] Takes a validated target; `all` recomputes every derived value (else
  // only those of fields that changed).
  void retarget(Band& b, const BandParams& t, bool all) noexcept RACKD_RT;

  double rate_hz_ = 48000.0;
  uint32_t channels_ = 0;
  uint32_t pairs_ = 0;
  double smoothing_frames_ = 480.0;
  double alpha_segment_ = 1.0;  // one-pole step for a full segment
  bool snap_ = true;
  bool glide_pending_ = true;   // step_glide has work: something moved, changed or just settled
  Isa isa_ = Isa::kPortable;

  Band bands_[kMaxBands];
  double preamp_target_ = 1.0, preamp_now_ = 1.0;

  // Per segment, by band index: the coefficients of the first step and the
  // per-step increment (a band that holds still uses a zero step instead).
  Kernel seg_kernel_[kMaxBands];
  Kernel seg_step_[kMaxBands];

  // Per channel pair p (rows of kMaxBands, the first pair_count_[p] used): the
  // bands that run on it, in band order, as pointers the kernels read.
  std::vector<const Kernel*> pair_kernel_;
  std::vector<const Kernel*> pair_step_;
  std::vector<State*> pair_state_;
  std::vector<int> pair_count_;
  std::vector<uint8_t> pair_ramp_;  // any band of the pair steps this segment

  std::vector<State> states_;   // pairs_ x kMaxBands
  std::vector<Frame> buf_;      // kSegmentFrames frames of the pair being processed
  std::vector<float> spill_;    // kSegmentFrames: the missing lane of an odd channel count
  uint64_t nonfinite_resets_ = 0;
};

}  // namespace rackd::eq
