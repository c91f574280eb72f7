// Engine setup: lay the patch out in shared memory. [setup] thread only.
#include "server/engine.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace rackd::server {
namespace {

void copy_name(char (&dst)[shm::kNameBytes], const std::string& src) {
  std::memset(dst, 0, sizeof dst);
  std::memcpy(dst, src.data(), std::min<std::size_t>(src.size(), shm::kNameBytes - 1));
}

}  // namespace

Engine::Engine(const Patch& patch, const EngineConfig& config) : patch_(patch), config_(config) {
  if (patch_.modules.size() > shm::kMaxModules) throw std::runtime_error("too many modules");
  const shm::SegmentPlan plan =
      plan_for(config_.rate_hz, config_.block_frames, config_.input_channels, config_.rt_priority);
  shm::remove_stale_segments(getuid());
  segment_ = shm::Segment::create(shm::segment_name(getuid(), getpid()), plan);
  for (uint32_t b = 0; b < segment_->bus_count(); ++b) rings_.push_back(segment_->ring(b));
  for (uint32_t i = 0; i < shm::kMaxModules; ++i) {
    segment_->module_in(i).state.store(static_cast<uint32_t>(shm::ModuleState::kFree), std::memory_order_relaxed);
  }
  for (uint32_t i = 0; i < patch_.modules.size(); ++i) write_module_slot(*segment_, i, patch_.modules[i]);

  nodes_.resize(shm::kMaxModules);
  for (uint32_t i = 0; i < shm::kMaxModules; ++i) {
    Node& n = nodes_[i];
    n.in = &segment_->module_in(i);
    n.out = &segment_->module_out(i);
    n.slot = i;
    n.out_bus = i + 1;
  }
  waiting_.reserve(nodes_.size());
  wait_words_.reserve(nodes_.size() + 1);
  wait_values_.reserve(nodes_.size() + 1);
  safety_.setup(config_.rate_hz);
  const double period_ns = 1e9 * config_.block_frames / config_.rate_hz;
  dc_coef_ = static_cast<float>(1.0 - std::exp(-(period_ns * 1e-9) / 0.05));

  // The patch's graph, in effect from the first cycle at its full gains.
  Schedule& first = buffers_[0];
  schedule_for(patch_, {}, config_, first);
  first.id = next_id_++;
  adopt(first);
  for (uint32_t j = 0; j < first.output_count; ++j) gain_[kOutputRow][first.outputs[j].from] = first.outputs[j].gain;
  plan_inputs();
  settled_.store(first.id, std::memory_order_release);
}

Engine::~Engine() = default;

std::vector<uint32_t> Engine::swap_ns() const {
  const uint64_t n = swaps();
  return std::vector<uint32_t>(swap_ns_, swap_ns_ + std::min<uint64_t>(n, kSwapHistory));
}

Schedule* Engine::next_schedule() noexcept {
  if (pending_.load(std::memory_order_acquire) != nullptr) return nullptr;
  const uint32_t in_use = adopted_index();
  Schedule* s = &buffers_[1 - in_use];
  *s = buffers_[in_use];
  for (uint32_t k = 0; k < s->count; ++k) s->steps[k].fresh = false;
  return s;
}

uint32_t Engine::publish(Schedule* s) noexcept {
  s->id = next_id_++;
  if (next_id_ == 0) next_id_ = 1;
  pending_.store(s, std::memory_order_release);
  return s->id;
}

shm::SegmentPlan plan_for(uint32_t rate_hz, uint32_t block_frames, uint32_t input_channels, uint32_t rt_priority) {
  shm::SegmentPlan plan;
  plan.rate_hz = rate_hz;
  plan.block_frames = block_frames;
  plan.rt_priority = rt_priority;
  plan.module_count = shm::kMaxModules;
  plan.buses.push_back({input_channels, shm::kNoBus});
  for (uint32_t i = 0; i < plan.module_count; ++i) plan.buses.push_back({shm::kMaxChannels, i});
  return plan;
}

void write_module_slot(shm::Segment& segment, uint32_t slot, const PatchModule& m) {
  shm::ModuleIn& in = segment.module_in(slot);
  if (m.spec->params.size() > shm::kMaxParams) throw std::runtime_error("too many parameters");
  if (m.config_toml.size() >= shm::kConfigBytes)
    throw std::runtime_error("module \"" + m.name + "\": configuration too large");
  copy_name(in.name, m.name);
  copy_name(in.type, m.type);
  in.slot = slot;
  in.in_channels = m.in_channels;
  in.out_channels = m.out_channels;
  in.out_bus = slot + 1;
  in.flags = m.spec->bypassable ? shm::kFlagBypassable : 0u;
  in.upstream.store(shm::kNoSlot, std::memory_order_relaxed);
  in.followers.store(0, std::memory_order_relaxed);
  // Counters start again for a new module in a reused slot.
  in.late.store(0, std::memory_order_relaxed);
  in.replaced.store(0, std::memory_order_relaxed);
  in.restarts.store(0, std::memory_order_relaxed);
  in.nonfinite.store(0, std::memory_order_relaxed);
  in.muted.store(0, std::memory_order_relaxed);
  in.bypassed.store(0, std::memory_order_relaxed);
  in.mute_reason.store(0, std::memory_order_relaxed);
  in.busy_since_ns.store(0, std::memory_order_relaxed);
  in.first_good_ns.store(0, std::memory_order_relaxed);
  in.param_count = static_cast<uint32_t>(m.spec->params.size());
  for (uint32_t p = 0; p < in.param_count; ++p) {
    const registry::ParamSpec& ps = m.spec->params[p];
    shm::ParamSlot& ps_slot = in.params[p];
    copy_name(ps_slot.name, ps.name);
    ps_slot.kind = static_cast<uint32_t>(ps.kind);
    ps_slot.count = ps.count;
    ps_slot.min = ps.min;
    ps_slot.max = ps.max;
    ps_slot.def = ps.def;
    for (uint32_t k = 0; k < shm::kParamValues; ++k) {
      double v = k < m.params[p].size() ? m.params[p][k] : ps.def;
      ps_slot.value[k].store(v, std::memory_order_relaxed);
    }
  }
  in.param_epoch.fetch_add(1, std::memory_order_relaxed);
  std::memcpy(in.config, m.config_toml.data(), m.config_toml.size());
  in.config[m.config_toml.size()] = '\0';
  in.config_bytes = static_cast<uint32_t>(m.config_toml.size());
  shm::ModuleOut& out = segment.module_out(slot);
  out.setup_failed.store(0, std::memory_order_relaxed);
  out.error[0] = '\0';
  out.heartbeat.store(0, std::memory_order_relaxed);
  out.max_block_ns.store(0, std::memory_order_relaxed);
  out.last_block_ns.store(0, std::memory_order_relaxed);
  in.state.store(static_cast<uint32_t>(shm::ModuleState::kStarting), std::memory_order_release);
}

void set_deadlines(Schedule& s, double budget_ns) {
  uint32_t depth[shm::kMaxModules] = {}, height[shm::kMaxModules] = {};
  int at[shm::kMaxModules];
  std::fill(std::begin(at), std::end(at), -1);
  for (uint32_t k = 0; k < s.count; ++k) at[s.steps[k].slot] = static_cast<int>(k);
  for (uint32_t k = 0; k < s.count; ++k) {  // sources come first
    const Step& st = s.steps[k];
    for (uint32_t j = 0; j < st.input_count; ++j) {
      const uint32_t from = st.inputs[j].from;
      if (from < shm::kMaxModules && at[from] >= 0) depth[k] = std::max(depth[k], depth[at[from]] + 1);
    }
  }
  for (uint32_t k = s.count; k-- > 0;) {  // consumers come after
    const Step& st = s.steps[k];
    for (uint32_t j = 0; j < st.input_count; ++j) {
      const uint32_t from = st.inputs[j].from;
      if (from < shm::kMaxModules && at[from] >= 0)
        height[at[from]] = std::max(height[at[from]], height[k] + 1);
    }
  }
  for (uint32_t k = 0; k < s.count; ++k) {
    s.steps[k].deadline_offset_ns =
        static_cast<uint64_t>(budget_ns * (depth[k] + 1) / (depth[k] + height[k] + 1));
  }
}

void schedule_for(const Patch& patch, const std::vector<uint32_t>& slots, const EngineConfig& config,
                  Schedule& out) {
  auto slot_of = [&](std::size_t i) { return slots.empty() ? static_cast<uint32_t>(i) : slots[i]; };
  const double period_ns = 1e9 * config.block_frames / config.rate_hz;
  const double budget_ns = period_ns * config.budget_fraction;
  out.fade_frames = std::max<uint32_t>(1, static_cast<uint32_t>(config.fade_ms * 1e-3 * config.rate_hz + 0.5));
  out.count = 0;
  for (std::size_t i = 0; i < patch.modules.size(); ++i) {
    const PatchModule& m = patch.modules[i];
    Step& st = out.steps[out.count++];
    st.slot = slot_of(i);
    st.in_channels = m.in_channels;
    st.out_channels = m.out_channels;
    st.bypassable = m.spec->bypassable && m.in_channels == m.out_channels && m.has_input();
    st.fresh = true;
    st.input_count = 0;
    for (const PatchInput& pi : m.inputs) {
      if (st.input_count == kMaxInputs) break;
      Edge& e = st.inputs[st.input_count++];
      e.from = pi.from == kDeviceInput ? kDeviceSource : slot_of(static_cast<std::size_t>(pi.from));
      e.gain = static_cast<float>(std::pow(10.0, pi.gain_db / 20.0));
      if (pi.gain_db == 0.0) e.gain = 1.0f;
    }
  }
  out.output_count = 0;
  for (int o : patch.outputs) out.outputs[out.output_count++] = {slot_of(static_cast<std::size_t>(o)), 1.0f};
  set_deadlines(out, budget_ns);
}

}  // namespace rackd::server
