// Test fixture for the control plane: a real (small) shared-memory segment laid
// out for a patch parsed from text, with parameter slots written the way
// server/engine.cpp writes them. Used by the unit tests and the fuzz harness.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <string>

#include "server/patch.hpp"
#include "shm/segment.hpp"

namespace rackd::control::test {

inline const char* kTwoModulePatch = R"(
[server]
rate = 48000
block = 128

[[module]]
name = "src"
type = "capture"
source = "tone"
channels = 2

[[module]]
name = "p"
type = "passthrough"
input = "src"

[output]
from = "p"

[osc.map]
"/1/fader1" = { to = "/p/gain_db", min = -12.0, max = 12.0 }
"/1/toggle1" = { to = "/p/bypass" }
"/1/fader2" = "/src/freq_hz"
)";

struct Rig {
  server::Patch patch;
  std::unique_ptr<shm::Segment> segment;
};

inline void copy_name(char (&dst)[shm::kNameBytes], const std::string& src) {
  std::memset(dst, 0, sizeof dst);
  std::memcpy(dst, src.data(), std::min<std::size_t>(src.size(), shm::kNameBytes - 1));
}

inline std::unique_ptr<Rig> make_rig(const std::string& text = kTwoModulePatch, const std::string& path = "test.toml") {
  static std::atomic<int> counter{0};
  auto rig = std::make_unique<Rig>();
  rig->patch = server::parse_patch(text, path);
  shm::SegmentPlan plan;
  plan.rate_hz = rig->patch.rate_hz;
  plan.block_frames = rig->patch.block_frames;
  plan.module_count = static_cast<uint32_t>(rig->patch.modules.size());
  plan.buses.push_back({rig->patch.input_channels, shm::kNoBus});
  for (uint32_t i = 0; i < plan.module_count; ++i) plan.buses.push_back({rig->patch.modules[i].out_channels, i});
  const std::string name = "rackd-test-control-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  rig->segment = shm::Segment::create(name, plan);
  for (uint32_t i = 0; i < plan.module_count; ++i) {
    const server::PatchModule& m = rig->patch.modules[i];
    shm::ModuleIn& in = rig->segment->module_in(i);
    copy_name(in.name, m.name);
    copy_name(in.type, m.type);
    in.in_channels = m.in_channels;
    in.out_channels = m.out_channels;
    in.flags = m.spec->bypassable ? shm::kFlagBypassable : 0u;
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
      for (uint32_t k = 0; k < shm::kParamValues; ++k)
        slot.value[k].store(k < m.params[p].size() ? m.params[p][k] : ps.def, std::memory_order_relaxed);
    }
    in.state.store(static_cast<uint32_t>(shm::ModuleState::kRunning), std::memory_order_release);
  }
  return rig;
}

// Every parameter value and counter a control message may change, for
// "changed nothing" comparisons.
inline std::string snapshot(const shm::Segment& seg) {
  std::string s;
  for (uint32_t i = 0; i < seg.module_count(); ++i) {
    const shm::ModuleIn& in = seg.module_in(i);
    s += std::to_string(in.param_epoch.load()) + ":" + std::to_string(in.bypassed.load()) + ":" +
         std::to_string(in.muted.load()) + ":";
    for (uint32_t p = 0; p < in.param_count; ++p)
      for (uint32_t k = 0; k < shm::kParamValues; ++k) s += std::to_string(in.params[p].value[k].load()) + ",";
    s += ";";
  }
  return s;
}

}  // namespace rackd::control::test
