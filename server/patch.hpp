// Patch files (patches/*.toml): parse, validate, resolve into a graph the server
// can lay out in shared memory. [setup] thread only; everything here allocates.
//
// A patch is refused as a whole: the first problem found is thrown as a
// PatchError whose message reads `file:line: reason`, and nothing is started.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "modules/registry/registry.hpp"

namespace rackd::server {

class PatchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  // "<path>:<line>: <reason>", the form every patch error takes.
  static PatchError at(const std::string& path, uint32_t line, const std::string& reason) {
    return PatchError(path + ":" + std::to_string(line) + ": " + reason);
  }
};

struct PatchModule {
  std::string name;                    // [a-z0-9_-]+, unique; the OSC prefix /<name>/
  std::string type;                    // registry type
  const registry::TypeSpec* spec = nullptr;
  int line = 0;                        // line of the [[module]] table, for messages
  // Input: -1 = none, kDeviceInput = the device input bus, else index into
  // Patch::modules (always earlier: modules are in topological order).
  int input = -1;
  uint32_t in_channels = 0;
  uint32_t out_channels = 0;
  uint32_t depth = 0;                  // longest chain of modules before this one
  // Initial parameter values, one entry per spec->params[i], count values each.
  std::vector<std::vector<double>> params;
  // The module's whole table (minus name/type/input and parameter keys) as
  // TOML text, with kPath values made absolute. The module parses this.
  std::string config_toml;
};

inline constexpr int kDeviceInput = -2;

struct Patch {
  std::string path;                    // as given
  uint32_t rate_hz = 48000;            // [server] rate
  uint32_t block_frames = 128;         // [server] block
  uint32_t output_channels = 2;        // [server] output_channels
  uint32_t input_channels = 0;         // device input channels the patch reads
  std::vector<PatchModule> modules;    // topological order
  std::vector<int> outputs;            // [output] from: module indices mixed to the device
};

// [setup] Reads and validates `path`. Throws PatchError("path:line: reason").
Patch load_patch(const std::string& path);

// [setup] Same, from text (for tests); `path` is used in messages and to resolve
// relative file paths.
Patch parse_patch(const std::string& text, const std::string& path);

}  // namespace rackd::server
