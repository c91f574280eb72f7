// lv2_chain_render: the in-process baseline of bench/lv2_overhead.py. Renders
// a WAV file through a chain of N instances of one LV2 plugin in this one
// process (lilv, block 128, every plugin's default control values, the same
// host features as rackd's lv2 module: URID map/unmap, options, bounded block
// length), reading and writing the file in blocks. Prints one JSON line with
// the wall seconds of the whole run and of the processing loop alone.
// Single-threaded.
//
//   build/release/bin/lv2_chain_render URI N in.wav out.wav
#include <lilv/lilv.h>
#include <lv2/atom/atom.h>
#include <lv2/buf-size/buf-size.h>
#include <lv2/core/lv2.h>
#include <lv2/options/options.h>
#include <lv2/parameters/parameters.h>
#include <lv2/urid/urid.h>
#include <sndfile.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace {

constexpr uint32_t kBlockFrames = 128;

struct Urids {
  std::map<std::string, LV2_URID> ids;
  std::vector<std::string> uris;
  static LV2_URID map(LV2_URID_Map_Handle h, const char* uri) {
    auto* u = static_cast<Urids*>(h);
    auto [it, added] = u->ids.try_emplace(uri, static_cast<LV2_URID>(u->ids.size() + 1));
    if (added) u->uris.emplace_back(uri);
    return it->second;
  }
  static const char* unmap(LV2_URID_Unmap_Handle h, LV2_URID id) {
    auto* u = static_cast<Urids*>(h);
    return id >= 1 && id <= u->uris.size() ? u->uris[id - 1].c_str() : nullptr;
  }
};

struct Instance {
  LilvInstance* lilv = nullptr;
  std::vector<float> controls;            // one per port (used for control ports)
  std::vector<uint32_t> audio_in, audio_out;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: lv2_chain_render URI N in.wav out.wav\n");
    return 2;
  }
  const auto t_start = std::chrono::steady_clock::now();
  const int n = std::atoi(argv[2]);
  SF_INFO in_info{};
  SNDFILE* in = sf_open(argv[3], SFM_READ, &in_info);
  if (!in) {
    std::fprintf(stderr, "lv2_chain_render: %s: %s\n", argv[3], sf_strerror(nullptr));
    return 2;
  }
  const int ch = in_info.channels;
  SF_INFO out_info{};
  out_info.samplerate = in_info.samplerate;
  out_info.channels = ch;
  out_info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
  SNDFILE* out = sf_open(argv[4], SFM_WRITE, &out_info);

  LilvWorld* world = lilv_world_new();
  lilv_world_load_all(world);
  LilvNode* uri = lilv_new_uri(world, argv[1]);
  const LilvPlugin* plugin = lilv_plugins_get_by_uri(lilv_world_get_all_plugins(world), uri);
  if (!plugin || !out) {
    std::fprintf(stderr, "lv2_chain_render: no plugin %s or cannot write %s\n", argv[1], argv[4]);
    return 2;
  }
  Urids urids;
  LV2_URID_Map map{&urids, Urids::map};
  LV2_URID_Unmap unmap{&urids, Urids::unmap};
  const float rate = static_cast<float>(in_info.samplerate);
  const int32_t block = kBlockFrames;
  LV2_Options_Option options[] = {
      {LV2_OPTIONS_INSTANCE, 0, Urids::map(&urids, LV2_PARAMETERS__sampleRate), sizeof(float),
       Urids::map(&urids, LV2_ATOM__Float), &rate},
      {LV2_OPTIONS_INSTANCE, 0, Urids::map(&urids, LV2_BUF_SIZE__maxBlockLength), sizeof(int32_t),
       Urids::map(&urids, LV2_ATOM__Int), &block},
      {LV2_OPTIONS_INSTANCE, 0, Urids::map(&urids, LV2_BUF_SIZE__nominalBlockLength), sizeof(int32_t),
       Urids::map(&urids, LV2_ATOM__Int), &block},
      {LV2_OPTIONS_INSTANCE, 0, 0, 0, 0, nullptr},
  };
  LV2_Feature f_map{LV2_URID__map, &map}, f_unmap{LV2_URID__unmap, &unmap}, f_opts{LV2_OPTIONS__options, options},
      f_bounded{LV2_BUF_SIZE__boundedBlockLength, nullptr};
  const LV2_Feature* features[] = {&f_map, &f_unmap, &f_opts, &f_bounded, nullptr};

  const uint32_t nports = lilv_plugin_get_num_ports(plugin);
  std::vector<float> mins(nports), maxs(nports), defs(nports);
  lilv_plugin_get_port_ranges_float(plugin, mins.data(), maxs.data(), defs.data());
  LilvNode* c_audio = lilv_new_uri(world, LV2_CORE__AudioPort);
  LilvNode* c_input = lilv_new_uri(world, LV2_CORE__InputPort);
  std::vector<Instance> chain(static_cast<size_t>(n));
  // Buffers: stage k's output is stage k+1's input, one buffer per channel per stage.
  std::vector<std::vector<float>> bufs(static_cast<size_t>((n + 1) * ch), std::vector<float>(kBlockFrames));
  for (int k = 0; k < n; ++k) {
    Instance& inst = chain[static_cast<size_t>(k)];
    inst.lilv = lilv_plugin_instantiate(plugin, rate, features);
    if (!inst.lilv) {
      std::fprintf(stderr, "lv2_chain_render: %s failed to instantiate\n", argv[1]);
      return 2;
    }
    inst.controls.resize(nports);
    for (uint32_t p = 0; p < nports; ++p) {
      const LilvPort* port = lilv_plugin_get_port_by_index(plugin, p);
      if (lilv_port_is_a(plugin, port, c_audio)) {
        auto& list = lilv_port_is_a(plugin, port, c_input) ? inst.audio_in : inst.audio_out;
        list.push_back(p);
      } else {
        inst.controls[p] = std::isnan(defs[p]) ? (std::isnan(mins[p]) ? 0.0f : mins[p]) : defs[p];
        lilv_instance_connect_port(inst.lilv, p, &inst.controls[p]);
      }
    }
    if (static_cast<int>(inst.audio_in.size()) != ch || static_cast<int>(inst.audio_out.size()) != ch) {
      std::fprintf(stderr, "lv2_chain_render: the plugin has %zu/%zu audio ports, the file %d channels\n",
                   inst.audio_in.size(), inst.audio_out.size(), ch);
      return 2;
    }
    for (int c = 0; c < ch; ++c) {
      lilv_instance_connect_port(inst.lilv, inst.audio_in[c], bufs[static_cast<size_t>(k * ch + c)].data());
      lilv_instance_connect_port(inst.lilv, inst.audio_out[c], bufs[static_cast<size_t>((k + 1) * ch + c)].data());
    }
    lilv_instance_activate(inst.lilv);
  }
  lilv_node_free(c_audio);
  lilv_node_free(c_input);

  std::vector<float> frames(kBlockFrames * static_cast<size_t>(ch));
  const auto t_loop = std::chrono::steady_clock::now();
  for (;;) {
    const sf_count_t got = sf_readf_float(in, frames.data(), kBlockFrames);
    if (got <= 0) break;
    for (sf_count_t i = 0; i < got; ++i)
      for (int c = 0; c < ch; ++c) bufs[static_cast<size_t>(c)][static_cast<size_t>(i)] = frames[i * ch + c];
    for (Instance& inst : chain) lilv_instance_run(inst.lilv, static_cast<uint32_t>(got));
    for (sf_count_t i = 0; i < got; ++i)
      for (int c = 0; c < ch; ++c) frames[i * ch + c] = bufs[static_cast<size_t>(n * ch + c)][static_cast<size_t>(i)];
    sf_writef_float(out, frames.data(), got);
  }
  const double loop_s = seconds_since(t_loop);
  for (Instance& inst : chain) {
    lilv_instance_deactivate(inst.lilv);
    lilv_instance_free(inst.lilv);
  }
  sf_close(in);
  sf_close(out);
  lilv_node_free(uri);
  lilv_world_free(world);
  std::printf("{\"seconds\":%.4f,\"loop_seconds\":%.4f}\n", seconds_since(t_start), loop_s);
  return 0;
}
