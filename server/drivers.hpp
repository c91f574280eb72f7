// Device drivers: the live driver (a PortAudio device or rackd's null device,
// live_device.hpp) and the offline (file) driver. Each owns the thread that
// calls Engine::run_cycle(). [setup] for the entry points.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/audio_cpu.hpp"
#include "graph/patch.hpp"
#include "shm/layout.hpp"

namespace rackd::server {

// The graph library's names, as the server uses them.
using graph::kDeviceInput;
using graph::Patch;
using graph::PatchError;
using graph::PatchInput;
using graph::PatchModule;

// JACK's longest client name (JACK_CLIENT_NAME_SIZE less its terminating zero).
inline constexpr std::size_t kMaxJackNameLength = 63;

struct LiveOptions {
  std::string device;                // name substring; empty: the default output device; "null": the null device
  std::string jack_name = "rackd";   // JACK client name where the device is on JACK; "patch": the patch's file stem
  uint32_t rate_hz = 0;              // 0: the patch's
  uint32_t block_frames = 0;         // 0: the patch's
  double duration_s = 0;             // 0: until SIGINT/SIGTERM
  int rt_priority = 5;               // SCHED_FIFO priority of module processes
  int osc_port = 9000;               // control plane (control::kDefaultOscPort); -1: no OSC
  std::string osc_bind = "127.0.0.1";
  int osc_feedback = 0;              // [osc.map] feedback port; 0: the sender's
  bool watch = false;                // reload the patch whenever its file is saved
  bool desktop = false;              // PipeWire sink (device_pipewire.cpp); also [desktop] sink = true
  AudioCpuOption audio_cpu;          // where the audio threads run (audio_cpu.hpp)
};

struct RenderOptions {
  std::string in;                    // device input the patch sees; empty: silence
  std::string out;
  double duration_s = 0;             // required without --in
  uint32_t rate_hz = 0;              // without --in; 0: the patch's
  uint32_t block_frames = 0;         // 0: the patch's
  double module_timeout_s = 2.0;     // a module slower than this has its block replaced
  std::string events;                // timed parameter changes (control/events.hpp)
  AudioCpuOption audio_cpu;          // where the render thread and the modules run
  uint32_t batch = shm::kMaxBatch;   // blocks a module runs per request (engine.hpp); 1: block by block
  // A module that fails its setup (refuses its configuration, never becomes
  // ready): false: the render fails, exit 1, nothing written; true: render
  // anyway with that module's output replaced (bypass or silence).
  bool keep_going = false;
};

// Set by the main thread when SIGINT/SIGTERM arrives; drivers poll it.
extern std::atomic<bool> g_stop_requested;

// `rackd devices`: the null device and PortAudio's. Returns the exit code.
int list_devices();
// `rackd run`. Prints the JSON summary on stdout. Returns the exit code.
int run_live(const Patch& patch, const LiveOptions& options);
// `rackd render`. Prints the JSON summary on stdout. Returns the exit code.
int run_render(const Patch& patch, const RenderOptions& options);

}  // namespace rackd::server
