// rackd: command line. The main thread parses arguments, a signal thread turns
// SIGINT/SIGTERM into g_stop_requested, and the chosen driver runs.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "server/audio_cpu.hpp"
#include "server/drivers.hpp"
#include "server/modules_cli.hpp"
#include "graph/patch.hpp"

namespace rackd::server {
std::atomic<bool> g_stop_requested{false};
}

namespace {

using namespace rackd::server;
using rackd::graph::load_patch;

constexpr const char* kUsage = R"(usage:
  rackd run PATCH [--device NAME|null] [--block FRAMES] [--rate HZ] [--duration SECONDS]
                  [--rt-priority N] [--audio-cpu auto|none|CPU] [--osc-port PORT] [--osc-bind ADDR]
                  [--osc-feedback PORT] [--jack-name NAME|patch] [--watch] [--desktop]
      Play PATCH live on a PortAudio device (default: the default output
      device) or on rackd's null device. Stops on SIGINT/SIGTERM (or after
      --duration) and prints one JSON line: {"cycles":N,"xruns":N,"modules":{...}}.
      The graph changes while it plays (rackctl add/remove/connect/disconnect/
      load/save/graph); --watch reloads PATCH whenever the file is saved,
      applying only the difference, click-free (a bad save is refused and the
      graph plays on as it was).
      --desktop (or [desktop] sink = true in PATCH): on PipeWire, PATCH becomes
      an output device for desktop applications, "rackd: <patch name>", with
      the patch's input channels (7.1: FL FR FC LFE RL RR SL SR); its output
      plays on the default device (or --device NAME: the one whose name
      contains NAME) and follows it; reconnects by itself when PipeWire
      restarts. See docs/desktop.md.
  rackd render PATCH --out OUT [--in IN] [--duration SECONDS] [--rate HZ]
                     [--block FRAMES] [--module-timeout SECONDS] [--events FILE]
                     [--audio-cpu auto|none|CPU] [--batch BLOCKS] [--keep-going]
      --events FILE: timed parameter changes and graph changes (add, remove,
      connect, disconnect, load, save), each in effect from the block that
      holds its frame.
      Run the same module processes offline, as fast as the graph allows. IN is
      the device input the patch sees; OUT keeps IN's rate and sample format
      (without --in: --duration is required, format by extension: .wav float,
      .flac 24-bit). OUT appears when the render ends (an interrupted one keeps
      what it rendered); a failed render writes nothing and leaves OUT as it was.
  rackd check PATCH
      Validate PATCH and print its graph; starts nothing.
  rackd devices
      List PortAudio devices with host API and channel counts, and the null device.
  rackd modules
      List the module types found on the module path, with summaries and the
      executable each comes from, and the files skipped there (and why).
  rackd lv2 list | rackd lv2 audit URI [--seconds S]
      The installed LV2 plugins (URI, name, audio in/out), as lv2ls; a real-time
      audit of one: the allocations and system calls its run() makes, per block.
  rackd describe TYPE [--config TOML|FILE] [--json]
      Print TYPE's parameters (range, default, unit), setup keys and channel
      rule; --config: as a module with those setup keys has them (an LV2
      plugin's ports: --config 'plugin = "URI"'); --json: the module's own
      `--describe` output.
  rackd --help | --version

  --device NAME       substring of "host api: device name" (see rackd devices); with --desktop:
                      of the PipeWire output device's name or description; null: rackd's
                      own device, no sound card or server needed: silent input, output
                      discarded, paced by a thread at SCHED_FIFO --rt-priority + 1 that
                      sleeps to each period boundary; xruns = its late and missed cycles
  --jack-name NAME    run: JACK client name when the device is on JACK (default rackd;
                      patch: the patch's file name without .toml)
  --block FRAMES      frames per cycle (default: the patch's [server] block, 128)
  --rate HZ           sample rate (default: the patch's [server] rate, 48000)
  --rt-priority N     SCHED_FIFO priority of module processes (default 5; 0: none)
  --audio-cpu WHERE   auto (default): a graph that is one chain runs its device thread and
                      every module on one CPU (hand-offs become same-core switches;
                      live only when the device thread is SCHED_FIFO, with modules one
                      priority below it); none: never pin; CPU: pin any graph there
  --osc-port PORT     OSC control port, UDP (default 9000, or $RACKD_OSC_PORT; 0: any free port;
                      -1: no OSC)
  --osc-bind ADDR     address the OSC socket binds (default 127.0.0.1: this machine only)
  --osc-feedback PORT where [osc.map] controllers get values back (default: the sender's port)
  --events FILE       render: timed parameter changes, lines "<seconds> /<module>/<param> <values>"
  --batch BLOCKS      render: blocks each module runs per wake-up while nothing is due in
                      between and every module runs plainly (1..7, default 7; 1: block by
                      block as live). The output is the same either way.
  --keep-going        render: a module that fails its setup (refuses its configuration, or
                      is not ready within 10 s) fails the render: exit 1, OUT untouched.
                      With --keep-going it renders anyway, with a warning and that
                      module's output replaced (bypass or silence). A module that dies
                      mid-render is restarted, its blocks replaced meanwhile, either way.

Environment:
  RACKD_MODULE_PATH   colon-separated folders searched for module executables (files named
                      rackd-*; each is asked --describe); default: PREFIX/libexec/rackd, and the
                      build's bin/ when rackd runs from a build tree. A module installed there
                      while rackd runs is found by the next check, run or live add.

Exit status: 0 ok, 2 bad patch or arguments, 1 runtime failure (render: also a module
that failed setup), 130 interrupted.
)";

[[noreturn]] void usage_error(const std::string& what) {
  std::fprintf(stderr, "rackd: %s\n\n%s", what.c_str(), kUsage);
  std::exit(2);
}

struct Args {
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> options;
};

Args parse_args(int argc, char** argv, int first, const std::vector<std::string>& known) {
  Args a;
  for (int i = first; i < argc; ++i) {
    std::string s = argv[i];
    if (s.rfind("--", 0) == 0) {
      std::string value;
      if (auto eq = s.find('='); eq != std::string::npos) {
        value = s.substr(eq + 1);
        s = s.substr(0, eq);
      } else {
        if (i + 1 >= argc) usage_error("option " + s + " needs a value");
        value = argv[++i];
      }
      bool ok = false;
      for (const auto& k : known) ok = ok || k == s;
      if (!ok) usage_error("unknown option " + s);
      a.options.emplace_back(s, value);
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

double to_number(const std::string& opt, const std::string& v, double lo, double hi) {
  char* end = nullptr;
  double d = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !(d >= lo && d <= hi))
    usage_error(opt + " takes a number from " + std::to_string(lo) + " to " + std::to_string(hi) + ", not \"" + v + "\"");
  return d;
}

AudioCpuOption audio_cpu_or_exit(const std::string& v) {
  try {
    return parse_audio_cpu(v);
  } catch (const std::invalid_argument& e) {
    usage_error(e.what());
  }
}

Patch load_or_exit(const Args& a, const char* command) {
  if (a.positional.size() != 1) usage_error(std::string(command) + " takes one PATCH");
  try {
    return load_patch(a.positional[0]);
  } catch (const PatchError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::exit(2);
  }
}

void print_graph(const Patch& p) {
  std::printf("%s: %u Hz, block %u, %u in, %u out\n", p.path.c_str(), p.rate_hz, p.block_frames, p.input_channels,
              p.output_channels);
  for (const auto& m : p.modules) {
    std::string from;
    for (const PatchInput& in : m.inputs) {
      if (!from.empty()) from += ",";
      from += in.from == kDeviceInput ? "device" : p.modules[static_cast<std::size_t>(in.from)].name;
      if (in.gain_db != 0.0) {
        char g[32];
        std::snprintf(g, sizeof g, "(%+.1fdB)", in.gain_db);
        from += g;
      }
    }
    if (from.empty()) from = "-";
    std::printf("  %-16s %-12s in %-12s %2u -> %2u ch\n", m.name.c_str(), m.type.c_str(), from.c_str(), m.in_channels,
                m.out_channels);
  }
  std::printf("  output <-");
  for (int o : p.outputs) std::printf(" %s", p.modules[o].name.c_str());
  std::printf("\n");
  if (p.desktop.line) {
    std::printf("desktop: %s%s\n", p.desktop.sink ? "sink on `rackd run`" : "sink with `rackd run --desktop`",
                p.desktop.name.empty() ? "" : (", named \"" + p.desktop.name + "\"").c_str());
    for (const auto& o : p.desktop.outputs) {
      std::string what;
      if (!o.preset.empty()) what += " preset " + o.preset + " on " + p.desktop.eq;
      for (std::size_t i = 0; i < o.bypass.size(); ++i) what += (i ? "," : " bypass ") + o.bypass[i];
      std::printf("  output \"%s\":%s\n", o.match.c_str(), what.empty() ? " the patch as written" : what.c_str());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage_error("missing command");
  const std::string_view cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::printf("%s", kUsage);
    return 0;
  }
  if (cmd == "--version") {
    std::printf("rackd 0.1.0\n");
    return 0;
  }

  // SIGINT/SIGTERM are taken by one thread only; every other thread (and the
  // audio threads PortAudio creates) inherits the blocked mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int sig = 0;
    while (sigwait(&set, &sig) == 0) {
      g_stop_requested.store(true);
    }
  }).detach();

  try {
    if (cmd == "devices") {
      return list_devices();
    } else if (cmd == "lv2") {
      return lv2_command(argc, argv);
    } else if (cmd == "modules") {
      if (argc > 2) usage_error("rackd modules takes no arguments");
      return list_modules();
    } else if (cmd == "describe") {
      std::string type, config;
      bool json = false;
      for (int i = 2; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--json") json = true;
        else if (a == "--config" && i + 1 < argc) config = argv[++i];
        else if (type.empty() && !a.starts_with("-")) type = a;
        else usage_error("rackd describe TYPE [--config TOML|FILE] [--json]: unexpected \"" + std::string(a) + "\"");
      }
      if (type.empty()) usage_error("rackd describe needs a module type (see rackd modules)");
      return describe_type(type, json, config);
    } else if (cmd == "check") {
      Patch p = load_or_exit(parse_args(argc, argv, 2, {}), "check");
      print_graph(p);
      return 0;
    } else if (cmd == "run") {
      // --watch takes no value: taken out before the options that do are parsed.
      std::vector<char*> run_args(argv, argv + argc);
      const bool watch =
          std::erase_if(run_args, [](const char* arg) { return std::string_view(arg) == "--watch"; }) > 0;
      const bool desktop =
          std::erase_if(run_args, [](const char* arg) { return std::string_view(arg) == "--desktop"; }) > 0;
      argc = static_cast<int>(run_args.size());
      argv = run_args.data();
      Args a = parse_args(argc, argv, 2, {"--device", "--block", "--rate", "--duration", "--rt-priority",
                                          "--audio-cpu", "--osc-port", "--osc-bind", "--osc-feedback",
                                          "--jack-name"});
      Patch p = load_or_exit(a, "run");
      LiveOptions o;
      o.watch = watch;
      o.desktop = desktop;
      // $RACKD_OSC_PORT changes the default port (tests give each rackd a free one).
      if (const char* env = std::getenv("RACKD_OSC_PORT"); env && *env)
        o.osc_port = static_cast<int>(to_number("RACKD_OSC_PORT", env, -1, 65535));
      for (const auto& [k, v] : a.options) {
        if (k == "--device") o.device = v;
        if (k == "--block") o.block_frames = static_cast<uint32_t>(to_number(k, v, 16, 4096));
        if (k == "--rate") o.rate_hz = static_cast<uint32_t>(to_number(k, v, 8000, 384000));
        if (k == "--duration") o.duration_s = to_number(k, v, 0, 1e9);
        if (k == "--rt-priority") o.rt_priority = static_cast<int>(to_number(k, v, 0, 99));
        if (k == "--audio-cpu") o.audio_cpu = audio_cpu_or_exit(v);
        if (k == "--osc-port") o.osc_port = static_cast<int>(to_number(k, v, -1, 65535));
        if (k == "--osc-bind") o.osc_bind = v;
        if (k == "--osc-feedback") o.osc_feedback = static_cast<int>(to_number(k, v, 0, 65535));
        if (k == "--jack-name") {
          if (v.empty() || v.size() > kMaxJackNameLength || v.find(':') != std::string::npos)
            usage_error("--jack-name takes a JACK client name (1 to 63 characters, no ':'), not \"" + v + "\"");
          o.jack_name = v;
        }
      }
      return run_live(p, o);
    } else if (cmd == "render") {
      // --keep-going takes no value: taken out before the options that do are parsed.
      std::vector<char*> args(argv, argv + argc);
      const bool keep_going =
          std::erase_if(args, [](const char* arg) { return std::string_view(arg) == "--keep-going"; }) > 0;
      Args a = parse_args(static_cast<int>(args.size()), args.data(), 2,
                          {"--in", "--out", "--duration", "--rate", "--block", "--module-timeout", "--events",
                           "--audio-cpu", "--batch"});
      Patch p = load_or_exit(a, "render");
      RenderOptions o;
      o.keep_going = keep_going;
      for (const auto& [k, v] : a.options) {
        if (k == "--in") o.in = v;
        if (k == "--out") o.out = v;
        if (k == "--duration") o.duration_s = to_number(k, v, 0, 1e7);
        if (k == "--rate") o.rate_hz = static_cast<uint32_t>(to_number(k, v, 8000, 384000));
        if (k == "--block") o.block_frames = static_cast<uint32_t>(to_number(k, v, 16, 4096));
        if (k == "--module-timeout") o.module_timeout_s = to_number(k, v, 0.001, 3600);
        if (k == "--events") o.events = v;
        if (k == "--audio-cpu") o.audio_cpu = audio_cpu_or_exit(v);
        if (k == "--batch") o.batch = static_cast<uint32_t>(to_number(k, v, 1, rackd::shm::kMaxBatch));
      }
      if (o.out.empty()) usage_error("render needs --out FILE");
      return run_render(p, o);
    }
  } catch (const PatchError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rackd: %s\n", e.what());
    return 1;
  }
  usage_error("unknown command \"" + std::string(cmd) + "\"");
}
