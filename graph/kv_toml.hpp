// KEY=VALUE pairs (`gain_db=-6 input=src`) as the TOML lines of a patch's
// [[module]] table. [control]/[setup]; allocates.
#pragma once

#include <string>
#include <vector>

namespace rackd::graph {

// One `key = value` line per pair, joined with "\n". Each VALUE is written as
// in a patch (`gain_db=-6`, `input="src"`, `input=["a","b"]`); a bare word
// that is not a TOML value becomes a string (`input=src`). False with `error`
// set when a pair cannot be written as TOML (or a key is given twice).
bool setup_toml(const std::vector<std::string>& pairs, std::string& toml, std::string& error);

}  // namespace rackd::graph
