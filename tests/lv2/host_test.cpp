// The LV2 host pieces of rackd-lv2 on their own: the URID map (stable ids,
// unmap, lookups from many threads), the SPSC ring, and the worker's round
// trip from a fake plugin's run() to its work_response().
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "modules/lv2/lv2_host.hpp"

namespace rackd::lv2 {
namespace {

TEST(UridMap, MapsOnceAndUnmaps) {
  UridMap m;
  const LV2_URID a = m.map("urn:a"), b = m.map("urn:b");
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, b);
  EXPECT_EQ(m.map("urn:a"), a);
  EXPECT_STREQ(m.unmap(a), "urn:a");
  EXPECT_EQ(m.unmap(0), nullptr);
  EXPECT_EQ(m.unmap(UridMap::kSlots + 1), nullptr);
}

TEST(UridMap, ConcurrentMappersAgree) {
  UridMap m;
  std::vector<std::vector<LV2_URID>> ids(4);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) ids[t].push_back(m.map(("urn:x:" + std::to_string(i)).c_str()));
    });
  for (auto& t : ts) t.join();
  for (int t = 1; t < 4; ++t) EXPECT_EQ(ids[t], ids[0]);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(m.unmap(ids[0][i]), "urn:x:" + std::to_string(i));
}

TEST(Ring, MessagesInOrderAndFullIsRefused) {
  Ring r(64);
  const char a[] = "hello", b[] = "world!";
  EXPECT_TRUE(r.write(a, sizeof a));
  EXPECT_TRUE(r.write(b, sizeof b));
  char big[64] = {};
  EXPECT_FALSE(r.write(big, sizeof big));
  char out[16];
  ASSERT_EQ(r.peek(), sizeof a);
  r.read(out, sizeof a);
  EXPECT_STREQ(out, a);
  ASSERT_EQ(r.peek(), sizeof b);
  r.read(out, sizeof b);
  EXPECT_STREQ(out, b);
  EXPECT_EQ(r.peek(), 0u);
  for (int i = 0; i < 100; ++i) {  // wraps around
    ASSERT_TRUE(r.write(b, sizeof b));
    ASSERT_EQ(r.peek(), sizeof b);
    r.read(out, sizeof b);
    ASSERT_STREQ(out, b);
  }
}

// A fake plugin: work() doubles the number, work_response() adds it up.
struct Fake {
  std::atomic<int> sum{0};
  int end_runs = 0;
};

TEST(Worker, RunScheduleWorkResponseEndRun) {
  static const LV2_Worker_Interface iface = {
      [](LV2_Handle, LV2_Worker_Respond_Function respond, LV2_Worker_Respond_Handle h, uint32_t size,
         const void* data) {
        int v;
        std::memcpy(&v, data, size);
        v *= 2;
        return respond(h, sizeof v, &v);
      },
      [](LV2_Handle self, uint32_t size, const void* data) {
        int v;
        std::memcpy(&v, data, size);
        static_cast<Fake*>(self)->sum += v;
        return LV2_WORKER_SUCCESS;
      },
      [](LV2_Handle self) {
        ++static_cast<Fake*>(self)->end_runs;
        return LV2_WORKER_SUCCESS;
      }};
  Fake fake;
  Worker w;
  w.start(&iface, &fake);
  LV2_Worker_Schedule* s = w.schedule_feature();
  for (int i = 1; i <= 10; ++i) ASSERT_EQ(s->schedule_work(s->handle, sizeof i, &i), LV2_WORKER_SUCCESS);
  for (int i = 0; i < 2000 && fake.sum < 110; ++i) {
    w.deliver();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(fake.sum, 110);
  EXPECT_GT(fake.end_runs, 0);
}

}  // namespace
}  // namespace rackd::lv2
