// Installed LV2 plugins through lilv: the world, a plugin's ports as rackd
// parameters and channel rule (the "lv2" type's configure hook), the host
// features rackd provides and `rackd-lv2 --list`. [setup] only.
#include "modules/lv2/lv2_plugin.hpp"

#include <lv2/atom/atom.h>
#include <lv2/buf-size/buf-size.h>
#include <lv2/core/lv2.h>
#include <lv2/options/options.h>
#include <lv2/port-props/port-props.h>
#include <lv2/state/state.h>
#include <lv2/units/units.h>
#include <lv2/urid/urid.h>
#include <lv2/worker/worker.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace rackd::lv2 {
namespace {

// A lilv node freed at scope exit.
struct Node {
  LilvNode* n;
  explicit Node(LilvNode* node) : n(node) {}
  ~Node() { lilv_node_free(n); }
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  operator const LilvNode*() const { return n; }
};

std::string str(const LilvNode* n) { return n ? lilv_node_as_string(n) : ""; }

// A number as the plugin's data writes it ("0.7", not 0.699999988 as a float).
double num(const LilvNode* n) {
  const char* text = lilv_node_as_string(n);
  char* end = nullptr;
  const double v = text ? std::strtod(text, &end) : 0.0;
  return end && end != text && *end == 0 ? v : lilv_node_as_float(n);
}

// Ranges of lv2:sampleRate ports are fractions of the rate; the spec is
// declared before the server's rate is known, so 48 kHz stands for it.
constexpr double kDescribeRateHz = 48000.0;
// The range of a control output port whose data gives none.
constexpr double kUnboundedOutput = 1e12;

void fill_param(const World& w, const LilvPlugin* plugin, const LilvPort* port, Port& p) {
  LilvWorld* world = w.get();
  LilvNode *def = nullptr, *min = nullptr, *max = nullptr;
  lilv_port_get_range(plugin, port, &def, &min, &max);
  Node toggled(w.uri(LV2_CORE__toggled)), integer(w.uri(LV2_CORE__integer)),
      enumeration(w.uri(LV2_CORE__enumeration)), rate(w.uri(LV2_CORE__sampleRate));
  const bool is_toggled = lilv_port_has_property(plugin, port, toggled);
  // An enumeration is an int when its values are whole numbers (MDA's are
  // fractions: 0, 0.25, 0.5 ... stay float).
  bool whole = true;
  if (LilvScalePoints* points = lilv_port_get_scale_points(plugin, port)) {
    LILV_FOREACH(scale_points, i, points) {
      const double v = num(lilv_scale_point_get_value(lilv_scale_points_get(points, i)));
      if (v != std::round(v)) whole = false;
    }
    lilv_scale_points_free(points);
  }
  const bool is_int = lilv_port_has_property(plugin, port, integer) ||
                      (lilv_port_has_property(plugin, port, enumeration) && whole);
  const double scale = lilv_port_has_property(plugin, port, rate) ? kDescribeRateHz : 1.0;
  ParamSpec& s = p.param;
  s.name = p.symbol;
  s.kind = is_toggled ? ParamKind::kBool : is_int ? ParamKind::kInt : ParamKind::kFloat;
  s.min = min ? num(min) * scale : 0.0;
  s.max = max ? num(max) * scale : (is_toggled ? 1.0 : s.min + 1.0);
  if (is_toggled) s.min = 0, s.max = 1;
  if (s.max < s.min) std::swap(s.min, s.max);
  if (s.max == s.min) s.max = s.min + 1.0;
  s.def = def ? num(def) * scale : s.min;
  if (!std::isfinite(s.def)) s.def = s.min;
  s.def = std::clamp(s.def, s.min, s.max);
  if (s.kind != ParamKind::kFloat) {
    s.min = std::ceil(s.min), s.max = std::floor(s.max), s.def = std::round(s.def);
    if (s.max < s.min) s.max = s.min;
    s.def = std::clamp(s.def, s.min, s.max);
  }
  lilv_node_free(def), lilv_node_free(min), lilv_node_free(max);

  Node unit_pred(w.uri(LV2_UNITS__unit)), symbol_pred(w.uri(LV2_UNITS__symbol));
  if (LilvNodes* units = lilv_port_get_value(plugin, port, unit_pred)) {
    const LilvNode* u = lilv_nodes_get_first(units);
    if (u && lilv_node_is_uri(u)) {
      if (LilvNode* sym = lilv_world_get(world, u, symbol_pred, nullptr)) {
        s.unit = str(sym);
        lilv_node_free(sym);
      } else {
        std::string uri = str(u);
        s.unit = uri.substr(uri.find_last_of("#/") + 1);
      }
    }
    lilv_nodes_free(units);
  }
  s.help = p.name;
  if (LilvScalePoints* points = lilv_port_get_scale_points(plugin, port)) {
    std::vector<std::pair<double, std::string>> sorted;  // lilv's order varies between runs
    LILV_FOREACH(scale_points, i, points) {
      const LilvScalePoint* sp = lilv_scale_points_get(points, i);
      sorted.emplace_back(num(lilv_scale_point_get_value(sp)), str(lilv_scale_point_get_label(sp)));
    }
    lilv_scale_points_free(points);
    std::sort(sorted.begin(), sorted.end());
    std::string list;
    for (const auto& [value, label] : sorted) {
      char v[32];
      std::snprintf(v, sizeof v, "%g", value);
      list += (list.empty() ? "" : ", ") + std::string(v) + " " + label;
    }
    if (!list.empty()) s.help += " (" + list + ")";
  }
}

// Control output ports are reported parameters (output = true), named the
// same way. rackd parameter names are a-z, A-Z, 0-9, _, - and / (at most 31
// bytes); LV2 symbols are C identifiers, so a symbol is its parameter's name
// ("HPfreq" is /<module>/HPfreq); the patch's own keys (name, type, input, plugin) get "_port"
// ("type" -> "type_port"), and a name that then collides gets "_2", "_3"...;
// the help names the LV2 symbol whenever it differs.
constexpr std::size_t kMaxNameBytes = 31;

void name_params(PluginInfo& info) {
  const std::vector<std::string> reserved = {"name", "type", "input", "plugin"};
  std::vector<std::string> taken = reserved;
  uint32_t outputs = 0;
  for (Port& p : info.ports) {
    if (p.type != PortType::kControl) continue;
    if (!p.input && ++outputs > kMaxOutputs) {
      p.param.name.clear();  // past what a module may report: not reported
      continue;
    }
    std::string base = p.symbol;
    if (std::find(reserved.begin(), reserved.end(), base) != reserved.end()) base += "_port";
    base = base.substr(0, kMaxNameBytes);
    std::string name = base;
    for (int n = 2; std::find(taken.begin(), taken.end(), name) != taken.end(); ++n) {
      const std::string suffix = "_" + std::to_string(n);
      name = base.substr(0, kMaxNameBytes - suffix.size()) + suffix;
    }
    taken.push_back(name);
    p.param.name = name;
    if (name != p.symbol) p.param.help += " [LV2 symbol " + p.symbol + "]";
  }
}

}  // namespace

World::World() : world_(lilv_world_new()) { lilv_world_load_all(world_); }
World::~World() { lilv_world_free(world_); }

const LilvPlugin* World::find(const std::string& uri) const {
  Node n(lilv_new_uri(world_, uri.c_str()));
  return n.n ? lilv_plugins_get_by_uri(lilv_world_get_all_plugins(world_), n) : nullptr;
}

const std::vector<std::string>& provided_features() {
  static const std::vector<std::string> kFeatures = {
      LV2_URID__map,           LV2_URID__unmap,       LV2_OPTIONS__options, LV2_BUF_SIZE__boundedBlockLength,
      LV2_WORKER__schedule,    LV2_CORE__isLive,      LV2_CORE__hardRTCapable};
  return kFeatures;
}

PluginInfo inspect(const World& w, const LilvPlugin* plugin) {
  PluginInfo info;
  info.uri = str(lilv_plugin_get_uri(plugin));
  if (LilvNode* name = lilv_plugin_get_name(plugin)) {
    info.name = str(name);
    lilv_node_free(name);
  }
  if (LilvNodes* required = lilv_plugin_get_required_features(plugin)) {
    std::string missing;
    LILV_FOREACH(nodes, i, required) {
      const std::string f = str(lilv_nodes_get(required, i));
      const auto& have = provided_features();
      if (std::find(have.begin(), have.end(), f) == have.end()) missing = f;
    }
    lilv_nodes_free(required);
    if (!missing.empty())
      throw std::runtime_error("LV2 plugin " + info.uri + " requires the feature " + missing +
                               ", which rackd does not provide");
  }
  Node audio(w.uri(LV2_CORE__AudioPort)), control(w.uri(LV2_CORE__ControlPort)), cv(w.uri(LV2_CORE__CVPort)),
      atom(w.uri(LV2_ATOM__AtomPort)), input(w.uri(LV2_CORE__InputPort)), optional(w.uri(LV2_CORE__connectionOptional)),
      reports(w.uri(LV2_CORE__reportsLatency));
  const uint32_t n = lilv_plugin_get_num_ports(plugin);
  for (uint32_t i = 0; i < n; ++i) {
    const LilvPort* port = lilv_plugin_get_port_by_index(plugin, i);
    Port p;
    p.index = i;
    p.symbol = str(lilv_port_get_symbol(plugin, port));
    if (LilvNode* name = lilv_port_get_name(plugin, port)) {
      p.name = str(name);
      lilv_node_free(name);
    }
    p.input = lilv_port_is_a(plugin, port, input);
    p.optional = lilv_port_has_property(plugin, port, optional);
    if (lilv_port_is_a(plugin, port, audio)) {
      p.type = PortType::kAudio;
      ++(p.input ? info.audio_in : info.audio_out);
    } else if (lilv_port_is_a(plugin, port, control)) {
      p.type = PortType::kControl;
      p.latency = !p.input && (lilv_port_has_property(plugin, port, reports) || p.symbol == "latency");
      fill_param(w, plugin, port, p);
      if (!p.input) {
        // A reported value (a meter, the latency): read with /get, never set.
        p.param.output = true;
        LilvNode *def = nullptr, *min = nullptr, *max = nullptr;
        lilv_port_get_range(plugin, port, &def, &min, &max);
        if (!min) p.param.min = -kUnboundedOutput;
        if (!max) p.param.max = kUnboundedOutput;
        p.param.def = std::clamp(0.0, p.param.min, p.param.max);
        lilv_node_free(def), lilv_node_free(min), lilv_node_free(max);
      }
    } else if (lilv_port_is_a(plugin, port, atom)) {
      p.type = PortType::kAtom;
    } else if (lilv_port_is_a(plugin, port, cv)) {
      p.type = PortType::kCv;
    }
    info.ports.push_back(std::move(p));
  }
  name_params(info);
  if (info.audio_in == 0 && info.audio_out == 0)
    throw std::runtime_error("LV2 plugin " + info.uri + " (" + info.name +
                             ") has no audio ports; rackd hosts audio plugins only");
  return info;
}

ModuleSpec base_spec() {
  ModuleSpec t;
  t.type = "lv2";
  t.summary = "hosts one installed LV2 plugin (plugin = \"<URI>\"; rackd lv2 list); its control input ports "
              "are parameters named by port symbol";
  t.bypassable = false;
  t.takes_input = true;
  t.config = {{"plugin", ConfigKind::kString, "the plugin's URI (required; rackd lv2 list shows them)", {}}};
  t.channels = {ChannelCount::upstream(), ChannelCount::upstream()};
  t.configure = configure;
  return t;
}

void configure(const toml::table& config, ModuleSpec& spec) {
  const auto uri = config["plugin"].value<std::string>();
  if (!uri || uri->empty()) throw std::runtime_error("plugin = \"<URI>\" is required (rackd lv2 list)");
  World world;
  const LilvPlugin* plugin = world.find(*uri);
  if (!plugin) throw std::runtime_error("no LV2 plugin " + *uri + " is installed (rackd lv2 list)");
  const PluginInfo info = inspect(world, plugin);
  spec.params.clear();
  for (const Port& p : info.ports)
    if (p.type == PortType::kControl && p.input) spec.params.push_back(p.param);
  for (const Port& p : info.ports)
    if (p.type == PortType::kControl && !p.input && !p.param.name.empty()) spec.params.push_back(p.param);
  if (info.mono()) {
    spec.summary = info.name + " (LV2, mono: one instance per channel)";
    spec.channels = {ChannelCount::upstream(), ChannelCount::upstream()};
  } else {
    spec.summary = info.name + " (LV2, " + std::to_string(info.audio_in) + " in, " + std::to_string(info.audio_out) +
                   " out)";
    spec.channels = {ChannelCount::constant(info.audio_in), ChannelCount::constant(info.audio_out)};
  }
  spec.latency_frames = probe_latency(plugin, info, static_cast<uint32_t>(kDescribeRateHz), 128);
  for (const Port& p : info.ports)
    if (p.latency)
      spec.summary += "; latency " + std::to_string(spec.latency_frames) + " frames at 48 kHz (port " + p.symbol + ")";
  spec.takes_input = info.audio_in > 0;
  spec.bypassable = info.audio_in == info.audio_out;
}

int list_plugins() {
  World world;
  const LilvPlugins* all = lilv_world_get_all_plugins(world.get());
  Node audio(world.uri(LV2_CORE__AudioPort)), input(world.uri(LV2_CORE__InputPort)),
      output(world.uri(LV2_CORE__OutputPort));
  LILV_FOREACH(plugins, i, all) {
    const LilvPlugin* p = lilv_plugins_get(all, i);
    LilvNode* name = lilv_plugin_get_name(p);
    std::printf("%s\t%s\t%u\t%u\n", str(lilv_plugin_get_uri(p)).c_str(), str(name).c_str(),
                lilv_plugin_get_num_ports_of_class(p, audio.n, input.n, nullptr),
                lilv_plugin_get_num_ports_of_class(p, audio.n, output.n, nullptr));
    lilv_node_free(name);
  }
  return 0;
}

}  // namespace rackd::lv2
