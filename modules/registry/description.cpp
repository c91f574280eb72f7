// A module's --describe JSON (format: modules/runtime/describe.cpp) read into
// a TypeSpec and checked for consistency, and the channel rule it carries
// evaluated for a module of a patch. [any] thread.
#include <algorithm>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "modules/registry/registry.hpp"

namespace rackd::registry {
namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& what) { throw std::runtime_error(what); }

const json& field(const json& j, const char* name, json::value_t want, const std::string& where) {
  auto it = j.find(name);
  if (it == j.end()) bad(where + "has no \"" + name + "\"");
  const bool ok = want == json::value_t::number_float ? it->is_number() : it->type() == want ||
                  (want == json::value_t::number_unsigned && it->is_number_integer() && it->get<int64_t>() >= 0);
  if (!ok) bad(where + "\"" + name + "\" has the wrong JSON type");
  return *it;
}

std::string text(const json& j, const char* name, const std::string& where, bool required = true) {
  if (!required && !j.contains(name)) return "";
  return field(j, name, json::value_t::string, where).get<std::string>();
}

bool valid_name(const std::string& s, bool slash) {
  if (s.empty() || s.size() > shm::kNameBytes - 1) return false;
  // Parameters (slash) may use capitals too: an LV2 port symbol is kept as it is.
  return std::all_of(s.begin(), s.end(), [slash](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           (slash && (c == '/' || (c >= 'A' && c <= 'Z')));
  });
}

ChannelCount parse_count(const json& j, bool is_input, const std::set<std::string>& keys, const std::string& where) {
  ChannelCount c;
  const json* v = &j;
  if (j.is_object() && j.contains("value")) v = &j["value"];
  if (v->is_number_unsigned() || (v->is_number_integer() && v->get<int64_t>() >= 0)) {
    const auto n = v->get<uint64_t>();
    if (n > shm::kMaxChannels) bad(where + "a count of " + std::to_string(n) + " channels");
    c = ChannelCount::constant(static_cast<uint32_t>(n));
  } else if (v->is_string() && *v == "upstream") {
    c = ChannelCount::upstream();
  } else if (v->is_string() && *v == "out" && is_input) {
    c = ChannelCount::out();
  } else if (v == &j && j.is_object() && j.contains("key")) {
    const std::string key = text(j, "key", where);
    if (!keys.count(key)) bad(where + "names setup key \"" + key + "\", which is not declared");
    if (j.contains("map")) {
      std::vector<std::pair<std::string, uint32_t>> map;
      const json& m = field(j, "map", json::value_t::array, where);
      for (const json& e : m) {
        if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number_unsigned() ||
            e[1].get<uint64_t>() > shm::kMaxChannels)
          bad(where + "map entries must be [\"name\", count]");
        map.emplace_back(e[0].get<std::string>(), static_cast<uint32_t>(e[1].get<uint64_t>()));
      }
      const std::string def = text(j, "default", where);
      if (std::none_of(map.begin(), map.end(), [&](const auto& e) { return e.first == def; }))
        bad(where + "default \"" + def + "\" is not in its map");
      c = ChannelCount::setup_key_map(key, std::move(map), def);
    } else {
      const json& d = field(j, "default", json::value_t::number_unsigned, where);
      if (d.get<uint64_t>() > shm::kMaxChannels) bad(where + "default beyond " + std::to_string(shm::kMaxChannels));
      c = ChannelCount::setup_key(key, static_cast<uint32_t>(d.get<uint64_t>()));
    }
  } else {
    bad(where + "must be a count, \"upstream\"" + (is_input ? ", \"out\"" : "") + " or {\"key\": ...}");
  }
  if (j.is_object() && j.contains("if")) {
    const json& w = field(j, "if", json::value_t::object, where);
    const std::string key = text(w, "key", where + "if: ");
    if (!keys.count(key)) bad(where + "if names setup key \"" + key + "\", which is not declared");
    c = c.when(key, text(w, "equals", where + "if: "));
  }
  return c;
}

ParamKind param_kind(const std::string& s, const std::string& where) {
  if (s == "float") return ParamKind::kFloat;
  if (s == "int") return ParamKind::kInt;
  if (s == "bool") return ParamKind::kBool;
  bad(where + "kind \"" + s + "\" (float, int or bool)");
}

ConfigKind config_kind(const std::string& s, const std::string& where) {
  static const std::pair<const char*, ConfigKind> kinds[] = {
      {"string", ConfigKind::kString}, {"path", ConfigKind::kPath},   {"int", ConfigKind::kInt},
      {"float", ConfigKind::kFloat},   {"bool", ConfigKind::kBool},   {"enum", ConfigKind::kEnum},
      {"array", ConfigKind::kArray}};
  for (const auto& [name, kind] : kinds)
    if (s == name) return kind;
  bad(where + "kind \"" + s + "\" (string, path, int, float, bool, enum or array)");
}

double number(const json& j, const char* name, const std::string& where) {
  return field(j, name, json::value_t::number_float, where).get<double>();
}

}  // namespace

TypeSpec parse_description(const std::string& input, const std::string& executable) {
  json j;
  try {
    j = json::parse(input);
  } catch (const json::exception& e) {
    bad(std::string("not JSON: ") + e.what());
  }
  if (!j.is_object()) bad("not a JSON object");
  const json& proto = field(j, "rackd_module", json::value_t::number_unsigned, "");
  if (proto.get<uint64_t>() != kModuleProtocol) {
    bad("built against rackd module protocol " + std::to_string(proto.get<uint64_t>()) + "; this rackd speaks " +
        std::to_string(kModuleProtocol) + " (rebuild it against this rackd's SDK)");
  }
  TypeSpec t;
  t.executable = executable;
  t.type = text(j, "type", "");
  if (!valid_name(t.type, false) || t.type == "device")
    bad("type \"" + t.type + "\" is not a valid name (a-z, 0-9, _ and -, at most 31)");
  const std::string who = "type " + t.type + ": ";
  t.summary = text(j, "summary", who, false);
  t.bypassable = field(j, "bypassable", json::value_t::boolean, who).get<bool>();
  t.takes_input = field(j, "takes_input", json::value_t::boolean, who).get<bool>();
  if (j.contains("configurable")) t.configurable = field(j, "configurable", json::value_t::boolean, who).get<bool>();
  if (j.contains("latency_frames")) {
    const uint64_t l = field(j, "latency_frames", json::value_t::number_unsigned, who).get<uint64_t>();
    if (l > 10'000'000) bad(who + "latency_frames " + std::to_string(l) + " is not believable");
    t.latency_frames = static_cast<uint32_t>(l);
  }

  std::set<std::string> names = {"name", "type", "input"};
  uint32_t outputs = 0;
  for (const json& p : field(j, "params", json::value_t::array, who)) {
    if (!p.is_object()) bad(who + "params: every entry must be an object");
    ParamSpec s;
    s.name = text(p, "name", who + "a parameter ");
    const std::string where = who + "parameter " + s.name + ": ";
    if (!valid_name(s.name, true)) bad(where + "not a valid name (a-z, A-Z, 0-9, _, - and /, at most 31)");
    if (!names.insert(s.name).second) bad(where + "declared twice (or a reserved name)");
    s.kind = param_kind(text(p, "kind", where), where);
    s.count = static_cast<uint32_t>(std::min<uint64_t>(field(p, "count", json::value_t::number_unsigned, where).get<uint64_t>(), 99));
    if (s.count < 1 || s.count > shm::kParamValues) bad(where + "count must be 1.." + std::to_string(shm::kParamValues));
    s.min = number(p, "min", where);
    s.max = number(p, "max", where);
    s.def = number(p, "default", where);
    if (!(s.min <= s.max) || !(s.def >= s.min && s.def <= s.max))
      bad(where + "needs min <= default <= max");
    s.unit = text(p, "unit", where, false);
    if (p.contains("output")) s.output = field(p, "output", json::value_t::boolean, where).get<bool>();
    if (s.output && s.count != 1) bad(where + "an output has one value");
    if (s.output && ++outputs > kMaxOutputs) bad(who + "more than " + std::to_string(kMaxOutputs) + " outputs");
    s.help = text(p, "help", where, false);
    t.params.push_back(std::move(s));
  }
  if (t.params.size() > shm::kMaxParams)
    bad(who + std::to_string(t.params.size()) + " parameters; at most " + std::to_string(shm::kMaxParams));

  std::set<std::string> keys;
  for (const json& c : field(j, "config", json::value_t::array, who)) {
    if (!c.is_object()) bad(who + "config: every entry must be an object");
    ConfigSpec s;
    s.name = text(c, "name", who + "a setup key ");
    const std::string where = who + "setup key " + s.name + ": ";
    if (s.name.empty() || !names.insert(s.name).second) bad(where + "empty, declared twice or a parameter's name");
    s.kind = config_kind(text(c, "kind", where), where);
    s.help = text(c, "help", where, false);
    if (c.contains("choices")) {
      for (const json& e : field(c, "choices", json::value_t::array, where)) {
        if (!e.is_string()) bad(where + "choices must be strings");
        s.choices.push_back(e.get<std::string>());
      }
    }
    if (s.kind == ConfigKind::kEnum && s.choices.empty()) bad(where + "an enum without choices");
    if (c.contains("min") || c.contains("max")) {
      s.min = number(c, "min", where);
      s.max = number(c, "max", where);
      if (!(s.min <= s.max)) bad(where + "min > max");
    }
    keys.insert(s.name);
    t.config.push_back(std::move(s));
  }

  const json& ch = field(j, "channels", json::value_t::object, who);
  if (!ch.contains("in") || !ch.contains("out")) bad(who + "channels needs \"in\" and \"out\"");
  t.rule.out = parse_count(ch["out"], false, keys, who + "channels out: ");
  t.rule.in = parse_count(ch["in"], true, keys, who + "channels in: ");
  if (!t.takes_input && t.rule.in.from == ChannelCount::From::kUpstream)
    bad(who + "a source (takes_input false) cannot read \"upstream\" channels");
  return t;
}

namespace {

// One count; `out` is the output count when `c` is "out". Errors as a user reads them.
bool count(const std::string& type, const ChannelCount& c, const ChannelQuery& q, uint32_t out, uint32_t& n,
           std::string& error) {
  if (!c.if_key.empty()) {
    const auto v = q.get_string(c.if_key);
    if (!v || *v != c.if_equals) {
      n = 0;
      return true;
    }
  }
  switch (c.from) {
    case ChannelCount::From::kConst: n = c.value; return true;
    case ChannelCount::From::kUpstream: n = q.upstream_channels; return true;
    case ChannelCount::From::kOut: n = out; return true;
    case ChannelCount::From::kKey: break;
  }
  if (c.map.empty()) {
    const auto v = q.get_int(c.key);
    if (v && (*v < 1 || *v > shm::kMaxChannels)) {
      error = c.key + " = " + std::to_string(*v) + "; must be 1 to " + std::to_string(shm::kMaxChannels);
      return false;
    }
    n = v ? static_cast<uint32_t>(*v) : c.value;
    return true;
  }
  const auto v = q.get_string(c.key);
  const std::string name = v ? *v : c.map_default;
  std::string known;
  for (const auto& [k, count] : c.map) {
    if (k == name) {
      n = count;
      return true;
    }
    known += (known.empty() ? "" : ", ") + k;
  }
  error = "unknown " + c.key + " \"" + name + "\" (known: " + known + ")";
  (void)type;
  return false;
}

}  // namespace

bool evaluate_channels(const std::string& type, bool takes_input, const rackd::ChannelRule& rule,
                       const ChannelQuery& q, Channels& c, std::string& error) {
  if (takes_input && (q.upstream_channels == 0 || q.upstream_channels > shm::kMaxChannels)) {
    error = type + " needs an input with 1.." + std::to_string(shm::kMaxChannels) + " channels";
    return false;
  }
  if (!count(type, rule.out, q, 0, c.out, error)) return false;
  if (!count(type, rule.in, q, c.out, c.in, error)) return false;
  if (takes_input && rule.in.from != ChannelCount::From::kUpstream && c.in != q.upstream_channels) {
    std::string what = type;
    if (rule.in.from == ChannelCount::From::kKey) {
      const auto v = rule.in.map.empty() ? std::nullopt : q.get_string(rule.in.key);
      what = rule.in.key + " " + (rule.in.map.empty() ? std::to_string(c.in) : v ? *v : rule.in.map_default);
    }
    error = what + " takes " + std::to_string(c.in) + " input channels; its input has " +
            std::to_string(q.upstream_channels);
    return false;
  }
  return true;
}

}  // namespace rackd::registry
