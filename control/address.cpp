// Address resolution. [any] thread; allocates only for error messages.
#include "control/address.hpp"

namespace rackd::control {

int find_module(const graph::Patch& patch, std::string_view name) {
  for (std::size_t i = 0; i < patch.modules.size(); ++i) {
    if (patch.modules[i].spec && patch.modules[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

bool resolve_param(const graph::Patch& patch, std::string_view address, ParamRef& out, std::string& why) {
  if (address.size() < 2 || address[0] != '/') {
    why = "address must start with '/'";
    return false;
  }
  const std::string_view rest = address.substr(1);
  const std::size_t slash = rest.find('/');
  const std::string_view module = rest.substr(0, slash);
  const int m = find_module(patch, module);
  if (m < 0) {
    std::string names;
    for (const auto& pm : patch.modules) {
      if (pm.spec) names += (names.empty() ? "" : ", ") + pm.name;  // free slots have no module
    }
    why = "unknown module \"" + std::string(module) + "\" (modules: " + names + ")";
    return false;
  }
  const registry::TypeSpec* spec = patch.modules[static_cast<std::size_t>(m)].spec;
  const std::string_view param = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
  const int p = spec ? registry::find_param(*spec, param) : -1;
  if (p < 0) {
    std::string names;
    if (spec) {
      for (const auto& ps : spec->params) names += (names.empty() ? "" : ", ") + ps.name;
    }
    why = param.empty() ? "address names module \"" + std::string(module) + "\" but no parameter (parameters: " + names + ")"
                        : "module \"" + std::string(module) + "\" has no parameter \"" + std::string(param) +
                              "\" (parameters: " + names + ")";
    return false;
  }
  out.module = static_cast<uint32_t>(m);
  out.param = static_cast<uint32_t>(p);
  out.spec = &spec->params[static_cast<std::size_t>(p)];
  return true;
}

std::string param_address(const graph::Patch& patch, const ParamRef& ref) {
  return "/" + patch.modules[ref.module].name + "/" + ref.spec->name;
}

}  // namespace rackd::control
