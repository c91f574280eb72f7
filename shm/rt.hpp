// Real-time markers and per-thread audio setup, shared by the server and every
// module process. Any thread.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <rackd/rt.hpp>  // RACKD_RT: the real-time marker (part of the module SDK)

// Test hooks. A counting library preloaded into rackd and every module
// process (tests/rtcount) defines these to learn when a thread is inside
// real-time code; everywhere else they are undefined (weak) and cost a branch.
// rackd_rt_enter/leave bracket one real-time section (a device cycle, a module
// block); they nest.
extern "C" void rackd_rt_enter() __attribute__((weak));
extern "C" void rackd_rt_leave() __attribute__((weak));

namespace rackd {

// Marks the enclosing scope as real-time for the test hooks above.
class RtScope {
 public:
  RtScope() noexcept {
    if (rackd_rt_enter) rackd_rt_enter();
  }
  ~RtScope() {
    if (rackd_rt_leave) rackd_rt_leave();
  }
  RtScope(const RtScope&) = delete;
  RtScope& operator=(const RtScope&) = delete;
};

// [any] Sets flush-to-zero and denormals-are-zero for the calling thread (SSE
// MXCSR on x86; FZ on AArch64). Call once at the start of every audio thread.
void enable_ftz_daz() noexcept;

// [setup] Tries SCHED_FIFO at `priority` for the calling thread. Returns false
// (and writes why into `why`, if given) where the system refuses it.
bool try_realtime_priority(int priority, const char** why = nullptr) noexcept;
// [setup] The same for thread `tid` of this or another process (0: the caller).
bool try_realtime_priority_of(int tid, int priority, const char** why = nullptr) noexcept;

// Real-time helpers. A process's audio thread may hand work to helper threads
// that must keep up with it (hrir's convolution tail): they run SCHED_FIFO one
// priority below the audio thread, whichever of the two was set up first. The
// rule is the same inside the process (the registry below) and from outside
// (try_process_priority: the process's main thread is its audio thread, every
// other SCHED_FIFO thread of it a helper). Threads that do heavy work beside
// the audio path without a deadline (hrir's filter builder) call
// leave_realtime() and stay SCHED_OTHER.

// Helpers of both kinds run on every CPU the process started with, never only
// on the audio CPU: a helper created after the server pinned the process's
// main thread (a module restarted while the chain moves) would otherwise
// inherit that one CPU and compete with the audio thread on it.

// [setup] `thread` (of this process) is a real-time helper. If the audio
// thread is already real-time the helper takes its place below it now,
// otherwise when try_audio_thread_priority() runs. Call release_rt_helper()
// before joining it.
void adopt_rt_helper(pthread_t thread) noexcept;
// [setup] Counts `cpu` among the CPUs the process started with, where
// helpers run: a module is started off the audio CPU (it sets itself up
// there) but its helpers may use that CPU too.
void add_start_cpu(int cpu) noexcept;
void release_rt_helper(pthread_t thread) noexcept;
// [setup] The calling thread becomes the process's audio thread at SCHED_FIFO
// `priority`, and every adopted helper goes to `priority` - 1 (SCHED_OTHER when
// that is 0). Returns false, with the reason, where refused (helpers untouched).
bool try_audio_thread_priority(int priority, const char** why = nullptr) noexcept;
// [setup] The same for another process `pid` whose main thread is its audio
// thread: the main thread to `priority`, every other thread of it that now runs
// SCHED_FIFO (its adopted helpers) to `priority` - 1. False, with the reason,
// where the main thread was refused; a helper that cannot be changed (it just
// exited) is skipped.
bool try_process_priority(pid_t pid, int priority, const char** why = nullptr) noexcept;
// [setup] The calling thread runs SCHED_OTHER (nice unchanged), on every CPU the
// process started with, whatever the thread that created it ran at and on.
void leave_realtime() noexcept;

// [setup] Puts thread `tid` (0: the calling thread; a process id names its main
// thread) on CPU `cpu` alone. Returns false, with the reason, where refused.
bool try_pin_to_cpu(int tid, int cpu, const char** why = nullptr) noexcept;

// [any] The highest-numbered CPU the calling thread may run on; -1 if unknown.
int last_allowed_cpu() noexcept;

// [setup] Tries mlockall(MCL_CURRENT | MCL_FUTURE). Returns false where refused.
bool try_lock_memory(const char** why = nullptr) noexcept;

}  // namespace rackd
