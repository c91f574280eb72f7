// The latency a plugin reports, read at describe time: one instance with the
// host's features runs one block of silence and its latency output port is
// read (rackd describe shows it, the server gets it as latency_frames).
// [setup] only; the rate and block are assumptions (48 kHz, 128 frames), the
// running module reads it again at its real rate (main.cpp).
#include <lv2/atom/atom.h>

#include <cmath>
#include <vector>

#include "modules/lv2/lv2_host.hpp"
#include "modules/lv2/lv2_plugin.hpp"

namespace rackd::lv2 {

uint32_t probe_latency(const LilvPlugin* plugin, const PluginInfo& info, uint32_t rate_hz, uint32_t block_frames) {
  int latency_port = -1;
  for (const Port& p : info.ports)
    if (p.latency) latency_port = static_cast<int>(p.index);
  if (latency_port < 0) return 0;
  UridMap map;
  Options options;
  options.fill(map, rate_hz, block_frames);
  Worker worker;
  Features features;
  features.build(map, options, worker);
  LilvInstance* in = lilv_plugin_instantiate(plugin, rate_hz, features.list.data());
  if (!in) return 0;
  std::vector<float> controls(info.ports.size(), 0.0f), audio_in(block_frames, 0.0f), audio_out(block_frames);
  constexpr uint32_t kAtomBytes = 8192;
  std::vector<std::vector<uint8_t>> atoms;
  const LV2_URID sequence = map.map(LV2_ATOM__Sequence), chunk = map.map(LV2_ATOM__Chunk);
  for (const Port& p : info.ports) {
    switch (p.type) {
      case PortType::kControl:
        controls[p.index] = p.input ? static_cast<float>(p.param.def) : 0.0f;
        lilv_instance_connect_port(in, p.index, &controls[p.index]);
        break;
      case PortType::kAudio:
      case PortType::kCv:
        lilv_instance_connect_port(in, p.index, p.input ? audio_in.data() : audio_out.data());
        break;
      case PortType::kAtom: {
        atoms.emplace_back(kAtomBytes);
        auto* seq = reinterpret_cast<LV2_Atom_Sequence*>(atoms.back().data());
        seq->atom.size = p.input ? sizeof(LV2_Atom_Sequence_Body) : kAtomBytes - sizeof(LV2_Atom);
        seq->atom.type = p.input ? sequence : chunk;
        lilv_instance_connect_port(in, p.index, seq);
        break;
      }
      case PortType::kOther: lilv_instance_connect_port(in, p.index, nullptr); break;
    }
  }
  const auto* iface =
      static_cast<const LV2_Worker_Interface*>(lilv_instance_get_extension_data(in, LV2_WORKER__interface));
  worker.start(iface, lilv_instance_get_handle(in));
  lilv_instance_activate(in);
  lilv_instance_run(in, block_frames);
  worker.deliver();
  const float latency = controls[static_cast<std::size_t>(latency_port)];
  worker.stop();
  lilv_instance_deactivate(in);
  lilv_instance_free(in);
  return std::isfinite(latency) && latency > 0 ? static_cast<uint32_t>(std::lround(latency)) : 0;
}

}  // namespace rackd::lv2
