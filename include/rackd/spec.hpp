// What a module type is, declared once in the module's own source: its
// parameters, setup keys, bypass, and the rule its channel counts follow.
// The module executable prints it as JSON (`rackd-<type> --describe`); the
// server reads that and nothing else, so it links no module code. A module
// reads its parameter indices from this declaration by name (index()), so no
// order is kept by hand anywhere.
// Part of the module SDK (installed as <rackd/spec.hpp>). [setup] threads only.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

namespace rackd {

// The contract between a server and its module processes (the shared-memory
// layout and the --describe JSON). A module built against another value is
// refused, with both numbers in the message.
inline constexpr uint32_t kModuleProtocol = 5;

inline constexpr uint32_t kMaxChannels = 32;  // per bus
inline constexpr uint32_t kParamValues = 4;   // a parameter carries 1..4 values

enum class ParamKind : uint32_t { kFloat = 0, kInt = 1, kBool = 2 };

enum class ConfigKind {
  kString,  // free text
  kPath,    // file path; the server resolves it against the patch's folder ("default" stays as is)
  kInt,
  kFloat,   // integers are accepted too
  kBool,
  kEnum,    // one of `choices`
  kArray,   // an array (of tables or values); the module validates the content
};

// A setup key: read once when the process starts (a change restarts it).
struct ConfigSpec {
  std::string name;
  ConfigKind kind = ConfigKind::kString;
  std::string help;
  std::vector<std::string> choices;  // kEnum
  double min = 0, max = 0;           // kInt/kFloat, inclusive; ignored when min == max
};

// A live parameter: /<module>/<name> over OSC, `name = value` in a patch.
struct ParamSpec {
  std::string name;
  ParamKind kind = ParamKind::kFloat;
  uint32_t count = 1;                // number of values (1..kParamValues)
  double min = 0, max = 1, def = 0;  // per value
  std::string unit;                  // "dB", "Hz", "" ...
  std::string help;
  // A value the module reports (a meter, an LV2 control output port): read
  // with /<module>/<name>/get and sent to /rackd/notify subscribers when it
  // changes; never set. At most kMaxOutputs per module, count 1.
  bool output = false;
};

inline constexpr uint32_t kMaxOutputs = 64;

// One channel count, as data the server evaluates against the module's setup
// keys and its input:
//   constant(2)                          2
//   upstream()                           the input's channel count
//   out()                                (input only) the output count
//   setup_key("channels", 2)             the integer setup key, 2 when absent
//   setup_key_map("layout", {{"5.1", 6}}, "7.1")  a setup key naming one of the counts
// and, on any of them, .when("source", "device"): 0 unless that setup key has
// that value.
struct ChannelCount {
  enum class From { kConst, kUpstream, kOut, kKey };
  From from = From::kConst;
  uint32_t value = 0;                                  // kConst; kKey without map: the default
  std::string key;                                     // kKey
  std::vector<std::pair<std::string, uint32_t>> map;   // kKey: names -> counts (empty: an integer key)
  std::string map_default;                             // kKey with a map: the name when the key is absent
  std::string if_key, if_equals;                       // when(): 0 unless config[if_key] == if_equals

  static ChannelCount constant(uint32_t n) {
    ChannelCount c;
    c.value = n;
    return c;
  }
  static ChannelCount upstream() {
    ChannelCount c;
    c.from = From::kUpstream;
    return c;
  }
  static ChannelCount out() {
    ChannelCount c;
    c.from = From::kOut;
    return c;
  }
  static ChannelCount setup_key(std::string name, uint32_t def) {
    ChannelCount c;
    c.from = From::kKey;
    c.key = std::move(name);
    c.value = def;
    return c;
  }
  static ChannelCount setup_key_map(std::string name, std::vector<std::pair<std::string, uint32_t>> names,
                              std::string def) {
    ChannelCount c;
    c.from = From::kKey;
    c.key = std::move(name);
    c.map = std::move(names);
    c.map_default = std::move(def);
    return c;
  }
  ChannelCount when(std::string k, std::string equals) const {
    ChannelCount c = *this;
    c.if_key = std::move(k);
    c.if_equals = std::move(equals);
    return c;
  }
};

// A processor's input must have `in` channels (upstream(): any count); a
// source reads the device input when `in` is not 0.
struct ChannelRule {
  ChannelCount in = ChannelCount::upstream();
  ChannelCount out = ChannelCount::upstream();
};

struct ModuleSpec {
  std::string type;                  // as written in `type = "..."`; the executable is rackd-<anything>
  std::string summary;
  bool bypassable = false;           // output may be replaced by input when in == out
  bool takes_input = false;          // requires `input = "<module>|device"`
  std::vector<ParamSpec> params;
  std::vector<ConfigSpec> config;
  ChannelRule channels;
  uint32_t latency_frames = 0;       // how many frames the output lags its input (an LV2 plugin's latency port)
  // Optional: parameter defaults that follow from the setup keys (an EQ
  // preset file fills its bands). Given the module's setup keys (paths
  // absolute), change `spec.params[i].def`; throw std::runtime_error with a
  // message a user can act on (it may start with its own "file:line: ").
  // `rackd-<type> --describe --config TOML` runs it; the server asks at patch
  // load and puts the values between the defaults and the patch's own keys.
  std::function<void(const toml::table& config, ModuleSpec& spec)> configure;

  // Index of parameter `name` in `params`, or -1.
  int index(std::string_view name) const {
    for (std::size_t i = 0; i < params.size(); ++i)
      if (params[i].name == name) return static_cast<int>(i);
    return -1;
  }
};

}  // namespace rackd
