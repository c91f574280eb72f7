// Private to graph/patch.cpp (keys and values) and graph/patch_graph.cpp
// (inputs, order, channels): what the first hands the second. [setup] only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "graph/patch.hpp"

namespace rackd::graph::patch_detail {

// One entry of a module's `input`, by name, before names are resolved.
struct NamedInput {
  std::string name;                    // a module name or "device"
  double gain_db = 0.0;
  uint32_t line = 0;
};

// `patch` arrives with modules in file order and outputs as file indices;
// inputs[i] holds the `input` entries of module i (empty: no `input` key). It
// leaves in topological order with inputs, depth, channels and input_channels
// filled in. Throws PatchError.
void resolve_graph(const std::string& path, const std::vector<std::vector<NamedInput>>& inputs,
                   std::optional<uint32_t> server_input_channels, uint32_t server_input_line, Patch& patch);

// The [desktop] table (graph/patch_desktop.cpp), read once the graph is
// resolved: its entries name modules. Throws PatchError.
void parse_desktop(const toml::node& desktop, const std::string& path, Patch& patch);

}  // namespace rackd::graph::patch_detail
