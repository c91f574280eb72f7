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

namespace rackd::graph {

class PatchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  // "<path>:<line>: <reason>", the form every patch error takes.
  static PatchError at(const std::string& path, uint32_t line, const std::string& reason) {
    return PatchError(path + ":" + std::to_string(line) + ": " + reason);
  }
};

inline constexpr int kDeviceInput = -2;
inline constexpr std::size_t kMaxInputs = 16;  // sources one module's input sums

// One entry of a module's `input` list.
struct PatchInput {
  int from = kDeviceInput;             // kDeviceInput or a module index
  double gain_db = 0.0;                // per-source gain; 0 dB is the block as it is
  uint32_t line = 0;                   // where it was written (0: not from a file)
  bool operator==(const PatchInput& o) const { return from == o.from && gain_db == o.gain_db; }
};

struct PatchModule {
  std::string name;                    // [a-z0-9_-]+, unique; the OSC prefix /<name>/
  std::string type;                    // registry type
  const registry::TypeSpec* spec = nullptr;
  int line = 0;                        // line of the [[module]] table, for messages
  // Inputs, summed: kDeviceInput (the device input bus) or an index into
  // Patch::modules (always earlier: modules are in topological order), each
  // with a gain. Empty for a source. Every input has the same channel count.
  std::vector<PatchInput> inputs;
  uint32_t in_channels = 0;
  uint32_t out_channels = 0;
  uint32_t depth = 0;                  // longest chain of modules before this one
  // Initial parameter values, one entry per spec->params[i], count values each.
  std::vector<std::vector<double>> params;
  // The module's whole table (minus name/type/input and parameter keys) as
  // TOML text, with kPath values made absolute. The module parses this.
  std::string config_toml;

  bool has_input() const { return !inputs.empty(); }
  // The one input taken as it is (one source at 0 dB), else -1.
  int single_input() const { return inputs.size() == 1 && inputs[0].gain_db == 0.0 ? inputs[0].from : -1; }
};

// One [[desktop.output]] entry: what the graph does while its output plays on
// a matching device (server/desktop.cpp applies it).
struct DesktopOutput {
  std::string match;                   // substring of the device's node name or description (any case)
  std::string preset;                  // absolute path of an AutoEQ/APO preset for Desktop::eq, or empty
  std::vector<std::string> bypass;     // modules bypassed on this output
  // Desktop::eq's parameter values with `preset` (empty without a preset):
  // computed here, so a bad preset refuses the patch at load, not at a switch.
  std::vector<std::vector<double>> eq_params;
  uint32_t line = 0;
};

// [desktop]: rackd as a PipeWire sink (`rackd run --desktop`).
struct Desktop {
  bool sink = false;                   // sink = true: `rackd run` makes the sink without --desktop
  std::string name;                    // the sink's description; empty: "rackd: <patch file stem>"
  std::string eq;                      // the eq module the presets apply to ("" when no entry has one)
  std::vector<DesktopOutput> outputs;  // first match wins; none matches: the patch as written
  uint32_t line = 0;                   // 0: the patch has no [desktop] table
};

struct Patch {
  std::string path;                    // as given
  uint32_t rate_hz = 48000;            // [server] rate
  uint32_t block_frames = 128;         // [server] block
  uint32_t output_channels = 2;        // [server] output_channels
  uint32_t input_channels = 0;         // device input channels the patch reads
  bool input_channels_given = false;   // [server] input_channels was written (else derived)
  double fade_ms = 50.0;               // [server] fade_ms: how long a live graph change fades
  std::vector<PatchModule> modules;    // topological order
  std::vector<int> outputs;            // [output] from: module indices mixed to the device
  Desktop desktop;                     // [desktop]
};

// [setup] Reads and validates `path`. Throws PatchError("path:line: reason").
Patch load_patch(const std::string& path);

// [setup] Same, from text (for tests); `path` is used in messages and to resolve
// relative file paths.
Patch parse_patch(const std::string& text, const std::string& path);

}  // namespace rackd::graph
