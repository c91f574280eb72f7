// BlockRing: unit tests and a threaded producer/consumer stress test.
#include "shm/block_ring.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

namespace rackd::shm {
namespace {

// A ring in ordinary memory: header + capacity + 1 blocks.
struct LocalRing {
  explicit LocalRing(uint32_t channels, uint32_t frames, uint32_t capacity = kRingBlocks)
      : header(std::make_unique<BusHeader>()),
        geometry(RingGeometry::make(channels, frames, capacity)),
        data(geometry.data_bytes() / sizeof(float), -1.0f),
        view(header.get(), data.data(), geometry) {}
  std::unique_ptr<BusHeader> header;
  RingGeometry geometry;
  std::vector<float> data;
  RingView view;
};

TEST(BlockRing, EmptyRingHasNothingAvailableAndRoomForCapacityBlocks) {
  LocalRing r(2, 64);
  EXPECT_FALSE(r.view.available(0));
  for (uint32_t s = 0; s < kRingBlocks; ++s) EXPECT_TRUE(r.view.can_write(s));
  EXPECT_FALSE(r.view.can_write(kRingBlocks));
}

TEST(BlockRing, PublishedBlockIsReadInPlaceAtTheSameAddress) {
  LocalRing r(3, 37);
  float* w = r.view.channel(0, 2);
  w[5] = 0.25f;
  r.view.publish(0);
  ASSERT_TRUE(r.view.available(0));
  EXPECT_EQ(r.view.channel(0, 2), w);  // zero copy: the reader sees the writer's memory
  EXPECT_EQ(r.view.channel(0, 2)[5], 0.25f);
}

TEST(BlockRing, BlocksAreCacheLineAlignedAndDoNotOverlap) {
  LocalRing r(3, 37);
  for (uint32_t s = 0; s <= kRingBlocks; ++s) {
    auto addr = reinterpret_cast<std::uintptr_t>(r.view.slot_data(s)) - reinterpret_cast<std::uintptr_t>(r.data.data());
    EXPECT_EQ(addr % 64, 0u);
    EXPECT_GE(r.geometry.block_floats, 3u * 37u);
  }
}

TEST(BlockRing, WriterCannotOverwriteUnreleasedBlock) {
  LocalRing r(1, 16);
  for (uint32_t s = 0; s < kRingBlocks; ++s) r.view.publish(s);
  EXPECT_FALSE(r.view.can_write(kRingBlocks));
  r.view.release(0);
  EXPECT_TRUE(r.view.can_write(kRingBlocks));
  EXPECT_FALSE(r.view.can_write(kRingBlocks + 1));
}

TEST(BlockRing, OverwrittenBlockIsNoLongerAvailable) {
  LocalRing r(1, 16);
  r.view.publish(kRingBlocks);  // a producer that ran capacity blocks ahead
  EXPECT_FALSE(r.view.available(0));
  EXPECT_TRUE(r.view.available(1));
  EXPECT_TRUE(r.view.available(kRingBlocks));
}

TEST(BlockRing, SequenceNumbersWrapAround) {
  LocalRing r(1, 16);
  const uint32_t start = 0xffff'fffeu;
  r.header->read.store(start);
  r.header->write.store(start);
  for (uint32_t k = 0; k < 6; ++k) {
    uint32_t seq = start + k;
    ASSERT_TRUE(r.view.can_write(seq));
    r.view.block(seq)[0] = static_cast<float>(k);
    r.view.publish(seq);
    ASSERT_TRUE(r.view.available(seq));
    EXPECT_EQ(r.view.block(seq)[0], static_cast<float>(k));
    r.view.release(seq);
  }
}

TEST(BlockRing, SpareSlotIsOutsideTheRing) {
  LocalRing r(2, 32);
  for (uint32_t s = 0; s < 64; ++s) EXPECT_NE(r.view.block(s), r.view.slot_data(r.view.spare_slot()));
  // Untrusted slot indices are clamped to the spare, never past the data.
  EXPECT_EQ(r.view.slot_data(12345), r.view.slot_data(r.view.spare_slot()));
}

// Producer and consumer on two threads; every sample carries its block's
// sequence number, so a torn or lost block shows. Geometries whose block does
// not divide the ring's byte size, and a block count that does not divide the
// capacity.
class BlockRingStress : public ::testing::TestWithParam<std::pair<uint32_t, uint32_t>> {};

TEST_P(BlockRingStress, EveryBlockArrivesWholeAndInOrder) {
  const auto [channels, frames] = GetParam();
  LocalRing r(channels, frames, 8);
  const uint32_t blocks = 200'003;
  std::thread producer([&] {
    for (uint32_t seq = 0; seq < blocks; ++seq) {
      while (!r.view.can_write(seq)) std::this_thread::yield();
      float* b = r.view.block(seq);
      for (uint32_t i = 0; i < channels * frames; ++i) b[i] = static_cast<float>(seq % 1'000'000 + i % 7);
      r.view.publish(seq);
    }
  });
  uint64_t bad = 0;
  for (uint32_t seq = 0; seq < blocks; ++seq) {
    while (!r.view.available(seq)) std::this_thread::yield();
    const float* b = r.view.block(seq);
    for (uint32_t i = 0; i < channels * frames; ++i) bad += b[i] != static_cast<float>(seq % 1'000'000 + i % 7);
    r.view.release(seq);
  }
  producer.join();
  EXPECT_EQ(bad, 0u);
}

INSTANTIATE_TEST_SUITE_P(Geometries, BlockRingStress,
                         ::testing::Values(std::make_pair(1u, 16u), std::make_pair(3u, 37u),
                                           std::make_pair(8u, 100u), std::make_pair(5u, 129u)));

}  // namespace
}  // namespace rackd::shm
