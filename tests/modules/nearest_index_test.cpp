// Tests for the nearest-measurement grid index (modules/hrir/nearest_index.*):
// it returns exactly what a linear scan returns, ties included, for points on
// a sphere, on several spheres, on one ring, and for queries off the grid.
// [control] code, tested from the main thread.
#include "modules/hrir/nearest_index.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>
#include <vector>

namespace rackd::hrir {
namespace {

std::vector<float> sphere(size_t count, float radius, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n;
  std::vector<float> xyz;
  for (size_t i = 0; i < count; ++i) {
    float p[3] = {n(rng), n(rng), n(rng)};
    const float r = std::sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]);
    for (const float v : p) xyz.push_back(v / r * radius);
  }
  return xyz;
}

void expect_like_the_scan(const std::vector<float>& xyz, uint32_t seed, float query_radius) {
  NearestIndex index;
  const size_t count = xyz.size() / 3;
  index.build(xyz.data(), count);
  const std::vector<float> queries = sphere(3000, query_radius, seed);
  int mismatches = 0;
  for (size_t q = 0; q < queries.size() / 3; ++q) {
    const float* c = &queries[3 * q];
    if (index.nearest(c) != linear_nearest(xyz.data(), count, c) && ++mismatches <= 5) {
      ADD_FAILURE() << "query " << c[0] << " " << c[1] << " " << c[2];
    }
  }
  // The measured points themselves, and duplicates: ties go to the lower index.
  for (size_t m = 0; m < count; m += 7) {
    EXPECT_EQ(index.nearest(&xyz[3 * m]), linear_nearest(xyz.data(), count, &xyz[3 * m]));
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(NearestIndex, FindsWhatALinearScanFindsOnASphere) {
  for (const size_t count : {1u, 2u, 7u, 710u, 2000u, 40000u}) {
    SCOPED_TRACE(count);
    expect_like_the_scan(sphere(count, 1.2f, 1), 2, 1.2f);
  }
}

TEST(NearestIndex, FindsWhatALinearScanFindsOnSeveralSpheresAndOffTheGrid) {
  std::vector<float> xyz;
  for (const float r : {0.2f, 0.5f, 1.0f, 1.95f}) {
    const std::vector<float> s = sphere(3000, r, static_cast<uint32_t>(r * 100));
    xyz.insert(xyz.end(), s.begin(), s.end());
  }
  const std::vector<float> copy(xyz.begin(), xyz.begin() + 300);  // duplicates of the first 100
  xyz.insert(xyz.end(), copy.begin(), copy.end());
  expect_like_the_scan(xyz, 3, 1.0f);
  expect_like_the_scan(xyz, 4, 7.5f);   // every query outside the grid
  expect_like_the_scan(xyz, 5, 0.01f);  // near the centre
}

TEST(NearestIndex, FindsWhatALinearScanFindsOnAHorizontalRingAndAHemisphere) {
  std::vector<float> ring;
  for (int i = 0; i < 72; ++i) {
    const double a = i * 5.0 * std::numbers::pi / 180;
    ring.insert(ring.end(), {static_cast<float>(std::cos(a)), static_cast<float>(std::sin(a)), 0.0f});
  }
  expect_like_the_scan(ring, 6, 1.0f);
  std::vector<float> upper;
  const std::vector<float> s = sphere(5000, 1.5f, 7);
  for (size_t i = 0; i < s.size(); i += 3) {
    if (s[i + 2] > 0.3f) upper.insert(upper.end(), s.begin() + i, s.begin() + i + 3);
  }
  expect_like_the_scan(upper, 8, 1.5f);
}

}  // namespace
}  // namespace rackd::hrir
