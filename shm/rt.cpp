// Per-thread real-time setup shared by the server and module processes. [setup]
#include "shm/rt.hpp"

#include <dirent.h>
#include <sched.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

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

namespace {

// The process's adopted helpers and its audio thread's priority (0: not yet
// real-time). [setup] threads only, under the mutex.
struct Helpers {
  std::mutex mutex;
  std::vector<pthread_t> threads;
  int audio_priority = 0;
};

Helpers& helpers() {
  static Helpers h;
  return h;
}

// The CPUs this process may use, as it started: read before main(), before
// the server (or anything in the process) pins a thread of it.
cpu_set_t g_start_cpus = [] {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) CPU_ZERO(&set);
  return set;
}();

}  // namespace

void add_start_cpu(int cpu) noexcept {
  if (cpu >= 0 && cpu < CPU_SETSIZE) CPU_SET(cpu, &g_start_cpus);
}

namespace {

// A helper on every CPU the process started with.
void unpin(pthread_t thread) noexcept {
  if (CPU_COUNT(&g_start_cpus) > 0) pthread_setaffinity_np(thread, sizeof g_start_cpus, &g_start_cpus);
}

// Below an audio thread at `audio_priority`: FIFO one lower, or an ordinary thread.
void place_below(pthread_t thread, int audio_priority) noexcept {
  sched_param p{};
  if (audio_priority > 1) {
    p.sched_priority = audio_priority - 1;
    pthread_setschedparam(thread, SCHED_FIFO, &p);
  } else {
    pthread_setschedparam(thread, SCHED_OTHER, &p);
  }
}

}  // namespace

void adopt_rt_helper(pthread_t thread) noexcept {
  Helpers& h = helpers();
  std::lock_guard<std::mutex> lock(h.mutex);
  try {
    h.threads.push_back(thread);
  } catch (...) {
    return;  // out of memory: the helper stays as it is
  }
  unpin(thread);
  if (h.audio_priority > 0) place_below(thread, h.audio_priority);
}

void release_rt_helper(pthread_t thread) noexcept {
  Helpers& h = helpers();
  std::lock_guard<std::mutex> lock(h.mutex);
  h.threads.erase(std::remove_if(h.threads.begin(), h.threads.end(),
                                 [&](pthread_t t) { return pthread_equal(t, thread) != 0; }),
                  h.threads.end());
}

bool try_audio_thread_priority(int priority, const char** why) noexcept {
  Helpers& h = helpers();
  std::lock_guard<std::mutex> lock(h.mutex);
  if (!try_realtime_priority_of(0, priority, why)) return false;
  h.audio_priority = priority;
  for (pthread_t t : h.threads) place_below(t, priority);
  return true;
}

bool try_process_priority(pid_t pid, int priority, const char** why) noexcept {
  if (!try_realtime_priority_of(pid, priority, why)) return false;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/task", static_cast<int>(pid));
  DIR* dir = opendir(path);
  if (!dir) return true;  // the process has gone meanwhile
  while (const dirent* e = readdir(dir)) {
    const int tid = std::atoi(e->d_name);
    if (tid <= 0 || tid == pid) continue;
    if ((sched_getscheduler(tid) & ~SCHED_RESET_ON_FORK) != SCHED_FIFO) continue;
    sched_param p{};
    if (priority > 1) {
      p.sched_priority = priority - 1;
      sched_setscheduler(tid, SCHED_FIFO | SCHED_RESET_ON_FORK, &p);
    } else {
      sched_setscheduler(tid, SCHED_OTHER, &p);
    }
  }
  closedir(dir);
  return true;
}

void leave_realtime() noexcept {
  sched_param p{};
  pthread_setschedparam(pthread_self(), SCHED_OTHER, &p);
  unpin(pthread_self());
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
