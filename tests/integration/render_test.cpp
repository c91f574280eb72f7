// Integration: `rackd render` drives the real module processes offline.
#include <gtest/gtest.h>
#include <signal.h>
#include <sndfile.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "tests/integration/harness.hpp"

namespace rackd::test {
namespace {

Audio noise(size_t frames, int channels, int format, float amp = 0.5f, int rate = 48000) {
  Audio a;
  a.rate = rate;
  a.format = format;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> d(-amp, amp);
  a.ch.assign(channels, std::vector<float>(frames));
  for (auto& c : a.ch)
    for (auto& x : c) x = d(rng);
  return a;
}

Result render(const std::string& patch, const std::string& in, const std::string& out,
              const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv = {bin("rackd"), "render", patch, "--out", out};
  if (!in.empty()) {
    argv.push_back("--in");
    argv.push_back(in);
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  return run(argv);
}

TEST(Render, PassthroughChainIsBitExactWithNoFramesAdded) {
  const std::string d = temp_dir();
  // 16-bit PCM, a length that is not a multiple of the block.
  write_audio(d + "/in.wav", noise(48000 * 3 + 77, 2, SF_FORMAT_WAV | SF_FORMAT_PCM_16));
  Result r = render(source("patches/passthrough.toml"), d + "/in.wav", d + "/out.wav");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_raw_ints(d + "/in.wav"), read_raw_ints(d + "/out.wav"));
  Audio out = read_audio(d + "/out.wav");
  EXPECT_EQ(out.frames(), 48000u * 3 + 77);
  EXPECT_EQ(out.format, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  EXPECT_EQ(out.rate, 48000);
  EXPECT_EQ(json_number(r.out, "p2", "late"), 0);
  EXPECT_EQ(json_number(r.out, "", "cycles"), std::ceil((48000.0 * 3 + 77) / 128));
}

// The safety limiter releases (issue 15, finding 1): float noise at about
// -14 dBFS RMS with single samples above the -0.1 dBFS ceiling, through the
// passthrough chain. Each peak alters at most the frames up to the end of its
// release window (576 ms at the default 50 ms release); everything else is
// bit-exact, and the exit JSON's limited_frames counts exactly the frames
// that changed.
TEST(Render, LimiterAltersOnlyEachPeaksReleaseWindowAndCountsIt) {
  const std::string d = temp_dir();
  Audio in = noise(48000 * 5, 2, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 0.34f);
  const size_t peaks[] = {30000, 100000, 170000};
  in.ch[0][peaks[0]] = 1.25f;
  in.ch[1][peaks[1]] = -2.0f;
  in.ch[0][peaks[2]] = 1.0f;
  write_audio(d + "/in.wav", in);
  Result r = render(source("patches/passthrough.toml"), d + "/in.wav", d + "/out.wav");
  ASSERT_EQ(r.status, 0) << r.err;
  const Audio out = read_audio(d + "/out.wav");
  ASSERT_EQ(out.frames(), in.frames());
  const size_t window = 48000 * 576 / 1000 + 1;
  long changed = 0;
  for (size_t i = 0; i < in.frames(); ++i) {
    const bool same = out.ch[0][i] == in.ch[0][i] && out.ch[1][i] == in.ch[1][i];
    changed += same ? 0 : 1;
    bool in_window = false;
    for (size_t p : peaks) in_window = in_window || (i >= p && i <= p + window);
    if (!in_window) {
      ASSERT_TRUE(same) << "frame " << i << " altered outside every release window";
    }
  }
  EXPECT_GT(changed, 3);
  EXPECT_EQ(json_number(r.out, "", "limited_frames"), changed) << r.out;
  EXPECT_EQ(json_number(r.out, "", "mix_nonfinite"), 0) << r.out;
}

TEST(Render, ImpulseComesOutAtTheSameFrame) {
  const std::string d = temp_dir();
  for (size_t at : {0ul, 127ul, 128ul, 1000ul, 4095ul}) {
    Audio a;
    a.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
    a.ch.assign(2, std::vector<float>(8192, 0.0f));
    a.ch[0][at] = 0.5f;
    a.ch[1][at] = -0.25f;
    write_audio(d + "/imp.wav", a);
    Result r = render(source("patches/passthrough.toml"), d + "/imp.wav", d + "/imp-out.wav");
    ASSERT_EQ(r.status, 0) << r.err;
    Audio o = read_audio(d + "/imp-out.wav");
    ASSERT_EQ(o.frames(), 8192u);
    EXPECT_EQ(o.ch, a.ch) << "impulse at " << at;
  }
}

TEST(Render, FlacAndOtherRatesKeepTheirFormat) {
  const std::string d = temp_dir();
  write_audio(d + "/in.flac", noise(44100 + 5, 2, SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 0.4f, 44100));
  Result r = render(source("patches/passthrough.toml"), d + "/in.flac", d + "/out.flac");
  ASSERT_EQ(r.status, 0) << r.err;
  Audio o = read_audio(d + "/out.flac");
  EXPECT_EQ(o.rate, 44100);
  EXPECT_EQ(o.format, SF_FORMAT_FLAC | SF_FORMAT_PCM_24);
  EXPECT_EQ(read_raw_ints(d + "/in.flac"), read_raw_ints(d + "/out.flac"));
}

TEST(Render, ToneWithoutInputNeedsADurationAndMakesThatMuch) {
  const std::string d = temp_dir();
  Result bad = render(source("patches/tone.toml"), "", d + "/t.wav");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("--duration"), std::string::npos) << bad.err;
  Result r = render(source("patches/tone.toml"), "", d + "/t.wav", {"--duration", "1.5"});
  ASSERT_EQ(r.status, 0) << r.err;
  Audio o = read_audio(d + "/t.wav");
  EXPECT_EQ(o.frames(), 72000u);
  float peak = 0;
  for (float x : o.ch[0]) peak = std::max(peak, std::fabs(x));
  EXPECT_NEAR(peak, 0.125f, 0.002f);  // -6 dBFS generator, gain_db = -12
}

// A module killed mid-render: the timeline loses nothing. passthrough is
// bypassable, so its missing blocks are its input: the output stays bit-exact.
TEST(Render, KillingAModuleLosesNoFrame) {
  const std::string d = temp_dir();
  const size_t frames = 48000 * 120 + 3;
  write_audio(d + "/long.wav", noise(frames, 2, SF_FORMAT_WAV | SF_FORMAT_PCM_16));
  Process p({bin("rackd"), "render", source("patches/passthrough.toml"), "--in", d + "/long.wav", "--out",
             d + "/long-out.wav"});
  pid_t victim = -1;
  for (int i = 0; i < 2000 && victim < 0; ++i) {
    for (pid_t c : children(p.pid(), "rackd-passthrou"))
      if (victim < 0) victim = c;  // any passthrough
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_GT(victim, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  ASSERT_EQ(p.wait(std::chrono::seconds(120)), 0) << p.err();
  const std::string json = p.out();
  double restarts = 0, replaced = 0;
  for (const char* m : {"p1", "p2", "p3"}) {
    restarts += json_number(json, m, "restarts");
    replaced += json_number(json, m, "replaced");
  }
  EXPECT_EQ(restarts, 1) << json;
  EXPECT_GT(replaced, 0) << json;
  Audio o = read_audio(d + "/long-out.wav");
  EXPECT_EQ(o.frames(), frames);
  EXPECT_EQ(read_raw_ints(d + "/long.wav"), read_raw_ints(d + "/long-out.wav"));
}

// Offline, modules run up to kMaxBatch blocks per wake-up (engine.hpp); block
// by block is what a live run does. The two renders are the same bit for bit,
// with timed events that fall inside what would otherwise be a batch, with a
// fan-out graph (two branches off one module, mixed) and with a last partial
// block.
TEST(Render, BatchesChangeNothing) {
  const std::string d = temp_dir();
  std::ofstream(d + "/p.toml") << R"([[module]]
name = "src"
type = "capture"
source = "device"
channels = 2

[[module]]
name = "eq"
type = "eq"
input = "src"
bands = [ { type = "peak", freq = 500.0, gain = 6.0, q = 1.0 } ]

[[module]]
name = "a"
type = "passthrough"
input = "eq"

[[module]]
name = "b"
type = "passthrough"
input = "eq"
gain_db = -6.0

[output]
from = ["a", "b"]
)";
  std::ostringstream ev;
  // 0.0213 s is frame 1022.4: block 7, the middle of the second batch of 7.
  for (int k = 0; k < 40; ++k) ev << 0.0213 + k * 0.0371 << " /eq/band/1/gain " << (k % 2 ? -9.0 : 9.0) << "\n";
  ev << "0.5 /b/gain_db -12\n0.50001 /a/gain_db -3\n";
  std::ofstream(d + "/ev.txt") << ev.str();
  write_audio(d + "/in.wav", noise(48000 * 2 + 5, 2, SF_FORMAT_WAV | SF_FORMAT_FLOAT));
  Result one = render(d + "/p.toml", d + "/in.wav", d + "/one.wav", {"--batch", "1", "--events", d + "/ev.txt"});
  ASSERT_EQ(one.status, 0) << one.err;
  Result batched = render(d + "/p.toml", d + "/in.wav", d + "/batched.wav", {"--events", d + "/ev.txt"});
  ASSERT_EQ(batched.status, 0) << batched.err;
  const Audio a = read_audio(d + "/one.wav"), b = read_audio(d + "/batched.wav");
  ASSERT_EQ(a.frames(), 48000u * 2 + 5);
  EXPECT_EQ(a.ch, b.ch) << "batched output differs from block by block";
  EXPECT_EQ(json_number(one.out, "", "cycles"), json_number(batched.out, "", "cycles"));
  for (const char* m : {"src", "eq", "a", "b"}) {
    EXPECT_EQ(json_number(batched.out, m, "late"), 0) << batched.out;
    EXPECT_EQ(json_number(batched.out, m, "replaced"), 0) << batched.out;
  }
  Result bad = render(d + "/p.toml", d + "/in.wav", d + "/x.wav", {"--batch", "0"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("--batch"), std::string::npos) << bad.err;
}

// Deaths at random points of batches: a passthrough of the chain is killed
// every 15 ms during a long render. Every kill cuts a batch short somewhere
// (or lands between batches); the render still loses nothing and stays bit-exact.
TEST(Render, ManyKillsDuringBatchesLoseNothing) {
  const std::string d = temp_dir();
  const size_t frames = 48000 * 300 + 11;
  write_audio(d + "/long.wav", noise(frames, 2, SF_FORMAT_WAV | SF_FORMAT_PCM_16));
  Process p({bin("rackd"), "render", source("patches/passthrough.toml"), "--in", d + "/long.wav", "--out",
             d + "/long-out.wav"});
  // Mid-render: kills before every module is ready are setup failures, which
  // fail the render (render_setup_test.cpp). The render has begun once its
  // (temporary) output holds a first stage of blocks.
  auto started = [&] {
    for (const auto& e : std::filesystem::directory_iterator(d))
      if (e.path().filename().string().rfind(".long-out.wav.rackd-", 0) == 0 && e.file_size() > 4096) return true;
    return std::filesystem::exists(d + "/long-out.wav");
  };
  for (int i = 0; i < 30000 && running(p.pid()) && !started(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::mt19937 rng(11);
  int kills = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (running(p.pid()) && std::chrono::steady_clock::now() < until) {
    std::vector<pid_t> alive = children(p.pid(), "rackd-passthrou");
    if (!alive.empty() && kill(alive[rng() % alive.size()], SIGKILL) == 0) ++kills;
    std::this_thread::sleep_for(std::chrono::milliseconds(15));
  }
  ASSERT_EQ(p.wait(std::chrono::seconds(120)), 0) << p.err();
  double restarts = 0;
  for (const char* m : {"p1", "p2", "p3"}) restarts += json_number(p.out(), m, "restarts");
  RecordProperty("kills", kills);
  EXPECT_GE(kills, 5) << "the render ended before it was put under fire";
  EXPECT_GE(restarts, 1) << p.out();
  EXPECT_EQ(read_audio(d + "/long-out.wav").frames(), frames);
  EXPECT_EQ(read_raw_ints(d + "/long.wav"), read_raw_ints(d + "/long-out.wav"));
}

// With --keep-going (without it the render fails: render_setup_test.cpp).
TEST(Render, ModuleThatRefusesItsSetupLeavesSilenceOfTheRightLengthWithKeepGoing) {
  const std::string d = temp_dir();
  std::ofstream(d + "/p.toml") << R"([[module]]
name = "f"
type = "capture"
source = "file"
file = "missing.wav"

[output]
from = "f"
)";
  Result strict = render(d + "/p.toml", "", d + "/o.wav", {"--duration", "0.5"});
  EXPECT_EQ(strict.status, 1) << strict.err;
  EXPECT_NE(strict.err.find("module \"f\" failed setup: "), std::string::npos) << strict.err;
  EXPECT_FALSE(std::filesystem::exists(d + "/o.wav"));
  Result r = render(d + "/p.toml", "", d + "/o.wav", {"--duration", "0.5", "--keep-going"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json_string(r.out, "f", "state"), "setup-error") << r.out;
  EXPECT_NE(r.err.find("missing.wav"), std::string::npos) << r.err;
  Audio o = read_audio(d + "/o.wav");
  EXPECT_EQ(o.frames(), 24000u);
  for (float x : o.ch[0]) ASSERT_EQ(x, 0.0f);
}

TEST(Render, BadPatchIsRefusedWithFileAndLineAndStartsNothing) {
  const std::string d = temp_dir();
  std::ofstream(d + "/bad.toml") << "[[module]]\nname = \"a\"\ntype = \"capture\"\nsource = \"tone\"\n"
                                    "gian_db = 3\n\n[output]\nfrom = \"a\"\n";
  Process p({bin("rackd"), "render", d + "/bad.toml", "--out", d + "/x.wav", "--duration", "1"});
  EXPECT_EQ(p.wait(std::chrono::seconds(10)), 2);
  EXPECT_NE(p.err().find(d + "/bad.toml:5: "), std::string::npos) << p.err();
  EXPECT_FALSE(std::filesystem::exists(d + "/x.wav"));
  EXPECT_FALSE(segment_exists_for(p.pid()));
}

TEST(Render, SigtermStopsCleanlyAndLeavesNoSegment) {
  const std::string d = temp_dir();
  Process p({bin("rackd"), "render", source("patches/tone.toml"), "--out", d + "/t.wav", "--duration", "100000"});
  for (int i = 0; i < 500 && children(p.pid(), "rackd-capture").empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(segment_exists_for(p.pid()));
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(std::chrono::seconds(10)), 130);
  EXPECT_NE(p.out().find("\"cycles\":"), std::string::npos);
  EXPECT_FALSE(segment_exists_for(p.pid()));
  EXPECT_TRUE(children(p.pid()).empty());
  // An interrupted render keeps what it rendered, and only that.
  EXPECT_EQ(read_audio(d + "/t.wav").frames(), static_cast<size_t>(json_number(p.out(), "", "frames")));
  EXPECT_GT(json_number(p.out(), "", "frames"), 0);
  for (const auto& e : std::filesystem::directory_iterator(d))
    EXPECT_EQ(e.path().filename().string().find(".rackd-"), std::string::npos) << e.path();
}

}  // namespace
}  // namespace rackd::test

namespace rackd::test {
namespace {

// The server is killed with SIGKILL: its modules follow (parent-death signal),
// its segment stays behind, and the next server removes it.
TEST(ServerDeath, ModulesExitAndTheNextServerRemovesTheStaleSegment) {
  const std::string d = temp_dir();
  Process p({bin("rackd"), "render", source("patches/passthrough.toml"), "--duration", "100000", "--out",
             d + "/x.wav"});
  std::vector<pid_t> kids;
  for (int i = 0; i < 3000 && kids.size() < 4; ++i) {
    kids = children(p.pid(), "rackd-");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(kids.size(), 4u);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  p.signal(SIGKILL);
  ASSERT_EQ(p.wait(std::chrono::seconds(5)), 128 + SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  for (pid_t k : kids) {
    while (running(k) && std::chrono::steady_clock::now() - killed < std::chrono::seconds(2))
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - killed).count();
  RecordProperty("modules_gone_ms", std::to_string(ms));
  for (pid_t k : kids) EXPECT_FALSE(running(k)) << "module " << k << " outlived the server";
  EXPECT_TRUE(segment_exists_for(p.pid()));

  Result r = run({bin("rackd"), "render", source("patches/tone.toml"), "--duration", "0.1", "--out", d + "/y.wav"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(segment_exists_for(p.pid()));
}

}  // namespace
}  // namespace rackd::test
