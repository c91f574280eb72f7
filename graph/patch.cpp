// Patch files, first half: TOML text -> modules in file order with checked
// keys, types, ranges and absolute paths. The graph (inputs, order, channels)
// is resolved in patch_graph.cpp once every table has been read, because
// `input` may name a module defined further down. [setup] thread only (server
// start-up and patch reload); allocates freely.
//
// Checks run in file order (keys are visited by position, not toml++'s sorted
// order), so the error reported is the first one a reader of the file meets.
#include "modules/common/text.hpp"
#include "graph/patch.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>
#include <utility>

#include <toml++/toml.h>

#include "graph/patch_detail.hpp"

namespace rackd::graph {

namespace {

namespace fs = std::filesystem;
using registry::ConfigKind;
using registry::ConfigSpec;
using registry::ParamSpec;
using registry::TypeSpec;
using shm::ParamKind;

// Numbers with enough digits that every range in the registry prints exactly.
std::string fmt_num(double v) {
  std::ostringstream os;
  os.precision(15);
  os << v;
  return os.str();
}

std::string type_of(const toml::node& n) {
  std::ostringstream os;
  os << n.type();
  return os.str();
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

using modules::quote;

uint32_t line_of(const toml::node& n, uint32_t fallback) {
  const uint32_t line = n.source().begin.line;
  return line ? line : fallback;
}

using Entry = std::pair<const toml::key*, const toml::node*>;

// toml::table iterates sorted by key; this restores the order of the file.
std::vector<Entry> in_file_order(const toml::table& t) {
  std::vector<Entry> out;
  for (auto&& [k, v] : t) out.emplace_back(&k, &v);
  // Keys start at distinct places in the file: the order is total.
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
    const auto& sa = a.first->source().begin;
    const auto& sb = b.first->source().begin;
    return std::pair(sa.line, sa.column) < std::pair(sb.line, sb.column);
  });
  return out;
}

uint32_t key_line(const Entry& e, uint32_t fallback) {
  const uint32_t line = e.first->source().begin.line;
  return line ? line : line_of(*e.second, fallback);
}

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > shm::kNameBytes - 1) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::vector<std::string> type_names() {
  std::vector<std::string> names;
  for (const auto* t : registry::all_types()) names.push_back(t->type);
  return names;
}

// One value of a parameter, or nullopt when the node has the wrong TOML type.
std::optional<double> param_value(const toml::node& n, ParamKind kind) {
  switch (kind) {
    case ParamKind::kFloat:
      if (auto* f = n.as_floating_point()) return f->get();
      [[fallthrough]];
    case ParamKind::kInt:
      if (auto* i = n.as_integer()) return static_cast<double>(i->get());
      return std::nullopt;
    case ParamKind::kBool:
      if (auto* b = n.as_boolean()) return b->get() ? 1.0 : 0.0;
      return std::nullopt;
  }
  return std::nullopt;
}

const char* param_expects(ParamKind kind) {
  switch (kind) {
    case ParamKind::kFloat: return "a number";
    case ParamKind::kInt: return "an integer";
    case ParamKind::kBool: return "true or false";
  }
  return "a value";
}

class PatchParser {
 public:
  explicit PatchParser(std::string path) : path_(std::move(path)) { patch_.path = path_; }

  Patch parse(const std::string& text);

 private:
  [[noreturn]] void fail(uint32_t line, const std::string& reason) const { throw PatchError::at(path_, line, reason); }

  void parse_server(const toml::table& t);
  uint32_t server_uint(const Entry& e, uint32_t fallback, int64_t lo, int64_t hi) const;
  void parse_module(const toml::table& t, std::size_t index);
  void parse_param(PatchModule& m, std::size_t param, const toml::node& n, uint32_t line) const;
  std::vector<patch_detail::NamedInput> parse_input(const std::string& who, const toml::node& n,
                                                   uint32_t line) const;
  void parse_config(const PatchModule& m, const ConfigSpec& c, const toml::node& n, uint32_t line,
                    toml::table& config);
  std::string absolute_path(const std::string& value, uint32_t line);
  void parse_output(const toml::table& t);

  std::string path_;
  fs::path dir_;  // absolute folder of the patch; computed on first kPath value
  Patch patch_;
  std::optional<uint32_t> server_input_channels_;
  uint32_t server_input_line_ = 0;
  std::vector<std::vector<patch_detail::NamedInput>> inputs_;  // per module: its `input` entries
};

Patch PatchParser::parse(const std::string& text) {
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(path_));
  } catch (const toml::parse_error& e) {
    fail(e.source().begin.line ? e.source().begin.line : 1, std::string(e.description()));
  }
  const uint32_t root_line = line_of(root, 1);

  for (const Entry& e : in_file_order(root)) {
    const std::string_view k = e.first->str();
    if (k != "server" && k != "module" && k != "output" && k != "osc" && k != "desktop") {
      fail(key_line(e, root_line), "unknown top-level key " + quote(k) +
                                       " (accepted: [server], [[module]], [output], [osc], [desktop])");
    }
  }
  // [osc] belongs to the OSC mapper, which reads the file itself.

  if (const toml::node* s = root.get("server")) {
    const toml::table* t = s->as_table();
    if (!t) fail(line_of(*s, root_line), "\"server\" must be a table: write [server]");
    parse_server(*t);
  }

  const toml::node* modules = root.get("module");
  if (!modules) fail(root_line, "no modules: add at least one [[module]] table");
  const toml::array* arr = modules->as_array();
  if (arr && arr->empty()) {
    fail(line_of(*modules, root_line), "no modules: add at least one [[module]] table");
  }
  if (!arr || !arr->is_array_of_tables()) {
    fail(line_of(*modules, root_line), "\"module\" must be an array of tables: write [[module]]");
  }
  if (arr->size() > shm::kMaxModules) {
    fail(line_of((*arr)[shm::kMaxModules], root_line),
         "too many modules (" + std::to_string(arr->size()) + "); the limit is " +
             std::to_string(shm::kMaxModules));
  }
  for (std::size_t i = 0; i < arr->size(); ++i) parse_module(*(*arr)[i].as_table(), i);

  const toml::node* output = root.get("output");
  if (!output) fail(root_line, "missing [output] table: add [output] with from = \"<module>\"");
  const toml::table* ot = output->as_table();
  if (!ot) fail(line_of(*output, root_line), "\"output\" must be a table: write [output]");
  parse_output(*ot);

  patch_detail::resolve_graph(path_, inputs_, server_input_channels_, server_input_line_, patch_);
  if (const toml::node* d = root.get("desktop")) patch_detail::parse_desktop(*d, path_, patch_);
  return std::move(patch_);
}

uint32_t PatchParser::server_uint(const Entry& e, uint32_t fallback, int64_t lo, int64_t hi) const {
  const std::string key(e.first->str());
  const uint32_t line = line_of(*e.second, fallback);
  const auto* i = e.second->as_integer();
  if (!i) fail(line, "[server] " + key + " must be an integer, got " + type_of(*e.second));
  if (i->get() < lo || i->get() > hi) {
    fail(line, "[server] " + key + " = " + std::to_string(i->get()) + " is out of range [" +
                   std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return static_cast<uint32_t>(i->get());
}

void PatchParser::parse_server(const toml::table& t) {
  const uint32_t line = line_of(t, 1);
  for (const Entry& e : in_file_order(t)) {
    const std::string_view k = e.first->str();
    if (k == "rate") {
      patch_.rate_hz = server_uint(e, line, 8000, 384000);
    } else if (k == "block") {
      patch_.block_frames = server_uint(e, line, shm::kMinBlockFrames, shm::kMaxBlockFrames);
    } else if (k == "output_channels") {
      patch_.output_channels = server_uint(e, line, 1, shm::kMaxChannels);
    } else if (k == "input_channels") {
      // 0 is allowed: it states that the patch must not read the device.
      server_input_channels_ = server_uint(e, line, 0, shm::kMaxChannels);
      patch_.input_channels_given = true;
      server_input_line_ = line_of(*e.second, line);
    } else if (k == "fade_ms") {
      const uint32_t vline = line_of(*e.second, line);
      if (!e.second->is_number()) fail(vline, "[server] fade_ms must be a number, got " + type_of(*e.second));
      const double v = e.second->is_integer() ? static_cast<double>(e.second->as_integer()->get())
                                              : e.second->as_floating_point()->get();
      if (!(v >= 0.0 && v <= 10000.0)) fail(vline, "[server] fade_ms = " + std::to_string(v) + " is out of range [0, 10000]");
      patch_.fade_ms = v;
    } else {
      fail(key_line(e, line), "[server]: unknown key " + quote(k) +
                                  " (accepted: rate, block, output_channels, input_channels, fade_ms)");
    }
  }
}

void PatchParser::parse_module(const toml::table& t, std::size_t index) {
  PatchModule m;
  std::vector<patch_detail::NamedInput> input;
  bool have_input = false;
  m.line = static_cast<int>(line_of(t, 1));
  const uint32_t line = static_cast<uint32_t>(m.line);
  const std::string anon = "module #" + std::to_string(index + 1);

  const toml::node* name = t.get("name");
  if (!name) fail(line, anon + ": missing name = \"...\"");
  const uint32_t name_line = line_of(*name, line);
  if (!name->is_string()) fail(name_line, anon + ": name must be a string, got " + type_of(*name));
  m.name = name->as_string()->get();
  if (!valid_name(m.name)) {
    fail(name_line, anon + ": invalid name " + quote(m.name) + ": use 1 to " +
                        std::to_string(shm::kNameBytes - 1) + " characters from a-z 0-9 _ -");
  }
  if (m.name == "rackd" || m.name == "device" || m.name == "output") {
    fail(name_line, anon + ": name " + quote(m.name) + " is reserved; choose another");
  }
  for (const auto& other : patch_.modules) {
    if (other.name == m.name) {
      fail(name_line, "module " + quote(m.name) + ": name already used by the module on line " +
                          std::to_string(other.line));
    }
  }
  const std::string who = "module " + quote(m.name) + ": ";

  const toml::node* type = t.get("type");
  if (!type) fail(line, who + "missing type = \"...\" (types: " + join(type_names()) + ")");
  const uint32_t type_line = line_of(*type, line);
  if (!type->is_string()) fail(type_line, who + "type must be a string, got " + type_of(*type));
  m.type = type->as_string()->get();
  m.spec = registry::find_type(m.type);
  if (!m.spec) {
    if (const std::string why = registry::skipped_reason(m.type); !why.empty())
      fail(type_line, who + "type " + quote(m.type) + " is not available: " + why);
    fail(type_line, who + "unknown type " + quote(m.type) + " (types: " + join(type_names()) + "; module path: " +
                        join(registry::module_path()) + ")");
  }
  if (m.spec->configurable) {
    // The setup keys first: they decide the parameters (an LV2 plugin's
    // ports) or their defaults (an eq preset's bands), which the module
    // reports through --describe --config.
    toml::table setup;
    for (const Entry& e : in_file_order(t)) {
      const std::string_view k = e.first->str();
      const auto c = std::find_if(m.spec->config.begin(), m.spec->config.end(),
                                  [&](const ConfigSpec& cs) { return cs.name == k; });
      if (c == m.spec->config.end()) continue;
      setup.insert_or_assign(k, *e.second);
      parse_config(m, *c, *e.second, line_of(*e.second, line), setup);
    }
    std::ostringstream os;
    os << setup;
    try {
      m.spec = registry::configure(*m.spec, os.str());
    } catch (const std::exception& e) {
      fail(line, who + e.what());
    }
  }
  const TypeSpec& spec = *m.spec;
  for (const auto& p : spec.params) m.params.emplace_back(p.count, p.def);

  // What the module gets: its table minus the keys the server consumes.
  toml::table config = t;
  config.erase("name");
  config.erase("type");
  for (const Entry& e : in_file_order(t)) {
    const std::string_view k = e.first->str();
    const toml::node& n = *e.second;
    const uint32_t vline = line_of(n, line);
    if (k == "name" || k == "type") continue;
    if (k == "input") {
      if (!spec.takes_input) {
        fail(vline,
             who + "type " + quote(m.type) + " is a source and takes no input; remove input");
      }
      input = parse_input(who, n, vline);
      have_input = true;
      config.erase(k);
      continue;
    }
    if (const int p = registry::find_param(spec, k); p >= 0) {
      if (spec.params[static_cast<std::size_t>(p)].output)
        fail(vline, who + quote(k) + " is a value the module reports (read-only: /" + m.name + "/" + std::string(k) +
                        "/get); remove it");
      parse_param(m, static_cast<std::size_t>(p), n, vline);
      config.erase(k);
      continue;
    }
    const auto c = std::find_if(spec.config.begin(), spec.config.end(),
                                [&](const ConfigSpec& cs) { return cs.name == k; });
    if (c != spec.config.end()) {
      parse_config(m, *c, n, vline, config);
      continue;
    }
    std::vector<std::string> accepted;
    for (const auto& p : spec.params) accepted.push_back(p.name);
    for (const auto& cs : spec.config) accepted.push_back(cs.name);
    if (spec.takes_input) accepted.push_back("input");
    fail(key_line(e, line),
         who + "unknown key " + quote(k) + " (accepted: " + join(accepted) + ")");
  }
  if (spec.takes_input && !have_input) {
    fail(line, who + "missing input = \"<module>\" or input = \"device\"");
  }

  std::ostringstream os;
  os << config;
  m.config_toml = os.str();
  if (m.config_toml.size() > shm::kConfigBytes - 1) {
    fail(line, who + "configuration is " + std::to_string(m.config_toml.size()) +
                   " bytes as TOML; the limit is " + std::to_string(shm::kConfigBytes - 1));
  }
  patch_.modules.push_back(std::move(m));
  inputs_.push_back(std::move(input));
}

// `input = "a"`, `input = ["a", "b"]` or, with a gain per source,
// `input = ["a", { from = "b", gain_db = -6.0 }]`.
std::vector<patch_detail::NamedInput> PatchParser::parse_input(const std::string& who, const toml::node& n,
                                                               uint32_t line) const {
  const std::string expected = "input must be a module name, \"device\", or a list of them";
  std::vector<const toml::node*> items;
  if (const toml::array* arr = n.as_array()) {
    for (const auto& item : *arr) items.push_back(&item);
    if (items.empty()) fail(line, who + "input = []: name at least one module or \"device\"");
    if (items.size() > kMaxInputs)
      fail(line, who + "input lists " + std::to_string(items.size()) + " sources; at most " +
                     std::to_string(kMaxInputs) + " are summed");
  } else {
    items.push_back(&n);
  }
  std::vector<patch_detail::NamedInput> out;
  for (const toml::node* item : items) {
    const uint32_t iline = line_of(*item, line);
    patch_detail::NamedInput in;
    in.line = iline;
    if (item->is_string()) {
      in.name = item->as_string()->get();
    } else if (const toml::table* t = item->as_table()) {
      for (const Entry& e : in_file_order(*t)) {
        const std::string_view k = e.first->str();
        if (k == "from" && e.second->is_string()) {
          in.name = e.second->as_string()->get();
        } else if (k == "gain_db" && (e.second->is_number())) {
          in.gain_db = e.second->is_integer() ? static_cast<double>(e.second->as_integer()->get())
                                              : e.second->as_floating_point()->get();
          if (!(in.gain_db >= -120.0 && in.gain_db <= 24.0))
            fail(iline, who + "input gain_db = " + std::to_string(in.gain_db) + " is out of range [-120, 24]");
        } else {
          fail(iline, who + "input entry: " + (k == "from" || k == "gain_db" ? "bad value for " : "unknown key ") +
                          quote(k) + " (write { from = \"<module>\", gain_db = <number> })");
        }
      }
      if (in.name.empty()) fail(iline, who + "input entry without from = \"<module>\"");
    } else {
      fail(iline, who + expected + ", got " + type_of(*item));
    }
    for (const auto& seen : out) {
      if (seen.name == in.name) fail(iline, who + "input " + quote(in.name) + " is listed twice");
    }
    out.push_back(std::move(in));
  }
  return out;
}

void PatchParser::parse_param(PatchModule& m, std::size_t param, const toml::node& n,
                              uint32_t line) const {
  const ParamSpec& p = m.spec->params[param];
  const std::string who = "module " + quote(m.name) + ": " + p.name;
  std::vector<double>& values = m.params[param];
  const std::string unit = p.unit.empty() ? "" : " " + p.unit;

  auto check = [&](const toml::node& v, std::size_t i, const std::string& label) {
    const auto value = param_value(v, p.kind);
    if (!value) {
      fail(line_of(v, line), label + " must be " + param_expects(p.kind) + ", got " + type_of(v));
    }
    // Written as !(in range) so NaN is refused too.
    if (!(*value >= p.min && *value <= p.max)) {
      fail(line_of(v, line), label + " = " + fmt_num(*value) + " is out of range [" +
                                 fmt_num(p.min) + ", " + fmt_num(p.max) + "]" + unit);
    }
    values[i] = *value;
  };

  if (p.count == 1) {
    check(n, 0, who);
    return;
  }
  const toml::array* arr = n.as_array();
  if (!arr || arr->size() != p.count) {
    fail(line, who + " must be an array of " + std::to_string(p.count) + " values (each " +
                   param_expects(p.kind) + "), got " +
                   (arr ? "an array of " + std::to_string(arr->size()) : type_of(n)));
  }
  for (std::size_t i = 0; i < p.count; ++i) {
    check((*arr)[i], i, who + "[" + std::to_string(i) + "]");
  }
}

void PatchParser::parse_config(const PatchModule& m, const ConfigSpec& c, const toml::node& n,
                               uint32_t line, toml::table& config) {
  const std::string who = "module " + quote(m.name) + ": " + c.name;
  const bool ranged = c.min != c.max;
  const std::string range = "[" + fmt_num(c.min) + ", " + fmt_num(c.max) + "]";
  auto expect = [&](const char* what) {
    fail(line, who + " must be " + what + ", got " + type_of(n));
  };

  switch (c.kind) {
    case ConfigKind::kString:
      if (!n.is_string()) expect("a string");
      return;
    case ConfigKind::kPath: {
      if (!n.is_string()) expect("a string (a file path)");
      const std::string& value = n.as_string()->get();
      if (value.empty()) fail(line, who + " must not be empty");
      if (value.find('\0') != std::string::npos) fail(line, who + " contains a NUL character");
      // "default" names the module's built-in file (e.g. the system HRTF set).
      if (value != "default") config.insert_or_assign(c.name, absolute_path(value, line));
      return;
    }
    case ConfigKind::kInt: {
      if (!n.is_integer()) expect("an integer");
      const int64_t v = n.as_integer()->get();
      if (ranged && (static_cast<double>(v) < c.min || static_cast<double>(v) > c.max)) {
        fail(line, who + " = " + std::to_string(v) + " is out of range " + range);
      }
      return;
    }
    case ConfigKind::kFloat: {
      if (!n.is_number()) expect("a number");
      const double v = n.is_integer() ? static_cast<double>(n.as_integer()->get())
                                      : n.as_floating_point()->get();
      if (!std::isfinite(v)) fail(line, who + " must be a finite number");
      if (ranged && (v < c.min || v > c.max)) {
        fail(line, who + " = " + fmt_num(v) + " is out of range " + range);
      }
      return;
    }
    case ConfigKind::kBool:
      if (!n.is_boolean()) expect("true or false");
      return;
    case ConfigKind::kEnum: {
      std::vector<std::string> choices;
      for (const auto& s : c.choices) choices.push_back(quote(s));
      if (!n.is_string()) expect(("one of " + join(choices)).c_str());
      const std::string& v = n.as_string()->get();
      if (std::find(c.choices.begin(), c.choices.end(), v) == c.choices.end()) {
        fail(line, who + " = " + quote(v) + " is not one of " + join(choices));
      }
      return;
    }
    case ConfigKind::kArray:
      if (!n.is_array()) expect("an array");
      return;
  }
}

// Relative to the patch's folder, not the server's working directory, so a
// patch and its files can be moved together. Existence is the module's check.
std::string PatchParser::absolute_path(const std::string& value, uint32_t line) {
  const fs::path p(value);
  if (p.is_absolute()) return value;
  try {
    if (dir_.empty()) {
      const fs::path parent = fs::path(path_).parent_path();
      // Drop "." parts (from "./p.toml"): cosmetic, and unlike ".." always safe.
      for (const auto& part : parent.empty() ? fs::current_path() : fs::absolute(parent)) {
        if (part != ".") dir_ /= part;
      }
    }
  } catch (const fs::filesystem_error& e) {
    fail(line, "cannot make " + quote(value) + " absolute: " + e.what());
  }
  return (dir_ / p).string();
}

void PatchParser::parse_output(const toml::table& t) {
  const uint32_t line = line_of(t, 1);
  const toml::node* from = nullptr;
  for (const Entry& e : in_file_order(t)) {
    if (e.first->str() != "from") {
      fail(key_line(e, line),
           "[output]: unknown key " + quote(e.first->str()) + " (accepted: from)");
    }
    from = e.second;
  }
  if (!from) fail(line, "[output]: missing from = \"<module>\" (or an array of module names)");

  std::vector<const toml::node*> items;
  if (const toml::array* arr = from->as_array()) {
    for (const auto& n : *arr) items.push_back(&n);
    if (items.empty()) fail(line_of(*from, line), "[output] from: name at least one module");
  } else {
    items.push_back(from);
  }
  std::vector<std::string> names;
  for (const auto& m : patch_.modules) names.push_back(m.name);
  for (const toml::node* n : items) {
    const uint32_t nline = line_of(*n, line_of(*from, line));
    if (!n->is_string()) fail(nline, "[output] from: expected a module name, got " + type_of(*n));
    const std::string& name = n->as_string()->get();
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) {
      fail(nline, "[output] from: " + quote(name) +
                      " is not a module in this patch (modules: " + join(names) + ")");
    }
    const auto index = static_cast<int>(it - names.begin());
    if (std::find(patch_.outputs.begin(), patch_.outputs.end(), index) != patch_.outputs.end()) {
      fail(nline, "[output] from: " + quote(name) + " is listed twice");
    }
    patch_.outputs.push_back(index);
  }
}

}  // namespace

Patch parse_patch(const std::string& text, const std::string& path) {
  return PatchParser(path).parse(text);
}

Patch load_patch(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw PatchError(path + ": cannot read: " + std::strerror(errno));
  std::string text;
  char buf[65536];
  std::size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, got);
  // fread on a directory opens fine and then fails with EISDIR.
  const int err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (err) throw PatchError(path + ": cannot read: " + std::strerror(err));
  return parse_patch(text, path);
}

}  // namespace rackd::graph
