// Small text helpers for error messages and JSON that users read
// (`patch.toml:12: module "eq": unknown band type "peek"`). [setup]/[control]
// threads; header only.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace rackd::modules {

// `s` in double quotes, as error messages show names and values.
inline std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// A JSON string's contents: quotes, backslashes and control characters escaped.
inline std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (c == '\n') {
      o += "\\n";
    } else if (c == '\t') {
      o += "\\t";
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      o += buf;
    } else {
      o += c;
    }
  }
  return o;
}

}  // namespace rackd::modules
