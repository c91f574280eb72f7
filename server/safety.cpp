// Safety stage: non-finite scrub and hard limiter. [rt] process.
#include "server/safety.hpp"

#include <cmath>

namespace rackd::server {

uint32_t count_nonfinite(const float* x, uint32_t n) noexcept {
  uint32_t bad = 0;
  for (uint32_t i = 0; i < n; ++i) bad += is_nonfinite(x[i]) ? 1u : 0u;
  return bad;
}

BlockStats block_stats(const float* x, uint32_t n) noexcept {
  BlockStats st;
  double sum = 0.0;
  for (uint32_t i = 0; i < n; ++i) {
    if (is_nonfinite(x[i])) {
      ++st.nonfinite;
      continue;
    }
    st.peak = std::fmax(st.peak, std::fabs(x[i]));
    sum += x[i];
  }
  const uint32_t finite = n - st.nonfinite;
  st.mean = finite ? static_cast<float>(sum / finite) : 0.0f;
  return st;
}

void SafetyStage::setup(double rate_hz, double release_ms) noexcept {
  release_coef_ = static_cast<float>(1.0 - std::exp(-1.0 / (release_ms * 1e-3 * rate_hz)));
  gain_ = 1.0f;
}

uint32_t SafetyStage::process(float* const* ch, uint32_t channels, uint32_t frames) noexcept {
  uint32_t bad = 0;
  for (uint32_t c = 0; c < channels; ++c) {
    float* x = ch[c];
    for (uint32_t i = 0; i < frames; ++i) {
      if (is_nonfinite(x[i])) {
        x[i] = 0.0f;
        ++bad;
      }
    }
  }
  for (uint32_t i = 0; i < frames; ++i) {
    float peak = 0.0f;
    for (uint32_t c = 0; c < channels; ++c) peak = std::fmax(peak, std::fabs(ch[c][i]));
    if (gain_ < 1.0f) {
      gain_ += (1.0f - gain_) * release_coef_;
      // Snap to exactly 1 once inaudibly close, so the path is bit-exact again.
      if (gain_ > 0.99999f) gain_ = 1.0f;
    }
    if (peak * gain_ > kCeiling) gain_ = kCeiling / peak;
    if (gain_ < 1.0f) {
      ++limited_frames_;
      for (uint32_t c = 0; c < channels; ++c) {
        float y = ch[c][i] * gain_;
        // Rounding in the product may land one ulp above the ceiling: clamp.
        ch[c][i] = std::fmin(std::fmax(y, -kCeiling), kCeiling);
      }
    }
  }
  return bad;
}

}  // namespace rackd::server
