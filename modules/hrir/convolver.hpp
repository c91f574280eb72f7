// Partitioned convolution for the hrir module: N inputs, 2 outputs,
// out[e] = sum_i in[i] * h[i][e], zero added latency at the block size.
// Filter sets are prepared off the audio thread and swapped in at a block
// boundary with a crossfade during which both sets run on the same input
// history (which is kept, never reset).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "shm/rt.hpp"
// FilterSet is complete here, so callers can own and delete prepared sets.
#include "modules/hrir/convolver_parts.hpp"

namespace rackd::hrir {

struct ConvolverConfig {
  uint32_t inputs = 2;
  uint32_t block = 128;             // frames per process() call
  uint32_t max_filter_frames = 512; // longest filter any set will have
  bool tail_thread = true;          // long filters: later partitions on a helper thread
};

class FilterSet;  // frequency-domain partitions of every path; opaque

class Convolver {
 public:
  Convolver();
  ~Convolver();
  // [setup] FFTW plans (made here), buffers, the tail thread. Throws.
  void setup(const ConvolverConfig& config);
  // [control] filters[i][e]: input i to ear e (0 left, 1 right), any length up
  // to max_filter_frames. Allocates; never call on the audio thread.
  std::unique_ptr<FilterSet> prepare(const std::vector<std::vector<std::vector<float>>>& filters) const;
  // [rt] Start using `next` (ownership passes to the convolver) with a linear
  // crossfade over `fade_blocks` blocks (0: at once). Returns false, and keeps
  // nothing, while a previous fade is still running.
  bool try_swap(FilterSet* next, uint32_t fade_blocks) noexcept RACKD_RT;
  // [control] A set the audio thread no longer uses, for the caller to delete
  // (the audio thread frees nothing). nullptr when there is none.
  std::unique_ptr<FilterSet> take_retired() noexcept;
  // [rt] One block: in[inputs][block], out[2][block] (overwritten).
  void process(const float* const* in, float* const* out) noexcept RACKD_RT;
  // [rt] True while a crossfade runs.
  bool fading() const noexcept RACKD_RT;
  // [any] Tail chunks the audio thread had to finish itself because the tail
  // thread had not finished them in time: the rule when rendering offline
  // (faster than real time), a sign of an overloaded CPU in real time.
  uint64_t late_chunks() const noexcept;
  // [any] For tests: while paused the tail thread starts no work, so the audio
  // thread finishes every tail chunk itself.
  void pause_tail_thread(bool paused) noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rackd::hrir
