// Where the audio threads run: the policy behind `--audio-cpu`. [setup] only.
//
// A graph that is one chain (a single source, no fan-out) can never run two
// modules at once: every cycle is a relay from the device thread through each
// module and back. On two CPUs each leg of that relay is a cross-core wake-up,
// which on a virtual machine costs about 25 us (an IPI to a halted vCPU; see
// docs/realtime.md); on one CPU the same leg is a context switch of about 3 us.
// So for such graphs rackd puts the device thread and every module's block
// loop on one CPU (`auto`, the default). A graph with parallel branches keeps
// every CPU. `--audio-cpu N` pins any graph to CPU N, `none` never pins.
//
// Safety on a shared CPU: a module that spins must never starve the device
// thread, or the hang detector (which needs the device to keep cycling) would
// never fire. Live, rackd therefore pins only when the device thread runs
// SCHED_FIFO, and runs the modules one priority below it.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "graph/patch.hpp"

namespace rackd::server {

// The graph library's names, as the server uses them.
using graph::kDeviceInput;
using graph::Patch;
using graph::PatchError;
using graph::PatchInput;
using graph::PatchModule;

struct AudioCpuOption {
  enum class Mode { kAuto, kNone, kCpu } mode = Mode::kAuto;
  int cpu = -1;  // kCpu
};

// [setup] Parses "auto", "none" or a CPU number. Throws std::invalid_argument.
AudioCpuOption parse_audio_cpu(const std::string& text);

// [setup] True when no two modules of `patch` can ever run at the same time:
// at most one module without a module input, and no module feeds two others.
bool serial_graph(const Patch& patch);

// [setup] The CPU to pin the audio threads to for `patch`, or -1 (with `why`
// saying why not).
int choose_audio_cpu(const Patch& patch, const AudioCpuOption& option, std::string& why);

class Server;

// [setup] Live: puts the running device thread and every module of `server` on
// CPU `cpu`, the modules (and any module restarted later) one SCHED_FIFO
// priority below the device thread and at most at `rt_priority`. Does nothing
// unless the device thread is SCHED_FIFO above priority 1. Returns a line for
// the log saying what was done and why.
std::string pin_live(Server& server, pthread_t device_thread, int cpu, uint32_t rt_priority);

// Keeps a pinned chain where it can run. Two ways a pinned CPU stops running
// the chain, both measured on the project's VMs (docs/realtime.md):
//
// * Held in the guest. On a kernel without in-kernel preemption
//   (CONFIG_PREEMPT_NONE) an ordinary task inside a long system call or page
//   fault keeps its CPU for 10-150 ms, and a SCHED_FIFO thread woken there
//   waits all that time. When the device has not cycled for 1.5 periods while
//   a thread of the chain (device thread or a module's block loop) is
//   runnable on the audio CPU in two looks in a row (the second 1 ms after the
//   first), the watcher moves the chain (and the CPU restarted modules read)
//   to another CPU, at most every 250 ms, and logs a line.
// * Taken by the host. The hypervisor stops a vCPU for 0.5-12 ms at a time,
//   in stretches that last seconds and hit one vCPU more than the other; the
//   guest does not see it (no steal time is reported; bench/vcpu_gaps). A
//   chain pinned to that vCPU overruns its period or delivers late every few
//   cycles. So when the device's overruns and the modules' late blocks add up
//   to kMoveLost within a second, and no module restarted in that time or in
//   the 100 ms after (a hung or dead module is late too), the watcher moves
//   the chain to the other CPU and logs a line: at most every 2 s, and each
//   such move within 30 s of the last waits twice as long (up to 64 s), so a
//   machine losing cycles on every CPU, or a module too slow for its block,
//   does not move it back and forth. Pinned stays better than floating here:
//   unpinned, the same one-module chain loses cycles on both vCPUs
//   (docs/realtime.md). RACKD_AUDIO_CPU_ON_LOSS=0 turns this rule off
//   (bench/placement.py measures both).
//
// The watcher is a thread of its own at SCHED_FIFO 1 on a CPU other than the
// audio CPU. It looks every 10 ms (each wake-up costs CPU that counts against
// rackd), so a held CPU is acted on after 10-21 ms.
class AudioCpuWatch {
 public:
  // [setup] After pin_live() put the chain on `cpu`. Does nothing when there
  // is no other CPU to move to or the device thread's id cannot be found.
  // `overruns` counts the device's cycles that took longer than the period.
  AudioCpuWatch(Server& server, pthread_t device_thread, int cpu, uint64_t period_ns,
                const std::atomic<uint64_t>& overruns);
  ~AudioCpuWatch();  // stops the watcher
  AudioCpuWatch(const AudioCpuWatch&) = delete;
  AudioCpuWatch& operator=(const AudioCpuWatch&) = delete;
  // [any] How often the chain was moved off a CPU that held it up, and off
  // one on which it lost cycles.
  uint32_t moves() const noexcept { return moves_.load(std::memory_order_relaxed); }
  uint32_t loss_moves() const noexcept { return loss_moves_.load(std::memory_order_relaxed); }

  static constexpr uint64_t kMoveLost = 3;  // overruns and late blocks within one second

 private:
  void run();                     // [control] the watcher thread
  bool held_up();                 // [control] a chain thread runnable on cpu_
  void move_to(int cpu, const char* why);
  // Overruns plus every module's late blocks, and every module's restarts.
  void lost_cycles(uint64_t& lost, uint64_t& restarts) const;

  Server& server_;
  pthread_t device_thread_;
  pid_t device_tid_ = -1;
  int cpu_;
  std::vector<int> cpus_;         // the CPUs rackd may use
  uint64_t period_ns_;
  const std::atomic<uint64_t>& overruns_;
  bool move_on_loss_ = true;
  std::atomic<bool> stop_{false};
  std::atomic<uint32_t> moves_{0};
  std::atomic<uint32_t> loss_moves_{0};
  std::thread thread_;
};

}  // namespace rackd::server
