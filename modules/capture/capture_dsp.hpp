// Capture: the source module's DSP. Pure: no shared memory, no OSC, no threads.
// setup() allocates and may throw; process() is [rt]. Implemented in
// capture_dsp.cpp (setup, file, device, gain) and capture_sources.cpp (tone,
// noise, sweep generators).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shm/rt.hpp"

namespace rackd::capture {

enum class Source { kDevice, kFile, kTone, kNoise, kSweep };

struct CaptureConfig {
  Source source = Source::kTone;
  std::string file;               // absolute path, for kFile
  bool loop = true;               // kFile: restart at the end; else silence after it
  uint32_t channels = 2;          // output channels
  double sweep_start_hz = 20.0;   // kSweep: exponential sine sweep, then repeats
  double sweep_end_hz = 20000.0;
  double sweep_seconds = 10.0;
  uint64_t seed = 1;              // kNoise
};

// Generators (tone, noise, sweep) produce -6 dBFS (amplitude 0.5) before gain;
// noise is uniform white in [-0.5, 0.5]. Every output channel carries the same
// generated signal. kDevice copies device input channel c to output c (missing
// channels are silent). kFile maps file channel c to output c; a mono file goes to
// every output channel. A file whose rate differs from the server's is resampled
// at setup.
class Capture {
 public:
  // [setup] Throws std::runtime_error with a message naming the file on failure.
  void setup(const CaptureConfig& config, double rate_hz, uint32_t max_frames);

  // [rt] Writes `frames` frames to out[0..channels). `in` is the device input
  // (in_channels planar channels, may be nullptr when in_channels == 0).
  // gain_linear and mute are the targets for this block: changes are ramped
  // linearly across the block so nothing clicks. freq_hz applies to kTone
  // (phase-continuous).
  void process(const float* const* in, uint32_t in_channels, float* const* out,
               uint32_t frames, float gain_linear, bool mute, double freq_hz) noexcept RACKD_RT;

  // [any] Back to the start of the file/sweep and the initial noise seed.
  void reset() noexcept;

  uint32_t channels() const noexcept { return config_.channels; }

 private:
  // [rt] Generators write one channel; process() copies it to the others.
  void generate_tone(float* out, uint32_t frames, double freq_hz) noexcept RACKD_RT;
  void generate_noise(float* out, uint32_t frames) noexcept RACKD_RT;
  void generate_sweep(float* out, uint32_t frames) noexcept RACKD_RT;
  void play_file(float* const* out, uint32_t frames) noexcept RACKD_RT;

  CaptureConfig config_;
  double rate_hz_ = 48000.0;
  // Planar, resampled to rate_hz_, one entry per output channel that has a file
  // channel (a single entry feeds every output: mono files, or channels == 1).
  std::vector<std::vector<float>> file_;
  uint64_t file_pos_ = 0;
  double phase_ = 0.0;                    // tone/sweep phase, radians/(2*pi)
  double freq_now_ = -1.0;                // tone frequency at the end of the last
                                          // block; < 0: no block yet, so no ramp
  uint64_t sweep_pos_ = 0;                // frames into the current sweep
  uint64_t sweep_frames_ = 1;             // sweep length in frames
  double sweep_log_ratio_ = 0.0;          // ln(sweep_end_hz / sweep_start_hz)
  uint64_t rng_state_ = 1;                // xorshift64*, never 0
  static constexpr float kUnset = -1.0f;  // gain_now_ before the first block
  float gain_now_ = kUnset;               // current (ramped) gain incl. mute
};

}  // namespace rackd::capture
