// vcpu_gaps: how often, and for how long, this machine's CPUs stop running
// guest code behind the guest's back (a hypervisor running something else on
// the physical core: steal time that this VM's kernel does not report, its
// /proc/stat steal column stays 0).
//
// One thread per CPU, pinned there at SCHED_FIFO 99, spins in user space
// reading CLOCK_MONOTONIC for `spin` ms, then sleeps `rest` ms (so the machine
// keeps working: the duty cycle is spin / (spin + rest)). A gap between two
// readings longer than `threshold` us is counted only when the thread was not
// switched out in the guest (its involuntary and voluntary context switch
// counts did not move): inside the guest, only an interrupt handler could then
// have taken the CPU, and none runs for milliseconds. So a gap of milliseconds
// is time the vCPU itself did not run.
//
//   build/release/bin/vcpu_gaps [seconds=20] [spin_ms=4] [rest_ms=6] [threshold_us=200]
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string_view>
#include <thread>
#include <vector>

namespace {

long long now_ns() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

long switches() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return u.ru_nivcsw + u.ru_nvcsw;
}

struct Result {
  int cpu = 0;
  bool rt = false;
  long long spun_ns = 0;
  long long lost_ns = 0;      // in gaps with no guest context switch
  long long switched_ns = 0;  // in gaps where the guest did switch us out
  std::vector<long long> gaps_us;
};

void watch(Result& r, int seconds, int spin_ms, int rest_ms, int threshold_us) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(r.cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  sched_param p{};
  p.sched_priority = 99;
  r.rt = pthread_setschedparam(pthread_self(), SCHED_FIFO, &p) == 0;
  const long long end = now_ns() + seconds * 1000000000LL;
  while (now_ns() < end) {
    const long long stop = now_ns() + spin_ms * 1000000LL;
    long long last = now_ns();
    long long sw = switches();
    const long long start = last;
    while (last < stop) {
      const long long t = now_ns();
      if (t - last > threshold_us * 1000LL) {
        const long long s = switches();
        if (s == sw) {
          r.gaps_us.push_back((t - last) / 1000);
          r.lost_ns += t - last;
        } else {
          r.switched_ns += t - last;
        }
        sw = s;
      }
      last = t;
    }
    r.spun_ns += last - start;
    const timespec pause{0, rest_ms * 1000000L};
    clock_nanosleep(CLOCK_MONOTONIC, 0, &pause, nullptr);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
    std::puts("usage: vcpu_gaps [seconds=20] [spin_ms=4] [rest_ms=6] [threshold_us=200]");
    return 0;
  }
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 20;
  const int spin_ms = argc > 2 ? std::atoi(argv[2]) : 4;
  const int rest_ms = argc > 3 ? std::atoi(argv[3]) : 6;
  const int threshold_us = argc > 4 ? std::atoi(argv[4]) : 200;
  mlockall(MCL_CURRENT | MCL_FUTURE);
  cpu_set_t set;
  CPU_ZERO(&set);
  sched_getaffinity(0, sizeof set, &set);
  std::vector<Result> results;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) {
      Result r;
      r.cpu = c;
      results.push_back(r);
    }
  std::vector<std::thread> threads;
  for (Result& r : results)
    threads.emplace_back([&r, seconds, spin_ms, rest_ms, threshold_us] {
      watch(r, seconds, spin_ms, rest_ms, threshold_us);
    });
  for (std::thread& t : threads) t.join();
  std::printf("vcpu_gaps: %d s, spin %d ms / rest %d ms per CPU at SCHED_FIFO 99, gaps > %d us with no guest "
              "context switch\n", seconds, spin_ms, rest_ms, threshold_us);
  for (Result& r : results) {
    std::sort(r.gaps_us.begin(), r.gaps_us.end());
    auto over = [&](long long us) {
      return static_cast<long>(r.gaps_us.end() - std::upper_bound(r.gaps_us.begin(), r.gaps_us.end(), us));
    };
    std::printf("  cpu %d%s: spun %.2f s, lost %.1f ms (%.3f %%) in %zu gaps: > 0.5 ms %ld, > 1 ms %ld, > 3 ms %ld, "
                "> 10 ms %ld, max %.2f ms; switched out in the guest %.1f ms\n",
                r.cpu, r.rt ? "" : " (not real-time)", r.spun_ns / 1e9, r.lost_ns / 1e6,
                r.spun_ns ? 100.0 * r.lost_ns / r.spun_ns : 0.0, r.gaps_us.size(), over(500), over(1000),
                over(3000), over(10000), r.gaps_us.empty() ? 0.0 : r.gaps_us.back() / 1e3, r.switched_ns / 1e6);
  }
  return 0;
}
