// Resolving "/<module>/<param>" against a patch. [control] and [setup] threads.
// A parameter name may itself contain slashes ("band/1/gain"), so the module is
// the first path element and the parameter is everything after it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "graph/patch.hpp"

namespace rackd::control {

struct ParamRef {
  uint32_t module = 0;                       // index into Patch::modules == segment slot
  uint32_t param = 0;                        // index into spec->params == ParamSlot index
  const registry::ParamSpec* spec = nullptr;
};

// [any] Index of the module called `name`, or -1.
int find_module(const graph::Patch& patch, std::string_view name);

// [any] Resolves `address`. False with a reason ("unknown module \"x\"",
// "module \"eq\" has no parameter \"foo\" (parameters: ...)") otherwise.
bool resolve_param(const graph::Patch& patch, std::string_view address, ParamRef& out, std::string& why);

// [any] "/<module>/<param>" of a reference.
std::string param_address(const graph::Patch& patch, const ParamRef& ref);

}  // namespace rackd::control
