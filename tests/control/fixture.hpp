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

#include "server/engine.hpp"
#include "graph/patch.hpp"
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
  graph::Patch patch;
  std::unique_ptr<shm::Segment> segment;
};

inline void copy_name(char (&dst)[shm::kNameBytes], const std::string& src) {
  std::memset(dst, 0, sizeof dst);
  std::memcpy(dst, src.data(), std::min<std::size_t>(src.size(), shm::kNameBytes - 1));
}

inline std::unique_ptr<Rig> make_rig(const std::string& text = kTwoModulePatch, const std::string& path = "test.toml") {
  static std::atomic<int> counter{0};
  auto rig = std::make_unique<Rig>();
  rig->patch = graph::parse_patch(text, path);
  const shm::SegmentPlan plan =
      server::plan_for(rig->patch.rate_hz, rig->patch.block_frames, rig->patch.input_channels, 0);
  const std::string name = "rackd-test-control-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  rig->segment = shm::Segment::create(name, plan);
  // The same slots a running server writes; then every module counts as running.
  for (uint32_t i = 0; i < rig->patch.modules.size(); ++i)
    server::write_module_slot(*rig->segment, i, rig->patch.modules[i]);
  for (uint32_t i = 0; i < rig->patch.modules.size(); ++i)
    rig->segment->module_in(i).state.store(static_cast<uint32_t>(shm::ModuleState::kRunning),
                                           std::memory_order_release);
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
