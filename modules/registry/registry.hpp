// The module types the server knows: discovered, not compiled in. Every file
// named rackd-* in the module path ($RACKD_MODULE_PATH, colon-separated; by
// default PREFIX/libexec/rackd and, when rackd runs from a build tree, the
// build's bin/) is asked `--describe`; its JSON (modules/runtime/describe.cpp)
// becomes a TypeSpec. Descriptions are cached by path, size and mtime, and the
// path is scanned again when a lookup misses or the last scan is a second old,
// so a module installed while rackd runs is found by the next check, run or
// live add. Bad files are skipped with a warning that names them.
// Linked by the server (to validate patches and address parameters before any
// module runs); it links no module code. [setup]/[control] threads; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rackd/spec.hpp>

#include "shm/layout.hpp"

namespace rackd::registry {

using rackd::ConfigKind;
using rackd::ConfigSpec;
using rackd::ParamSpec;

// What a channel rule may look at: the module's config and its upstream.
struct ChannelQuery {
  uint32_t upstream_channels = 0;    // 0 when the module has no input
  std::function<std::optional<int64_t>(std::string_view key)> get_int;
  std::function<std::optional<std::string>(std::string_view key)> get_string;
};

struct Channels {
  uint32_t in = 0;                   // channels read from the input bus (0: none)
  uint32_t out = 0;
};

struct TypeSpec {
  std::string type;                  // as written in `type = "..."`
  std::string executable;            // absolute path of the module executable
  std::string summary;
  bool bypassable = false;           // output may be replaced by input when in == out
  bool takes_input = false;          // requires `input = "<module>|device"`
  bool configurable = false;         // parameter defaults follow from the setup keys
  std::vector<ParamSpec> params;
  std::vector<ConfigSpec> config;
  rackd::ChannelRule rule;           // as described
  uint32_t latency_frames = 0;       // what the module reports it delays its output by
  const TypeSpec* base = nullptr;    // a configured spec (configure()): the type's own
  // Sources only (takes_input == false): does this config read the device input?
  std::function<bool(const ChannelQuery&)> reads_device;
  // Channel counts from `rule`, or an error message a user can act on.
  std::function<bool(const ChannelQuery&, Channels& out, std::string& error)> channels;
};

// A file of the module path that is not used, and why.
struct Skipped {
  std::string path;
  std::string reason;
};

// [any] The module path, as searched: existing folders, in order.
std::vector<std::string> module_path();

// [any] All module types, in path order (then file name order within a folder).
std::vector<const TypeSpec*> all_types();

// [any] The type called `name`, or nullptr. A miss scans the path again.
const TypeSpec* find_type(std::string_view name);

// [any] Why there is no type `name` although a file named rackd-<name> is on
// the path (it was skipped), or "".
std::string skipped_reason(std::string_view name);

// [any] The files skipped by the last scan.
std::vector<Skipped> skipped();

// [any] For a `configurable` type: the spec a module with these setup keys
// (TOML text, paths absolute) has, from `executable --describe --config`:
// its parameters (an LV2 plugin's ports) or their defaults (an eq preset's
// bands), channel rule and latency. Cached by file and config text; the
// pointer stays valid. Throws std::runtime_error with the module's message.
// `spec` itself when it is not configurable.
const TypeSpec* configure(const TypeSpec& spec, const std::string& config_toml);

// [any] Which of ModuleOut::outputs parameter `param` (an output) reads, or -1.
int output_slot(const TypeSpec& spec, std::size_t param);

// [any] Index of parameter `name` in `spec.params`, or -1.
int find_param(const TypeSpec& spec, std::string_view name);

// [any] A --describe JSON as a TypeSpec; throws std::runtime_error saying
// what is wrong with it. Exposed for tests.
TypeSpec parse_description(const std::string& json, const std::string& executable);

// [any] Evaluates a channel rule (include/rackd/spec.hpp) for a module of
// `type`. Exposed for tests.
bool evaluate_channels(const std::string& type, bool takes_input, const rackd::ChannelRule& rule,
                       const ChannelQuery& q, Channels& out, std::string& error);

}  // namespace rackd::registry
