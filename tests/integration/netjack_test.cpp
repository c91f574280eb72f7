// Integration: `rackd run` on a netjack2 slave, master and slave on this
// machine over loopback UDP (docs/netjack2.md has the same setup by hand):
//   master  jackd -d dummy, with the netmanager internal client (jack_load)
//           listening at a free UDP port;
//   slave   jackd -d net -a 127.0.0.1 under another server name;
//   rackd   run patches/tone.toml on the slave.
// The master's netmanager client for the slave carries what the slave plays on
// its from_slave_N ports; jack_rec records them on the master and the test
// checks the recording's frequency (440 Hz) and level (-18 dBFS peak). netjack2
// adds latency and can drop packets on a loaded machine: the onset and the
// dropped blocks are figures, not assertions.
//
// Every process is started here and stopped by its pid. Single-threaded test
// code ([setup] only).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>
#include <thread>

#include "tests/integration/harness.hpp"

namespace rackd::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr double kPi = 3.14159265358979323846;
constexpr double kToneHz = 440.0;                // patches/tone.toml
constexpr double kTonePeakDbfs = -18.0;          // -6 dBFS generator, gain_db -12
constexpr int kRate = 48000;
constexpr int kBlock = 128;
constexpr double kOnsetThreshold = 0.01;         // -40 dBFS: the first sound
constexpr double kSkipAfterOnsetS = 0.05;
constexpr double kWindowS = 1.0;                 // analysed: 1 s after the onset
constexpr int kRecordS = 3;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// `jack_lsp` on the server `env` names: its port list, or "" when it fails.
std::string ports_of(const std::vector<std::string>& env) {
  Result r = run({"/usr/bin/jack_lsp", "-c"}, seconds(5), env);
  return r.status == 0 ? r.out : "";
}

// Polls until `port` is listed on the server (`port` empty: until the server
// answers at all). False after `timeout`.
bool wait_for_port(const std::vector<std::string>& env, const std::string& port, milliseconds timeout) {
  const auto until = Clock::now() + timeout;
  for (;;) {
    const std::string ports = ports_of(env);
    if (!ports.empty() && (port.empty() || ports.find(port + "\n") != std::string::npos)) return true;
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(milliseconds(100));
  }
}

// Amplitude of the sinusoid at `hz` in x: one DFT bin (rectangular window),
// by Goertzel's recurrence.
double amplitude_at(const std::vector<float>& x, double hz, int rate) {
  const double coeff = 2 * std::cos(2 * kPi * hz / rate);
  double s1 = 0, s2 = 0;
  for (float v : x) {
    const double s = v + coeff * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  const double power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return 2 * std::sqrt(std::max(power, 0.0)) / static_cast<double>(x.size());
}

struct Peak {
  double hz = 0, amplitude = 0;
};

// The strongest frequency in [lo, hi]: 1 Hz steps (a one-second window's bin
// spacing), then 0.05 Hz steps around the best.
Peak peak_between(const std::vector<float>& x, double lo, double hi, int rate) {
  Peak best;
  auto scan = [&](double from, double to, double step) {
    for (double hz = from; hz <= to; hz += step) {
      const double a = amplitude_at(x, hz, rate);
      if (a > best.amplitude) best = {hz, a};
    }
  };
  scan(lo, hi, 1.0);
  scan(best.hz - 1, best.hz + 1, 0.05);
  return best;
}

// Frequency from the rising zero crossings, interpolated between samples.
double zero_crossing_hz(const std::vector<float>& x, int rate) {
  double first = -1, last = -1;
  int n = 0;
  for (size_t i = 1; i < x.size(); ++i) {
    if (x[i - 1] < 0 && x[i] >= 0) {
      const double t = static_cast<double>(i - 1) + x[i - 1] / (x[i - 1] - x[i]);
      if (first < 0) first = t;
      last = t;
      ++n;
    }
  }
  return n > 1 ? (n - 1) * rate / (last - first) : 0;
}

double rms(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += static_cast<double>(v) * v;
  return x.empty() ? 0 : std::sqrt(s / static_cast<double>(x.size()));
}

// Share of x's power in [lo, hi] Hz: the integer-Hz bins of a one-second
// window are orthogonal, and each holds amplitude^2 / 2 of the mean square.
double power_share(const std::vector<float>& x, int lo, int hi, int rate, double x_rms) {
  double p = 0;
  for (int hz = lo; hz <= hi; ++hz) p += amplitude_at(x, hz, rate) * amplitude_at(x, hz, rate) / 2;
  return x_rms > 0 ? p / (x_rms * x_rms) : 0;
}

double sample_peak(const std::vector<float>& x) {
  double m = 0;
  for (float v : x) m = std::max(m, static_cast<double>(std::fabs(v)));
  return m;
}

double dbfs(double amplitude) { return 20 * std::log10(std::max(amplitude, 1e-12)); }

// A jackd log without its per-cycle xrun lines (hundreds on a loaded machine),
// and how many were left out.
std::string without_xruns(const std::string& log) {
  std::istringstream in(log);
  std::string out, line;
  int dropped = 0;
  while (std::getline(in, line)) {
    if (line.find("XRun") != std::string::npos || line.find("Process error") != std::string::npos) {
      ++dropped;
      continue;
    }
    out += line + "\n";
  }
  return out + "(" + std::to_string(dropped) + " xrun lines left out)\n";
}

// Runs `f` when it goes out of scope, on early returns (failed ASSERTs) too.
struct AtExit {
  std::function<void()> f;
  ~AtExit() { f(); }
};

struct Silence {
  int blocks = 0;
  double first_s = -1;  // seconds into the recording
};

// Runs of kBlock samples of digital silence from `from` on, stepping by
// samples: netjack2 packets that came too late or not at all.
Silence silent_blocks(const std::vector<float>& x, size_t from) {
  Silence s;
  size_t run = 0;
  for (size_t i = from; i < x.size(); ++i) {
    run = std::fabs(x[i]) < 1e-6f ? run + 1 : 0;
    if (run == kBlock) {
      if (s.blocks++ == 0) s.first_s = static_cast<double>(i + 1 - kBlock) / kRate;
      run = 0;
    }
  }
  return s;
}

TEST(NetJack, ToneFromRackdOnASlaveReachesTheMasterOverLoopback) {
  const auto t0 = Clock::now();
  const std::string udp_port = std::to_string(free_udp_port());
  const std::string tag = std::to_string(getpid());
  const std::string slave_server = "rackd-nj-slave-" + tag;
  const std::string net_client = "rackd-nj-" + tag;  // the master's client for this slave
  const std::vector<std::string> slave_env = {"JACK_DEFAULT_SERVER=" + slave_server, "JACK_NO_START_SERVER=1"};

  DummyJack master(kRate, kBlock);
  ASSERT_TRUE(master.ready()) << "master jackd -d dummy did not start:\n" << master.log();
  // The netmanager binds 0.0.0.0:<port> and joins the multicast group there
  // too; the slave below reaches it by unicast (netjack2 turns multicast
  // loopback off, so a slave on the master's own machine must).
  Result load = run({"/usr/bin/jack_load", "-i", "-p " + udp_port, "netmanager"}, seconds(20), master.env());
  ASSERT_EQ(load.status, 0) << "jack_load netmanager:\n" << load.out << load.err << master.log();

  Process slave({"/usr/bin/jackd", "-n", slave_server, "-d", "net", "-a", "127.0.0.1", "-p", udp_port, "-C", "2", "-P",
                 "2", "-n", net_client});
  std::unique_ptr<Process> rackd;
  auto logs = [&] {
    std::string s = "--- master jackd:\n" + without_xruns(master.log()) + "--- master ports:\n" +
                    ports_of(master.env()) + "--- slave jackd:\n" + without_xruns(slave.out() + slave.err()) +
                    "--- slave ports:\n" + ports_of(slave_env);
    if (rackd) s += "--- rackd:\n" + rackd->out() + rackd->err();
    return s;
  };
  // rackd, then the slave, then (DummyJack) the master, each by SIGTERM first:
  // a master going away first leaves the slave waiting for it.
  AtExit stop{[&] {
    if (rackd && running(rackd->pid())) {
      rackd->signal(SIGTERM);
      rackd->wait(seconds(10));
    }
    slave.signal(SIGTERM);
    if (slave.wait(seconds(10)) < 0) std::printf("slave jackd ignored SIGTERM; killed\n");
  }};

  ASSERT_TRUE(wait_for_port(slave_env, "system:playback_1", seconds(30))) << "slave never answered\n" << logs();
  ASSERT_TRUE(wait_for_port(master.env(), net_client + ":from_slave_1", seconds(30)))
      << "the master's netmanager never made a client for the slave\n" << logs();
  const double setup_s = seconds_since(t0);

  rackd = std::make_unique<Process>(std::vector<std::string>{bin("rackd"), "run", source("patches/tone.toml"),
                                                             "--duration", "8", "--osc-port", "-1"},
                                    slave_env);
  const auto until = Clock::now() + seconds(30);
  while (rackd->err().find("rackd: playing") == std::string::npos && running(rackd->pid()) && Clock::now() < until)
    std::this_thread::sleep_for(milliseconds(20));
  ASSERT_NE(rackd->err().find("rackd: playing"), std::string::npos) << "rackd did not start playing\n" << logs();
  const double playing_s = seconds_since(t0);

  const std::string wav = temp_dir() + "/master.wav";
  Result rec = run({"/usr/bin/jack_rec", "-f", wav, "-d", std::to_string(kRecordS), net_client + ":from_slave_1",
                    net_client + ":from_slave_2"},
                   seconds(30), master.env());
  ASSERT_EQ(rec.status, 0) << "jack_rec on the master:\n" << rec.out << rec.err << logs();

  ASSERT_EQ(rackd->wait(seconds(30)), 0) << logs();
  const std::string json = rackd->out();
  EXPECT_EQ(json_string(json, "tone", "state"), "running") << json;
  // rackd's own late cycles, to tell its gaps from the network's below.
  std::printf("[ figures  ] rackd on the slave: %.0f cycles, %.0f xruns, tone late %.0f\n", json_number(json, "", "cycles"),
              json_number(json, "", "xruns"), json_number(json, "tone", "late"));

  const Audio a = read_audio(wav);
  ASSERT_EQ(a.ch.size(), 2u);
  ASSERT_EQ(a.rate, kRate);
  for (size_t c = 0; c < a.ch.size(); ++c) {
    SCOPED_TRACE("from_slave_" + std::to_string(c + 1));
    const std::vector<float>& x = a.ch[c];
    size_t onset = 0;
    while (onset < x.size() && std::fabs(x[onset]) < kOnsetThreshold) ++onset;
    ASSERT_LT(onset, x.size()) << "the master recorded silence\n" << logs();
    const size_t from = onset + static_cast<size_t>(kSkipAfterOnsetS * kRate);
    const size_t len = static_cast<size_t>(kWindowS * kRate);
    ASSERT_LE(from + len, x.size()) << "sound began " << onset << " frames into " << x.size() << "\n" << logs();
    const std::vector<float> window(x.begin() + static_cast<long>(from), x.begin() + static_cast<long>(from + len));

    const Peak p = peak_between(window, 100, 2000, kRate);
    const double zc = zero_crossing_hz(window, kRate);
    const double level = rms(window);
    const double share = power_share(window, static_cast<int>(kToneHz) - 20, static_cast<int>(kToneHz) + 20, kRate, level);
    const double top = sample_peak(window);
    const Silence dropped = silent_blocks(x, onset);
    std::printf("[ figures  ] ch %zu: spectral peak %.2f Hz at %.2f dBFS, zero crossings %.2f Hz, sample peak %.2f dBFS, "
                "rms %.2f dBFS, %.4f of the power within 20 Hz of 440; onset %.3f s into the recording, %d silent "
                "blocks after it (first at %.3f s); setup %.2f s, rackd playing at %.2f s\n",
                c + 1, p.hz, dbfs(p.amplitude), zc, dbfs(top), dbfs(level), share,
                static_cast<double>(onset) / kRate, dropped.blocks, dropped.first_s, setup_s, playing_s);
    RecordProperty("ch" + std::to_string(c + 1) + "_peak_hz", std::to_string(p.hz));
    RecordProperty("ch" + std::to_string(c + 1) + "_rms_dbfs", std::to_string(dbfs(level)));
    RecordProperty("ch" + std::to_string(c + 1) + "_silent_blocks", std::to_string(dropped.blocks));

    // A dropped or late packet is a gap or a phase jump: it lowers and widens
    // the one-bin peak a little, so the checks are on the frequency, the
    // sample peak, the rms and the power near 440 Hz, which such gaps hardly
    // move; they are for "the tone at the patch's level", not losslessness.
    EXPECT_NEAR(p.hz, kToneHz, 2.0);
    EXPECT_NEAR(dbfs(top), kTonePeakDbfs, 1.0);
    EXPECT_NEAR(dbfs(level), kTonePeakDbfs - 3.01, 3.0);  // a sine's rms is its peak / sqrt 2
    EXPECT_GT(share, 0.9);
  }
  if (HasFailure()) std::printf("%s", logs().c_str());
  RecordProperty("setup_s", std::to_string(setup_s));

  std::printf("[ figures  ] whole test %.2f s\n", seconds_since(t0));
}

}  // namespace
}  // namespace rackd::test
