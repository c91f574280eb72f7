// The schedule's side of a cycle: adopting a schedule handed over by the
// control thread, moving every edge's gain toward its target, summing the
// inputs the server composes, and mixing the device output. [rt] everything
// in this file; it runs on the device driver's audio thread (see engine.hpp
// and schedule.hpp), between and around the launches in scheduler.cpp.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "server/engine.hpp"
#include "shm/futex.hpp"

namespace rackd::server {

void Engine::adopt_pending() noexcept {
  if (Schedule* next = pending_.load(std::memory_order_acquire)) {
    adopt(*next);
    pending_.store(nullptr, std::memory_order_release);
    plan_inputs();
  }
}

// A schedule handed over by the control thread becomes the graph. Steps that
// join start from a clean slot; their inputs take their gains at once.
void Engine::adopt(const Schedule& s) noexcept {
  const uint64_t t0 = shm::now_ns();
  for (Node& n : nodes_) n.scheduled = false;
  for (uint32_t k = 0; k < s.count; ++k) {
    const Step& st = s.steps[k];
    if (st.slot >= nodes_.size()) continue;
    Node& n = nodes_[st.slot];
    n.scheduled = true;
    n.step = &st;
    n.in_channels = st.in_channels;
    n.out_channels = st.out_channels;
    n.bypassable = st.bypassable;
    n.deadline_offset_ns = st.deadline_offset_ns;
    if (!st.fresh) continue;
    n.generation = 0;
    n.sent_valid = false;
    n.replacing = false;
    n.spare_zero = false;
    n.have_last_good = false;
    n.first_good_pending = true;
    n.dc = 0.0f;
    n.upstream_told = shm::kNoSlot;
    n.followers_told = 0;
    n.must_wake = true;
    n.ref = {};
    float* row = gain_[st.slot];
    for (uint32_t j = 0; j <= shm::kMaxModules; ++j) row[j] = 0.0f;
    for (uint32_t j = 0; j < st.input_count; ++j) {
      if (st.inputs[j].from <= shm::kMaxModules) row[st.inputs[j].from] = st.inputs[j].gain;
    }
  }
  active_ = &s;
  gain_step_ = std::min(1.0f, static_cast<float>(config_.block_frames) / static_cast<float>(std::max(1u, s.fade_frames)));
  adopted_.store(s.id, std::memory_order_release);
  if (s.id > 1) {  // the patch's own first schedule is adopted at setup
    const uint64_t n = swaps_.load(std::memory_order_relaxed);
    swap_ns_[n % kSwapHistory] = static_cast<uint32_t>(std::min<uint64_t>(shm::now_ns() - t0, UINT32_MAX));
    swaps_.store(n + 1, std::memory_order_release);
  }
}

namespace {

// [rt] `g` moved toward `target` by `step`, landing on the target exactly.
float approach(float g, float target, float step) noexcept RACKD_RT {
  if (g < target) return std::min(g + step, target);
  if (g > target) return std::max(g - step, target);
  return g;
}

// [rt] y = x * gain (`first`) or y += x * gain, the gain going linearly from
// g0 to g1 over the block (reaching g1 on its last frame). At unity the block
// is copied or added as it is: a single source stays bit-exact (even -0.0).
void add_block(float* y, const float* x, uint32_t frames, float g0, float g1, bool first) noexcept RACKD_RT {
  if (g0 == 1.0f && g1 == 1.0f) {
    if (first) std::memcpy(y, x, frames * sizeof(float));
    else for (uint32_t i = 0; i < frames; ++i) y[i] += x[i];
    return;
  }
  const float dg = (g1 - g0) * (1.0f / static_cast<float>(frames));
  if (first) {
    for (uint32_t i = 0; i < frames; ++i) y[i] = x[i] * (g0 + dg * static_cast<float>(i + 1));
  } else {
    for (uint32_t i = 0; i < frames; ++i) y[i] += x[i] * (g0 + dg * static_cast<float>(i + 1));
  }
}

}  // namespace

// This cycle's gains and the way each module takes its input: straight from
// one source's block, or summed by the server. Tells modules the upstream
// they may follow and how many follow them when that changes.
void Engine::plan_inputs() noexcept {
  const Schedule& s = *active_;
  bool ramping = false;
  uint32_t followers[shm::kMaxModules] = {};
  for (uint32_t k = 0; k < s.count; ++k) {
    Node& n = node_at(k);
    const Step& st = s.steps[k];
    n.input = -1;
    n.summed = false;
    bool unity = true;
    for (uint32_t j = 0; j < st.input_count; ++j) {
      const Edge& e = st.inputs[j];
      const float g0 = e.from <= shm::kMaxModules ? gain_[st.slot][e.from] : 0.0f;
      const float g1 = approach(g0, e.gain, e.step > 0.0f ? e.step : gain_step_);
      n.g0[j] = g0;
      n.g1[j] = g1;
      ramping = ramping || g0 != g1;
      unity = unity && g0 == 1.0f && g1 == 1.0f;
    }
    if (st.input_count == 1 && unity) {
      const uint32_t from = st.inputs[0].from;
      n.input = from == kDeviceSource ? kDeviceInput : static_cast<int>(from);
      if (n.input >= 0 && !nodes_[from].scheduled) n.input = -1;  // never: sources leave after their edges
    } else if (st.input_count > 0) {
      n.summed = true;
    }
    const uint32_t up = n.input >= 0 ? static_cast<uint32_t>(n.input) : shm::kNoSlot;
    if (up != n.upstream_told) {
      n.in->upstream.store(up, std::memory_order_relaxed);
      n.upstream_told = up;
      n.must_wake = true;
    }
    if (n.input >= 0) ++followers[n.input];
  }
  for (uint32_t k = 0; k < s.count; ++k) {
    Node& n = node_at(k);
    if (followers[n.slot] != n.followers_told) {
      n.in->followers.store(followers[n.slot], std::memory_order_relaxed);
      n.followers_told = followers[n.slot];
    }
  }
  for (uint32_t j = 0; j < s.output_count; ++j) {
    const uint32_t from = s.outputs[j].from;
    out_g0_[j] = from < shm::kMaxModules ? gain_[kOutputRow][from] : 0.0f;
    out_g1_[j] = approach(out_g0_[j], s.outputs[j].gain, s.outputs[j].step > 0.0f ? s.outputs[j].step : gain_step_);
    ramping = ramping || out_g0_[j] != out_g1_[j];
  }
  ramping_ = ramping;
}

// The end of a block: every gain is where this block left it.
void Engine::commit_gains() noexcept {
  const Schedule& s = *active_;
  if (ramping_) {
    for (uint32_t k = 0; k < s.count; ++k) {
      const Step& st = s.steps[k];
      const Node& n = nodes_[st.slot];
      for (uint32_t j = 0; j < st.input_count; ++j) {
        if (st.inputs[j].from <= shm::kMaxModules) gain_[st.slot][st.inputs[j].from] = n.g1[j];
      }
    }
    for (uint32_t j = 0; j < s.output_count; ++j) {
      if (s.outputs[j].from < shm::kMaxModules) gain_[kOutputRow][s.outputs[j].from] = out_g1_[j];
    }
  } else if (settled_.load(std::memory_order_relaxed) != s.id) {
    settled_.store(s.id, std::memory_order_release);
  }
}

bool Engine::inputs_resolved(const Node& n) const noexcept {
  const Step& st = *n.step;
  for (uint32_t j = 0; j < st.input_count; ++j) {
    const uint32_t from = st.inputs[j].from;
    if (from < shm::kMaxModules && nodes_[from].scheduled && !nodes_[from].resolved) return false;
  }
  return true;
}

// Block of source `from` for this cycle (nullptr: none) and its channel count.
const float* Engine::source_block(uint32_t from, uint32_t& channels) const noexcept {
  if (from == kDeviceSource) {
    channels = config_.input_channels;
    return channels ? rings_[0].block(current_) : nullptr;
  }
  if (from >= shm::kMaxModules || !nodes_[from].scheduled) return nullptr;
  const Node& u = nodes_[from];
  if (u.ref.bus >= rings_.size()) return nullptr;
  channels = u.out_channels;
  return rings_[u.ref.bus].slot_data(u.ref.slot);
}

// n's sources, each at its gain (ramped over the block when it moves), into
// n's mix slot. Channel c of the input is channel c of every source; a source
// with fewer channels adds nothing to the rest.
void Engine::sum_inputs(Node& n) noexcept {
  const Step& st = *n.step;
  const shm::RingView& r = rings_[n.out_bus];
  float* dst = r.slot_data(r.mix_slot());
  const uint32_t frames = config_.block_frames;
  for (uint32_t c = 0; c < n.in_channels; ++c) {
    float* y = dst + std::size_t{c} * frames;
    bool written = false;
    for (uint32_t j = 0; j < st.input_count; ++j) {
      const float g0 = n.g0[j], g1 = n.g1[j];
      if (g0 == 0.0f && g1 == 0.0f) continue;
      uint32_t channels = 0;
      const float* block = source_block(st.inputs[j].from, channels);
      if (!block || c >= channels) continue;
      add_block(y, block + std::size_t{c} * frames, frames, g0, g1, !written);
      written = true;
    }
    if (!written) std::memset(y, 0, frames * sizeof(float));
  }
}

void Engine::mix(float* const* out) noexcept {
  const uint32_t frames = config_.block_frames;
  const uint32_t out_ch = config_.output_channels;
  // The first contribution to a channel at unity is copied, later ones added:
  // a single sink reaches the device bit-exact (even -0.0).
  bool written[shm::kMaxChannels] = {};
  const Schedule& s = *active_;
  for (uint32_t j = 0; j < s.output_count; ++j) {
    const uint32_t from = s.outputs[j].from;
    if (from >= shm::kMaxModules) continue;
    const Node& n = nodes_[from];
    const float g0 = out_g0_[j], g1 = out_g1_[j];
    if (!n.scheduled || n.ref.bus >= rings_.size() || (g0 == 0.0f && g1 == 0.0f)) continue;
    const float* block = rings_[n.ref.bus].slot_data(n.ref.slot);
    const uint32_t bus_ch = n.out_channels;
    for (uint32_t c = 0; c < out_ch; ++c) {
      // A mono bus feeds every output; otherwise channel c feeds output c.
      uint32_t src = bus_ch == 1 ? 0 : c;
      if (src >= bus_ch) continue;
      add_block(out[c], block + std::size_t{src} * frames, frames, g0, g1, !written[c]);
      written[c] = true;
    }
  }
  for (uint32_t c = 0; c < out_ch; ++c) {
    if (!written[c]) std::memset(out[c], 0, frames * sizeof(float));
  }
  uint32_t bad = safety_.process(out, out_ch, frames);
  if (bad) mix_nonfinite_.store(mix_nonfinite_.load(std::memory_order_relaxed) + bad, std::memory_order_relaxed);
  limited_frames_.store(safety_.limited_frames(), std::memory_order_relaxed);
}

}  // namespace rackd::server
