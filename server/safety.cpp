// Safety stage: non-finite scrub and hard limiter. [rt] process.
#include "server/safety.hpp"

#include <cmath>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace rackd::server {

uint32_t count_nonfinite(const float* x, uint32_t n) noexcept {
  uint32_t bad = 0;
  for (uint32_t i = 0; i < n; ++i) bad += is_nonfinite(x[i]) ? 1u : 0u;
  return bad;
}

namespace {

// One sample into a lane of block_stats(): a non-finite one counts as 0.
inline void take(float v, float& sum, float& peak, uint32_t& bad) noexcept RACKD_RT {
  if (is_nonfinite(v)) {
    ++bad;
    return;
  }
  sum += v;
  const float a = std::fabs(v);
  peak = peak > a ? peak : a;
}

}  // namespace

// Over 16 independent lanes, kept in four SSE registers each for the sums and
// peaks: a serial double sum and a libm fmax per sample cost about 4 us per
// 8-channel block of 128, the largest single item of an offline render. Each
// lane sums at most n / 16 samples in float; the lanes are added in double.
BlockStats block_stats(const float* x, uint32_t n) noexcept {
  constexpr uint32_t kLanes = 16;
  float sum[kLanes] = {}, peak[kLanes] = {};
  uint32_t bad[kLanes] = {};
  uint32_t i = 0;
#if defined(__SSE2__)
  {
    const __m128i exp_mask = _mm_set1_epi32(0x7f80'0000);
    const __m128i abs_mask = _mm_set1_epi32(0x7fff'ffff);
    __m128 s[4], p[4];
    __m128i b[4];
    for (int k = 0; k < 4; ++k) {
      s[k] = p[k] = _mm_setzero_ps();
      b[k] = _mm_setzero_si128();
    }
    for (; i + kLanes <= n; i += kLanes) {
      for (int k = 0; k < 4; ++k) {
        const __m128i bits = _mm_castps_si128(_mm_loadu_ps(x + i + 4 * k));
        const __m128i nonfinite = _mm_cmpeq_epi32(_mm_and_si128(bits, exp_mask), exp_mask);  // all ones
        const __m128i kept = _mm_andnot_si128(nonfinite, bits);                              // or +0
        s[k] = _mm_add_ps(s[k], _mm_castsi128_ps(kept));
        p[k] = _mm_max_ps(p[k], _mm_castsi128_ps(_mm_and_si128(kept, abs_mask)));
        b[k] = _mm_sub_epi32(b[k], nonfinite);
      }
    }
    for (int k = 0; k < 4; ++k) {
      _mm_storeu_ps(sum + 4 * k, s[k]);
      _mm_storeu_ps(peak + 4 * k, p[k]);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(bad + 4 * k), b[k]);
    }
  }
#endif
  for (; i + kLanes <= n; i += kLanes)
    for (uint32_t k = 0; k < kLanes; ++k) take(x[i + k], sum[k], peak[k], bad[k]);
  for (uint32_t k = 0; i < n; ++i, ++k) take(x[i], sum[k], peak[k], bad[k]);
  BlockStats st;
  double total = 0.0;
  for (uint32_t k = 0; k < kLanes; ++k) {
    total += sum[k];
    st.peak = st.peak > peak[k] ? st.peak : peak[k];
    st.nonfinite += bad[k];
  }
  const uint32_t finite = n - st.nonfinite;
  st.mean = finite ? static_cast<float>(total / finite) : 0.0f;
  return st;
}

void SafetyStage::setup(double rate_hz, double release_ms) noexcept {
  release_coef_ = 1.0 - std::exp(-1.0 / (release_ms * 1e-3 * rate_hz));
  gain_ = 1.0;
}

uint64_t SafetyStage::release_bound_frames() const noexcept {
  // 1 - gain shrinks by (1 - coef) per frame from at most 1 until below kSnap.
  return static_cast<uint64_t>(std::ceil(std::log(kSnap) / std::log1p(-release_coef_)));
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
    if (gain_ < 1.0) {
      gain_ += (1.0 - gain_) * release_coef_;
      if (gain_ > 1.0 - kSnap) gain_ = 1.0;  // exactly 1: the path is bit-exact again
    }
    if (peak * gain_ > kCeiling) gain_ = kCeiling / static_cast<double>(peak);
    if (gain_ < 1.0) {
      const float g = static_cast<float>(gain_);
      bool changed = false;
      for (uint32_t c = 0; c < channels; ++c) {
        const float x = ch[c][i];
        // Rounding in the product may land one ulp above the ceiling: clamp.
        const float y = std::fmin(std::fmax(x * g, -kCeiling), kCeiling);
        changed |= y != x;
        ch[c][i] = y;
      }
      limited_frames_ += changed ? 1u : 0u;
    }
  }
  return bad;
}

}  // namespace rackd::server
