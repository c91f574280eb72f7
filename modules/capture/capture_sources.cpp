// Capture's signal generators: tone, white noise, exponential sine sweep. All
// [rt]: called from Capture::process() on the module's block thread; each
// writes one channel at amplitude 0.5 (-6 dBFS) before gain.
#include <cmath>
#include <cstdint>

#include "modules/capture/capture_dsp.hpp"

namespace rackd::capture {
namespace {

constexpr double kTwoPi = 6.283185307179586476925;
constexpr double kAmplitude = 0.5;

// Phase is kept in cycles within [0, 1) so its double precision does not decay
// however long the generator runs.
double wrap(double phase) noexcept RACKD_RT { return phase - std::floor(phase); }

}  // namespace

// The frequency ramps linearly from the last block's to freq_hz, reaching it on
// the last frame, and the phase integrates it: no step in phase or frequency.
void Capture::generate_tone(float* out, uint32_t frames, double freq_hz) noexcept RACKD_RT {
  const double from_hz = freq_now_ < 0.0 ? freq_hz : freq_now_;
  const double step_hz = frames > 0 ? (freq_hz - from_hz) / frames : 0.0;
  double phase = phase_;
  for (uint32_t i = 0; i < frames; ++i) {
    out[i] = static_cast<float>(kAmplitude * std::sin(kTwoPi * phase));
    const double hz = freq_hz - step_hz * static_cast<double>(frames - 1 - i);
    phase = wrap(phase + hz / rate_hz_);
  }
  phase_ = phase;
  freq_now_ = freq_hz;
}

// xorshift64* (Vigna): deterministic for a seed, no state beyond one word. The
// top 24 bits give a float in [0, 1) exactly, so the output lies in [-0.5, 0.5).
void Capture::generate_noise(float* out, uint32_t frames) noexcept RACKD_RT {
  uint64_t x = rng_state_;
  for (uint32_t i = 0; i < frames; ++i) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    const uint64_t r = x * 0x2545F4914F6CDD1Dull;
    out[i] = static_cast<float>(r >> 40) * 0x1p-24f - 0.5f;
  }
  rng_state_ = x;
}

// Exponential sweep (Farina): f(n) = start * (end/start)^(n / sweep_frames_).
// The phase integrates f, so it stays continuous when the sweep restarts.
void Capture::generate_sweep(float* out, uint32_t frames) noexcept RACKD_RT {
  const double start_hz = config_.sweep_start_hz;
  const double per_frame = sweep_log_ratio_ / static_cast<double>(sweep_frames_);
  double phase = phase_;
  uint64_t pos = sweep_pos_;
  for (uint32_t i = 0; i < frames; ++i) {
    out[i] = static_cast<float>(kAmplitude * std::sin(kTwoPi * phase));
    const double hz = start_hz * std::exp(per_frame * static_cast<double>(pos));
    phase = wrap(phase + hz / rate_hz_);
    if (++pos == sweep_frames_) pos = 0;
  }
  phase_ = phase;
  sweep_pos_ = pos;
}

}  // namespace rackd::capture
