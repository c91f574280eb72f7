// The hrir module's DSP: N speaker channels in, a binaural pair out, with head
// rotation, per-channel and master gain, and a stereo-downmix bypass.
//
// Threads:
//  - setup() and the destructor: [setup] (the module's main thread).
//  - set_*(), process(), settled(): [rt] the audio thread (the same thread,
//    once it has become the audio thread).
//  - the builder thread (owned here, normal priority, may block and allocate):
//    waits for orientation requests, computes rotate() + filter_for() for every
//    speaker, prepares a FilterSet and hands it to the audio thread through an
//    atomic slot; it also deletes the sets the convolver has retired.
// The audio thread never allocates or frees: it takes a prepared set and passes
// ownership to the convolver, which crossfades old and new filters over the
// same (kept) input history.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "modules/hrir/convolver.hpp"
#include "modules/hrir/hrtf.hpp"
#include "shm/rt.hpp"

namespace rackd::hrir {

// One input channel as configured: the layout's default, overridden by the patch.
struct SpeakerConfig {
  Speaker speaker;        // name, direction, lfe flag
  double gain_db = 0;     // static gain, folded into the filters
  double delay_ms = 0;    // static delay, extra leading zeros in the filters
};

struct BinauralConfig {
  uint32_t rate_hz = 48000;
  uint32_t block = 128;
  double fade_ms = 20;    // crossfade when the head turns
  bool tail_thread = true;
};

class Binaural {
 public:
  static constexpr double kMaxDelayMs = 100;

  Binaural();
  ~Binaural();  // stops the builder thread
  Binaural(const Binaural&) = delete;
  Binaural& operator=(const Binaural&) = delete;

  // [setup] Builds the convolver and the filters for orientation (0, 0, 0)
  // synchronously, then starts the builder thread. Throws std::invalid_argument
  // or std::runtime_error with a message a user can act on.
  void setup(std::vector<SpeakerConfig> speakers, HrtfSet set, const BinauralConfig& config);

  uint32_t channels() const noexcept { return static_cast<uint32_t>(speakers_.size()); }
  uint32_t fade_blocks() const noexcept { return fade_blocks_; }
  // Default stereo downmix coefficient of speaker i into ear e (bypass).
  float downmix(uint32_t i, uint32_t e) const noexcept { return downmix_[2 * i + e]; }

  // [rt] Head orientation in degrees (see rotate()). A change posts a request
  // to the builder; the new filters arrive a few blocks later and crossfade in.
  void set_orientation(double yaw_deg, double pitch_deg, double roll_deg) noexcept RACKD_RT;
  // [rt] Targets; the next process() ramps to them over its block.
  void set_channel_gain_db(uint32_t channel, double db) noexcept RACKD_RT;  // 0-based
  void set_master_gain_db(double db) noexcept RACKD_RT;
  void set_bypass(bool on) noexcept RACKD_RT;

  // [rt] One block: in[channels()][block], out[2][block] (overwritten).
  void process(const float* const* in, float* const* out) noexcept RACKD_RT;

  // [rt] True when the filters of the latest orientation request are in use
  // and no crossfade runs (for tests: the audio thread's view).
  bool settled() const noexcept RACKD_RT;
  // [any] True while the builder has not posted the set of the latest request
  // (tests wait on it to make the swap block deterministic).
  bool build_pending() const noexcept {
    return built_.load(std::memory_order_acquire) != requested_.load(std::memory_order_acquire);
  }
  // [any] Filter sets swapped in since setup (the initial one not counted).
  uint64_t swaps() const noexcept { return swaps_.load(std::memory_order_relaxed); }

 private:
  struct Orientation {
    double yaw = 0, pitch = 0, roll = 0;
  };
  // [control] The filters of every speaker at `o`, prepared for the convolver.
  std::unique_ptr<FilterSet> build(const Orientation& o) const;
  void builder_loop();
  void stop_builder() noexcept;
  // [rt] Wakes the builder (a futex wake, the one system call allowed).
  void wake_builder() noexcept RACKD_RT;
  // [rt] Master gain and bypass crossfade from wet[2] into out[2].
  void mix_output(float* const* wet, float* const* out, bool dry) noexcept RACKD_RT;

  std::vector<SpeakerConfig> speakers_;
  std::unique_ptr<HrtfSet> set_;
  Convolver conv_;
  uint32_t block_ = 0;
  uint32_t fade_blocks_ = 0;
  std::vector<uint32_t> delay_frames_;

  // Audio-thread state, allocated in setup.
  std::vector<float> scratch_;          // [channels][block] gained inputs
  std::vector<const float*> scratch_ptrs_;  // per block: scratch_ row, or the input at unity gain
  std::vector<float> wet_, dry_;        // [2][block] each
  std::vector<float> downmix_;          // [channels][2]
  std::vector<float> gain_now_, gain_target_;  // per channel, linear
  float master_now_ = 1, master_target_ = 1;
  float bypass_now_ = 0, bypass_target_ = 0;
  Orientation posted_;                  // last orientation sent to the builder
  FilterSet* held_ = nullptr;           // taken from ready_, not swapped in yet (owned)
  bool was_fading_ = false;

  // Audio thread -> builder. Orientation under a seqlock (single writer).
  std::atomic<uint32_t> seq_{0};
  std::atomic<double> yaw_{0}, pitch_{0}, roll_{0};
  std::atomic<uint32_t> requested_{0};  // request number, bumped after each post
  std::atomic<uint32_t> built_{0};      // request number of the last posted set
  std::atomic<uint32_t> wake_{0};       // futex word: requests, finished fades, stop
  std::atomic<bool> stop_{false};
  // Builder -> audio thread: the newest prepared set, or nullptr.
  std::atomic<FilterSet*> ready_{nullptr};
  std::atomic<uint64_t> swaps_{0};
  std::thread builder_;
};

}  // namespace rackd::hrir
