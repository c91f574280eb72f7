// The second SOFA reader, run only inside the reader child of sofa_source.cpp:
// libhdf5 reads the SOFA variables of a file that libmysofa refused but that
// is valid HDF5 (e.g. written with HDF5's newest format, or chunked into more
// B-tree nodes than libmysofa 1.3.1 walks; see sofa_hdf5.cpp).
// Child process only: it may allocate, and never throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rackd::hrir::sofa_detail {

// What the libhdf5 reader found. Positions are cartesian (converted from
// spherical exactly as mysofa_tocartesian does), arrays as in SofaNumbers.
struct Hdf5Sofa {
  uint64_t measurements = 0;  // M
  uint64_t receivers = 0;     // R
  uint64_t taps = 0;          // N
  uint64_t rate_values = 0;   // elements of Data.SamplingRate
  double rate_hz = 0;         // its first
  std::vector<float> positions_xyz;
  std::vector<float> irs;
  std::vector<float> delays;
  std::string name;
};

// True when the file carries an HDF5 signature (H5Fis_hdf5: at offset 0, 512,
// 1024, ...). Only such files get a second reader.
bool is_hdf5(const char* path);

// True (with the variable and its filters in `why`) when a variable this
// module uses is chunked with filters other than exactly shuffle then deflate:
// libmysofa 1.3.1 inflates every chunk and un-shuffles it whether or not the
// file says so, and returns scrambled values without an error. False when
// libhdf5 cannot open the file (libmysofa's answer stands).
bool libmysofa_misreads(const char* path, char* why, size_t why_size);

// Reads `path` into `out`, refusing (false, with the reason in `reason`) what
// is not a SOFA SimpleFreeFieldHRIR set libmysofa's own checks would pass, and
// anything larger than the limits (checked on the dataspace, before reading).
bool read_sofa_hdf5(const char* path, uint64_t max_measurements, uint64_t max_taps, uint64_t max_ir_values,
                    Hdf5Sofa& out, char* reason, size_t reason_size);

}  // namespace rackd::hrir::sofa_detail
