// Offline sample-rate conversion for sound files and HRIR sets. [setup] only:
// it allocates and may throw; nothing here runs on an audio thread.
#pragma once

#include <vector>

namespace rackd::dsp {

// [setup] Band-limited resampling of one channel from `from_hz` to `to_hz`
// (any ratio). Kaiser-windowed sinc (beta 9, 64 taps per side at the lower of
// the two rates) with its cutoff at 0.95 x the lower Nyquist frequency; DC gain
// is exactly 1 at every interpolation phase. Output sample j sits at input time
// j * from_hz / to_hz (no delay); the signal is taken as zero outside `in`.
// Returns round(in.size() * to_hz / from_hz) samples; a plain copy when the
// rates are equal. Throws std::invalid_argument for a rate <= 0.
std::vector<float> resample(const std::vector<float>& in, double from_hz, double to_hz);

}  // namespace rackd::dsp
