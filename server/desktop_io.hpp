// The audio side of the desktop device (device_pipewire.cpp), apart from
// PipeWire so it can be tested alone: PipeWire's buffers in and out of rackd's
// engine, frame-exact, and the output fade around a move to another device.
//
// Input: every frame the sink receives is pushed once (push_input, from the
// capture stream's process callback) into a FIFO. Output: pull_output (from
// the playback stream's, triggered right after) runs as many engine cycles as
// the output needs, block by block from the FIFO, so no frame is lost or
// played twice whatever order or size PipeWire's buffers come in. Where the
// quantum equals the block and the input of this cycle is there, one engine
// cycle writes straight into PipeWire's output buffer. Output that is short
// (a quantum smaller than the block, input that came late) is padded with
// silence and the input waits: latency grows, nothing is lost. A cycle
// without any input runs the engine on silence (counted once the stream
// runs); input piling up beyond a few buffers is dropped, oldest first
// (counted).
//
// Fade: the output is multiplied by a gain that moves linearly toward a target
// (0 or 1) over fade_ms; the PipeWire thread sets the target ([control]) and
// learns when the output is silent (faded_out), so it can move the output to
// another device without a click. restart_fade() drops the gain to 0 and
// fades in: for a move the session manager made without warning.
//
// Threads: constructor [setup]; push_input/pull_output/discard_input [rt] on
// PipeWire's data thread (one thread); fade calls [control], lock-free.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "shm/rt.hpp"

namespace rackd::server {

class DesktopIo {
 public:
  // One engine cycle: block frames of in_channels in, out_channels out.
  using Run = void (*)(void* ctx, const float* const* in, float* const* out) noexcept;
  static constexpr uint32_t kMaxQuantum = 8192;  // PipeWire's largest quantum

  DesktopIo(uint32_t block, uint32_t in_channels, uint32_t out_channels, uint32_t rate_hz, double fade_ms,
            Run run, void* ctx);

  // [rt] n frames of input, planar; a nullptr channel is silence.
  void push_input(const float* const* in, uint32_t n) noexcept RACKD_RT;
  // [rt] Throws away queued input (the output is not running).
  void discard_input() noexcept RACKD_RT {
    in_frames_ = 0;
    pushed_ = false;
  }
  // [rt] Writes n frames (<= kMaxQuantum) to out (one pointer per output
  // channel; nullptr: not written).
  void pull_output(float* const* out, uint32_t n) noexcept RACKD_RT;

  // [control] Fade the output toward `gain` (0 or 1).
  void fade_to(float gain) { target_.store(gain, std::memory_order_release); }
  // [control] Silence now, then fade in.
  void restart_fade() {
    restart_.store(true, std::memory_order_release);
    target_.store(1.0f, std::memory_order_release);
  }
  // [control] Silence now, until fade_to(1) or restart_fade().
  void mute_now() {
    target_.store(0.0f, std::memory_order_release);
    restart_.store(true, std::memory_order_release);
  }
  // [control] The output is at gain 0 (a move may happen).
  bool faded_out() const { return silent_.load(std::memory_order_acquire); }

  // Input frames that never came (silence ran through the engine instead) and
  // input frames dropped, since the start.
  uint64_t underrun_frames() const { return underrun_.load(std::memory_order_relaxed); }
  uint64_t dropped_frames() const { return dropped_.load(std::memory_order_relaxed); }
  // Output frames padded with silence while input was short (the first
  // quantum smaller than a block, a buffer that came late), since the start.
  uint64_t padded_frames() const { return padded_.load(std::memory_order_relaxed); }
  uint32_t queued_input() const { return in_frames_; }  // [rt] / tests

 private:
  void drop_input(uint32_t frames) noexcept RACKD_RT;
  void drop_output(uint32_t frames) noexcept RACKD_RT;
  void apply_gain(float* const* out, uint32_t n) noexcept RACKD_RT;

  const uint32_t block_, in_ch_, out_ch_, in_cap_, out_cap_;
  const float step_;                     // gain change per frame
  Run run_;
  void* ctx_;
  std::vector<float> in_, out_, scratch_;  // planar FIFOs (capacity in_cap_/out_cap_ per channel)
  std::vector<const float*> in_ptrs_;
  std::vector<float*> scratch_ptrs_;
  uint32_t in_frames_ = 0, out_frames_ = 0;
  bool primed_ = false;                  // an output has been pulled (underruns count from then)
  bool pushed_ = false;                  // input came since the last pull
  uint32_t missed_ = 0;                  // pulls in a row without input
  float gain_ = 1.0f;
  std::atomic<float> target_{1.0f};
  std::atomic<bool> restart_{false};
  std::atomic<bool> silent_{false};
  std::atomic<uint64_t> underrun_{0}, dropped_{0}, padded_{0};
};

}  // namespace rackd::server
