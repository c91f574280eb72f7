// Speaker layouts the hrir module renders, and head rotation.
// [setup]/[control] threads only (layout() allocates; rotate() is pure math).
//
// Input channel order and default directions (azimuth counterclockwise, +90 is
// left; elevation up), after ITU-R BS.775 for the ear-level speakers and
// Dolby's 7.1.4 recommendation for the heights:
//   2.0    FL FR                              FL/FR +-30
//   5.1    FL FR FC LFE SL SR                 FC 0, surrounds +-110 (BS.775)
//   7.1    FL FR FC LFE BL BR SL SR           sides +-90, backs +-150
//          (WAV/SMPTE order: backs before sides, as WAVEFORMATEXTENSIBLE masks them)
//   7.1.4  7.1, then TFL TFR TBL TBR          tops +-45 and +-135, elevation +45
// LFE is flagged: it bypasses the HRTF (its direction, 0/0, is not used).
//
// Head rotation: the head turns by yaw (about the up axis, left positive),
// then pitch (about its own left-right axis, nose up positive), then roll
// (about its own front axis, right ear down positive): intrinsic z-y'-x''
// Tait-Bryan angles, the aerospace order. A source fixed in the room appears,
// in head coordinates, at R^T v, where R = Rz(yaw) Ry(-pitch) Rx(roll) is the
// head's orientation. So rotate(d, y, p, r) equals rotating by yaw alone, then
// pitch alone, then roll alone, one after the other.
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>

#include "modules/hrir/hrtf.hpp"

namespace rackd::hrir {

std::vector<Speaker> layout(std::string_view name) {
  const Speaker fl{"FL", {30, 0}}, fr{"FR", {-30, 0}}, fc{"FC", {0, 0}};
  const Speaker lfe{"LFE", {0, 0}, true};
  if (name == "2.0") return {fl, fr};
  if (name == "5.1") return {fl, fr, fc, lfe, {"SL", {110, 0}}, {"SR", {-110, 0}}};
  std::vector<Speaker> s{fl, fr, fc, lfe, {"BL", {150, 0}}, {"BR", {-150, 0}}, {"SL", {90, 0}}, {"SR", {-90, 0}}};
  if (name == "7.1") return s;
  if (name == "7.1.4") {
    s.insert(s.end(), {{"TFL", {45, 45}}, {"TFR", {-45, 45}}, {"TBL", {135, 45}}, {"TBR", {-135, 45}}});
    return s;
  }
  throw std::invalid_argument("unknown speaker layout \"" + std::string(name) +
                              "\" (known: 2.0, 5.1, 7.1, 7.1.4)");
}

Direction rotate(Direction d, double yaw_deg, double pitch_deg, double roll_deg) {
  constexpr double kRad = std::numbers::pi / 180.0;
  const double az = d.azimuth_deg * kRad;
  const double el = d.elevation_deg * kRad;
  double x = std::cos(el) * std::cos(az);
  double y = std::cos(el) * std::sin(az);
  double z = std::sin(el);

  // R^T = Rx(roll)^T Ry(-pitch)^T Rz(yaw)^T, applied right to left.
  const double cy = std::cos(yaw_deg * kRad), sy = std::sin(yaw_deg * kRad);
  const double x1 = cy * x + sy * y;   // Rz(-yaw)
  const double y1 = -sy * x + cy * y;
  const double cp = std::cos(pitch_deg * kRad), sp = std::sin(pitch_deg * kRad);
  x = cp * x1 + sp * z;                // Ry(pitch)
  z = -sp * x1 + cp * z;
  const double cr = std::cos(roll_deg * kRad), sr = std::sin(roll_deg * kRad);
  y = cr * y1 + sr * z;                // Rx(-roll)
  z = -sr * y1 + cr * z;

  const double horizontal = std::hypot(x, y);
  Direction out;
  out.elevation_deg = std::atan2(z, horizontal) / kRad;
  // Straight up or down the azimuth means nothing; report 0 rather than noise.
  out.azimuth_deg = horizontal < 1e-12 ? 0.0 : std::atan2(y, x) / kRad;
  if (out.azimuth_deg <= -180.0) out.azimuth_deg += 360.0;  // (-180, 180]
  return out;
}

}  // namespace rackd::hrir
