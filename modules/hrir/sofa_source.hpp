// The SOFA reader of the hrir module, as hrtf.cpp sees it: a file in, plain
// size-checked numbers out, the parsing done in a child process
// (sofa_source.cpp; libmysofa first, libhdf5 when libmysofa refuses a valid
// HDF5 file, sofa_hdf5.cpp). Values are judged by the caller (hrtf.cpp).
// [setup]/[control] threads only: forks, allocates, blocks up to a timeout.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace rackd::hrir::sofa_detail {

// "<path>: <reason>", the form every refusal of a SOFA or HeSuVi file takes.
inline std::runtime_error fail(const std::string& path, const std::string& reason) {
  return std::runtime_error(path + ": " + reason);
}

// A SOFA SimpleFreeFieldHRIR set as the child read it. Sizes are consistent
// (checked on both sides of the pipe); values are not judged yet.
struct SofaNumbers {
  double file_rate_hz = 0;
  uint32_t taps = 0;                  // N, per ear
  std::vector<float> positions_xyz;   // M x 3, cartesian, metres (SOFA axes)
  std::vector<float> irs;             // M x 2 x N (Data.IR)
  std::vector<float> delays;          // 2 (one pair for all) or M x 2 (Data.Delay), samples
  std::string name;                   // "DatabaseName ListenerShortName", unfiltered bytes
  // "" when libmysofa read it; else why libmysofa could not (its refusal, or
  // that it misreads the file), the file having been read with libhdf5 instead.
  std::string libmysofa_refusal;
};

// Throws std::runtime_error("<path>: <reason>") when neither reader can read
// the file, the reader crashes or exceeds the timeout (RACKD_SOFA_TIMEOUT_S,
// default 10 s), or the answer is inconsistent.
SofaNumbers read_sofa_isolated(const std::string& path);

}  // namespace rackd::hrir::sofa_detail
