// Integration: no allocation and no system call other than futex on any audio
// thread of the server or of any module process, counted by librtcount.so
// (preloaded into rackd; module processes inherit it) during an offline render,
// a live run on a dummy JACK device, and a module restart. A chaos module that
// allocates and writes on its audio thread shows the counters catch it.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/integration/harness.hpp"
#include "tests/integration/pipewire_session.hpp"
#include "tests/rtcount/rtcount_expect.hpp"

namespace rackd::test {
namespace {

struct Counted {
  std::string dir;
  std::vector<std::string> env() const {
    return {std::string("LD_PRELOAD=") + RTCOUNT_LIB, "RACKD_RTCOUNT_DIR=" + dir};
  }
};

Counted counted() {
  Counted c{temp_dir() + "/rtcount"};
  std::filesystem::create_directories(c.dir);
  return c;
}

TEST(RealtimeCounters, RenderThroughFourModulesWithARestart) {
  const Counted c = counted();
  const std::string d = temp_dir();
  write_audio(d + "/in.wav", [] {
    Audio a;
    a.format = 0x010002;  // WAV PCM_16
    a.ch.assign(2, std::vector<float>(48000 * 30, 0.25f));
    return a;
  }());
  Process p({bin("rackd"), "render", source("patches/passthrough.toml"), "--in", d + "/in.wav", "--out",
             d + "/out.wav"},
            c.env());
  pid_t victim = -1;
  for (int i = 0; i < 3000 && victim < 0; ++i) {
    auto k = children(p.pid(), "rackd-passthrou");
    if (!k.empty()) victim = k.front();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_GT(victim, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  kill(victim, SIGKILL);
  ASSERT_EQ(p.wait(std::chrono::seconds(120)), 0) << p.err();
  EXPECT_NE(p.out().find("\"restarts\":1"), std::string::npos) << p.out();
  rtcount::expect_clean(c.dir, {"rackd", "rackd-capture", "rackd-passthrou"});
}

TEST(RealtimeCounters, LiveRunOnDummyJackWithOscTrafficAndARestart) {
  DummyJack jack(48000, 128);
  ASSERT_TRUE(jack.ready()) << jack.log();
  const Counted c = counted();
  auto env = jack.env();
  for (const auto& e : c.env()) env.push_back(e);
  const uint16_t osc_port = free_udp_port();
  Process p({bin("rackd"), "run", source("patches/passthrough.toml"), "--duration", "13", "--osc-port",
             std::to_string(osc_port)},
            env);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // OSC traffic while counting: 10,000 parameter changes a second for 10 s,
  // with a module killed in the middle of it.
  OscTraffic osc(osc_port, {"/p1/gain_db", "/p2/gain_db", "/p3/gain_db", "/src/gain_db"}, -3.0f, 0.0f, 10000);
  std::this_thread::sleep_for(std::chrono::seconds(5));
  auto k = children(p.pid(), "rackd-passthrou");
  ASSERT_FALSE(k.empty());
  kill(k.front(), SIGKILL);
  std::this_thread::sleep_for(std::chrono::seconds(5));
  std::printf("[ figures  ] %llu OSC messages sent during the counted run\n",
              static_cast<unsigned long long>(osc.sent()));
  EXPECT_GT(osc.sent(), 50000u);
  ASSERT_EQ(p.wait(std::chrono::seconds(30)), 0) << p.err();
  rtcount::expect_clean(c.dir, {"rackd", "rackd-capture", "rackd-passthrou"});
}

// rackd as a PipeWire desktop sink (issue 16): 7.1 noise played into it, a
// module killed mid-run. The PipeWire data thread's cycle (DesktopIo and the
// engine) and every module's block loop stay clean.
TEST(RealtimeCounters, DesktopSinkOnPipeWireWithAModuleRestart) {
  PipeWireSession pw;
  ASSERT_TRUE(pw.ready()) << pw.log();
  ASSERT_TRUE(pw.add_null_sink("hp", "Headphones")) << pw.log();
  const Counted c = counted();
  const std::string d = temp_dir();
  write_audio(d + "/in.wav", [] {
    Audio a;
    a.format = 0x010006;  // WAV float
    a.ch.assign(8, std::vector<float>(48000 * 6));
    uint32_t x = 1;
    for (auto& ch : a.ch)
      for (float& v : ch) v = static_cast<float>((x = x * 1664525u + 1013904223u) >> 8) / 16777216.0f * 0.2f - 0.1f;
    return a;
  }());
  auto p = pw.start({bin("rackd"), "run", source("patches/binaural-7.1.toml"), "--desktop", "--duration", "10",
                     "--osc-port", "0"},
                    c.env());
  ASSERT_TRUE(pw.wait_for_sink("rackd-binaural-7.1", std::chrono::seconds(10))) << p->err();
  auto play = pw.play(d + "/in.wav", "rackd-binaural-7.1");
  std::this_thread::sleep_for(std::chrono::seconds(3));
  auto k = children(p->pid(), "rackd-hrir");
  ASSERT_FALSE(k.empty());
  kill(k.front(), SIGKILL);
  EXPECT_EQ(play->wait(std::chrono::seconds(30)), 0);
  ASSERT_EQ(p->wait(std::chrono::seconds(30)), 0) << p->err();
  EXPECT_NE(p->out().find("\"restarts\":1"), std::string::npos) << p->out();
  rtcount::expect_clean(c.dir, {"rackd", "rackd-capture", "rackd-hrir", "rackd-eq"});
}

// The counters are not blind: a module that allocates and calls write(2) on
// its audio thread is caught, in its own process.
TEST(RealtimeCounters, CatchAnAllocationAndAWriteOnAModuleAudioThread) {
  const Counted c = counted();
  const std::string d = temp_dir();
  std::ofstream(d + "/p.toml") << "[[module]]\nname = \"src\"\ntype = \"capture\"\nsource = \"tone\"\n\n"
                                  "[[module]]\nname = \"bad\"\ntype = \"chaos\"\ninput = \"src\"\nmode = 13\n"
                                  "after_blocks = 10\n\n[output]\nfrom = \"bad\"\n";
  Result r = run({bin("rackd"), "render", d + "/p.toml", "--duration", "0.5", "--out", d + "/o.wav"},
                 std::chrono::seconds(60), c.env());
  ASSERT_EQ(r.status, 0) << r.err;
  bool caught = false;
  for (const auto& p : rtcount::read_reports(c.dir)) {
    if (p.comm != "rackd-chaos") continue;
    for (const auto& t : p.threads) {
      EXPECT_GE(t.allocs, 1u);
      EXPECT_GE(t.syscalls, 1u);
      EXPECT_TRUE(t.saw_syscall(1)) << "write(2) is syscall 1 on x86_64";
      caught = caught || (t.allocs && t.syscalls);
    }
  }
  EXPECT_TRUE(caught) << rtcount::summary(rtcount::read_reports(c.dir), true);
  rtcount::expect_clean(c.dir, {"rackd", "rackd-capture"});
}

}  // namespace
}  // namespace rackd::test
