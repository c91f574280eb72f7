// Futex system calls on shared words. [rt]
#include "shm/futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef FUTEX2_SIZE_U32
#define FUTEX2_SIZE_U32 0x02
#endif

#if defined(__has_feature)
#if __has_feature(realtime_sanitizer)
#include <sanitizer/rtsan_interface.h>
#define RACKD_FUTEX_SCOPE __rtsan::ScopedDisabler rtsan_futex_exception
#endif
#endif
#ifndef RACKD_FUTEX_SCOPE
#define RACKD_FUTEX_SCOPE
#endif

namespace rackd::shm {
namespace {

timespec to_timespec(uint64_t ns) noexcept {
  timespec ts;
  ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000ull);
  ts.tv_nsec = static_cast<long>(ns % 1'000'000'000ull);
  return ts;
}

uint32_t* addr(const std::atomic<uint32_t>& w) noexcept {
  // The kernel compares the word; the futex API wants a plain pointer to it.
  return reinterpret_cast<uint32_t*>(const_cast<std::atomic<uint32_t>*>(&w));
}

// Local copy of the kernel's struct futex_waitv (linux/futex.h, 5.16+), so the
// build does not depend on the installed kernel headers.
struct WaitV {
  uint64_t val;
  uint64_t uaddr;
  uint32_t flags;
  uint32_t reserved;
};

std::atomic<bool> g_no_waitv{false};

}  // namespace

uint64_t now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

int futex_wait(const std::atomic<uint32_t>& word, uint32_t expected, uint64_t deadline_ns) noexcept {
  // Futex wait and wake are the one kind of system call audio threads make;
  // RealtimeSanitizer intercepts syscall(), so say so here.
  RACKD_FUTEX_SCOPE;
  timespec ts = to_timespec(deadline_ns);
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC timeout.
  long r = syscall(SYS_futex, addr(word), FUTEX_WAIT_BITSET, expected,
                   deadline_ns ? &ts : nullptr, nullptr, FUTEX_BITSET_MATCH_ANY);
  if (r == 0) return 0;
  if (errno == EAGAIN) return 0;
  return errno;
}

void futex_wake(const std::atomic<uint32_t>& word, int count) noexcept {
  RACKD_FUTEX_SCOPE;
  syscall(SYS_futex, addr(word), FUTEX_WAKE, count, nullptr, nullptr, 0);
}

int futex_wait_any(const std::atomic<uint32_t>* const* words, const uint32_t* expected, uint32_t n,
                   uint64_t deadline_ns) noexcept {
  if (n == 0) return 0;
  if (n == 1) return futex_wait(*words[0], expected[0], deadline_ns);
  if (!g_no_waitv.load(std::memory_order_relaxed)) {
    WaitV v[128];
    if (n > 128) n = 128;
    for (uint32_t i = 0; i < n; ++i) {
      v[i].val = expected[i];
      v[i].uaddr = reinterpret_cast<uint64_t>(addr(*words[i]));
      v[i].flags = FUTEX2_SIZE_U32;
      v[i].reserved = 0;
    }
    timespec ts = to_timespec(deadline_ns);
    RACKD_FUTEX_SCOPE;
    long r = syscall(SYS_futex_waitv, v, n, 0, deadline_ns ? &ts : nullptr, CLOCK_MONOTONIC);
    if (r >= 0) return 0;
    if (errno == EAGAIN) return 0;
    if (errno != ENOSYS) return errno;
    g_no_waitv.store(true, std::memory_order_relaxed);
  }
  // Old kernel: wait on the first word, but never longer than 100 us, so a
  // completion of another word is noticed promptly by the caller's re-check.
  uint64_t limit = now_ns() + 100'000;
  bool capped = deadline_ns == 0 || deadline_ns > limit;
  int r = futex_wait(*words[0], expected[0], capped ? limit : deadline_ns);
  return (r == ETIMEDOUT && capped) ? 0 : r;
}

}  // namespace rackd::shm
