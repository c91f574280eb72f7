// The non-uniform tail of the hrir convolver: levels k >= 1 of the partition
// plan (partitions growing by 2, 4 or 8 per level up to 8192), computed on a
// helper thread; levels of at most 4 blocks' partitions (and all of them when
// the config asks for no thread) run inline on the audio thread at release.
// Threads: setup() and the destructor on [setup]; write_input(), add_output()
// and release() on the audio thread [rt]; the helper thread runs the jobs, and
// the audio thread runs the rest of a job itself when its result is late.
//
// Schedule (Gardner): level k with partition P starts at filter tap >= 2P, so
// the chunk of input frames [cP, cP + P) is released when the audio thread has
// written it and its result is first needed at least one partition later.
// Handshake per level, lock-free: the audio thread writes the chunk's slot
// descriptor, then stores `released` (release); whoever completes the job
// stores `done` (release) after writing the slot's output. A futex on a work
// counter wakes the helper (only when it sleeps). Jobs run in small steps
// (one FFT, one partition's multiply-accumulate), each under the level's busy
// word. If a result is not done when needed (offline rendering faster than
// real time, or CPU overload) the audio thread takes the level's busy word as
// soon as the helper's current step ends and finishes the job itself: no
// thread idles while work is left, and the audio thread's wait is bounded by
// one step (it sleeps on a futex only if the helper was preempted mid-step).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "modules/hrir/convolver_parts.hpp"

namespace rackd::hrir::detail {

// The crossfade in progress, as the audio thread sees it. Each level fades
// over the same number of frames but from its own start: the head at the swap,
// level k at the output frame of its first chunk released after the swap (its
// earlier chunks were computed before the new set existed).
struct Fade {
  bool active = false;
  FilterSet* from = nullptr;  // owned by the convolver; null: fade in from silence
  FilterSet* to = nullptr;    // owned by the convolver; null: fade out to silence
  uint32_t frames = 0;              // 0: switch at once at each level's start
  std::vector<int64_t> start;       // per level, output frame where w leaves 0
};

// [any] out[n] += (1 - w) a[n] + w b[n], with w = 0 before `start`, then
// rising by 1/fade per frame to 1 (fade = 0: a step at `start`). t is the
// frame of out[0]. a or b null counts as zero.
void add_faded(float* out, const float* a, const float* b, uint32_t frames, int64_t t,
               int64_t start, uint32_t fade) noexcept RACKD_RT;

class TailEngine {
 public:
  TailEngine();
  ~TailEngine();
  // [setup] Buffers and plans for levels[1..]; starts the helper thread when
  // `threaded` and a level has partitions longer than 4 blocks (shorter ones
  // run inline on the audio thread). Throws.
  void setup(const std::vector<Level>& levels, uint32_t inputs, uint32_t block, bool threaded);
  bool empty() const noexcept { return levels_.empty(); }
  bool threaded() const noexcept { return thread_.joinable(); }
  // [rt] Appends the block of frames [t, t + block) to the input history.
  void write_input(const float* const* in, uint64_t t) noexcept RACKD_RT;
  // [rt] Adds every tail level's output for frames [t, t + block) to out[2].
  void add_output(uint64_t t, float* const* out) noexcept RACKD_RT;
  // [rt] After the block ending at frame t_end: releases the chunks it
  // completes, computing `current` (or both sets of `fade`).
  void release(uint64_t t_end, const FilterSet* current, const Fade& fade) noexcept RACKD_RT;
  // [any] Chunks the audio thread finished itself because the helper had not.
  uint64_t late_chunks() const noexcept { return late_.load(std::memory_order_relaxed); }
  // [any] Tests: the helper starts no step while paused.
  void pause_helper(bool paused) noexcept;

 private:
  struct LevelState;
  bool step(LevelState& level) noexcept RACKD_RT;  // one piece of the next job; true when done
  void finish(LevelState& level, uint32_t need) noexcept RACKD_RT;  // audio: until `need` is done
  void wake_helper() noexcept RACKD_RT;  // there is work: wake the helper if it sleeps
  void run() noexcept;                             // helper thread body

  uint32_t inputs_ = 0;
  uint32_t block_ = 0;
  uint32_t ring_mask_ = 0;  // input history: frames mod ring size (power of two)
  FloatBuffer ring_;        // inputs x ring size, written by the audio thread only
  std::vector<std::unique_ptr<LevelState>> levels_;
  std::thread thread_;
  alignas(64) std::atomic<uint32_t> work_seq_{0};      // bumped on every release
  alignas(64) std::atomic<uint32_t> helper_sleeping_{0};
  std::atomic<bool> stop_{false};
  std::atomic<uint32_t> paused_{0};
  std::atomic<uint64_t> late_{0};  // written by the audio thread only
};

}  // namespace rackd::hrir::detail
