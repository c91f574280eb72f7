// Per-output presets of a desktop run (desktop.hpp).
#include "server/desktop.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "control/param_writer.hpp"
#include "server/graph_editor.hpp"

namespace rackd::server {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

int param_index(const registry::TypeSpec& spec, const std::string& name) {
  for (std::size_t i = 0; i < spec.params.size(); ++i)
    if (spec.params[i].name == name) return static_cast<int>(i);
  return -1;
}

}  // namespace

DesktopPresets::DesktopPresets(const graph::Patch& patch) : desktop_(patch.desktop) {
  std::vector<std::string> names;
  if (!desktop_.eq.empty()) names.push_back(desktop_.eq);
  for (const auto& o : desktop_.outputs)
    for (const auto& b : o.bypass)
      if (std::find(names.begin(), names.end(), b) == names.end()) names.push_back(b);
  for (const auto& n : names) {
    const int i = graph::find_module(patch, n);
    if (i < 0) continue;
    const graph::PatchModule& m = patch.modules[static_cast<std::size_t>(i)];
    modules_.push_back(Module{m.name, m.spec, m.params});
  }
}

int DesktopPresets::entry_for(const std::string& name, const std::string& description) const {
  const std::string n = lower(name), d = lower(description);
  for (std::size_t i = 0; i < desktop_.outputs.size(); ++i) {
    const std::string m = lower(desktop_.outputs[i].match);
    if (n.find(m) != std::string::npos || d.find(m) != std::string::npos) return static_cast<int>(i);
  }
  return -1;
}

std::vector<DesktopPresets::Write> DesktopPresets::writes_for(const std::string& name,
                                                              const std::string& description) const {
  const int e = entry_for(name, description);
  const graph::DesktopOutput* entry = e >= 0 ? &desktop_.outputs[static_cast<std::size_t>(e)] : nullptr;
  std::vector<Write> out;
  for (const Module& m : modules_) {
    std::vector<std::vector<double>> v = m.initial;
    if (entry && m.name == desktop_.eq && !entry->eq_params.empty()) v = entry->eq_params;
    const bool bypass = entry && std::find(entry->bypass.begin(), entry->bypass.end(), m.name) != entry->bypass.end();
    if (bypass) {
      if (const int b = param_index(*m.spec, "bypass"); b >= 0) {
        v[static_cast<std::size_t>(b)].assign(v[static_cast<std::size_t>(b)].size(), 1.0);
      } else {  // an eq: flat (preamp 0 dB, every band off; the bands fade out)
        for (std::size_t i = 0; i < m.spec->params.size(); ++i) {
          const std::string& p = m.spec->params[i].name;
          if (p == "preamp") v[i].assign(v[i].size(), 0.0);
          else if (p.size() > 3 && p.compare(p.size() - 3, 3, "/on") == 0) v[i].assign(v[i].size(), 0.0);
        }
      }
    }
    for (std::size_t i = 0; i < m.spec->params.size() && i < v.size(); ++i)
      out.push_back(Write{m.name, m.spec->params[i].name, v[i]});
  }
  return out;
}

void DesktopPresets::output_changed(const std::string& name, const std::string& description) {
  const int e = entry_for(name, description);
  std::string what;
  if (e >= 0) {
    const graph::DesktopOutput& o = desktop_.outputs[static_cast<std::size_t>(e)];
    if (!o.preset.empty()) what += ": preset " + o.preset;
    if (!o.bypass.empty()) {
      what += what.empty() ? ": bypass " : ", bypass ";
      for (std::size_t i = 0; i < o.bypass.size(); ++i) what += (i ? "," : "") + o.bypass[i];
    }
    if (what.empty()) what = ": matches \"" + o.match + "\"";
  } else if (!desktop_.outputs.empty()) {
    what = ": no [[desktop.output]] matches; the patch as written";
  }
  std::fprintf(stderr, "rackd: desktop: output is \"%s\" (%s)%s\n", description.c_str(), name.c_str(), what.c_str());
  std::lock_guard<std::mutex> lock(mu_);
  pending_ = true;
  name_ = name;
  description_ = description;
}

void DesktopPresets::apply(const GraphEditor& editor, shm::Segment& segment) {
  std::string name, description;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!pending_) return;
    pending_ = false;
    name = name_;
    description = description_;
  }
  if (modules_.empty()) return;
  const graph::Patch& by_slot = editor.by_slot();
  for (const Write& w : writes_for(name, description)) {
    for (std::size_t s = 0; s < by_slot.modules.size(); ++s) {
      const graph::PatchModule& pm = by_slot.modules[s];
      if (!pm.spec || pm.name != w.module) continue;
      const int i = param_index(*pm.spec, w.param);
      if (i < 0) break;
      shm::ModuleIn& in = segment.module_in(static_cast<uint32_t>(s));
      const control::ParamValues now = control::get_param(in, static_cast<uint32_t>(i));
      if (!std::equal(w.values.begin(), w.values.end(), now.begin()))
        control::write_param(in, static_cast<uint32_t>(i), w.values);
      break;
    }
  }
}

}  // namespace rackd::server
