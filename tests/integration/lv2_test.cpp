// rackd-lv2 (issue 14) through the built rackd: renders through installed LV2
// plugins against lilv's reference host (lv2apply), patches refused at load
// (unknown URI, missing feature, no audio ports, channel mismatch, a value out
// of range), and kill -9 during a render, with a plugin's internal LV2 State
// back after the restart (tests/lv2: urn:rackd:test:state).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.hpp"
#ifdef RTCOUNT_LIB
#include <filesystem>

#include "tests/rtcount/rtcount_report.hpp"
#endif

namespace rackd::test {
namespace {

// The test bundle first, then Debian's plugins.
std::vector<std::string> lv2_env() { return {"LV2_PATH=" RACKD_TEST_LV2_PATH ":/usr/lib/lv2:/usr/local/lib/lv2"}; }

// src (the render's --in, `channels` channels) -> fx (lv2 `uri`, `keys`) -> output.
std::string write_patch(const std::string& dir, const std::string& uri, const std::string& keys, int channels = 2) {
  const std::string path = dir + "/lv2.toml";
  std::ofstream(path) << "[server]\nrate = 48000\nblock = 128\noutput_channels = 2\n\n"
                      << "[[module]]\nname = \"src\"\ntype = \"capture\"\nsource = \"device\"\nchannels = " << channels
                      << "\n\n[[module]]\nname = \"fx\"\ntype = \"lv2\"\ninput = \"src\"\nplugin = \"" << uri << "\"\n"
                      << keys << "\n\n[output]\nfrom = \"fx\"\n";
  return path;
}

Audio noise(size_t frames, int channels, uint32_t seed) {
  Audio a;
  a.ch.assign(channels, std::vector<float>(frames));
  uint32_t x = seed;
  for (auto& c : a.ch)
    for (float& s : c) {
      x = x * 1664525u + 1013904223u;
      s = 0.5f * (static_cast<float>(x >> 8) / 8388608.0f - 1.0f);
    }
  return a;
}

Audio mono(const Audio& a, int ch) {
  Audio m;
  m.ch = {a.ch[ch]};
  return m;
}

// lv2apply on `in` (a file whose channels match the plugin), with -c controls.
Audio reference(const std::string& dir, const std::string& tag, const Audio& in, const std::string& uri,
                const std::vector<std::pair<std::string, std::string>>& controls) {
  write_audio(dir + "/ref-in-" + tag + ".wav", in);
  std::vector<std::string> argv = {"/usr/bin/lv2apply", "-i", dir + "/ref-in-" + tag + ".wav", "-o",
                                   dir + "/ref-out-" + tag + ".wav"};
  for (const auto& [sym, v] : controls) argv.insert(argv.end(), {"-c", sym, v});
  argv.push_back(uri);
  const Result r = run(argv, std::chrono::seconds(120), lv2_env());
  EXPECT_EQ(r.status, 0) << r.err;
  return read_audio(dir + "/ref-out-" + tag + ".wav");
}

struct Compare {
  bool bit_exact = true;
  double rel_rms = 0;
};

Compare compare(const Audio& a, const Audio& b) {
  Compare c;
  double err = 0, ref = 0;
  for (size_t ch = 0; ch < b.ch.size(); ++ch)
    for (size_t i = 0; i < b.ch[ch].size(); ++i) {
      const double d = double(a.ch[ch][i]) - double(b.ch[ch][i]);
      if (a.ch[ch][i] != b.ch[ch][i]) c.bit_exact = false;
      err += d * d;
      ref += double(b.ch[ch][i]) * b.ch[ch][i];
    }
  c.rel_rms = ref > 0 ? std::sqrt(err / ref) : std::sqrt(err);
  return c;
}

struct Case {
  const char* uri;
  bool mono;  // one instance per channel of the stereo bus
  std::vector<std::pair<std::string, std::string>> controls;
};

// rackd render through `c` equals lv2apply (per channel for a mono plugin).
void expect_like_lv2apply(const Case& c, bool want_bit_exact) {
  const std::string d = temp_dir();
  const Audio in = noise(48000 + 77, 2, 7);
  write_audio(d + "/in.wav", in);
  std::string keys;
  for (const auto& [sym, v] : c.controls) {
    keys += sym + " = " + v + "\n";  // the parameter: the LV2 port symbol
  }
  const Result r = run({bin("rackd"), "render", write_patch(d, c.uri, keys), "--in", d + "/in.wav", "--out",
                        d + "/out.wav"},
                       std::chrono::seconds(120), lv2_env());
  ASSERT_EQ(r.status, 0) << r.err;
  const Audio out = read_audio(d + "/out.wav");
  ASSERT_EQ(out.frames(), in.frames());
  Audio ref;
  if (c.mono) {
    for (int ch = 0; ch < 2; ++ch)
      ref.ch.push_back(reference(d, std::to_string(ch), mono(in, ch), c.uri, c.controls).ch.at(0));
  } else {
    ref = reference(d, "st", in, c.uri, c.controls);
  }
  ASSERT_EQ(ref.frames(), in.frames());
  const Compare cmp = compare(out, ref);
  ::testing::Test::RecordProperty("bit_exact", cmp.bit_exact ? 1 : 0);
  ::testing::Test::RecordProperty("relative_rms", std::to_string(cmp.rel_rms));
  std::printf("%s: %s, relative RMS %.3g\n", c.uri, cmp.bit_exact ? "bit-exact" : "not bit-exact", cmp.rel_rms);
  if (want_bit_exact)
    EXPECT_TRUE(cmp.bit_exact) << "relative RMS " << cmp.rel_rms;
  else
    EXPECT_LE(cmp.rel_rms, 1e-6);
}

TEST(Lv2Render, MonoSwhHighpassOnAStereoBusEqualsLv2apply) {
  expect_like_lv2apply({"http://plugin.org.uk/swh-plugins/butthigh_iir", true, {{"cutoff", "500.0"}, {"resonance", "0.5"}}},
                       true);
}

TEST(Lv2Render, StereoMdaOverdriveEqualsLv2apply) {
  expect_like_lv2apply({"http://drobilla.net/plugins/mda/Overdrive", false, {{"drive", "0.7"}, {"muffle", "0.3"}}},
                       true);
}

// x42-comp works per run() (its gain follows the block length; lv2apply runs
// one frame per run()), so it matches to ~1e-7 relative RMS, not bit for bit.
TEST(Lv2Render, StereoX42CompressorEqualsLv2apply) {
  expect_like_lv2apply({"http://gareus.org/oss/lv2/darc#stereo", false, {{"threshold", "-20.0"}, {"Ratio", "0.5"}}}, false);
}

// ---- bad patches: `rackd check` exits 2 with file:line and the reason ----

void expect_refused(const std::string& uri, const std::string& keys, int channels, const std::string& reason) {
  const std::string d = temp_dir();
  const std::string patch = write_patch(d, uri, keys, channels);
  const Result r = run({bin("rackd"), "check", patch}, std::chrono::seconds(60), lv2_env());
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_NE(r.err.find(patch + ":"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(reason), std::string::npos) << r.err;
}

TEST(Lv2Check, UnknownUriIsRefused) {
  expect_refused("urn:rackd:test:not-installed", "", 2,
                 "no LV2 plugin urn:rackd:test:not-installed is installed (rackd lv2 list)");
}

TEST(Lv2Check, MissingFeatureIsRefusedByName) {
  expect_refused("urn:rackd:test:needs", "", 2, "urn:rackd:test:feature-nobody-provides");
}

TEST(Lv2Check, NoAudioPortsIsRefused) { expect_refused("urn:rackd:test:noaudio", "", 2, "has no audio ports"); }

TEST(Lv2Check, ChannelMismatchIsRefused) {
  expect_refused("http://drobilla.net/plugins/mda/Overdrive", "", 1, "takes 2 input channels; its input has 1");
}

TEST(Lv2Check, PortValueOutOfRangeIsRefused) {
  expect_refused("http://plugin.org.uk/swh-plugins/amp", "gain = 500.0", 2, "gain = 500 is out of range [-70, 70]");
}

TEST(Lv2Check, GoodPatchPasses) {
  const std::string d = temp_dir();
  const Result r = run({bin("rackd"), "check", write_patch(d, "http://plugin.org.uk/swh-plugins/amp", "gain = 6.0")},
                       std::chrono::seconds(60), lv2_env());
  EXPECT_EQ(r.status, 0) << r.err;
}

// ---- kill -9 during a render ----

// Renders `frames` of `in` through the patch, SIGKILLs one rackd-lv2 process
// after its setup, and returns the exit JSON (stdout) and the log (stderr).
Result render_and_kill(const std::string& d, const std::string& patch, const Audio& in) {
  write_audio(d + "/long.wav", in);
  Process p({bin("rackd"), "render", patch, "--in", d + "/long.wav", "--out", d + "/long-out.wav"}, lv2_env());
  pid_t victim = -1;
  for (int i = 0; i < 5000 && victim < 0; ++i) {
    for (pid_t c : children(p.pid(), "rackd-lv2")) victim = c;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_GT(victim, 0);
  // Past setup: the module's first LV2 State save is in its state folder
  // (<state root>/rackd-<uid>-<rackd pid>/fx/0/current; it saves at once).
  // The root as shm/segment.cpp picks it.
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  std::error_code ec;
  const std::string root = xdg && *xdg && std::filesystem::is_directory(xdg, ec)
                               ? std::string(xdg) + "/rackd-state"
                               : "/tmp/rackd-state-" + std::to_string(getuid());
  const std::string current =
      root + "/rackd-" + std::to_string(getuid()) + "-" + std::to_string(p.pid()) + "/fx/0/current";
  auto saved = [&] {
    std::error_code e;
    return std::filesystem::is_symlink(current, e);
  };
  for (int i = 0; i < 1000 && !saved(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(saved()) << "no state saved in 10 s: " << current;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(kill(victim, SIGKILL), 0) << "the render ended before the kill";
  Result r;
  r.status = p.wait(std::chrono::seconds(300));
  EXPECT_EQ(r.status, 0) << p.err();
  r.out = p.out();
  r.err = p.err();
  return r;
}

TEST(Lv2Faults, KillDuringARenderRestartsWithTheSameControls) {
  const std::string d = temp_dir();
  const size_t frames = 48000 * 600;
  Audio in = noise(frames, 2, 3);
  for (auto& c : in.ch)
    for (float& x : c) x *= 0.5f;  // +6 dB stays under the output's safety limiter
  const std::string json =
      render_and_kill(d, write_patch(d, "http://plugin.org.uk/swh-plugins/amp", "gain = 6.0"), in).out;
  EXPECT_EQ(json_number(json, "fx", "restarts"), 1) << json;
  const Audio out = read_audio(d + "/long-out.wav");
  ASSERT_EQ(out.frames(), frames);
  // The last second: the restarted plugin at +6 dB again.
  const float gain = std::pow(10.0f, 6.0f / 20.0f);
  for (int ch = 0; ch < 2; ++ch)
    for (size_t i = frames - 48000; i < frames; ++i)
      ASSERT_NEAR(out.ch[ch][i], in.ch[ch][i] * gain, 1e-5f) << "channel " << ch << " frame " << i;
}

// The step (0..996) whose gain, 1.001 + step / 1000 in float as the test
// plugin computes it, turns in[at..at+n) into out exactly; -1: none (bypassed).
int gain_step(const std::vector<float>& in, const std::vector<float>& out, size_t at, size_t n) {
  for (int step = 0; step < 997; ++step) {
    const float gain = 1.001f + static_cast<float>(step) / 1000.0f;
    bool all = true;
    for (size_t i = at; i < at + n && all; ++i) all = out[i] == in[i] * gain;
    if (all) return step;
  }
  return -1;
}

// urn:rackd:test:state picks its gain when first instantiated and keeps it in
// LV2 State: after kill -9 the restarted instances have theirs back.
TEST(Lv2Faults, PluginStateComesBackAfterAKill) {
  const std::string d = temp_dir();
  const size_t frames = 48000 * 600;
  Audio in = noise(frames, 2, 11);
  for (auto& c : in.ch)
    for (float& x : c) x *= 0.5f;  // x2 stays under the output's safety limiter
  const Result r = render_and_kill(d, write_patch(d, "urn:rackd:test:state", ""), in);
  EXPECT_EQ(json_number(r.out, "fx", "restarts"), 1) << r.out;
  EXPECT_NE(r.err.find("instance 0: state restored"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("instance 1: state restored"), std::string::npos) << r.err;
  const Audio out = read_audio(d + "/long-out.wav");
  ASSERT_EQ(out.frames(), frames);
  for (int ch = 0; ch < 2; ++ch) {
    const int before = gain_step(in.ch[ch], out.ch[ch], 0, 1000);
    const int after = gain_step(in.ch[ch], out.ch[ch], frames - 1000, 1000);
    EXPECT_GE(before, 0) << "channel " << ch << ": not the plugin's gain at the start\n" << r.out;
    EXPECT_EQ(before, after) << "channel " << ch << ": the gain (LV2 State) changed across the restart\n" << r.out;
    size_t bypassed = 0;
    for (size_t i = 0; i < frames; ++i) bypassed += out.ch[ch][i] == in.ch[ch][i];
    ::testing::Test::RecordProperty("bypassed_frames_ch" + std::to_string(ch), static_cast<int>(bypassed));
    EXPECT_GT(bypassed, 0u) << "no gap: the kill did not land";
  }
}

// A control output port is a reported parameter: /fx/gain/get on a live run
// (null device) reads the state plugin's gain (1.001 .. 1.997).
TEST(Lv2Outputs, ControlOutputPortIsReadWithGet) {
  const std::string d = temp_dir();
  std::ofstream(d + "/p.toml") << "[server]\nrate = 48000\nblock = 128\noutput_channels = 2\n\n"
                               << "[[module]]\nname = \"src\"\ntype = \"capture\"\nsource = \"noise\"\nchannels = 2\n"
                               << "gain_db = -20.0\n\n[[module]]\nname = \"fx\"\ntype = \"lv2\"\ninput = \"src\"\n"
                               << "plugin = \"urn:rackd:test:state\"\n\n[output]\nfrom = \"fx\"\n";
  const std::string port = std::to_string(free_udp_port());
  Process p({bin("rackd"), "run", d + "/p.toml", "--device", "null", "--duration", "20", "--osc-port", port},
            lv2_env());
  double gain = 0;
  for (int i = 0; i < 100 && !(gain > 1.0); ++i) {
    const Result r = run({bin("rackctl"), "--port", port, "get", "/fx/gain"}, std::chrono::seconds(5));
    if (r.status == 0 && r.out.rfind("/fx/gain ", 0) == 0) gain = std::atof(r.out.c_str() + 9);
    if (!(gain > 1.0)) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GE(gain, 1.001 - 1e-6) << p.err();
  EXPECT_LE(gain, 1.997 + 1e-6) << p.err();
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(std::chrono::seconds(30)), 0) << p.err();
}

#ifdef RTCOUNT_LIB
// (Named so the rtsan preset's filter leaves these out, as the other
// librtcount tests: the counters and the sanitizer do not mix.)
// librtcount.so preloaded: the audio thread of every rackd-lv2 process (host
// code and two well-behaved plugins, swh amp per channel and mda Overdrive)
// allocates nothing and makes no system call but futex while the parameters
// move; the worker and state threads are outside the real-time sections.
TEST(Lv2Realtime, AudioThreadStaysRealtimeCleanWhileParametersMove) {
  const std::string d = temp_dir();
  const std::string counts = d + "/rtcount";
  std::filesystem::create_directories(counts);
  write_audio(d + "/in.wav", noise(48000 * 2, 2, 5));
  const std::string patch = d + "/chain.toml";
  std::ofstream(patch) << "[server]\nrate = 48000\nblock = 128\noutput_channels = 2\n\n"
                       << "[[module]]\nname = \"src\"\ntype = \"capture\"\nsource = \"device\"\nchannels = 2\n\n"
                       << "[[module]]\nname = \"amp\"\ntype = \"lv2\"\ninput = \"src\"\n"
                       << "plugin = \"http://plugin.org.uk/swh-plugins/amp\"\n\n"
                       << "[[module]]\nname = \"od\"\ntype = \"lv2\"\ninput = \"amp\"\n"
                       << "plugin = \"http://drobilla.net/plugins/mda/Overdrive\"\n\n[output]\nfrom = \"od\"\n";
  std::ofstream ev(d + "/ev.txt");
  for (int i = 1; i < 40; ++i)
    ev << 0.05 * i << " /amp/gain " << (i % 7) - 3 << "\n" << 0.05 * i + 0.01 << " /od/drive " << (i % 5) * 0.2 << "\n";
  ev.close();
  std::vector<std::string> env = lv2_env();
  env.push_back(std::string("LD_PRELOAD=") + RTCOUNT_LIB);
  env.push_back("RACKD_RTCOUNT_DIR=" + counts);
  const Result r = run({bin("rackd"), "render", patch, "--in", d + "/in.wav", "--out", d + "/out.wav", "--events",
                        d + "/ev.txt"},
                       std::chrono::seconds(120), env);
  ASSERT_EQ(r.status, 0) << r.err;
  int seen = 0;
  for (const auto& p : rtcount::read_reports(counts)) {
    if (p.comm != "rackd-lv2") continue;
    for (const auto& t : p.threads) {
      if (t.sections == 0) continue;
      ++seen;
      EXPECT_TRUE(t.syscalls_counted()) << t.seccomp;
      EXPECT_EQ(t.allocs, 0u);
      EXPECT_EQ(t.frees, 0u);
      EXPECT_EQ(t.syscalls, 0u);
    }
  }
  EXPECT_EQ(seen, 2) << rtcount::summary(rtcount::read_reports(counts), true);
}

// The counters see into the plugin: urn:rackd:test:allocates (malloc/free in
// each run()) shows up on the rackd-lv2 audit thread. The check above is not
// blind to plugin code.
TEST(RealtimeCounters, SeeAnLv2PluginThatAllocates) {
#if defined(__has_feature)
#if __has_feature(realtime_sanitizer)
  GTEST_SKIP() << "RealtimeSanitizer halts the module at the plugin's first malloc";
#endif
#endif
  const std::string d = temp_dir();
  const std::string counts = d + "/rtcount";
  std::filesystem::create_directories(counts);
  write_audio(d + "/in.wav", noise(48000, 2, 5));
  std::vector<std::string> env = lv2_env();
  env.push_back(std::string("LD_PRELOAD=") + RTCOUNT_LIB);
  env.push_back("RACKD_RTCOUNT_DIR=" + counts);
  const Result r = run({bin("rackd"), "render", write_patch(d, "urn:rackd:test:allocates", ""), "--in",
                        d + "/in.wav", "--out", d + "/out.wav"},
                       std::chrono::seconds(120), env);
  ASSERT_EQ(r.status, 0) << r.err;
  uint64_t allocs = 0;
  for (const auto& p : rtcount::read_reports(counts))
    if (p.comm == "rackd-lv2")
      for (const auto& t : p.threads) allocs += t.allocs;
  EXPECT_GE(allocs, 2u * 48000 / 128) << rtcount::summary(rtcount::read_reports(counts), true);
}
#endif

// A plugin that reports latency (x42 dpl, a look-ahead limiter): rackd describe
// shows it, the exit JSON and /rackd/status carry it; ports keep their
// symbol's capitals (x42-eq's HPfreq).
TEST(Lv2, LatencyIsShownAndSymbolsKeepTheirCase) {
  const std::string uri = "http://gareus.org/oss/lv2/dpl#stereo";
  const Result desc = run({bin("rackd"), "describe", "lv2", "--config", "plugin = \"" + uri + "\""},
                          std::chrono::seconds(60), lv2_env());
  ASSERT_EQ(desc.status, 0) << desc.err;
  EXPECT_NE(desc.out.find("latency:    64 frames"), std::string::npos) << desc.out;
  const std::string d = temp_dir();
  write_audio(d + "/in.wav", noise(4800, 2, 3));
  const Result r = run({bin("rackd"), "render", write_patch(d, uri, ""), "--in", d + "/in.wav", "--out", d + "/o.wav"},
                       std::chrono::seconds(60), lv2_env());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json_number(r.out, "fx", "latency_frames"), 64) << r.out;

  const Result eq = run({bin("rackd"), "describe", "lv2", "--config",
                         "plugin = \"http://gareus.org/oss/lv2/fil4#stereo\""},
                        std::chrono::seconds(60), lv2_env());
  EXPECT_NE(eq.out.find("  HPfreq "), std::string::npos) << eq.out;
  const Result check = run({bin("rackd"), "check", source("patches/lv2-chain.toml")}, std::chrono::seconds(60), lv2_env());
  EXPECT_EQ(check.status, 0) << check.err;
}

}  // namespace
}  // namespace rackd::test
