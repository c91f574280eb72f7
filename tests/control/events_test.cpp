// events: the --events format, errors with file:line, and block accuracy.
#include "control/events.hpp"

#include <gtest/gtest.h>

#include "tests/control/fixture.hpp"

namespace rackd::control {
namespace {

std::string load_error(const std::string& text) {
  auto rig = test::make_rig();
  try {
    parse_events(text, "ev.txt", rig->patch);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Events, ParsesCommentsBlankLinesAndTypedValues) {
  auto rig = test::make_rig();
  const auto ev = parse_events(
      "# automation\n\n"
      "1.25 /p/gain_db -6      # dB\n"
      "0.5  /p/bypass true\n"
      "0    /src/freq_hz 1000\n"
      "0.5  /src/mute 1\n",
      "ev.txt", rig->patch);
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0].seconds, 0.0);  // sorted by time, stable
  EXPECT_EQ(ev[0].values[0], 1000.0);
  EXPECT_EQ(ev[1].line, 4u);
  EXPECT_EQ(ev[1].values[0], 1.0);
  EXPECT_EQ(ev[2].line, 6u);
  EXPECT_EQ(ev[3].values[0], -6.0);
  EXPECT_EQ(ev[3].target.module, 1u);
  EXPECT_EQ(ev[3].target.param, 0u);
}

TEST(Events, ErrorsNameFileAndLine) {
  EXPECT_EQ(load_error("\n1 /nope/gain_db 1\n").rfind("ev.txt:2: /nope/gain_db: unknown module", 0), 0u);
  EXPECT_EQ(load_error("1 /p/gain_db 100\n"), "ev.txt:1: /p/gain_db: gain_db: 100 is out of range [-96, 24] dB");
  EXPECT_EQ(load_error("x /p/gain_db 1\n").rfind("ev.txt:1: \"x\" is not a time", 0), 0u);
  EXPECT_EQ(load_error("-1 /p/gain_db 1\n"), "ev.txt:1: time -1 is negative");
  EXPECT_EQ(load_error("1\n"), "ev.txt:1: missing address after the time");
  EXPECT_EQ(load_error("1 /p/gain_db\n"), "ev.txt:1: /p/gain_db: gain_db takes 1 value, got 0");
  EXPECT_EQ(load_error("1 /p/gain_db loud\n"), "ev.txt:1: /p/gain_db: gain_db expects a number, got a string");
  EXPECT_EQ(load_error("1 /p/bypass 2\n").rfind("ev.txt:1:", 0), 0u);
  EXPECT_EQ(load_error("nan /p/gain_db 1\n").rfind("ev.txt:1:", 0), 0u);
  EXPECT_EQ(load_error("# only comments\n\n"), "no error");
}

TEST(Events, AnEventTakesEffectAtTheBlockContainingItsFrame) {
  auto rig = test::make_rig();
  // 48 kHz, 128-frame blocks: 1.0 s = frame 48000 = first frame of block 375;
  // 0.0013 s = frame 62 (block 0); 128/48000 s = frame 128 (block 1);
  // 0.99999 s = frame 47999.52 -> 48000 (rounded), block 375 as well;
  // 1.0026 s = frame 48124.8 -> 48125, the last frames of block 375.
  auto ev = parse_events("1.0 /p/gain_db -1\n0.0013 /p/gain_db -2\n0.0026666666666666666 /p/gain_db -3\n"
                         "0.99999 /p/gain_db -4\n1.0026 /p/gain_db -5\n",
                         "ev.txt", rig->patch);
  EventPlayer player(*rig->segment, ev, 48000, 128);
  shm::ModuleIn& in = rig->segment->module_in(1);
  EXPECT_EQ(player.apply_due(0), 1u);
  EXPECT_EQ(get_param(in, 0)[0], -2.0);
  EXPECT_EQ(player.apply_due(128), 1u);
  EXPECT_EQ(get_param(in, 0)[0], -3.0);
  EXPECT_EQ(player.apply_due(47872), 0u);  // block 374 ends before frame 48000
  const uint32_t epoch = in.param_epoch.load();
  // Frames 48000, 48000 (rounded) and 48125 all lie in block 375, in time order.
  EXPECT_EQ(player.apply_due(48000), 3u);
  EXPECT_EQ(get_param(in, 0)[0], -5.0);
  EXPECT_EQ(in.param_epoch.load(), epoch + 3);
  EXPECT_EQ(player.apply_due(48128), 0u);
  EXPECT_EQ(player.remaining(), 0u);
}

TEST(Events, RenderingWithDifferentBlockSizesAppliesAtTheSameFrameBoundaries) {
  auto rig = test::make_rig();
  auto ev = parse_events("0.01 /p/gain_db -1\n", "ev.txt", rig->patch);  // frame 480
  for (uint32_t block : {16u, 64u, 480u, 512u}) {
    EventPlayer player(*rig->segment, ev, 48000, block);
    uint64_t applied_at = UINT64_MAX;
    for (uint64_t start = 0; start < 4096; start += block) {
      if (player.apply_due(start)) {
        applied_at = start;
        break;
      }
    }
    EXPECT_EQ(applied_at, (480 / block) * block) << block;
  }
}

}  // namespace
}  // namespace rackd::control
