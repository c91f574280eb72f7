// HRTF sets for the hrir module: what counts as a valid set, conversion to the
// server's rate, and the nearest-direction lookup. SOFA files arrive as plain
// numbers from a child process (sofa_source.cpp); HeSuVi WAVs through
// libsndfile. Layouts and head rotation live in layouts.cpp.
// [setup]/[control] threads only: everything here allocates.
//
// Choices, and why:
// * Rate: libmysofa reads the file at its own rate (mysofa_load, in the child)
//   and rackd::dsp::resample converts it, rather than mysofa_open(rate). That
//   keeps libmysofa out of our process entirely (see sofa_source.cpp), uses the
//   same band-limited resampler as sound files (libmysofa's speex resampler is
//   good too, but older releases left Data.Delay unscaled when changing the
//   rate; 1.3 scales it, still as fractional samples), and skips mysofa_open's
//   loudness normalisation, so a set plays at the level it was measured at. Resampling is done per lookup (filter_for is
//   [control]), so long room responses are stored once, at the file's rate.
// * Gain: an impulse response sampled at f1 and resampled to f2 must be scaled
//   by f1 / f2 to keep its frequency response (its taps are a density: a filter
//   summing to 1 at 44.1 kHz sums to 48/44.1 once interpolated at 48 kHz).
//   libmysofa does the same (DataIR /= factor in mysofa_resample).
// * Data.Delay (AES69: samples at the file's rate, per measurement and ear, or
//   one pair for all) becomes leading zeros, converted to the server rate and
//   rounded to whole samples. Rounding errs by at most half a sample (10 us at
//   48 kHz): below the smallest audible ITD change (~10-20 us), below the
//   file's own quantisation (CIPIC stores whole samples at 44.1 kHz: 23 us),
//   and it leaves the measured response untouched (a fractional-delay filter
//   would add pre-ringing that eats into the leading delay). Negative delays
//   (non-causal, e.g. tester2.sofa) shift the whole set by the most negative
//   one, which keeps every difference between ears and between directions.
// * Lookup: no interpolation. The nearest measurement exactly as libmysofa's
//   mysofa_lookup finds it (mysofa_getfilter_float_nointerp): the direction as
//   a point 1 m away, pulled onto the measured distances (clamped to
//   [nearest, farthest] measurement radius), then the smallest squared
//   Euclidean distance computed in float in the same order as libmysofa's
//   kd-tree. A grid index (nearest_index.cpp) finds exactly what a linear scan
//   would: a 7.1.4 head turn's lookups take ~1 ms by scan on 40,000
//   directions, tens of microseconds by index (bench/sofa_bench).
#include "modules/hrir/hrtf.hpp"

#include <sndfile.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <mutex>
#include <numbers>
#include <stdexcept>

#include "modules/common/resample.hpp"
#include "modules/hrir/nearest_index.hpp"
#include "modules/hrir/sofa_source.hpp"

namespace rackd::hrir {
namespace {

constexpr double kMinRateHz = 8000;
constexpr double kMaxRateHz = 384000;

using sofa_detail::fail;

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

void check_server_rate(const std::string& path, uint32_t rate_hz) {
  if (rate_hz < kMinRateHz || rate_hz > kMaxRateHz) {
    throw fail(path, "server rate " + std::to_string(rate_hz) + " Hz is outside 8000..384000 Hz");
  }
}

void check_file_rate(const std::string& path, double rate_hz) {
  if (!std::isfinite(rate_hz) || rate_hz < kMinRateHz || rate_hz > kMaxRateHz) {
    throw fail(path, "sampling rate " + number(rate_hz) + " Hz is outside 8000..384000 Hz");
  }
}

// libmysofa's radius() (tools.c), in float like it.
float radius(const float* xyz) {
  return std::sqrt(xyz[0] * xyz[0] + xyz[1] * xyz[1] + xyz[2] * xyz[2]);
}

// SOFA axes: x front, y left, z up; 1 m away.
void to_cartesian(Direction d, float* xyz) {
  const double az = d.azimuth_deg * std::numbers::pi / 180.0;
  const double el = d.elevation_deg * std::numbers::pi / 180.0;
  xyz[0] = static_cast<float>(std::cos(el) * std::cos(az));
  xyz[1] = static_cast<float>(std::cos(el) * std::sin(az));
  xyz[2] = static_cast<float>(std::sin(el));
}

// Printable ASCII only (attribute strings of broken files hold any byte).
std::string printable(const std::string& s) {
  std::string out;
  for (const char c : s) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  const size_t first = out.find_first_not_of(' ');
  if (first == std::string::npos) return "";
  return out.substr(first, out.find_last_not_of(' ') - first + 1);
}

std::string file_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

struct HrtfSet::Impl {
  double file_rate_hz = 0;
  uint32_t rate_hz = 0;
  uint32_t taps = 0;            // per ear, at file_rate_hz
  uint32_t frames = 0;          // per ear, at rate_hz: resampled taps + longest delay
  std::vector<float> positions; // x, y, z per measurement, metres (SOFA axes); fixed after finish()
  NearestIndex index;           // over positions
  float radius_min = 0;
  float radius_max = 0;
  std::vector<float> irs;       // [measurement][ear][tap] at file_rate_hz
  std::vector<uint32_t> delays; // [measurement][ear]: leading frames at rate_hz
  std::string description;

  size_t measurements() const { return positions.size() / 3; }

  // Radii of the measured positions and the filter length at rate_hz. Call once
  // positions, irs and delays are in place.
  void finish() {
    radius_min = std::numeric_limits<float>::max();
    radius_max = 0;
    for (size_t m = 0; m < measurements(); ++m) {
      radius_min = std::min(radius_min, radius(&positions[3 * m]));
      radius_max = std::max(radius_max, radius(&positions[3 * m]));
    }
    index.build(positions.data(), measurements());
    const uint32_t longest = *std::max_element(delays.begin(), delays.end());
    frames = static_cast<uint32_t>(converted(0, 0).size()) + longest;
  }

  // The nearest measurement, as mysofa_lookup picks it (see the file comment).
  size_t nearest(Direction d) const {
    float c[3];
    to_cartesian(d, c);
    float r = radius(c);
    if (r > radius_max || r < radius_min) {
      r = (r > radius_max ? radius_max : radius_min) / r;
      for (float& v : c) v *= r;
    }
    return index.nearest(c);
  }

  // One ear of one measurement at rate_hz, without its delay. Resampled ones
  // are kept (a resampling costs ~3 ms; head tracking asks for the same few
  // directions again and again) unless the whole set would not fit kMaxCached.
  std::vector<float> converted(size_t m, int ear) const {
    const size_t index = 2 * m + static_cast<size_t>(ear);
    const auto first = irs.begin() + static_cast<std::ptrdiff_t>(index * taps);
    std::vector<float> ir(first, first + taps);
    if (file_rate_hz == rate_hz) return ir;
    const bool cache = double(irs.size()) * rate_hz / file_rate_hz <= kMaxCached;
    std::lock_guard lock(cache_mutex);
    if (cache && index < resampled.size() && !resampled[index].empty()) return resampled[index];
    ir = dsp::resample(ir, file_rate_hz, rate_hz);
    const float gain = static_cast<float>(file_rate_hz / rate_hz);
    for (float& v : ir) v *= gain;
    if (cache) {
      resampled.resize(2 * measurements());
      resampled[index] = ir;
    }
    return ir;
  }

  static constexpr double kMaxCached = 1 << 26;  // floats: 256 MB
  mutable std::mutex cache_mutex;                 // filter_for is const, callable from any setup thread
  mutable std::vector<std::vector<float>> resampled;  // [measurement][ear], filled on first use

  std::vector<float> filter(size_t m, int ear) const {
    const std::vector<float> ir = converted(m, ear);
    std::vector<float> out(frames, 0.0f);
    std::copy(ir.begin(), ir.end(), out.begin() + delays[2 * m + ear]);
    return out;
  }
};

HrtfSet::HrtfSet() : impl_(std::make_unique<Impl>()) {}
HrtfSet::HrtfSet(HrtfSet&&) noexcept = default;
HrtfSet& HrtfSet::operator=(HrtfSet&&) noexcept = default;
HrtfSet::~HrtfSet() = default;

HrirPair HrtfSet::filter_for(Direction d) const {
  const size_t m = impl_->nearest(d);
  return HrirPair{impl_->filter(m, 0), impl_->filter(m, 1)};
}

uint32_t HrtfSet::filter_frames() const { return impl_->frames; }
uint32_t HrtfSet::rate_hz() const { return impl_->rate_hz; }
const std::string& HrtfSet::description() const { return impl_->description; }

HrtfSet HrtfSet::load_sofa(const std::string& path, uint32_t rate_hz) {
  check_server_rate(path, rate_hz);
  HrtfSet set;
  Impl& s = *set.impl_;
  s.rate_hz = rate_hz;
  sofa_detail::SofaNumbers read = sofa_detail::read_sofa_isolated(path);
  s.file_rate_hz = read.file_rate_hz;
  s.taps = read.taps;
  s.positions = std::move(read.positions_xyz);
  s.irs = std::move(read.irs);
  const std::vector<float> delays = std::move(read.delays);

  // Sizes were checked by the reader (taps in 1..kMaxFilterFrames, M > 0, two
  // receivers, every array M*R*N or M*C long); values are judged here.
  check_file_rate(path, s.file_rate_hz);
  const size_t count = s.measurements();
  for (size_t m = 0; m < count; ++m) {
    const float* p = &s.positions[3 * m];
    if (!std::isfinite(p[0]) || !std::isfinite(p[1]) || !std::isfinite(p[2]) || !(radius(p) > 0)) {
      throw fail(path, "source position " + std::to_string(m) + " is not finite or is at the listener");
    }
  }
  for (size_t i = 0; i < s.irs.size(); ++i) {
    if (!std::isfinite(s.irs[i])) {
      throw fail(path, "Data.IR holds a non-finite value (measurement " + std::to_string(i / (2 * s.taps)) + ")");
    }
  }
  float lowest = 0;  // delays are shifted to start at 0 if any is negative
  float highest = 0;
  for (const float d : delays) {
    if (!std::isfinite(d) || std::fabs(d) > kMaxFilterFrames) {
      throw fail(path, "Data.Delay holds " + number(d) + " samples (must be finite, within +-" +
                           std::to_string(kMaxFilterFrames) + ")");
    }
    lowest = std::min(lowest, d);
    highest = std::max(highest, d);
  }
  if (double(highest) - lowest + s.taps > kMaxFilterFrames) {
    throw fail(path, "Data.Delay spans " + number(double(highest) - lowest) + " samples; with " +
                         std::to_string(s.taps) + " taps that exceeds the limit of " +
                         std::to_string(kMaxFilterFrames) + " frames");
  }
  s.delays.resize(2 * count);
  const double to_server = rate_hz / s.file_rate_hz;
  for (size_t i = 0; i < s.delays.size(); ++i) {
    const float d = delays.size() == 2 ? delays[i % 2] : delays[i];  // one pair: every measurement
    s.delays[i] = static_cast<uint32_t>(std::lround((double(d) - lowest) * to_server));
  }
  s.finish();
  const std::string name = printable(read.name);
  s.description = (name.empty() ? "SOFA " + file_name(path) : name) + ", " + std::to_string(count) +
                  " directions, " + std::to_string(s.frames) + " taps";
  if (!read.libmysofa_refusal.empty()) s.description += ", read with libhdf5";
  return set;
}

HrtfSet HrtfSet::load_hesuvi(const std::string& path, uint32_t rate_hz) {
  // Speaker positions and their tracks in HeSuVi's 14-channel order.
  struct Track {
    double azimuth_deg;
    int left, right;
  };
  static constexpr Track kTracks[] = {
      {30, 0, 1},    // FL
      {-30, 8, 7},   // FR
      {0, 6, 13},    // FC
      {90, 2, 3},    // SL
      {-90, 10, 9},  // SR
      {150, 4, 5},   // BL
      {-150, 12, 11} // BR
  };
  constexpr int kChannels = 14;

  check_server_rate(path, rate_hz);
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) throw fail(path, std::strerror(errno));
  SF_INFO info{};
  SNDFILE* file = sf_open(path.c_str(), SFM_READ, &info);
  if (file == nullptr) throw fail(path, std::string("libsndfile cannot read it: ") + sf_strerror(nullptr));
  const std::unique_ptr<SNDFILE, int (*)(SNDFILE*)> closer(file, sf_close);
  if (info.channels != kChannels) {
    throw fail(path, std::to_string(info.channels) +
                         " channels; a HeSuVi file has 14 (FL-L FL-R SL-L SL-R BL-L BL-R FC-L "
                         "FR-R FR-L SR-R SR-L BR-R BR-L FC-R)");
  }
  if (info.frames <= 0 || info.frames > kMaxFilterFrames) {
    throw fail(path, std::to_string(info.frames) + " frames; must be 1.." + std::to_string(kMaxFilterFrames));
  }
  check_file_rate(path, info.samplerate);
  const auto frames = static_cast<size_t>(info.frames);
  std::vector<float> interleaved(frames * kChannels);
  if (sf_readf_float(file, interleaved.data(), info.frames) != info.frames) {
    throw fail(path, "short read: " + std::string(sf_strerror(file)));
  }
  for (const float v : interleaved) {
    if (!std::isfinite(v)) throw fail(path, "holds non-finite samples");
  }

  HrtfSet set;
  Impl& s = *set.impl_;
  s.rate_hz = rate_hz;
  s.file_rate_hz = info.samplerate;
  s.taps = static_cast<uint32_t>(frames);
  for (const Track& t : kTracks) {
    float xyz[3];
    to_cartesian(Direction{t.azimuth_deg, 0}, xyz);
    s.positions.insert(s.positions.end(), xyz, xyz + 3);
    for (const int track : {t.left, t.right}) {
      for (size_t i = 0; i < frames; ++i) s.irs.push_back(interleaved[i * kChannels + track]);
    }
  }
  s.delays.assign(2 * std::size(kTracks), 0);
  s.finish();
  s.description = "HeSuVi " + printable(file_name(path)) + ", 7 speakers, " + std::to_string(s.frames) + " taps";
  return set;
}

}  // namespace rackd::hrir
