// The last stage before the device: non-finite samples become 0, then a hard
// limiter keeps every sample at or below the ceiling (-0.1 dBFS). Pure DSP,
// [rt] process; no lookahead, so it adds no latency.
//
// The limiter has instant attack (the gain drops on the very sample that would
// exceed the ceiling) and an exponential release that ends: the gain is kept
// in double, so each step towards 1 stays larger than the precision it is
// held in, and it snaps to exactly 1 once within 1e-5 of it (-0.0001 dB). From
// any gain that takes at most release_bound_frames() = ln(1e5) time constants
// (576 ms with the default 50 ms). While nothing exceeds the ceiling and the
// gain has recovered, samples pass bit-exact. (A float gain stalled for good at
// 0.9999285, where (1 - gain) * coef is below half an ulp.)
#pragma once

#include <cstdint>

#include "shm/rt.hpp"

namespace rackd::server {

// [any] True for NaN and +-Inf, by bit pattern: safe in files built with
// -ffast-math, where std::isfinite may be folded to true.
inline bool is_nonfinite(float x) noexcept RACKD_RT {
  uint32_t bits;
  __builtin_memcpy(&bits, &x, sizeof bits);
  return (bits & 0x7f80'0000u) == 0x7f80'0000u;
}

// [rt] Number of non-finite samples in `n` floats.
uint32_t count_nonfinite(const float* x, uint32_t n) noexcept RACKD_RT;

struct BlockStats {
  uint32_t nonfinite = 0;
  float peak = 0.0f;   // largest |x| among finite samples
  float mean = 0.0f;   // of finite samples
};
// [rt] One pass over a block: what the scheduler checks every module block for.
BlockStats block_stats(const float* x, uint32_t n) noexcept RACKD_RT;

class SafetyStage {
 public:
  static constexpr float kCeiling = 0.98855309f;  // -0.1 dBFS

  // [setup] Release time constant of the limiter.
  void setup(double rate_hz, double release_ms = 50.0) noexcept;

  // [rt] In place over planar channels. Returns the number of non-finite
  // samples replaced by 0.
  uint32_t process(float* const* ch, uint32_t channels, uint32_t frames) noexcept RACKD_RT;

  // Current limiter gain (1 when idle).
  double gain() const noexcept { return gain_; }
  // Frames in which the limiter changed at least one sample.
  uint64_t limited_frames() const noexcept { return limited_frames_; }
  // Longest release, from any gain back to exactly 1, in frames.
  uint64_t release_bound_frames() const noexcept;

  // Snap point of the release: 1e-5 below unity is -0.0001 dB.
  static constexpr double kSnap = 1e-5;

 private:
  double release_coef_ = 0.0005;
  double gain_ = 1.0;
  uint64_t limited_frames_ = 0;
};

}  // namespace rackd::server
