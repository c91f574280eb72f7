// The `--audio-cpu` policy (see audio_cpu.hpp). [setup] only.
#include "server/audio_cpu.hpp"

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "server/server.hpp"
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
    if (m.input >= 0) {
      if (++consumers[static_cast<std::size_t>(m.input)] > 1) return false;
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
    if ((priority > 0 && !try_realtime_priority_of(pid, static_cast<int>(priority), &why)) ||
        !try_pin_to_cpu(pid, cpu, &why))
      failures += " " + server.engine().patch().modules[slot].name + " (" + why + ")";
  }
  std::string line = "audio thread and modules on CPU " + std::to_string(cpu) + ", modules " +
                     (priority ? "at SCHED_FIFO " + std::to_string(priority) : std::string("not real-time")) +
                     ", below the device thread's SCHED_FIFO " + std::to_string(param.sched_priority);
  if (!failures.empty()) line += "; could not move:" + failures;
  return line;
}

}  // namespace rackd::server
