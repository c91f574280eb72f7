// ControlServer on a real UDP socket, driven by real OSC clients: oscsend and
// oscdump (liblo-tools) and a python3-liblo script. Needs no rackd binary.
#include "control/control_server.hpp"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/control/fixture.hpp"

namespace rackd::control {
namespace {

using namespace std::chrono_literals;

#ifndef RACKD_SOURCE_DIR
#define RACKD_SOURCE_DIR "."
#endif

std::string sh(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return out;
  char buf[4096];
  for (std::size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  pclose(p);
  return out;
}

bool have(const std::string& tool) { return std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) == 0; }

uint16_t free_udp_port() {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

template <class F>
bool eventually(F f, std::chrono::milliseconds timeout = 3s) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

// A raw UDP client built on the OS socket API (and our encoder), for bytes no
// well-behaved OSC library would send.
struct RawClient {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  explicit RawClient(uint16_t port) {
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
  ~RawClient() { close(fd); }
  void send(const std::vector<uint8_t>& b) {
    sendto(fd, b.data(), b.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  }
  bool recv(OscMessage& m, int timeout_ms = 2000) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) != 1) return false;
    uint8_t buf[65536];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    std::string why;
    return n > 0 && decode_message(buf, static_cast<std::size_t>(n), m, why);
  }
};

class ControlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("rackd-control-test-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    patch_path_ = (dir_ / "patch.toml").string();
    std::ofstream(patch_path_) << test::kTwoModulePatch;
    rig_ = test::make_rig(test::kTwoModulePatch, patch_path_);
    hooks_.cycles = [] { return uint64_t{12345}; };
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  void start(ControlOptions o = {}) {
    // Tests run in parallel: unless a test picked a port, take any free one.
    if (o.port == kDefaultOscPort) o.port = 0;
    server_ = std::make_unique<ControlServer>(*rig_->segment, rig_->patch, hooks_, o);
    server_->start();
  }
  double gain() { return get_param(rig_->segment->module_in(1), 0)[0]; }

  std::filesystem::path dir_;
  std::string patch_path_;
  std::unique_ptr<test::Rig> rig_;
  ServerHooks hooks_;
  std::unique_ptr<ControlServer> server_;
};

TEST_F(ControlServerTest, BindsLoopbackOnlyByDefault) {
  ControlOptions o;
  o.port = free_udp_port();
  start(o);
  EXPECT_EQ(server_->port(), o.port);
  if (!have("ss")) GTEST_SKIP() << "ss (iproute2) not installed";
  const std::string ss = sh("ss -uln");
  const std::string port = ":" + std::to_string(o.port);
  EXPECT_NE(ss.find("127.0.0.1" + port), std::string::npos) << ss;
  EXPECT_EQ(ss.find("0.0.0.0" + port), std::string::npos) << ss;
  EXPECT_EQ(ss.find("*" + port), std::string::npos) << ss;
  EXPECT_EQ(ss.find("[::]" + port), std::string::npos) << ss;
}

TEST_F(ControlServerTest, PortInUseIsAClearError) {
  start();
  ControlOptions o;
  o.port = server_->port();
  ControlServer second(*rig_->segment, rig_->patch, hooks_, o);
  try {
    second.start();
    FAIL() << "second bind succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("already in use"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--osc-port"), std::string::npos) << e.what();
  }
}

TEST_F(ControlServerTest, BadBindAddressIsRefused) {
  ControlOptions o;
  o.bind_addr = "not-an-address";
  server_ = std::make_unique<ControlServer>(*rig_->segment, rig_->patch, hooks_, o);
  EXPECT_THROW(server_->start(), std::runtime_error);
}

TEST_F(ControlServerTest, OscsendSetsAParameter) {
  if (!have("oscsend")) GTEST_SKIP() << "oscsend (liblo-tools) not installed";
  start();
  const std::string port = std::to_string(server_->port());
  sh("oscsend 127.0.0.1 " + port + " /p/gain_db f -7.5");
  EXPECT_TRUE(eventually([&] { return gain() == -7.5; }));
  sh("oscsend 127.0.0.1 " + port + " /p/gain_db i 99");  // out of range: nothing changes
  sh("oscsend 127.0.0.1 " + port + " /p/gain_db i -8");
  EXPECT_TRUE(eventually([&] { return gain() == -8.0; }));
}

TEST_F(ControlServerTest, Python3LibloClientRoundTrips) {
  if (std::system("/usr/bin/python3 -c 'import liblo' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3-liblo not installed (apt-get install python3-liblo)";
  start();
  const std::string out = sh("/usr/bin/python3 " RACKD_SOURCE_DIR "/tests/control/osc_client.py " +
                             std::to_string(server_->port()));
  EXPECT_NE(out.find("ok"), std::string::npos) << out;
  EXPECT_EQ(out.find("FAIL"), std::string::npos) << out;
}

TEST_F(ControlServerTest, ControllerFeedbackReachesOscdump) {
  if (!have("oscdump") || !have("oscsend")) GTEST_SKIP() << "liblo-tools not installed";
  const uint16_t fb = free_udp_port();
  const std::string log = (dir_ / "oscdump.log").string();
  FILE* dump = popen(("exec oscdump -L " + std::to_string(fb) + " > " + log + " 2>&1 & echo $!").c_str(), "r");
  int dump_pid = 0;
  ASSERT_EQ(fscanf(dump, "%d", &dump_pid), 1);
  pclose(dump);
  // Stopped however the test ends (a failed ASSERT or an exception included).
  struct KillOnExit {
    int pid;
    ~KillOnExit() {
      if (pid > 0) kill(pid, SIGTERM);
    }
  } stop_dump{dump_pid};
  std::this_thread::sleep_for(200ms);
  ControlOptions o;
  o.feedback_port = fb;
  start(o);
  const std::string port = std::to_string(server_->port());
  auto logged = [&](const std::string& s) {
    std::ifstream f(log);
    std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    return all.find(s) != std::string::npos;
  };
  // At start-up the faders get the current values: gain 0 dB -> 0.5.
  EXPECT_TRUE(eventually([&] { return logged("/1/fader1 f 0.500000"); }));
  // A change made elsewhere moves the fader.
  sh("oscsend 127.0.0.1 " + port + " /p/gain_db f 6");
  EXPECT_TRUE(eventually([&] { return logged("/1/fader1 f 0.750000"); }));
  // The controller moves the fader: parameter follows.
  sh("oscsend 127.0.0.1 " + port + " /1/fader1 f 0.25");
  EXPECT_TRUE(eventually([&] { return gain() == -6.0; }));
  sh("oscsend 127.0.0.1 " + port + " /1/toggle1 f 1");
  EXPECT_TRUE(eventually([&] { return get_param(rig_->segment->module_in(1), 1)[0] == 1.0; }));
}

TEST_F(ControlServerTest, MalformedDatagramsGetErrorsAndTheServerKeepsAnswering) {
  start();
  RawClient c(server_->port());
  const std::string before = test::snapshot(*rig_->segment);
  c.send({0x23, 0x66, 0x00, 0x00, 0x2c, 0x62, 0x80, 0x00});
  OscMessage m;
  ASSERT_TRUE(c.recv(m));
  EXPECT_EQ(m.address, "/rackd/error");
  std::vector<uint8_t> blob = {'/', 'f', 0, 0, ',', 'b', 0, 0, 0x7f, 0xff, 0xff, 0xf0, 0, 0, 0, 0};
  c.send(blob);
  ASSERT_TRUE(c.recv(m));
  EXPECT_EQ(m.address, "/rackd/error");
  EXPECT_NE(m.args[1].s.find("blob length"), std::string::npos) << m.args[1].s;
  c.send(std::vector<uint8_t>(20000, '/'));  // too large
  ASSERT_TRUE(c.recv(m));
  EXPECT_NE(m.args[1].s.find("larger than"), std::string::npos) << m.args[1].s;
  EXPECT_EQ(test::snapshot(*rig_->segment), before);
  c.send(encode_message(OscMessage{"/rackd/status", {}}));
  ASSERT_TRUE(c.recv(m));
  EXPECT_EQ(m.address, "/rackd/status.reply");
  EXPECT_EQ(m.args[2].i, 12345);
  EXPECT_EQ(server_->refused(), 3u);
}

TEST_F(ControlServerTest, FarFutureBundlesAreRefusedAndTheQueueIsBounded) {
  start();
  RawClient c(server_->port());
  auto bundle_at = [](uint64_t tt, const std::vector<uint8_t>& m) {
    std::vector<uint8_t> b = {'#', 'b', 'u', 'n', 'd', 'l', 'e', 0};
    for (int s = 56; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(tt >> s));
    const uint32_t n = static_cast<uint32_t>(m.size());
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(n >> s));
    b.insert(b.end(), m.begin(), m.end());
    return b;
  };
  const auto set = encode_message(OscMessage{"/p/gain_db", {OscArg::float32(-20.0f)}});
  c.send(bundle_at(timetag_add(timetag_now(), 3600.0), set));
  OscMessage m;
  ASSERT_TRUE(c.recv(m));
  EXPECT_NE(m.args[1].s.find("in the future"), std::string::npos) << m.args[1].s;
  // Paced, so the kernel's socket buffer never drops a datagram on a busy machine.
  for (std::size_t k = 0; k < kBundleQueueCapacity + 5; ++k) {
    c.send(bundle_at(timetag_add(timetag_now(), 30.0), set));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  int full = 0;
  while (c.recv(m, 500)) {
    if (m.address == "/rackd/error" && m.args[1].s.find("queue full") != std::string::npos) ++full;
  }
  EXPECT_EQ(full, 5);
  EXPECT_EQ(gain(), 0.0);  // nothing due yet
}

// 10,000 messages per second for 2 s (the full 10 s run is the live
// integration test) through the socket: every one is applied or answered,
// and the server still answers afterwards.
TEST_F(ControlServerTest, SustainedTrafficIsHandled) {
  start();
  RawClient c(server_->port());
  const auto t0 = std::chrono::steady_clock::now();
  int sent = 0;
  for (int ms = 0; ms < 2000; ++ms) {
    for (int k = 0; k < 10; ++k, ++sent)
      c.send(encode_message(OscMessage{"/p/gain_db", {OscArg::float32(static_cast<float>(-(sent % 90)))}}));
    std::this_thread::sleep_until(t0 + std::chrono::milliseconds(ms + 1));
  }
  c.send(encode_message(OscMessage{"/rackd/sync", {OscArg::int32(1)}}));
  OscMessage m;
  ASSERT_TRUE(c.recv(m));
  EXPECT_EQ(m.address, "/rackd/synced");
  EXPECT_GE(server_->received(), static_cast<uint64_t>(sent) * 95 / 100);  // UDP may drop a few
  EXPECT_EQ(server_->refused(), 0u);
}

}  // namespace
}  // namespace rackd::control
