// The graph scheduler: one device cycle (adoption, gains, sums and the output
// mix are in graph_cycle.cpp). [rt] everything in this file; it runs
// on the device driver's audio thread and only waits on futexes.
#include <cmath>
#include <cstring>

#include "server/engine.hpp"
#include "shm/cycle.hpp"
#include "shm/futex.hpp"

namespace rackd::server {

using shm::ModuleState;
using shm::completed;

void Engine::run_cycles(const float* const* in, float* const* out, uint32_t blocks) noexcept {
  const uint32_t frames = config_.block_frames;
  const uint32_t in_ch = std::min(config_.input_channels, shm::kMaxChannels);
  const uint32_t out_ch = std::min(config_.output_channels, shm::kMaxChannels);
  adopt_pending();
  if (blocks > 1 && batchable(blocks)) start_batch(in, blocks);
  const float* ins[shm::kMaxChannels];
  float* outs[shm::kMaxChannels];
  for (uint32_t b = 0; b < blocks; ++b) {
    const std::size_t at = std::size_t{b} * frames;
    for (uint32_t c = 0; c < in_ch; ++c) ins[c] = in && in[c] ? in[c] + at : nullptr;
    for (uint32_t c = 0; c < out_ch; ++c) outs[c] = out[c] + at;
    run_pass(ins, outs);
  }
}

// Device input for `cycle` onto bus 0: channel c from in[c] + at (none: silence).
void Engine::put_device_input(uint32_t cycle, const float* const* in, std::size_t at) noexcept {
  const shm::RingView& dev = rings_[0];
  const uint32_t frames = config_.block_frames;
  for (uint32_t c = 0; c < config_.input_channels; ++c) {
    float* dst = dev.channel(cycle, c);
    if (in && in[c]) std::memcpy(dst, in[c] + at, frames * sizeof(float));
    else std::memset(dst, 0, frames * sizeof(float));
  }
  dev.publish(cycle);
  input_through_ = cycle;
}

// Offline only, and only when every module will take every block of the batch
// as it comes: none is dead, restarting, muted, bypassed, busy or coming back
// from a replacement (that block is crossfaded first).
bool Engine::batchable(uint32_t blocks) noexcept {
  if (!config_.offline || blocks > shm::kMaxBatch) return false;
  if (cycle_ > UINT32_MAX - blocks) return false;  // cycle numbers skip 0 when they wrap
  if (ramping_) return false;                      // gains move block by block
  for (uint32_t k = 0; k < active_->count; ++k) {
    Node& n = node_at(k);
    if (n.summed || n.replacing || verdict(n) != Verdict::kSend) return false;
  }
  return true;
}

// Puts the device input of every cycle of the batch on bus 0 and asks every
// module for all of them. A module with a module input follows it block by
// block; all are armed before any is woken.
void Engine::start_batch(const float* const* in, uint32_t blocks) noexcept {
  const uint32_t first = cycle_;
  const uint32_t last = first + blocks - 1;
  for (uint32_t b = 0; b < blocks; ++b) put_device_input(first + b, in, std::size_t{b} * config_.block_frames);
  const uint64_t now = shm::now_ns();
  for (uint32_t k = 0; k < active_->count; ++k) {
    Node& n = node_at(k);
    arm(n, batch_input(n, first), n.input >= 0 ? n.input : -1, last, blocks);
    stamp_busy(n, now);
  }
  for (uint32_t k = 0; k < active_->count; ++k) {
    Node& n = node_at(k);
    // Followers start on their upstream's completion, unless it just changed.
    if (n.input < 0 || n.must_wake) shm::futex_wake(n.in->arm, 1);
    n.must_wake = false;
  }
  batch_ = true;
  batch_first_ = first;
  batch_last_ = last;
}

// Something failed at `cycle` of a batch: every module's request now ends at
// that cycle (a module that has run further keeps what it ran), and the rest
// of the batch runs cycle by cycle.
void Engine::cut_batch(uint32_t cycle) noexcept {
  if (!batch_) return;
  batch_ = false;
  for (uint32_t k = 0; k < active_->count; ++k) {
    Node& n = node_at(k);
    arm(n, batch_input(n, batch_first_), n.input >= 0 ? n.input : -1, cycle, cycle - batch_first_ + 1);
    shm::futex_wake(n.in->arm, 1);
  }
}

// Where a batch starting at `first` takes n's first block from: its input's
// own ring (nothing is replaced in a batch).
BlockRef Engine::batch_input(const Node& n, uint32_t first) const noexcept {
  if (n.input == kDeviceInput) return {shm::kDeviceBus, rings_[0].slot_of(first)};
  if (n.input < 0) return {};
  const uint32_t bus = nodes_[static_cast<std::size_t>(n.input)].out_bus;
  return {bus, rings_[bus].slot_of(first)};
}

// Tagged with n's process generation: if the supervisor replaced the process
// meanwhile, it sees a stamp of the old one and ignores it.
void Engine::stamp_busy(Node& n, uint64_t since) noexcept {
  n.in->busy_generation.store(n.generation, std::memory_order_relaxed);
  n.in->busy_since_ns.store(since, std::memory_order_release);
}

// One cycle: what run_cycle() did before batches; in a batch, every module
// has been asked for this cycle already and is only waited for.
void Engine::run_pass(const float* const* in, float* const* out) noexcept {
  const uint32_t cycle = cycle_;
  current_ = cycle;
  cycle_now_.store(cycle, std::memory_order_relaxed);
  const uint64_t start = shm::now_ns();
  // A batch has put the device input on bus 0 already.
  if (!completed(input_through_ + 1, cycle)) put_device_input(cycle, in, 0);

  if (!batch_) adopt_pending();  // one handed over between the blocks of a run_cycles() call
  const uint32_t count = active_->count;
  for (uint32_t k = 0; k < count; ++k) {
    Node& n = node_at(k);
    n.launched = n.resolved = n.waiting = false;
    n.follow = -1;
  }
  if (batch_) {
    for (uint32_t k = 0; k < count; ++k) {
      Node& n = node_at(k);
      n.launched = n.waiting = true;
      n.follow = n.input >= 0 ? n.input : -1;
      n.deadline_ns = n.follow >= 0 ? ~0ull : start + config_.offline_timeout_ns;
    }
  }
  std::size_t unresolved = count;
  while (unresolved > 0) {
    bool progress = false;
    // Topological order: a forward pass launches every module whose inputs
    // have been resolved.
    for (uint32_t k = 0; k < count; ++k) {
      Node& n = node_at(k);
      if (n.launched) continue;
      if (n.summed) {
        if (!inputs_resolved(n)) continue;
        sum_inputs(n);
      } else if (n.input >= 0 && !nodes_[static_cast<std::size_t>(n.input)].resolved) {
        // The input is still being computed. A module that will take it
        // as it comes is armed to start on its own when its upstream
        // completes; anything else (a replacement needs the input's final
        // block, a returning upstream's block is crossfaded first) waits.
        const Node& u = nodes_[static_cast<std::size_t>(n.input)];
        if (u.waiting && !u.replacing && verdict(n) == Verdict::kSend)
          send(n, {u.out_bus, rings_[u.out_bus].slot_of(cycle)}, n.input, cycle, start);
        continue;
      }
      launch(n, cycle, start);
      if (n.resolved) {
        --unresolved;
        progress = true;
      }
    }
    // Woken only now that the pass has armed every follower: a module that
    // completes at once cannot overtake the arming of the one it feeds.
    for (uint32_t k = 0; k < count; ++k) {
      Node& n = node_at(k);
      if (!n.wake_pending) continue;
      n.wake_pending = false;
      shm::futex_wake(n.in->arm, 1);
    }
    const uint64_t now = shm::now_ns();
    for (uint32_t k = 0; k < count; ++k) {
      Node& n = node_at(k);
      if (n.waiting && poll(n, cycle, now)) {
        --unresolved;
        progress = true;
      }
    }
    if (!progress && unresolved > 0) wait_for_progress();
  }

  mix(out);
  commit_gains();
  if (!batch_ || cycle == batch_last_) plan_inputs();  // the next block's gains (in a batch they stay)
  for (auto& r : rings_) r.release(cycle);
  if (batch_ && cycle == batch_last_) batch_ = false;
  cycle_ = cycle + 1 == 0 ? 1 : cycle + 1;
  cycles_.store(cycles_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

bool Engine::usable(const Node& n, uint32_t& generation) const noexcept {
  auto state = static_cast<ModuleState>(n.in->state.load(std::memory_order_acquire));
  generation = n.in->generation.load(std::memory_order_acquire);
  if (state != ModuleState::kStarting && state != ModuleState::kRunning) return false;
  return n.out->ready_generation.load(std::memory_order_acquire) == generation;
}

BlockRef Engine::input_ref(const Node& n) const noexcept {
  if (n.summed) return {n.out_bus, rings_[n.out_bus].mix_slot()};
  if (n.input == kDeviceInput) return {shm::kDeviceBus, rings_[0].slot_of(current_)};
  if (n.input < 0) return {};
  return nodes_[static_cast<std::size_t>(n.input)].ref;
}

// What this cycle does with `n`; side effects are limited to taking note of a
// new process generation, so it may be asked more than once per cycle.
Engine::Verdict Engine::verdict(Node& n) noexcept {
  uint32_t generation = 0;
  if (!usable(n, generation)) return Verdict::kBypass;
  if (generation != n.generation) {
    // A new process: nothing of the old one's is outstanding, it starts from
    // a clean state, and its first good block is the end of its restart.
    n.generation = generation;
    n.sent_valid = false;
    n.first_good_pending = true;
    n.dc = 0.0f;
    n.in->busy_since_ns.store(0, std::memory_order_relaxed);
    // What the previous process completed means nothing for this one (it may
    // have run ahead of a batch the server had given up on).
    segment_->module_out(n.slot).done.store(current_, std::memory_order_relaxed);
  }
  if (n.in->muted.load(std::memory_order_relaxed)) return Verdict::kSilence;
  if (n.in->bypassed.load(std::memory_order_relaxed)) return Verdict::kBypass;
  // Still busy with an earlier cycle: it is not sent this one.
  if (n.sent_valid && !completed(n.out->done.load(std::memory_order_acquire), n.sent)) return Verdict::kBusy;
  return Verdict::kSend;
}

void Engine::launch(Node& n, uint32_t cycle, uint64_t cycle_start) noexcept {
  switch (verdict(n)) {
    case Verdict::kSend:
      send(n, input_ref(n), -1, cycle, cycle_start);
      return;
    case Verdict::kBusy:
      // The block it will not deliver in time counts as late.
      n.in->late.fetch_add(1, std::memory_order_relaxed);
      [[fallthrough]];
    case Verdict::kBypass:
      n.launched = true;
      replace(n, cycle, true);
      return;
    case Verdict::kSilence:
      n.launched = true;
      replace(n, cycle, false);
      return;
  }
}

void Engine::send(Node& n, BlockRef input, int follow, uint32_t cycle, uint64_t cycle_start) noexcept {
  n.launched = true;
  arm(n, input, follow, cycle, 1);
  // A follower of its patch upstream sleeps on that module's completion word
  // between cycles; that completion wakes it. Everyone else is woken at the
  // end of the pass. Should the upstream have completed already (seq_cst with
  // the follower's read of `done` before it sleeps: either it sees the new arm
  // word or this load sees the completion), it is woken here.
  if (follow < 0 || follow != n.input || n.must_wake) {
    n.wake_pending = true;
    n.must_wake = false;
  } else if (completed(nodes_[static_cast<std::size_t>(follow)].out->done.load(std::memory_order_seq_cst), cycle)) {
    shm::futex_wake(n.in->arm, 1);
  }
  stamp_busy(n, cycle_start);
  n.waiting = true;
  // Offline, a module's time starts when its input exists: a follower's clock
  // starts in poll() once the module it follows is resolved.
  n.deadline_ns = !config_.offline ? cycle_start + n.deadline_offset_ns
                  : follow >= 0    ? ~0ull
                                   : shm::now_ns() + config_.offline_timeout_ns;
}

// Writes what n is to run (cycles last - count + 1 .. last) and where its
// first block comes from (`follow`: the node whose completion starts it, or
// -1), then publishes it by bumping the arm word. seq_cst: see send().
void Engine::arm(Node& n, BlockRef input, int follow, uint32_t last, uint32_t count) noexcept {
  n.follow = follow;
  n.sent = last;
  n.sent_valid = true;
  n.in->request.store(last, std::memory_order_relaxed);
  n.in->request_count.store(count, std::memory_order_relaxed);
  n.in->request_in_bus.store(input.bus, std::memory_order_relaxed);
  n.in->request_in_slot.store(input.slot, std::memory_order_relaxed);
  n.in->request_follow.store(follow >= 0 ? nodes_[static_cast<std::size_t>(follow)].slot : shm::kNoSlot,
                             std::memory_order_relaxed);
  n.in->arm.fetch_add(1, std::memory_order_seq_cst);
}

// `u` was replaced before it completed: modules armed to start on its
// completion start now, on its replacement. One that saw the completion after
// all (it came just after the deadline) has taken the real block; either way
// its input is a checked, finite block.
void Engine::rearm_followers(const Node& u) noexcept {
  const int index = static_cast<int>(u.slot);
  for (uint32_t k = 0; k < active_->count; ++k) {
    Node& f = node_at(k);
    if (!f.waiting || f.follow != index) continue;
    arm(f, input_ref(f), -1, current_, 1);  // the same cycle, its input now final
    shm::futex_wake(f.in->arm, 1);
  }
}

bool Engine::poll(Node& n, uint32_t cycle, uint64_t now) noexcept {
  // A follower answers for nothing before its input exists.
  if (n.follow >= 0 && !nodes_[static_cast<std::size_t>(n.follow)].resolved) return false;
  if (n.deadline_ns == ~0ull) n.deadline_ns = now + config_.offline_timeout_ns;
  if (completed(n.out->done.load(std::memory_order_acquire), cycle)) {
    complete(n, cycle);
    return true;
  }
  auto state = static_cast<ModuleState>(n.in->state.load(std::memory_order_acquire));
  const bool gone = (state != ModuleState::kStarting && state != ModuleState::kRunning) ||
                    n.in->generation.load(std::memory_order_acquire) != n.generation;
  if (gone) {
    cut_batch(cycle);
    replace(n, cycle, true);
    rearm_followers(n);
    return true;
  }
  if (now >= n.deadline_ns) {
    // In a batch a module wakes the modules it feeds only after its last
    // block: one that stalls mid-batch may leave a follower asleep on blocks
    // it did deliver. Cutting the batch short wakes them; the follower is
    // given its time again.
    if (batch_ && n.follow >= 0 &&
        !completed(nodes_[static_cast<std::size_t>(n.follow)].out->done.load(std::memory_order_acquire), batch_last_)) {
      cut_batch(cycle);
      n.deadline_ns = now + config_.offline_timeout_ns;
      return false;
    }
    n.in->late.fetch_add(1, std::memory_order_relaxed);
    cut_batch(cycle);
    replace(n, cycle, true);
    rearm_followers(n);
    return true;
  }
  return false;
}

void Engine::complete(Node& n, uint32_t cycle) noexcept {
  n.waiting = false;
  if (shm::at_or_past(cycle, n.sent)) n.in->busy_since_ns.store(0, std::memory_order_relaxed);  // not mid-batch
  const shm::RingView& r = rings_[n.out_bus];
  const float* block = r.block(cycle);
  const BlockStats st = block_stats(block, n.out_channels * config_.block_frames);
  // Hostile or broken output: the offender is muted from this very block on,
  // until it is restarted.
  shm::MuteReason reason = shm::MuteReason::kNone;
  if (st.nonfinite) {
    reason = shm::MuteReason::kNonFinite;
  } else if (st.peak > shm::kMaxSaneLevel) {
    reason = shm::MuteReason::kLevel;
  } else {
    // Full-scale DC over a whole block is muted at once; lesser DC once it
    // has been held for about 50 ms.
    n.dc += (st.mean - n.dc) * dc_coef_;
    if (std::fabs(st.mean) >= shm::kFullScaleDc || std::fabs(n.dc) > shm::kMaxSaneDc) reason = shm::MuteReason::kDc;
  }
  if (reason != shm::MuteReason::kNone) {
    if (st.nonfinite) n.in->nonfinite.fetch_add(1, std::memory_order_relaxed);
    mute(n, reason);
    cut_batch(cycle);
    replace(n, cycle, false);
    rearm_followers(n);  // they take the silence from this block on
    return;
  }
  if (n.first_good_pending) {
    n.first_good_pending = false;
    n.in->first_good_ns.store(shm::now_ns(), std::memory_order_release);
  }
  if (n.replacing) {
    fade_in(n, block);  // back from a replacement: crossfade, no click
  } else {
    n.ref = {n.out_bus, r.slot_of(cycle)};
  }
  n.resolved = true;
  n.replacing = false;
  n.have_last_good = true;
  n.last_good = cycle;
}

void Engine::mute(Node& n, shm::MuteReason reason) noexcept {
  n.in->mute_reason.store(static_cast<uint32_t>(reason), std::memory_order_relaxed);
  n.in->muted.store(1, std::memory_order_release);
}

// Over one block, from what replaced the module (its input where bypassable,
// else silence) to the module's own block, written into the spare slot.
void Engine::fade_in(Node& n, const float* block) noexcept {
  const shm::RingView& r = rings_[n.out_bus];
  float* spare = r.slot_data(r.spare_slot());
  const BlockRef from = n.bypassable ? input_ref(n) : BlockRef{};
  const float* old = from.bus < rings_.size() ? rings_[from.bus].slot_data(from.slot) : nullptr;
  const uint32_t frames = config_.block_frames;
  const float step = 1.0f / static_cast<float>(frames);
  for (uint32_t c = 0; c < n.out_channels; ++c) {
    for (uint32_t i = 0; i < frames; ++i) {
      const std::size_t k = std::size_t{c} * frames + i;
      const float o = old ? old[k] : 0.0f;
      // o + w * (x - o): exactly x where the two agree (a bypassed passthrough).
      spare[k] = o + step * static_cast<float>(i + 1) * (block[k] - o);
    }
  }
  n.spare_zero = false;
  n.ref = {n.out_bus, r.spare_slot()};
}

void Engine::replace(Node& n, uint32_t cycle, bool allow_bypass) noexcept {
  n.in->replaced.fetch_add(1, std::memory_order_relaxed);
  n.waiting = false;
  n.resolved = true;
  if (allow_bypass && n.bypassable) {
    n.ref = input_ref(n);  // zero copy: downstream reads this module's input
    n.replacing = true;
    return;
  }
  const shm::RingView& r = rings_[n.out_bus];
  float* spare = r.slot_data(r.spare_slot());
  const uint32_t frames = config_.block_frames;
  if (!n.replacing && n.have_last_good && n.last_good + 1 == cycle) {
    // First replaced block after a good one: fade the last good block out
    // instead of cutting to silence.
    const float* last = r.block(n.last_good);
    const float step = 1.0f / static_cast<float>(frames);
    for (uint32_t c = 0; c < n.out_channels; ++c) {
      for (uint32_t i = 0; i < frames; ++i) {
        std::size_t k = std::size_t{c} * frames + i;
        spare[k] = last[k] * (1.0f - step * static_cast<float>(i + 1));
      }
    }
    n.spare_zero = false;
  } else if (!n.spare_zero) {
    std::memset(spare, 0, std::size_t{n.out_channels} * frames * sizeof(float));
    n.spare_zero = true;
  }
  n.ref = {n.out_bus, r.spare_slot()};
  n.replacing = true;
}

void Engine::wait_for_progress() noexcept {
  waiting_.clear();
  wait_words_.clear();
  wait_values_.clear();
  // Read before any completion word: a death after this read changes it.
  const std::atomic<uint32_t>& poke = segment_->header().server_poke;
  wait_words_.push_back(&poke);
  wait_values_.push_back(poke.load(std::memory_order_seq_cst));
  uint64_t deadline = ~0ull;
  // A module that hands its block to a waiting follower need not wake the
  // server: the follower's completion (or the earliest deadline) will.
  const uint32_t count = active_->count;
  for (uint32_t k = 0; k < count; ++k) node_at(k).followed = false;
  for (uint32_t k = 0; k < count; ++k) {
    const Node& f = node_at(k);
    if (f.waiting && f.follow >= 0) nodes_[static_cast<std::size_t>(f.follow)].followed = true;
  }
  // In a batch nothing needs the server before a module has run all of it,
  // unless one has died already (its poke may have come before the read above):
  // the modules it feeds wait for it, and the server has to replace it first.
  bool all_alive = batch_;
  for (uint32_t k = 0; k < count && all_alive; ++k) {
    const Node& n = node_at(k);
    uint32_t generation = 0;
    all_alive = usable(n, generation) && generation == n.generation;
  }
  const uint32_t want = (all_alive ? batch_last_ : current_) + 1;
  for (uint32_t k = 0; k < count; ++k) {
    const uint32_t i = active_->steps[k].slot;
    Node& n = nodes_[i];
    if (!n.waiting) continue;
    if (n.deadline_ns < deadline) deadline = n.deadline_ns;
    if (n.followed) continue;
    waiting_.push_back(i);
    n.in->server_waiting.store(want, std::memory_order_seq_cst);
  }
  bool any_done = false;
  for (uint32_t i : waiting_) {
    const Node& n = nodes_[i];
    uint32_t v = n.out->done.load(std::memory_order_seq_cst);
    if (completed(v, current_)) any_done = true;
    wait_words_.push_back(&n.out->done);
    wait_values_.push_back(v);
  }
  if (!any_done && !waiting_.empty())
    shm::futex_wait_any(wait_words_.data(), wait_values_.data(), static_cast<uint32_t>(wait_words_.size()),
                        deadline);
  for (uint32_t i : waiting_) nodes_[i].in->server_waiting.store(0, std::memory_order_relaxed);
}

}  // namespace rackd::server
