// HRTF sources for the hrir module: SOFA files (libmysofa, libhdf5) and HeSuVi WAVs,
// validated and brought to the server's rate; speaker layouts; head rotation.
// [setup]/[control] threads only: everything here allocates.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace rackd::hrir {

// Degrees. Azimuth counterclockwise from the front (SOFA convention: +90 is
// left), elevation positive up.
struct Direction {
  double azimuth_deg = 0;
  double elevation_deg = 0;
};

// One impulse response per ear at the server's rate. Interaural delay is
// included as leading samples (from the set's Data.Delay where it carries one).
struct HrirPair {
  std::vector<float> left, right;  // equal length
};

class HrtfSet {
 public:
  // Longest filter accepted, in frames at the file's rate: 2 s at 48 kHz (room
  // responses included). Longer, empty, non-finite or absurd-rate sets are refused.
  static constexpr uint32_t kMaxFilterFrames = 96000;

  // Read by libmysofa, or by libhdf5 when libmysofa refuses a valid HDF5 file.
  // Throws std::runtime_error("<path>: <reason>") for anything both refuse
  // (or libmysofa alone, for a file that is not HDF5) or that fails validation.
  static HrtfSet load_sofa(const std::string& path, uint32_t rate_hz);
  // HeSuVi 14-channel WAV: track order FL-L, FL-R, SL-L, SL-R, BL-L, BL-R, FC-L,
  // FR-R, FR-L, SR-R, SR-L, BR-R, BR-L, FC-R; resampled if its rate differs.
  static HrtfSet load_hesuvi(const std::string& path, uint32_t rate_hz);

  // The pair for direction d: the nearest measured direction (HeSuVi: the
  // nearest of its seven speaker positions). Same length for every direction.
  HrirPair filter_for(Direction d) const;
  uint32_t filter_frames() const;
  uint32_t rate_hz() const;
  const std::string& description() const;  // e.g. "MIT KEMAR, 710 directions, 512 taps"

  HrtfSet(HrtfSet&&) noexcept;
  HrtfSet& operator=(HrtfSet&&) noexcept;
  ~HrtfSet();

 private:
  HrtfSet();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct Speaker {
  std::string name;   // "FL", "LFE", ...
  Direction dir;
  bool lfe = false;   // bypasses the HRTF, to both ears with its own gain
};

// "2.0", "5.1", "7.1", "7.1.4": speakers in input channel order (documented in
// hrtf.cpp; 7.1 is WAV/SMPTE order FL FR FC LFE BL BR SL SR). Throws on others.
std::vector<Speaker> layout(std::string_view name);

// Where a source at `d` appears after the listener turns their head by yaw
// (left positive), pitch (up positive) and roll (right ear down positive), degrees.
Direction rotate(Direction d, double yaw_deg, double pitch_deg, double roll_deg);

}  // namespace rackd::hrir
