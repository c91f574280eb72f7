// Writing and reading a module's parameter slots in shared memory (ParamSlot in
// shm/layout.hpp). [control] threads only: the OSC control thread and, in an
// offline render, the events player between two cycles. Never an audio thread:
// a writer may spin briefly while another writer holds the same slot.
//
// Protocol (pairs with refresh_params() in modules/runtime/runtime.cpp):
//   writer: CAS seq even -> odd (acquire), store values, seq = odd + 1 (release),
//           then param_epoch += 1 (release);
//   reader: seq (acquire), values, fence (acquire), seq again; retry when odd or
//           changed.
// The CAS makes concurrent writers safe: the OSC thread and the events player
// (or two control threads) serialise on the slot's own sequence word, no mutex.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "control/osc_arg.hpp"
#include "modules/registry/registry.hpp"
#include "shm/layout.hpp"

namespace rackd::control {

using ParamValues = std::array<double, shm::kParamValues>;

// [control] Converts one OSC argument to a value of `spec` (type and range):
//   float param: i, h, f, d (finite);
//   int param:   i, h; f, d rounded to the nearest integer, halves away from
//                zero (TouchOSC and most controllers only send floats);
//   bool param:  T, F; i/h 0 or 1; f/d in [0, 1], >= 0.5 is true.
// Strings, blobs, nil and the rest are refused. The result must lie in
// [spec.min, spec.max] (NaN never does). On failure writes a reason a user can
// act on (`gain_db: 30 is out of range [-96, 24] dB`) and returns false.
bool convert_arg(const registry::ParamSpec& spec, const OscArg& arg, double& out, std::string& why);

// [control] Checks a whole argument list for `spec` (exactly spec.count values)
// and converts it; nothing is written. False with a reason on any problem.
bool convert_args(const registry::ParamSpec& spec, std::span<const OscArg> args, ParamValues& out,
                  std::string& why);

// [control] Validates already-numeric values against `spec` (count, range,
// integrality for int/bool) without writing.
bool check_values(const registry::ParamSpec& spec, std::span<const double> values, std::string& why);

// [control] Seqlocked write of `values` (spec.count of them; the rest of the
// slot keeps what it had) into in.params[index], then bumps in.param_epoch so
// the module applies them at the start of its next block. Does not validate:
// call convert_args/check_values first. noexcept and allocation-free, so the
// offline events player may call it between two cycles.
void write_param(shm::ModuleIn& in, uint32_t index, std::span<const double> values) noexcept;

// [control] convert_args + write_param. False (and nothing written) on error.
bool set_param(shm::ModuleIn& in, uint32_t index, const registry::ParamSpec& spec,
               std::span<const OscArg> args, std::string& why);

// [any] Consistent snapshot of all kParamValues values of in.params[index]
// (seqlock read; retries while a writer is mid-update).
ParamValues get_param(const shm::ModuleIn& in, uint32_t index) noexcept;

// [control] The OSC arguments a value of `spec` is reported with: 'f' for
// float, 'i' for int, 'T'/'F' for bool; spec.count of them.
std::vector<OscArg> param_args(const registry::ParamSpec& spec, const ParamValues& values);

// [any] "%g"-style number for messages.
std::string format_number(double v);

}  // namespace rackd::control
