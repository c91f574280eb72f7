// The schedule: the running graph as the audio thread sees it. A plain value,
// prepared on the control thread (or the offline render thread between two
// cycles) in one of two buffers the engine owns, then handed over whole: the
// audio thread adopts it at the start of a cycle and does nothing else for the
// change (as JACK2 double-buffers its graph). Nothing here allocates.
//
// Gains are not switched, they travel: the engine keeps the gain each edge
// has now, and every cycle moves it toward the gain the schedule asks for by
// the edge's step, so that it arrives in the fade time. An edge that appears starts from 0
// (fades in); an edge is left out of a schedule only once it has reached 0.
// A module that joins takes its inputs at their gains at once (its own output
// is what fades in, at its consumers).
#pragma once

#include <cstdint>

#include "graph/patch.hpp"
#include "shm/layout.hpp"

namespace rackd::server {

inline constexpr uint32_t kMaxInputs = graph::kMaxInputs;  // sources one module sums
inline constexpr uint32_t kOutputRow = shm::kMaxModules;  // the device output mixer, as a consumer
inline constexpr uint32_t kDeviceSource = shm::kMaxModules;  // the device input, as a source

// One source of a module's input (or of the device output).
struct Edge {
  uint32_t from = kDeviceSource;       // module slot, or kDeviceSource
  float gain = 1.0f;                   // linear gain to move toward
  // How far the gain moves per block: |gain - gain it had| * block / fade
  // frames, so every change of gain takes the fade time whatever its size.
  // 0: the schedule's fade_frames for a full swing.
  float step = 0.0f;
};

// One module in the schedule.
struct Step {
  uint32_t slot = 0;
  uint32_t in_channels = 0;
  uint32_t out_channels = 0;
  bool bypassable = false;             // its replacement may be its input (channel counts agree)
  bool fresh = false;                  // joins with this schedule: its per-slot state starts clean
  uint64_t deadline_offset_ns = 0;     // live: from cycle start (its share of the budget by depth)
  uint32_t input_count = 0;
  Edge inputs[kMaxInputs];
};

struct Schedule {
  uint32_t id = 0;                     // nonzero, bumped for every schedule handed over
  uint32_t fade_frames = 2400;         // a gain moves 0 -> 1 in this many frames
  uint32_t count = 0;                  // steps, in topological order
  Step steps[shm::kMaxModules];
  uint32_t output_count = 0;           // sources mixed into the device output
  Edge outputs[shm::kMaxModules];
};

// [control]/[setup] Each step's deadline: its share of `budget_ns` up to its
// place in the longest chain through it (depth before it, height after it),
// so a late module early in a chain leaves time for the rest of it, and a
// short branch keeps its whole budget however deep another branch is.
void set_deadlines(Schedule& s, double budget_ns);

}  // namespace rackd::server
