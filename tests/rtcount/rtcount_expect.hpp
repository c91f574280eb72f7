// The assertion every librtcount test makes, in GoogleTest terms: the named
// processes ran real-time sections, and none of their audio threads allocated,
// freed or made a system call other than futex in them. [test] thread.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "tests/rtcount/rtcount_report.hpp"

namespace rackd::rtcount {

// Every process named in expect_comms (exact /proc comm, 15 characters at
// most) ran real-time sections, and every one of them was clean.
inline void expect_clean(const std::string& dir, const std::vector<std::string>& expect_comms) {
  const auto procs = read_reports(dir);
  std::printf("%s", summary(procs, true).c_str());
  for (const auto& c : expect_comms) {
    bool seen = false;
    for (const auto& p : procs) {
      if (p.comm != c || p.threads.empty()) continue;
      for (const auto& t : p.threads) {
        // A process killed before it finished its first section has nothing to say.
        if (t.sections == 0) continue;
        seen = true;
        EXPECT_TRUE(t.syscalls_counted()) << p.comm << ": seccomp " << t.seccomp;
        EXPECT_EQ(t.allocs, 0u) << p.comm << " tid " << t.tid;
        EXPECT_EQ(t.frees, 0u) << p.comm << " tid " << t.tid;
        EXPECT_EQ(t.syscalls, 0u) << p.comm << " tid " << t.tid;
      }
      EXPECT_EQ(p.lost_threads, 0u);
    }
    EXPECT_TRUE(seen) << "no real-time report from " << c << "\n" << summary(procs, true);
  }
}

}  // namespace rackd::rtcount
