// The per-cycle protocol between the server's audio thread and a module
// process, as explicit state machines. The words it moves are in layout.hpp
// (ModuleIn: arm, request_*, upstream, followers, server_waiting; ModuleOut:
// done, cycle_state); this file says which states those words describe and
// which transitions are allowed. [any] thread; header only.
//
// Module side (ModuleOut::cycle_state, written by the module, read by the
// server and tools only for diagnosis: like everything a module writes it is
// untrusted and never followed):
//
//   kIdle ──arm word moves, input ready──────────────▶ kRunning
//   kIdle ──arm word moves, input not ready yet──────▶ kWaiting
//   kWaiting ──its `follow` module's done covers the cycle──▶ kRunning
//   kWaiting ──re-armed with nothing left to run─────▶ kIdle
//   kRunning ──block written, ring published, done = cycle + 1──▶ kPublished
//   kPublished ──more cycles in the request, input ready──▶ kRunning
//   kPublished ──more cycles, input not ready─────────▶ kWaiting
//   kPublished ──request complete (followers woken)───▶ kIdle
//
// "Input ready": request_follow == kNoSlot (the server made the input: the
// device bus, a checked block, or the sum of several sources in the module's
// mix slot), or the followed module's `done` is at or past cycle + 1.
// Between requests a module sleeps on its arm word and on its `upstream`'s
// done word (ModuleIn::upstream, re-read before every sleep); the server
// wakes it when that upstream changes.
//
// Server side, per module and cycle (engine.hpp Node, never in shared memory):
//
//   kPending ──its single unity input is being computed by a running module──▶ kFollowing
//            (armed now with request_follow = that module: the hand-off skips the server)
//   kPending ──all inputs resolved (for a summed input: every source resolved,
//            then summed into the mix slot; its dependency count is its
//            number of sources)──▶ kSent or kReplaced
//   kFollowing / kSent ──done covers the cycle, block checked──▶ kResolved
//   kFollowing / kSent ──deadline, death, or a hostile block──▶ kReplaced
//   kResolved / kReplaced: the block (or its replacement) is what consumers read.
//
// Graph changes happen only between cycles, when every module of the cycle is
// kResolved or kReplaced (see server/schedule.hpp).
#pragma once

#include <cstdint>

namespace rackd::shm {

enum class CycleState : uint32_t {
  kIdle = 0,       // no cycle of the newest request left to run
  kWaiting = 1,    // armed; the input of the next cycle is not ready yet
  kRunning = 2,    // processing a block
  kPublished = 3,  // a block is written and `done` covers it
};
inline constexpr uint32_t kCycleStates = 4;

// The allowed transitions, [from][to].
inline constexpr bool kCycleTransitions[kCycleStates][kCycleStates] = {
    //            Idle   Waiting Running Published
    /* Idle */    {false, true,  true,   false},
    /* Waiting */ {true,  false, true,   false},
    /* Running */ {false, false, false,  true},
    /* Published*/{true,  true,  true,   false},
};

constexpr bool cycle_transition_allowed(CycleState from, CycleState to) noexcept {
  const auto f = static_cast<uint32_t>(from), t = static_cast<uint32_t>(to);
  return f < kCycleStates && t < kCycleStates && kCycleTransitions[f][t];
}

static_assert(cycle_transition_allowed(CycleState::kIdle, CycleState::kRunning));
static_assert(!cycle_transition_allowed(CycleState::kRunning, CycleState::kIdle), "a block is always published");
static_assert(!cycle_transition_allowed(CycleState::kIdle, CycleState::kPublished));

const char* cycle_state_name(CycleState s) noexcept;

}  // namespace rackd::shm
