// Signal analysis for recorded real-time output (see signal_match.hpp).
// Test thread only.
#include "tests/integration/signal_match.hpp"

#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <numbers>

namespace rackd::test {
namespace {

constexpr int kFloatWav = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
constexpr size_t kEnvelopeFrames = 32;

std::vector<double> envelope(const Audio& a) {
  std::vector<double> e(a.frames() / kEnvelopeFrames, 0.0);
  for (const auto& ch : a.ch)
    for (size_t i = 0; i < e.size() * kEnvelopeFrames; ++i) e[i / kEnvelopeFrames] += double(ch[i]) * ch[i];
  for (auto& v : e) v = std::sqrt(v);
  return e;
}

// Correlation of a (shifted by lag) and b over b's length, all channels.
double correlation_at(const Audio& a, const Audio& b, long lag) {
  double s = 0;
  const size_t n = std::min(b.frames(), a.frames() - static_cast<size_t>(lag));
  for (size_t c = 0; c < std::min(a.ch.size(), b.ch.size()); ++c)
    for (size_t i = 0; i < n; ++i) s += double(a.ch[c][lag + i]) * b.ch[c][i];
  return s;
}

}  // namespace

Audio impulse_per_channel(int channels, double lead_s, double spacing_s, double tail_s, float amplitude) {
  Audio a;
  a.format = kFloatWav;
  const size_t frames = static_cast<size_t>((lead_s + spacing_s * (channels - 1) + tail_s) * a.rate);
  a.ch.assign(channels, std::vector<float>(frames, 0.0f));
  for (int c = 0; c < channels; ++c) a.ch[c][static_cast<size_t>((lead_s + spacing_s * c) * a.rate)] = amplitude;
  return a;
}

Audio tones(int channels, const std::vector<int>& on, const std::vector<double>& hz, float amplitude, double seconds) {
  Audio a;
  a.format = kFloatWav;
  const size_t frames = static_cast<size_t>(seconds * a.rate);
  const size_t fade = static_cast<size_t>(0.02 * a.rate);
  a.ch.assign(channels, std::vector<float>(frames, 0.0f));
  for (size_t i = 0; i < frames; ++i) {
    double v = 0;
    for (double f : hz) v += amplitude * std::sin(2 * std::numbers::pi * f * double(i) / a.rate);
    const double g = std::min({1.0, double(i) / fade, double(frames - 1 - i) / fade});
    for (int c : on) a.ch[c][i] = static_cast<float>(v * g);
  }
  return a;
}

long find_offset(const Audio& a, const Audio& b) {
  if (b.frames() == 0 || b.frames() > a.frames()) return -1;
  const auto ea = envelope(a), eb = envelope(b);
  long best = -1;
  double best_v = 0;
  for (size_t lag = 0; lag + eb.size() <= ea.size(); ++lag) {
    double s = 0;
    for (size_t i = 0; i < eb.size(); ++i) s += ea[lag + i] * eb[i];
    if (s > best_v) best_v = s, best = static_cast<long>(lag);
  }
  if (best < 0) return -1;
  // The envelope's peak lag is within two envelope frames of the true one.
  const long lo = std::max(0L, (best - 2) * long(kEnvelopeFrames));
  const long hi = std::min(long(a.frames() - b.frames()), (best + 2) * long(kEnvelopeFrames));
  long fine = -1;
  double fine_v = 0;
  for (long lag = lo; lag <= hi; ++lag) {
    const double s = correlation_at(a, b, lag);
    if (fine < 0 || s > fine_v) fine_v = s, fine = lag;
  }
  return fine;
}

WindowMatch compare_window(const Audio& a, const Audio& b, long offset, size_t from, size_t length) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t c = 0; c < std::min(a.ch.size(), b.ch.size()); ++c)
    for (size_t i = from; i < from + length && i < b.frames() && offset + i < a.frames(); ++i) {
      const double x = a.ch[c][offset + i], y = b.ch[c][i];
      ab += x * y, aa += x * x, bb += y * y;
    }
  WindowMatch m;
  if (aa > 0 && bb > 0) {
    m.correlation = ab / std::sqrt(aa * bb);
    m.level_db = 10 * std::log10(aa / bb);
  }
  return m;
}

long best_local_offset(const Audio& a, const Audio& b, long center, long radius, size_t from, size_t length) {
  long best = center;
  double best_c = -2;
  for (long o = std::max(0L, center - radius); o <= center + radius; ++o) {
    const double c = compare_window(a, b, o, from, length).correlation;
    if (c > best_c) best_c = c, best = o;
  }
  return best;
}

double max_step(const Audio& a, size_t from, size_t to) {
  double m = 0;
  for (const auto& ch : a.ch)
    for (size_t i = std::max<size_t>(from, 1); i < std::min(to, ch.size()); ++i)
      m = std::max(m, double(std::fabs(ch[i] - ch[i - 1])));
  return m;
}

double rms(const Audio& a, size_t from, size_t to) {
  double s = 0;
  size_t n = 0;
  for (const auto& ch : a.ch)
    for (size_t i = from; i < std::min(to, ch.size()); ++i) s += double(ch[i]) * ch[i], ++n;
  return n ? std::sqrt(s / n) : 0;
}

long first_above(const Audio& a, float threshold, size_t from) {
  for (size_t i = from; i < a.frames(); ++i)
    for (const auto& ch : a.ch)
      if (std::fabs(ch[i]) > threshold) return static_cast<long>(i);
  return -1;
}

double tone_db(const Audio& a, size_t ch, size_t from, size_t to, double hz) {
  to = std::min(to, a.frames());
  if (ch >= a.ch.size() || to <= from) return -200;
  const double w = 2 * std::numbers::pi * hz / a.rate;
  const double k = 2 * std::cos(w);
  double s1 = 0, s2 = 0;
  for (size_t i = from; i < to; ++i) {
    const double s0 = a.ch[ch][i] + k * s1 - s2;
    s2 = s1, s1 = s0;
  }
  const double power = s1 * s1 + s2 * s2 - k * s1 * s2;
  const double amplitude = 2 * std::sqrt(std::max(power, 0.0)) / double(to - from);
  return 20 * std::log10(std::max(amplitude, 1e-10));
}

}  // namespace rackd::test
