// librtcount.so: a test-only LD_PRELOAD library that counts, per thread, the
// allocations and system calls made inside real-time sections. It defines the
// weak hooks of shm/rt.hpp (rackd_rt_enter/leave), so any rackd process it is
// preloaded into (server and modules: children inherit LD_PRELOAD) reports
// what its audio threads did. Threads: the hooks and the allocator wrappers run
// on any thread; one listener thread per process serves the seccomp
// notifications and writes the report periodically.
//
// Build: g++ -std=c++20 -O2 -fPIC -shared -I. tests/rtcount/rtcount.cpp
//          tests/rtcount/rtcount_alloc.cpp -o librtcount.so -pthread -ldl
//          (-Wl,-z,now recommended, see below)
// Use:   LD_PRELOAD=librtcount.so RACKD_RTCOUNT_DIR=/tmp/rtc rackd render ...
//
// Report: if RACKD_RTCOUNT_DIR is set, $RACKD_RTCOUNT_DIR/<pid>.txt; the format
// is described, and parsed, in tests/rtcount/rtcount_report.hpp.
//
// System calls. The first rackd_rt_enter() of a thread installs, for that
// thread only (no TSYNC), a seccomp filter with SECCOMP_FILTER_FLAG_NEW_LISTENER:
//   other architecture (e.g. int 0x80)        -> ALLOW (not counted)
//   futex, futex_waitv                        -> ALLOW (the permitted RT syscalls)
//   write(<listener eventfd>, ...)            -> ALLOW (hands the fd over, below)
//   everything else                           -> USER_NOTIF
// The notify fd goes to the process's single listener thread through a slot
// array plus an eventfd (the write that wakes the listener must itself be
// allowed, or the thread would wait on a listener that does not know the fd
// yet). The listener receives each notification (notif.pid is the TID),
// counts it if that thread's depth is > 0, and answers
// SECCOMP_USER_NOTIF_FLAG_CONTINUE (kernel >= 5.5) so the call runs unchanged.
// The depth it reads is stable: the thread is stopped in the syscall.
// SECCOMP_IOCTL_NOTIF_ID_VALID is not needed: the listener never reads the
// target's memory, and a SEND for a vanished target just fails with ENOENT.
// A fd whose filter has no tasks left polls POLLHUP (kernel >= 5.8) and is
// closed, so short-lived threads do not pile up fds.
//
// Caveats (all follow from seccomp semantics; documented so a report is read
// correctly):
// * The filter is inherited by threads and processes the filtered thread
//   creates, and survives execve. A thread created by a filtered thread is
//   detoured too; if it enters rt itself it cannot get a second listener
//   (EBUSY) and is reported seccomp=inherited, still counted by tid. A process
//   forked or spawned by a filtered thread sends its syscalls to THIS
//   process's listener (continued, not counted); once this process is gone,
//   its non-futex syscalls fail with ENOSYS. rackd forks modules from threads
//   that never enter rt (its rt threads are the offline worker and the
//   PortAudio callback thread), so this does not arise there today.
// * Outside sections, syscalls of a filtered thread still work but each makes
//   a round trip through the listener (a few microseconds; two context
//   switches). Inside sections there should be none; the count is the finding.
// * The listener must never be filtered: it is started lazily by the first
//   thread that enters rt, before that thread installs its filter, and it never
//   allocates or takes a lock a filtered thread could hold (it only polls,
//   ioctls and writes the report with raw syscalls). Link with -Wl,-z,now so it
//   does not even resolve PLT entries lazily.
// * Cost, measured on a 2-CPU VM: a thread's first rackd_rt_enter takes ~70 us
//   (~300 us for the first thread of a process, which also starts the
//   listener), so a live run's first cycle may be late; later enter/leave are
//   a TLS increment and a store; a detoured syscall takes ~13 us instead of
//   ~0.1 us.
// * PR_SET_NO_NEW_PRIVS is set only if seccomp() is refused without it (it is
//   not needed as root); if set, it is inherited like the filter.
// * vDSO calls (clock_gettime with a TSC/kvm clock) make no syscall; with a
//   clocksource the vDSO cannot read, they would show up as clock_gettime.
// * After fork() without exec, the child starts with an empty table and gets
//   its own listener when one of its threads enters rt.
//
// Allocations: malloc & co. and every operator new/delete are interposed (in
// rtcount_alloc.cpp) and counted here by rtcount::count().

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "tests/rtcount/rtcount_count.hpp"

namespace {

#if defined(__x86_64__)
constexpr uint32_t kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kArch = AUDIT_ARCH_AARCH64;
#else
#error "rtcount: add the AUDIT_ARCH_ value for this architecture"
#endif

constexpr uint32_t kNrFutexWaitv = 449;  // not in every <sys/syscall.h> yet
constexpr int kMaxThreads = 1024;        // threads that ever entered rt, per process
constexpr int kMaxFds = 256;             // live notify fds, per process
constexpr int kFirstSyscalls = 8;        // distinct numbers kept per thread
constexpr int kReportPeriodMs = 200;

using rtcount::Kind;
using enum rtcount::Kind;
constexpr const char* kKindName[kKinds] = {"malloc", "calloc", "realloc", "memalign", "new", "free", "delete"};

enum Seccomp : int { kOff = 0, kOwn = 1, kInherited = 2 };
enum Probe : int { kNoProbe = 0, kProbeSent = 1, kProbeSeen = 2 };

// One thread that entered rt. Claimed by that thread, published by the release
// store of tid; fields below say who writes them.
struct alignas(64) Slot {
  std::atomic<pid_t> tid{0};
  std::atomic<int> depth{0};                         // owner; listener reads (acquire)
  std::atomic<int> seccomp{kOff};                    // owner, at setup
  std::atomic<int> probe{kNoProbe};                  // owner sets Sent, listener sets Seen
  std::atomic<uint64_t> sections{0};                 // owner
  std::atomic<uint64_t> kinds[kKinds] = {};          // owner
  std::atomic<uint64_t> syscalls{0};                 // listener
  std::atomic<uint32_t> first[kFirstSyscalls] = {};  // listener; nr + 1, 0 = empty
};

Slot g_slots[kMaxThreads];
std::atomic<int> g_nslots{0};  // claimed slots (may exceed kMaxThreads)
std::atomic<uint64_t> g_notifications{0};

// Listener state. g_pending carries fd + 1 from a thread to the listener;
// g_fds_reserved bounds pending + live fds by kMaxFds, so a slot is always free.
enum ListenerState : int { kNone = 0, kStarting = 1, kRunning = 2, kFailed = 3 };
std::atomic<int> g_listener{kNone};
int g_eventfd = -1;  // written before g_listener = kRunning
std::atomic<int> g_pending[kMaxFds] = {};
std::atomic<int> g_fds_reserved{0};
pollfd g_pfd[1 + kMaxFds];  // listener only: [0] eventfd, then notify fds
int g_npfd = 0;

char g_dir[PATH_MAX];                  // RACKD_RTCOUNT_DIR, copied at load
std::atomic<pid_t> g_report_owner{0};  // tid holding the report "lock"

// Initial-exec: a preloaded library gets static TLS, and the wrappers must not
// reach __tls_get_addr (which can allocate).
__attribute__((tls_model("initial-exec"))) thread_local int t_depth = 0;
__attribute__((tls_model("initial-exec"))) thread_local Slot* t_slot = nullptr;
__attribute__((tls_model("initial-exec"))) thread_local bool t_setup_done = false;


// ---------------------------------------------------------------- report

// Formats into a stack buffer and writes with raw syscalls: usable from the
// listener, the destructor and a signal handler.
void u_to_str(uint64_t v, char* out) noexcept {
  char tmp[24];
  int i = 0;
  do {
    tmp[i++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  int j = 0;
  while (i) out[j++] = tmp[--i];
  out[j] = '\0';
}

struct Out {
  explicit Out(int f) noexcept : fd(f) {}
  int fd;
  bool ok = true;
  size_t n = 0;
  char buf[2048];
  void flush() noexcept {
    size_t off = 0;
    while (ok && off < n) {
      ssize_t w = ::write(fd, buf + off, n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0)
        ok = false;
      else
        off += static_cast<size_t>(w);
    }
    n = 0;
  }
  void put(const char* s) noexcept {
    for (; *s; ++s) {
      if (n == sizeof buf) flush();
      buf[n++] = *s;
    }
  }
  void put_u(uint64_t v) noexcept {
    char s[24];
    u_to_str(v, s);
    put(s);
  }
};

// Concatenates the parts into dst (capacity cap); false if they do not fit.
bool join(char* dst, size_t cap, std::initializer_list<const char*> parts) noexcept {
  size_t n = 0;
  for (const char* part : parts)
    for (const char* p = part; *p; ++p) {
      if (n + 1 >= cap) return false;
      dst[n++] = *p;
    }
  dst[n] = '\0';
  return true;
}

uint64_t signature() noexcept {
  uint64_t sig = static_cast<uint64_t>(g_nslots.load(std::memory_order_acquire)) * 1000003u;
  int n = g_nslots.load(std::memory_order_acquire);
  if (n > kMaxThreads) n = kMaxThreads;
  for (int i = 0; i < n; ++i) {
    const Slot& s = g_slots[i];
    sig += s.sections.load(std::memory_order_relaxed) + 3 * s.syscalls.load(std::memory_order_relaxed) +
           7 * static_cast<uint64_t>(s.seccomp.load(std::memory_order_relaxed));
    for (const auto& k : s.kinds) sig += 11 * k.load(std::memory_order_relaxed);
  }
  return sig;
}

// [any, async-signal-safe] Writes $RACKD_RTCOUNT_DIR/<pid>.txt atomically.
// Writers exclude each other by tid; a signal handler that interrupted this
// thread's own write skips (that write finishes after the handler returns).
void write_report() noexcept {
  if (!g_dir[0]) return;
  const int saved_errno = errno;
  const pid_t me = gettid();
  for (int tries = 0;; ++tries) {
    pid_t expected = 0;
    if (g_report_owner.compare_exchange_strong(expected, me, std::memory_order_acquire)) break;
    if (expected == me || tries > 2000) {
      errno = saved_errno;
      return;
    }
    const timespec ms{0, 1'000'000};
    nanosleep(&ms, nullptr);
  }
  char pid_s[24], tid_s[24], path[PATH_MAX], tmp[PATH_MAX];
  u_to_str(static_cast<uint64_t>(getpid()), pid_s);
  u_to_str(static_cast<uint64_t>(me), tid_s);
  if (join(path, sizeof path, {g_dir, "/", pid_s, ".txt"}) &&
      join(tmp, sizeof tmp, {g_dir, "/.", pid_s, ".", tid_s, ".tmp"})) {
    int fd = ::open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      Out o{fd};
      char comm[32] = {0};
      int cfd = ::open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
      if (cfd >= 0) {
        ssize_t r = ::read(cfd, comm, sizeof comm - 1);
        ::close(cfd);
        for (ssize_t i = 0; i < r; ++i)
          if (comm[i] == '\n' || comm[i] == ' ' || comm[i] == '=') comm[i] = comm[i] == '\n' ? '\0' : '_';
      }
      o.put("# rtcount v1\ncomm=");
      o.put(comm);
      o.put("\nnotifications=");
      o.put_u(g_notifications.load(std::memory_order_relaxed));
      int n = g_nslots.load(std::memory_order_acquire);
      o.put("\nlost_threads=");
      o.put_u(n > kMaxThreads ? static_cast<uint64_t>(n - kMaxThreads) : 0);
      o.put("\n");
      if (n > kMaxThreads) n = kMaxThreads;
      for (int i = 0; i < n; ++i) {
        const Slot& s = g_slots[i];
        const pid_t tid = s.tid.load(std::memory_order_acquire);
        if (tid == 0) continue;  // claimed, not yet published
        uint64_t k[kKinds];
        for (int j = 0; j < kKinds; ++j) k[j] = s.kinds[j].load(std::memory_order_relaxed);
        o.put("tid=");
        o.put_u(static_cast<uint64_t>(tid));
        o.put(" sections=");
        o.put_u(s.sections.load(std::memory_order_relaxed));
        o.put(" allocs=");
        o.put_u(k[kMalloc] + k[kCalloc] + k[kRealloc] + k[kMemalign] + k[kNew]);
        o.put(" frees=");
        o.put_u(k[kFree] + k[kDelete]);
        o.put(" syscalls=");
        o.put_u(s.syscalls.load(std::memory_order_relaxed));
        o.put(" first_syscalls=");
        bool first = true;
        for (const auto& f : s.first) {
          uint32_t v = f.load(std::memory_order_relaxed);
          if (!v) break;
          if (!first) o.put(",");
          o.put_u(v - 1);
          first = false;
        }
        const int sc = s.seccomp.load(std::memory_order_relaxed);
        o.put(sc == kOwn ? " seccomp=own" : sc == kInherited ? " seccomp=inherited" : " seccomp=off");
        for (int j = 0; j < kKinds; ++j) {
          o.put(" ");
          o.put(kKindName[j]);
          o.put("=");
          o.put_u(k[j]);
        }
        o.put("\n");
      }
      o.flush();
      const bool ok = o.ok;
      ::close(fd);
      if (ok)
        ::rename(tmp, path);
      else
        ::unlink(tmp);
    }
  }
  g_report_owner.store(0, std::memory_order_release);
  errno = saved_errno;
}

// ---------------------------------------------------------------- listener

Slot* find_slot(pid_t tid) noexcept {
  int n = g_nslots.load(std::memory_order_acquire);
  if (n > kMaxThreads) n = kMaxThreads;
  for (int i = n - 1; i >= 0; --i)  // newest first: a reused tid shadows its dead owner
    if (g_slots[i].tid.load(std::memory_order_acquire) == tid) return &g_slots[i];
  return nullptr;
}

// [listener] Receives one notification, counts it, lets the syscall run.
void serve_one(int fd) noexcept {
  seccomp_notif req;
  std::memset(&req, 0, sizeof req);                            // RECV rejects a non-zeroed buffer
  if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) return;  // ENOENT: target interrupted
  g_notifications.fetch_add(1, std::memory_order_relaxed);
  if (Slot* s = find_slot(static_cast<pid_t>(req.pid))) {
    int probe = kProbeSent;
    if (req.data.nr == SYS_getppid && s->probe.compare_exchange_strong(probe, kProbeSeen, std::memory_order_acq_rel)) {
      // setup's self-test: proves this thread's syscalls reach this listener
    } else if (s->depth.load(std::memory_order_acquire) > 0) {
      s->syscalls.fetch_add(1, std::memory_order_relaxed);
      const uint32_t v = static_cast<uint32_t>(req.data.nr) + 1;
      for (auto& f : s->first) {
        uint32_t cur = f.load(std::memory_order_relaxed);
        if (cur == v) break;
        if (cur == 0) {
          f.store(v, std::memory_order_relaxed);
          break;
        }
      }
    }
  }
  seccomp_notif_resp resp;
  std::memset(&resp, 0, sizeof resp);
  resp.id = req.id;
  resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);  // ENOENT if the target is gone: nothing to do
}

uint64_t now_ms() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000u + static_cast<uint64_t>(ts.tv_nsec) / 1'000'000u;
}

// [listener] Serves every notify fd; rewrites the report while it changes.
void* listener_main(void*) {
  // It inherited the first rt thread's scheduling (SCHED_FIFO there: good, it
  // serves that thread) and its CPU affinity (bad if pinned: a spinning rt
  // thread would starve it). Allow every CPU; the kernel keeps the cpuset.
  cpu_set_t all;
  CPU_ZERO(&all);
  for (int c = 0; c < CPU_SETSIZE; ++c) CPU_SET(c, &all);
  sched_setaffinity(0, sizeof all, &all);
  uint64_t last_write_ms = 0, last_sig = ~0ull;
  for (;;) {
    int r = poll(g_pfd, static_cast<nfds_t>(g_npfd), g_dir[0] ? kReportPeriodMs : -1);
    if (r > 0) {
      if (g_pfd[0].revents & POLLIN) {
        uint64_t v;
        while (::read(g_eventfd, &v, sizeof v) > 0) {
        }
        for (auto& p : g_pending) {
          int fd1 = p.exchange(0, std::memory_order_acq_rel);
          if (fd1) g_pfd[g_npfd++] = pollfd{fd1 - 1, POLLIN, 0};
        }
      }
      for (int i = 1; i < g_npfd;) {
        const short re = g_pfd[i].revents;
        if (re & POLLIN) {
          serve_one(g_pfd[i].fd);
        } else if (re & (POLLHUP | POLLERR | POLLNVAL)) {
          // No task uses this filter any more (its thread and descendants exited).
          ::close(g_pfd[i].fd);
          g_pfd[i] = g_pfd[--g_npfd];
          g_fds_reserved.fetch_sub(1, std::memory_order_relaxed);
          continue;  // the entry moved here was polled too: look at it
        }
        ++i;
      }
    }
    if (g_dir[0]) {
      const uint64_t t = now_ms();
      if (t - last_write_ms >= kReportPeriodMs) {
        const uint64_t sig = signature();
        if (sig != last_sig) {
          write_report();
          last_sig = sig;
        }
        last_write_ms = t;
      }
    }
  }
  return nullptr;
}

// [setup] Starts this process's listener once; every caller waits until it runs.
bool ensure_listener() noexcept {
  int st = g_listener.load(std::memory_order_acquire);
  if (st == kNone && g_listener.compare_exchange_strong(st, kStarting, std::memory_order_acq_rel)) {
    bool ok = false;
    g_eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (g_eventfd >= 0) {
      g_pfd[0] = pollfd{g_eventfd, POLLIN, 0};
      g_npfd = 1;
      // All signals blocked: no handler (ours or the program's) runs on the
      // listener, so a handler can never wait for it.
      sigset_t all, old;
      sigfillset(&all);
      pthread_sigmask(SIG_SETMASK, &all, &old);
      pthread_t th;
      ok = pthread_create(&th, nullptr, listener_main, nullptr) == 0;
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      if (ok) {
        pthread_setname_np(th, "rtcount");
        pthread_detach(th);
      }
    }
    g_listener.store(ok ? kRunning : kFailed, std::memory_order_release);
    return ok;
  }
  while ((st = g_listener.load(std::memory_order_acquire)) == kStarting) sched_yield();
  return st == kRunning;
}

// [setup] Installs the filter described at the top. Returns the notify fd,
// -1 with errno on failure.
int install_filter() noexcept {
  const uint32_t efd = static_cast<uint32_t>(g_eventfd);
  constexpr uint32_t kArg0Lo = offsetof(seccomp_data, args);  // little-endian halves
  constexpr uint32_t kArg0Hi = kArg0Lo + 4;
  sock_filter code[] = {
      /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0),
      /* 2 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      /* 3 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      /* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_futex, 6, 0),      // -> 11
      /* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kNrFutexWaitv, 5, 0),  // -> 11
      /* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_write, 0, 5),      // -> 7 / 12
      /* 7 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArg0Lo),
      /* 8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, efd, 0, 3),  // -> 9 / 12
      /* 9 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArg0Hi),
      /* 10 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),  // -> 11 / 12
      /* 11 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      /* 12 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof code / sizeof code[0]), code};
  auto attempt = [&] {
    return static_cast<int>(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog));
  };
  int fd = attempt();
  if (fd < 0 && errno == EACCES && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0) fd = attempt();
  return fd;
}

// [setup] Sends one getppid through the filter and reports whether this
// process's listener saw it.
bool probe_reaches_listener(Slot* s) noexcept {
  s->probe.store(kProbeSent, std::memory_order_release);
  syscall(SYS_getppid);
  return s->probe.load(std::memory_order_acquire) == kProbeSeen;
}

// [setup] First rackd_rt_enter of a thread: claim a slot, start the listener,
// filter this thread. Runs before the depth rises, so nothing here is counted.
void setup_thread() noexcept {
  t_setup_done = true;
  const int idx = g_nslots.fetch_add(1, std::memory_order_acq_rel);
  if (idx >= kMaxThreads) return;  // reported as lost_threads
  Slot* s = &g_slots[idx];
  s->depth.store(0, std::memory_order_relaxed);
  s->seccomp.store(kOff, std::memory_order_relaxed);
  s->probe.store(kNoProbe, std::memory_order_relaxed);
  s->sections.store(0, std::memory_order_relaxed);
  for (auto& k : s->kinds) k.store(0, std::memory_order_relaxed);
  s->syscalls.store(0, std::memory_order_relaxed);
  for (auto& f : s->first) f.store(0, std::memory_order_relaxed);
  s->tid.store(gettid(), std::memory_order_release);
  t_slot = s;

  if (!ensure_listener()) return;
  if (g_fds_reserved.fetch_add(1, std::memory_order_acq_rel) >= kMaxFds) {
    g_fds_reserved.fetch_sub(1, std::memory_order_acq_rel);
    return;
  }
  const int fd = install_filter();
  if (fd < 0) {
    g_fds_reserved.fetch_sub(1, std::memory_order_acq_rel);
    // EBUSY: a filter with a listener is already inherited from the creating
    // thread. If it is ours, the listener still sees this tid.
    if (errno == EBUSY && probe_reaches_listener(s)) s->seccomp.store(kInherited, std::memory_order_relaxed);
    return;
  }
  for (auto& p : g_pending) {
    int empty = 0;
    if (p.compare_exchange_strong(empty, fd + 1, std::memory_order_acq_rel)) break;
  }
  const uint64_t one = 1;
  while (::write(g_eventfd, &one, sizeof one) < 0 && errno == EINTR) {
  }
  if (probe_reaches_listener(s)) s->seccomp.store(kOwn, std::memory_order_relaxed);
}

// ---------------------------------------------------------------- process

void on_fatal_signal(int sig) {
  write_report();
  // SA_RESETHAND restored the default; SA_NODEFER lets it act right away.
  raise(sig);
}

// fork() without exec: the child has one thread and no listener; start afresh.
void after_fork_child() {
  g_nslots.store(0, std::memory_order_relaxed);
  g_notifications.store(0, std::memory_order_relaxed);
  g_listener.store(kNone, std::memory_order_relaxed);
  g_fds_reserved.store(0, std::memory_order_relaxed);
  g_report_owner.store(0, std::memory_order_relaxed);
  for (auto& p : g_pending) {
    int fd1 = p.exchange(0, std::memory_order_relaxed);
    if (fd1) ::close(fd1 - 1);
  }
  for (int i = 0; i < g_npfd; ++i) ::close(g_pfd[i].fd);  // our copies; the parent keeps its own
  g_npfd = 0;
  g_eventfd = -1;
  t_slot = nullptr;
  t_setup_done = false;
}

__attribute__((constructor)) void rtcount_init() {
  const char* dir = getenv("RACKD_RTCOUNT_DIR");
  if (dir && std::strlen(dir) < sizeof g_dir - 32) std::strcpy(g_dir, dir);
  pthread_atfork(nullptr, nullptr, after_fork_child);
  if (!g_dir[0]) return;
  // Only where the program keeps the default (it would die anyway); rackd's
  // server takes SIGTERM in a sigwait thread and exits normally.
  for (int sig : {SIGTERM, SIGINT}) {
    struct sigaction old;
    if (sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) {
      struct sigaction sa;
      std::memset(&sa, 0, sizeof sa);
      sa.sa_handler = on_fatal_signal;
      sa.sa_flags = SA_RESETHAND | SA_NODEFER;
      sigemptyset(&sa.sa_mask);
      sigaction(sig, &sa, nullptr);
    }
  }
}

__attribute__((destructor)) void rtcount_fini() { write_report(); }

}  // namespace

// ---------------------------------------------------------------- hooks

extern "C" void rackd_rt_enter() {
  if (!t_setup_done) setup_thread();
  const int d = ++t_depth;
  if (Slot* s = t_slot) {
    if (d == 1) s->sections.fetch_add(1, std::memory_order_relaxed);
    s->depth.store(d, std::memory_order_release);
  }
}

extern "C" void rackd_rt_leave() {
  if (t_depth == 0) return;  // unbalanced leave: ignore rather than go negative
  const int d = --t_depth;
  if (Slot* s = t_slot) s->depth.store(d, std::memory_order_release);
}

// [any] Counts one allocator call of the calling thread if it is inside rt.
void rtcount::count(Kind k) noexcept {
  if (t_depth > 0) {
    if (Slot* s = t_slot) s->kinds[k].fetch_add(1, std::memory_order_relaxed);
  }
}
