// Offline sample-rate conversion by Kaiser-windowed sinc interpolation. [setup]
// only: called while loading sound files and HRIR sets, never on an audio thread.
#include "modules/common/resample.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <stdexcept>

namespace rackd::dsp {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kKaiserBeta = 9.0;     // ~90 dB stopband and passband accuracy
constexpr double kTapsPerSide = 64.0;   // counted at the lower of the two rates
constexpr double kCutoff = 0.95;        // fraction of the lower Nyquist frequency
// Integer rates repeat their interpolation phases, so their taps are computed
// once per phase. Beyond this many phases (odd or non-integer rates) the table
// would cost more than it saves, and taps are computed per output sample.
constexpr uint64_t kMaxPhases = 8192;

// Modified Bessel function of the first kind, order 0, by its power series; for
// the arguments used here (<= kKaiserBeta) it converges in ~30 terms.
double bessel_i0(double x) {
  const double q = x * x / 4.0;
  double sum = 1.0;
  double term = 1.0;
  for (int k = 1; k < 100 && term > sum * 1e-17; ++k) {
    term *= q / (double(k) * double(k));
    sum += term;
  }
  return sum;
}

// The interpolation kernel, measured in input samples: a sinc with its cutoff
// below the lower Nyquist frequency (so downsampling also filters out what would
// alias), under a Kaiser window that spans kTapsPerSide lower-rate samples.
class Kernel {
 public:
  Kernel(double from_hz, double to_hz) {
    const double lower_hz = std::min(from_hz, to_hz);
    half_width_ = kTapsPerSide * from_hz / lower_hz;
    taps_per_side_ = static_cast<int>(std::ceil(half_width_));
    cutoff_ = kCutoff * lower_hz / from_hz;
    i0_beta_ = bessel_i0(kKaiserBeta);
  }

  int taps() const { return 2 * taps_per_side_; }
  int taps_per_side() const { return taps_per_side_; }

  // Taps for an output at input time base + frac (0 <= frac < 1); tap i weighs
  // in[base - taps_per_side() + 1 + i]. They are scaled to sum to 1, so DC passes
  // exactly at every phase and no phase-dependent gain turns into noise.
  void fill(double frac, double* out) const {
    double sum = 0.0;
    for (int i = 0; i < taps(); ++i) {
      out[i] = value(frac + (taps_per_side_ - 1 - i));
      sum += out[i];
    }
    for (int i = 0; i < taps(); ++i) out[i] /= sum;
  }

 private:
  double value(double d) const {
    const double r = d / half_width_;
    if (r <= -1.0 || r >= 1.0) return 0.0;
    const double x = cutoff_ * d;
    const double sinc = x == 0.0 ? 1.0 : std::sin(kPi * x) / (kPi * x);
    return sinc * bessel_i0(kKaiserBeta * std::sqrt(1.0 - r * r)) / i0_beta_;
  }

  double half_width_ = 0.0;  // input samples
  int taps_per_side_ = 0;
  double cutoff_ = 0.0;      // twice the cutoff, in cycles per input sample
  double i0_beta_ = 1.0;
};

// One output sample: taps against in[first ..), zero outside the input.
float apply(const std::vector<float>& in, int64_t first, const double* taps, int count) {
  const auto size = static_cast<int64_t>(in.size());
  const auto lo = static_cast<int>(std::clamp<int64_t>(-first, 0, count));
  const auto hi = static_cast<int>(std::clamp<int64_t>(size - first, 0, count));
  double acc = 0.0;
  for (int i = lo; i < hi; ++i) acc += taps[i] * static_cast<double>(in[first + i]);
  return static_cast<float>(acc);
}

bool is_integer_rate(double hz) { return hz <= 1e9 && std::floor(hz) == hz; }

}  // namespace

std::vector<float> resample(const std::vector<float>& in, double from_hz, double to_hz) {
  if (!(from_hz > 0.0) || !(to_hz > 0.0) || !std::isfinite(from_hz) || !std::isfinite(to_hz)) {
    throw std::invalid_argument("resample: sample rates must be finite and > 0");
  }
  if (from_hz == to_hz) return in;

  const auto out_len = static_cast<size_t>(
      std::llround(static_cast<double>(in.size()) * to_hz / from_hz));
  std::vector<float> out(out_len);
  const Kernel kernel(from_hz, to_hz);
  const int taps = kernel.taps();
  const int64_t back = kernel.taps_per_side() - 1;

  if (is_integer_rate(from_hz) && is_integer_rate(to_hz)) {
    // Output j sits at input time j * step / phases, exactly, in integers.
    const auto from = static_cast<uint64_t>(from_hz);
    const auto to = static_cast<uint64_t>(to_hz);
    const uint64_t g = std::gcd(from, to);
    const uint64_t step = from / g;
    const uint64_t phases = to / g;
    if (phases <= kMaxPhases) {
      std::vector<double> table(phases * taps);
      for (uint64_t p = 0; p < phases; ++p) {
        kernel.fill(static_cast<double>(p) / static_cast<double>(phases), &table[p * taps]);
      }
      uint64_t base = 0;
      uint64_t phase = 0;
      for (size_t j = 0; j < out_len; ++j) {
        out[j] = apply(in, static_cast<int64_t>(base) - back, &table[phase * taps], taps);
        phase += step;
        base += phase / phases;
        phase %= phases;
      }
      return out;
    }
  }

  std::vector<double> buf(taps);
  const double step = from_hz / to_hz;
  for (size_t j = 0; j < out_len; ++j) {
    const double x = static_cast<double>(j) * step;
    const double base = std::floor(x);
    kernel.fill(x - base, buf.data());
    out[j] = apply(in, static_cast<int64_t>(base) - back, buf.data(), taps);
  }
  return out;
}

}  // namespace rackd::dsp
