// Soak: a live run on a dummy JACK device (48 kHz / 128) with a module killed
// with SIGKILL every 2 s. Duration from RACKD_SOAK_SECONDS (default 30; the
// `soak` ctest label runs 600). Asserts every kill is survived and restarted
// and that the server's file descriptors and resident memory do not grow;
// reports restart time median and 99th percentile, xruns and drift.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "tests/integration/harness.hpp"

namespace rackd::test {
namespace {

// File descriptors of the server while all `modules` module processes run
// (during a restart a pidfd is briefly missing).
long fd_count_steady(pid_t pid, size_t modules) {
  for (int i = 0; i < 400; ++i) {
    if (children(pid, "rackd-").size() == modules) {
      const long n = fd_count(pid);
      if (children(pid, "rackd-").size() == modules) return n;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return fd_count(pid);
}

std::vector<double> json_array(const std::string& json, const std::string& module, const std::string& key) {
  std::vector<double> v;
  auto m = json.find("\"" + module + "\":{");
  if (m == std::string::npos) return v;
  auto end = json.find('}', m);
  auto at = json.find("\"" + key + "\":[", m);
  if (at == std::string::npos || at > end) return v;
  std::istringstream in(json.substr(at + key.size() + 4, json.find(']', at) - at - key.size() - 4));
  std::string item;
  while (std::getline(in, item, ',')) v.push_back(std::strtod(item.c_str(), nullptr));
  return v;
}

constexpr const char* kPatch = R"([[module]]
name = "src"
type = "capture"
source = "tone"
[[module]]
name = "p1"
type = "passthrough"
input = "src"
[[module]]
name = "p2"
type = "passthrough"
input = "p1"
[[module]]
name = "p3"
type = "passthrough"
input = "p2"
[[module]]
name = "p4"
type = "passthrough"
input = "p3"
[[module]]
name = "noise"
type = "capture"
source = "noise"
gain_db = -20.0
[[module]]
name = "q1"
type = "passthrough"
input = "noise"
[[module]]
name = "q2"
type = "passthrough"
input = "q1"
[output]
from = ["p4", "q2"]
)";

TEST(Soak, KillARandomModuleEveryTwoSeconds) {
  const char* env = std::getenv("RACKD_SOAK_SECONDS");
  const int seconds = env ? std::atoi(env) : 30;
  DummyJack jack(48000, 128);
  ASSERT_TRUE(jack.ready()) << jack.log();
  const std::string d = temp_dir();
  std::ofstream(d + "/soak.toml") << kPatch;
  // rackd runs until the test stops it, so the drift is measured while it runs.
  const uint16_t osc_port = free_udp_port();
  Process p({bin("rackd"), "run", d + "/soak.toml", "--osc-port", std::to_string(osc_port)}, jack.env());

  std::this_thread::sleep_for(std::chrono::seconds(2));
  // OSC traffic all along: gain changes on every passthrough, 200 a second.
  OscTraffic osc(osc_port, {"/p1/gain_db", "/p2/gain_db", "/p3/gain_db", "/p4/gain_db", "/q1/gain_db", "/q2/gain_db"},
                 -1.0f, 0.0f, 200);
  const long fd0 = fd_count_steady(p.pid(), 8);
  const long rss0 = rss_kb(p.pid());
  std::mt19937 rng(12345);
  // The victim is the module killed longest ago (random among those never
  // killed yet), so with 8 modules each one dies every 16 s: never 5 times in
  // 30 s, which would make rackd give up on it by design.
  std::map<std::string, double> last_kill;  // slot -> time of its last kill
  int kills = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(seconds)) {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const double now = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<std::pair<double, pid_t>> candidates;
    std::map<pid_t, std::string> slot_of;
    for (pid_t k : children(p.pid(), "rackd-")) {
      std::ifstream f("/proc/" + std::to_string(k) + "/cmdline");
      std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      auto at = cmd.find(std::string("--slot") + '\0');
      if (at == std::string::npos) continue;
      slot_of[k] = cmd.substr(at + 7, cmd.find('\0', at + 7) - at - 7);
      auto it = last_kill.find(slot_of[k]);
      candidates.emplace_back(it == last_kill.end() ? -1e9 + std::uniform_real_distribution<>(0, 1)(rng) : it->second, k);
    }
    if (candidates.empty()) continue;
    const pid_t victim = std::min_element(candidates.begin(), candidates.end())->second;
    if (kill(victim, SIGKILL) == 0) {
      ++kills;
      last_kill[slot_of[victim]] = now;
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const long fd1 = fd_count_steady(p.pid(), 8);
  const long rss1 = rss_kb(p.pid());
  p.signal(SIGTERM);
  ASSERT_EQ(p.wait(std::chrono::seconds(60)), 0) << p.err();
  const std::string json = p.out();
  const double run_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() + 2;
  {
    // What rackd said about failures, for the log of a failed run.
    std::istringstream err(p.err());
    std::string line;
    while (std::getline(err, line))
      if (line.find("giving up") != std::string::npos || line.find("hung") != std::string::npos)
        std::printf("rackd: %s\n", line.c_str());
  }

  std::vector<double> restart_ms;
  double restarts = 0;
  for (const char* m : {"src", "p1", "p2", "p3", "p4", "noise", "q1", "q2"}) {
    EXPECT_EQ(json_string(json, m, "state"), "running") << m << ": " << json;
    restarts += json_number(json, m, "restarts");
    for (double v : json_array(json, m, "restart_ms")) restart_ms.push_back(v);
  }
  std::sort(restart_ms.begin(), restart_ms.end());
  auto pct = [&](double q) {
    return restart_ms.empty() ? -1.0 : restart_ms[std::min(restart_ms.size() - 1, size_t(q * restart_ms.size()))];
  };
  std::printf("[ figures  ] %d s, %d kills, %llu OSC messages, %.0f restarts, restart ms p50 %.2f p99 %.2f max %.2f, "
              "xruns %.0f, overruns %.0f, fds %ld -> %ld, rss %ld -> %ld kB\n",
              seconds, kills, static_cast<unsigned long long>(osc.sent()), restarts, pct(0.5), pct(0.99), restart_ms.empty() ? -1.0 : restart_ms.back(),
              json_number(json, "", "xruns"), json_number(json, "", "overruns"), fd0, fd1, rss0, rss1);
  RecordProperty("kills", kills);
  RecordProperty("restart_ms_p50", std::to_string(pct(0.5)));
  RecordProperty("restart_ms_p99", std::to_string(pct(0.99)));
  RecordProperty("xruns", std::to_string(json_number(json, "", "xruns")));
  RecordProperty("fd_drift", std::to_string(fd1 - fd0));
  RecordProperty("rss_drift_kb", std::to_string(rss1 - rss0));

  EXPECT_GE(kills, seconds / 2 - 2);
  EXPECT_EQ(restarts, kills) << json;
  EXPECT_EQ(restart_ms.size(), static_cast<size_t>(kills)) << "every restart reached a good block";
  EXPECT_EQ(fd1, fd0) << "the server leaks file descriptors";
  EXPECT_LT(rss1 - rss0, 1024) << "the server's resident memory grows";
  expect_device_kept_playing(json_number(json, "", "cycles"), run_seconds);
  EXPECT_FALSE(segment_exists_for(p.pid()));
}

}  // namespace
}  // namespace rackd::test
