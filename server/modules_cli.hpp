// `rackd modules` and `rackd describe TYPE`: the module types found on the
// module path, as lv2ls/lv2info or pw-cli list what they know. [setup] only.
#pragma once

#include <string>

namespace rackd::server {

// [setup] Types with summaries and executables, then skipped files. Returns
// the exit code (1 when no type was found).
int list_modules();

// [setup] One type's parameters, setup keys, channel rule; with `config` (a
// TOML table of setup keys, inline or a file) as a module with those keys has
// them (an LV2 plugin's ports); `json`: the module's own --describe output.
// Returns the exit code (1: unknown type or refused config).
int describe_type(const std::string& type, bool json, const std::string& config);

// [setup] `rackd lv2 list` and `rackd lv2 audit URI ...`: run by the lv2
// type's executable (--list) and the audit tool beside it (lv2-audit); does
// not return when they start. Returns the exit code otherwise.
int lv2_command(int argc, char** argv);

}  // namespace rackd::server
