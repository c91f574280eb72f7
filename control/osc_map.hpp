// [osc.map] of a patch: controller addresses (TouchOSC sends "/1/fader1" with a
// float 0..1) mapped onto parameters with a range, and back for feedback.
// The patch parser accepts an [osc] table and leaves it to this file, which
// reads the patch file again with toml++. [setup] to load; lookups [control].
//
//   [osc.map]
//   "/1/fader1"  = { to = "/eq/band/1/gain", min = -12.0, max = 12.0 }
//   "/1/toggle1" = { to = "/out/bypass" }          # range: the parameter's own
//   "/1/fader2"  = "/tone/freq_hz"                 # same, short form
//
// A controller value x (number or true/false) is clamped to [0, 1] and becomes
// min + x * (max - min), then is rounded/thresholded like any OSC value for an
// int or bool parameter. min > max inverts the control.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "control/address.hpp"
#include "graph/patch.hpp"

namespace rackd::control {

struct OscMapping {
  std::string from;        // controller address
  std::string to;          // "/<module>/<param>"
  ParamRef target;
  double min = 0, max = 1; // parameter values at controller 0 and 1
  uint32_t line = 0;
};

struct OscMap {
  std::vector<OscMapping> entries;
  const OscMapping* find(std::string_view from) const;
};

// [setup] Parses the [osc.map] of `text` (the patch file's content) against
// `patch`. Throws graph::PatchError("path:line: reason"). A patch without
// [osc] gives an empty map.
OscMap parse_osc_map(const std::string& text, const std::string& path, const graph::Patch& patch);

// [setup] Reads patch.path and parses it; an empty path gives an empty map.
OscMap load_osc_map(const graph::Patch& patch);

// [any] Controller value (clamped to [0, 1]) -> parameter value.
double map_to_param(const OscMapping& m, double x);
// [any] Parameter value -> controller value in [0, 1].
double map_to_controller(const OscMapping& m, double v);

}  // namespace rackd::control
