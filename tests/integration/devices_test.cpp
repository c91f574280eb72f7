// Integration: the live driver's two device back-ends beyond live_test.cpp.
// rackd's null device (`rackd run --device null`: no sound card, no JACK
// server) plays, restarts a killed module while it keeps cycling, and its
// thread keeps the real-time rules (librtcount.so counters); on a dummy JACK
// server, rackd's JACK client is named rackd (or --jack-name), not PortAudio.
//
// As in live_test.cpp, late cycles are figures (test output), not assertions:
// the shared VMs stall real-time threads for longer than a period.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/integration/harness.hpp"
#include "tests/rtcount/rtcount_expect.hpp"

namespace rackd::test {
namespace {

void record_figures(const std::string& json) {
  ::testing::Test::RecordProperty("rackd_xruns", std::to_string(static_cast<long>(json_number(json, "", "xruns"))));
  ::testing::Test::RecordProperty("rackd_overruns",
                                  std::to_string(static_cast<long>(json_number(json, "", "overruns"))));
  std::printf("[ figures  ] null device: cycles %.0f, late or missed cycles (xruns) %.0f, overruns %.0f, "
              "cycle p50 %.0f us\n",
              json_number(json, "", "cycles"), json_number(json, "", "xruns"), json_number(json, "", "overruns"),
              json_number(json, "cycle_us", "p50"));
}

// No JACK server in the environment: the null device needs none.
std::vector<std::string> no_jack() { return {"JACK_DEFAULT_SERVER=rackd-test-no-such-server", "JACK_NO_START_SERVER=1"}; }

TEST(NullDevice, TonePlaysFiveSecondsWithoutASoundServerAndLeavesNothingBehind) {
  Process p({bin("rackd"), "run", source("patches/tone.toml"), "--device", "null", "--duration", "5", "--osc-port",
             "-1"},
            no_jack());
  ASSERT_EQ(p.wait(std::chrono::seconds(30)), 0) << p.err();
  const std::string json = p.out();
  record_figures(json);
  // 48000 / 128 = 375 cycles a second, paced by the null device's own clock.
  expect_device_kept_playing(json_number(json, "", "cycles"), 5);
  EXPECT_GE(json_number(json, "", "xruns"), 0) << json;
  EXPECT_GE(json_number(json, "", "overruns"), 0) << json;
  EXPECT_EQ(json_number(json, "", "rate"), 48000) << json;
  EXPECT_EQ(json_number(json, "", "block"), 128) << json;
  EXPECT_EQ(json_string(json, "tone", "state"), "running") << json << "\n" << p.err();
  EXPECT_EQ(json_number(json, "tone", "restarts"), 0) << json;
  EXPECT_NE(p.err().find("on \"rackd: null\""), std::string::npos) << p.err();
  EXPECT_EQ(p.err().find("PortAudio"), std::string::npos) << p.err();
  EXPECT_FALSE(segment_exists_for(p.pid()));
}

TEST(NullDevice, KilledModuleIsRestartedWhileTheDeviceKeepsPlaying) {
  Process p({bin("rackd"), "run", tone_chain_patch(), "--device", "null", "--duration", "8", "--osc-port", "-1"},
            no_jack());
  record_figures(kill_p1_and_expect_recovery(p, 8));
}

TEST(NullDevice, DevicesListsItWithoutASoundServer) {
  Result r = run({bin("rackd"), "devices"}, std::chrono::seconds(30), no_jack());
  EXPECT_NE(r.out.find("rackd"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("null"), std::string::npos) << r.out;
}

// librtcount.so preloaded: the null device's thread makes no allocation and no
// system call but futex inside its cycles (its clock_nanosleep between cycles
// is outside them, as PortAudio's wait for the next period is), through a
// module restart.
TEST(NullDevice, ThreadKeepsTheRealtimeRulesThroughARestart) {
  const std::string dir = temp_dir() + "/rtcount";
  std::filesystem::create_directories(dir);
  Process p({bin("rackd"), "run", source("patches/passthrough.toml"), "--device", "null", "--duration", "6",
             "--osc-port", "-1"},
            {std::string("LD_PRELOAD=") + RTCOUNT_LIB, "RACKD_RTCOUNT_DIR=" + dir, no_jack()[0], no_jack()[1]});
  std::this_thread::sleep_for(std::chrono::seconds(3));
  auto k = children(p.pid(), "rackd-passthrou");
  ASSERT_FALSE(k.empty());
  kill(k.front(), SIGKILL);
  ASSERT_EQ(p.wait(std::chrono::seconds(30)), 0) << p.err();
  EXPECT_NE(p.out().find("\"restarts\":1"), std::string::npos) << p.out();
  rtcount::expect_clean(dir, {"rackd", "rackd-capture", "rackd-passthrou"});
}

TEST(JackClient, IsNamedRackdNotPortAudio) {
  DummyJack jack(48000, 128);
  ASSERT_TRUE(jack.ready()) << jack.log();
  Process p({bin("rackd"), "run", source("patches/tone.toml"), "--duration", "4", "--osc-port", "-1"}, jack.env());
  for (int i = 0; i < 5000 && p.err().find("playing") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  Result lsp = run({"/usr/bin/jack_lsp"}, std::chrono::seconds(10), jack.env());
  ASSERT_EQ(p.wait(std::chrono::seconds(30)), 0) << p.err();
  EXPECT_NE(lsp.out.find("\nrackd:"), std::string::npos) << lsp.out;
  EXPECT_EQ(lsp.out.find("PortAudio"), std::string::npos) << lsp.out;
  // jackd blames a late client by name ("client = rackd was not finished").
  const std::string log = jack.log();
  EXPECT_EQ(log.find("PortAudio"), std::string::npos) << log;
  for (size_t at = log.find("was not finished"); at != std::string::npos; at = log.find("was not finished", at + 1)) {
    const size_t line = log.rfind('\n', at) + 1;
    EXPECT_NE(log.substr(line, at - line).find("client = rackd"), std::string::npos) << log.substr(line, at - line);
  }
}

TEST(JackClient, JackNamePatchUsesThePatchFileName) {
  DummyJack jack(48000, 128);
  ASSERT_TRUE(jack.ready()) << jack.log();
  Process p({bin("rackd"), "run", source("patches/tone.toml"), "--duration", "3", "--osc-port", "-1", "--jack-name",
             "patch"},
            jack.env());
  for (int i = 0; i < 5000 && p.err().find("playing") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  Result lsp = run({"/usr/bin/jack_lsp"}, std::chrono::seconds(10), jack.env());
  ASSERT_EQ(p.wait(std::chrono::seconds(30)), 0) << p.err();
  EXPECT_NE(lsp.out.find("\ntone:"), std::string::npos) << lsp.out;
}

TEST(JackClient, BadJackNameIsAUsageError) {
  Result r = run({bin("rackd"), "run", source("patches/tone.toml"), "--jack-name", "a:b"}, std::chrono::seconds(10));
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("--jack-name"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace rackd::test
