// A live run in two halves: the session (driver_live.cpp: engine and modules,
// OSC, pinning, the stop loop, the JSON summary) and the device back-end that
// owns the audio thread and its clock: PortAudio (device_portaudio.cpp: ALSA,
// JACK, ... through PortAudio's callback thread) or rackd's own null device
// (device_null.cpp: a SCHED_FIFO thread paced by absolute-deadline sleeps).
// LiveState is what the device's audio thread writes and the session reads.
// [setup] for the back-ends' entry points; LiveState::run_cycle is [rt].
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "server/engine.hpp"
#include "shm/rt.hpp"

namespace rackd::server {

// Counters and figures of one live run. Set up by the session before the
// device starts; afterwards only the device's audio thread writes them, and the
// session and the OSC thread read the atomics.
struct LiveState {
  Engine* engine = nullptr;
  uint32_t block = 0;
  uint32_t in_channels = 0;          // what the engine publishes on bus 0
  uint32_t device_in = 0;            // what the device delivers (the rest is silence)
  uint64_t period_ns = 0;
  std::vector<const float*> in_ptrs;  // one per engine input channel; nullptr: silence
  std::atomic<uint64_t> xruns{0};     // device-reported (PortAudio), late + missed cycles (null)
  std::atomic<uint64_t> overruns{0};  // cycles whose graph took longer than the period
  std::atomic<uint64_t> wrong_size{0};
  // Cycle durations: one bucket per microsecond up to kHistUs, the last bucket
  // holds everything longer. Preallocated; only the audio thread writes.
  static constexpr uint32_t kHistUs = 20000;
  std::vector<uint32_t> hist_us = std::vector<uint32_t>(kHistUs + 1, 0);
  std::atomic<uint64_t> max_ns{0};
  // The device thread, published by its first cycle for --audio-cpu.
  pthread_t thread{};
  std::atomic<bool> have_thread{false};
  int thread_cpu = -1;               // where that first cycle ran (read after have_thread)

  // [rt] Publishes the calling thread as the device thread (once).
  void note_thread() noexcept RACKD_RT;
  // [rt] Runs one graph cycle and records its duration. Call inside an RtScope.
  void run_cycle(const float* const* in, float* const* out) noexcept RACKD_RT;
};

// What the session asks of a device.
struct DeviceRequest {
  uint32_t rate_hz = 0;
  uint32_t block_frames = 0;
  uint32_t input_channels = 0;
  uint32_t output_channels = 0;
  std::string jack_name = "rackd";   // JACK client name, where PortAudio's host API is JACK
  int priority = 0;                  // null device: SCHED_FIFO priority of its thread (0: none)
};

class LiveDevice {
 public:
  virtual ~LiveDevice() = default;
  // [setup] "host api: device name", for the log.
  virtual std::string name() const = 0;
  // [setup] Input channels the device delivers (at most the request's).
  virtual uint32_t input_channels() const = 0;
  // [setup] Starts the audio thread, which calls state.run_cycle() once a
  // period from now on. False, with `error`, when the device refuses.
  virtual bool start(LiveState& state, std::string& error) = 0;
  // [control] False once the device stopped by itself (disconnected).
  virtual bool active() = 0;
  // [setup] Stops the audio thread; state.run_cycle() is not called after it.
  virtual void stop() = 0;
  // [setup] A line about the device's own setup for the log (priority refused,
  // ...), empty if nothing to say.
  virtual std::string note() const { return {}; }
  // [setup] After stop(): the device's own figures as JSON members for the
  // exit summary (`"desktop":{...},`), empty if none.
  virtual std::string summary_json() const { return {}; }
};

// [setup] True when `want` names the null device ("null" or "rackd: null").
bool is_null_device(const std::string& want);
// [setup] The null device: silent input, paced by its own SCHED_FIFO thread.
std::unique_ptr<LiveDevice> open_null_device(const DeviceRequest& request);
// [setup] The row `rackd devices` prints for the null device.
void print_null_device_row();

// What a desktop run (`rackd run --desktop`) asks of PipeWire besides the request.
struct DesktopRequest {
  std::string node_name;             // the sink's node.name ("rackd-binaural-7.1")
  std::string description;           // what desktops show ("rackd: binaural-7.1")
  std::string output_match;          // --device: the output device (substring of its name); empty: the default
  // [control] Called on the PipeWire thread each time the output moves to
  // another device (node.name, description). Must not block.
  std::function<void(const std::string& name, const std::string& description)> on_output;
  // Filled in by open_pipewire_device().
  std::vector<uint32_t> in_positions, out_positions;
  std::string positions;             // the sink's channel map ("FL,FR,FC,LFE,RL,RR,SL,SR")
};

// [setup] The PipeWire desktop device (device_pipewire.cpp): a sink named
// after the patch whose input is the patch's device input, output to the
// default (or the --device) output; reconnects by itself when PipeWire comes
// back. nullptr with `error` when the patch cannot make a sink.
std::unique_ptr<LiveDevice> open_pipewire_device(const DeviceRequest& request, DesktopRequest desktop,
                                                 std::string& error);

// [setup] The PortAudio output device whose "host api: name" contains `want`
// (or the default one), checked against the request's channel counts;
// nullptr with `error` if none. Initialises PortAudio, naming its JACK client.
std::unique_ptr<LiveDevice> open_portaudio_device(const std::string& want, const DeviceRequest& request,
                                                  std::string& error);
// [setup] Prints one row per PortAudio device (columns as in list_devices()).
// Returns the exit code.
int list_portaudio_devices();

}  // namespace rackd::server
