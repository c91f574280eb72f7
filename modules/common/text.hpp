// Small text helpers for error messages that users read
// (`patch.toml:12: module "eq": unknown band type "peek"`). [setup]/[control]
// threads; header only.
#pragma once

#include <string>
#include <string_view>

namespace rackd::modules {

// `s` in double quotes, as error messages show names and values.
inline std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

}  // namespace rackd::modules
