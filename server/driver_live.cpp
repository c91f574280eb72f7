// The live driver: a PortAudio stream on a real device (any host API: ALSA,
// JACK, ...). The PortAudio callback is the audio thread that runs the graph.
#include <alsa/asoundlib.h>
#include <pthread.h>
#include <sched.h>
#include <portaudio.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "control/control_server.hpp"
#include "control/osc_map.hpp"
#include "server/audio_cpu.hpp"
#include "server/drivers.hpp"
#include "server/server.hpp"
#include "shm/futex.hpp"

namespace rackd::server {
namespace {

// ALSA prints a line for every card it cannot find while PortAudio probes;
// on a machine without a sound card that is pages of noise.
void quiet_alsa(const char*, int, const char*, int, const char*, ...) {}

class PortAudioSession {
 public:
  PortAudioSession() {
    // Never let PortAudio's JACK host API start a JACK server behind our back.
    setenv("JACK_NO_START_SERVER", "1", 0);
    snd_lib_error_set_handler(quiet_alsa);
    err_ = Pa_Initialize();
  }
  ~PortAudioSession() {
    if (err_ == paNoError) Pa_Terminate();
  }
  PaError error() const { return err_; }

 private:
  PaError err_;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string full_name(PaDeviceIndex i) {
  const PaDeviceInfo* d = Pa_GetDeviceInfo(i);
  const PaHostApiInfo* h = Pa_GetHostApiInfo(d->hostApi);
  return std::string(h ? h->name : "?") + ": " + d->name;
}

// The output device for `want` (a substring of "host API: name"), or the default.
PaDeviceIndex pick_device(const std::string& want, std::string& error) {
  if (want.empty()) {
    PaDeviceIndex d = Pa_GetDefaultOutputDevice();
    if (d == paNoDevice)
      error = "no default output device (no sound card?); start a JACK server (jackd -d dummy) or pass "
              "--device, and see `rackd devices`";
    return d;
  }
  const std::string w = lower(want);
  PaDeviceIndex partial = paNoDevice;
  for (PaDeviceIndex i = 0; i < Pa_GetDeviceCount(); ++i) {
    const PaDeviceInfo* d = Pa_GetDeviceInfo(i);
    if (d->maxOutputChannels < 1) continue;
    if (lower(d->name) == w) return i;
    if (partial == paNoDevice && lower(full_name(i)).find(w) != std::string::npos) partial = i;
  }
  if (partial == paNoDevice) error = "no output device matches \"" + want + "\"; see `rackd devices`";
  return partial;
}

struct LiveState {
  Engine* engine = nullptr;
  uint32_t block = 0;
  uint32_t in_channels = 0;          // what the engine publishes on bus 0
  uint32_t device_in = 0;            // what the device delivers
  uint64_t period_ns = 0;
  std::vector<const float*> in_ptrs;
  std::atomic<uint64_t> xruns{0};
  std::atomic<uint64_t> overruns{0};
  std::atomic<uint64_t> wrong_size{0};
  // Callback durations: one bucket per microsecond up to kHistUs, the last
  // bucket holds everything longer. Preallocated; only the callback writes.
  static constexpr uint32_t kHistUs = 20000;
  std::vector<uint32_t> hist_us = std::vector<uint32_t>(kHistUs + 1, 0);
  std::atomic<uint64_t> max_ns{0};
  // The device thread, published by its first callback for --audio-cpu.
  pthread_t thread{};
  std::atomic<bool> have_thread{false};
  int thread_cpu = -1;               // where that first callback ran (read after have_thread)
};

// [control] Percentile q (0..1) of the callback durations, in microseconds.
double percentile_us(const std::vector<uint32_t>& hist, double q) {
  uint64_t total = 0;
  for (uint32_t n : hist) total += n;
  if (total == 0) return 0;
  const uint64_t want = static_cast<uint64_t>(q * static_cast<double>(total - 1)) + 1;
  uint64_t seen = 0;
  for (std::size_t us = 0; us < hist.size(); ++us) {
    seen += hist[us];
    if (seen >= want) return static_cast<double>(us);
  }
  return static_cast<double>(hist.size() - 1);
}

// [rt] The device callback.
int callback(const void* input, void* output, unsigned long frames, const PaStreamCallbackTimeInfo*,
             PaStreamCallbackFlags flags, void* user) noexcept RACKD_RT {
  RtScope rt;
  auto* s = static_cast<LiveState*>(user);
  enable_ftz_daz();
  if (!s->have_thread.load(std::memory_order_relaxed)) {
    s->thread = pthread_self();  // a thread-pointer read, no system call
    s->thread_cpu = sched_getcpu();  // rseq/vDSO, no system call
    s->have_thread.store(true, std::memory_order_release);
  }
  if (flags & (paInputUnderflow | paInputOverflow | paOutputUnderflow | paOutputOverflow))
    s->xruns.fetch_add(1, std::memory_order_relaxed);
  auto** out = static_cast<float**>(output);
  if (frames != s->block) {
    // PortAudio was asked for fixed-size buffers; anything else is a driver bug.
    s->wrong_size.fetch_add(1, std::memory_order_relaxed);
    return paContinue;
  }
  const auto* const* in = static_cast<const float* const*>(input);
  for (uint32_t c = 0; c < s->in_channels; ++c) s->in_ptrs[c] = (in && c < s->device_in) ? in[c] : nullptr;
  const uint64_t t0 = shm::now_ns();
  s->engine->run_cycle(s->in_ptrs.data(), out);
  const uint64_t dt = shm::now_ns() - t0;
  if (dt > s->period_ns) s->overruns.fetch_add(1, std::memory_order_relaxed);
  if (dt > s->max_ns.load(std::memory_order_relaxed)) s->max_ns.store(dt, std::memory_order_relaxed);
  const uint64_t us = dt / 1000;
  ++s->hist_us[us < LiveState::kHistUs ? us : LiveState::kHistUs];
  return paContinue;
}

}  // namespace

int list_devices() {
  PortAudioSession pa;
  if (pa.error() != paNoError) {
    std::fprintf(stderr, "rackd: PortAudio: %s\n", Pa_GetErrorText(pa.error()));
    return 1;
  }
  const PaDeviceIndex def_out = Pa_GetDefaultOutputDevice();
  const PaDeviceIndex def_in = Pa_GetDefaultInputDevice();
  std::printf("%-4s %-26s %-32s %4s %4s %8s\n", "#", "host api", "device", "in", "out", "rate");
  for (PaDeviceIndex i = 0; i < Pa_GetDeviceCount(); ++i) {
    const PaDeviceInfo* d = Pa_GetDeviceInfo(i);
    const PaHostApiInfo* h = Pa_GetHostApiInfo(d->hostApi);
    std::printf("%-4d %-26s %-32s %4d %4d %8.0f%s%s\n", i, h ? h->name : "?", d->name, d->maxInputChannels,
                d->maxOutputChannels, d->defaultSampleRate, i == def_out ? "  default output" : "",
                i == def_in ? "  default input" : "");
  }
  if (Pa_GetDeviceCount() <= 0) std::printf("(no devices; for a device without hardware run: jackd -d dummy)\n");
  return 0;
}

int run_live(const Patch& patch, const LiveOptions& opt) {
  PortAudioSession pa;
  if (pa.error() != paNoError) {
    std::fprintf(stderr, "rackd: PortAudio: %s\n", Pa_GetErrorText(pa.error()));
    return 1;
  }
  std::string error;
  const PaDeviceIndex dev = pick_device(opt.device, error);
  if (dev == paNoDevice) {
    std::fprintf(stderr, "rackd: %s\n", error.c_str());
    return 1;
  }
  const PaDeviceInfo* info = Pa_GetDeviceInfo(dev);
  if (static_cast<uint32_t>(info->maxOutputChannels) < patch.output_channels) {
    std::fprintf(stderr, "rackd: device \"%s\" has %d output channels; the patch needs %u ([server] output_channels)\n",
                 full_name(dev).c_str(), info->maxOutputChannels, patch.output_channels);
    return 1;
  }

  EngineConfig cfg;
  cfg.rate_hz = opt.rate_hz ? opt.rate_hz : patch.rate_hz;
  cfg.block_frames = opt.block_frames ? opt.block_frames : patch.block_frames;
  cfg.input_channels = patch.input_channels;
  cfg.output_channels = patch.output_channels;
  cfg.rt_priority = static_cast<uint32_t>(std::max(0, opt.rt_priority));

  LiveState state;
  state.block = cfg.block_frames;
  state.in_channels = cfg.input_channels;
  state.device_in = std::min<uint32_t>(cfg.input_channels, static_cast<uint32_t>(std::max(0, info->maxInputChannels)));
  state.period_ns = static_cast<uint64_t>(1e9 * cfg.block_frames / cfg.rate_hz);
  state.in_ptrs.assign(std::max<uint32_t>(cfg.input_channels, 1), nullptr);
  if (cfg.input_channels > state.device_in)
    std::fprintf(stderr, "rackd: warning: the patch reads %u input channels, \"%s\" has %u; the rest are silent\n",
                 cfg.input_channels, full_name(dev).c_str(), state.device_in);

  PaStreamParameters out_p{};
  out_p.device = dev;
  out_p.channelCount = static_cast<int>(cfg.output_channels);
  out_p.sampleFormat = paFloat32 | paNonInterleaved;
  out_p.suggestedLatency = info->defaultLowOutputLatency;
  PaStreamParameters in_p{};
  in_p.device = dev;
  in_p.channelCount = static_cast<int>(state.device_in);
  in_p.sampleFormat = paFloat32 | paNonInterleaved;
  in_p.suggestedLatency = info->defaultLowInputLatency;

  const char* why = nullptr;
  if (!try_lock_memory(&why)) std::fprintf(stderr, "rackd: warning: mlockall refused (%s)\n", why);

  control::load_osc_map(patch);  // a bad [osc.map] refuses the patch before anything starts
  Server server(patch, cfg, module_directory());
  server.start(std::chrono::seconds(5));
  state.engine = &server.engine();

  std::unique_ptr<control::ControlServer> osc;
  if (opt.osc_port >= 0) {
    control::ServerHooks hooks;
    hooks.rate_hz = cfg.rate_hz;
    hooks.block_frames = cfg.block_frames;
    hooks.cycles = [&server] { return server.engine().cycles(); };
    hooks.xruns = [&state] { return state.xruns.load(std::memory_order_relaxed); };
    hooks.limited_frames = [&server] { return server.engine().limited_frames(); };
    hooks.restart = [&server](uint32_t slot, std::string& why) { return server.supervisor().restart(slot, why); };
    control::ControlOptions o;
    o.port = static_cast<uint16_t>(opt.osc_port);
    o.bind_addr = opt.osc_bind;
    o.feedback_port = static_cast<uint16_t>(opt.osc_feedback);
    osc = std::make_unique<control::ControlServer>(server.engine().segment(), server.engine().patch(), hooks, o);
    try {
      osc->start();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "rackd: %s\n", e.what());
      return 1;
    }
  }

  PaStream* stream = nullptr;
  PaError e = Pa_OpenStream(&stream, state.device_in ? &in_p : nullptr, &out_p, cfg.rate_hz, cfg.block_frames,
                            paClipOff | paDitherOff, callback, &state);
  if (e != paNoError) {
    std::fprintf(stderr, "rackd: cannot open \"%s\" at %u Hz, block %u: %s\n", full_name(dev).c_str(), cfg.rate_hz,
                 cfg.block_frames, Pa_GetErrorText(e));
    return 1;
  }
  e = Pa_StartStream(stream);
  if (e != paNoError) {
    std::fprintf(stderr, "rackd: cannot start \"%s\": %s\n", full_name(dev).c_str(), Pa_GetErrorText(e));
    Pa_CloseStream(stream);
    return 1;
  }
  std::string pinning;
  std::unique_ptr<AudioCpuWatch> watch;  // moves a pinned chain off a CPU that holds it up
  {
    std::string why;
    int cpu = choose_audio_cpu(patch, opt.audio_cpu, why);
    for (int i = 0; i < 200 && !state.have_thread.load(std::memory_order_acquire); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    // auto: the CPU the device thread was woken on, where the sound server
    // (jackd, or the ALSA interrupt) hands each cycle over without a
    // cross-core wake-up.
    if (opt.audio_cpu.mode == AudioCpuOption::Mode::kAuto && cpu >= 0 &&
        state.have_thread.load(std::memory_order_acquire) && state.thread_cpu >= 0)
      cpu = state.thread_cpu;
    if (cpu < 0) pinning = "audio threads not pinned: " + why;
    else if (!state.have_thread.load(std::memory_order_acquire)) pinning = "audio threads not pinned: no callback yet";
    else {
      pinning = pin_live(server, state.thread, cpu, cfg.rt_priority);
      watch = std::make_unique<AudioCpuWatch>(server, state.thread, cpu, state.period_ns);
    }
  }
  std::fprintf(stderr, "rackd: %s\n", pinning.c_str());
  std::fprintf(stderr, "rackd: playing %s on \"%s\" at %u Hz, block %u, %u in / %u out; segment %s; OSC %s\n",
               patch.path.c_str(), full_name(dev).c_str(), cfg.rate_hz, cfg.block_frames, state.device_in,
               cfg.output_channels, server.engine().segment().name().c_str(),
               osc ? (opt.osc_bind + ":" + std::to_string(osc->port())).c_str() : "off");

  const uint64_t t_end = opt.duration_s > 0 ? shm::now_ns() + static_cast<uint64_t>(opt.duration_s * 1e9) : 0;
  int rc = 0;
  while (!g_stop_requested.load()) {
    if (t_end && shm::now_ns() >= t_end) break;
    if (Pa_IsStreamActive(stream) != 1) {
      std::fprintf(stderr, "rackd: the device stopped (disconnected?)\n");
      rc = 1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  watch.reset();
  if (osc) osc->stop();
  Pa_StopStream(stream);
  Pa_CloseStream(stream);
  server.stop();
  // Read after the stream stopped: the callback no longer writes the histogram.
  char extra[512];
  std::snprintf(extra, sizeof extra,
                "\"overruns\":%llu,\"cycle_us\":{\"p50\":%.0f,\"p99\":%.0f,\"max\":%.1f},\"rate\":%u,"
                "\"block\":%u,",
                static_cast<unsigned long long>(state.overruns.load()), percentile_us(state.hist_us, 0.5),
                percentile_us(state.hist_us, 0.99), state.max_ns.load() / 1e3, cfg.rate_hz, cfg.block_frames);
  std::printf("%s\n", server.summary_json(state.xruns.load() + state.wrong_size.load(), extra).c_str());
  std::fflush(stdout);
  return rc;
}

}  // namespace rackd::server
