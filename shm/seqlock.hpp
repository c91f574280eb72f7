// A seqlock over a 32-bit sequence word in shared memory: one writer (the
// server's control thread) updates a group of atomic values, readers (a
// module's block loop, the control thread) copy them out and keep the copy
// only if no write overlapped. Header only.
//
// The sequence is even while the values are stable and odd while the writer
// is mid-update. Every release store pairs with an acquire load on the other
// side; the fences order the relaxed value accesses against the sequence.
//
//   writer:  const uint32_t s = SeqlockWriter::begin(seq);  ...stores...;  SeqlockWriter::end(seq, s);
//   reader:  SeqlockReader::try_read(seq, [&] { ...relaxed loads into a local copy... })
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "shm/rt.hpp"

namespace rackd::shm {

struct SeqlockWriter {
  // [control] Takes the word: even -> odd. Another writer holding it (odd) is
  // only ever a few stores long, so the spin is bounded. Returns the even value
  // taken, for end().
  static uint32_t begin(std::atomic<uint32_t>& seq) noexcept {
    uint32_t s = seq.load(std::memory_order_relaxed);
    for (;;) {
      if ((s & 1u) == 0 && seq.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed))
        break;
      s = seq.load(std::memory_order_relaxed);
    }
    // Orders the odd sequence before the value stores, for readers.
    std::atomic_thread_fence(std::memory_order_release);
    return s;
  }
  // [control] Publishes the stores made since begin(): odd -> next even.
  static void end(std::atomic<uint32_t>& seq, uint32_t begun) noexcept {
    seq.store(begun + 2, std::memory_order_release);
  }
};

struct SeqlockReader {
  // [any] One attempt: runs `copy` (relaxed loads into the caller's local
  // copy) and returns true when no write overlapped it. On false the copy is
  // torn and must not be used.
  template <class Copy>
  static bool try_read(const std::atomic<uint32_t>& seq, Copy&& copy) noexcept RACKD_RT {
    const uint32_t s1 = seq.load(std::memory_order_acquire);
    if (s1 & 1u) return false;
    copy();
    std::atomic_thread_fence(std::memory_order_acquire);
    return seq.load(std::memory_order_relaxed) == s1;
  }
  // [rt] At most `attempts` tries; false when every one overlapped a write
  // (the caller keeps its previous values and tries again later). Never waits.
  template <class Copy>
  static bool read_bounded(const std::atomic<uint32_t>& seq, int attempts, Copy&& copy) noexcept RACKD_RT {
    for (int a = 0; a < attempts; ++a)
      if (try_read(seq, copy)) return true;
    return false;
  }
  // [control] Retries until a consistent copy, yielding the CPU after the
  // first 64 tries (a writer preempted mid-update). Not for audio threads.
  template <class Copy>
  static void read(const std::atomic<uint32_t>& seq, Copy&& copy) noexcept {
    for (unsigned attempt = 0; !try_read(seq, copy); ++attempt)
      if (attempt > 64) std::this_thread::yield();
  }
};

}  // namespace rackd::shm
