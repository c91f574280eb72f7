// The live driver's session (`rackd run`): starts the engine and the module
// processes, the OSC control server and the device back-end (live_device.hpp:
// PortAudio or the null device), pins the audio threads, waits for a stop and
// prints the JSON summary. The device's audio thread runs LiveState::run_cycle()
// [rt]; everything else here runs on the [setup] (main) thread.
#include <sched.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "control/control_server.hpp"
#include "control/osc_map.hpp"
#include "server/audio_cpu.hpp"
#include "server/desktop.hpp"
#include "server/drivers.hpp"
#include "server/graph_editor.hpp"
#include "control/graph_request.hpp"
#include "server/live_device.hpp"
#include "server/server.hpp"
#include "shm/futex.hpp"

namespace rackd::server {

void LiveState::note_thread() noexcept {
  if (have_thread.load(std::memory_order_relaxed)) return;
  thread = pthread_self();       // a thread-pointer read, no system call
  thread_cpu = sched_getcpu();   // rseq/vDSO, no system call
  have_thread.store(true, std::memory_order_release);
}

void LiveState::run_cycle(const float* const* in, float* const* out) noexcept {
  const uint64_t t0 = shm::now_ns();
  engine->run_cycle(in, out);
  const uint64_t dt = shm::now_ns() - t0;
  if (dt > period_ns) overruns.fetch_add(1, std::memory_order_relaxed);
  if (dt > max_ns.load(std::memory_order_relaxed)) max_ns.store(dt, std::memory_order_relaxed);
  const uint64_t us = dt / 1000;
  ++hist_us[us < kHistUs ? us : kHistUs];
}

namespace {

// [setup] Percentile q (0..1) of the cycle durations, in microseconds.
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

// [setup] The JACK client name: --jack-name, where "patch" means the patch
// file's name without its extension. JACK reserves ':' (client:port).
std::string jack_client_name(const Patch& patch, const LiveOptions& opt) {
  std::string name = opt.jack_name == "patch" ? std::filesystem::path(patch.path).stem().string() : opt.jack_name;
  std::replace(name.begin(), name.end(), ':', '-');
  if (name.size() > kMaxJackNameLength) name.resize(kMaxJackNameLength);
  return name.empty() ? "rackd" : name;
}

}  // namespace

int list_devices() {
  std::printf("%-4s %-26s %-32s %4s %4s %8s\n", "#", "host api", "device", "in", "out", "rate");
  print_null_device_row();
  std::fflush(stdout);
  return list_portaudio_devices();
}

constexpr uint32_t kDesktopMinBlock = 512;

int run_live(const Patch& patch, const LiveOptions& opt) {
  EngineConfig cfg;
  cfg.fade_ms = patch.fade_ms;
  cfg.rate_hz = opt.rate_hz ? opt.rate_hz : patch.rate_hz;
  cfg.block_frames = opt.block_frames ? opt.block_frames : patch.block_frames;
  // A desktop sink runs at a block of at least 512 frames (10.7 ms at 48 kHz)
  // unless --block says otherwise: at 128, on a machine that stalls now and
  // then, the output device finds rackd's buffer late several times a minute
  // (docs/desktop.md has the figures); PipeWire's own default is 1024.
  const bool desktop = opt.desktop || patch.desktop.sink;
  if (desktop && !opt.block_frames && cfg.block_frames < kDesktopMinBlock) {
    std::fprintf(stderr, "rackd: desktop: block %u (the patch's %u is for live use; --block %u keeps it)\n",
                 kDesktopMinBlock, cfg.block_frames, cfg.block_frames);
    cfg.block_frames = kDesktopMinBlock;
  }
  cfg.input_channels = patch.input_channels;
  cfg.output_channels = patch.output_channels;
  cfg.rt_priority = static_cast<uint32_t>(std::max(0, opt.rt_priority));

  DeviceRequest request;
  request.rate_hz = cfg.rate_hz;
  request.block_frames = cfg.block_frames;
  request.input_channels = cfg.input_channels;
  request.output_channels = cfg.output_channels;
  request.jack_name = jack_client_name(patch, opt);
  // The null device's thread sits one priority above the modules, as a
  // sound server's thread does above its clients (and as --audio-cpu needs).
  request.priority = opt.rt_priority > 0 ? std::min(opt.rt_priority + 1, 99) : 0;

  LiveState state;  // before the device: its audio thread writes here until stop()
  std::string error;
  std::unique_ptr<LiveDevice> device;
  std::unique_ptr<DesktopPresets> presets;  // [[desktop.output]], applied on the editor's thread
  if (desktop) {
    presets = std::make_unique<DesktopPresets>(patch);
    DesktopRequest d;
    std::string stem = std::filesystem::path(patch.path).stem().string();
    for (char& c : stem)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '-';
    d.node_name = "rackd-" + stem;
    d.description = patch.desktop.name.empty() ? "rackd: " + stem : patch.desktop.name;
    d.output_match = opt.device;
    d.on_output = [p = presets.get()](const std::string& name, const std::string& description) {
      p->output_changed(name, description);
    };
    device = open_pipewire_device(request, std::move(d), error);
  } else {
    device = is_null_device(opt.device) ? open_null_device(request) : open_portaudio_device(opt.device, request, error);
  }
  if (!device) {
    std::fprintf(stderr, "rackd: %s\n", error.c_str());
    return 1;
  }

  state.block = cfg.block_frames;
  state.in_channels = cfg.input_channels;
  state.device_in = device->input_channels();
  state.period_ns = static_cast<uint64_t>(1e9 * cfg.block_frames / cfg.rate_hz);
  state.in_ptrs.assign(std::max<uint32_t>(cfg.input_channels, 1), nullptr);
  if (cfg.input_channels > state.device_in)
    std::fprintf(stderr, "rackd: warning: the patch reads %u input channels, \"%s\" has %u; the rest are silent\n",
                 cfg.input_channels, device->name().c_str(), state.device_in);

  const char* why = nullptr;
  if (!try_lock_memory(&why)) std::fprintf(stderr, "rackd: warning: mlockall refused (%s)\n", why);

  control::load_osc_map(patch);  // a bad [osc.map] refuses the patch before anything starts
  Server server(patch, cfg);
  server.start(std::chrono::seconds(5));
  state.engine = &server.engine();

  // Live graph changes: the editor lives on the OSC control thread (or, with
  // OSC off, on this one); --watch hands it reloads through the inbox.
  GraphEditor editor(server.engine(), server.supervisor(), patch, false);
  std::mutex inbox_mu;
  std::vector<graph::Edit> inbox;
  auto drain_and_poll = [&]() -> int {
    {
      std::lock_guard<std::mutex> lock(inbox_mu);
      for (graph::Edit& e : inbox) {
        const std::string path = e.path;
        editor.submit(std::move(e), [path](bool ok, const std::string& text) {
          if (ok) std::fprintf(stderr, "rackd: reloaded %s\n", path.c_str());
          else std::fprintf(stderr, "rackd: reload of %s refused: %s; still playing the graph as it was\n",
                            path.c_str(), text.c_str());
        });
      }
      inbox.clear();
    }
    if (presets) presets->apply(editor, server.engine().segment());
    return editor.poll();
  };
  std::unique_ptr<control::ControlServer> osc;
  if (opt.osc_port >= 0) {
    control::ServerHooks hooks;
    hooks.rate_hz = cfg.rate_hz;
    hooks.block_frames = cfg.block_frames;
    hooks.cycles = [&server] { return server.engine().cycles(); };
    hooks.xruns = [&state] { return state.xruns.load(std::memory_order_relaxed); };
    hooks.limited_frames = [&server] { return server.engine().limited_frames(); };
    hooks.restart = [&server](uint32_t slot, std::string& why) { return server.supervisor().restart(slot, why); };
    hooks.graph_version = [&editor] { return editor.version(); };
    // While a change is under way the control thread looks every 250 us: a
    // connect is answered within a fraction of a cycle of taking effect.
    hooks.poll = [&drain_and_poll] { return drain_and_poll() < 0 ? -1 : 250; };
    hooks.graph = [&editor, &osc](const control::OscMessage& m, const control::Peer& from) {
      control::Dispatcher& d = osc->dispatcher();
      if (m.address == "/rackd/graph") {
        if (!m.args.empty()) return d.error(from, m.address, "takes no arguments");
        control::OscMessage r;
        r.address = "/rackd/graph.reply";
        const auto rows = editor.rows();
        r.args.push_back(control::OscArg::int32(static_cast<int32_t>(rows.size())));
        for (const auto& row : rows) {
          for (const std::string* f : {&row.name, &row.type, &row.state, &row.inputs})
            r.args.push_back(control::OscArg::string(*f));
        }
        r.args.push_back(control::OscArg::string(editor.outputs()));
        return d.send(from, r);
      }
      graph::Edit e;
      std::string why;
      if (!control::parse_graph_request(m, e, why)) return d.error(from, m.address, why);
      const std::string address = m.address;
      editor.submit(std::move(e), [&osc, from, address](bool ok, const std::string& text) {
        control::Dispatcher& d = osc->dispatcher();
        if (ok) d.send(from, control::OscMessage{"/rackd/done", {control::OscArg::string(address), control::OscArg::string(text)}});
        else d.error(from, address, text);
      });
      editor.poll();  // what can be done at once (a refusal) answers now
    };
    control::ControlOptions o;
    o.port = static_cast<uint16_t>(opt.osc_port);
    o.bind_addr = opt.osc_bind;
    o.feedback_port = static_cast<uint16_t>(opt.osc_feedback);
    osc = std::make_unique<control::ControlServer>(server.engine().segment(), editor.by_slot(), hooks, o);
    try {
      osc->start();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "rackd: %s\n", e.what());
      return 1;
    }
  }

  if (!device->start(state, error)) {
    std::fprintf(stderr, "rackd: %s\n", error.c_str());
    return 1;
  }
  // Whatever way this function is left, the audio thread stops before the
  // server it runs is destroyed.
  struct StopDevice {
    LiveDevice& device;
    ~StopDevice() { device.stop(); }
  } stop_device{*device};
  if (const std::string note = device->note(); !note.empty()) std::fprintf(stderr, "rackd: %s\n", note.c_str());
  std::string pinning;
  std::unique_ptr<AudioCpuWatch> watch;  // moves a pinned chain off a CPU that holds it up
  {
    std::string why;
    int cpu = choose_audio_cpu(patch, opt.audio_cpu, why);
    for (int i = 0; i < 200 && !state.have_thread.load(std::memory_order_acquire); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    // auto: the CPU the device thread was woken on, where the sound server
    // (jackd, the ALSA interrupt, or the null device's timer) hands each cycle
    // over without a cross-core wake-up.
    if (opt.audio_cpu.mode == AudioCpuOption::Mode::kAuto && cpu >= 0 &&
        state.have_thread.load(std::memory_order_acquire) && state.thread_cpu >= 0)
      cpu = state.thread_cpu;
    if (cpu < 0) pinning = "audio threads not pinned: " + why;
    else if (!state.have_thread.load(std::memory_order_acquire)) pinning = "audio threads not pinned: no callback yet";
    else {
      pinning = pin_live(server, state.thread, cpu, cfg.rt_priority);
      watch = std::make_unique<AudioCpuWatch>(server, state.thread, cpu, state.period_ns, state.overruns);
    }
  }
  std::fprintf(stderr, "rackd: %s\n", pinning.c_str());
  std::fprintf(stderr, "rackd: playing %s on \"%s\" at %u Hz, block %u, %u in / %u out; segment %s; OSC %s\n",
               patch.path.c_str(), device->name().c_str(), cfg.rate_hz, cfg.block_frames, state.device_in,
               cfg.output_channels, server.engine().segment().name().c_str(),
               osc ? (opt.osc_bind + ":" + std::to_string(osc->port())).c_str() : "off");

  const uint64_t t_end = opt.duration_s > 0 ? shm::now_ns() + static_cast<uint64_t>(opt.duration_s * 1e9) : 0;
  int rc = 0;
  // Polled, 10 times a second: each wake-up of this thread costs CPU time that
  // counts against rackd in a per-cycle comparison (bench/overhead.py).
  constexpr uint64_t kPollNs = 100'000'000;
  std::error_code mtime_ec;
  auto patch_mtime = std::filesystem::last_write_time(patch.path, mtime_ec);
  while (!g_stop_requested.load()) {
    const uint64_t now = shm::now_ns();
    if (opt.watch) {
      std::error_code ec;
      const auto m = std::filesystem::last_write_time(patch.path, ec);
      if (!ec && m != patch_mtime) {
        patch_mtime = m;
        graph::Edit e;
        e.kind = graph::EditKind::kLoad;
        e.path = std::filesystem::absolute(patch.path).string();
        std::lock_guard<std::mutex> lock(inbox_mu);
        inbox.push_back(std::move(e));
      }
    }
    // Without OSC this thread moves graph changes on (a reload under --watch).
    if (!osc && drain_and_poll() >= 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    if (t_end && now >= t_end) break;
    if (!device->active()) {
      std::fprintf(stderr, "rackd: the device stopped (disconnected?)\n");
      rc = 1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::nanoseconds(t_end ? std::min(kPollNs, t_end - now) : kPollNs));
  }
  const uint32_t cpu_moves = watch ? watch->moves() : 0;
  const uint32_t cpu_loss_moves = watch ? watch->loss_moves() : 0;
  watch.reset();
  if (osc) osc->stop();
  device->stop();
  server.stop();
  // Read after the device stopped: its thread no longer writes the histogram.
  char extra[512];
  std::snprintf(extra, sizeof extra,
                "\"overruns\":%llu,\"cycle_us\":{\"p50\":%.0f,\"p99\":%.0f,\"max\":%.1f},\"rate\":%u,"
                "\"block\":%u,\"audio_cpu\":{\"moves_held\":%u,\"moves_lost\":%u},",
                static_cast<unsigned long long>(state.overruns.load()), percentile_us(state.hist_us, 0.5),
                percentile_us(state.hist_us, 0.99), state.max_ns.load() / 1e3, cfg.rate_hz, cfg.block_frames,
                cpu_moves, cpu_loss_moves);
  const std::string all = extra + device->summary_json();
  std::printf("%s\n", server.summary_json(state.xruns.load() + state.wrong_size.load(), all).c_str());
  std::fflush(stdout);
  return rc;
}

}  // namespace rackd::server
