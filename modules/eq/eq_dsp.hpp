// Equalizer: the eq module's DSP. Pure: no shared memory, no OSC, no threads.
// Band design (RBJ Audio EQ Cookbook responses, realised as TPT state-variable
// filters, double precision) and the smoothed multi-band process(). setup()
// allocates and may throw ([setup]); set_*() and process() are [rt] and run on
// the module's audio thread. Implemented in eq_dsp.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "shm/rt.hpp"

namespace rackd::eq {

inline constexpr int kMaxBands = 32;

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

// Multi-band equalizer for 1..32 channels, all channels sharing one band set
// (linked). Parameter changes are targets: process() glides to them (see the
// modulation notes in eq_dsp.cpp), so any change made at a block boundary is
// free of clicks and zipper noise. The first block after setup()/reset() starts
// at the targets without gliding.
class Equalizer {
 public:
  static constexpr double kDefaultSmoothingMs = 10.0;  // time constant of the glide
  static constexpr uint32_t kSegmentFrames = 32;       // coefficient re-design interval

  // [setup] smoothing_ms = 0 applies changes at the next segment without a
  // glide (for tests that need a click to detect).
  void setup(double rate_hz, uint32_t channels, double smoothing_ms = kDefaultSmoothingMs);

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
  uint64_t nonfinite_resets() const noexcept { return nonfinite_resets_; }
  int active_bands() const noexcept;            // bands that cost CPU now
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
  // One band in state-space form, derived from SvfCoefs (see eq_dsp.cpp):
  //   u = x - ic2;  y = c1*ic1 + c2*ic2 + d*x
  //   ic1 = m11*ic1 + b1*u;  ic2 = ic2 + b1*ic1 + b2*u   (right side: old ic)
  // Each coefficient is stored broadcast to both lanes, so the kernel multiplies
  // straight from memory (SSE2 has no cheap scalar broadcast).
  struct Kernel {
    V2 m11, b1, b2, c1, c2, d;
  };

 private:
  struct Band {
    BandParams target;
    // Glide position: what the coefficients were designed from at the end of
    // the last segment. Frequency and Q glide in log2, gain in dB; `mix` fades
    // between identity (0) and the band's response (1) for on/off and type
    // changes (a type change fades out, swaps, fades in).
    BandType type = BandType::kPeak;
    double log2_hz = 0, gain_db = 0, log2_q = 0, mix = 0;
    double target_log2_hz = 0, target_log2_q = 0;  // of `target`, computed in set_band
    // Caches of the design's transcendental functions, keyed by their inputs.
    double cache_log2_hz = -1e9, tan_w = 0;  // tan(pi*fc/fs)
    double cache_gain_db = -1e9, a = 1;      // 10^(gain/40)
    double cache_log2_q = -1e9, q = 1;       // Q
    Kernel now;                            // coefficients at the segment start
    bool moving = false;
    bool dirty = true;                     // target changed since the last glide step
  };

  // [rt] Per-segment glide step; fills the active list, starts and deltas.
  void step_glide(uint32_t frames) noexcept RACKD_RT;
  void snap_to_targets() noexcept RACKD_RT;
  Kernel band_kernel(Band& b) noexcept RACKD_RT;
  void scrub_states() noexcept RACKD_RT;

  double rate_hz_ = 48000.0;
  uint32_t channels_ = 0;
  uint32_t pairs_ = 0;
  double smoothing_frames_ = 480.0;
  double alpha_segment_ = 1.0;  // one-pole step for a full segment
  bool snap_ = true;

  Band bands_[kMaxBands];
  double preamp_target_ = 1.0, preamp_now_ = 1.0;

  // Per segment: active bands in order, their start coefficients and per-frame
  // deltas (zero unless the band moves).
  int active_[kMaxBands] = {};
  int active_count_ = 0;
  bool any_moving_ = false;
  Kernel start_[kMaxBands];
  Kernel delta_[kMaxBands];

  std::vector<State> states_;   // pairs_ x kMaxBands
  std::vector<Frame> buf_;      // kSegmentFrames frames of the pair being processed
  uint64_t nonfinite_resets_ = 0;
};

}  // namespace rackd::eq
