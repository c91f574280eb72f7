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

#include <string>

#include "server/patch.hpp"

namespace rackd::server {

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

}  // namespace rackd::server
