// The "lv2" module type's view of an installed LV2 plugin, read through lilv:
// the world (every installed bundle), a plugin's ports as rackd parameters and
// channels, the host features rackd provides, and `rackd-lv2 --list`.
// [setup] only: the configure hook, --list and the module's setup() use it.
#pragma once

#include <lilv/lilv.h>

#include <string>
#include <vector>

#include <rackd/spec.hpp>

namespace rackd::lv2 {

// lilv's world with every installed bundle loaded (LV2_PATH is honoured).
class World {
 public:
  World();
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;
  LilvWorld* get() const { return world_; }
  // The plugin with this URI, or nullptr.
  const LilvPlugin* find(const std::string& uri) const;
  LilvNode* uri(const char* s) const { return lilv_new_uri(world_, s); }

 private:
  LilvWorld* world_ = nullptr;
};

enum class PortType { kAudio, kControl, kAtom, kCv, kOther };

struct Port {
  uint32_t index = 0;
  std::string symbol, name;
  PortType type = PortType::kOther;
  bool input = false;
  bool optional = false;  // lv2:connectionOptional
  bool latency = false;   // lv2:reportsLatency / the "latency" symbol on an output
  ParamSpec param;        // control ports: the rackd parameter (name: the port symbol;
                          // outputs: output = true, name empty past kMaxOutputs)
};

// A plugin's ports in index order and what rackd makes of them.
struct PluginInfo {
  std::string uri, name;
  std::vector<Port> ports;
  uint32_t audio_in = 0, audio_out = 0;
  bool mono() const { return audio_in == 1 && audio_out == 1; }
};

// The features rackd's host provides (URIs); a plugin requiring any other is refused.
const std::vector<std::string>& provided_features();

// [setup] Reads `plugin`'s ports. Throws std::runtime_error naming a required
// feature rackd lacks, or when the plugin has no audio port.
PluginInfo inspect(const World& world, const LilvPlugin* plugin);

// [setup] The latency `plugin` reports on its latency port, in frames, from
// one block of silence at `rate_hz` (0: none). lv2_probe.cpp.
uint32_t probe_latency(const LilvPlugin* plugin, const PluginInfo& info, uint32_t rate_hz, uint32_t block_frames);

// [setup] The type as `rackd-lv2 --describe` prints it without config:
// no parameters, the `plugin` setup key, and the configure hook below.
ModuleSpec base_spec();
// [setup] The configure hook: the plugin named by config["plugin"] decides
// parameters, channel rule and summary. Throws std::runtime_error.
void configure(const toml::table& config, ModuleSpec& spec);

// [setup] `rackd-lv2 --list`: one line per installed plugin,
// "URI<TAB>name<TAB>audio_in<TAB>audio_out". Returns the exit code.
int list_plugins();

}  // namespace rackd::lv2
