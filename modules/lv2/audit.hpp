// lv2-audit: a real-time audit of an installed LV2 plugin. Runs the plugin's
// run() for a few seconds of audio on one thread and counts, per block, the
// allocations and system calls the plugin makes inside run(). Threads: main
// [setup] loads and instantiates the plugin and prints the report; one worker
// thread [rt-audited] calls run(); one listener thread [control] serves the
// worker's seccomp notifications. Shared between audit.cpp (host, report) and
// audit_counters.cpp (allocator wrappers, seccomp listener).
#pragma once

#include <atomic>
#include <cstdint>

namespace rackd::lv2 {

// Entry point of `lv2-audit URI [--seconds S] [--rate HZ] [--block N] [--list N]`:
// argv[0] is the program name. Exit 0 clean, 1 allocations or non-futex
// system calls in run(), 2 the plugin cannot be loaded (or usage error),
// 3 the counters could not be installed (seccomp refused).
int audit_main(int argc, char** argv);

namespace audit {

constexpr int kMaxSyscallNr = 512;  // numbers above are folded into the last bucket

// Per-block counters, sized by begin() before the worker starts (the listener
// and the allocator wrappers never allocate).
struct BlockCounts {
  std::atomic<uint32_t> allocs{0};    // malloc, calloc, realloc, memalign/posix_memalign/aligned_alloc, new
  std::atomic<uint32_t> frees{0};     // free, delete
  std::atomic<uint32_t> syscalls{0};  // non-futex
  std::atomic<uint32_t> futex{0};     // futex, futex_waitv (lock contention; allowed by rackd's rules)
  std::atomic<int32_t> first_nr{-1};  // first non-futex syscall number seen in this block
};

// [setup] Prepares counters for `blocks` blocks. Returns false on allocation failure.
bool begin(uint32_t blocks);
// [rt-audited] Marks the calling thread as inside run() of block `index` / outside.
void enter_block(uint32_t index) noexcept;
void leave_block() noexcept;
// [rt-audited] Installs the seccomp filter on the calling thread and hands its
// notify fd to the listener (started here by the caller's setup, see below).
// Returns false with errno set if seccomp refused.
bool install_syscall_filter() noexcept;
// [setup] Starts the listener thread (before the worker installs its filter)
// and stops it after the worker exited.
bool start_listener();
void stop_listener();

const BlockCounts& block(uint32_t index);
uint64_t syscalls_by_nr(int nr);  // non-futex and futex alike, inside run()
const char* syscall_name(int nr);

}  // namespace audit
}  // namespace rackd::lv2
