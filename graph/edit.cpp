// Edits as values: apply one to a patch (through its TOML text, so the result
// is checked exactly as a patch file is), write a patch back as TOML, and the
// difference between two patches. [setup]/[control]; allocates freely.
#include "graph/edit.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include <toml++/toml.h>

#include "modules/common/text.hpp"

namespace rackd::graph {
namespace {

using modules::quote;

std::string source_name(const Patch& p, int from) {
  return from == kDeviceInput ? "device" : p.modules[static_cast<std::size_t>(from)].name;
}

// `input` as written in a patch: a name, or a list with gains where needed.
void put_input(toml::table& t, const Patch& p, const PatchModule& m) {
  if (m.inputs.size() == 1 && m.inputs[0].gain_db == 0.0) {
    t.insert_or_assign("input", source_name(p, m.inputs[0].from));
  } else {
    toml::array list;
    for (const PatchInput& in : m.inputs) {
      if (in.gain_db == 0.0) {
        list.push_back(source_name(p, in.from));
      } else {
        toml::table entry;
        entry.insert_or_assign("from", source_name(p, in.from));
        entry.insert_or_assign("gain_db", in.gain_db);
        list.push_back(std::move(entry));
      }
    }
    t.insert_or_assign("input", std::move(list));
  }
}

toml::table module_table(const Patch& p, const PatchModule& m) {
  toml::table t;
  t.insert_or_assign("name", m.name);
  t.insert_or_assign("type", m.type);
  // A source that reads the device says so in its setup keys, not in `input`.
  if (m.spec->takes_input && !m.inputs.empty()) put_input(t, p, m);
  toml::table config = toml::parse(m.config_toml);
  for (auto&& [k, v] : config) t.insert_or_assign(k, v);
  for (std::size_t i = 0; i < m.spec->params.size() && i < m.params.size(); ++i) {
    const registry::ParamSpec& ps = m.spec->params[i];
    if (ps.output) continue;  // reported by the module, never set
    toml::array values;
    for (double v : m.params[i]) {
      switch (ps.kind) {
        case shm::ParamKind::kInt: values.push_back(static_cast<int64_t>(std::llround(v))); break;
        case shm::ParamKind::kBool: values.push_back(v != 0.0); break;
        default: values.push_back(v); break;
      }
    }
    if (values.size() == 1) t.insert_or_assign(ps.name, *values.get(0));
    else t.insert_or_assign(ps.name, std::move(values));
  }
  return t;
}

[[noreturn]] void refuse(const std::string& why) { throw PatchError(why); }

// A message from parsing generated text, without its meaningless "label:line: ".
std::string strip_location(const std::string& label, const std::string& what) {
  if (what.rfind(label + ":", 0) != 0) return what;
  const std::size_t colon = what.find(": ", label.size() + 1);
  return colon == std::string::npos ? what : what.substr(colon + 2);
}

// [desktop] as written, for save: entries keep naming only modules that are
// still in the graph.
void put_desktop(std::ostringstream& os, const Patch& p) {
  const Desktop& d = p.desktop;
  if (!d.line) return;
  auto q = [](const std::string& s) {
    std::ostringstream o;
    o << toml::value<std::string>(s);
    return o.str();
  };
  os << "\n[desktop]\n";
  if (d.sink) os << "sink = true\n";
  if (!d.name.empty()) os << "name = " << q(d.name) << "\n";
  if (!d.eq.empty() && find_module(p, d.eq) >= 0) os << "eq = " << q(d.eq) << "\n";
  for (const DesktopOutput& o : d.outputs) {
    os << "\n[[desktop.output]]\nmatch = " << q(o.match) << "\n";
    if (!o.preset.empty() && find_module(p, d.eq) >= 0) os << "preset = " << q(o.preset) << "\n";
    std::string list;
    for (const std::string& b : o.bypass)
      if (find_module(p, b) >= 0) list += (list.empty() ? "" : ", ") + q(b);
    if (!list.empty()) os << "bypass = [" << list << "]\n";
  }
}

// The [desktop] table of `from` carried to `to`, a graph made by an edit.
void carry_desktop(const Patch& from, Patch& to) {
  to.desktop = from.desktop;
  Desktop& d = to.desktop;
  if (!d.eq.empty() && find_module(to, d.eq) < 0) d.eq.clear();
  for (DesktopOutput& o : d.outputs) {
    if (d.eq.empty()) o.preset.clear(), o.eq_params.clear();
    std::erase_if(o.bypass, [&](const std::string& b) { return find_module(to, b) < 0; });
  }
}

Patch reparse(const toml::table& doc, const std::string& what, const std::string& path) {
  std::ostringstream os;
  os << doc;
  // Named as a file beside the patch, so relative paths in an added module
  // are taken from the patch's folder, as in the patch file itself.
  const std::string label =
      path.empty() ? what : (std::filesystem::absolute(path).parent_path() / what).string();
  try {
    Patch p = parse_patch(os.str(), label);
    p.path = path;
    return p;
  } catch (const PatchError& e) {
    refuse(strip_location(label, e.what()));
  }
}

toml::table document(const Patch& p) {
  toml::table doc;
  toml::table server;
  server.insert_or_assign("rate", static_cast<int64_t>(p.rate_hz));
  server.insert_or_assign("block", static_cast<int64_t>(p.block_frames));
  server.insert_or_assign("output_channels", static_cast<int64_t>(p.output_channels));
  // Only when the patch said so: a derived count is derived again.
  if (p.input_channels_given) server.insert_or_assign("input_channels", static_cast<int64_t>(p.input_channels));
  server.insert_or_assign("fade_ms", p.fade_ms);
  doc.insert_or_assign("server", std::move(server));
  toml::array modules;
  for (const PatchModule& m : p.modules) modules.push_back(module_table(p, m));
  doc.insert_or_assign("module", std::move(modules));
  toml::array from;
  for (int o : p.outputs) from.push_back(p.modules[static_cast<std::size_t>(o)].name);
  toml::table output;
  output.insert_or_assign("from", std::move(from));
  doc.insert_or_assign("output", std::move(output));
  return doc;
}

toml::table& module_entry(toml::table& doc, const std::string& name) {
  toml::array& modules = *doc["module"].as_array();
  for (auto& m : modules) {
    toml::table& t = *m.as_table();
    if (t["name"].value_or(std::string()) == name) return t;
  }
  refuse("no module " + quote(name));
}

// The `input` value of `t` as a list of entries (strings or tables).
toml::array input_list(const toml::table& t) {
  toml::array list;
  const toml::node* n = t.get("input");
  if (!n) return list;
  if (const toml::array* a = n->as_array()) return *a;
  list.push_back(*n);
  return list;
}

std::string entry_name(const toml::node& item) {
  if (item.is_string()) return item.as_string()->get();
  if (const toml::table* t = item.as_table()) return (*t)["from"].value_or(std::string());
  return {};
}

double entry_gain(const toml::node& item) {
  if (const toml::table* t = item.as_table()) {
    const toml::node* g = t->get("gain_db");
    if (g && g->is_integer()) return static_cast<double>(g->as_integer()->get());
    if (g && g->is_floating_point()) return g->as_floating_point()->get();
  }
  return 0.0;
}

void set_input_list(toml::table& t, toml::array list) {
  if (list.empty()) t.erase("input");
  else if (list.size() == 1 && list.get(0)->is_string()) t.insert_or_assign("input", *list.get(0));
  else t.insert_or_assign("input", std::move(list));
}

std::vector<std::string> consumers_of(const Patch& p, const std::string& name) {
  const int i = find_module(p, name);
  std::vector<std::string> out;
  for (const PatchModule& m : p.modules) {
    for (const PatchInput& in : m.inputs) {
      if (in.from == i) out.push_back(m.name);
    }
  }
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + quote(x);
  return s;
}

}  // namespace

const char* Edit::address() const {
  switch (kind) {
    case EditKind::kAdd: return "/rackd/module/add";
    case EditKind::kRemove: return "/rackd/module/remove";
    case EditKind::kConnect: return "/rackd/connect";
    case EditKind::kDisconnect: return "/rackd/disconnect";
    case EditKind::kLoad: return "/rackd/patch/load";
    case EditKind::kSave: return "/rackd/patch/save";
  }
  return "/rackd/graph";
}

std::string Edit::subject() const {
  switch (kind) {
    case EditKind::kAdd:
    case EditKind::kRemove: return name;
    case EditKind::kConnect:
    case EditKind::kDisconnect: return to;
    default: return path;
  }
}

int find_module(const Patch& p, const std::string& name) {
  for (std::size_t i = 0; i < p.modules.size(); ++i) {
    if (p.modules[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

// A TOML value on one line: arrays and tables inline, whatever they hold
// (toml++ would write an array of tables as [[key]] sections, which inside a
// [[module]] would start tables of their own).
std::string inline_value(const toml::node& v) {
  std::ostringstream os;
  if (const toml::array* a = v.as_array()) {
    os << "[";
    for (std::size_t i = 0; i < a->size(); ++i) os << (i ? ", " : " ") << inline_value(*a->get(i));
    os << (a->empty() ? "]" : " ]");
  } else if (const toml::table* t = v.as_table()) {
    os << "{";
    bool first = true;
    for (auto&& [k, x] : *t) {
      toml::table key_only;
      key_only.insert_or_assign(k, 0);
      std::ostringstream ks;
      ks << key_only;  // "key = 0", with the key quoted where TOML needs it
      const std::string kv = ks.str();
      os << (first ? " " : ", ") << kv.substr(0, kv.rfind(" = 0")) << " = " << inline_value(x);
      first = false;
    }
    os << (first ? "}" : " }");
  } else {
    v.visit([&](auto&& x) { os << x; });
  }
  return os.str();
}

void put_line(std::ostringstream& os, const std::string& key, const toml::node& value) {
  toml::table key_only;
  key_only.insert_or_assign(key, 0);
  std::ostringstream ks;
  ks << key_only;
  const std::string kv = ks.str();
  os << kv.substr(0, kv.rfind(" = 0")) << " = " << inline_value(value) << "\n";
}

std::string to_toml(const Patch& p) {
  // Written by hand so a reader finds [server] first and each module's name,
  // type and input at its top; toml++ formats the values.
  const toml::table doc = document(p);
  std::ostringstream os;
  os << "# Written by rackd from the running graph (rackctl save).\n\n[server]\n";
  for (auto&& [k, v] : *doc["server"].as_table()) put_line(os, std::string(k.str()), v);
  const toml::array& modules = *doc["module"].as_array();
  for (std::size_t i = 0; i < modules.size(); ++i) {
    const toml::table& t = *modules.get(i)->as_table();
    const PatchModule& pm = p.modules[i];
    os << "\n[[module]]\n";
    // Name, type, input; setup keys; parameters in the type's order.
    for (const char* first : {"name", "type", "input"}) {
      if (const toml::node* v = t.get(first)) put_line(os, first, *v);
    }
    auto is_param = [&](std::string_view k) {
      return std::any_of(pm.spec->params.begin(), pm.spec->params.end(), [&](const auto& ps) { return ps.name == k; });
    };
    for (auto&& [k, v] : t) {
      if (k.str() != "name" && k.str() != "type" && k.str() != "input" && !is_param(k.str()))
        put_line(os, std::string(k.str()), v);
    }
    for (const auto& ps : pm.spec->params) {
      if (const toml::node* v = t.get(ps.name)) put_line(os, ps.name, *v);
    }
  }
  os << "\n[output]\n";
  put_line(os, "from", *doc["output"]["from"].node());
  put_desktop(os, p);
  return os.str();
}

Patch apply_edit(const Patch& current, const Edit& e) {
  if (e.kind == EditKind::kLoad) return load_patch(e.path);
  if (e.kind == EditKind::kSave) return current;
  toml::table doc = document(current);
  toml::array& modules = *doc["module"].as_array();
  toml::array& outputs = *doc["output"]["from"].as_array();
  auto output_names = [&] {
    std::vector<std::string> v;
    for (const auto& o : outputs) v.push_back(o.as_string()->get());
    return v;
  };
  std::string label;
  switch (e.kind) {
    case EditKind::kAdd: {
      label = "add " + e.name;
      if (find_module(current, e.name) >= 0) refuse("module " + quote(e.name) + " exists already");
      toml::table t;
      try {
        t = toml::parse(e.toml, std::string_view(label));
      } catch (const toml::parse_error& err) {
        refuse("module " + quote(e.name) + ": malformed TOML: " + std::string(err.description()));
      }
      if (t.contains("name") || t.contains("type")) refuse("module " + quote(e.name) + ": give name and type as arguments, not as keys");
      t.insert_or_assign("name", e.name);
      t.insert_or_assign("type", e.type);
      modules.push_back(std::move(t));
      break;
    }
    case EditKind::kRemove: {
      label = "remove " + e.name;
      const int i = find_module(current, e.name);
      if (i < 0) refuse("no module " + quote(e.name));
      const auto consumers = consumers_of(current, e.name);
      if (!consumers.empty() && !e.rewire)
        refuse("module " + quote(e.name) + " is the input of " + join(consumers) +
               "; disconnect it first, or remove with rewire to connect them to its inputs");
      const toml::array gone_inputs = input_list(module_entry(doc, e.name));
      for (auto& m : modules) {
        toml::table& t = *m.as_table();
        toml::array list = input_list(t);
        bool fed = false;
        double via_db = 0.0;  // the consumer's gain on the removed module
        toml::array next;
        for (const auto& item : list) {
          if (entry_name(item) == e.name) {
            fed = true;
            via_db = entry_gain(item);
          } else {
            next.push_back(item);
          }
        }
        if (!fed) continue;
        // Rewire: the removed module's inputs take its place, each at its
        // gain there plus the consumer's gain on the removed module.
        for (const auto& item : gone_inputs) {
          const std::string n = entry_name(item);
          if (std::any_of(next.begin(), next.end(), [&](const toml::node& x) { return entry_name(x) == n; })) continue;
          const double db = entry_gain(item) + via_db;
          if (db == 0.0) {
            next.push_back(n);
          } else {
            toml::table entry;
            entry.insert_or_assign("from", n);
            entry.insert_or_assign("gain_db", db);
            next.push_back(std::move(entry));
          }
        }
        set_input_list(t, std::move(next));
      }
      for (auto it = modules.begin(); it != modules.end(); ++it) {
        if ((*it->as_table())["name"].value_or(std::string()) == e.name) {
          modules.erase(it);
          break;
        }
      }
      const auto outs = output_names();
      if (std::find(outs.begin(), outs.end(), e.name) != outs.end()) {
        toml::array next;
        for (const auto& o : outs) {
          if (o != e.name) next.push_back(o);
        }
        if (e.rewire) {
          for (const auto& item : gone_inputs) {
            const std::string n = entry_name(item);
            if (n != "device" && std::find(outs.begin(), outs.end(), n) == outs.end()) next.push_back(n);
          }
        }
        if (next.empty()) refuse("module " + quote(e.name) + " is the only module mixed to the output; connect another first");
        outputs = std::move(next);
      }
      break;
    }
    case EditKind::kConnect:
    case EditKind::kDisconnect: {
      const bool connect = e.kind == EditKind::kConnect;
      label = std::string(connect ? "connect " : "disconnect ") + e.from + " " + e.to;
      if (e.from != "device" && find_module(current, e.from) < 0) refuse("no module " + quote(e.from));
      if (e.to == kOutputName) {
        if (e.from == "device") refuse("the device input cannot be mixed to the output directly; pass it through a module");
        const auto outs = output_names();
        const bool there = std::find(outs.begin(), outs.end(), e.from) != outs.end();
        if (connect) {
          if (there) refuse(quote(e.from) + " is already mixed to the output");
          if (e.gain_db && *e.gain_db != 0.0) refuse("the output mixer takes its sources at 0 dB; put a gain on a module");
          outputs.push_back(e.from);
        } else {
          if (!there) refuse(quote(e.from) + " is not mixed to the output");
          if (outs.size() == 1) refuse(quote(e.from) + " is the only module mixed to the output; connect another first");
          toml::array next;
          for (const auto& o : outs) {
            if (o != e.from) next.push_back(o);
          }
          outputs = std::move(next);
        }
        break;
      }
      const int to = find_module(current, e.to);
      if (to < 0) refuse("no module " + quote(e.to) + " (or \"output\")");
      if (!current.modules[static_cast<std::size_t>(to)].spec->takes_input)
        refuse("module " + quote(e.to) + " is a source and takes no input");
      toml::table& t = module_entry(doc, e.to);
      toml::array list = input_list(t);
      const auto it = std::find_if(list.begin(), list.end(), [&](const toml::node& x) { return entry_name(x) == e.from; });
      if (connect) {
        if (it != list.end()) refuse(quote(e.from) + " is already an input of " + quote(e.to));
        if (e.gain_db && *e.gain_db != 0.0) {
          toml::table entry;
          entry.insert_or_assign("from", e.from);
          entry.insert_or_assign("gain_db", *e.gain_db);
          list.push_back(std::move(entry));
        } else {
          list.push_back(e.from);
        }
      } else {
        if (it == list.end()) refuse(quote(e.from) + " is not an input of " + quote(e.to));
        if (list.size() == 1)
          refuse(quote(e.from) + " is the only input of " + quote(e.to) + "; connect another first, or remove " +
                 quote(e.to));
        list.erase(it);
      }
      set_input_list(t, std::move(list));
      break;
    }
    default: break;
  }
  Patch next = reparse(doc, label, current.path);
  carry_desktop(current, next);
  return next;
}

Diff diff(const Patch& a, const Patch& b) {
  Diff d;
  if (a.rate_hz != b.rate_hz)
    d.refused = "rate " + std::to_string(a.rate_hz) + " -> " + std::to_string(b.rate_hz) + " needs a restart";
  else if (a.block_frames != b.block_frames)
    d.refused = "block " + std::to_string(a.block_frames) + " -> " + std::to_string(b.block_frames) + " needs a restart";
  else if (a.output_channels != b.output_channels)
    d.refused = "output_channels " + std::to_string(a.output_channels) + " -> " + std::to_string(b.output_channels) +
                " needs a restart";
  else if (a.input_channels != b.input_channels)
    d.refused = "input_channels " + std::to_string(a.input_channels) + " -> " + std::to_string(b.input_channels) +
                " needs a restart";
  auto names = [](const Patch& p, const PatchModule& m) {
    std::vector<std::pair<std::string, double>> v;
    for (const PatchInput& in : m.inputs) v.emplace_back(source_name(p, in.from), in.gain_db);
    return v;
  };
  for (const PatchModule& m : b.modules) {
    const int i = find_module(a, m.name);
    if (i < 0) {
      d.add.push_back(m.name);
      continue;
    }
    const PatchModule& old = a.modules[static_cast<std::size_t>(i)];
    if (old.type != m.type || old.config_toml != m.config_toml || old.in_channels != m.in_channels ||
        old.out_channels != m.out_channels) {
      d.replace.push_back(m.name);
      continue;
    }
    d.keep.push_back(m.name);
    if (names(a, old) != names(b, m)) d.inputs_changed = true;
    if (old.params != m.params) d.params_changed = true;
  }
  for (const PatchModule& m : a.modules) {
    if (find_module(b, m.name) < 0) d.remove.push_back(m.name);
  }
  std::vector<std::string> oa, ob;
  for (int o : a.outputs) oa.push_back(a.modules[static_cast<std::size_t>(o)].name);
  for (int o : b.outputs) ob.push_back(b.modules[static_cast<std::size_t>(o)].name);
  std::sort(oa.begin(), oa.end());
  std::sort(ob.begin(), ob.end());
  if (oa != ob) d.inputs_changed = true;
  return d;
}

}  // namespace rackd::graph
