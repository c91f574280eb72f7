// The --describe JSON a module prints and the server reads
// (modules/registry/registry.cpp parses it). [setup] only. The format, one
// object on one line:
//   { "rackd_module": <kModuleProtocol>, "type", "summary", "bypassable",
//     "takes_input", "configurable" (a configure hook: ask again with --config),
//     "latency_frames" (optional),
//     "params": [{ "name", "kind": "float|int|bool", "count", "min", "max",
//                  "default", "unit", "help", "output" (optional: a value the
//                  module reports, read-only) }],
//     "config": [{ "name", "kind": "string|path|int|float|bool|enum|array",
//                  "help", "choices": [...], "min", "max" }],
//     "channels": { "in": COUNT, "out": COUNT } }
//   COUNT: 2 | "upstream" | "out" | { "key", "default" } (an integer key)
//        | { "key", "map": [["5.1", 6], ...], "default": "7.1" }
//        | { "value": 2 | "upstream" | "out" } ; any object may add
//          "if": { "key", "equals" }: 0 unless that setup key has that value.
#include "modules/runtime/describe.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>
#include <rackd/module.hpp>

namespace rackd {
namespace {

using nlohmann::json;

const char* kind_name(ParamKind k) {
  switch (k) {
    case ParamKind::kInt: return "int";
    case ParamKind::kBool: return "bool";
    case ParamKind::kFloat: break;
  }
  return "float";
}

const char* kind_name(ConfigKind k) {
  switch (k) {
    case ConfigKind::kString: return "string";
    case ConfigKind::kPath: return "path";
    case ConfigKind::kInt: return "int";
    case ConfigKind::kFloat: return "float";
    case ConfigKind::kBool: return "bool";
    case ConfigKind::kEnum: return "enum";
    case ConfigKind::kArray: return "array";
  }
  return "string";
}

json count_json(const ChannelCount& c) {
  json j;
  switch (c.from) {
    case ChannelCount::From::kConst: j = c.value; break;
    case ChannelCount::From::kUpstream: j = "upstream"; break;
    case ChannelCount::From::kOut: j = "out"; break;
    case ChannelCount::From::kKey:
      j = json::object();
      j["key"] = c.key;
      if (c.map.empty()) {
        j["default"] = c.value;
      } else {
        json m = json::array();
        for (const auto& [name, n] : c.map) m.push_back(json::array({name, n}));
        j["map"] = m;
        j["default"] = c.map_default;
      }
      break;
  }
  if (c.if_key.empty()) return j;
  if (!j.is_object()) j = json{{"value", j}};
  j["if"] = {{"key", c.if_key}, {"equals", c.if_equals}};
  return j;
}

}  // namespace

std::string describe_json(const ModuleSpec& spec) {
  json j;
  j["rackd_module"] = kModuleProtocol;
  j["type"] = spec.type;
  j["summary"] = spec.summary;
  j["bypassable"] = spec.bypassable;
  j["takes_input"] = spec.takes_input;
  j["configurable"] = static_cast<bool>(spec.configure);
  if (spec.latency_frames) j["latency_frames"] = spec.latency_frames;
  json params = json::array();
  for (const ParamSpec& p : spec.params) {
    json e = {{"name", p.name}, {"kind", kind_name(p.kind)}, {"count", p.count}, {"min", p.min},
              {"max", p.max}, {"default", p.def}, {"unit", p.unit}, {"help", p.help}};
    if (p.output) e["output"] = true;
    params.push_back(e);
  }
  j["params"] = params;
  json config = json::array();
  for (const ConfigSpec& c : spec.config) {
    json e = {{"name", c.name}, {"kind", kind_name(c.kind)}, {"help", c.help}};
    if (!c.choices.empty()) e["choices"] = c.choices;
    if (c.min != c.max) {
      e["min"] = c.min;
      e["max"] = c.max;
    }
    config.push_back(e);
  }
  j["config"] = config;
  j["channels"] = {{"in", count_json(spec.channels.in)}, {"out", count_json(spec.channels.out)}};
  return j.dump();
}

int describe_main(const ModuleSpec& spec, const char* config) {
  const std::string who = "rackd-" + spec.type;
  try {
    if (!config) {
      std::printf("%s\n", describe_json(spec).c_str());
      return 0;
    }
    std::string text = config;
    std::error_code ec;
    if (std::filesystem::is_regular_file(text, ec)) {
      std::ifstream f(text);
      std::ostringstream all;
      all << f.rdbuf();
      text = all.str();
    }
    toml::table table;
    try {
      table = toml::parse(text);
    } catch (const toml::parse_error& e) {
      throw std::runtime_error("--config: " + std::string(e.description()));
    }
    ModuleSpec configured = spec;
    if (spec.configure) spec.configure(table, configured);
    for (ParamSpec& p : configured.params) p.def = std::clamp(p.def, p.min, p.max);
    std::printf("%s\n", describe_json(configured).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 65;
  }
}

}  // namespace rackd
