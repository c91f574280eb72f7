// `rackd modules` and `rackd describe TYPE`: the module types found on the
// module path, as lv2ls/lv2info or pw-cli list what they know. [setup] only.
#pragma once

#include <string>

namespace rackd::server {

// [setup] Types with summaries and executables, then skipped files. Returns
// the exit code (1 when no type was found).
int list_modules();

// [setup] One type's parameters, setup keys, channel rule; `json`: the
// module's own --describe output. Returns the exit code (1: unknown type).
int describe_type(const std::string& type, bool json);

}  // namespace rackd::server
