// Planar audio buffers for module DSP tests: one vector per channel plus the
// pointer array process() takes.
#pragma once

#include <cstdint>
#include <vector>

namespace rackd::test {

struct Planar {
  Planar(uint32_t channels, uint32_t frames) : data(channels, std::vector<float>(frames)) {
    for (auto& c : data) ptrs.push_back(c.data());
  }
  std::vector<std::vector<float>> data;
  std::vector<float*> ptrs;
  const float* const* in() const { return ptrs.data(); }
  float* const* out() { return ptrs.data(); }
};

}  // namespace rackd::test
