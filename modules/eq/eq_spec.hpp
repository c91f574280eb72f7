// The "eq" module type as the SDK declares it (include/rackd/spec.hpp):
// parameters (preamp, 32 bands x on/type/freq/gain/q/channel), setup keys
// (preset, bands) and the configure hook that turns them into band defaults.
// [setup] only.
#pragma once

#include <rackd/spec.hpp>

namespace rackd::eq {

// [setup] The declaration rackd-eq describes and runs with.
ModuleSpec module_spec();

// [any] "on", "type", "freq", "gain", "q", "channel" for preset.hpp's BandField.
const char* band_field_name(int field);

}  // namespace rackd::eq
