// wakeup_latency: how late this machine wakes a SCHED_FIFO thread, the floor
// under any real-time audio figure (rackd's, JACK2's, anyone's). Sleeps to
// absolute 1 ms deadlines and histograms the lateness.
//
//   build/release/bin/wakeup_latency [seconds=10] [priority=80]
#include <sched.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

namespace {

long long now_ns() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

}  // namespace

int main(int argc, char** argv) {
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 10;
  sched_param p{};
  p.sched_priority = argc > 2 ? std::atoi(argv[2]) : 80;
  const bool rt = sched_setscheduler(0, SCHED_FIFO, &p) == 0;
  mlockall(MCL_CURRENT | MCL_FUTURE);
  std::vector<long long> late_us;
  long long next = now_ns();
  for (int i = 0; i < seconds * 1000; ++i) {
    next += 1000000;
    timespec ts{static_cast<time_t>(next / 1000000000), static_cast<long>(next % 1000000000)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
    const long long now = now_ns();
    late_us.push_back((now - next) / 1000);
    if (now - next > 1000000) next = now;  // do not try to catch up after a stall
  }
  std::sort(late_us.begin(), late_us.end());
  auto pct = [&](double q) { return late_us[std::min(late_us.size() - 1, size_t(q * late_us.size()))]; };
  const long long limits[] = {50, 200, 500, 1000, 2667, 5000};
  std::printf("wakeup lateness over %d s (%s): p50 %lld us, p99 %lld us, p99.9 %lld us, max %lld us\n", seconds,
              rt ? "SCHED_FIFO" : "SCHED_OTHER: real-time refused", pct(0.5), pct(0.99), pct(0.999), late_us.back());
  for (long long lim : limits) {
    long n = std::count_if(late_us.begin(), late_us.end(), [&](long long v) { return v > lim; });
    std::printf("  later than %5lld us: %ld\n", lim, n);
  }
  return 0;
}
