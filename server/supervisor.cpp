// Module processes: spawn, watch (pidfd + epoll), restart, stop. The watcher
// runs on its own thread; nothing here is on an audio thread.
#include "server/supervisor.hpp"

#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "shm/cycle.hpp"
#include "shm/futex.hpp"

namespace rackd::server {
namespace {

using shm::ModuleState;

int pidfd_open(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
                                  strsignal(WTERMSIG(status)) + ")";
  return "ended";
}

}  // namespace

std::chrono::milliseconds Supervisor::backoff(std::size_t failures_in_window) {
  if (failures_in_window <= 1) return std::chrono::milliseconds(0);
  std::size_t shift = std::min<std::size_t>(failures_in_window - 2, 8);
  return std::chrono::milliseconds(std::min<long>(50L << shift, 2000L));
}

Supervisor::Supervisor(shm::Segment& segment, const Patch& patch, SupervisorPolicy policy)
    : segment_(segment), policy_(policy) {
  children_.resize(shm::kMaxModules);
  for (uint32_t i = 0; i < patch.modules.size() && i < children_.size(); ++i) {
    Child& c = children_[i];
    c.active = true;
    c.exe = patch.modules[i].spec->executable;
    c.report.name = patch.modules[i].name;
    c.report.latency_frames = patch.modules[i].spec->latency_frames;
    c.report.slot = i;
  }
}

void Supervisor::add(uint32_t slot, const PatchModule& m) {
  const std::string exe = m.spec->executable;
  // A new module: nothing of an earlier one of that name carries over.
  std::error_code ec;
  std::filesystem::remove_all(shm::module_state_dir(segment_.name(), m.name), ec);
  if (access(exe.c_str(), X_OK) != 0) throw std::runtime_error("module executable " + exe + ": " + strerror(errno));
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_.load()) throw std::runtime_error("server is stopping");
  if (slot >= children_.size() || children_[slot].active) throw std::runtime_error("slot in use");
  Child& c = children_[slot];
  c = Child{};
  c.active = true;
  c.exe = exe;
  c.report.name = m.name;
  c.report.latency_frames = m.spec->latency_frames;
  c.report.slot = slot;
  c.report.state = ModuleState::kStarting;
  // Spawned by the watcher thread, like every restart: a child's parent-death
  // signal fires when the thread that forked it exits, and the watcher lives
  // until stop(), while the caller (the OSC thread) may end first.
  c.spawn_pending = true;
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    ssize_t w = write(wake_fd_, &one, sizeof one);
    (void)w;
  }
}

void Supervisor::remove(uint32_t slot) {
  std::lock_guard<std::mutex> lock(mu_);
  if (slot >= children_.size() || !children_[slot].active) return;
  Child& c = children_[slot];
  c.removing = true;
  c.restart_pending = false;
  c.spawn_pending = false;
  if (c.pid > 0) {
    kill(c.pid, SIGKILL);  // reap() frees the slot
  } else {
    c.active = false;
    c.removing = false;
    segment_.module_in(slot).state.store(static_cast<uint32_t>(ModuleState::kFree), std::memory_order_release);
  }
}

bool Supervisor::is_free(uint32_t slot) const {
  std::lock_guard<std::mutex> lock(mu_);
  return slot < children_.size() && !children_[slot].active;
}

Supervisor::~Supervisor() {
  stop();
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

void Supervisor::start() {
  for (const auto& c : children_) {
    if (!c.active) continue;
    if (access(c.exe.c_str(), X_OK) != 0)
      throw std::runtime_error("module executable " + c.exe + ": " + strerror(errno));
  }
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd_ < 0 || wake_fd_ < 0) throw std::runtime_error(std::string("epoll: ") + strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = UINT32_MAX;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (uint32_t i = 0; i < children_.size(); ++i) {
      if (children_[i].active) spawn(i);
    }
  }
  thread_ = std::thread([this] { thread_main(); });
}

// Called with mu_ held.
void Supervisor::spawn(uint32_t slot) {
  Child& c = children_[slot];
  shm::ModuleIn& in = segment_.module_in(slot);
  in.generation.fetch_add(1, std::memory_order_acq_rel);
  in.muted.store(0, std::memory_order_relaxed);  // a new process starts clean
  in.mute_reason.store(0, std::memory_order_relaxed);
  in.busy_since_ns.store(0, std::memory_order_relaxed);
  in.state.store(static_cast<uint32_t>(ModuleState::kStarting), std::memory_order_release);

  // Everything the child needs is built before fork: after fork only
  // async-signal-safe calls are allowed.
  const std::string slot_text = std::to_string(slot);
  const std::string& seg = segment_.name();
  const char* argv[] = {c.exe.c_str(), "--segment", seg.c_str(), "--slot", slot_text.c_str(), nullptr};
  const pid_t server = getpid();
  // A new process sets itself up (exec, loading, locking its memory) off the
  // audio CPU: on a kernel without preemption an ordinary task in a long
  // system call there holds up the device thread. It moves onto the audio
  // CPU itself once it enters its block loop.
  cpu_set_t setup_cpus;
  CPU_ZERO(&setup_cpus);
  bool confine = false;
  if (const int audio = segment_.header().audio_cpu.load(std::memory_order_acquire); audio >= 0) {
    if (sched_getaffinity(0, sizeof setup_cpus, &setup_cpus) == 0 && CPU_ISSET(audio, &setup_cpus) &&
        CPU_COUNT(&setup_cpus) > 1) {
      CPU_CLR(audio, &setup_cpus);
      confine = true;
    }
  }
  // vfork, not fork: the child borrows the server's memory until execv
  // instead of sharing it copy-on-write, so the audio thread never takes a
  // page-copy fault for a module being spawned (a fork marks every page of
  // the server read-only until the child execs; with modules added while
  // playing that cost blocks of the device). Only the calls below, all
  // async-signal-safe and none touching memory the parent uses, run in the
  // child before execv.
  pid_t pid = vfork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // Ctrl-C in a terminal goes to the whole process group: the server stops
    // the modules itself, in order, so they ignore SIGINT.
    signal(SIGINT, SIG_IGN);
    if (confine) sched_setaffinity(0, sizeof setup_cpus, &setup_cpus);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != server) _exit(70);
    execv(argv[0], const_cast<char* const*>(argv));
    _exit(127);
  }
  if (pid < 0) {
    fprintf(stderr, "rackd: cannot start module %s: %s\n", c.report.name.c_str(), strerror(errno));
    c.restart_pending = true;
    c.restart_at_ns = shm::now_ns() + 1'000'000'000ull;
    return;
  }
  c.pid = pid;
  c.pidfd = pidfd_open(pid);
  if (c.pidfd >= 0) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = slot;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.pidfd, &ev);
  }
  c.report.state = ModuleState::kStarting;
}

// Called with mu_ held, when the pidfd says the process ended.
void Supervisor::reap(uint32_t slot) {
  Child& c = children_[slot];
  int status = 0;
  if (c.pid > 0) waitpid(c.pid, &status, 0);
  if (c.pidfd >= 0) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.pidfd, nullptr);
    close(c.pidfd);
  }
  c.pidfd = -1;
  c.pid = -1;
  shm::ModuleIn& in = segment_.module_in(slot);
  const shm::ModuleOut& out = segment_.module_out(slot);
  const uint64_t now = shm::now_ns();
  ModuleState next = ModuleState::kDead;
  if (c.removing) {
    // Taken out of the graph: the slot is free for the next module.
    c.removing = false;
    c.active = false;
    c.report.state = ModuleState::kFree;
    in.state.store(static_cast<uint32_t>(ModuleState::kFree), std::memory_order_release);
    return;
  }
  if (stopping_.load()) {
    next = ModuleState::kStopped;
  } else if (c.report.state == ModuleState::kStarting && out.setup_failed.load(std::memory_order_acquire)) {
    // Only a process that never became ready can have refused its setup; a
    // running one that writes setup_failed is lying (and crashed anyway).
    // The configuration will not change by restarting: leave the slot replaced.
    next = ModuleState::kSetupError;
    c.report.error.assign(out.error, strnlen(out.error, shm::kErrorBytes));
    fprintf(stderr, "rackd: module %s refused its setup: %s; its output is replaced\n",
            c.report.name.c_str(), c.report.error.c_str());
  }
  in.state.store(static_cast<uint32_t>(next), std::memory_order_release);
  // The scheduler may be sleeping on this module's completion word: wake it so
  // it replaces the block now instead of at the deadline.
  shm::futex_wake(out.done, INT_MAX);
  segment_.header().server_poke.fetch_add(1, std::memory_order_seq_cst);
  shm::futex_wake(segment_.header().server_poke, INT_MAX);
  c.report.state = next;
  if (next != ModuleState::kDead) return;

  c.died_at_ns = now;
  const bool manual = c.manual;
  c.manual = false;
  if (manual) {
    c.restart_pending = true;
    c.restart_at_ns = now;
    return;
  }
  // A long healthy run forgets earlier failures: backoff starts again at 0.
  if (c.ready_at_ns && now - c.ready_at_ns > static_cast<uint64_t>(
                                                 std::chrono::nanoseconds(policy_.healthy_after).count()))
    c.failures.clear();
  const uint64_t window = static_cast<uint64_t>(std::chrono::nanoseconds(policy_.window).count());
  c.failures.push_back(now);
  while (!c.failures.empty() && now - c.failures.front() > window) c.failures.pop_front();
  const std::string why = c.hang_killed ? "hung (no progress) and was killed" : describe_exit(status);
  c.hang_killed = false;
  c.report.last_exit = why;
  if (c.failures.size() >= policy_.give_up_after) {
    // Stop restarting: the slot stays replaced until someone re-arms it.
    in.state.store(static_cast<uint32_t>(ModuleState::kFailed), std::memory_order_release);
    c.report.state = ModuleState::kFailed;
    fprintf(stderr,
            "rackd: module %s %s; %zu failures within %lld s: giving up, its output stays replaced "
            "(rackctl restart %s re-arms it)\n",
            c.report.name.c_str(), why.c_str(), c.failures.size(),
            static_cast<long long>(policy_.window.count()), c.report.name.c_str());
    return;
  }
  auto delay = backoff(c.failures.size());
  c.restart_pending = true;
  c.restart_at_ns = now + static_cast<uint64_t>(std::chrono::nanoseconds(delay).count());
  fprintf(stderr, "rackd: module %s %s; restarting in %lld ms\n", c.report.name.c_str(), why.c_str(),
          static_cast<long long>(delay.count()));
}

// Called with mu_ held. A module that holds a request longer than hang_after
// (SIGSTOP, an endless loop, a deadlock) is killed; reap() restarts it.
// Returns when to look again: idle_look from now while the module holds no
// request (one it takes after this look cannot be hung before then), the
// moment its request turns hang_after old while it holds one, and soon (10 ms)
// while it is that old but the server has not cycled enough to call it hung.
// Live (idle_look = hang_after = 50 ms) a healthy module costs about 20 looks
// a second, not 100, and a hung one is still caught hang_after after its
// request.
uint64_t Supervisor::check_hung(uint32_t slot, uint64_t now) {
  constexpr uint64_t kRecheckNs = 10'000'000;
  const uint64_t limit = static_cast<uint64_t>(std::chrono::nanoseconds(policy_.hang_after).count());
  const uint64_t idle = std::min(limit, static_cast<uint64_t>(std::chrono::nanoseconds(policy_.idle_look).count()));
  Child& c = children_[slot];
  if (c.pid <= 0 || c.report.state != ModuleState::kRunning || c.hang_killed) return idle;
  const shm::ModuleIn& in = segment_.module_in(slot);
  uint64_t since = in.busy_since_ns.load(std::memory_order_acquire);
  if (in.busy_generation.load(std::memory_order_relaxed) != in.generation.load(std::memory_order_relaxed))
    since = 0;  // a stamp for a process that is gone
  // The stamp is cleared when the scheduler sees the block done; a module that
  // finished late, while the device itself stalled, has answered all the same.
  const uint32_t sent = in.request.load(std::memory_order_acquire);
  // (At or past: a module may have run ahead in a batch that was cut short.)
  const uint32_t done = segment_.module_out(slot).done.load(std::memory_order_acquire);
  if (shm::completed(done, sent)) since = 0;
  const uint64_t next = since == 0 ? idle : since + limit > now ? since + limit - now : kRecheckNs;
  // The server has to have kept cycling while the module did not answer. (A
  // batch asks for cycles ahead of the one the server is at: negative.)
  if (cycle_source_ &&
      shm::cycle_diff(cycle_source_->load(std::memory_order_relaxed), sent) < static_cast<int64_t>(policy_.hang_cycles))
    since = 0;
  // A running module whose readiness word no longer matches broke the
  // protocol (scribbled over its control page): it gets no more cycles, so
  // treat it like a hung one and replace the process.
  const bool broken = segment_.module_out(slot).ready_generation.load(std::memory_order_relaxed) !=
                      in.generation.load(std::memory_order_relaxed);
  if (!broken && (since == 0 || now < since || now - since < limit)) return next;
  c.hang_killed = true;
  ++c.report.hangs;
  kill(c.pid, SIGKILL);
  return idle;
}

bool Supervisor::restart(uint32_t slot, std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_.load()) {
    error = "server is stopping";
    return false;
  }
  if (slot >= children_.size() || !children_[slot].active || children_[slot].removing) {
    error = "no such module";
    return false;
  }
  Child& c = children_[slot];
  c.failures.clear();
  if (c.pid > 0) {
    c.manual = true;
    kill(c.pid, SIGKILL);
  } else {
    c.restart_pending = true;
    c.restart_at_ns = shm::now_ns();
    c.report.state = ModuleState::kDead;
    segment_.module_in(slot).state.store(static_cast<uint32_t>(ModuleState::kDead), std::memory_order_release);
  }
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    ssize_t w = write(wake_fd_, &one, sizeof one);
    (void)w;
  }
  return true;
}

// Called with mu_ held.
void Supervisor::check_ready(uint32_t slot, uint64_t now) {
  Child& c = children_[slot];
  if (c.report.state != ModuleState::kStarting || c.pid < 0) return;
  shm::ModuleIn& in = segment_.module_in(slot);
  const shm::ModuleOut& out = segment_.module_out(slot);
  if (out.ready_generation.load(std::memory_order_acquire) != in.generation.load(std::memory_order_acquire))
    return;
  uint32_t expected = static_cast<uint32_t>(ModuleState::kStarting);
  in.state.compare_exchange_strong(expected, static_cast<uint32_t>(ModuleState::kRunning));
  c.report.state = ModuleState::kRunning;
  c.ready_at_ns = now;
}

// Called with mu_ held: a restart ends with the new process's first good block.
static void note_restart_done(const shm::ModuleIn& in, uint64_t died_at, bool& restarted,
                              std::vector<double>& restart_ms, const std::string& name) {
  if (!restarted) return;
  const uint64_t good = in.first_good_ns.load(std::memory_order_acquire);
  if (good <= died_at) return;
  const double ms = static_cast<double>(good - died_at) / 1e6;
  restart_ms.push_back(ms);
  fprintf(stderr, "rackd: module %s is back after %.1f ms\n", name.c_str(), ms);
  restarted = false;
}

void Supervisor::thread_main() {
  epoll_event events[16];
  while (!stopping_.load()) {
    int timeout_ms = 1000;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const uint64_t now = shm::now_ns();
      for (uint32_t i = 0; i < children_.size(); ++i) {
        Child& c = children_[i];
        if (!c.active) continue;
        if (c.spawn_pending) {
          c.spawn_pending = false;
          spawn(i);
        }
        if (c.restart_pending && now >= c.restart_at_ns) {
          c.restart_pending = false;
          c.restarted = true;
          ++c.report.restarts;
          segment_.module_in(i).restarts.fetch_add(1, std::memory_order_relaxed);
          spawn(i);
        }
        check_ready(i, now);
        const uint64_t look_ns = check_hung(i, now);
        note_restart_done(segment_.module_in(i), c.died_at_ns, c.restarted, c.report.restart_ms, c.report.name);
        if (c.report.state == ModuleState::kStarting || c.restarted) timeout_ms = std::min(timeout_ms, 1);
        if (c.report.state == ModuleState::kRunning)
          timeout_ms = std::min<int>(timeout_ms, static_cast<int>(std::max<uint64_t>((look_ns + 999'999) / 1'000'000, 1)));
        if (c.restart_pending) {
          uint64_t wait_ms = c.restart_at_ns > now ? (c.restart_at_ns - now) / 1'000'000 + 1 : 0;
          timeout_ms = std::min<int>(timeout_ms, static_cast<int>(wait_ms));
        }
      }
    }
    int n = epoll_wait(epoll_fd_, events, 16, timeout_ms);
    if (n < 0 && errno != EINTR) break;
    std::lock_guard<std::mutex> lock(mu_);
    for (int k = 0; k < n; ++k) {
      uint32_t slot = events[k].data.u32;
      if (slot == UINT32_MAX) continue;
      if (slot < children_.size() && children_[slot].pidfd >= 0) reap(slot);
    }
  }
}

bool Supervisor::wait_ready(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    bool all = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& c : children_) {
        if (c.active && (c.report.state == ModuleState::kStarting || c.report.state == ModuleState::kDead)) all = false;
      }
    }
    if (all) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void Supervisor::stop() {
  if (stopping_.exchange(true)) {
    if (thread_.joinable()) thread_.join();
    return;
  }
  segment_.header().shutting_down.store(1, std::memory_order_release);
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    ssize_t w = write(wake_fd_, &one, sizeof one);
    (void)w;
  }
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& c : children_) {
    if (c.pid > 0) kill(c.pid, SIGTERM);
  }
  const uint64_t give_up = shm::now_ns() + 300'000'000ull;
  for (uint32_t i = 0; i < children_.size(); ++i) {
    Child& c = children_[i];
    if (!c.active || c.pid <= 0) continue;
    int status = 0;
    while (waitpid(c.pid, &status, WNOHANG) == 0) {
      if (shm::now_ns() >= give_up) {
        kill(c.pid, SIGKILL);
        waitpid(c.pid, &status, 0);
        break;
      }
      usleep(1000);
    }
    if (c.pidfd >= 0) close(c.pidfd);
    c.pidfd = -1;
    c.pid = -1;
    if (c.report.state != ModuleState::kSetupError) c.report.state = ModuleState::kStopped;
    segment_.module_in(i).state.store(static_cast<uint32_t>(c.report.state), std::memory_order_release);
  }
}

std::vector<ModuleReport> Supervisor::report() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ModuleReport> r;
  for (const auto& c : children_) {
    if (c.active) r.push_back(c.report);
  }
  return r;
}

pid_t Supervisor::pid_of(uint32_t slot) const {
  std::lock_guard<std::mutex> lock(mu_);
  return slot < children_.size() ? children_[slot].pid : -1;
}

}  // namespace rackd::server
