// Passthrough DSP: copies input to output with a ramped gain. process() is [rt].
#include "modules/passthrough/passthrough_dsp.hpp"

#include <cstring>

namespace rackd::passthrough {

void Passthrough::process(const float* const* in, float* const* out, uint32_t channels,
                          uint32_t frames, float gain_linear, bool bypass) noexcept RACKD_RT {
  const size_t bytes = sizeof(float) * frames;
  // A (re)started module opens at its target gain, not with a ramp from unity.
  if (gain_now_ == kUnset) gain_now_ = gain_linear;
  // Bypass promises the input untouched; leaving it then ramps from unity.
  if (bypass || (gain_now_ == 1.0f && gain_linear == 1.0f)) {
    for (uint32_t c = 0; c < channels; ++c) std::memcpy(out[c], in[c], bytes);
    if (bypass) gain_now_ = 1.0f;
    return;
  }
  if (frames == 0) return;

  // g(i) = target - step * (frames - 1 - i) ends exactly on the target, so the
  // next block starts where this one stopped and a ramp to 0 reaches true zero.
  const float target = gain_linear;
  const float step = (target - gain_now_) / static_cast<float>(frames);
  for (uint32_t c = 0; c < channels; ++c) {
    const float* src = in[c];
    float* dst = out[c];
    if (step == 0.0f) {
      for (uint32_t i = 0; i < frames; ++i) dst[i] = src[i] * target;
    } else {
      for (uint32_t i = 0; i < frames; ++i) {
        dst[i] = src[i] * (target - step * static_cast<float>(frames - 1 - i));
      }
    }
  }
  gain_now_ = target;
}

}  // namespace rackd::passthrough
