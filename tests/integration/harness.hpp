// Test harness for integration tests: runs the built rackd and real module
// processes, a dummy JACK server, and reads/writes sound files.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace rackd::test {

std::string bin(const std::string& name);     // build/bin/<name>
std::string source(const std::string& path);  // <repo>/<path>
std::string temp_dir();                       // fresh directory, removed at exit

struct Result {
  int status = -1;         // exit code, or 128 + signal
  std::string out, err;
};

// Runs argv to completion (killed after `timeout`), capturing stdout/stderr.
Result run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout = std::chrono::seconds(120),
           const std::vector<std::string>& env = {});

// A child running in the background with stdout/stderr going to files.
// Every process started here is checked when it is destroyed: a
// RealtimeSanitizer report on its stderr (rtsan build) fails the test, unless
// allow_rtsan_reports() was called.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});
  ~Process();  // SIGKILL if still running
  void allow_rtsan_reports() { allow_rtsan_ = true; }
  pid_t pid() const { return pid_; }
  void signal(int sig);
  // Waits for exit; returns exit code or 128 + signal, or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);
  std::string out() const;
  std::string err() const;

 private:
  pid_t pid_ = -1;
  std::string out_path_, err_path_;
  bool reaped_ = false;
  bool allow_rtsan_ = false;
};

// True when `text` holds a RealtimeSanitizer report.
bool has_rtsan_report(const std::string& text);

// Children of `pid` whose command name starts with `prefix`.
std::vector<pid_t> children(pid_t pid, const std::string& prefix = "");
std::string comm_of(pid_t pid);
// True while `pid` runs (not gone, not a zombie).
bool running(pid_t pid);

// A `jackd -d dummy` server with a unique name, stopped by its pid.
class DummyJack {
 public:
  explicit DummyJack(int rate = 48000, int period = 128);
  ~DummyJack();
  bool ready() const { return ready_; }
  // Environment for clients: JACK_DEFAULT_SERVER=<name>, JACK_NO_START_SERVER=1.
  std::vector<std::string> env() const;
  std::string log() const;

 private:
  std::string name_;
  std::string log_path_;
  pid_t pid_ = -1;
  bool ready_ = false;
};

// Sound files (libsndfile). Samples planar, as float.
struct Audio {
  int rate = 48000;
  int format = 0x010006;  // SF_FORMAT_WAV | SF_FORMAT_FLOAT unless set
  std::vector<std::vector<float>> ch;
  size_t frames() const { return ch.empty() ? 0 : ch[0].size(); }
};
void write_audio(const std::string& path, const Audio& a);
Audio read_audio(const std::string& path);
// Raw stored samples as int (PCM) for bit-exact comparison.
std::vector<int> read_raw_ints(const std::string& path);

// Minimal JSON number lookup: value of "key": inside the object of module
// `module` (or at the top level when module is empty). -1 when absent.
double json_number(const std::string& json, const std::string& module, const std::string& key);
std::string json_string(const std::string& json, const std::string& module, const std::string& key);

// A UDP port that was free a moment ago (bound to 127.0.0.1:0, then closed).
uint16_t free_udp_port();

// Sends OSC "set" messages with one float argument to 127.0.0.1:port from its
// own thread, `per_second` of them, cycling through `addresses` and values
// between lo and hi, until destroyed. Hand-encoded, so tests need no liblo.
class OscTraffic {
 public:
  OscTraffic(uint16_t port, std::vector<std::string> addresses, float lo, float hi, int per_second);
  ~OscTraffic();
  uint64_t sent() const;

 private:
  struct Impl;
  Impl* impl_;
};

// The device kept playing: more than half the cycles `seconds` at 48 kHz /
// 128 should give, and never more. (A loaded machine makes the dummy device
// itself drop cycles; the exact count is a figure, not a test.)
void expect_device_kept_playing(double cycles, double seconds);

// A tone through two passthrough processes (p1 at -6 dB, then p2) to the
// output: the chain the live tests kill modules of. Written to a fresh
// temporary directory; returns the patch's path.
std::string tone_chain_patch();
// For `rackd run` of tone_chain_patch() in `p`, for `seconds`: SIGKILLs p1
// 3 s in, waits for rackd to exit 0, and checks that exactly one module
// restarted, the device kept playing, every module runs again, the restart
// was logged and no segment is left. Returns the exit JSON.
std::string kill_p1_and_expect_recovery(Process& p, double seconds);

// Open file descriptors of `pid`, and its resident memory (VmRSS) in KiB (-1: gone).
long fd_count(pid_t pid);
long rss_kb(pid_t pid);

// The CPUs thread `tid` may run on (0: the caller), in order.
std::vector<int> cpus_of(pid_t tid);

// The number after the first `key` in a log, or -1.
int logged(const std::string& err, const std::string& key);

// Segments in /dev/shm whose name starts with "rackd-<uid>-<pid>".
bool segment_exists_for(pid_t pid);

}  // namespace rackd::test
