// A private, headless PipeWire desktop for integration tests: its own session
// D-Bus, pipewire, wireplumber and pipewire-pulse in a fresh XDG_RUNTIME_DIR,
// null sinks standing in for headphones and speakers, and pw-play/pw-record to
// play into a sink and record a sink's monitor. Everything is started and
// stopped by process id; the environment that points a client at this session
// is only ever given to the children (env()), never set in the test process.
// Test thread only.
//
// Measured on the 2-core CI VM (Debian bookworm: pipewire 0.3.65, wireplumber
// 0.4.13, pactl 16.1) by pipewire_session_test.cpp (three runs each):
//   * start to `pactl info` answering and wireplumber's "default" metadata:
//     0.10-0.17 s; a first null sink is the default 0.06-0.09 s later.
//   * restart_pipewire() (stop, start, null sinks and default again):
//     0.15-0.25 s, SIGKILL or SIGTERM alike.
//   * a pw-loopback virtual sink is listed 0.03-0.06 s after it starts and
//     linked to the default sink 0.07-0.09 s after.
//   * a file played with pw-play reaches a sink's monitor recording 0.05-0.06 s
//     after pw-play starts; every frame arrives (impulses 0.5 s apart land
//     exactly 24000 frames apart, through the stand-in and the null sink).
//
// Pitfalls found on the way (what the fixture does about each):
//   * wireplumber saves the default sink and every stream's volume/target in
//     $XDG_STATE_HOME/wireplumber (default ~/.local/state, shared by every
//     test and every developer session): a test that switched the default to
//     "spk" would make the next one start on "spk", a saved volume would
//     change levels. XDG_STATE_HOME and XDG_CONFIG_HOME point into the private
//     runtime dir.
//   * wireplumber exits without a session D-Bus; a private dbus-daemon runs
//     per session (it survives restart_pipewire()).
//   * getenv() returns the first match: appending XDG_RUNTIME_DIR to an
//     inherited environment that already has one (a developer's desktop)
//     would talk to the real session. harness.cpp's spawn now lets an
//     explicit entry replace the inherited one.
//   * parecord keeps ~2 s in its record buffer (PulseAudio's default fragment)
//     and loses it on SIGINT; pw-record writes everything up to the signal.
//     record() therefore uses pw-record with stream.capture.sink=true on the
//     sink's node (the same as parecord --device=<sink>.monitor).
//   * pw-record --target hp follows the default sink: wireplumber 0.4.13
//     moves a monitor recording to spk.monitor when the default becomes spk,
//     target or not (seen with pw-link -l). Recorder sets
//     node.dont-reconnect=true, which pins it (and means a recorder does not
//     survive its sink: start a new one after restart_pipewire()).
//   * pw-record's recording starts with silence (the sink is woken from
//     suspend by the recorder itself); nothing of the played file is lost,
//     because the recorder is linked (Recorder waits for its ports to be
//     linked) before anything plays.
//   * pw-play with a target that does not exist plays to the default sink
//     instead (wireplumber's fallback): wait for the target to exist first
//     (wait_for_sink), or a test hears its own signal without rackd.
//   * pw-play of an 8-channel float WAV written by libsndfile (no channel
//     mask) maps it FL FR FC LFE RL RR SL SR correctly here, but play() passes
//     --channel-map FL,FR,FC,LFE,RL,RR,SL,SR explicitly for 8 channels so a
//     different default (SL SR before RL RR) cannot swap the surrounds.
//   * pw-loopback copies min(capture, playback) channels buffer by buffer: an
//     8-channel capture with a 2-channel playback drops channels 3-8; the
//     stand-in uses 8 channels on both sides and lets the playback stream's
//     channel mixer downmix into the 2-channel sink.
//   * pipewire-pulse's module-argument parser: a description with a space
//     needs sink_properties="device.description='HD 650'" (one argv entry);
//     device.description="HD 650" keeps "HD" and silently drops the arguments
//     after it (an 8-channel sink then gets aux0..aux7 instead of its map).
//   * null sinks made with `pactl load-module module-null-sink` live in
//     pipewire-pulse and vanish with it; restart_pipewire() loads them again
//     (same names, descriptions, channel maps) and sets the default again.
//     Nothing else is re-created: clients (pw-play, pw-record, rackd) lose
//     their connection and must reconnect or be started again.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/harness.hpp"

namespace rackd::test {

// pactl's name for 7.1 in the order rackd's hrir module expects.
inline constexpr const char* kPactlMap71 =
    "front-left,front-right,front-center,lfe,rear-left,rear-right,side-left,side-right";
// The same for pw-play/pw-record --channel-map.
inline constexpr const char* kPwMap71 = "FL,FR,FC,LFE,RL,RR,SL,SR";

struct SinkInfo {
  std::string name, description;
  int channels = 0;
  std::string channel_map;  // as pactl prints it: "front-left,front-right"
  std::string state;        // RUNNING, IDLE, SUSPENDED
};

// Records a sink's monitor (float32, 48 kHz) with pw-record from construction
// until stop(); the file is complete once stop() returns.
class Recorder {
 public:
  Recorder(const std::vector<std::string>& env, const std::string& sink, const std::string& wav, int channels = 2);
  ~Recorder();
  // True once pw-record's input ports are linked to the sink's monitor.
  bool linked() const { return linked_; }
  // When the link was seen (polled every 20 ms): about the wall-clock time of
  // the recording's first frame.
  std::chrono::steady_clock::time_point linked_at() const { return linked_at_; }
  Audio stop();

 private:
  std::unique_ptr<Process> proc_;
  std::string wav_;
  std::chrono::steady_clock::time_point linked_at_;
  bool linked_ = false;
};

class PipeWireSession {
 public:
  PipeWireSession();  // starts dbus-daemon, pipewire, wireplumber, pipewire-pulse
  ~PipeWireSession();  // stops them by pid, removes the runtime dir
  PipeWireSession(const PipeWireSession&) = delete;
  PipeWireSession& operator=(const PipeWireSession&) = delete;

  bool ready() const { return ready_; }
  const std::string& runtime_dir() const { return runtime_dir_; }
  // Environment for clients of this session ("K=V"): XDG_RUNTIME_DIR,
  // DBUS_SESSION_BUS_ADDRESS, PULSE_SERVER, XDG_STATE_HOME, ... plus `extra`.
  std::vector<std::string> env(const std::vector<std::string>& extra = {}) const;
  // Runs a command to completion as a client of this session.
  Result run(const std::vector<std::string>& argv,
             std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;
  // Starts a client of this session in the background.
  std::unique_ptr<Process> start(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& extra_env = {}) const;

  // module-null-sink with node.name `name` and node.description
  // `description`; 2 channels are FL FR, 8 are kPactlMap71. Waits until
  // `pactl list sinks` shows it. The first sink becomes the default.
  bool add_null_sink(const std::string& name, const std::string& description, int channels = 2);
  bool set_default_sink(const std::string& name);
  std::string default_sink() const;
  std::vector<SinkInfo> sinks() const;
  // True once a sink called `name` is listed (false after `timeout`).
  bool wait_for_sink(const std::string& name, std::chrono::milliseconds timeout) const;
  bool wait_for_sink_gone(const std::string& name, std::chrono::milliseconds timeout) const;

  // pw-play into sink `target` (by node.name), with the 7.1 map for 8-channel
  // files. play() returns at once; play_and_wait() returns pw-play's status.
  std::unique_ptr<Process> play(const std::string& wav, const std::string& target) const;
  int play_and_wait(const std::string& wav, const std::string& target) const;
  // Starts recording `sink`'s monitor (waits until the recorder is linked).
  std::unique_ptr<Recorder> record(const std::string& sink, const std::string& wav, int channels = 2) const;
  // Records `sink`'s monitor for `seconds`.
  Audio record_for(const std::string& sink, const std::string& wav, double seconds) const;
  // `pw-link -l`, for failure messages and link checks.
  std::string links() const;

  // Stops pipewire, wireplumber and pipewire-pulse (SIGKILL when `kill9`,
  // else SIGTERM), starts them again in the same runtime dir, loads the null
  // sinks again and sets the default again. Returns seconds from the stop to
  // all of that done (negative on failure).
  double restart_pipewire(bool kill9 = true);

  // The daemons' stderr, for failure messages.
  std::string log() const;

 private:
  struct NullSink {
    std::string name, description;
    int channels;
  };
  bool start_daemons();
  void stop_daemons(int sig);
  bool load_null_sink(const NullSink& s);

  std::string runtime_dir_;
  std::vector<std::string> env_;
  std::unique_ptr<Process> dbus_, pipewire_, wireplumber_, pulse_;
  std::vector<NullSink> null_sinks_;
  std::string default_;
  std::string old_logs_;
  bool ready_ = false;
};

}  // namespace rackd::test
