// Per-thread real-time setup shared by the server and module processes. [setup]
#include "shm/rt.hpp"

#include <sched.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace rackd {

void enable_ftz_daz() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  // FTZ (bit 15) and DAZ (bit 6) of MXCSR: denormal results and operands are zero.
  _mm_setcsr(_mm_getcsr() | 0x8040u);
#elif defined(__aarch64__)
  uint64_t fpcr;
  __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
  __asm__ __volatile__("msr fpcr, %0" : : "r"(fpcr | (1ull << 24)));
#endif
}

bool try_realtime_priority(int priority, const char** why) noexcept {
  return try_realtime_priority_of(0, priority, why);
}

bool try_realtime_priority_of(int tid, int priority, const char** why) noexcept {
  sched_param p{};
  p.sched_priority = priority;
  if (sched_setscheduler(tid, SCHED_FIFO | SCHED_RESET_ON_FORK, &p) == 0) return true;
  if (why) *why = strerror(errno);
  return false;
}

bool try_pin_to_cpu(int tid, int cpu, const char** why) noexcept {
  if (cpu < 0 || cpu >= CPU_SETSIZE) {
    if (why) *why = "no such CPU";
    return false;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(tid, sizeof set, &set) == 0) return true;
  if (why) *why = strerror(errno);
  return false;
}

int last_allowed_cpu() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
  for (int c = CPU_SETSIZE - 1; c >= 0; --c) {
    if (CPU_ISSET(c, &set)) return c;
  }
  return -1;
}

bool try_lock_memory(const char** why) noexcept {
  if (mlockall(MCL_CURRENT | MCL_FUTURE) == 0) return true;
  if (why) *why = strerror(errno);
  return false;
}

}  // namespace rackd
