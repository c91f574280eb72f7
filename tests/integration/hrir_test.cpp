// Integration: the hrir (binaural) module through `rackd render`: impulses per
// 7.1 channel come out as the HRIR pairs of their speakers at frame 0, a 90
// degree head turn over OSC-timed events makes no click, every file of the bad
// SOFA corpus either loads or fails the render with a message naming the file
// (--keep-going: the slot in "setup-error", silent), and the render real-time
// factor of binaural-7.1.
#include <gtest/gtest.h>
#include <sndfile.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <random>
#include <sstream>

#include "modules/hrir/hrtf.hpp"
#include "tests/integration/harness.hpp"
#ifdef RTCOUNT_LIB
#include "tests/rtcount/rtcount_report.hpp"
#endif

#ifndef RACKD_SHARED_DIR
#define RACKD_SHARED_DIR "/work/shared"
#endif

namespace rackd::test {
namespace {

constexpr const char* kDefaultSofa = "/usr/share/libmysofa/default.sofa";
constexpr int kFloatWav = SF_FORMAT_WAV | SF_FORMAT_FLOAT;

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// patches/binaural-7.1.toml as shipped, minus its eq: the module blocks up to
// the eq's, and the output taken from the binaural renderer.
std::string binaural_without_eq(const std::string& dir) {
  std::string text = read_text(source("patches/binaural-7.1.toml"));
  const size_t eq = text.find("type = \"eq\"");
  const size_t block = text.rfind("[[module]]", eq);
  EXPECT_NE(eq, std::string::npos);
  EXPECT_NE(block, std::string::npos);
  text = text.substr(0, block) + "[output]\nfrom = \"binaural\"\n";
  const std::string path = dir + "/binaural-7.1-no-eq.toml";
  std::ofstream(path) << text;
  return path;
}

// The same patch with `sofa = "default"` replaced.
std::string with_sofa(const std::string& patch, const std::string& sofa, const std::string& out) {
  std::string text = read_text(patch);
  const std::string key = "sofa = \"default\"";
  const size_t at = text.find(key);
  EXPECT_NE(at, std::string::npos);
  text.replace(at, key.size(), "sofa = \"" + sofa + "\"");
  std::ofstream(out) << text;
  return out;
}

Result render(const std::string& patch, const std::string& in, const std::string& out,
              const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv = {bin("rackd"), "render", patch, "--in", in, "--out", out};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return run(argv);
}

Audio silence(size_t frames, int channels) {
  Audio a;
  a.format = kFloatWav;
  a.ch.assign(channels, std::vector<float>(frames, 0.0f));
  return a;
}

float max_step(const std::vector<float>& x, size_t from, size_t to) {
  float m = 0;
  for (size_t n = std::max<size_t>(from, 1); n < to; ++n) m = std::max(m, std::fabs(x[n] - x[n - 1]));
  return m;
}

TEST(Hrir, ImpulsePerChannelOfBinaural71IsTheHrirPairOfItsSpeakerAtFrameZero) {
  const std::string d = temp_dir();
  const std::string patch = binaural_without_eq(d);
  const auto speakers = hrir::layout("7.1");
  const hrir::HrtfSet ref = hrir::HrtfSet::load_sofa(kDefaultSofa, 48000);
  const size_t spacing = 2048;
  ASSERT_LT(ref.filter_frames(), spacing - 64);
  const float amp = 0.25f;
  Audio in = silence(spacing * 9, 8);
  auto at = [&](size_t c) { return c * spacing + 37 * c; };  // different offsets in the block
  for (size_t c = 0; c < 8; ++c) in.ch[c][at(c)] = amp;
  write_audio(d + "/imp.wav", in);
  Result r = render(patch, d + "/imp.wav", d + "/out.wav");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json_string(r.out, "binaural", "state"), "running") << r.out;
  const Audio out = read_audio(d + "/out.wav");
  ASSERT_EQ(out.ch.size(), 2u);
  ASSERT_EQ(out.frames(), in.frames());

  for (size_t c = 0; c < 8; ++c) {
    SCOPED_TRACE(speakers[c].name);
    std::vector<float> want[2];
    if (speakers[c].lfe) {
      want[0] = want[1] = {1.0f};  // LFE: no HRTF, to both ears
    } else {
      const hrir::HrirPair p = ref.filter_for(speakers[c].dir);
      want[0] = p.left;
      want[1] = p.right;
    }
    for (int e = 0; e < 2; ++e) {
      float peak = 0, err = 0;
      for (size_t n = c * spacing; n < (c + 1) * spacing; ++n) {
        const float w = n >= at(c) && n - at(c) < want[e].size() ? amp * want[e][n - at(c)] : 0.0f;
        peak = std::max(peak, std::fabs(w));
        err = std::max(err, std::fabs(out.ch[e][n] - w));
      }
      EXPECT_GT(peak, 0.005f) << "ear " << e;
      EXPECT_LT(err, 1e-5f) << "ear " << e << ", peak " << peak;
    }
  }
}

// A steady 997 Hz sine on every speaker but LFE, through binaural-7.1 as shipped
// (eq included); `0.5 /binaural/yaw 90` (or the same as ypr) turns the head.
constexpr size_t kLate = 48000 * 5 + 24000, kEnd = 48000 * 6;

struct Turned {
  Audio out;
  float steady = 0, transition = 0;
};

Turned render_turn(const std::string& d, const std::string& event) {
  // Long enough that the builder (tens of ms per set, hrtf.cpp resamples every
  // filter_for) finishes well before the end even when the render runs 40x
  // faster than real time on a loaded machine.
  Audio in = silence(48000 * 6, 8);
  for (size_t c = 0; c < 8; ++c) {
    if (c == 3) continue;
    for (size_t n = 0; n < in.frames(); ++n)
      in.ch[c][n] = 0.1f * static_cast<float>(std::sin(2 * std::numbers::pi * 997.0 * n / 48000 + c));
  }
  write_audio(d + "/sine.wav", in);
  std::ofstream(d + "/events.txt") << "# head tracker\n" << event << "\n";
  Result r = render(source("patches/binaural-7.1.toml"), d + "/sine.wav", d + "/turned.wav",
                    {"--events", d + "/events.txt"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json_string(r.out, "binaural", "state"), "running") << r.out;
  Turned t;
  t.out = read_audio(d + "/turned.wav");
  EXPECT_EQ(t.out.frames(), in.frames());
  if (t.out.frames() != in.frames()) return t;
  for (int e = 0; e < 2; ++e) {
    // Steady: before the turn (after the filters' start-up) and in the last
    // half second (the new filters are in after a build and a 20 ms fade).
    t.steady = std::max({t.steady, max_step(t.out.ch[e], 4800, 24000), max_step(t.out.ch[e], kLate, kEnd)});
    t.transition = std::max(t.transition, max_step(t.out.ch[e], 24000, kLate));
  }
  return t;
}

double rms(const std::vector<float>& x, size_t from, size_t to) {
  double s = 0;
  for (size_t n = from; n < to; ++n) s += double(x[n]) * x[n];
  return std::sqrt(s / double(to - from));
}

TEST(Hrir, NinetyDegreeYawJumpOverEventsMakesNoClick) {
  const std::string d = temp_dir();
  const Turned yaw = render_turn(d, "0.5 /binaural/yaw 90");
  ASSERT_EQ(yaw.out.ch.size(), 2u);
  EXPECT_GT(yaw.steady, 0.01f);
  EXPECT_LE(yaw.transition, yaw.steady * 1.01f) << "steady " << yaw.steady << ", turn " << yaw.transition;
  std::printf("  largest step: steady %.5f, during the turn %.5f\n", yaw.steady, yaw.transition);
  // The head did turn: the ears' levels changed.
  const double before = rms(yaw.out.ch[0], 4800, 24000) / rms(yaw.out.ch[1], 4800, 24000);
  const double after = rms(yaw.out.ch[0], kLate, kEnd) / rms(yaw.out.ch[1], kLate, kEnd);
  EXPECT_GT(std::fabs(std::log(after / before)), std::log(1.1)) << before << " " << after;

  // ypr addresses the same orientation; once the fade is over the output is
  // the new filters over the whole (kept) history, whenever the swap happened.
  const Turned ypr = render_turn(d, "0.5 /binaural/ypr 90 0 0");
  ASSERT_EQ(ypr.out.ch.size(), 2u);
  for (int e = 0; e < 2; ++e)
    for (size_t n = kLate; n < kEnd; ++n) ASSERT_NEAR(ypr.out.ch[e][n], yaw.out.ch[e][n], 1e-5f) << n;
}

// Each file of the crash-regression corpus: rackd never crashes. A file the
// loader accepts renders normally; one it refuses fails the render (exit 1,
// the module and the file named, a file already at --out left as it was),
// and with --keep-going renders a full-length output with the slot in
// "setup-error" (silent) and an error naming the file.
TEST(Hrir, EveryBadSofaFileLoadsOrFailsTheRenderNamingTheFile) {
  const std::string d = temp_dir();
  const std::string base = binaural_without_eq(d);
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(std::string(RACKD_SHARED_DIR) + "/sofa/bad"))
    files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty());
  Audio in = silence(12000 + 5, 8);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-0.2f, 0.2f);
  for (auto& c : in.ch)
    for (auto& x : c) x = u(rng);
  write_audio(d + "/in.wav", in);
  int refused = 0;
  for (const std::string& file : files) {
    SCOPED_TRACE(file);
    bool loads = true;
    try {
      hrir::HrtfSet::load_sofa(file, 48000);
    } catch (const std::runtime_error&) {
      loads = false;
    }
    const std::string patch = with_sofa(base, file, d + "/bad.toml");
    std::ofstream(d + "/out.wav") << "before";
    Result strict = render(patch, d + "/in.wav", d + "/out.wav");
    if (loads) {
      ASSERT_EQ(strict.status, 0) << strict.err;
      EXPECT_EQ(read_audio(d + "/out.wav").frames(), in.frames());
      EXPECT_EQ(json_string(strict.out, "binaural", "state"), "running") << strict.out;
      continue;
    }
    ASSERT_EQ(strict.status, 1) << strict.err;
    EXPECT_NE(strict.err.find("rackd render: module \"binaural\" failed setup: " + file + ": "), std::string::npos)
        << strict.err;
    EXPECT_EQ(read_text(d + "/out.wav"), "before");
    Result r = render(patch, d + "/in.wav", d + "/out.wav", {"--keep-going"});
    ASSERT_EQ(r.status, 0) << r.err;
    const Audio out = read_audio(d + "/out.wav");
    EXPECT_EQ(out.frames(), in.frames());
    ++refused;
    EXPECT_EQ(json_string(r.out, "binaural", "state"), "setup-error") << r.out;
    EXPECT_NE(r.err.find(file + ": "), std::string::npos) << r.err;
    EXPECT_NE(json_string(r.out, "binaural", "error").find(std::filesystem::path(file).filename().string()),
              std::string::npos)
        << r.out;
    for (const auto& c : out.ch)
      for (float x : c) ASSERT_EQ(x, 0.0f);
  }
  std::printf("  %d of %zu bad files refused, the others load valid data\n", refused, files.size());
  EXPECT_GT(refused, 0);
}

TEST(Hrir, UpstreamWithTheWrongChannelCountIsRefusedAtLoad) {
  const std::string d = temp_dir();
  std::string text = read_text(binaural_without_eq(d));
  const size_t at = text.find("channels = 8");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 12, "channels = 2");
  std::ofstream(d + "/p.toml") << text;
  write_audio(d + "/in.wav", silence(4800, 2));
  Result r = render(d + "/p.toml", d + "/in.wav", d + "/out.wav");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("layout 7.1 takes 8 input channels; its input has 2"), std::string::npos) << r.err;
}

TEST(Hrir, StereoPatchRenders) {
  const std::string d = temp_dir();
  Audio in = silence(48000 / 2, 2);
  in.ch[0][100] = 0.5f;
  write_audio(d + "/in.wav", in);
  Result r = render(source("patches/binaural-stereo.toml"), d + "/in.wav", d + "/out.wav");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json_string(r.out, "binaural", "state"), "running") << r.out;
  EXPECT_EQ(json_string(r.out, "eq", "state"), "running") << r.out;
  const Audio out = read_audio(d + "/out.wav");
  EXPECT_EQ(out.frames(), in.frames());
  EXPECT_GT(rms(out.ch[0], 0, out.frames()), rms(out.ch[1], 0, out.frames()));  // FL is louder on the left
}

#ifdef RTCOUNT_LIB
// librtcount.so preloaded: the hrir audio thread allocates nothing and makes no
// system call but futex while the head turns (each turn a filter swap), the
// bypass toggles and gains change.
TEST(Hrir, AudioThreadStaysRealtimeCleanWhileTheHeadTurns) {
  const std::string d = temp_dir();
  const std::string counts = d + "/rtcount";
  std::filesystem::create_directories(counts);
  Audio in = silence(48000, 8);
  for (size_t n = 0; n < in.frames(); ++n) in.ch[0][n] = 0.1f * static_cast<float>(std::sin(0.05 * n));
  write_audio(d + "/in.wav", in);
  std::ofstream(d + "/ev.txt") << "0.1 /binaural/yaw 90\n0.3 /binaural/ypr -45 10 5\n0.5 /binaural/bypass 1\n"
                                  "0.6 /binaural/bypass 0\n0.7 /binaural/channel/1/gain_db -6\n"
                                  "0.8 /binaural/lfe_gain_db -3\n0.9 /binaural/roll 20\n";
  Result r = run({bin("rackd"), "render", source("patches/binaural-7.1.toml"), "--in", d + "/in.wav", "--out",
                  d + "/out.wav", "--events", d + "/ev.txt"},
                 std::chrono::seconds(120), {std::string("LD_PRELOAD=") + RTCOUNT_LIB, "RACKD_RTCOUNT_DIR=" + counts});
  ASSERT_EQ(r.status, 0) << r.err;
  bool seen = false;
  for (const auto& p : rtcount::read_reports(counts)) {
    if (p.comm != "rackd-hrir") continue;
    for (const auto& t : p.threads) {
      if (t.sections == 0) continue;
      seen = true;
      EXPECT_TRUE(t.syscalls_counted()) << t.seccomp;
      EXPECT_EQ(t.allocs, 0u);
      EXPECT_EQ(t.frees, 0u);
      EXPECT_EQ(t.syscalls, 0u);
    }
  }
  EXPECT_TRUE(seen) << rtcount::summary(rtcount::read_reports(counts), true);
}
#endif

// A figure, not an assertion: 10 s of 7.1 noise through binaural-7.1.
TEST(Hrir, RenderRealTimeFactorOfBinaural71) {
  const std::string d = temp_dir();
  Audio in = silence(48000 * 10, 8);
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-0.3f, 0.3f);
  for (auto& c : in.ch)
    for (auto& x : c) x = u(rng);
  write_audio(d + "/noise.wav", in);
  const auto t0 = std::chrono::steady_clock::now();
  Result r = render(source("patches/binaural-7.1.toml"), d + "/noise.wav", d + "/out.wav");
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json_number(r.out, "binaural", "late"), 0) << r.out;
  const double rtf = json_number(r.out, "", "realtime_factor");
  std::printf("  binaural-7.1, 10 s of 7.1 noise: render real-time factor %.1f (server), %.1f (wall, "
              "process start to exit)\n", rtf, 10.0 / wall);
  RecordProperty("realtime_factor", std::to_string(rtf));
  RecordProperty("realtime_factor_wall", std::to_string(10.0 / wall));
}

}  // namespace
}  // namespace rackd::test
