// Signal analysis for tests that record real-time output (desktop tests):
// test signals, the offset between a recording and an offline reference, the
// match of one window, steps between samples, tone levels. Test thread only.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "tests/integration/harness.hpp"

namespace rackd::test {

// `channels` channels of silence, one impulse of `amplitude` per channel:
// channel c's at lead_s + c * spacing_s, then tail_s of silence. Float WAV.
Audio impulse_per_channel(int channels, double lead_s, double spacing_s, double tail_s, float amplitude = 0.5f);
// A steady mix of sines (`hz` each at `amplitude`) on every channel listed
// in `on` of `channels`, `seconds` long with 20 ms fades at both ends.
Audio tones(int channels, const std::vector<int>& on, const std::vector<double>& hz, float amplitude, double seconds);

// Frame of `a` where `b` starts: the lag maximising the cross-correlation of
// the two (all channels summed), searched over the whole length of `a` on a
// 32-frame energy envelope, then to the frame on the signals themselves.
// -1 when `b` is silent or longer than `a`.
long find_offset(const Audio& a, const Audio& b);

struct WindowMatch {
  double correlation = 0;  // normalised, all channels together
  double level_db = 0;     // energy of a's window over b's, in dB
};
// Compares a[offset + from, +length) with b[from, +length).
WindowMatch compare_window(const Audio& a, const Audio& b, long offset, size_t from, size_t length);

// The offset within [center - radius, center + radius] where
// a[offset + from, +length) matches b[from, +length) best (normalised).
long best_local_offset(const Audio& a, const Audio& b, long center, long radius, size_t from, size_t length);

// Largest |x[n] - x[n-1]| over all channels in [from, to).
double max_step(const Audio& a, size_t from, size_t to);
// RMS over all channels in [from, to).
double rms(const Audio& a, size_t from, size_t to);
// First frame where any channel exceeds `threshold` at or after `from`; -1 if none.
long first_above(const Audio& a, float threshold, size_t from = 0);
// Level in dB of the `hz` component of channel `ch` over [from, to) (Goertzel).
double tone_db(const Audio& a, size_t ch, size_t from, size_t to, double hz);

}  // namespace rackd::test
