// Proves librtcount.so sees what it must: the test re-executes this binary under
// LD_PRELOAD=<RTCOUNT_LIB> with RTCOUNT_SCENARIO set; a static constructor runs
// the scenario (before gtest's main) and exits, and the test reads the report
// the library wrote. Test thread only; scenarios make their own threads.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/futex.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "shm/rt.hpp"
#include "tests/rtcount/rtcount_report.hpp"

#ifndef RTCOUNT_LIB
#define RTCOUNT_LIB "/tmp/librtcount.so"
#endif

extern char** environ;

namespace {

using rackd::RtScope;
using namespace rackd::rtcount;
namespace fs = std::filesystem;

// Keeps the compiler from removing an allocation or a computation.
template <class T>
void escape(T* p) {
  asm volatile("" : : "g"(p) : "memory");
}

long futex(std::atomic<int>& word, int op, int val) {
  return syscall(SYS_futex, reinterpret_cast<int*>(&word), op | FUTEX_PRIVATE_FLAG, val, nullptr, nullptr, 0);
}

int open_out(const char* name) {
  std::string path = std::string(getenv("RACKD_RTCOUNT_DIR")) + "/" + name;
  return open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

// ------------------------------------------------------------ scenarios (child)

// One malloc and one write(2) inside a section, nothing else.
void scenario_alloc_write() {
  std::thread([] {
    int fd = open_out("written");
    std::free(std::malloc(64));  // thread arena and tcache exist before the section
    void* p;
    {
      RtScope rt;
      p = std::malloc(64);
      escape(p);
      if (write(fd, "x", 1) != 1) std::abort();
    }
    std::free(p);
    close(fd);
  }).join();
}

// Two rt threads ping-pong through raw futex wait/wake and do arithmetic.
void scenario_futex_only() {
  constexpr int kRounds = 1000;
  std::atomic<int> turn{0};
  auto player = [&](int me) {
    double acc = 1.0;
    for (int i = 0; i < kRounds; ++i) {
      RtScope rt;
      int t;
      while ((t = turn.load(std::memory_order_acquire)) != me) futex(turn, FUTEX_WAIT, t);
      {
        RtScope nested;  // nesting must not count as another section
        for (int k = 0; k < 100; ++k) acc = acc * 1.000001 + 0.5;
      }
      turn.store(1 - me, std::memory_order_release);
      futex(turn, FUTEX_WAKE, 1);
    }
    escape(&acc);
  };
  std::thread a(player, 0), b(player, 1);
  a.join();
  b.join();
}

// A thread that never enters rt allocates and writes; another enters rt once,
// then allocates and writes outside it (its filter is installed by then).
void scenario_unmarked() {
  std::thread([] {
    int fd = open_out("unmarked");
    int* p = new int(1);
    escape(p);
    if (write(fd, "u", 1) != 1) std::abort();
    delete p;
    close(fd);
  }).join();
  std::thread([] {
    { RtScope rt; }
    int fd = open_out("after_section");
    void* p = std::malloc(128);
    escape(p);
    if (write(fd, "m", 1) != 1) std::abort();
    std::free(p);
    close(fd);
  }).join();
}

struct alignas(64) Wide {
  char bytes[64];
};

// Four flavours of operator new in one section, their deletes in another.
void scenario_new_delete() {
  std::thread([] {
    delete new int(0);  // warm-up outside any section
    delete[] new int[4];
    delete new Wide;
    int *a, *b, *d;
    Wide* c;
    {
      RtScope rt;
      a = new int(1);
      b = new int[4];
      c = new Wide;
      d = new (std::nothrow) int(2);
      escape(a), escape(b), escape(c), escape(d);
    }
    {
      RtScope rt;
      delete a;
      delete[] b;
      delete c;
      delete d;
    }
  }).join();
}

// A filtered rt thread starts another thread, which enters rt and writes: the
// inherited filter still routes its syscalls to this process's listener.
void scenario_inherited() {
  std::thread([] {
    { RtScope rt; }
    std::thread([] {
      int fd = open_out("inherited");
      {
        RtScope rt;
        if (write(fd, "i", 1) != 1) std::abort();
      }
      close(fd);
    }).join();
  }).join();
}

// Allocates in a section, then waits to be killed.
void scenario_linger() {
  std::thread([] {
    std::free(std::malloc(32));
    void* p;
    {
      RtScope rt;
      p = std::malloc(32);
      escape(p);
    }
    std::free(p);
  }).join();
  close(open_out("ready"));
  for (;;) pause();
}

struct ScenarioRunner {
  ScenarioRunner() {
    const char* s = getenv("RTCOUNT_SCENARIO");
    if (!s) return;
    const std::string name = s;
    if (name == "alloc_write")
      scenario_alloc_write();
    else if (name == "futex_only")
      scenario_futex_only();
    else if (name == "unmarked")
      scenario_unmarked();
    else if (name == "new_delete")
      scenario_new_delete();
    else if (name == "inherited")
      scenario_inherited();
    else if (name == "linger")
      scenario_linger();
    else
      std::_Exit(3);
    std::exit(0);  // runs librtcount's destructor, which writes the final report
  }
} g_scenario_runner;

// ------------------------------------------------------------ harness (parent)

class RtCount : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(RTCOUNT_LIB)) << RTCOUNT_LIB << " not built";
    char tmpl[] = "/tmp/rtcount_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void start(const std::string& scenario) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
      std::string_view v = *e;
      if (!v.starts_with("LD_PRELOAD=") && !v.starts_with("RACKD_RTCOUNT_DIR=") && !v.starts_with("RTCOUNT_SCENARIO="))
        env.emplace_back(v);
    }
    env.push_back(std::string("LD_PRELOAD=") + RTCOUNT_LIB);
    env.push_back("RACKD_RTCOUNT_DIR=" + dir_.string());
    env.push_back("RTCOUNT_SCENARIO=" + scenario);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string self = fs::read_symlink("/proc/self/exe");
    char* argv[] = {self.data(), nullptr};
    ASSERT_EQ(posix_spawn(&pid_, self.c_str(), nullptr, nullptr, argv, envp.data()), 0);
  }

  // Waits (bounded: a seccomp mistake would hang the child) and returns the status.
  int wait_exit() {
    int status = 0;
    for (int i = 0; i < 2000; ++i) {
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "child hung";
    return -1;
  }

  void run(const std::string& scenario) {
    start(scenario);
    const pid_t pid = pid_;
    const int status = wait_exit();
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
    procs_ = read_reports(dir_);
    ASSERT_EQ(procs_.size(), 1u) << summary(procs_, true);
    ASSERT_EQ(procs_[0].pid, pid);
  }

  const ProcessRecord& proc() const { return procs_.at(0); }

  std::string file(const char* name) const {
    std::ifstream in(dir_ / name);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  fs::path dir_;
  pid_t pid_ = -1;
  std::vector<ProcessRecord> procs_;
};

TEST_F(RtCount, MallocAndWriteInsideSectionAreCountedOnceAndTheWriteStillHappens) {
  run("alloc_write");
  ASSERT_EQ(proc().threads.size(), 1u) << summary(procs_, true);
  const ThreadRecord& t = proc().threads[0];
  EXPECT_EQ(t.seccomp, "own");
  EXPECT_EQ(t.sections, 1u);
  EXPECT_EQ(t.allocs, 1u);
  EXPECT_EQ(t.kind("malloc"), 1u);
  EXPECT_EQ(t.frees, 0u);
  EXPECT_EQ(t.syscalls, 1u) << summary(procs_, true);
  EXPECT_EQ(t.first_syscalls, std::vector<int>{SYS_write});
  EXPECT_FALSE(proc().clean());
  EXPECT_EQ(file("written"), "x");  // the listener let the syscall run
}

TEST_F(RtCount, FutexWaitWakeAndArithmeticAreClean) {
  run("futex_only");
  ASSERT_EQ(proc().threads.size(), 2u) << summary(procs_, true);
  for (const ThreadRecord& t : proc().threads) {
    EXPECT_EQ(t.seccomp, "own");
    EXPECT_EQ(t.sections, 1000u);  // the nested scope is not a section of its own
    EXPECT_EQ(t.allocs, 0u);
    EXPECT_EQ(t.frees, 0u);
    EXPECT_EQ(t.syscalls, 0u) << summary(procs_, true);
  }
  EXPECT_TRUE(proc().clean()) << summary(procs_, true);
}

TEST_F(RtCount, AllocationsAndSyscallsOutsideSectionsAreNotCounted) {
  run("unmarked");
  // The thread that never entered rt has no record at all.
  ASSERT_EQ(proc().threads.size(), 1u) << summary(procs_, true);
  const ThreadRecord& t = proc().threads[0];
  EXPECT_EQ(t.seccomp, "own");
  EXPECT_EQ(t.sections, 1u);
  EXPECT_TRUE(t.clean()) << summary(procs_, true);
  // Its syscalls after the section did go through the listener, and worked.
  EXPECT_GT(proc().notifications, 0u);
  EXPECT_EQ(file("unmarked"), "u");
  EXPECT_EQ(file("after_section"), "m");
}

TEST_F(RtCount, OperatorNewAndDeleteAreCounted) {
  run("new_delete");
  ASSERT_EQ(proc().threads.size(), 1u) << summary(procs_, true);
  const ThreadRecord& t = proc().threads[0];
  EXPECT_EQ(t.sections, 2u);
  EXPECT_EQ(t.kind("new"), 4u);
  EXPECT_EQ(t.allocs, 4u);
  EXPECT_EQ(t.kind("delete"), 4u);
  EXPECT_EQ(t.frees, 4u);
  EXPECT_EQ(t.kind("malloc"), 0u);
  EXPECT_EQ(t.syscalls, 0u) << summary(procs_, true);
}

TEST_F(RtCount, ThreadStartedByFilteredThreadIsCountedThroughInheritedFilter) {
  run("inherited");
  ASSERT_EQ(proc().threads.size(), 2u) << summary(procs_, true);
  const ThreadRecord& parent = proc().threads[0];
  const ThreadRecord& child = proc().threads[1];
  EXPECT_EQ(parent.seccomp, "own");
  EXPECT_TRUE(parent.clean());
  EXPECT_EQ(child.seccomp, "inherited");
  EXPECT_EQ(child.syscalls, 1u) << summary(procs_, true);
  EXPECT_TRUE(child.saw_syscall(SYS_write));
  EXPECT_EQ(file("inherited"), "i");
}

TEST_F(RtCount, ReportIsWrittenWhileRunningSoSigkillLosesNothing) {
  start("linger");
  const pid_t pid = pid_;
  std::vector<ProcessRecord> procs;
  for (int i = 0; i < 500; ++i) {  // the listener rewrites every 200 ms
    procs = read_reports(dir_);
    if (fs::exists(dir_ / "ready") && !procs.empty() && !procs[0].threads.empty() &&
        procs[0].threads[0].kind("malloc") == 1)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  wait_exit();
  procs = read_reports(dir_);
  ASSERT_EQ(procs.size(), 1u);
  EXPECT_EQ(procs[0].pid, pid);
  ASSERT_EQ(procs[0].threads.size(), 1u) << summary(procs, true);
  EXPECT_EQ(procs[0].threads[0].kind("malloc"), 1u);
}

TEST_F(RtCount, SigtermWritesTheReportAndStillKillsTheProcess) {
  start("linger");
  for (int i = 0; i < 500 && !fs::exists(dir_ / "ready"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  kill(pid_, SIGTERM);
  const int status = wait_exit();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << "status " << status;
  auto procs = read_reports(dir_);
  ASSERT_EQ(procs.size(), 1u);
  ASSERT_EQ(procs[0].threads.size(), 1u) << summary(procs, true);
  EXPECT_EQ(procs[0].threads[0].allocs, 1u);
}

TEST(RtCountReport, SummaryNamesViolationsAndSyscalls) {
  ProcessRecord p;
  p.pid = 42;
  p.comm = "rackd";
  ThreadRecord t;
  t.tid = 43;
  t.sections = 10;
  t.syscalls = 2;
  t.first_syscalls = {1, 9};
  t.seccomp = "own";
  p.threads.push_back(t);
  const std::string s = summary({p});
  EXPECT_NE(s.find("VIOLATIONS"), std::string::npos) << s;
#if defined(__x86_64__)
  EXPECT_NE(s.find("write(1) mmap(9)"), std::string::npos) << s;
#endif
}

}  // namespace
