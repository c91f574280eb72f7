// The engine: the patch laid out in shared memory plus the graph scheduler that
// runs one device cycle. Built on the [setup] thread; run_cycle() is called by
// the device driver's audio thread (PortAudio callback or offline loop).
//
// Within a cycle execution is synchronous, like JACK: every module whose input
// is ready gets a request, and a module whose input is still being computed by
// a running module is armed to start the moment that module completes (the
// module waits on its upstream's completion word, so a chain costs one wake-up
// per hop, as in JACK2, not two); the engine waits on the completion words of the
// modules it is waiting for, each with its own deadline; a module that is late,
// dead, restarting, muted or failed has its block replaced (bypass when the
// module allows it and channel counts match, otherwise a short fade to silence)
// and modules that do not depend on it are never held up. The sinks are mixed
// into the device output through the safety stage.
//
// The graph is a Schedule (schedule.hpp) the engine adopts between two
// cycles: modules are slots of the segment, and a module's input is the sum
// of its sources, each at a gain that moves toward its target over the fade
// time. A module that takes one block as it is (one source at unity, no fade
// under way) reads it straight from its source's ring and may follow it; any
// other input is summed by the server into the module's mix slot once every
// source is resolved.
//
// Offline, when nothing is due in between and every module is plainly running,
// several cycles run as one batch: each module is asked for up to kMaxBatch
// blocks at once and runs them in one go after its upstream has run its own,
// so a chain costs N + 1 wake-ups per batch rather than per block. The server
// still checks, replaces and mixes every block of every module in cycle order;
// the first failure in a batch cuts every module's request short at that
// cycle, and the rest of the batch runs cycle by cycle as above, so the output
// is the same as without batches (bit for bit while nothing fails).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "graph/patch.hpp"
#include "server/safety.hpp"
#include "server/schedule.hpp"
#include "shm/rt.hpp"
#include "shm/segment.hpp"

namespace rackd::server {

// The graph library's names, as the server uses them.
using graph::kDeviceInput;
using graph::Patch;
using graph::PatchError;
using graph::PatchInput;
using graph::PatchModule;

struct EngineConfig {
  uint32_t rate_hz = 48000;
  uint32_t block_frames = 128;
  uint32_t input_channels = 0;       // device input channels published on bus 0
  uint32_t output_channels = 2;
  uint32_t rt_priority = 0;          // SCHED_FIFO priority for module processes (0: none)
  bool offline = false;              // offline: deadlines are timeouts, not a share of the period
  double budget_fraction = 0.75;     // live: share of the period the graph may use
  uint64_t offline_timeout_ns = 2'000'000'000ull;
  double fade_ms = 50.0;             // graph edits: a gain goes 0 -> 1 in this long ([server] fade_ms)
};

// Where a node's output for this cycle is: a block slot of a bus.
struct BlockRef {
  uint32_t bus = shm::kNoBus;
  uint32_t slot = 0;
};

// Scheduler-private state of one module slot; never in shared memory.
struct Node {
  shm::ModuleIn* in = nullptr;       // server-written side of the control block
  const shm::ModuleOut* out = nullptr;  // module-written side: untrusted, only compared
  uint32_t slot = 0;
  uint32_t out_bus = 0;
  // From the schedule's step (set when it is adopted).
  bool scheduled = false;
  const Step* step = nullptr;
  uint32_t in_channels = 0;
  uint32_t out_channels = 0;
  bool bypassable = false;
  uint64_t deadline_offset_ns = 0;   // live: from cycle start

  // Per cycle.
  int input = -1;                    // the block it takes as it is: slot, kDeviceInput; -1: none or summed
  bool summed = false;               // its input is summed into its mix slot by the server
  float g0[kMaxInputs] = {};         // gain of each source at the start and the end of this block
  float g1[kMaxInputs] = {};
  int follow = -1;                   // node whose completion starts this one (module-to-module hand-off)
  bool wake_pending = false;         // armed in this forward pass, to be woken at its end
  bool followed = false;             // scratch of wait_for_progress(): a waiting module follows this one
  bool launched = false;
  bool resolved = false;
  bool waiting = false;
  uint64_t deadline_ns = 0;
  BlockRef ref;

  // Across cycles.
  uint32_t upstream_told = shm::kNoSlot;  // ModuleIn::upstream as last written
  uint32_t followers_told = 0;            // ModuleIn::followers as last written
  bool must_wake = false;            // its upstream changed: woken even when it follows it
  uint32_t generation = 0;           // process generation the fields below refer to
  bool sent_valid = false;
  uint32_t sent = 0;                 // last cycle requested from this process (the last of a batch)
  bool replacing = false;            // previous cycle's block was a replacement
  bool spare_zero = false;           // spare slot currently holds silence
  bool have_last_good = false;
  uint32_t last_good = 0;            // last cycle with a good block from the module
  bool first_good_pending = true;    // the current process has not delivered a good block yet
  float dc = 0.0f;                   // slow average of the module's output (DC watch)
};

struct EngineStats {
  uint64_t cycles = 0;
  uint64_t mix_nonfinite = 0;        // samples scrubbed by the safety stage
};

// [setup] The segment layout: every slot of kMaxModules, each bus holding
// kMaxChannels (bus 0: device input; bus k: the output of slot k-1).
shm::SegmentPlan plan_for(uint32_t rate_hz, uint32_t block_frames, uint32_t input_channels, uint32_t rt_priority);

// [setup]/[control] Writes module `m`'s identity, channel counts, parameter
// slots (ranges and initial values) and config into slot `slot`, clearing
// what an earlier module in that slot left. Throws std::runtime_error.
void write_module_slot(shm::Segment& segment, uint32_t slot, const PatchModule& m);

// [setup]/[control] A schedule for `patch` whose module i sits in slot
// slots[i] (empty: slot i). Every step is fresh. Gains from the patch.
void schedule_for(const Patch& patch, const std::vector<uint32_t>& slots, const EngineConfig& config,
                  Schedule& out);

class Engine {
 public:
  // [setup] Creates the segment (named for this uid and pid), writes every
  // module of the patch into the slot of its index, and adopts its schedule.
  // Throws std::runtime_error.
  Engine(const Patch& patch, const EngineConfig& config);
  ~Engine();

  shm::Segment& segment() { return *segment_; }
  const Patch& patch() const { return patch_; }
  const EngineConfig& config() const { return config_; }

  // [rt] One device cycle. `in`: input_channels planar channels (nullptr:
  // silence); `out`: output_channels planar channels of block_frames.
  void run_cycle(const float* const* in, float* const* out) noexcept RACKD_RT { run_cycles(in, out, 1); }
  // [rt] `blocks` consecutive cycles: channel c of `in` and `out` holds
  // `blocks` blocks back to back. Offline, up to kMaxBatch of them run as one
  // batch when every module is plainly running (see above); otherwise, and
  // live, one by one.
  void run_cycles(const float* const* in, float* const* out, uint32_t blocks) noexcept RACKD_RT;

  // ---- graph changes ([control]: one thread at a time) ----
  // The buffer to write the next schedule into, or nullptr while the last one
  // handed over has not been adopted yet. Holds the schedule in use (copy).
  Schedule* next_schedule() noexcept;
  // Hands `s` (from next_schedule()) to the audio thread, which adopts it at
  // the start of its next cycle. Gives it a fresh id; returns it.
  uint32_t publish(Schedule* s) noexcept;
  // Id of the schedule in use, and of the last one whose gains have all
  // reached their targets (both published by the audio thread).
  uint32_t adopted() const noexcept { return adopted_.load(std::memory_order_acquire); }
  uint32_t settled() const noexcept { return settled_.load(std::memory_order_acquire); }
  // The schedule in use. [control] only between publish()es it made itself;
  // its steps do not change under the reader (gains live elsewhere).
  const Schedule& current() const noexcept { return buffers_[adopted_index()]; }
  // [any] Schedules adopted since start (the first one not counted), and
  // how long each of the last kSwapHistory adoptions took on the audio thread.
  static constexpr uint32_t kSwapHistory = 1024;
  uint64_t swaps() const noexcept { return swaps_.load(std::memory_order_acquire); }
  // [setup] after the audio thread has stopped: the recorded adoption times, in ns.
  std::vector<uint32_t> swap_ns() const;

  // [any] Cycles run so far.
  uint64_t cycles() const noexcept { return cycles_.load(std::memory_order_relaxed); }
  // [any] Number of the cycle last started (the value sent in cycle requests).
  const std::atomic<uint32_t>& cycle_now() const noexcept { return cycle_now_; }
  uint64_t mix_nonfinite() const noexcept { return mix_nonfinite_.load(std::memory_order_relaxed); }
  // [any] Output frames the safety stage's limiter changed so far.
  uint64_t limited_frames() const noexcept { return limited_frames_.load(std::memory_order_relaxed); }

 private:
  enum class Verdict { kSend, kBusy, kBypass, kSilence };
  uint32_t adopted_index() const noexcept { return buffers_[0].id == adopted() ? 0u : 1u; }
  void adopt_pending() noexcept RACKD_RT;
  void adopt(const Schedule& s) noexcept RACKD_RT;
  void plan_inputs() noexcept RACKD_RT;
  void commit_gains() noexcept RACKD_RT;
  void run_pass(const float* const* in, float* const* out) noexcept RACKD_RT;
  void put_device_input(uint32_t cycle, const float* const* in, std::size_t at) noexcept RACKD_RT;
  bool batchable(uint32_t blocks) noexcept RACKD_RT;
  void start_batch(const float* const* in, uint32_t blocks) noexcept RACKD_RT;
  void cut_batch(uint32_t cycle) noexcept RACKD_RT;
  BlockRef batch_input(const Node& n, uint32_t first) const noexcept RACKD_RT;
  void stamp_busy(Node& n, uint64_t since) noexcept RACKD_RT;
  bool usable(const Node& n, uint32_t& generation) const noexcept RACKD_RT;
  bool inputs_resolved(const Node& n) const noexcept RACKD_RT;
  void sum_inputs(Node& n) noexcept RACKD_RT;
  Verdict verdict(Node& n) noexcept RACKD_RT;
  void launch(Node& n, uint32_t cycle, uint64_t cycle_start) noexcept RACKD_RT;
  void send(Node& n, BlockRef input, int follow, uint32_t cycle, uint64_t cycle_start) noexcept RACKD_RT;
  void arm(Node& n, BlockRef input, int follow, uint32_t last, uint32_t count) noexcept RACKD_RT;
  void rearm_followers(const Node& u) noexcept RACKD_RT;
  void complete(Node& n, uint32_t cycle) noexcept RACKD_RT;
  void replace(Node& n, uint32_t cycle, bool allow_bypass) noexcept RACKD_RT;
  void mute(Node& n, shm::MuteReason reason) noexcept RACKD_RT;
  void fade_in(Node& n, const float* block) noexcept RACKD_RT;
  bool poll(Node& n, uint32_t cycle, uint64_t now) noexcept RACKD_RT;
  void wait_for_progress() noexcept RACKD_RT;
  void mix(float* const* out) noexcept RACKD_RT;
  BlockRef input_ref(const Node& n) const noexcept RACKD_RT;
  const float* source_block(uint32_t from, uint32_t& channels) const noexcept RACKD_RT;
  Node& node_at(uint32_t k) noexcept RACKD_RT { return nodes_[active_->steps[k].slot]; }

  Patch patch_;
  EngineConfig config_;
  std::unique_ptr<shm::Segment> segment_;
  std::vector<shm::RingView> rings_;
  std::vector<Node> nodes_;          // per slot (kMaxModules)
  std::vector<uint32_t> waiting_;    // scratch: indices of nodes being waited on
  std::vector<const std::atomic<uint32_t>*> wait_words_;
  std::vector<uint32_t> wait_values_;
  SafetyStage safety_;
  float dc_coef_ = 0.05f;            // per block, for Node::dc (about 50 ms)
  uint32_t cycle_ = 1;               // never 0, so a first request always differs
  uint32_t current_ = 0;             // cycle being run (valid inside run_cycle)
  uint32_t input_through_ = 0;       // device input is on bus 0 up to this cycle (a batch writes ahead)
  bool batch_ = false;               // every module was asked for cycles batch_first_..batch_last_
  uint32_t batch_first_ = 0;
  uint32_t batch_last_ = 0;

  // The graph: two schedule buffers, the one in use, the one handed over.
  Schedule buffers_[2];
  const Schedule* active_ = nullptr;
  std::atomic<Schedule*> pending_{nullptr};
  std::atomic<uint32_t> adopted_{0};
  std::atomic<uint32_t> settled_{0};
  uint32_t next_id_ = 1;
  bool ramping_ = false;             // some gain has not reached its target
  // Gain each edge has now: [consumer slot or kOutputRow][source slot or kDeviceSource].
  float gain_[shm::kMaxModules + 1][shm::kMaxModules + 1] = {};
  float out_g0_[shm::kMaxModules] = {}, out_g1_[shm::kMaxModules] = {};
  float gain_step_ = 1.0f;           // per block: a full swing over the fade time
  std::atomic<uint64_t> swaps_{0};
  uint32_t swap_ns_[kSwapHistory] = {};

  std::atomic<uint64_t> cycles_{0};
  std::atomic<uint32_t> cycle_now_{0};
  std::atomic<uint64_t> mix_nonfinite_{0};
  std::atomic<uint64_t> limited_frames_{0};
};

}  // namespace rackd::server
