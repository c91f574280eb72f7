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
      plan_for(patch_, config_.rate_hz, config_.block_frames, config_.input_channels, config_.rt_priority);
  shm::remove_stale_segments(getuid());
  segment_ = shm::Segment::create(shm::segment_name(getuid(), getpid()), plan);
  for (uint32_t b = 0; b < segment_->bus_count(); ++b) rings_.push_back(segment_->ring(b));
  write_module_slots(*segment_, patch_);

  uint32_t max_depth = 0;
  for (const auto& m : patch_.modules) max_depth = std::max(max_depth, m.depth);
  const double period_ns = 1e9 * config_.block_frames / config_.rate_hz;
  const double budget_ns = period_ns * config_.budget_fraction;
  for (uint32_t i = 0; i < plan.module_count; ++i) {
    const PatchModule& m = patch_.modules[i];
    Node n;
    n.in = &segment_->module_in(i);
    n.out = &segment_->module_out(i);
    n.slot = i;
    n.input = m.input;
    n.in_channels = m.in_channels;
    n.out_channels = m.out_channels;
    n.out_bus = i + 1;
    n.depth = m.depth;
    n.bypassable = m.spec->bypassable && m.in_channels == m.out_channels && m.input != -1;
    // Each module gets the share of the budget up to its place in the longest
    // chain, so a late module early in a chain leaves time for the rest of it.
    n.deadline_offset_ns = static_cast<uint64_t>(budget_ns * (m.depth + 1) / (max_depth + 1));
    nodes_.push_back(n);
  }
  waiting_.reserve(nodes_.size());
  wait_words_.reserve(nodes_.size() + 1);
  wait_values_.reserve(nodes_.size() + 1);
  safety_.setup(config_.rate_hz);
  dc_coef_ = static_cast<float>(1.0 - std::exp(-(period_ns * 1e-9) / 0.05));
}

Engine::~Engine() = default;

shm::SegmentPlan plan_for(const Patch& patch, uint32_t rate_hz, uint32_t block_frames, uint32_t input_channels,
                          uint32_t rt_priority) {
  shm::SegmentPlan plan;
  plan.rate_hz = rate_hz;
  plan.block_frames = block_frames;
  plan.rt_priority = rt_priority;
  plan.module_count = static_cast<uint32_t>(patch.modules.size());
  plan.buses.push_back({input_channels, shm::kNoBus});
  for (uint32_t i = 0; i < plan.module_count; ++i) plan.buses.push_back({patch.modules[i].out_channels, i});
  return plan;
}

void write_module_slots(shm::Segment& segment, const Patch& patch) {
  for (uint32_t i = 0; i < patch.modules.size(); ++i) {
    const PatchModule& m = patch.modules[i];
    shm::ModuleIn& in = segment.module_in(i);
    copy_name(in.name, m.name);
    copy_name(in.type, m.type);
    in.in_channels = m.in_channels;
    in.out_channels = m.out_channels;
    in.out_bus = i + 1;
    in.flags = m.spec->bypassable ? shm::kFlagBypassable : 0u;
    in.upstream = m.input >= 0 ? static_cast<uint32_t>(m.input) : shm::kNoSlot;
    in.followers = 0;
    for (const PatchModule& other : patch.modules) in.followers += other.input == static_cast<int>(i) ? 1u : 0u;
    if (m.spec->params.size() > shm::kMaxParams) throw std::runtime_error("too many parameters");
    in.param_count = static_cast<uint32_t>(m.spec->params.size());
    for (uint32_t p = 0; p < in.param_count; ++p) {
      const registry::ParamSpec& ps = m.spec->params[p];
      shm::ParamSlot& slot = in.params[p];
      copy_name(slot.name, ps.name);
      slot.kind = static_cast<uint32_t>(ps.kind);
      slot.count = ps.count;
      slot.min = ps.min;
      slot.max = ps.max;
      slot.def = ps.def;
      for (uint32_t k = 0; k < shm::kParamValues; ++k) {
        double v = k < m.params[p].size() ? m.params[p][k] : ps.def;
        slot.value[k].store(v, std::memory_order_relaxed);
      }
    }
    if (m.config_toml.size() >= shm::kConfigBytes)
      throw std::runtime_error("module \"" + m.name + "\": configuration too large");
    std::memcpy(in.config, m.config_toml.data(), m.config_toml.size());
    in.config[m.config_toml.size()] = '\0';
    in.config_bytes = static_cast<uint32_t>(m.config_toml.size());
    in.state.store(static_cast<uint32_t>(shm::ModuleState::kStarting), std::memory_order_release);
  }
}

}  // namespace rackd::server
