// The nearest-measurement index (see nearest_index.hpp). [setup] build,
// [control] queries.
//
// Why a grid: head turns look up every speaker's direction again, and a
// linear scan over 40,000 directions costs ~1 ms per 7.1.4 turn (bench/
// sofa_bench) where 710 directions cost 12 us. Measurements lie on one or a
// few spheres, so a uniform grid of about two cells per point (capped at 2^18
// cells) holds a handful of points per occupied cell; the search visits rings
// of cells around the query's cell and stops once the next ring cannot hold
// anything nearer than the best found. Exactness: candidates are compared by
// the same float squared_distance() the scan uses, ties going to the lower
// index, and the stopping bound keeps a relative margin far above float
// rounding, so the answer is the scan's answer (tests/modules/nearest_index_test).
#include "modules/hrir/nearest_index.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace rackd::hrir {
namespace {

constexpr double kMaxCells = 1 << 18;
constexpr int kMaxDim = 2048;  // never reached: cells are at least 1/1024 of the widest extent

}  // namespace

size_t linear_nearest(const float* xyz, size_t count, const float* c) {
  size_t best = 0;
  float best_dist = std::numeric_limits<float>::infinity();
  for (size_t m = 0; m < count; ++m) {
    const float dist = squared_distance(&xyz[3 * m], c);
    if (dist < best_dist) {
      best_dist = dist;
      best = m;
    }
  }
  return best;
}

void NearestIndex::build(const float* xyz, size_t count) {
  xyz_ = xyz;
  count_ = count;
  float hi[3];
  for (int d = 0; d < 3; ++d) lo_[d] = hi[d] = count > 0 ? xyz[d] : 0.0f;
  for (size_t m = 0; m < count; ++m) {
    for (int d = 0; d < 3; ++d) {
      lo_[d] = std::min(lo_[d], xyz[3 * m + d]);
      hi[d] = std::max(hi[d], xyz[3 * m + d]);
    }
  }
  double widest = 0;
  for (int d = 0; d < 3; ++d) widest = std::max(widest, double(hi[d]) - lo_[d]);
  // Flat sets (one plane, one ring) count their thin axes as 1/64 of the widest.
  double volume = 1;
  for (int d = 0; d < 3; ++d) volume *= std::max(double(hi[d]) - lo_[d], widest / 64);
  const double cells = std::min(kMaxCells, std::max(1.0, 2.0 * double(count)));
  cell_size_ = widest > 0 ? static_cast<float>(std::cbrt(volume / cells)) : 1.0f;
  size_t total = 1;
  for (int d = 0; d < 3; ++d) {
    const double n = std::ceil((double(hi[d]) - lo_[d]) / cell_size_) + 1;
    dims_[d] = static_cast<int>(std::clamp(n, 1.0, double(kMaxDim)));
    total *= static_cast<size_t>(dims_[d]);
  }

  // Counting sort of the points by cell; ascending index within a cell.
  std::vector<uint32_t> cell_of_point(count);
  start_.assign(total + 1, 0);
  for (size_t m = 0; m < count; ++m) {
    int cell[3];
    for (int d = 0; d < 3; ++d) {
      const float f = std::floor((xyz[3 * m + d] - lo_[d]) / cell_size_);
      cell[d] = std::clamp(static_cast<int>(std::clamp(f, -1.0f, float(kMaxDim))), 0, dims_[d] - 1);
    }
    cell_of_point[m] = static_cast<uint32_t>(cell_of(cell));
    ++start_[cell_of_point[m] + 1];
  }
  for (size_t i = 0; i < total; ++i) start_[i + 1] += start_[i];
  order_.resize(count);
  std::vector<uint32_t> next(start_.begin(), start_.end() - 1);
  for (size_t m = 0; m < count; ++m) order_[next[cell_of_point[m]]++] = static_cast<uint32_t>(m);
}

size_t NearestIndex::nearest(const float* c) const {
  if (count_ == 0) return 0;
  int home[3];
  for (int d = 0; d < 3; ++d) {
    const float f = std::floor((c[d] - lo_[d]) / cell_size_);
    // NaN and far-away queries land on the grid's edge: still exact, only slower.
    home[d] = std::isnan(f) ? 0 : std::clamp(static_cast<int>(std::clamp(f, -1.0f, float(kMaxDim))), 0, dims_[d] - 1);
  }
  size_t best = 0;
  float best_dist = std::numeric_limits<float>::infinity();
  bool found = false;
  const int rings = std::max({dims_[0], dims_[1], dims_[2]});
  for (int k = 0; k < rings; ++k) {
    // Any point of ring k is at least (k - 1) cells away along some axis.
    if (found && k >= 2) {
      const double gap = double(k - 1) * cell_size_;
      if (gap * gap > double(best_dist) * (1 + 1e-3) + 1e-30) break;
    }
    int cell[3];
    for (int dz = -k; dz <= k; ++dz) {
      cell[2] = home[2] + dz;
      if (cell[2] < 0 || cell[2] >= dims_[2]) continue;
      for (int dy = -k; dy <= k; ++dy) {
        cell[1] = home[1] + dy;
        if (cell[1] < 0 || cell[1] >= dims_[1]) continue;
        const bool face = dz == -k || dz == k || dy == -k || dy == k;
        for (int dx = -k; dx <= k; dx += face ? 1 : 2 * std::max(k, 1)) {  // inside: only the two x faces
          cell[0] = home[0] + dx;
          if (cell[0] < 0 || cell[0] >= dims_[0]) continue;
          const size_t i = cell_of(cell);
          for (uint32_t j = start_[i]; j < start_[i + 1]; ++j) {
            const uint32_t m = order_[j];
            const float dist = squared_distance(&xyz_[3 * static_cast<size_t>(m)], c);
            if (dist < best_dist || (dist == best_dist && m < best)) {
              best_dist = dist;
              best = m;
              found = true;
            }
          }
        }
      }
    }
  }
  return found ? best : linear_nearest(xyz_, count_, c);  // only for NaN queries
}

}  // namespace rackd::hrir
