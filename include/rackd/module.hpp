// The module SDK: a rackd module is an executable named rackd-<anything> whose
// main() declares a ModuleSpec and hands it, with its Processor, to
// run_module(). rackd starts it once per [[module]] of its type, in its own
// process; run_module() attaches to the server's shared memory, calls setup()
// once, then process() once per block until the server goes away.
// `rackd-<type> --describe [--config TOML]` prints the spec as JSON instead.
//
// Threads: setup() runs on the process's main thread, which then becomes its
// audio thread and runs process() ([rt]: no allocation, no locks, no system
// calls). Installed as <rackd/module.hpp>; link rackd::module (CMake) or
// `pkg-config rackd-module`.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include <rackd/rt.hpp>
#include <rackd/spec.hpp>

namespace rackd {

namespace shm {
struct ModuleOut;
struct BusHeader;
}  // namespace shm

// [rt] What the module reports: the parameters declared with output = true.
// Set from process(); the server reads the newest value whenever asked.
class Outputs {
 public:
  // [rt] Parameter `param` (its index in spec.params, an output) now reads `v`.
  void set(std::size_t param, double v) noexcept RACKD_RT {
    if (param < slot_of_.size() && slot_of_[param] >= 0) values_[slot_of_[param]].store(v, std::memory_order_relaxed);
  }

  std::vector<int> slot_of_;                 // param index -> output slot, or -1
  std::atomic<double>* values_ = nullptr;    // kMaxOutputs, in shared memory
};

struct SetupInfo {
  std::string name;                   // instance name from the patch
  uint32_t rate_hz = 48000;
  uint32_t block_frames = 128;
  uint32_t in_channels = 0;           // as the spec's channel rule gave them
  uint32_t out_channels = 0;
  const toml::table* config = nullptr;  // the module's setup keys (paths absolute)
  const ModuleSpec* spec = nullptr;   // the spec given to run_module()
  uint64_t restarts = 0;              // how many processes ran this slot before this one
  // A folder of this module instance that outlives its process (a restart
  // finds what the previous one left) and goes with the server, or with a
  // remove of the module. For state the parameters do not hold (LV2 State).
  std::string state_dir;
  Outputs* outputs = nullptr;         // for parameters declared output = true
  // The two shared pages this process may write besides its audio. Only the
  // `chaos` test module touches them directly (to attack the server).
  shm::ModuleOut* control_page = nullptr;
  shm::BusHeader* ring_header = nullptr;
};

// Parameter values as of the start of the current block, in spec.params order
// (look indices up with ModuleSpec::index() in setup).
class ParamView {
 public:
  // [rt] First value of parameter i.
  double operator[](std::size_t i) const noexcept RACKD_RT { return values_[i * kParamValues]; }
  // [rt] Value k of parameter i.
  double value(std::size_t i, std::size_t k) const noexcept RACKD_RT { return values_[i * kParamValues + k]; }
  // [rt] True when any parameter changed since the previous block.
  bool changed() const noexcept RACKD_RT { return changed_; }

  std::vector<double> values_;        // preallocated: params * kParamValues
  bool changed_ = true;
};

struct Block {
  const float* const* in = nullptr;   // in_channels planar channels, or nullptr
  uint32_t in_channels = 0;
  float* const* out = nullptr;        // out_channels planar channels
  uint32_t out_channels = 0;
  uint32_t frames = 0;
  uint32_t cycle = 0;
};

class Processor {
 public:
  virtual ~Processor() = default;
  // [setup] Allocate everything here. Throw std::exception with a message a user
  // can act on; the server reports it and leaves the slot bypassed or silent.
  virtual void setup(const SetupInfo& info) = 0;
  // [rt] One block. `block.in` and `block.out` point into shared memory.
  virtual void process(const Block& block, const ParamView& params) noexcept RACKD_RT = 0;
};

// [setup] The whole module process. With `--describe [--config TOML|FILE]` it
// prints `spec` as JSON and exits. Otherwise it parses `--segment NAME --slot
// N`, attaches (refusing a server of another kModuleProtocol), checks that the
// slot's type and parameters are `spec`'s, sets up `processor` and runs the
// block loop until the server goes away. Returns the process exit code.
int run_module(int argc, char** argv, const ModuleSpec& spec, std::unique_ptr<Processor> processor);

// [setup] The spec as the JSON `--describe` prints (one line).
std::string describe_json(const ModuleSpec& spec);

}  // namespace rackd
