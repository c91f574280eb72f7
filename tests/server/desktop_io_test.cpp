// Tests for server/desktop_io.hpp: PipeWire's buffers through the engine,
// frame-exact whatever the quantum and the order buffers come in, and the
// output fade around a move. The engine is a stand-in that copies its input.
// Single-threaded (the [rt] and [control] calls alternate here).
#include "server/desktop_io.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace rackd::server {
namespace {

constexpr uint32_t kBlock = 128;

// Input channel c to output channel c (the first two), counting cycles.
struct Copy {
  uint64_t cycles = 0;
  static void run(void* ctx, const float* const* in, float* const* out) noexcept {
    auto* self = static_cast<Copy*>(ctx);
    ++self->cycles;
    for (uint32_t c = 0; c < 2; ++c)
      for (uint32_t i = 0; i < kBlock; ++i) out[c][i] = in[c][i];
  }
};

// Pushes `frames` of a counting signal (1, 2, 3, ...) one quantum per cycle,
// but now and then a cycle's buffer comes late, after the output's pull, and
// two come before the next (as a capture buffer may fall on either side of
// the output's cycle), and pulls `quantum` frames per cycle. Returns what came
// out of channel 0.
std::vector<float> stream(DesktopIo& io, uint32_t quantum, uint32_t frames, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> in0(quantum), in1(quantum), got;
  float next = 1.0f;
  uint32_t pushed = 0;
  int owed = 0;  // pushes held back (a late buffer), given with the next
  while (pushed < frames) {
    int pushes = 1 + owed;
    owed = 0;
    if (pushes == 1 && rng() % 20 == 0) owed = 1, pushes = 0;  // this cycle's buffer comes late
    for (int k = 0; k < pushes && pushed < frames; ++k) {
      for (uint32_t i = 0; i < quantum; ++i) in0[i] = in1[i] = next++;
      const float* in[8] = {in0.data(), in1.data()};
      io.push_input(in, quantum);
      pushed += quantum;
    }
    std::vector<float> o0(quantum), o1(quantum);
    float* out[2] = {o0.data(), o1.data()};
    io.pull_output(out, quantum);
    got.insert(got.end(), o0.begin(), o0.end());
  }
  return got;
}

// Every input frame appears once, in order, after a run of leading silence and
// with at most two stretches of silence in between (input that was late when
// the output needed it: each adds latency once, none loses a frame).
void expect_exact(const std::vector<float>& got, uint32_t frames) {
  float want = 1.0f;
  std::size_t silences = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (got[i] == 0.0f) {
      if (want > 1.0f && (i == 0 || got[i - 1] != 0.0f)) ++silences;
      continue;
    }
    ASSERT_EQ(got[i], want) << "frame " << i << ": lost or repeated input";
    want += 1.0f;
  }
  EXPECT_LE(silences, 2u) << "silence inserted again and again";
  EXPECT_GT(want, static_cast<float>(frames) - 4.0f * 8192.0f) << "most of the input came out";
}

TEST(DesktopIo, QuantumEqualToTheBlockRunsOneCycleStraightIntoTheOutput) {
  Copy copy;
  DesktopIo io(kBlock, 8, 2, 48000, 20.0, &Copy::run, &copy);
  std::vector<float> in0(kBlock), o0(kBlock), o1(kBlock);
  for (int cycle = 0; cycle < 10; ++cycle) {
    for (uint32_t i = 0; i < kBlock; ++i) in0[i] = static_cast<float>(cycle * kBlock + i + 1);
    const float* in[8] = {in0.data()};
    io.push_input(in, kBlock);
    float* out[2] = {o0.data(), o1.data()};
    io.pull_output(out, kBlock);
    EXPECT_EQ(o0, in0) << "no added latency at quantum == block";
    EXPECT_EQ(io.queued_input(), 0u);
  }
  EXPECT_EQ(copy.cycles, 10u);
  EXPECT_EQ(io.underrun_frames(), 0u);
  EXPECT_EQ(io.dropped_frames(), 0u);
}

TEST(DesktopIo, NoFrameIsLostOrRepeatedWhateverTheQuantumOrBufferOrder) {
  for (uint32_t quantum : {32u, 64u, 96u, 128u, 256u, 1000u, 1024u, 2048u}) {
    for (uint32_t seed = 1; seed <= 4; ++seed) {
      Copy copy;
      DesktopIo io(kBlock, 8, 2, 48000, 20.0, &Copy::run, &copy);
      const uint32_t frames = 48000 * 2;
      SCOPED_TRACE("quantum " + std::to_string(quantum) + " seed " + std::to_string(seed));
      expect_exact(stream(io, quantum, frames, seed), frames);
      EXPECT_EQ(io.dropped_frames(), 0u);
    }
  }
}

TEST(DesktopIo, InputThatNeverComesIsSilenceCountedOnceTheOutputRuns) {
  Copy copy;
  DesktopIo io(kBlock, 8, 2, 48000, 20.0, &Copy::run, &copy);
  std::vector<float> o0(256, 1.0f), o1(256, 1.0f);
  float* out[2] = {o0.data(), o1.data()};
  io.pull_output(out, 256);  // the first pull: not counted
  EXPECT_EQ(io.underrun_frames(), 0u);
  io.pull_output(out, 256);
  EXPECT_EQ(io.underrun_frames(), 256u);
  for (float v : o0) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(copy.cycles, 4u) << "the engine still runs every block: modules keep their clock";
}

TEST(DesktopIo, FadesOutForAMoveAndBackInWithoutAStep) {
  Copy copy;
  DesktopIo io(kBlock, 8, 2, 48000, 20.0, &Copy::run, &copy);
  std::vector<float> in0(kBlock, 0.5f), o0(kBlock), o1(kBlock);
  const float* in[8] = {in0.data(), in0.data()};
  float* out[2] = {o0.data(), o1.data()};
  std::vector<float> all;
  auto cycle = [&] {
    io.push_input(in, kBlock);
    io.pull_output(out, kBlock);
    all.insert(all.end(), o0.begin(), o0.end());
  };
  cycle();
  EXPECT_FALSE(io.faded_out());
  io.fade_to(0.0f);
  int cycles = 0;
  while (!io.faded_out() && cycles < 100) cycle(), ++cycles;
  EXPECT_TRUE(io.faded_out());
  EXPECT_EQ(cycles, 8) << "20 ms at 48 kHz is 960 frames: 8 blocks of 128";
  cycle();
  for (float v : o0) EXPECT_EQ(v, 0.0f);
  io.fade_to(1.0f);
  for (int i = 0; i < 10; ++i) cycle();
  EXPECT_EQ(all.back(), 0.5f);
  float step = 0.0f;
  for (std::size_t i = 1; i < all.size(); ++i) step = std::max(step, std::abs(all[i] - all[i - 1]));
  EXPECT_LE(step, 0.5f / 960.0f * 1.01f) << "the gain moves linearly over 20 ms";

  // A move the session manager made: silence at once, then the same fade in.
  io.restart_fade();
  cycle();
  EXPECT_EQ(o0[0], 0.5f / 960.0f);
}

}  // namespace
}  // namespace rackd::server
