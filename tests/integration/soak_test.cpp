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

long fd_count(pid_t pid) {
  long n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       it != std::filesystem::directory_iterator(); ++it)
    ++n;
  return n;
}

long rss_kb(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
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
  Process p({bin("rackd"), "run", d + "/soak.toml", "--duration", std::to_string(seconds + 3)}, jack.env());

  std::this_thread::sleep_for(std::chrono::seconds(2));
  const long fd0 = fd_count(p.pid());
  const long rss0 = rss_kb(p.pid());
  std::mt19937 rng(12345);
  // Pick among the modules killed least within the last 30 s, so that chance
  // alone never makes one reach the give-up threshold (5 in 30 s).
  int kills = 0;
  const auto t0 = std::chrono::steady_clock::now();
  std::map<std::string, std::vector<double>> kill_times;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(seconds)) {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    auto kids = children(p.pid(), "rackd-");
    if (kids.empty()) continue;
    const double now = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<pid_t> least;
    int best = 1 << 30;
    // Processes change pid on restart; count kills per slot through its argv.
    std::map<pid_t, std::string> slot_of;
    for (pid_t k : kids) {
      std::ifstream f("/proc/" + std::to_string(k) + "/cmdline");
      std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      slot_of[k] = cmd.substr(cmd.rfind('\0', cmd.size() - 2) + 1);
    }
    for (pid_t k : kids) {
      int n = 0;
      for (double t : kill_times[slot_of[k]]) n += (now - t) < 30.0;
      if (n < best) {
        best = n;
        least.clear();
      }
      if (n == best) least.push_back(k);
    }
    pid_t victim = least[std::uniform_int_distribution<size_t>(0, least.size() - 1)(rng)];
    if (kill(victim, SIGKILL) == 0) {
      ++kills;
      kill_times[slot_of[victim]].push_back(now);
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const long fd1 = fd_count(p.pid());
  const long rss1 = rss_kb(p.pid());
  ASSERT_EQ(p.wait(std::chrono::seconds(60)), 0) << p.err();
  const std::string json = p.out();

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
  std::printf("[ figures  ] %d s, %d kills, %.0f restarts, restart ms p50 %.2f p99 %.2f max %.2f, "
              "xruns %.0f, overruns %.0f, fds %ld -> %ld, rss %ld -> %ld kB\n",
              seconds, kills, restarts, pct(0.5), pct(0.99), restart_ms.empty() ? -1.0 : restart_ms.back(),
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
  EXPECT_NEAR(json_number(json, "", "cycles"), (seconds + 3) * 375.0, (seconds + 3) * 37.5) << json;
  EXPECT_FALSE(segment_exists_for(p.pid()));
}

}  // namespace
}  // namespace rackd::test
