// KEY=VALUE pairs, as `rackctl add` and --events files take them, written as
// the TOML lines of a patch's [[module]] table. [control]/[setup]; allocates.
#include "graph/kv_toml.hpp"

#include <cctype>
#include <cstring>
#include <set>

#include <toml++/toml.h>

namespace rackd::graph {
namespace {

bool is_bare_key_part(const std::string& s) {
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return !s.empty();
}

// A TOML basic string: "..." with quotes, backslashes and control characters escaped.
std::string toml_string(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04X", u);
      o += buf;
    } else {
      o += c;
    }
  }
  return o + "\"";
}

// KEY ([A-Za-z0-9_./-]+, dots separating a dotted key) as TOML: each part bare,
// or quoted when it holds a '/'. False when KEY is not such a key.
bool toml_key(const std::string& key, std::string& out, std::vector<std::string>& parts) {
  if (key.empty()) return false;
  for (char c : key)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '/' && c != '-') return false;
  out.clear();
  parts.clear();
  std::size_t from = 0;
  for (;;) {
    const std::size_t dot = key.find('.', from);
    const std::string part = key.substr(from, dot == std::string::npos ? std::string::npos : dot - from);
    if (part.empty()) return false;
    parts.push_back(part);
    out += (out.empty() ? "" : ".") + (is_bare_key_part(part) ? part : toml_string(part));
    if (dot == std::string::npos) return true;
    from = dot + 1;
  }
}

// Whether `line` parses as TOML holding exactly the one key `parts` (nothing
// smuggled in after a newline); the parser's complaint otherwise.
bool one_key_parses(const std::string& line, const std::vector<std::string>& parts, std::string& error) {
  toml::table root;
  try {
    root = toml::parse(line);
  } catch (const toml::parse_error& e) {
    error = std::string(e.description());
    return false;
  }
  const toml::table* t = &root;
  for (std::size_t k = 0; k < parts.size(); ++k) {
    if (!t || t->size() != 1 || !t->contains(parts[k])) {
      error = "more than one value";
      return false;
    }
    if (k + 1 < parts.size()) t = (*t)[parts[k]].as_table();
  }
  return true;
}

bool is_bare_word(const std::string& v) {
  if (v.empty()) return false;
  for (char c : v)
    if (std::isspace(static_cast<unsigned char>(c)) || std::strchr("\"'[]{}=", c)) return false;
  return true;
}


}  // namespace

bool setup_toml(const std::vector<std::string>& pairs, std::string& toml, std::string& error) {
  std::set<std::string> seen;
  std::vector<std::string> parts;
  toml.clear();
  for (const std::string& pair : pairs) {
    const std::size_t eq = pair.find('=');
    std::string key;
    if (eq == std::string::npos || !toml_key(pair.substr(0, eq), key, parts)) {
      error = "'" + pair + "' is not KEY=VALUE (KEY: letters, digits, _ . / -)";
      return false;
    }
    if (!seen.insert(key).second) {
      error = "key '" + pair.substr(0, eq) + "' given twice";
      return false;
    }
    const std::string value = pair.substr(eq + 1);
    std::string line = key + " = " + value, why;
    if (!one_key_parses(line, parts, why)) {
      if (!is_bare_word(value)) {
        error = pair + ": " + why;
        return false;
      }
      line = key + " = " + toml_string(value);
      if (!one_key_parses(line, parts, why)) {
        error = pair + ": " + why;
        return false;
      }
    }
    toml += (toml.empty() ? "" : "\n") + line;
  }
  try {
    (void)toml::parse(toml);  // keys that clash with each other (a=1 a.b=2)
  } catch (const toml::parse_error& e) {
    error = std::string(e.description());
    return false;
  }
  return true;
}


}  // namespace rackd::graph
