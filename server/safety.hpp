// The last stage before the device: non-finite samples become 0, then a hard
// limiter keeps every sample at or below the ceiling (-0.1 dBFS). Pure DSP,
// [rt] process; no lookahead, so it adds no latency.
//
// The limiter has instant attack (the gain drops on the very sample that would
// exceed the ceiling) and a smooth release; while nothing exceeds the ceiling
// and the gain has recovered, samples pass bit-exact.
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
  float gain() const noexcept { return gain_; }
  uint64_t limited_frames() const noexcept { return limited_frames_; }

 private:
  float release_coef_ = 0.0005f;
  float gain_ = 1.0f;
  uint64_t limited_frames_ = 0;
};

}  // namespace rackd::server
