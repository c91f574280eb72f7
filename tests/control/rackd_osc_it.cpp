// Integration: the control plane inside the real rackd. Needs the lead's wiring
// (rackd run --osc-port/--osc-bind/--osc-feedback, rackd render --events) and
// the built rackd, modules and rackctl; a dummy JACK server for the live runs.
// Not part of the standalone control_test build (file name is not *_test.cpp).
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <thread>

#include "control/osc_packet.hpp"
#include "tests/integration/harness.hpp"

namespace rackd::test {
namespace {

using namespace std::chrono_literals;

constexpr int kPort = 19731;  // away from the default 9000 so a user's rackd is not hit

Result rackctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv{bin("rackctl"), "--port", std::to_string(kPort)};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, 10s);
}

// A parameter change at t = 0.01 s (frame 480 at 48 kHz) is in effect for the
// block containing frame 480 (frames 384..511 with 128-frame blocks): every
// frame before 384 has the old gain, every frame from 512 on the new one (the
// passthrough ramps the gain across the block it changes in).
TEST(ControlRender, EventsTakeEffectAtTheBlockContainingTheirFrame) {
  const std::string d = temp_dir();
  Audio in;
  in.rate = 48000;
  in.ch.assign(2, std::vector<float>(4800, 0.5f));
  write_audio(d + "/in.wav", in);
  std::ofstream(d + "/ev.txt") << "# halve p3's output from frame 480\n0.01 /p3/gain_db -6.020599913\n";
  Result r = run({bin("rackd"), "render", source("patches/passthrough.toml"), "--in", d + "/in.wav", "--out",
                  d + "/out.wav", "--events", d + "/ev.txt"});
  ASSERT_EQ(r.status, 0) << r.err;
  Audio out = read_audio(d + "/out.wav");
  ASSERT_EQ(out.frames(), 4800u);
  for (size_t f = 0; f < 384; ++f) ASSERT_NEAR(out.ch[0][f], 0.5f, 1e-4) << f;
  for (size_t f = 512; f < 4800; ++f) ASSERT_NEAR(out.ch[0][f], 0.25f, 1e-4) << f;
}

TEST(ControlRender, BadEventsFileIsRefusedWithFileAndLine) {
  const std::string d = temp_dir();
  std::ofstream(d + "/ev.txt") << "\n1.0 /p3/volume 3\n";
  Result r = run({bin("rackd"), "render", source("patches/tone.toml"), "--duration", "0.1", "--out", d + "/o.wav",
                  "--events", d + "/ev.txt"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find(d + "/ev.txt:2:"), std::string::npos) << r.err;
}

class ControlLive : public ::testing::Test {
 protected:
  void SetUp() override {
    jack_ = std::make_unique<DummyJack>(48000, 128);
    ASSERT_TRUE(jack_->ready()) << jack_->log();
  }
  std::unique_ptr<DummyJack> jack_;
};

TEST_F(ControlLive, RackctlRoundTripsAndTheSocketIsLoopbackOnly) {
  Process p({bin("rackd"), "run", source("patches/passthrough.toml"), "--duration", "8", "--osc-port",
             std::to_string(kPort)},
            jack_->env());
  Result s;
  for (int k = 0; k < 50; ++k) {
    s = rackctl({"--timeout", "0.2", "status", "--json"});
    if (s.status == 0) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(s.status, 0) << s.err << p.err();
  EXPECT_EQ(json_string(s.out, "p3", "state"), "running") << s.out;
  EXPECT_EQ(rackctl({"set", "/p3/gain_db", "-6"}).status, 0);
  Result g = rackctl({"get", "/p3/gain_db"});
  EXPECT_EQ(g.out, "/p3/gain_db -6\n") << g.err;
  Result e = rackctl({"set", "/p3/gain_db", "99"});
  EXPECT_EQ(e.status, 1);
  EXPECT_NE(e.err.find("out of range"), std::string::npos) << e.err;
  Result ss = run({"/usr/bin/ss", "-ulnp"});
  const std::string port = ":" + std::to_string(kPort);
  EXPECT_NE(ss.out.find("127.0.0.1" + port), std::string::npos) << ss.out;
  EXPECT_EQ(ss.out.find("0.0.0.0" + port), std::string::npos) << ss.out;
  EXPECT_EQ(ss.out.find("*" + port), std::string::npos) << ss.out;
  EXPECT_EQ(ss.out.find("[::]" + port), std::string::npos) << ss.out;
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(20s), 0) << p.err();
}

// 10,000 messages a second for 10 s while the device runs: rackd keeps
// answering, the modules miss no deadline because of it. The device's own
// xruns are recorded as figures (see live_test.cpp for why).
TEST_F(ControlLive, TenThousandMessagesASecondForTenSeconds) {
  Process p({bin("rackd"), "run", source("patches/passthrough.toml"), "--duration", "14", "--osc-port",
             std::to_string(kPort)},
            jack_->env());
  for (int k = 0; k < 50 && rackctl({"--timeout", "0.2", "status"}).status != 0; ++k) std::this_thread::sleep_for(100ms);
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(kPort);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const auto t0 = std::chrono::steady_clock::now();
  int answered = 0;
  for (int ms = 0; ms < 10000; ++ms) {
    for (int k = 0; k < 10; ++k) {
      const auto b = control::encode_message(
          control::OscMessage{"/p3/gain_db", {control::OscArg::float32(-static_cast<float>((ms + k) % 60))}});
      sendto(fd, b.data(), b.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    }
    // One status a second; 3 s is generous for a loaded machine, and still
    // far from "stopped answering".
    if (ms % 1000 == 999 && rackctl({"--timeout", "3", "status"}).status == 0) ++answered;
    std::this_thread::sleep_until(t0 + std::chrono::milliseconds(ms + 1));
  }
  close(fd);
  EXPECT_EQ(answered, 10);
  Result s = rackctl({"status", "--json"});
  ASSERT_EQ(s.status, 0);
  for (const char* m : {"src", "p1", "p2", "p3"}) {
    EXPECT_EQ(json_number(s.out, m, "restarts"), 0) << s.out;
  }
  ::testing::Test::RecordProperty("rackd_xruns_under_osc_load", std::to_string(json_number(s.out, "", "xruns")));
  ASSERT_EQ(p.wait(30s), 0) << p.err();
}

}  // namespace
}  // namespace rackd::test
