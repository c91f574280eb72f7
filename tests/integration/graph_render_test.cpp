// Integration: live graph changes rendered offline (`rackd render --events`
// with add, remove, connect, disconnect, load lines). Each change takes effect
// in the block holding its frame, so the output is deterministic and can be
// compared with a render without the changes and with references built from
// the same input (sums, gains, fade curves).
#include <gtest/gtest.h>
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

#include "tests/integration/harness.hpp"

namespace rackd::test {
namespace {

constexpr int kRate = 48000;
constexpr int kBlock = 128;
constexpr int kFadeMs = 20;
constexpr int kFadeFrames = kRate * kFadeMs / 1000;  // 960

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// Two channels: `left` and `right`.
void write_stereo(const std::string& path, std::vector<float> left, std::vector<float> right) {
  Audio a;
  a.rate = kRate;
  a.ch = {std::move(left), std::move(right)};
  write_audio(path, a);
}

std::vector<float> sine(std::size_t frames, double amp, double hz) {
  std::vector<float> x(frames);
  for (std::size_t i = 0; i < frames; ++i) x[i] = static_cast<float>(amp * std::sin(2 * M_PI * hz * i / kRate));
  return x;
}

// Branch A: noise with an impulse at frame kImpulse on the left; branch B: a
// sine on the right. The edits only ever touch branch B.
constexpr std::size_t kFrames = kRate * 2;
constexpr std::size_t kImpulse = 30011;

struct Files {
  std::string dir, patch;
};

Files make_files(double sine_amp, const std::string& outputs = R"(["pa", "b"])") {
  Files f;
  f.dir = temp_dir();
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> d(0.01f, 0.1f);
  std::vector<float> noise(kFrames), zero(kFrames, 0.0f);
  for (auto& x : noise) x = (rng() & 1 ? 1.0f : -1.0f) * d(rng);  // never exactly 0 (no -0.0 either)
  noise[kImpulse] = 0.9f;
  write_stereo(f.dir + "/a.wav", noise, zero);
  write_stereo(f.dir + "/b.wav", zero, sine(kFrames, sine_amp, 441.0));
  f.patch = f.dir + "/base.toml";
  write(f.patch, "[server]\nrate = 48000\nblock = 128\nfade_ms = " + std::to_string(kFadeMs) +
                     "\n\n[[module]]\nname = \"a\"\ntype = \"capture\"\nsource = \"file\"\nfile = \"a.wav\"\n"
                     "\n[[module]]\nname = \"pa\"\ntype = \"passthrough\"\ninput = \"a\"\n"
                     "\n[[module]]\nname = \"b\"\ntype = \"capture\"\nsource = \"file\"\nfile = \"b.wav\"\n"
                     "\n[output]\nfrom = " + outputs + "\n");
  return f;
}

Result render(const Files& f, const std::string& out, const std::string& events = "") {
  std::vector<std::string> argv = {bin("rackd"), "render", f.patch, "--out", out, "--duration", "2"};
  if (!events.empty()) {
    write(f.dir + "/events.txt", events);
    argv.push_back("--events");
    argv.push_back(f.dir + "/events.txt");
  }
  return run(argv);
}

// The block an event at `seconds` takes effect in.
std::size_t block_of(double seconds) { return static_cast<std::size_t>(std::llround(seconds * kRate)) / kBlock; }

// Gain of an edge that starts moving from `from` toward `to` in block k0, at
// every frame (the engine's per-block linear ramp, in float as it computes it).
std::vector<float> ramp(std::size_t frames, std::size_t k0, float from, float to) {
  std::vector<float> g(frames);
  // Every change of gain takes the fade time, whatever its size.
  const float d = std::fabs(to - from) * (static_cast<float>(kBlock) / static_cast<float>(kFadeFrames));
  float g0 = from;
  for (std::size_t k = 0; k * kBlock < frames; ++k) {
    float g1 = g0;
    if (k >= k0) g1 = g0 < to ? std::min(g0 + d, to) : std::max(g0 - d, to);
    const float dg = (g1 - g0) * (1.0f / kBlock);
    for (std::size_t i = 0; i < kBlock && k * kBlock + i < frames; ++i)
      g[k * kBlock + i] = (g0 == g1) ? g0 : g0 + dg * static_cast<float>(i + 1);
    g0 = g1;
  }
  return g;
}

TEST(GraphRender, UntouchedBranchIsBitExactAndEditsFollowTheReference) {
  const Files f = make_files(0.2);
  const Result base = render(f, f.dir + "/base.wav");
  ASSERT_EQ(base.status, 0) << base.err;
  const std::string events =
      "0.20 add pb passthrough input=b\n"
      "0.30 connect pb output\n"
      "0.50 disconnect b output\n"
      "0.70 add m passthrough input=[\"b\",{from=\"pb\",gain_db=-6.0}]\n"
      "0.80 connect m output\n"
      "1.00 disconnect pb output\n"
      "1.20 remove pb --rewire   # m takes pb's input, b, which it has already: pb's edge just fades out\n"
      "1.50 connect b output\n";
  const Result edited = render(f, f.dir + "/edited.wav", events);
  ASSERT_EQ(edited.status, 0) << edited.err;
  EXPECT_EQ(edited.err.find("the protocol does not list"), std::string::npos) << edited.err;
  const Audio x = read_audio(f.dir + "/base.wav");
  const Audio y = read_audio(f.dir + "/edited.wav");
  ASSERT_EQ(x.frames(), kFrames);
  ASSERT_EQ(y.frames(), kFrames);

  // Branch A: bit for bit, the impulse where it was.
  EXPECT_EQ(0, std::memcmp(x.ch[0].data(), y.ch[0].data(), kFrames * sizeof(float)));
  EXPECT_EQ(std::max_element(y.ch[0].begin(), y.ch[0].end()) - y.ch[0].begin(), static_cast<long>(kImpulse));

  // Branch B against its reference: s is b alone (the unedited right channel).
  const std::vector<float>& s = x.ch[1];
  const std::vector<float> g_b_out =
      [&] {
        auto down = ramp(kFrames, block_of(0.50), 1.0f, 0.0f);
        auto up = ramp(kFrames, block_of(1.50), 0.0f, 1.0f);
        for (std::size_t i = block_of(1.50) * kBlock; i < kFrames; ++i) down[i] = up[i];
        return down;
      }();
  const std::vector<float> g_pb_up = ramp(kFrames, block_of(0.30), 0.0f, 1.0f);
  const std::vector<float> g_pb_down = ramp(kFrames, block_of(1.00), 1.0f, 0.0f);
  const std::vector<float> g_m = ramp(kFrames, block_of(0.80), 0.0f, 1.0f);
  const float half = static_cast<float>(std::pow(10.0, -6.0 / 20.0));
  const std::vector<float> g_m_pb = ramp(kFrames, block_of(1.20), half, 0.0f);
  double worst = 0;
  std::size_t worst_at = 0;
  for (std::size_t i = 0; i < kFrames; ++i) {
    const float pb = i < block_of(1.00) * kBlock ? g_pb_up[i] : g_pb_down[i];
    // m's input: b + pb at -6 dB, until pb leaves; its rewire adds b, which
    // is there already, so m keeps b alone (pb's edge fades out).
    const float m_in = 1.0f + (i < block_of(1.20) * kBlock ? half : g_m_pb[i]);
    const double want = s[i] * (g_b_out[i] + pb + g_m[i] * m_in);
    const double err = std::fabs(y.ch[1][i] - want);
    if (err > worst) {
      worst = err;
      worst_at = i;
    }
  }
  EXPECT_LT(worst, 2e-6) << "at frame " << worst_at << " (block " << worst_at / kBlock << ")";
  EXPECT_EQ(json_number(edited.out, "pa", "late"), 0);
  EXPECT_EQ(json_number(edited.out, "pa", "replaced"), 0);
  EXPECT_EQ(json_number(edited.out, "m", "replaced"), 0);
  EXPECT_EQ(json_number(edited.out, "pb", "late"), -1) << "pb was removed";
}

TEST(GraphRender, ConnectAndDisconnectOfAFullScaleSineDoNotClick) {
  const Files f = make_files(1.0, R"(["pa"])");
  const Result r = render(f, f.dir + "/out.wav", "0.25 connect b output\n0.75 disconnect b output\n"
                                                 "1.0 connect b output --fade 5\n1.5 disconnect b output --fade 5\n");
  ASSERT_EQ(r.status, 0) << r.err;
  const Audio y = read_audio(f.dir + "/out.wav");
  const std::vector<float> s = sine(kFrames, 1.0, 441.0);
  float own = 0, step = 0;
  for (std::size_t i = 1; i < kFrames; ++i) {
    own = std::max(own, std::fabs(s[i] - s[i - 1]));
    step = std::max(step, std::fabs(y.ch[1][i] - y.ch[1][i - 1]));
  }
  EXPECT_GT(step, 0.5f * own) << "the sine was heard";
  EXPECT_LE(step, own * 1.0001f) << "a click: a step larger than the sine's own";
  // Off where it was disconnected, on where connected.
  EXPECT_EQ(y.ch[1][static_cast<std::size_t>(0.2 * kRate)], 0.0f);
  EXPECT_GT(std::fabs(y.ch[1][static_cast<std::size_t>(0.5 * kRate) + 25]), 0.5f);
  EXPECT_EQ(y.ch[1][static_cast<std::size_t>(0.9 * kRate)], 0.0f);
}

TEST(GraphRender, LoadAppliesOnlyTheDifference) {
  const Files f = make_files(0.2);
  // Same a, pa and b; pa's gain changes (a parameter: same process), a new
  // module joins and b is no longer mixed to the output.
  write(f.dir + "/next.toml",
        "[server]\nrate = 48000\nblock = 128\n"
        "\n[[module]]\nname = \"a\"\ntype = \"capture\"\nsource = \"file\"\nfile = \"a.wav\"\n"
        "\n[[module]]\nname = \"pa\"\ntype = \"passthrough\"\ninput = \"a\"\ngain_db = -6.0\n"
        "\n[[module]]\nname = \"b\"\ntype = \"capture\"\nsource = \"file\"\nfile = \"b.wav\"\n"
        "\n[[module]]\nname = \"late\"\ntype = \"passthrough\"\ninput = \"b\"\n"
        "\n[output]\nfrom = [\"pa\", \"late\"]\n");
  const Result r = render(f, f.dir + "/out.wav", "0.5 load next.toml\n");
  ASSERT_EQ(r.status, 0) << r.err;
  const Audio y = read_audio(f.dir + "/out.wav");
  const Audio a = read_audio(f.dir + "/a.wav");
  const Audio b = read_audio(f.dir + "/b.wav");
  // Before: untouched. Long after: pa at -6 dB, b through "late" at unity.
  for (std::size_t i = 0; i < block_of(0.5) * kBlock; ++i) ASSERT_EQ(y.ch[0][i], a.ch[0][i]) << i;
  for (std::size_t i = static_cast<std::size_t>(0.8 * kRate); i < kFrames; i += 97) {
    ASSERT_NEAR(y.ch[0][i], a.ch[0][i] * 0.5012f, 1e-4) << i;
    ASSERT_NEAR(y.ch[1][i], b.ch[1][i], 1e-6) << i;
  }
  // Kept modules kept their process.
  EXPECT_EQ(json_number(r.out, "pa", "restarts"), 0);
  EXPECT_GE(json_number(r.out, "late", "replaced"), 0);
}

TEST(GraphRender, ARefusedChangeFailsTheRenderWithFileAndLine) {
  const Files f = make_files(0.2);
  struct Case {
    std::string line, needle;
  };
  const Case cases[] = {
      {"0.1 add x nosuchtype", "unknown type \"nosuchtype\""},
      {"0.1 add pa passthrough input=a", "module \"pa\" exists already"},
      {"0.1 connect pa a", "module \"a\" is a source and takes no input"},
      {"0.1 add p1 passthrough input=pa\n0.2 connect p1 pa", "inputs form a cycle"},
      {"0.1 remove nobody", "no module \"nobody\""},
      {"0.1 remove a", "module \"a\" is the input of \"pa\""},
      {"0.1 add q passthrough input=[", "add: "},
      {"0.1 load missing.toml", "missing.toml: cannot read"},
  };
  for (const Case& c : cases) {
    const Result r = render(f, f.dir + "/out.wav", c.line + "\n");
    EXPECT_EQ(r.status, 1) << c.line;
    EXPECT_NE(r.err.find("events.txt:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << c.line << "\n" << r.err;
    EXPECT_FALSE(std::ifstream(f.dir + "/out.wav").good()) << "no output for a failed render";
  }
  // A channel mismatch: a mono source summed with a stereo one.
  const Result r = render(f, f.dir + "/out.wav",
                          "0.1 add mono capture source=tone channels=1\n0.2 connect mono pa\n");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("summed inputs must agree"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace rackd::test
