// What every module process shares: attach to the segment the server names on
// the command line, set up the processor, then run the block loop. Threads: the
// module's main thread does setup and then becomes its audio thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "modules/registry/registry.hpp"
#include "shm/layout.hpp"
#include "shm/rt.hpp"

namespace rackd::runtime {

struct SetupInfo {
  std::string name;                   // instance name from the patch
  uint32_t rate_hz = 48000;
  uint32_t block_frames = 128;
  uint32_t in_channels = 0;
  uint32_t out_channels = 0;
  const toml::table* config = nullptr;  // the module's patch keys (paths absolute)
  const registry::TypeSpec* spec = nullptr;
  uint64_t restarts = 0;              // how many processes ran this slot before this one
  // The two shared pages this process may write besides its audio. Only the
  // `chaos` test module touches them directly (to attack the server).
  shm::ModuleOut* control_page = nullptr;
  shm::BusHeader* ring_header = nullptr;
};

// Parameter values as of the start of the current block, in spec->params order.
class ParamView {
 public:
  // [rt] First value of parameter i.
  double operator[](std::size_t i) const noexcept RACKD_RT { return values_[i * shm::kParamValues]; }
  // [rt] Value k of parameter i.
  double value(std::size_t i, std::size_t k) const noexcept RACKD_RT {
    return values_[i * shm::kParamValues + k];
  }
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

// [setup] The whole module process: parses `--segment NAME --slot N`, attaches,
// checks that the slot's type is `type`, sets up `processor`, runs the block
// loop until the server goes away. Returns the process exit code.
int run_module(int argc, char** argv, const char* type, std::unique_ptr<Processor> processor);

}  // namespace rackd::runtime
