// The `--audio-cpu` policy (see audio_cpu.hpp). [setup] only.
#include "server/audio_cpu.hpp"

#include <dirent.h>
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "server/server.hpp"
#include "shm/futex.hpp"
#include "shm/rt.hpp"

namespace rackd::server {

AudioCpuOption parse_audio_cpu(const std::string& text) {
  AudioCpuOption o;
  if (text == "auto") return o;
  if (text == "none") {
    o.mode = AudioCpuOption::Mode::kNone;
    return o;
  }
  char* end = nullptr;
  const long cpu = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || cpu < 0 || cpu >= CPU_SETSIZE)
    throw std::invalid_argument("--audio-cpu takes auto, none or a CPU number, not \"" + text + "\"");
  o.mode = AudioCpuOption::Mode::kCpu;
  o.cpu = static_cast<int>(cpu);
  return o;
}

bool serial_graph(const Patch& patch) {
  std::vector<int> consumers(patch.modules.size(), 0);
  int roots = 0;
  for (const PatchModule& m : patch.modules) {
    if (m.inputs.size() > 1) return false;
    if (!m.inputs.empty() && m.inputs[0].from >= 0) {
      if (++consumers[static_cast<std::size_t>(m.inputs[0].from)] > 1) return false;
    } else if (++roots > 1) {
      return false;
    }
  }
  return true;
}

int choose_audio_cpu(const Patch& patch, const AudioCpuOption& option, std::string& why) {
  switch (option.mode) {
    case AudioCpuOption::Mode::kNone:
      why = "--audio-cpu none";
      return -1;
    case AudioCpuOption::Mode::kCpu:
      return option.cpu;
    case AudioCpuOption::Mode::kAuto:
      break;
  }
  if (!serial_graph(patch)) {
    why = "the graph has parallel branches";
    return -1;
  }
  const int cpu = last_allowed_cpu();
  if (cpu <= 0) why = "one CPU only";
  return cpu <= 0 ? -1 : cpu;
}

std::string pin_live(Server& server, pthread_t device_thread, int cpu, uint32_t rt_priority) {
  int policy = 0;
  sched_param param{};
  if (pthread_getschedparam(device_thread, &policy, &param) != 0) return "audio threads not pinned: device thread unknown";
  if ((policy & ~SCHED_RESET_ON_FORK) != SCHED_FIFO || param.sched_priority < 2)
    return "audio threads not pinned: the device thread is not SCHED_FIFO (a spinning module could starve it)";
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (int e = pthread_setaffinity_np(device_thread, sizeof set, &set); e != 0)
    return std::string("audio threads not pinned: ") + strerror(e);
  const uint32_t below = static_cast<uint32_t>(param.sched_priority - 1);
  const uint32_t priority = rt_priority == 0 ? 0 : std::min(rt_priority, below);
  shm::SegmentHeader& h = server.engine().segment().header();
  // Fields first, then the running processes: a module that starts after this
  // reads them, one that started before is moved here by its process id.
  h.module_priority.store(priority, std::memory_order_seq_cst);
  h.audio_cpu.store(cpu, std::memory_order_seq_cst);
  std::string failures;
  for (uint32_t slot = 0; slot < server.engine().patch().modules.size(); ++slot) {
    const pid_t pid = server.supervisor().pid_of(slot);
    if (pid <= 0) continue;
    const char* why = nullptr;
    // By process id: the module's block loop is its main thread, and its
    // real-time helpers (hrir's convolution tail) follow one priority below.
    if ((priority > 0 && !try_process_priority(pid, static_cast<int>(priority), &why)) ||
        !try_pin_to_cpu(pid, cpu, &why))
      failures += " " + server.engine().patch().modules[slot].name + " (" + why + ")";
  }
  std::string line = "audio thread and modules on CPU " + std::to_string(cpu) + ", modules " +
                     (priority ? "at SCHED_FIFO " + std::to_string(priority) : std::string("not real-time")) +
                     ", below the device thread's SCHED_FIFO " + std::to_string(param.sched_priority);
  if (!failures.empty()) line += "; could not move:" + failures;
  return line;
}

namespace {

// The CPUs this process may use.
std::vector<int> allowed_cpus() {
  std::vector<int> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return out;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) out.push_back(c);
  return out;
}

// The next of `cpus` after `cpu`, or -1 when there is none other.
int next_cpu(const std::vector<int>& cpus, int cpu) {
  if (cpus.size() < 2) return -1;
  for (int c : cpus)
    if (c > cpu) return c;
  return cpus.front() == cpu ? cpus[1] : cpus.front();
}

bool only_on(pid_t tid, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  return sched_getaffinity(tid, sizeof set, &set) == 0 && CPU_COUNT(&set) == 1 && CPU_ISSET(cpu, &set);
}

// The device thread's id: the one SCHED_FIFO thread of this process pinned to
// `cpu` (pin_live() just put it there); -1 if there is not exactly one.
pid_t find_device_tid(int cpu) {
  pid_t found = -1;
  DIR* dir = opendir("/proc/self/task");
  if (!dir) return -1;
  while (const dirent* e = readdir(dir)) {
    const pid_t tid = static_cast<pid_t>(std::atoi(e->d_name));
    if (tid <= 0 || (sched_getscheduler(tid) & ~SCHED_RESET_ON_FORK) != SCHED_FIFO || !only_on(tid, cpu)) continue;
    found = found < 0 ? tid : -2;
  }
  closedir(dir);
  return found;
}

// State letter and last CPU of thread `tid` from /proc/<tid>/stat ('?' if gone).
char state_of(pid_t tid, int& cpu) {
  std::ifstream f("/proc/" + std::to_string(tid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return '?';
  const size_t close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return '?';
  const char state = line[close + 2];
  // Field 39 (processor) is the 37th after the command's closing parenthesis.
  const char* at = line.c_str() + close + 2;
  for (int field = 0; field < 36 && at; ++field) {
    at = std::strchr(at, ' ');
    if (at) ++at;
  }
  cpu = at ? std::atoi(at) : -1;
  return state;
}

void pin_thread_away_from(const std::vector<int>& cpus, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus)
    if (c != cpu) CPU_SET(c, &set);
  if (CPU_COUNT(&set) > 0) pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

}  // namespace

AudioCpuWatch::AudioCpuWatch(Server& server, pthread_t device_thread, int cpu, uint64_t period_ns,
                             const std::atomic<uint64_t>& overruns)
    : server_(server), device_thread_(device_thread), cpu_(cpu), period_ns_(period_ns), overruns_(overruns) {
  // RACKD_AUDIO_CPU_WATCH=0 turns the watcher off, RACKD_AUDIO_CPU_ON_LOSS=0
  // only its moves after lost cycles (bench/placement.py measures each).
  if (const char* env = std::getenv("RACKD_AUDIO_CPU_WATCH"); env && std::strcmp(env, "0") == 0) return;
  if (const char* env = std::getenv("RACKD_AUDIO_CPU_ON_LOSS"); env && std::strcmp(env, "0") == 0)
    move_on_loss_ = false;
  device_tid_ = find_device_tid(cpu);
  cpus_ = allowed_cpus();  // here: the watcher itself runs on fewer
  if (device_tid_ <= 0 || next_cpu(cpus_, cpu) < 0) return;
  thread_ = std::thread([this] { run(); });
}

AudioCpuWatch::~AudioCpuWatch() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

bool AudioCpuWatch::held_up() {
  std::vector<pid_t> tids{device_tid_};
  for (uint32_t slot = 0; slot < server_.engine().patch().modules.size(); ++slot) {
    const pid_t pid = server_.supervisor().pid_of(slot);
    if (pid > 0) tids.push_back(pid);
  }
  for (pid_t tid : tids) {
    int on = -1;
    if (state_of(tid, on) == 'R' && on == cpu_) return true;
  }
  return false;
}

void AudioCpuWatch::move_to(int cpu, const char* why) {
  const int from = cpu_;
  cpu_ = cpu;
  // The field first: a module that restarts from now on reads it.
  server_.engine().segment().header().audio_cpu.store(cpu, std::memory_order_seq_cst);
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(device_thread_, sizeof set, &set);
  for (uint32_t slot = 0; slot < server_.engine().patch().modules.size(); ++slot) {
    const pid_t pid = server_.supervisor().pid_of(slot);
    if (pid > 0) try_pin_to_cpu(pid, cpu);  // by process id: a module's block loop is its main thread
  }
  pin_thread_away_from(cpus_, cpu);
  std::fprintf(stderr, "rackd: audio threads moved from CPU %d to CPU %d: %s\n", from, cpu, why);
}

void AudioCpuWatch::lost_cycles(uint64_t& lost, uint64_t& restarts) const {
  lost = overruns_.load(std::memory_order_relaxed);
  restarts = 0;
  shm::Segment& seg = server_.engine().segment();
  for (uint32_t slot = 0; slot < shm::kMaxModules; ++slot) {
    const shm::ModuleIn& in = seg.module_in(slot);
    lost += in.late.load(std::memory_order_relaxed);
    restarts += in.restarts.load(std::memory_order_relaxed);
  }
}

void AudioCpuWatch::run() {
  pthread_setname_np(pthread_self(), "rackd-cpu-watch");
  // Real-time at the lowest priority, so ordinary work cannot keep it from
  // looking, and away from the audio CPU, so that CPU's stall does not stop it.
  try_realtime_priority(1);
  pin_thread_away_from(cpus_, cpu_);
  // Each wake-up costs CPU time that counts against rackd (about 12 us here:
  // every millisecond would add half of a one-module chain's whole cost), so
  // the watcher looks every 10 ms while the device cycles, and every
  // millisecond only to confirm a stall it has seen.
  constexpr uint64_t kLookNs = 10'000'000;
  constexpr uint64_t kConfirmNs = 1'000'000;
  constexpr uint64_t kMoveGapNs = 250'000'000;
  constexpr uint64_t kWindowNs = 1'000'000'000;
  constexpr uint64_t kPendingNs = 100'000'000;
  constexpr uint64_t kLossMoveGapNs = 2'000'000'000;
  constexpr uint64_t kLossMoveGapMaxNs = 64'000'000'000;
  constexpr uint64_t kLossCalmNs = 30'000'000'000;
  const uint64_t stall_ns = period_ns_ * 3 / 2;
  uint64_t last_cycles = server_.engine().cycles();
  uint64_t last_change = shm::now_ns();
  uint64_t last_move = 0;
  uint64_t window_start = last_change;
  uint64_t lost = 0, restarts = 0;
  lost_cycles(lost, restarts);
  uint64_t window_lost = lost, window_restarts = restarts;
  auto new_window = [&](uint64_t at) {
    window_start = at;
    window_lost = lost;
    window_restarts = restarts;
  };
  uint64_t pending_at = 0;  // when the window reached kMoveLost
  uint64_t loss_gap = kLossMoveGapNs;
  uint64_t last_loss_move = 0;
  int looks = 0;
  char why[160];
  while (!stop_.load(std::memory_order_relaxed)) {
    const timespec pause{0, static_cast<long>(looks > 0 ? kConfirmNs : kLookNs)};
    clock_nanosleep(CLOCK_MONOTONIC, 0, &pause, nullptr);
    const uint64_t now = shm::now_ns();
    if (move_on_loss_) {
      lost_cycles(lost, restarts);
      // A slot given to a new module (a live edit) starts its counters at 0.
      if (lost < window_lost || restarts < window_restarts) {
        pending_at = 0;
        new_window(now);
      }
      if (pending_at == 0 && now - window_start >= kWindowNs) new_window(now);
      if (pending_at == 0 && lost - window_lost >= kMoveLost && now - last_move >= loss_gap) pending_at = now;
      // A module that hangs or dies is late too, through no fault of the CPU:
      // the supervisor restarts it within its hang limit (50 ms), so the
      // watcher waits 100 ms and moves only if no module restarted.
      if (pending_at != 0 && now - pending_at >= kPendingNs) {
        const int to = next_cpu(cpus_, cpu_);
        if (restarts == window_restarts && to >= 0) {
          std::snprintf(why, sizeof why,
                        "%llu cycles lost on CPU %d within a second (overruns and late blocks: it lost time to "
                        "the host or to a held kernel path)",
                        static_cast<unsigned long long>(lost - window_lost), cpu_);
          move_to(to, why);
          loss_moves_.fetch_add(1, std::memory_order_relaxed);
          // Both CPUs losing cycles (or a module too slow for its block):
          // each move that follows the last within 30 s waits twice as long.
          loss_gap = last_loss_move != 0 && now - last_loss_move < kLossCalmNs
                         ? std::min(loss_gap * 2, kLossMoveGapMaxNs)
                         : kLossMoveGapNs;
          last_loss_move = now;
          last_move = now;
          looks = 0;
        }
        pending_at = 0;
        new_window(now);
      }
    }
    const uint64_t cycles = server_.engine().cycles();
    if (cycles != last_cycles) {
      last_cycles = cycles;
      last_change = now;
      looks = 0;
      continue;
    }
    if (now - last_change < stall_ns || now - last_move < kMoveGapNs) continue;
    looks = held_up() ? looks + 1 : 0;
    if (looks < 2) continue;
    const int to = next_cpu(cpus_, cpu_);
    if (to < 0) return;
    std::snprintf(why, sizeof why, "CPU %d held them up (no cycle for %.1f ms)", cpu_,
                  static_cast<double>(now - last_change) / 1e6);
    move_to(to, why);
    moves_.fetch_add(1, std::memory_order_relaxed);
    last_move = now;
    looks = 0;
  }
}

}  // namespace rackd::server
