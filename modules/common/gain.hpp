// Decibels to a linear gain factor. [any] thread; header only, no state.
#pragma once

#include <cmath>

#include "shm/rt.hpp"

namespace rackd::modules {

// [any] 10^(db / 20): 0 dB is 1, -6.02 dB is 0.5.
inline float db_to_linear(double db) noexcept RACKD_RT { return static_cast<float>(std::pow(10.0, db / 20.0)); }

}  // namespace rackd::modules
