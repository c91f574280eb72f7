// Capture: setup (validation, sound-file loading), the block entry point, file
// and device playback and the output gain ramp. setup() is [setup]; process()
// is [rt]; reset() is [any]. The generators live in capture_sources.cpp.
#include "modules/capture/capture_dsp.hpp"

#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "modules/common/resample.hpp"

namespace rackd::capture {
namespace {

constexpr uint32_t kMaxChannels = 32;

// Owns an open SNDFILE so every throw below closes it.
struct SndFile {
  SNDFILE* file = nullptr;
  SndFile() = default;
  SndFile(const SndFile&) = delete;
  SndFile& operator=(const SndFile&) = delete;
  ~SndFile() {
    if (file != nullptr) sf_close(file);
  }
};

// [setup] The whole file, planar, mapped to `channels` outputs (see file_ in the
// header) and resampled to rate_hz.
std::vector<std::vector<float>> load_file(const std::string& path, uint32_t channels,
                                          double rate_hz) {
  SF_INFO info{};
  SndFile sf;
  sf.file = sf_open(path.c_str(), SFM_READ, &info);
  if (sf.file == nullptr) throw std::runtime_error(path + ": " + sf_strerror(nullptr));
  if (info.frames <= 0 || info.channels <= 0) {
    throw std::runtime_error(path + ": the file holds no audio frames");
  }

  const auto file_channels = static_cast<size_t>(info.channels);
  std::vector<float> interleaved(static_cast<size_t>(info.frames) * file_channels);
  const sf_count_t got = sf_readf_float(sf.file, interleaved.data(), info.frames);
  if (got <= 0) {
    const bool failed = sf_error(sf.file) != SF_ERR_NO_ERROR;
    throw std::runtime_error(path + ": " +
                             (failed ? sf_strerror(sf.file) : "the file holds no audio frames"));
  }

  // Extra file channels are dropped; a mono file stays one channel and
  // process() sends it to every output.
  const auto frames = static_cast<size_t>(got);
  const size_t kept = std::min<size_t>(file_channels, channels);
  std::vector<std::vector<float>> planar(kept, std::vector<float>(frames));
  for (size_t c = 0; c < kept; ++c) {
    for (size_t i = 0; i < frames; ++i) planar[c][i] = interleaved[i * file_channels + c];
  }

  const auto file_rate_hz = static_cast<double>(info.samplerate);
  if (file_rate_hz != rate_hz) {
    for (auto& channel : planar) channel = dsp::resample(channel, file_rate_hz, rate_hz);
    if (planar[0].empty()) {
      throw std::runtime_error(path + ": too short to resample from " +
                               std::to_string(info.samplerate) + " Hz");
    }
  }
  return planar;
}

// [setup] xorshift64* must never hold 0; splitmix64 spreads small seeds (0, 1,
// 2, ...) into unrelated states.
uint64_t noise_state(uint64_t seed) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return z != 0 ? z : 0x9E3779B97F4A7C15ull;
}

// [rt] Scales channels in place, ramping linearly from `gain_now` to `target`.
// g(i) = target - step * (frames - 1 - i) lands exactly on the target at the
// last frame, so the next block starts where this one ended and a mute reaches
// true zero. A steady gain of exactly 1 leaves the samples untouched.
void apply_gain(float* const* out, uint32_t channels, uint32_t frames, float& gain_now,
                float target) noexcept RACKD_RT {
  if (frames == 0 || (gain_now == 1.0f && target == 1.0f)) return;
  if (gain_now == 0.0f && target == 0.0f) {
    for (uint32_t c = 0; c < channels; ++c) std::memset(out[c], 0, sizeof(float) * frames);
    return;
  }
  const float step = (target - gain_now) / static_cast<float>(frames);
  for (uint32_t c = 0; c < channels; ++c) {
    float* x = out[c];
    if (step == 0.0f) {
      for (uint32_t i = 0; i < frames; ++i) x[i] *= target;
    } else {
      for (uint32_t i = 0; i < frames; ++i) {
        x[i] *= target - step * static_cast<float>(frames - 1 - i);
      }
    }
  }
  gain_now = target;
}

}  // namespace

// max_frames is not needed: generators write straight into out[0], so
// process() keeps no per-block scratch and takes blocks of any size.
void Capture::setup(const CaptureConfig& config, double rate_hz,
                    [[maybe_unused]] uint32_t max_frames) {
  if (config.channels < 1 || config.channels > kMaxChannels) {
    throw std::runtime_error("capture: channels must be 1.." + std::to_string(kMaxChannels) +
                             ", not " + std::to_string(config.channels));
  }
  if (!(rate_hz > 0.0) || !std::isfinite(rate_hz)) {
    throw std::runtime_error("capture: sample rate must be > 0");
  }
  // Sweep settings only matter to (and are only checked for) the sweep source.
  if (config.source == Source::kSweep) {
    if (!(config.sweep_start_hz > 0.0) || !(config.sweep_end_hz > 0.0)) {
      throw std::runtime_error("capture: sweep_start_hz and sweep_end_hz must be > 0");
    }
    if (!(config.sweep_seconds > 0.0)) {
      throw std::runtime_error("capture: sweep_seconds must be > 0");
    }
    if (config.sweep_end_hz == config.sweep_start_hz) {
      throw std::runtime_error("capture: sweep_end_hz must differ from sweep_start_hz");
    }
  }
  std::vector<std::vector<float>> file;
  if (config.source == Source::kFile) {
    if (config.file.empty()) throw std::runtime_error("capture: source \"file\" needs a file");
    file = load_file(config.file, config.channels, rate_hz);
  }

  // Nothing above touched the object, so a failed setup leaves it as it was.
  config_ = config;
  rate_hz_ = rate_hz;
  file_ = std::move(file);
  if (config_.source == Source::kSweep) {
    sweep_frames_ = std::max<uint64_t>(1, std::llround(config_.sweep_seconds * rate_hz_));
    sweep_log_ratio_ = std::log(config_.sweep_end_hz / config_.sweep_start_hz);
  }
  gain_now_ = kUnset;
  reset();
}

void Capture::reset() noexcept {
  file_pos_ = 0;
  phase_ = 0.0;
  freq_now_ = -1.0;
  sweep_pos_ = 0;
  rng_state_ = noise_state(config_.seed);
}

void Capture::process(const float* const* in, uint32_t in_channels, float* const* out,
                      uint32_t frames, float gain_linear, bool mute,
                      double freq_hz) noexcept RACKD_RT {
  const uint32_t channels = config_.channels;
  const size_t bytes = sizeof(float) * frames;
  bool generated = true;  // one signal in out[0], copied to the rest after gain
  switch (config_.source) {
    case Source::kDevice:
      for (uint32_t c = 0; c < channels; ++c) {
        const float* src = (in != nullptr && c < in_channels) ? in[c] : nullptr;
        if (src == nullptr) {
          std::memset(out[c], 0, bytes);
        } else if (src != out[c]) {
          std::memcpy(out[c], src, bytes);
        }
      }
      generated = false;
      break;
    case Source::kFile:
      play_file(out, frames);
      generated = false;
      break;
    case Source::kTone:
      generate_tone(out[0], frames, freq_hz);
      break;
    case Source::kNoise:
      generate_noise(out[0], frames);
      break;
    case Source::kSweep:
      generate_sweep(out[0], frames);
      break;
  }

  const float target = mute ? 0.0f : gain_linear;
  // The first block after setup starts at its target: a (re)started module
  // must not open with a ramp from unity.
  if (gain_now_ == kUnset) gain_now_ = target;
  apply_gain(out, generated ? 1 : channels, frames, gain_now_, target);
  if (generated) {
    for (uint32_t c = 1; c < channels; ++c) std::memcpy(out[c], out[0], bytes);
  }
}

void Capture::play_file(float* const* out, uint32_t frames) noexcept RACKD_RT {
  const uint32_t channels = config_.channels;
  const uint64_t len = file_.empty() ? 0 : file_[0].size();
  uint64_t pos = file_pos_;
  uint32_t done = 0;
  while (done < frames) {
    if (pos >= len) {
      if (!config_.loop || len == 0) break;
      pos = 0;
    }
    const auto n = static_cast<uint32_t>(std::min<uint64_t>(frames - done, len - pos));
    for (uint32_t c = 0; c < channels; ++c) {
      const std::vector<float>* src = nullptr;
      if (file_.size() == 1) {
        src = &file_[0];
      } else if (c < file_.size()) {
        src = &file_[c];
      }
      if (src != nullptr) {
        std::memcpy(out[c] + done, src->data() + pos, sizeof(float) * n);
      } else {
        std::memset(out[c] + done, 0, sizeof(float) * n);
      }
    }
    done += n;
    pos += n;
  }
  // Past the end of a file that does not loop: silence.
  for (uint32_t c = 0; c < channels; ++c) {
    std::memset(out[c] + done, 0, sizeof(float) * (frames - done));
  }
  file_pos_ = pos;
}

}  // namespace rackd::capture
