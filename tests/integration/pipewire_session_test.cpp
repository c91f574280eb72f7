// The headless PipeWire fixture checked on its own, with a pw-loopback virtual
// 7.1 sink standing in for rackd: sinks named and mapped as asked, the default
// set, impulses played into the stand-in arriving on the right sides of the
// headphones' monitor recording, a restart bringing the sinks and the default
// back, and nothing leaking into the test process's environment. Also the
// signal analysis (signal_match.hpp) on known signals. Prints the latencies
// that pipewire_session.hpp's comment records.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <random>
#include <string>
#include <thread>

#include "tests/integration/pipewire_session.hpp"
#include "tests/integration/signal_match.hpp"

namespace rackd::test {
namespace {
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

const SinkInfo* find(const std::vector<SinkInfo>& v, const std::string& name) {
  for (const auto& s : v)
    if (s.name == name) return &s;
  return nullptr;
}

// pw-loopback as an 8-channel virtual sink playing into the default sink: what
// rackd's desktop sink looks like from outside, minus the binaural part.
std::unique_ptr<Process> stand_in(const PipeWireSession& pw) {
  return pw.start({"/usr/bin/pw-loopback", "-n", "stand-in", "-c", "8", "-m", "[FL FR FC LFE RL RR SL SR]",
                   "--capture-props=media.class=Audio/Sink node.name=stand-in node.description=Stand-in",
                   "--playback-props=node.name=stand-in-out"});
}

TEST(SignalMatch, FindsTheOffsetOfAShiftedNoisyCopy) {
  Audio ref = impulse_per_channel(2, 0.5, 0.3, 0.5);
  Audio rec;
  const long shift = 12345;
  std::mt19937 rng(1);
  std::normal_distribution<float> noise(0.0f, 1e-4f);
  rec.ch.assign(2, std::vector<float>(ref.frames() + 30000, 0.0f));
  for (size_t c = 0; c < 2; ++c)
    for (size_t i = 0; i < rec.frames(); ++i)
      rec.ch[c][i] = noise(rng) + (i >= size_t(shift) && i - shift < ref.frames() ? 0.5f * ref.ch[c][i - shift] : 0.0f);
  EXPECT_EQ(find_offset(rec, ref), shift);
  const WindowMatch m = compare_window(rec, ref, shift, 0, ref.frames());
  EXPECT_GT(m.correlation, 0.99);
  EXPECT_NEAR(m.level_db, -6.02, 0.1);
  Audio t = tones(1, {0}, {1000.0}, 0.25f, 1.0);
  EXPECT_NEAR(tone_db(t, 0, 4800, 43200, 1000.0), 20 * std::log10(0.25), 0.1);
  EXPECT_NEAR(max_step(t, 4800, 43200), 0.25 * 2 * std::sin(M_PI * 1000 / 48000), 1e-3);
}

TEST(PipeWireSession, StartsNamedNullSinksAndKeepsItsEnvironmentToItsChildren) {
  const char* before = std::getenv("XDG_RUNTIME_DIR");
  const std::string before_s = before ? before : "";
  const auto t0 = Clock::now();
  PipeWireSession pw;
  ASSERT_TRUE(pw.ready()) << pw.log();
  const double started_s = seconds_since(t0);
  ASSERT_TRUE(pw.add_null_sink("hp", "HD650-Headphones"));
  const double default_s = seconds_since(t0);
  ASSERT_TRUE(pw.add_null_sink("spk", "Speakers"));
  ASSERT_TRUE(pw.add_null_sink("s8", "Eight Channels", 8));
  std::printf("session ready after %.2f s, first sink the default after %.2f s\n", started_s, default_s);

  const auto sinks = pw.sinks();
  const SinkInfo* hp = find(sinks, "hp");
  const SinkInfo* s8 = find(sinks, "s8");
  ASSERT_TRUE(hp && find(sinks, "spk") && s8) << pw.run({"/usr/bin/pactl", "list", "sinks"}).out;
  EXPECT_EQ(hp->description, "HD650-Headphones");
  EXPECT_EQ(hp->channels, 2);
  EXPECT_EQ(hp->channel_map, "front-left,front-right");
  EXPECT_EQ(s8->description, "Eight Channels");
  EXPECT_EQ(s8->channels, 8);
  EXPECT_EQ(s8->channel_map, kPactlMap71);
  EXPECT_EQ(pw.default_sink(), "hp");
  EXPECT_TRUE(pw.set_default_sink("spk"));
  EXPECT_EQ(pw.default_sink(), "spk");

  const char* after = std::getenv("XDG_RUNTIME_DIR");
  EXPECT_EQ(before_s, after ? after : "") << "the fixture leaked its environment into the test process";
  EXPECT_EQ(pw.run({"/bin/sh", "-c", "echo $XDG_RUNTIME_DIR"}).out, pw.runtime_dir() + "\n");
}

// The surround channels keep their places: played into an 8-channel null sink
// and recorded from its monitor with the same map, impulse c is on channel c.
// Within 1024 frames of its place (the impulses are 12000 apart): pw-play or
// pw-record now and then loses a quantum on this VM (a CI dry run: every
// impulse from channel 2 on came 256 frames early).
TEST(PipeWireSession, SevenOneFileKeepsItsChannelOrderThroughPlayAndRecord) {
  PipeWireSession pw;
  ASSERT_TRUE(pw.ready()) << pw.log();
  ASSERT_TRUE(pw.add_null_sink("s8", "Eight Channels", 8));
  const std::string d = temp_dir();
  const Audio in = impulse_per_channel(8, 0.5, 0.25, 0.5);
  write_audio(d + "/in.wav", in);
  auto rec = pw.record("s8", d + "/rec.wav", 8);
  ASSERT_TRUE(rec->linked()) << pw.links();
  EXPECT_EQ(pw.play_and_wait(d + "/in.wav", "s8"), 0);
  std::this_thread::sleep_for(300ms);
  const Audio out = rec->stop();
  ASSERT_EQ(out.ch.size(), 8u);
  const long first = first_above(out, 0.1f);
  ASSERT_GE(first, 0);
  for (size_t c = 0; c < 8; ++c) {
    const long at = first_above(Audio{48000, 0, {out.ch[c]}}, 0.1f);
    EXPECT_NEAR(at - first, long(c) * 12000, 1024) << "channel " << c;
  }
}

// Impulses into the stand-in virtual sink come out of the headphones' monitor
// on the sides PipeWire's downmix puts them, and the latencies are printed.
TEST(PipeWireSession, StandInVirtualSinkCarriesImpulsesToTheHeadphoneMonitor) {
  PipeWireSession pw;
  ASSERT_TRUE(pw.ready()) << pw.log();
  ASSERT_TRUE(pw.add_null_sink("hp", "HD650-Headphones"));
  ASSERT_TRUE(pw.add_null_sink("spk", "Speakers"));
  const std::string d = temp_dir();
  const Audio in = impulse_per_channel(8, 1.0, 0.5, 1.0);
  write_audio(d + "/in.wav", in);

  const auto t0 = Clock::now();
  auto loop = stand_in(pw);
  ASSERT_TRUE(pw.wait_for_sink("stand-in", 10s)) << loop->err();
  const double sink_s = seconds_since(t0);
  bool linked = false;
  for (int i = 0; i < 250 && !linked; ++i) {
    linked = pw.links().find("stand-in-out:output_FL\n  |-> hp:playback_FL") != std::string::npos;
    if (!linked) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(linked) << pw.links();
  const double link_s = seconds_since(t0);
  const auto listed = pw.sinks();
  const SinkInfo* s = find(listed, "stand-in");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->channels, 8);
  EXPECT_EQ(s->channel_map, kPactlMap71) << pw.run({"/usr/bin/pactl", "list", "sinks"}).out;

  // PipeWire's downmix: FL, RL, SL to the left, FR, RR, SR to the right, FC and
  // LFE to both; every impulse 0.5 s after the one before.
  const int left[] = {1, 0, 1, 1, 1, 0, 1, 0}, right[] = {0, 1, 1, 1, 0, 1, 0, 1};
  // Each impulse is looked for within 6000 frames (1/4 of the spacing) of its
  // place: pw-loopback (the stand-in, not rackd) now and then loses or adds a
  // buffer on this VM. An impulse missing from both sides is such a loss, not
  // a routing error (that puts it on the wrong side), and the file is played
  // again, up to three times; what this test checks is the routing of each
  // channel.
  float peaks[8][2] = {};
  int attempt = 0;
  for (bool lost = true; lost && attempt < 3;) {
    ++attempt;
    auto rec = pw.record("hp", d + "/rec" + std::to_string(attempt) + ".wav");
    ASSERT_TRUE(rec->linked()) << pw.links();
    const double play_at_s = std::chrono::duration<double>(Clock::now() - rec->linked_at()).count();
    EXPECT_EQ(pw.play_and_wait(d + "/in.wav", "stand-in"), 0);
    std::this_thread::sleep_for(500ms);
    const Audio out = rec->stop();
    ASSERT_EQ(out.ch.size(), 2u);
    const long first = first_above(out, 1e-6f);
    ASSERT_GE(first, 0) << "nothing arrived";
    const double lead_s = double(first) / 48000 - 1.0;
    std::printf("stand-in sink listed after %.3f s, linked to hp after %.3f s; "
                "file start reached the monitor %.3f s after pw-play started (recording %zu frames, attempt %d)\n",
                sink_s, link_s, lead_s - play_at_s, out.frames(), attempt);
    auto peak = [&](int side, size_t at) {
      float m = 0.0f;
      for (size_t i = at > 6000 ? at - 6000 : 0; i < std::min(out.frames(), at + 6000); ++i)
        m = std::max(m, std::fabs(out.ch[side][i]));
      return m;
    };
    lost = false;
    for (int c = 0; c < 8; ++c) {
      const size_t at = size_t(first) + size_t(c) * 24000;
      ASSERT_LT(at, out.frames());
      peaks[c][0] = peak(0, at);
      peaks[c][1] = peak(1, at);
      if (peaks[c][0] <= 0.05f && peaks[c][1] <= 0.05f) {
        std::printf("attempt %d: impulse %d missing from both sides (a buffer the stand-in lost)\n", attempt, c);
        lost = true;
      }
    }
  }
  for (int c = 0; c < 8; ++c) {
    EXPECT_EQ(peaks[c][0] > 0.05f, bool(left[c])) << "channel " << c << " left " << peaks[c][0];
    EXPECT_EQ(peaks[c][1] > 0.05f, bool(right[c])) << "channel " << c << " right " << peaks[c][1];
  }
}

// A restart of the daemons brings the null sinks and the chosen default back;
// a client (the stand-in) dies with its server and links again when started
// again.
TEST(PipeWireSession, RestartBringsTheSinksAndTheDefaultBack) {
  PipeWireSession pw;
  ASSERT_TRUE(pw.ready()) << pw.log();
  ASSERT_TRUE(pw.add_null_sink("hp", "HD650-Headphones"));
  ASSERT_TRUE(pw.add_null_sink("spk", "Speakers"));
  ASSERT_TRUE(pw.set_default_sink("spk"));
  auto loop = stand_in(pw);
  ASSERT_TRUE(pw.wait_for_sink("stand-in", 10s));
  std::vector<double> figures;
  for (int i = 0; i < 3; ++i) {
    const double s = pw.restart_pipewire(i != 1);
    ASSERT_GT(s, 0) << pw.log();
    figures.push_back(s);
    EXPECT_EQ(pw.default_sink(), "spk");
    EXPECT_TRUE(find(pw.sinks(), "hp") && find(pw.sinks(), "spk"));
  }
  std::printf("restart (SIGKILL, SIGTERM, SIGKILL) to sinks and default back: %.2f %.2f %.2f s\n", figures[0],
              figures[1], figures[2]);
  EXPECT_NE(loop->wait(5s), -1) << "pw-loopback outlived its server";
  auto again = stand_in(pw);
  EXPECT_TRUE(pw.wait_for_sink("stand-in", 10s));
}

}  // namespace
}  // namespace rackd::test
