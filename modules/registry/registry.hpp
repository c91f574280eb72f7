// What every module type accepts: its setup keys (config), its live parameters,
// whether it can be bypassed, how its channel counts follow from its config.
// One table, linked by the server (to validate patches and address parameters
// before any module runs) and by module processes (to read their parameter
// slots in the same order). [setup]/[control] threads only.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shm/layout.hpp"

namespace rackd::registry {

enum class ConfigKind {
  kString,  // free text
  kPath,    // file path; the server resolves it against the patch's folder ("default" stays as is)
  kInt,
  kFloat,   // integers are accepted too
  kBool,
  kEnum,    // one of `choices`
  kArray,   // an array (of tables or values); the module validates the content
};

struct ConfigSpec {
  std::string name;
  ConfigKind kind;
  std::string help;
  std::vector<std::string> choices;  // kEnum
  double min = 0, max = 0;           // kInt/kFloat, inclusive; ignored when min == max
};

struct ParamSpec {
  std::string name;                  // OSC address below the module: /<module>/<name>
  shm::ParamKind kind;
  uint32_t count = 1;                // number of values (1..shm::kParamValues)
  double min = 0, max = 1, def = 0;  // per value
  std::string unit;                  // "dB", "Hz", "" ...
  std::string help;
};

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
  std::string executable;            // file name of the module binary
  std::string summary;
  bool bypassable = false;           // output may be replaced by input when in == out
  bool takes_input = false;          // requires `input = "<module>|device"`
  // Sources only (takes_input == false): does this config read the device input?
  std::function<bool(const ChannelQuery&)> reads_device;
  std::vector<ParamSpec> params;
  std::vector<ConfigSpec> config;
  // Channel counts, or an error message a user can act on.
  std::function<bool(const ChannelQuery&, Channels& out, std::string& error)> channels;
  // Optional: derive initial parameter values from the setup keys (for example
  // an EQ preset file or an inline band list), given the module's config as
  // TOML text (paths already absolute). Runs at patch load, after defaults and
  // before explicit parameter keys of the patch, so parameter slots stay the
  // one source of truth and survive restarts. Throws std::runtime_error with a
  // message a user can act on (it may carry its own "file:line: ").
  std::function<void(const std::string& config_toml, std::vector<std::vector<double>>& params)> init_params;
};

// Types defined in their own files (modules/registry/<type>_type.cpp).
TypeSpec eq_type();
TypeSpec hrir_type();

// [any] All module types, in a stable order.
const std::vector<TypeSpec>& all_types();

// [any] The type called `name`, or nullptr.
const TypeSpec* find_type(std::string_view name);

// [any] Index of parameter `name` in `spec.params`, or -1.
int find_param(const TypeSpec& spec, std::string_view name);

}  // namespace rackd::registry
