// The nearest-measurement index of an HRTF set: a uniform 3-D grid of the
// measured positions, searched ring by ring, that returns exactly what a
// linear scan returns (same float squared distances, ties to the lowest
// index), in time that barely grows with the number of directions.
// build(): [setup]; nearest(): [control] (const, any thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace rackd::hrir {

// Squared Euclidean distance in float, in the order libmysofa's kd-tree and
// the linear scan compute it (x, then y, then z). The index and the scan share
// this function so that both see the same values.
inline float squared_distance(const float* a, const float* b) {
  float dist = 0;
  for (int i = 0; i < 3; ++i) {
    const float delta = a[i] - b[i];
    dist += delta * delta;
  }
  return dist;
}

class NearestIndex {
 public:
  // [setup] Indexes `count` points (x, y, z each, finite). The points must
  // stay where they are while the index is used.
  void build(const float* xyz, size_t count);
  // [control] The index of the point nearest to `c`: what
  // linear_nearest(xyz, count, c) returns.
  size_t nearest(const float* c) const;

 private:
  size_t cell_of(const int* cell) const {
    return (static_cast<size_t>(cell[2]) * dims_[1] + cell[1]) * dims_[0] + cell[0];
  }

  const float* xyz_ = nullptr;
  size_t count_ = 0;
  float lo_[3] = {};
  float cell_size_ = 1;
  int dims_[3] = {1, 1, 1};
  std::vector<uint32_t> start_;  // per cell: first entry in order_; one more at the end
  std::vector<uint32_t> order_;  // point indices, grouped by cell, ascending within one
};

// The reference: the first point at the smallest squared distance.
size_t linear_nearest(const float* xyz, size_t count, const float* c);

}  // namespace rackd::hrir
