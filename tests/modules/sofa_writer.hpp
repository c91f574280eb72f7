// Test support: writes SOFA SimpleFreeFieldHRIR files with the HDF5 C API, the
// way netCDF-4 lays them out (dimension scales I C R E N M, DIMENSION_LIST on
// every variable, SOFA global attributes), with a choice of storage layout so
// that tests can make files libmysofa reads and files it refuses. Used by
// hrtf_test and bench/sofa_bench. [setup] code, any single thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rackd::hrir::test {

struct SofaWriteOptions {
  uint32_t measurements = 2000;
  uint32_t taps = 256;
  double rate_hz = 48000;
  bool delay_per_measurement = true;  // Data.Delay [M,R] (else [I,R], all zero)
  // Storage of Data.IR: contiguous, or chunked with `chunk_measurements`
  // measurements per chunk, byte-shuffled (HDF5's shuffle filter) if `shuffle`,
  // deflated at `deflate_level` (0: no deflate). netCDF-4 writers shuffle.
  bool chunked = false;
  uint32_t chunk_measurements = 1;
  bool shuffle = true;
  int deflate_level = 0;
  // H5Pset_libver_bounds(LATEST, LATEST): superblock 3, object headers 2,
  // data layout message 4 (what h5py's libver="latest" writes).
  bool latest_format = false;
  // For refusals: another SOFAConventions, a NaN in one measurement's first tap.
  std::string sofa_conventions = "SimpleFreeFieldHRIR";
  int64_t nan_measurement = -1;
};

// Where measurement m lies: a Fibonacci lattice (no two directions alike),
// azimuth -180..180 and elevation -90..90 degrees, radius 1.2 m.
void sofa_direction(uint32_t m, uint32_t measurements, double& azimuth_deg, double& elevation_deg);
// Tap t of ear e of measurement m: a value exactly representable as float,
// different for every (m, e, t) of a set.
float sofa_tap(uint32_t m, int ear, uint32_t t);
// Data.Delay of measurement m, ear e, in samples (whole, 0..7) when per measurement.
float sofa_delay(uint32_t m, int ear);

// Writes the set; throws std::runtime_error when HDF5 fails.
void write_sofa(const std::string& path, const SofaWriteOptions& options);

}  // namespace rackd::hrir::test
