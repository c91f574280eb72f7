// Single-producer/single-consumer ring of planar float32 audio blocks, read and
// written in place. Sequence numbers count up forever (uint32, wrapping); block
// `seq` lives in slot seq & (capacity - 1). The producer owns `write`, the
// consumer owns `read`; every release store pairs with an acquire load on the
// other side. Slot `capacity` is a spare the server writes substitute blocks
// into, slot `capacity + 1` the summed input of the producer; the producer
// writes neither.
//
// The views take their geometry (channels, frames, capacity, stride) from the
// caller, not from the header in shared memory: the server keeps its own copy,
// so a module that scribbles over its ring header cannot make the server read
// or write outside the segment.
//
// [rt] every member function (no allocation, no system calls).
#pragma once

#include <atomic>
#include <cstdint>

#include "shm/layout.hpp"
#include "shm/rt.hpp"

namespace rackd::shm {

struct RingGeometry {
  uint32_t channels = 0;
  uint32_t frames = 0;
  uint32_t capacity = kRingBlocks;  // power of two
  uint32_t block_floats = 0;        // >= channels * frames

  static RingGeometry make(uint32_t channels, uint32_t frames, uint32_t capacity = kRingBlocks) noexcept {
    // Round each block to a cache line so blocks never share one.
    uint32_t floats = channels * frames;
    floats = (floats + 15u) & ~15u;
    if (floats == 0) floats = 16;
    return {channels, frames, capacity, floats};
  }
  // Bytes for capacity + 2 blocks: the ring, the spare and the mix slot.
  std::size_t data_bytes() const noexcept {
    return static_cast<std::size_t>(capacity + 2) * block_floats * sizeof(float);
  }
};

class RingView {
 public:
  RingView() = default;
  RingView(BusHeader* header, float* data, RingGeometry g) noexcept
      : header_(header), data_(data), g_(g) {}

  const RingGeometry& geometry() const noexcept { return g_; }
  uint32_t slot_of(uint32_t seq) const noexcept RACKD_RT { return seq & (g_.capacity - 1); }
  uint32_t spare_slot() const noexcept RACKD_RT { return g_.capacity; }
  // Where the server sums the inputs of the bus's producer when it takes more
  // than one block as it is (fan-in, or an input fading in or out).
  uint32_t mix_slot() const noexcept RACKD_RT { return g_.capacity + 1; }

  // Start of block slot `slot` (0..capacity + 1); channel c at + c * frames.
  float* slot_data(uint32_t slot) const noexcept RACKD_RT {
    if (slot > g_.capacity + 1) slot = g_.capacity;  // untrusted indices are clamped
    return data_ + static_cast<std::size_t>(slot) * g_.block_floats;
  }
  float* block(uint32_t seq) const noexcept RACKD_RT { return slot_data(slot_of(seq)); }
  float* channel(uint32_t seq, uint32_t c) const noexcept RACKD_RT {
    return block(seq) + static_cast<std::size_t>(c) * g_.frames;
  }

  // ---- producer side ----
  // True when block `seq` may be written: the consumer has released seq - capacity.
  bool can_write(uint32_t seq) const noexcept RACKD_RT {
    return seq - header_->read.load(std::memory_order_acquire) < g_.capacity;
  }
  // Makes blocks up to `seq` visible to the consumer.
  void publish(uint32_t seq) const noexcept RACKD_RT { header_->write.store(seq + 1, std::memory_order_release); }

  // ---- consumer side ----
  // True when block `seq` has been published and not yet overwritten.
  bool available(uint32_t seq) const noexcept RACKD_RT {
    uint32_t ahead = header_->write.load(std::memory_order_acquire) - seq;
    return ahead != 0 && ahead <= g_.capacity;
  }
  // Gives blocks up to `seq` back to the producer.
  void release(uint32_t seq) const noexcept RACKD_RT { header_->read.store(seq + 1, std::memory_order_release); }

  BusHeader* header() const noexcept { return header_; }

 private:
  BusHeader* header_ = nullptr;
  float* data_ = nullptr;
  RingGeometry g_;
};

}  // namespace rackd::shm
