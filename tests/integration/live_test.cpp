// Integration: `rackd run` live on PortAudio's JACK host API over a dummy JACK
// server the test starts and stops by pid.
//
// The xrun figures are recorded (test output and XML properties), next to the
// dummy driver's own xruns in the same window taken from the jackd log. On a
// machine whose scheduler stalls real-time threads for longer than a period
// (as the shared CI VMs do: see docs/realtime.md) the device xruns on its
// own, with or without clients, so xrun counts are figures, not assertions.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <thread>

#include "tests/integration/harness.hpp"

namespace rackd::test {
namespace {

int count_lines(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

void record_xruns(const std::string& json, const std::string& jack_log_before, const std::string& jack_log_after) {
  const int driver = count_lines(jack_log_after, "Process XRun") - count_lines(jack_log_before, "Process XRun");
  const int late_client = count_lines(jack_log_after, "was not finished") - count_lines(jack_log_before, "was not finished");
  ::testing::Test::RecordProperty("rackd_xruns", std::to_string(static_cast<long>(json_number(json, "", "xruns"))));
  ::testing::Test::RecordProperty("rackd_overruns", std::to_string(static_cast<long>(json_number(json, "", "overruns"))));
  ::testing::Test::RecordProperty("jack_driver_xruns", std::to_string(driver));
  std::printf("[ figures  ] rackd xruns %.0f, rackd overruns %.0f, dummy driver's own xruns %d, "
              "jack 'client not finished' %d\n",
              json_number(json, "", "xruns"), json_number(json, "", "overruns"), driver, late_client);
}

class LiveRun : public ::testing::Test {
 protected:
  void SetUp() override {
    jack_ = std::make_unique<DummyJack>(48000, 128);
    ASSERT_TRUE(jack_->ready()) << "jackd -d dummy did not start:\n" << jack_->log();
  }
  std::unique_ptr<DummyJack> jack_;
};

TEST_F(LiveRun, ToneOnDummyJackPlaysTenSecondsAndLeavesNothingBehind) {
  const std::string before = jack_->log();
  Process p({bin("rackd"), "run", source("patches/tone.toml"), "--duration", "10"}, jack_->env());
  ASSERT_EQ(p.wait(std::chrono::seconds(30)), 0) << p.err();
  const std::string json = p.out();
  record_xruns(json, before, jack_->log());
  // The device ran the whole time: 48000 / 128 = 375 cycles a second.
  expect_device_kept_playing(json_number(json, "", "cycles"), 10);
  EXPECT_EQ(json_string(json, "tone", "state"), "running") << json << "\n" << p.err();
  EXPECT_EQ(json_number(json, "tone", "restarts"), 0) << json;
  EXPECT_NE(p.err().find("JACK"), std::string::npos) << p.err();
  EXPECT_FALSE(segment_exists_for(p.pid()));
}

TEST_F(LiveRun, KilledModuleIsRestartedWhileTheDeviceKeepsPlaying) {
  const std::string before = jack_->log();
  Process p({bin("rackd"), "run", tone_chain_patch(), "--duration", "8"}, jack_->env());
  const std::string json = kill_p1_and_expect_recovery(p, 8);
  record_xruns(json, before, jack_->log());
}

// rackd with a one-module chain beside a JACK2 client of the same length
// (`jack_thru`, capture -> thru -> playback) on the same jackd, in the same
// 8 s window: JACK blames rackd's client ("client = X was not finished") no
// more often than the jack_thru's, plus a stated slack of 20 (0.7 % of the
// 3000 cycles). The slack covers rackd's second real-time wake-up per cycle
// (device thread -> module -> device thread), each as exposed as jack_thru's one
// to a CPU held by a non-preemptible kernel path (see docs/realtime.md).
// Outside the default run (`ctest --preset compare`): on this kind of VM one
// run in 8-16 lands in a stretch where the host takes away the vCPU the chain
// is pinned to (a vCPU gap of 3-12 ms, which the guest cannot see; measured
// with bench/vcpu_gaps). The CPU watcher moves the chain off it after 3 lost
// cycles, but the blames before that move already count (docs/realtime.md).
TEST_F(LiveRun, JackBlamesRackdNoMoreThanAJackThruOfTheSameLengthBesideIt) {
  constexpr int kSlack = 20;
  Process thru({"/usr/bin/jack_thru", "thru"}, jack_->env());
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    Result r = run({"/usr/bin/jack_connect", "system:capture_1", "thru:input_1"}, std::chrono::seconds(5),
                   jack_->env());
    if (r.status == 0) break;
  }
  for (const auto& [a, b] : std::vector<std::pair<std::string, std::string>>{
           {"system:capture_2", "thru:input_2"}, {"thru:output_1", "system:playback_1"},
           {"thru:output_2", "system:playback_2"}})
    run({"/usr/bin/jack_connect", a, b}, std::chrono::seconds(5), jack_->env());
  const std::string before = jack_->log();
  Process p({bin("rackd"), "run", source("patches/tone.toml"), "--duration", "8"}, jack_->env());
  ASSERT_EQ(p.wait(std::chrono::seconds(30)), 0) << p.err();
  const std::string after = jack_->log();
  const std::string json = p.out();
  const int rackd = count_lines(after, "client = PortAudio was not finished") +
                    count_lines(after, "client = rackd was not finished") -
                    count_lines(before, "client = PortAudio was not finished") -
                    count_lines(before, "client = rackd was not finished");
  const int jack_thru =
      count_lines(after, "client = thru was not finished") - count_lines(before, "client = thru was not finished");
  std::printf("[ figures  ] JACK blamed rackd %d times, the jack_thru beside it %d times; rackd overruns %.0f, "
              "cycle p99 %.0f us\n", rackd, jack_thru, json_number(json, "", "overruns"),
              json_number(json, "cycle_us", "p99"));
  RecordProperty("rackd_blames", std::to_string(rackd));
  RecordProperty("jack_thru_blames", std::to_string(jack_thru));
  EXPECT_LE(rackd, jack_thru + kSlack) << p.err();
}

TEST_F(LiveRun, DevicesListsTheJackHostApi) {
  Result r = run({bin("rackd"), "devices"}, std::chrono::seconds(30), jack_->env());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("JACK"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("system"), std::string::npos) << r.out;
}

TEST_F(LiveRun, UnknownDeviceIsAClearErrorAndStartsNothing) {
  Process p({bin("rackd"), "run", source("patches/tone.toml"), "--device", "no-such-device"}, jack_->env());
  EXPECT_EQ(p.wait(std::chrono::seconds(30)), 1);
  EXPECT_NE(p.err().find("no output device matches \"no-such-device\""), std::string::npos) << p.err();
  EXPECT_FALSE(segment_exists_for(p.pid()));
}

}  // namespace
}  // namespace rackd::test

namespace rackd::test {
namespace {

// rackd killed with SIGKILL in a live run: its modules follow at once, and the
// next `rackd run` removes the stale segment and is playing within a second.
TEST(LiveServerDeath, NextServerCleansUpAndPlaysWithinOneSecond) {
  DummyJack jack(48000, 128);
  ASSERT_TRUE(jack.ready()) << jack.log();
  Process first({bin("rackd"), "run", source("patches/passthrough.toml")}, jack.env());
  for (int i = 0; i < 5000 && first.err().find("playing") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto kids = children(first.pid(), "rackd-");
  ASSERT_EQ(kids.size(), 4u);
  first.signal(SIGKILL);
  ASSERT_EQ(first.wait(std::chrono::seconds(5)), 128 + SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  for (pid_t k : kids)
    while (running(k) && std::chrono::steady_clock::now() - killed < std::chrono::seconds(2))
      std::this_thread::sleep_for(std::chrono::microseconds(200));
  const double gone_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - killed).count();
  for (pid_t k : kids) EXPECT_FALSE(running(k));
  EXPECT_LT(gone_ms, 100.0);
  ASSERT_TRUE(segment_exists_for(first.pid()));

  const auto start = std::chrono::steady_clock::now();
  Process second({bin("rackd"), "run", source("patches/passthrough.toml"), "--duration", "1.5"}, jack.env());
  double playing_ms = -1;
  for (int i = 0; i < 5000; ++i) {
    if (second.err().find("playing") != std::string::npos) {
      playing_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::printf("[ figures  ] modules gone %.2f ms after the server's SIGKILL; next server playing after %.0f ms\n",
              gone_ms, playing_ms);
  RecordProperty("modules_gone_ms", std::to_string(gone_ms));
  RecordProperty("next_playing_ms", std::to_string(playing_ms));
  EXPECT_GT(playing_ms, 0);
  EXPECT_LT(playing_ms, 1000.0);
  EXPECT_FALSE(segment_exists_for(first.pid())) << "the stale segment was not removed";
  EXPECT_EQ(second.wait(std::chrono::seconds(30)), 0) << second.err();
  EXPECT_FALSE(segment_exists_for(second.pid()));
}

}  // namespace
}  // namespace rackd::test
