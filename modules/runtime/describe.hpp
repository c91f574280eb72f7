// `rackd-<type> --describe [--config TOML|FILE]`: the module's spec as JSON on
// standard output (include/rackd/module.hpp, describe_json()). [setup] only.
#pragma once

#include <rackd/spec.hpp>

namespace rackd {

// [setup] Prints the description (with `config`, a TOML table inline or in a
// file, after the spec's configure hook) and returns the exit code: 0, or 65
// with the reason on standard error when the config is refused.
int describe_main(const ModuleSpec& spec, const char* config);

}  // namespace rackd
