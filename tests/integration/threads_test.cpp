// Integration: the scheduling policy, priority and CPUs of every thread of
// every module process, live on a dummy JACK device (the `chrt -p` and
// `taskset -p` of each thread, read per thread id), before and after a module
// restart. The patch is a capture → hrir chain at block 64 with a 48,000-tap
// 14-channel HeSuVi response, so the hrir module runs all three of its threads.
//
// The policy asserted (see shm/rt.hpp and server/audio_cpu.hpp):
//  * every module's block loop (its main thread) at SCHED_FIFO N, where N is
//    what rackd logs ("modules at SCHED_FIFO N": --rt-priority, lowered to one
//    below the device thread when the chain shares a CPU), pinned to the
//    audio CPU rackd logs;
//  * hrir's convolution tail ("rackd-conv-tail") at SCHED_FIFO N - 1, on every
//    CPU rackd may use: its jobs run beside the chain, on the other CPU when
//    there is one;
//  * hrir's filter builder ("rackd-builder") SCHED_OTHER: heavy work without a
//    deadline;
//  * no other thread in a module process.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "tests/integration/harness.hpp"

namespace rackd::test {
namespace {

namespace fs = std::filesystem;

struct ThreadInfo {
  pid_t tid = 0;
  std::string name;
  int policy = -1;
  int priority = -1;
  std::vector<int> cpus;
};

const char* policy_name(int p) {
  switch (p & ~SCHED_RESET_ON_FORK) {
    case SCHED_OTHER: return "SCHED_OTHER";
    case SCHED_FIFO: return "SCHED_FIFO";
    case SCHED_RR: return "SCHED_RR";
    case SCHED_BATCH: return "SCHED_BATCH";
    case SCHED_IDLE: return "SCHED_IDLE";
    default: return "?";
  }
}

std::string cpu_list(const std::vector<int>& cpus) {
  std::string s;
  for (int c : cpus) s += (s.empty() ? "" : ",") + std::to_string(c);
  return s;
}

std::vector<ThreadInfo> threads_of(pid_t pid) {
  std::vector<ThreadInfo> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    ThreadInfo t;
    t.tid = std::stoi(e.path().filename().string());
    std::ifstream(e.path() / "comm") >> t.name;
    t.policy = sched_getscheduler(t.tid) & ~SCHED_RESET_ON_FORK;
    sched_param p{};
    if (sched_getparam(t.tid, &p) == 0) t.priority = p.sched_priority;
    t.cpus = cpus_of(t.tid);
    out.push_back(t);
  }
  return out;
}

// The audio CPU now: where rackd pinned the chain, or where its CPU watcher
// last moved it ("audio threads moved from CPU 0 to CPU 1: ...").
int audio_cpu_now(const std::string& err) {
  const std::string key = "audio threads moved from CPU ";
  const size_t at = err.rfind(key);
  if (at == std::string::npos) return logged(err, "modules on CPU ");
  const size_t to = err.find(" to CPU ", at);
  return to == std::string::npos ? -1 : std::atoi(err.c_str() + to + 8);
}

// A HeSuVi file: 14 tracks of `frames` taps, decaying noise after a peak.
std::string write_long_hesuvi(const std::string& dir, size_t frames) {
  Audio a;
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  for (int c = 0; c < 14; ++c) {
    std::vector<float> t(frames);
    for (size_t i = 0; i < frames; ++i) t[i] = 0.01f * noise(rng) * std::exp(-6.0f * i / frames);
    t[20 + c] = 0.5f;
    a.ch.push_back(std::move(t));
  }
  const std::string path = dir + "/long-hesuvi.wav";
  write_audio(path, a);
  return path;
}

// Lists every thread of every module of `rackd` (printed for the record) and
// checks each against the policy above. `audio_cpu` < 0: nothing pinned.
void check_module_threads(pid_t rackd, int fifo, int audio_cpu, const std::vector<int>& all_cpus) {
  const std::vector<pid_t> modules = children(rackd, "rackd-");
  ASSERT_EQ(modules.size(), 2u);
  bool saw_tail = false, saw_builder = false;
  for (pid_t m : modules) {
    const std::string module = comm_of(m);
    for (const ThreadInfo& t : threads_of(m)) {
      std::printf("[ threads  ] %-12s pid %6d tid %6d %-16s %-11s %2d cpus %s\n", module.c_str(), m, t.tid,
                  t.name.c_str(), policy_name(t.policy), t.priority, cpu_list(t.cpus).c_str());
      const std::string who = module + " thread " + t.name + " (" + std::to_string(t.tid) + ")";
      if (t.tid == m) {  // the block loop
        EXPECT_EQ(t.policy, SCHED_FIFO) << who;
        EXPECT_EQ(t.priority, fifo) << who;
        if (audio_cpu >= 0) {
          EXPECT_EQ(t.cpus, std::vector<int>{audio_cpu}) << who;
        }
      } else if (t.name == "rackd-conv-tail") {
        saw_tail = true;
        EXPECT_EQ(t.policy, SCHED_FIFO) << who;
        EXPECT_EQ(t.priority, fifo - 1) << who;
        EXPECT_EQ(t.cpus, all_cpus) << who;
      } else if (t.name == "rackd-builder") {
        saw_builder = true;
        EXPECT_EQ(t.policy, SCHED_OTHER) << who;
        EXPECT_EQ(t.cpus, all_cpus) << who;
      } else {
        ADD_FAILURE() << "unexpected " << who << " at " << policy_name(t.policy) << " " << t.priority;
      }
    }
  }
  EXPECT_TRUE(saw_tail) << "no rackd-conv-tail thread";
  EXPECT_TRUE(saw_builder) << "no rackd-builder thread";
}

TEST(LiveThreads, EveryModuleThreadHasItsPolicyBeforeAndAfterARestart) {
  DummyJack jack(48000, 64);
  ASSERT_TRUE(jack.ready()) << jack.log();
  const std::string d = temp_dir();
  const std::string hesuvi = write_long_hesuvi(d, 48000);
  std::ofstream(d + "/hrir.toml") << "[server]\nblock = 64\n\n"
                                     "[[module]]\nname = \"src\"\ntype = \"capture\"\nsource = \"noise\"\n"
                                     "channels = 8\n\n"
                                  << "[[module]]\nname = \"bin\"\ntype = \"hrir\"\ninput = \"src\"\nhesuvi = \""
                                  << hesuvi << "\"\nlayout = \"7.1\"\n\n[output]\nfrom = \"bin\"\n";
  // --rt-priority above the device thread's: rackd lowers the modules (by
  // process id) to one below it, which the helpers must follow.
  Process p({bin("rackd"), "run", d + "/hrir.toml", "--duration", "25", "--rt-priority", "60"}, jack.env());
  for (int i = 0; i < 20000 && p.err().find("playing") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_NE(p.err().find("playing"), std::string::npos) << p.err();
  const std::string err = p.err();
  const int fifo = logged(err, "modules at SCHED_FIFO ");
  const int audio_cpu = audio_cpu_now(err);
  const int device = logged(err, "below the device thread's SCHED_FIFO ");
  std::printf("[ threads  ] device thread SCHED_FIFO %d; modules at SCHED_FIFO %d; audio CPU %d\n", device, fifo,
              audio_cpu);
  ASSERT_GT(fifo, 1) << "rackd did not run the modules real-time:\n" << err;
  EXPECT_EQ(fifo, std::min(60, device - 1)) << err;
  const std::vector<int> all_cpus = cpus_of(0);
  check_module_threads(p.pid(), fifo, audio_cpu, all_cpus);

  // A restarted module takes the same places from the segment, helpers included.
  pid_t hrir = -1;
  for (pid_t c : children(p.pid(), "rackd-hrir")) hrir = c;
  ASSERT_GT(hrir, 0);
  ASSERT_EQ(kill(hrir, SIGKILL), 0);
  for (int i = 0; i < 20000 && p.err().find("is back after") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_NE(p.err().find("is back after"), std::string::npos) << p.err();
  std::printf("[ threads  ] after the hrir module's restart (audio CPU %d):\n", audio_cpu_now(p.err()));
  check_module_threads(p.pid(), fifo, audio_cpu_now(p.err()), all_cpus);

  p.signal(SIGINT);
  EXPECT_EQ(p.wait(std::chrono::seconds(30)), 0) << p.err();
}

}  // namespace
}  // namespace rackd::test
