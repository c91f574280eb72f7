// A private headless PipeWire session for integration tests (see
// pipewire_session.hpp for what was measured and the pitfalls). Test thread
// only; every process is a harness Process, stopped by its pid.
#include "tests/integration/pipewire_session.hpp"

#include <signal.h>
#include <sndfile.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <sstream>
#include <thread>

namespace rackd::test {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// Polls `ready` every 20 ms until it holds or `timeout` passes.
template <class F>
bool poll_until(F ready, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (ready()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(20ms);
  }
}

// SIGTERM (or `sig`), then SIGKILL after 2 s; reaps the child.
void stop(std::unique_ptr<Process>& p, int sig, std::string& logs, const char* what) {
  if (!p) return;
  p->signal(sig);
  if (p->wait(2s) == -1) {
    p->signal(SIGKILL);
    p->wait(5s);
  }
  logs += std::string("--- ") + what + " ---\n" + p->err();
  p.reset();
}

int channels_of(const std::string& wav) {
  SF_INFO info{};
  SNDFILE* f = sf_open(wav.c_str(), SFM_READ, &info);
  if (!f) return 0;
  sf_close(f);
  return info.channels;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  const auto e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// pw-link -l lines "node:port" followed by "  |<- other:port" for a linked input.
bool node_has_linked_input(const std::string& links, const std::string& node) {
  std::istringstream in(links);
  std::string line;
  bool in_node = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] != ' ') {
      in_node = line.rfind(node + ":", 0) == 0;
    } else if (in_node && line.find("|<-") != std::string::npos) {
      return true;
    }
  }
  return false;
}

}  // namespace

Recorder::Recorder(const std::vector<std::string>& env, const std::string& sink, const std::string& wav, int channels)
    : wav_(wav) {
  static int n = 0;
  const std::string node = "rackd-test-rec-" + std::to_string(getpid()) + "-" + std::to_string(++n);
  std::vector<std::string> argv = {"/usr/bin/pw-record", "--target", sink,
                                   "-P", "{ stream.capture.sink=true node.dont-reconnect=true node.name=" + node + " }",
                                   "--format", "f32", "--rate", "48000",
                                   "--channels", std::to_string(channels), "--latency", "10ms"};
  if (channels == 8) argv.insert(argv.end(), {"--channel-map", kPwMap71});
  argv.push_back(wav);
  proc_ = std::make_unique<Process>(argv, env);
  linked_ = poll_until(
      [&] { return node_has_linked_input(rackd::test::run({"/usr/bin/pw-link", "-l"}, 5s, env).out, node); }, 5s);
  linked_at_ = std::chrono::steady_clock::now();
}

Recorder::~Recorder() {
  if (proc_) stop();
}

Audio Recorder::stop() {
  proc_->signal(SIGINT);
  if (proc_->wait(5s) == -1) {
    proc_->signal(SIGKILL);
    proc_->wait(5s);
  }
  proc_.reset();
  try {
    return read_audio(wav_);
  } catch (const std::exception&) {
    return Audio{};
  }
}

PipeWireSession::PipeWireSession() {
  std::string t = (fs::temp_directory_path() / "rackd-pw-XXXXXX").string();
  runtime_dir_ = mkdtemp(t.data());
  chmod(runtime_dir_.c_str(), 0700);
  fs::create_directories(runtime_dir_ + "/state");
  fs::create_directories(runtime_dir_ + "/config");
  env_ = {"XDG_RUNTIME_DIR=" + runtime_dir_,
          "PIPEWIRE_RUNTIME_DIR=" + runtime_dir_,
          "PIPEWIRE_REMOTE=pipewire-0",
          "DBUS_SESSION_BUS_ADDRESS=unix:path=" + runtime_dir_ + "/bus",
          "PULSE_SERVER=unix:" + runtime_dir_ + "/pulse/native",
          "PULSE_RUNTIME_PATH=" + runtime_dir_ + "/pulse",
          "XDG_STATE_HOME=" + runtime_dir_ + "/state",
          "XDG_CONFIG_HOME=" + runtime_dir_ + "/config",
          "LC_ALL=C"};
  dbus_ = std::make_unique<Process>(
      std::vector<std::string>{"/usr/bin/dbus-daemon", "--session",
                               "--address=unix:path=" + runtime_dir_ + "/bus", "--nofork", "--nopidfile"},
      env_);
  if (!poll_until([&] { return fs::exists(runtime_dir_ + "/bus"); }, 10s)) return;
  ready_ = start_daemons();
}

PipeWireSession::~PipeWireSession() {
  stop_daemons(SIGTERM);
  stop(dbus_, SIGTERM, old_logs_, "dbus-daemon");
  std::error_code ec;
  fs::remove_all(runtime_dir_, ec);
}

bool PipeWireSession::start_daemons() {
  // A killed pipewire leaves its socket behind: waiting for the file would
  // not wait for the new daemon, and a wireplumber started too early exits
  // ("Failed to connect to PipeWire").
  std::error_code ec;
  for (const char* f : {"/pipewire-0", "/pipewire-0.lock"}) fs::remove(runtime_dir_ + f, ec);
  pipewire_ = start({"/usr/bin/pipewire"});
  if (!poll_until([&] { return fs::exists(runtime_dir_ + "/pipewire-0"); }, 10s)) return false;
  wireplumber_ = start({"/usr/bin/wireplumber"});
  pulse_ = start({"/usr/bin/pipewire-pulse"});
  if (!poll_until([&] { return run({"/usr/bin/pactl", "info"}, 5s).status == 0; }, 15s)) return false;
  // wireplumber is up once it has made the "default" metadata object; one
  // that gave up on a daemon not yet listening is started again.
  return poll_until(
      [&] {
        if (!running(wireplumber_->pid())) wireplumber_ = start({"/usr/bin/wireplumber"});
        return run({"/usr/bin/pw-metadata", "-n", "default"}, 5s).out.find("Found \"default\"") != std::string::npos;
      },
      15s);
}

void PipeWireSession::stop_daemons(int sig) {
  stop(pulse_, sig, old_logs_, "pipewire-pulse");
  stop(wireplumber_, sig, old_logs_, "wireplumber");
  stop(pipewire_, sig, old_logs_, "pipewire");
}

std::vector<std::string> PipeWireSession::env(const std::vector<std::string>& extra) const {
  std::vector<std::string> e = env_;
  e.insert(e.end(), extra.begin(), extra.end());
  return e;
}

Result PipeWireSession::run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) const {
  return rackd::test::run(argv, timeout, env_);
}

std::unique_ptr<Process> PipeWireSession::start(const std::vector<std::string>& argv,
                                                const std::vector<std::string>& extra_env) const {
  return std::make_unique<Process>(argv, env(extra_env));
}

bool PipeWireSession::load_null_sink(const NullSink& s) {
  std::vector<std::string> argv = {"/usr/bin/pactl", "load-module", "module-null-sink", "sink_name=" + s.name,
                                   "channels=" + std::to_string(s.channels),
                                   "sink_properties=\"device.description='" + s.description + "'\""};
  if (s.channels == 2) argv.push_back("channel_map=front-left,front-right");
  if (s.channels == 8) argv.push_back(std::string("channel_map=") + kPactlMap71);
  if (run(argv).status != 0) return false;
  return wait_for_sink(s.name, 10s);
}

bool PipeWireSession::add_null_sink(const std::string& name, const std::string& description, int channels) {
  NullSink s{name, description, channels};
  if (!load_null_sink(s)) return false;
  null_sinks_.push_back(s);
  if (null_sinks_.size() == 1) return set_default_sink(name);
  return true;
}

bool PipeWireSession::set_default_sink(const std::string& name) {
  default_ = name;
  if (run({"/usr/bin/pactl", "set-default-sink", name}).status != 0) return false;
  return poll_until([&] { return default_sink() == name; }, 10s);
}

std::string PipeWireSession::default_sink() const {
  return trim(run({"/usr/bin/pactl", "get-default-sink"}).out);
}

std::vector<SinkInfo> PipeWireSession::sinks() const {
  std::vector<SinkInfo> v;
  std::istringstream in(run({"/usr/bin/pactl", "list", "sinks"}).out);
  std::string line;
  auto value = [&line](const char* key) -> std::pair<bool, std::string> {
    const std::string t = trim(line);
    const std::string k = std::string(key) + ":";
    if (t.rfind(k, 0) != 0) return {false, ""};
    return {true, trim(t.substr(k.size()))};
  };
  while (std::getline(in, line)) {
    if (line.rfind("Sink #", 0) == 0) {
      v.emplace_back();
      continue;
    }
    if (v.empty() || line.size() < 2 || line[0] != '\t' || line[1] == '\t') continue;  // top-level keys only
    if (auto [ok, s] = value("Name"); ok) v.back().name = s;
    if (auto [ok, s] = value("Description"); ok) v.back().description = s;
    if (auto [ok, s] = value("State"); ok) v.back().state = s;
    if (auto [ok, s] = value("Channel Map"); ok) v.back().channel_map = s;
    if (auto [ok, s] = value("Sample Specification"); ok) {
      // "float32le 8ch 48000Hz"
      std::istringstream spec(s);
      std::string fmt, ch;
      spec >> fmt >> ch;
      v.back().channels = std::atoi(ch.c_str());
    }
  }
  return v;
}

bool PipeWireSession::wait_for_sink(const std::string& name, std::chrono::milliseconds timeout) const {
  return poll_until(
      [&] {
        for (const auto& s : sinks())
          if (s.name == name) return true;
        return false;
      },
      timeout);
}

bool PipeWireSession::wait_for_sink_gone(const std::string& name, std::chrono::milliseconds timeout) const {
  return poll_until(
      [&] {
        for (const auto& s : sinks())
          if (s.name == name) return false;
        return true;
      },
      timeout);
}

std::unique_ptr<Process> PipeWireSession::play(const std::string& wav, const std::string& target) const {
  std::vector<std::string> argv = {"/usr/bin/pw-play", "--target", target};
  if (channels_of(wav) == 8) argv.insert(argv.end(), {"--channel-map", kPwMap71});
  argv.push_back(wav);
  return start(argv);
}

int PipeWireSession::play_and_wait(const std::string& wav, const std::string& target) const {
  auto p = play(wav, target);
  int status = p->wait(120s);
  if (status == -1) p->signal(SIGKILL);
  return status;
}

std::unique_ptr<Recorder> PipeWireSession::record(const std::string& sink, const std::string& wav, int channels) const {
  return std::make_unique<Recorder>(env_, sink, wav, channels);
}

Audio PipeWireSession::record_for(const std::string& sink, const std::string& wav, double seconds) const {
  Recorder r(env_, sink, wav);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  return r.stop();
}

std::string PipeWireSession::links() const { return run({"/usr/bin/pw-link", "-l"}).out; }

double PipeWireSession::restart_pipewire(bool kill9) {
  const auto t0 = std::chrono::steady_clock::now();
  stop_daemons(kill9 ? SIGKILL : SIGTERM);
  ready_ = start_daemons();
  if (!ready_) return -1;
  for (const auto& s : null_sinks_)
    if (!load_null_sink(s)) return -1;
  if (!default_.empty() && !set_default_sink(default_)) return -1;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string PipeWireSession::log() const {
  std::string s = old_logs_;
  auto add = [&s](const std::unique_ptr<Process>& p, const char* what) {
    if (p) s += std::string("--- ") + what + " ---\n" + p->err();
  };
  add(pipewire_, "pipewire");
  add(wireplumber_, "wireplumber");
  add(pulse_, "pipewire-pulse");
  return s;
}

}  // namespace rackd::test
