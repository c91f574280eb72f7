// [osc.map] parsing and scaling. [setup] parse, [any] scaling.
#include "control/osc_map.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <toml++/toml.h>

#include "control/param_writer.hpp"

namespace rackd::control {
namespace {

[[noreturn]] void fail(const std::string& path, uint32_t line, const std::string& reason) {
  throw graph::PatchError::at(path, line ? line : 1, reason);
}

bool valid_from(std::string_view s) {
  if (s.size() < 2 || s[0] != '/' || s.size() > 255) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f && c != '#'; });
}

}  // namespace

const OscMapping* OscMap::find(std::string_view from) const {
  for (const auto& e : entries) {
    if (e.from == from) return &e;
  }
  return nullptr;
}

OscMap parse_osc_map(const std::string& text, const std::string& path, const graph::Patch& patch) {
  OscMap map;
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(path));
  } catch (const toml::parse_error& e) {
    fail(path, e.source().begin.line, std::string(e.description()));
  }
  const toml::node* osc = root.get("osc");
  if (!osc) return map;
  const toml::table* ot = osc->as_table();
  if (!ot) fail(path, osc->source().begin.line, "\"osc\" must be a table: write [osc.map]");
  for (auto&& [k, v] : *ot) {
    if (k.str() != "map")
      fail(path, k.source().begin.line, "[osc]: unknown key \"" + std::string(k.str()) + "\" (accepted: map)");
  }
  const toml::node* mn = ot->get("map");
  if (!mn) return map;
  const toml::table* mt = mn->as_table();
  if (!mt) fail(path, mn->source().begin.line, "\"osc.map\" must be a table: write [osc.map]");

  for (auto&& [k, v] : *mt) {
    OscMapping m;
    m.from = std::string(k.str());
    m.line = k.source().begin.line;
    const std::string who = "[osc.map] \"" + m.from + "\"";
    if (!valid_from(m.from))
      fail(path, m.line, who + ": a controller address must start with '/' and contain no spaces");
    if (m.from.rfind("/rackd/", 0) == 0) fail(path, m.line, who + ": /rackd/... addresses are reserved");
    const toml::node* to = nullptr;
    const toml::node* min = nullptr;
    const toml::node* max = nullptr;
    if (v.is_string()) {
      to = &v;
    } else if (const toml::table* t = v.as_table()) {
      for (auto&& [ek, ev] : *t) {
        if (ek.str() == "to") to = &ev;
        else if (ek.str() == "min") min = &ev;
        else if (ek.str() == "max") max = &ev;
        else fail(path, ek.source().begin.line, who + ": unknown key \"" + std::string(ek.str()) + "\" (accepted: to, min, max)");
      }
    } else {
      fail(path, m.line, who + " must be { to = \"/<module>/<param>\", min = ..., max = ... } or a string");
    }
    if (!to || !to->is_string()) fail(path, m.line, who + ": missing to = \"/<module>/<param>\"");
    m.to = to->as_string()->get();
    std::string why;
    if (!resolve_param(patch, m.to, m.target, why)) fail(path, to->source().begin.line, who + ": " + why);
    const registry::ParamSpec& spec = *m.target.spec;
    if (spec.count != 1)
      fail(path, m.line, who + ": " + m.to + " takes " + std::to_string(spec.count) + " values; a mapping drives one");
    m.min = spec.min;
    m.max = spec.max;
    auto number = [&](const toml::node* n, const char* key, double& out) {
      if (!n) return;
      if (auto* f = n->as_floating_point()) out = f->get();
      else if (auto* i = n->as_integer()) out = static_cast<double>(i->get());
      else fail(path, n->source().begin.line, who + ": " + key + " must be a number");
      if (!(out >= spec.min && out <= spec.max))
        fail(path, n->source().begin.line, who + ": " + key + " = " + format_number(out) + " is outside " + m.to +
                                              "'s range [" + format_number(spec.min) + ", " + format_number(spec.max) + "]");
    };
    number(min, "min", m.min);
    number(max, "max", m.max);
    if (m.min == m.max) fail(path, m.line, who + ": min and max must differ");
    map.entries.push_back(std::move(m));
  }
  // File order: TOML puts one key per line, so lines are unique.
  std::sort(map.entries.begin(), map.entries.end(),
            [](const OscMapping& a, const OscMapping& b) { return a.line < b.line; });
  return map;
}

OscMap load_osc_map(const graph::Patch& patch) {
  if (patch.path.empty()) return {};
  std::ifstream f(patch.path, std::ios::binary);
  if (!f) throw graph::PatchError(patch.path + ":1: cannot read the patch file for [osc.map]");
  std::ostringstream ss;
  ss << f.rdbuf();
  return parse_osc_map(ss.str(), patch.path, patch);
}

double map_to_param(const OscMapping& m, double x) {
  if (!(x >= 0.0)) x = 0.0;  // NaN too
  if (x > 1.0) x = 1.0;
  return m.min + x * (m.max - m.min);
}

double map_to_controller(const OscMapping& m, double v) {
  double x = (v - m.min) / (m.max - m.min);
  if (!(x >= 0.0)) x = 0.0;
  if (x > 1.0) x = 1.0;
  return x;
}

}  // namespace rackd::control
