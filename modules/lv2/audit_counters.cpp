// lv2-audit's counters: the allocator wrappers (malloc & co., operator
// new/delete, interposed by the lv2-audit executable, which exports them with
// -rdynamic so dlopen'ed plugins bind to them) and the seccomp listener that
// counts the system calls of the audited thread. Same technique as
// tests/rtcount/rtcount.cpp (a per-thread filter with
// SECCOMP_FILTER_FLAG_NEW_LISTENER; the listener answers every notification
// with SECCOMP_USER_NOTIF_FLAG_CONTINUE so the call runs unchanged), reduced
// to one audited thread in one process and with per-block attribution.
// Threads: the wrappers run on any thread and count only on the audited thread
// while it is inside run(); the listener thread serves notifications and never
// allocates (the audited thread may be stopped in a syscall inside malloc,
// holding an arena lock) or takes a lock.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <thread>

#include "modules/lv2/audit.hpp"

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void __libc_free(void*);
void* __libc_memalign(size_t, size_t);
}

namespace rackd::lv2::audit {
namespace {

#if defined(__x86_64__)
constexpr uint32_t kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kArch = AUDIT_ARCH_AARCH64;
#else
#error "lv2-audit: add the AUDIT_ARCH_ value for this architecture"
#endif
constexpr int kNrFutexWaitv = 449;

thread_local bool t_in_run = false;        // the audited thread, inside run()
std::atomic<int64_t> g_block{-1};          // block in run(), -1 outside; the listener reads it
std::unique_ptr<BlockCounts[]> g_blocks;   // sized by begin()
uint32_t g_nblocks = 0;
std::atomic<uint64_t> g_by_nr[kMaxSyscallNr] = {};
std::atomic<int> g_notify_fd{-1};          // handed from the audited thread to the listener
std::atomic<bool> g_stop{false};
std::thread g_listener;

BlockCounts* current() noexcept {
  const int64_t b = g_block.load(std::memory_order_acquire);
  return b >= 0 && static_cast<uint32_t>(b) < g_nblocks ? &g_blocks[static_cast<size_t>(b)] : nullptr;
}

void count_alloc() noexcept {
  if (!t_in_run) return;
  if (BlockCounts* c = current()) c->allocs.fetch_add(1, std::memory_order_relaxed);
}
void count_free() noexcept {
  if (!t_in_run) return;
  if (BlockCounts* c = current()) c->frees.fetch_add(1, std::memory_order_relaxed);
}

// [listener] One notification: counted if the audited thread is inside run()
// (it is stopped in the syscall, so the block index is stable), then continued.
void serve_one(int fd) noexcept {
  seccomp_notif req;
  std::memset(&req, 0, sizeof req);
  if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) return;
  if (BlockCounts* c = current()) {
    const int nr = static_cast<int>(req.data.nr);
    g_by_nr[nr >= 0 && nr < kMaxSyscallNr ? nr : kMaxSyscallNr - 1].fetch_add(1, std::memory_order_relaxed);
    if (nr == SYS_futex || nr == kNrFutexWaitv) {
      c->futex.fetch_add(1, std::memory_order_relaxed);
    } else {
      c->syscalls.fetch_add(1, std::memory_order_relaxed);
      int32_t none = -1;
      c->first_nr.compare_exchange_strong(none, nr, std::memory_order_relaxed);
    }
  }
  seccomp_notif_resp resp;
  std::memset(&resp, 0, sizeof resp);
  resp.id = req.id;
  resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);  // ENOENT if the target is gone
}

// [listener] Waits for the fd, then serves until the filtered thread is gone
// (POLLHUP, kernel >= 5.8) or stop_listener().
void listen() noexcept {
  int fd;
  while ((fd = g_notify_fd.load(std::memory_order_acquire)) < 0) {
    if (g_stop.load(std::memory_order_acquire)) return;
    const timespec ms{0, 1'000'000};
    nanosleep(&ms, nullptr);
  }
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    p.revents = 0;
    const int r = poll(&p, 1, 50);
    if (r < 0 && errno != EINTR) break;
    if (r > 0 && (p.revents & POLLIN)) serve_one(fd);
    else if (r > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL))) break;
    else if (r == 0 && g_stop.load(std::memory_order_acquire)) break;
  }
  close(fd);
}

}  // namespace

bool begin(uint32_t blocks) {
  g_blocks.reset(new (std::nothrow) BlockCounts[blocks]);
  g_nblocks = g_blocks ? blocks : 0;
  return g_blocks != nullptr;
}

void enter_block(uint32_t index) noexcept {
  g_block.store(index, std::memory_order_release);
  t_in_run = true;
}

void leave_block() noexcept {
  t_in_run = false;
  g_block.store(-1, std::memory_order_release);
}

bool install_syscall_filter() noexcept {
  // Everything of this architecture goes to the listener, futex included
  // (counted apart); another architecture's calls pass uncounted.
  sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof code / sizeof code[0]), code};
  auto attempt = [&] {
    return static_cast<int>(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog));
  };
  int fd = attempt();
  if (fd < 0 && errno == EACCES && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0) fd = attempt();
  if (fd < 0) return false;
  g_notify_fd.store(fd, std::memory_order_release);  // a store, no syscall: the listener picks it up
  return true;
}

bool start_listener() {
  g_stop.store(false);
  g_listener = std::thread(listen);
  return true;
}

void stop_listener() {
  g_stop.store(true, std::memory_order_release);
  if (g_listener.joinable()) g_listener.join();
}

const BlockCounts& block(uint32_t index) { return g_blocks[index]; }
uint64_t syscalls_by_nr(int nr) { return g_by_nr[nr].load(std::memory_order_relaxed); }

const char* syscall_name(int nr) {
#if defined(__x86_64__)
  // clang-format off
  static constexpr struct { int nr; const char* name; } kNames[] = {
      {0, "read"}, {1, "write"}, {2, "open"}, {3, "close"}, {4, "stat"}, {5, "fstat"}, {7, "poll"}, {8, "lseek"},
      {9, "mmap"}, {10, "mprotect"}, {11, "munmap"}, {12, "brk"}, {13, "rt_sigaction"}, {14, "rt_sigprocmask"},
      {16, "ioctl"}, {17, "pread64"}, {18, "pwrite64"}, {19, "readv"}, {20, "writev"}, {21, "access"},
      {23, "select"}, {24, "sched_yield"}, {25, "mremap"}, {28, "madvise"}, {35, "nanosleep"}, {39, "getpid"},
      {44, "sendto"}, {45, "recvfrom"}, {46, "sendmsg"}, {47, "recvmsg"}, {56, "clone"}, {62, "kill"},
      {72, "fcntl"}, {74, "fsync"}, {96, "gettimeofday"}, {110, "getppid"}, {186, "gettid"}, {200, "tkill"},
      {201, "time"}, {202, "futex"}, {228, "clock_gettime"}, {230, "clock_nanosleep"}, {232, "epoll_wait"},
      {234, "tgkill"}, {257, "openat"}, {262, "newfstatat"}, {270, "pselect6"}, {271, "ppoll"},
      {281, "epoll_pwait"}, {284, "eventfd"}, {290, "eventfd2"}, {318, "getrandom"}, {435, "clone3"},
      {449, "futex_waitv"},
  };
  // clang-format on
  for (const auto& n : kNames)
    if (n.nr == nr) return n.name;
#endif
  return nullptr;
}

}  // namespace rackd::lv2::audit

// ---------------------------------------------------------------- allocator wrappers

using rackd::lv2::audit::count_alloc;
using rackd::lv2::audit::count_free;

extern "C" {
void* malloc(size_t n) noexcept {
  count_alloc();
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t size) noexcept {
  count_alloc();
  return __libc_calloc(n, size);
}
void* realloc(void* p, size_t n) noexcept {
  count_alloc();
  return __libc_realloc(p, n);
}
void free(void* p) noexcept {
  if (p) count_free();
  __libc_free(p);
}
void* memalign(size_t align, size_t n) noexcept {
  count_alloc();
  return __libc_memalign(align, n);
}
void* aligned_alloc(size_t align, size_t n) noexcept {
  count_alloc();
  return __libc_memalign(align, n);
}
int posix_memalign(void** out, size_t align, size_t n) noexcept {
  count_alloc();
  if (align < sizeof(void*) || (align & (align - 1)) != 0) return EINVAL;
  void* p = __libc_memalign(align, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
}  // extern "C"

namespace {
void* new_impl(size_t n, size_t align) {
  count_alloc();
  if (n == 0) n = 1;
  void* p = align > alignof(std::max_align_t) ? __libc_memalign(align, n) : __libc_malloc(n);
  if (!p) throw std::bad_alloc();
  return p;
}
void* new_nothrow(size_t n, size_t align) noexcept {
  count_alloc();
  if (n == 0) n = 1;
  return align > alignof(std::max_align_t) ? __libc_memalign(align, n) : __libc_malloc(n);
}
void delete_impl(void* p) noexcept {
  if (p) count_free();
  __libc_free(p);
}
size_t al(std::align_val_t a) { return static_cast<size_t>(a); }
}  // namespace

void* operator new(size_t n) { return new_impl(n, 0); }
void* operator new[](size_t n) { return new_impl(n, 0); }
void* operator new(size_t n, const std::nothrow_t&) noexcept { return new_nothrow(n, 0); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return new_nothrow(n, 0); }
void* operator new(size_t n, std::align_val_t a) { return new_impl(n, al(a)); }
void* operator new[](size_t n, std::align_val_t a) { return new_impl(n, al(a)); }
void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept { return new_nothrow(n, al(a)); }
void* operator new[](size_t n, std::align_val_t a, const std::nothrow_t&) noexcept { return new_nothrow(n, al(a)); }
void operator delete(void* p) noexcept { delete_impl(p); }
void operator delete[](void* p) noexcept { delete_impl(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { delete_impl(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { delete_impl(p); }
void operator delete(void* p, size_t) noexcept { delete_impl(p); }
void operator delete[](void* p, size_t) noexcept { delete_impl(p); }
void operator delete(void* p, std::align_val_t) noexcept { delete_impl(p); }
void operator delete[](void* p, std::align_val_t) noexcept { delete_impl(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { delete_impl(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { delete_impl(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { delete_impl(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { delete_impl(p); }
