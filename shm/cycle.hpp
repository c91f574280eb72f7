// Wrap-around comparison of free-running 32-bit counters: cycle numbers,
// completion words, chunk counters. [any] thread; header only.
//
// Counters count up forever and wrap at 2^32. Two of them are compared by
// their signed difference, which stays right as long as they are less than
// 2^31 apart (at 48 kHz and 16 frames a cycle, that is 16 days of cycles
// between two values compared; in practice they are a few cycles apart).
#pragma once

#include <cstdint>

#include "shm/rt.hpp"

namespace rackd::shm {

// [any] a - b, as a signed distance that survives the wrap.
constexpr int32_t cycle_diff(uint32_t a, uint32_t b) noexcept RACKD_RT { return static_cast<int32_t>(a - b); }

// [any] True when counter `a` is at or past `b`.
constexpr bool at_or_past(uint32_t a, uint32_t b) noexcept RACKD_RT { return cycle_diff(a, b) >= 0; }

// [any] True once a completion word reading `done` covers `cycle`: a module
// publishes done = cycle + 1 after running `cycle`, and at or beyond counts
// (a module may have run ahead in a batch that was cut short).
constexpr bool completed(uint32_t done, uint32_t cycle) noexcept RACKD_RT { return at_or_past(done, cycle + 1); }

static_assert(at_or_past(0u, 0xffff'ffffu));  // 0 is one past the largest value
static_assert(!at_or_past(0xffff'ffffu, 0u));
static_assert(completed(1u, 0u) && !completed(0u, 0u));

}  // namespace rackd::shm
