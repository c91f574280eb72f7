// Segment: creation, validation on attach, permissions, stale cleanup, and a
// two-process producer/consumer on a real segment.
#include "shm/segment.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <filesystem>

#include "shm/futex.hpp"

namespace rackd::shm {
namespace {

std::string test_name(const char* tag) { return "rackd-test-" + std::to_string(getpid()) + "-" + tag; }

SegmentPlan small_plan() {
  SegmentPlan p;
  p.rate_hz = 48000;
  p.block_frames = 64;
  p.module_count = 2;
  p.buses = {{2, kNoBus}, {2, 0}, {1, 1}};
  return p;
}

TEST(Segment, CreatedWithMode0600AndRemovedWhenTheOwnerGoes) {
  const std::string name = test_name("mode");
  {
    auto seg = Segment::create(name, small_plan());
    struct stat st{};
    ASSERT_EQ(stat(("/dev/shm/" + name).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
  EXPECT_FALSE(std::filesystem::exists("/dev/shm/" + name));
}

TEST(Segment, AttachSeesTheLayoutTheServerWrote) {
  const std::string name = test_name("attach");
  auto seg = Segment::create(name, small_plan());
  auto peer = Segment::attach(name);
  EXPECT_EQ(peer->header().module_count, 2u);
  EXPECT_EQ(peer->bus_count(), 3u);
  EXPECT_EQ(peer->ring(2).geometry().channels, 1u);
  EXPECT_EQ(peer->ring(1).geometry().frames, 64u);
  EXPECT_EQ(peer->module_in(1).slot, 1u);
}

TEST(Segment, CreateRefusesAnExistingName) {
  const std::string name = test_name("twice");
  auto seg = Segment::create(name, small_plan());
  EXPECT_THROW(Segment::create(name, small_plan()), std::runtime_error);
}

TEST(Segment, AttachRejectsWrongMagicVersionAndSize) {
  namespace bip = boost::interprocess;
  const std::string name = test_name("garbage");
  {
    bip::shared_memory_object o(bip::create_only, name.c_str(), bip::read_write, bip::permissions(0600));
    o.truncate(8192);
    bip::mapped_region r(o, bip::read_write);
    std::memset(r.get_address(), 0x5a, 8192);
  }
  try {
    Segment::attach(name);
    FAIL() << "garbage segment attached";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("magic"), std::string::npos) << e.what();
  }
  bip::shared_memory_object::remove(name.c_str());

  const std::string name2 = test_name("version");
  auto seg = Segment::create(name2, small_plan());
  // A module built against another SDK is refused with both protocol numbers.
  seg->header().version = kVersion + 1;
  try {
    Segment::attach(name2);
    FAIL() << "a segment of another protocol attached";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("the server speaks rackd module protocol " + std::to_string(kVersion + 1) +
                                         "; this was built against protocol " + std::to_string(kVersion)),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(kVersion, rackd::kModuleProtocol);
  seg->header().version = kVersion;
  seg->header().bus_offset[1] += 8;  // no longer page aligned
  EXPECT_THROW(Segment::attach(name2), std::runtime_error);
}

TEST(Segment, AttachToMissingSegmentNamesIt) {
  try {
    Segment::attach("rackd-test-does-not-exist");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("rackd-test-does-not-exist"), std::string::npos);
  }
}

TEST(Segment, StaleSegmentOfADeadServerIsRemovedLiveOnesAreKept) {
  // A child that exits leaves a pid that is no longer alive.
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, nullptr, 0);
  const std::string stale = segment_name(getuid(), dead);
  auto keep = Segment::create(segment_name(getuid(), getpid()), small_plan());
  {
    auto s = Segment::create(stale, small_plan());
    s->remove_name();  // keep the object: simulate a server killed with SIGKILL
    namespace bip = boost::interprocess;
    bip::shared_memory_object o(bip::create_only, stale.c_str(), bip::read_write, bip::permissions(0600));
    o.truncate(4096);
  }
  ASSERT_TRUE(std::filesystem::exists("/dev/shm/" + stale));
  auto removed = remove_stale_segments(getuid());
  EXPECT_NE(std::find(removed.begin(), removed.end(), stale), removed.end());
  EXPECT_FALSE(std::filesystem::exists("/dev/shm/" + stale));
  EXPECT_TRUE(std::filesystem::exists("/dev/shm/" + keep->name()));
}

// A second process attaches, maps its output bus writable, and produces blocks
// through the ring while this process consumes them in place, with the
// module's completion word as the futex both sides use.
TEST(Segment, TwoProcessesExchangeBlocksThroughARealSegment) {
  const std::string name = test_name("twoproc");
  auto seg = Segment::create(name, small_plan());
  const uint32_t blocks = 5000;
  pid_t child = fork();
  if (child == 0) {
    try {
      auto s = Segment::attach(name);
      const uint64_t off = s->header().bus_offset[1];
      RingGeometry g = s->ring(1).geometry();
      auto* p = static_cast<std::byte*>(s->map_writable(off, sizeof(BusHeader) + ((g.data_bytes() + 4095) / 4096) * 4096));
      RingView w(reinterpret_cast<BusHeader*>(p), reinterpret_cast<float*>(p + sizeof(BusHeader)), g);
      auto* out = static_cast<ModuleOut*>(s->map_writable(s->module_out_offset(0), sizeof(ModuleOut)));
      for (uint32_t seq = 0; seq < blocks; ++seq) {
        while (!w.can_write(seq)) std::this_thread::yield();
        for (uint32_t c = 0; c < g.channels; ++c)
          for (uint32_t i = 0; i < g.frames; ++i) w.channel(seq, c)[i] = static_cast<float>(seq * 2 + c) + i * 1e-3f;
        w.publish(seq);
        out->done.store(seq + 1, std::memory_order_seq_cst);
        futex_wake(out->done, 1);
      }
      _exit(0);
    } catch (...) {
      _exit(3);
    }
  }
  RingView r = seg->ring(1);
  ModuleOut& out = seg->module_out(0);
  uint64_t bad = 0;
  for (uint32_t seq = 0; seq < blocks; ++seq) {
    uint32_t d;
    while ((d = out.done.load(std::memory_order_acquire)) < seq + 1) futex_wait(out.done, d, now_ns() + 100'000'000);
    ASSERT_TRUE(r.available(seq));
    for (uint32_t c = 0; c < 2; ++c)
      for (uint32_t i = 0; i < 64; ++i) bad += r.channel(seq, c)[i] != static_cast<float>(seq * 2 + c) + i * 1e-3f;
    r.release(seq);
  }
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(bad, 0u);
}

TEST(Segment, ReadOnlyAttachCannotWriteServerPages) {
  const std::string name = test_name("ro");
  auto seg = Segment::create(name, small_plan());
  pid_t child = fork();
  if (child == 0) {
    auto s = Segment::attach(name);
    // Writing a parameter through the read-only mapping must fault.
    const_cast<ModuleIn&>(s->module_in(0)).late.store(42);
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
  EXPECT_EQ(seg->module_in(0).late.load(), 0u);
}

}  // namespace
}  // namespace rackd::shm
