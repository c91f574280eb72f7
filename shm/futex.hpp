// Futex wait/wake on 32-bit words in shared memory (cross-process, so never the
// PRIVATE variants). These are the only system calls allowed on audio threads.
// [rt] all functions.
#pragma once

#include <atomic>
#include <cstdint>
#include <ctime>

#include "shm/rt.hpp"

namespace rackd::shm {

// [any] Monotonic clock in nanoseconds (vDSO, no system call).
uint64_t now_ns() noexcept RACKD_RT;

// [rt] Sleeps while *word == expected, until woken or the absolute CLOCK_MONOTONIC
// deadline (0 = no deadline). Returns 0 when woken or the value differed,
// ETIMEDOUT at the deadline, EINTR on a signal.
int futex_wait(const std::atomic<uint32_t>& word, uint32_t expected, uint64_t deadline_ns) noexcept RACKD_RT;

// [rt] Wakes up to `count` waiters on `word`.
void futex_wake(const std::atomic<uint32_t>& word, int count = 1) noexcept RACKD_RT;

// [rt] Sleeps until any words[i] != expected[i] (as futex_waitv does), a wake on
// one of them, or the absolute deadline. n <= 128. Falls back to waiting on
// words[0] with a short timeout on kernels without futex_waitv (< 5.16).
int futex_wait_any(const std::atomic<uint32_t>* const* words, const uint32_t* expected, uint32_t n,
                   uint64_t deadline_ns) noexcept RACKD_RT;

}  // namespace rackd::shm
