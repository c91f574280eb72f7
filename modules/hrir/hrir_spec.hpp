// The "hrir" module type as the SDK declares it (include/rackd/spec.hpp).
// [setup] only.
#pragma once

#include <cstdint>

#include <rackd/spec.hpp>

namespace rackd::hrir {

inline constexpr uint32_t kMaxLayoutChannels = 12;  // 7.1.4; one channel/<n>/gain_db each

// [setup] The declaration rackd-hrir describes and runs with.
ModuleSpec module_spec();

}  // namespace rackd::hrir
