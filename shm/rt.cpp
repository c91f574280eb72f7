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
  sched_param p{};
  p.sched_priority = priority;
  if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &p) == 0) return true;
  if (why) *why = strerror(errno);
  return false;
}

bool try_lock_memory(const char** why) noexcept {
  if (mlockall(MCL_CURRENT | MCL_FUTURE) == 0) return true;
  if (why) *why = strerror(errno);
  return false;
}

}  // namespace rackd
