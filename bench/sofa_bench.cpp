// Benchmark of a head turn on large SOFA sets (modules/hrir/hrtf.*,
// binaural.*): the time from set_orientation() until the builder thread has
// posted the new filters (rotate + nearest-direction lookup + filter copy for
// every speaker of a 7.1.4 layout, then the convolver's preparation), and the
// lookup part alone (11 x filter_for(rotate(...))), on the small MIT KEMAR set
// (710 directions, the baseline) and on generated sets of 2,000 and 40,000
// directions written with the HDF5 C API (tests/modules/sofa_writer.*; the
// 40,000 one chunked as netCDF-4 writes it, so libmysofa 1.3.1 refuses it and
// libhdf5 reads it). Also the load time of each set. Every set at its own rate
// (no resampling in the figures). Then the nearest-direction search alone,
// the grid index (modules/hrir/nearest_index.*) beside the linear scan it
// replaced, on 710, 2,000 and 40,000 generated directions. Standalone main.
//
//   build/release/bin/sofa_bench [turns=200] [directions=40000]
//
// Prints median, min and max over the turns (each turn a new yaw, so every
// speaker moves to another measurement) and the ratio of the medians to KEMAR.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "modules/hrir/binaural.hpp"
#include "modules/hrir/hrtf.hpp"
#include "modules/hrir/nearest_index.hpp"
#include "tests/modules/sofa_writer.hpp"

namespace {

using namespace rackd::hrir;
using Clock = std::chrono::steady_clock;

double us_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

struct Stats {
  double median, min, max;
};

Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

struct Result {
  std::string name;
  double load_ms;
  Stats lookup_us, turn_us;
};

Result run(const std::string& name, const std::string& path, uint32_t rate_hz, int turns) {
  const auto t0 = Clock::now();
  HrtfSet set = HrtfSet::load_sofa(path, rate_hz);
  const double load_ms = us_since(t0) / 1000;
  std::printf("  loaded %s: %s\n", name.c_str(), set.description().c_str());

  std::vector<SpeakerConfig> speakers;
  for (const Speaker& s : layout("7.1.4")) speakers.push_back(SpeakerConfig{s, 0, 0});

  // Lookup alone: what build() asks of the set, per turn.
  std::vector<double> lookup;
  for (int i = 0; i < turns; ++i) {
    const double yaw = -170 + 340.0 * i / turns;
    const auto t = Clock::now();
    size_t frames = 0;
    for (const SpeakerConfig& s : speakers) {
      if (!s.speaker.lfe) frames += set.filter_for(rotate(s.speaker.dir, yaw, 7, -3)).left.size();
    }
    lookup.push_back(us_since(t));
    if (frames == 0) std::abort();
  }

  // The whole head turn, through the builder thread.
  Binaural b;
  b.setup(speakers, std::move(set), BinauralConfig{rate_hz, 128, 20, true});
  std::vector<double> turn;
  for (int i = 0; i < turns; ++i) {
    const double yaw = -170 + 340.0 * (i + 0.5) / turns;
    const auto t = Clock::now();
    b.set_orientation(yaw, 7, -3);
    while (b.build_pending()) std::this_thread::yield();
    turn.push_back(us_since(t));
  }
  return {name, load_ms, stats(lookup), stats(turn)};
}

// 11 queries per turn, as a 7.1.4 turn asks, on `count` generated directions:
// the grid index, then the linear scan, each over the same turns.
void index_beside_scan(uint32_t count, int turns) {
  std::vector<float> xyz(3 * static_cast<size_t>(count));
  for (uint32_t m = 0; m < count; ++m) {
    double az = 0, el = 0;
    rackd::hrir::test::sofa_direction(m, count, az, el);
    const double a = az * 3.141592653589793 / 180, e = el * 3.141592653589793 / 180;
    xyz[3 * m] = static_cast<float>(1.2 * std::cos(e) * std::cos(a));
    xyz[3 * m + 1] = static_cast<float>(1.2 * std::cos(e) * std::sin(a));
    xyz[3 * m + 2] = static_cast<float>(1.2 * std::sin(e));
  }
  const auto t0 = Clock::now();
  NearestIndex index;
  index.build(xyz.data(), count);
  const double build_us = us_since(t0);
  std::vector<Speaker> speakers;
  for (const Speaker& s : layout("7.1.4")) {
    if (!s.lfe) speakers.push_back(s);
  }
  std::vector<double> by_index, by_scan;
  size_t sum = 0;
  for (int i = 0; i < turns; ++i) {
    std::vector<float> queries;
    for (const Speaker& s : speakers) {
      const Direction d = rotate(s.dir, -170 + 340.0 * i / turns, 7, -3);
      const double a = d.azimuth_deg * 3.141592653589793 / 180, e = d.elevation_deg * 3.141592653589793 / 180;
      queries.insert(queries.end(), {static_cast<float>(1.2 * std::cos(e) * std::cos(a)),
                                     static_cast<float>(1.2 * std::cos(e) * std::sin(a)),
                                     static_cast<float>(1.2 * std::sin(e))});
    }
    auto t = Clock::now();
    for (size_t q = 0; q < speakers.size(); ++q) sum += index.nearest(&queries[3 * q]);
    by_index.push_back(us_since(t));
    t = Clock::now();
    for (size_t q = 0; q < speakers.size(); ++q) sum -= linear_nearest(xyz.data(), count, &queries[3 * q]);
    by_scan.push_back(us_since(t));
  }
  if (sum != 0) std::printf("  index and scan disagree!\n");
  const Stats a = stats(by_index), b = stats(by_scan);
  std::printf("%6u directions: index %7.2f [%6.2f..%8.2f]  scan %8.2f [%7.2f..%8.2f]  scan/index x%.0f  (index built in %.0f us)\n",
              count, a.median, a.min, a.max, b.median, b.min, b.max, b.median / a.median, build_us);
}

}  // namespace

int main(int argc, char** argv) {
  const int turns = argc > 1 ? std::max(20, std::atoi(argv[1])) : 200;
  const uint32_t large = argc > 2 ? static_cast<uint32_t>(std::max(100, std::atoi(argv[2]))) : 40000;
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("sofa_bench_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);

  std::vector<Result> results;
  try {
    results.push_back(run("MIT KEMAR (710, 44.1 kHz, libmysofa)", "/usr/share/libmysofa/default.sofa", 44100, turns));

    rackd::hrir::test::SofaWriteOptions o;
    o.measurements = 2000;
    const std::string mid = (dir / "mid.sofa").string();
    rackd::hrir::test::write_sofa(mid, o);
    results.push_back(run("generated 2000 (48 kHz, contiguous, libmysofa)", mid, 48000, turns));

    o.measurements = large;
    o.chunked = true;
    o.chunk_measurements = 64;
    o.deflate_level = 1;
    const std::string big = (dir / "large.sofa").string();
    rackd::hrir::test::write_sofa(big, o);
    std::filesystem::remove(mid);
    results.push_back(run("generated " + std::to_string(large) + " (48 kHz, chunked, libhdf5)", big, 48000, turns));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sofa_bench: %s\n", e.what());
    std::filesystem::remove_all(dir);
    return 1;
  }
  std::filesystem::remove_all(dir);

  std::printf("\nhead turn, 7.1.4 (11 HRTF speakers + LFE), block 128; %d turns; us: median [min..max]\n", turns);
  std::printf("%-50s %9s %28s %28s\n", "set", "load ms", "lookup (11 x filter_for)", "turn (set_orientation..posted)");
  const Result& base = results.front();
  for (const Result& r : results) {
    std::printf("%-50s %9.0f %9.1f [%7.1f..%8.1f] %9.1f [%7.1f..%8.1f]   x%.1f lookup, x%.1f turn vs KEMAR\n",
                r.name.c_str(), r.load_ms, r.lookup_us.median, r.lookup_us.min, r.lookup_us.max, r.turn_us.median,
                r.turn_us.min, r.turn_us.max, r.lookup_us.median / base.lookup_us.median,
                r.turn_us.median / base.turn_us.median);
  }
  std::printf("\nnearest direction for 11 speakers per turn, us: median [min..max] over %d turns\n", turns);
  for (const uint32_t count : {710u, 2000u, large}) index_beside_scan(count, turns);
  return 0;
}
