// Integration: rackd's CPU watcher (server/audio_cpu.hpp) live on a dummy JACK
// device, with the audio CPU made to lose time on purpose by a SCHED_FIFO
// spinner this test pins there.
//
//  * Lost cycles: the spinner sits one priority above the modules and below
//    the device thread, spinning 3.5 ms every 12 ms, so a module woken during
//    a spin cannot run and its block comes late, as on a vCPU the host takes
//    away. The chain must move to the other CPU, once.
//  * A held CPU: with that rule turned off (RACKD_AUDIO_CPU_ON_LOSS=0), a spinner
//    above the device thread holding the CPU 30 ms at a time: the chain must
//    move to the other CPU.
//
// The spinner's share of the CPU is bounded (it sleeps between spins) and it
// is stopped before the test checks the result.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/integration/harness.hpp"

namespace rackd::test {
namespace {

namespace fs = std::filesystem;

// rackd's device thread: its one SCHED_FIFO thread at `priority`.
pid_t device_thread(pid_t rackd, int priority) {
  pid_t found = -1;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(rackd) + "/task", ec)) {
    const pid_t tid = std::stoi(e.path().filename().string());
    sched_param p{};
    if ((sched_getscheduler(tid) & ~SCHED_RESET_ON_FORK) == SCHED_FIFO && sched_getparam(tid, &p) == 0 &&
        p.sched_priority == priority)
      found = tid;
  }
  return found;
}

// The CPU b of rackd's first (or last) "audio threads moved from CPU a to CPU
// b" line, or -1.
int move_target(const std::string& err, bool last) {
  constexpr const char* kMoved = "audio threads moved from CPU ";
  const size_t at = last ? err.rfind(kMoved) : err.find(kMoved);
  const size_t to = at == std::string::npos ? at : err.find(" to CPU ", at);
  return to == std::string::npos ? -1 : std::atoi(err.c_str() + to + 8);
}

bool wait_for(const Process& p, const std::string& text, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (p.err().find(text) == std::string::npos) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// A SCHED_FIFO thread on `cpu` at `priority` that spins `spin` in every
// `every` until stopped (or until `limit` passed).
class Spinner {
 public:
  Spinner(int cpu, int priority, std::chrono::microseconds spin, std::chrono::microseconds every,
          std::chrono::seconds limit)
      : thread_([=, this] {
          cpu_set_t set;
          CPU_ZERO(&set);
          CPU_SET(cpu, &set);
          pthread_setaffinity_np(pthread_self(), sizeof set, &set);
          sched_param sp{};
          sp.sched_priority = priority;
          realtime_ = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0;
          started_.store(true);
          const auto end = std::chrono::steady_clock::now() + limit;
          while (!stop_.load() && std::chrono::steady_clock::now() < end) {
            const auto until = std::chrono::steady_clock::now() + spin;
            while (std::chrono::steady_clock::now() < until) {
            }
            std::this_thread::sleep_for(every - spin);
          }
        }) {
    while (!started_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~Spinner() { stop(); }
  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  bool realtime() const { return realtime_; }

 private:
  std::atomic<bool> stop_{false}, started_{false};
  bool realtime_ = false;
  std::thread thread_;
};

struct Started {
  int audio_cpu = -1, module_fifo = -1, device_fifo = -1;
};

Started start(Process& p) {
  Started s;
  if (!wait_for(p, "playing", std::chrono::seconds(20))) return s;
  const std::string err = p.err();
  s.audio_cpu = logged(err, "modules on CPU ");
  s.module_fifo = logged(err, "modules at SCHED_FIFO ");
  s.device_fifo = logged(err, "below the device thread's SCHED_FIFO ");
  return s;
}

TEST(AudioCpuLive, AChainThatLosesCyclesOnItsCpuMovesToAnother) {
  if (cpus_of(0).size() < 2) GTEST_SKIP() << "one CPU: rackd pins nothing";
  DummyJack jack(48000, 128);
  ASSERT_TRUE(jack.ready()) << jack.log();
  // Modules at SCHED_FIFO 2, so the spinner fits at 3, under the device thread.
  Process p({bin("rackd"), "run", source("patches/tone.toml"), "--duration", "8", "--rt-priority", "2"},
            jack.env());
  const Started s = start(p);
  ASSERT_GE(s.audio_cpu, 0) << "rackd did not pin the chain (not real-time here?):\n" << p.err();
  ASSERT_EQ(s.module_fifo, 2) << p.err();
  const std::vector<pid_t> modules = children(p.pid(), "rackd-");
  ASSERT_EQ(modules.size(), 1u);
  const pid_t module = modules[0];
  const pid_t device = device_thread(p.pid(), s.device_fifo);
  ASSERT_GT(device, 0) << p.err();
  EXPECT_EQ(cpus_of(module), std::vector<int>{s.audio_cpu});
  EXPECT_EQ(cpus_of(device), std::vector<int>{s.audio_cpu});

  const auto t0 = std::chrono::steady_clock::now();
  {
    Spinner spinner(s.audio_cpu, 3, std::chrono::microseconds(3500), std::chrono::microseconds(12000),
                    std::chrono::seconds(5));
    ASSERT_TRUE(spinner.realtime()) << "the test could not start its SCHED_FIFO spinner";
    EXPECT_TRUE(wait_for(p, "cycles lost on CPU ", std::chrono::seconds(4))) << p.err();
  }
  const double moved_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ figures  ] the chain moved %.2f s after the spinner started\n", moved_s);
  // The first move leaves the spinner's CPU. The machine itself may lose
  // cycles on the other CPU afterwards (a vCPU the host takes away), and the
  // watcher may then move the chain again: the threads follow its last move.
  const std::string err = p.err();
  const int first = move_target(err, false);
  ASSERT_GE(first, 0) << err;
  EXPECT_NE(first, s.audio_cpu) << err;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const std::string before = p.err();
    const int now = move_target(before, true);
    const std::vector<int> module_cpus = cpus_of(module), device_cpus = cpus_of(device);
    // A move sets the threads' CPUs, then logs: a line that comes within
    // 20 ms means one happened while we looked.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (p.err() != before) continue;
    EXPECT_EQ(module_cpus, std::vector<int>{now}) << "the module's block loop\n" << before;
    EXPECT_EQ(device_cpus, std::vector<int>{now}) << "the device thread\n" << before;
    break;
  }

  ASSERT_EQ(p.wait(std::chrono::seconds(30)), 0) << p.err();
  const std::string json = p.out();
  EXPECT_GE(json_number(json, "audio_cpu", "moves_lost"), 1) << json << "\n" << p.err();
  std::printf("[ figures  ] moves after lost cycles %.0f (the spinner's, then the machine's own)\n",
              json_number(json, "audio_cpu", "moves_lost"));
  EXPECT_EQ(json_number(json, "tone", "restarts"), 0) << json;
}

TEST(AudioCpuLive, AChainHeldUpOnItsCpuMovesToAnother) {
  if (cpus_of(0).size() < 2) GTEST_SKIP() << "one CPU: rackd pins nothing";
  DummyJack jack(48000, 128);
  ASSERT_TRUE(jack.ready()) << jack.log();
  std::vector<std::string> env = jack.env();
  env.push_back("RACKD_AUDIO_CPU_ON_LOSS=0");
  Process p({bin("rackd"), "run", source("patches/tone.toml"), "--duration", "8"}, env);
  const Started s = start(p);
  ASSERT_GE(s.audio_cpu, 0) << "rackd did not pin the chain (not real-time here?):\n" << p.err();
  const std::vector<pid_t> modules = children(p.pid(), "rackd-");
  ASSERT_EQ(modules.size(), 1u);
  {
    // Above the device thread and the modules, below jackd: the chain, woken
    // there, waits 30 ms at a time.
    Spinner spinner(s.audio_cpu, s.device_fifo + 1, std::chrono::milliseconds(30), std::chrono::milliseconds(300),
                    std::chrono::seconds(5));
    ASSERT_TRUE(spinner.realtime()) << "the test could not start its SCHED_FIFO spinner";
    EXPECT_TRUE(wait_for(p, "audio threads moved from CPU ", std::chrono::seconds(4))) << p.err();
  }
  const std::string err = p.err();
  const int to = move_target(err, false);
  ASSERT_GE(to, 0) << err;
  EXPECT_NE(to, s.audio_cpu) << err;
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (p.err() == err) {
    EXPECT_EQ(cpus_of(modules[0]), std::vector<int>{move_target(err, true)}) << err;
  }
  EXPECT_EQ(err.find("cycles lost on CPU"), std::string::npos) << err;
  ASSERT_EQ(p.wait(std::chrono::seconds(30)), 0) << err;
  EXPECT_GE(json_number(p.out(), "audio_cpu", "moves_held"), 1) << p.out();
}

}  // namespace
}  // namespace rackd::test
