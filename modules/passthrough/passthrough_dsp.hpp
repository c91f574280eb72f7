// Passthrough: copies input to output with a ramped gain. Pure DSP. [rt] process.
#pragma once

#include <cstdint>

#include "shm/rt.hpp"

namespace rackd::passthrough {

class Passthrough {
 public:
  // [rt] out[c] = in[c] * gain for c < channels. A gain change is ramped linearly
  // over the block. With bypass, or a steady gain of exactly 1, the copy is
  // bit-exact. in and out may not alias.
  void process(const float* const* in, float* const* out, uint32_t channels, uint32_t frames,
               float gain_linear, bool bypass) noexcept RACKD_RT;

 private:
  static constexpr float kUnset = -1.0f;  // before the first block: start at the target
  float gain_now_ = kUnset;
};

}  // namespace rackd::passthrough
