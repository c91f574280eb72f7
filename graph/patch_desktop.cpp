// The [desktop] table of a patch: rackd as a PipeWire sink, and what the graph
// does on each output device (docs/desktop.md). [setup] thread only.
//
//   [desktop]
//   sink = true                 # `rackd run` makes the sink without --desktop
//   name = "rackd: 7.1 to HD 650"   # the sink's description (default "rackd: <file stem>")
//   eq = "eq"                   # the module presets apply to (default: the patch's only eq)
//   [[desktop.output]]
//   match = "HD 650"            # substring of the device's node name or description
//   preset = "hd650-ParametricEQ.txt"
//   [[desktop.output]]
//   match = "Speakers"
//   bypass = ["binaural", "eq"] # a module with a `bypass` parameter sets it; an eq goes flat
#include <algorithm>
#include <filesystem>
#include <sstream>

#include "graph/patch_detail.hpp"
#include "modules/common/text.hpp"

namespace rackd::graph::patch_detail {
namespace {

namespace fs = std::filesystem;
using modules::quote;

uint32_t line_of(const toml::node& n, uint32_t fallback) {
  const uint32_t line = n.source().begin.line;
  return line ? line : fallback;
}

int module_index(const Patch& p, const std::string& name) {
  for (std::size_t i = 0; i < p.modules.size(); ++i)
    if (p.modules[i].name == name) return static_cast<int>(i);
  return -1;
}

bool has_bypass_param(const PatchModule& m) {
  return std::any_of(m.spec->params.begin(), m.spec->params.end(),
                     [](const registry::ParamSpec& s) { return s.name == "bypass"; });
}

class DesktopParser {
 public:
  DesktopParser(const std::string& path, Patch& patch) : path_(path), patch_(patch) {}

  void parse(const toml::node& node) {
    const toml::table* t = node.as_table();
    Desktop& d = patch_.desktop;
    d.line = line_of(node, 1);
    if (!t) fail(d.line, "\"desktop\" must be a table: write [desktop]");
    const toml::array* outputs = nullptr;
    uint32_t eq_line = d.line;
    for (auto&& [k, v] : *t) {
      const uint32_t line = line_of(v, d.line);
      if (k == "sink") {
        if (!v.is_boolean()) fail(line, "[desktop] sink must be true or false");
        d.sink = v.as_boolean()->get();
      } else if (k == "name") {
        if (!v.is_string() || v.as_string()->get().empty()) fail(line, "[desktop] name must be a non-empty string");
        d.name = v.as_string()->get();
      } else if (k == "eq") {
        if (!v.is_string()) fail(line, "[desktop] eq must be a module name");
        d.eq = v.as_string()->get();
        eq_line = line;
      } else if (k == "output") {
        outputs = v.as_array();
        if (!outputs || !outputs->is_array_of_tables())
          fail(line, "[desktop] output must be an array of tables: write [[desktop.output]]");
      } else {
        fail(line, "[desktop]: unknown key " + quote(std::string(k.str())) +
                       " (accepted: sink, name, eq, [[desktop.output]])");
      }
    }
    if (outputs)
      for (const auto& o : *outputs) parse_output(*o.as_table());
    resolve_eq(eq_line);
  }

 private:
  [[noreturn]] void fail(uint32_t line, const std::string& reason) const { throw PatchError::at(path_, line, reason); }

  void parse_output(const toml::table& t) {
    DesktopOutput o;
    o.line = line_of(t, patch_.desktop.line);
    for (auto&& [k, v] : t) {
      const uint32_t line = line_of(v, o.line);
      if (k == "match") {
        if (!v.is_string() || v.as_string()->get().empty())
          fail(line, "[[desktop.output]] match must be a non-empty string (part of the device's name)");
        o.match = v.as_string()->get();
      } else if (k == "preset") {
        if (!v.is_string() || v.as_string()->get().empty()) fail(line, "[[desktop.output]] preset must be a file name");
        fs::path p(v.as_string()->get());
        if (p.is_relative()) p = fs::absolute(fs::path(path_).parent_path()) / p;
        o.preset = p.lexically_normal().string();
      } else if (k == "bypass") {
        const toml::array* a = v.as_array();
        if (!a) fail(line, "[[desktop.output]] bypass must be a list of module names");
        for (const auto& n : *a) {
          const uint32_t nline = line_of(n, line);
          if (!n.is_string()) fail(nline, "[[desktop.output]] bypass: expected a module name");
          const std::string& name = n.as_string()->get();
          const int i = module_index(patch_, name);
          if (i < 0) fail(nline, "[[desktop.output]] bypass: " + quote(name) + " is not a module in this patch");
          const PatchModule& m = patch_.modules[static_cast<std::size_t>(i)];
          if (!has_bypass_param(m) && m.type != "eq")
            fail(nline, "[[desktop.output]] bypass: " + quote(name) + " (type " + quote(m.type) +
                            ") has no bypass parameter and is not an eq; only those switch without a click");
          o.bypass.push_back(name);
        }
      } else {
        fail(line, "[[desktop.output]]: unknown key " + quote(std::string(k.str())) +
                       " (accepted: match, preset, bypass)");
      }
    }
    if (o.match.empty()) fail(o.line, "[[desktop.output]]: missing match = \"<part of the device's name>\"");
    patch_.desktop.outputs.push_back(std::move(o));
  }

  // The eq module presets go to, and each preset's parameter values.
  void resolve_eq(uint32_t eq_line) {
    Desktop& d = patch_.desktop;
    const bool any_preset =
        std::any_of(d.outputs.begin(), d.outputs.end(), [](const DesktopOutput& o) { return !o.preset.empty(); });
    if (!d.eq.empty()) {
      const int i = module_index(patch_, d.eq);
      if (i < 0 || patch_.modules[static_cast<std::size_t>(i)].type != "eq")
        fail(eq_line, "[desktop] eq: " + quote(d.eq) + " is not an eq module in this patch");
    } else if (any_preset) {
      for (const auto& m : patch_.modules) {
        if (m.type != "eq") continue;
        if (!d.eq.empty())
          fail(eq_line, "[desktop]: the patch has several eq modules (" + d.eq + ", " + m.name +
                            "); say which one takes the presets with eq = \"<name>\"");
        d.eq = m.name;
      }
      if (d.eq.empty()) fail(eq_line, "[desktop]: an output names a preset but the patch has no eq module");
    }
    if (d.eq.empty()) return;
    const PatchModule& eq = patch_.modules[static_cast<std::size_t>(module_index(patch_, d.eq))];
    for (DesktopOutput& o : d.outputs) {
      if (o.preset.empty()) continue;
      if (!fs::is_regular_file(o.preset))
        fail(o.line, "[[desktop.output]] preset: cannot read " + quote(o.preset));
      toml::table config;
      config.insert("preset", o.preset);
      std::ostringstream os;
      os << config;
      // The preset's bands as rackd-eq reports them (--describe --config),
      // in the order of the patch's eq.
      const registry::TypeSpec* with_preset = nullptr;
      try {
        with_preset = registry::configure(eq.spec->base ? *eq.spec->base : *eq.spec, os.str());
      } catch (const std::exception& e) {
        fail(o.line, std::string("[[desktop.output]] preset: ") + e.what());
      }
      for (const auto& p : eq.spec->params) {
        const int k = registry::find_param(*with_preset, p.name);
        o.eq_params.emplace_back(p.count, k < 0 ? p.def : with_preset->params[static_cast<std::size_t>(k)].def);
      }
      for (std::size_t i = 0; i < o.eq_params.size(); ++i)
        for (double& v : o.eq_params[i]) v = std::clamp(v, eq.spec->params[i].min, eq.spec->params[i].max);
    }
  }

  const std::string& path_;
  Patch& patch_;
};

}  // namespace

void parse_desktop(const toml::node& desktop, const std::string& path, Patch& patch) {
  DesktopParser(path, patch).parse(desktop);
}

}  // namespace rackd::graph::patch_detail
