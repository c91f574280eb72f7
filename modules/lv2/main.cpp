// rackd-lv2: one installed LV2 plugin (config `plugin = "<URI>"`) in its own
// process. A mono plugin runs one instance per channel; any other runs once
// with its audio ports as the channels. Control input ports are parameters
// (by symbol), control outputs are reported parameters (/get, notifications).
// `rackd-lv2 --list` lists installed plugins.
// Threads: setup() [setup]; process() [rt]; the worker and state threads are
// [control] (lv2_host.hpp, lv2_state.hpp).
#include <lv2/atom/atom.h>
#include <lv2/worker/worker.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "modules/lv2/lv2_host.hpp"
#include "modules/lv2/lv2_plugin.hpp"
#include "modules/lv2/lv2_state.hpp"
#include "modules/runtime/runtime.hpp"

namespace {

using namespace rackd::lv2;

constexpr uint32_t kAtomBytes = 8192;  // per atom port buffer

// One plugin instance and its own buffers.
struct Instance {
  LilvInstance* lilv = nullptr;
  Worker worker;
  Features features;
  std::vector<float> control_out;             // by port index
  std::vector<std::vector<uint8_t>> atom;     // by atom port, in the order of atom_ports_
};

class Lv2Module final : public rackd::runtime::Processor {
 public:
  ~Lv2Module() override {
    state_.reset();  // stop saving before the instances go
    for (auto& in : instances_) {
      in->worker.stop();  // no work() on a freed instance
      if (!in->lilv) continue;
      lilv_instance_deactivate(in->lilv);
      lilv_instance_free(in->lilv);
    }
  }

  void setup(const rackd::runtime::SetupInfo& info) override {
    const auto uri = (*info.config)["plugin"].value<std::string>();
    if (!uri) throw std::runtime_error("plugin = \"<URI>\" is required (rackd lv2 list)");
    const LilvPlugin* plugin = world_.find(*uri);
    if (!plugin) throw std::runtime_error("no LV2 plugin " + *uri + " is installed (rackd lv2 list)");
    info_ = inspect(world_, plugin);
    outputs_ = info.outputs;
    block_frames_ = info.block_frames;
    options_.fill(map_, info.rate_hz, info.block_frames);
    premap();

    controls_.assign(info_.ports.size(), 0.0f);
    for (const Port& p : info_.ports) {
      if (p.type == PortType::kControl && p.input) {
        controls_[p.index] = static_cast<float>(p.param.def);
        control_params_.push_back({p.index, info.spec->index(p.param.name)});
      }
      if (p.type == PortType::kControl && !p.input && !p.param.name.empty() && info.outputs) {
        const int param = info.spec->index(p.param.name);
        if (param >= 0) output_params_.push_back({p.index, static_cast<std::size_t>(param)});
      }
      if (p.type == PortType::kAudio) (p.input ? audio_in_ : audio_out_).push_back(p.index);
      if (p.type == PortType::kAtom) atom_ports_.push_back({p.index, p.input});
      if (p.type == PortType::kCv) cv_ports_.push_back(p.index);
    }
    silence_.assign(block_frames_, 0.0f);
    scratch_.assign(block_frames_, 0.0f);

    const uint32_t count = info_.mono() ? std::max(1u, info.in_channels) : 1;
    state_ = std::make_unique<StateKeeper>(world_.get(), plugin, info_, map_, state_dir(info), controls_.data());
    std::vector<LilvInstance*> lilv_instances;
    std::vector<const LV2_Feature* const*> feature_lists;
    for (uint32_t k = 0; k < count; ++k) {
      auto in = std::make_unique<Instance>();
      in->features.build(map_, options_, in->worker);
      in->lilv = lilv_plugin_instantiate(plugin, info.rate_hz, in->features.list.data());
      if (!in->lilv) throw std::runtime_error("LV2 plugin " + *uri + " failed to instantiate");
      in->control_out.assign(info_.ports.size(), 0.0f);
      in->atom.assign(atom_ports_.size(), std::vector<uint8_t>(kAtomBytes));
      const auto* iface = static_cast<const LV2_Worker_Interface*>(
          lilv_instance_get_extension_data(in->lilv, LV2_WORKER__interface));
      in->worker.start(iface, lilv_instance_get_handle(in->lilv));
      connect_static(*in);
      if (state_->restore(in->lilv, k, in->features.list.data()))
        std::fprintf(stderr, "rackd-lv2 %s: instance %u: state restored\n", info.name.c_str(), k);
      lilv_instance_activate(in->lilv);
      lilv_instances.push_back(in->lilv);
      feature_lists.push_back(in->features.list.data());
      instances_.push_back(std::move(in));
    }
    read_latency(info);
    state_->start(lilv_instances, feature_lists);
  }

  void process(const rackd::runtime::Block& b, const rackd::runtime::ParamView& p) noexcept RACKD_RT override {
    if (p.changed())
      for (const auto& [port, param] : control_params_)
        if (param >= 0) controls_[port] = static_cast<float>(p[static_cast<std::size_t>(param)]);
    for (uint32_t done = 0; done < b.frames;) {
      const uint32_t n = std::min(b.frames - done, block_frames_);
      for (uint32_t k = 0; k < instances_.size(); ++k) run(*instances_[k], k, b, done, n);
      done += n;
    }
    // Control outputs (of the first instance when there is one per channel).
    for (const auto& [port, param] : output_params_) outputs_->set(param, instances_[0]->control_out[port]);
  }

 private:
  // The slot's folder that outlives this process (the server removes it).
  static std::string state_dir(const rackd::runtime::SetupInfo& info) {
    if (info.state_dir.empty()) throw std::runtime_error("the server gave no state folder");
    return info.state_dir;
  }

  // [setup] The URIs plugins and this host ask for, so that the audio thread only looks up.
  void premap() {
    for (const char* u : {LV2_ATOM__Sequence, LV2_ATOM__Chunk, LV2_ATOM__Float, LV2_ATOM__Int, LV2_ATOM__Double,
                          LV2_ATOM__Long, LV2_ATOM__Bool, LV2_ATOM__String, LV2_ATOM__Path, LV2_ATOM__URID,
                          LV2_ATOM__Object, LV2_ATOM__Blank, LV2_ATOM__Tuple, LV2_ATOM__Vector, LV2_ATOM__Property,
                          LV2_ATOM__Resource, LV2_ATOM__beatTime, LV2_ATOM__frameTime, LV2_ATOM__eventTransfer,
                          "http://lv2plug.in/ns/ext/midi#MidiEvent", "http://lv2plug.in/ns/ext/patch#Set",
                          "http://lv2plug.in/ns/ext/patch#Get", "http://lv2plug.in/ns/ext/patch#property",
                          "http://lv2plug.in/ns/ext/patch#value", "http://lv2plug.in/ns/ext/time#Position"})
      map_.map(u);
    sequence_ = map_.map(LV2_ATOM__Sequence);
    chunk_ = map_.map(LV2_ATOM__Chunk);
  }

  // [setup] Ports whose buffers never move: controls, CV scratch.
  void connect_static(Instance& in) {
    for (const Port& p : info_.ports) {
      if (p.type == PortType::kControl)
        lilv_instance_connect_port(in.lilv, p.index, p.input ? &controls_[p.index] : &in.control_out[p.index]);
      else if (p.type == PortType::kCv)
        lilv_instance_connect_port(in.lilv, p.index, p.input ? silence_.data() : scratch_.data());
      else if (p.type == PortType::kOther)
        lilv_instance_connect_port(in.lilv, p.index, nullptr);
    }
    for (std::size_t a = 0; a < atom_ports_.size(); ++a)
      lilv_instance_connect_port(in.lilv, atom_ports_[a].first, in.atom[a].data());
  }

  // [rt] Empty input sequences; output sequences sized to their capacity.
  void reset_atoms(Instance& in) noexcept RACKD_RT {
    for (std::size_t a = 0; a < atom_ports_.size(); ++a) {
      auto* seq = reinterpret_cast<LV2_Atom_Sequence*>(in.atom[a].data());
      if (atom_ports_[a].second) {
        seq->atom.size = sizeof(LV2_Atom_Sequence_Body);
        seq->atom.type = sequence_;
        seq->body.unit = 0;
        seq->body.pad = 0;
      } else {
        seq->atom.size = kAtomBytes - sizeof(LV2_Atom);
        seq->atom.type = chunk_;
      }
    }
  }

  // [rt] Instance k over frames [at, at + n) of the block. lilv's inline
  // calls lead into the plugin, third-party code clang cannot see: the host
  // side is checked (rtcount, RealtimeSanitizer at run time), not the plugin.
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wfunction-effects"
#endif
  void run(Instance& in, uint32_t k, const rackd::runtime::Block& b, uint32_t at, uint32_t n) noexcept RACKD_RT {
    for (std::size_t i = 0; i < audio_in_.size(); ++i) {
      const uint32_t ch = info_.mono() ? k : static_cast<uint32_t>(i);
      const float* src = b.in && ch < b.in_channels ? b.in[ch] + at : silence_.data();
      lilv_instance_connect_port(in.lilv, audio_in_[i], const_cast<float*>(src));
    }
    for (std::size_t i = 0; i < audio_out_.size(); ++i) {
      const uint32_t ch = info_.mono() ? k : static_cast<uint32_t>(i);
      float* dst = ch < b.out_channels ? b.out[ch] + at : scratch_.data();
      lilv_instance_connect_port(in.lilv, audio_out_[i], dst);
    }
    reset_atoms(in);
    lilv_instance_run(in.lilv, n);
    in.worker.deliver();
  }
#if defined(__clang__)
#pragma clang diagnostic pop
#endif

  // [setup] A plugin reporting latency: one block of silence to read it, then reset.
  void read_latency(const rackd::runtime::SetupInfo& info) {
    for (const Port& p : info_.ports) {
      if (!p.latency) continue;
      Instance& in = *instances_[0];
      for (uint32_t a : audio_in_) lilv_instance_connect_port(in.lilv, a, silence_.data());
      for (uint32_t a : audio_out_) lilv_instance_connect_port(in.lilv, a, scratch_.data());
      reset_atoms(in);
      lilv_instance_run(in.lilv, block_frames_);
      in.worker.deliver();
      lilv_instance_deactivate(in.lilv);
      lilv_instance_activate(in.lilv);
      latency_frames_ = in.control_out[p.index];
      std::fprintf(stderr, "rackd-lv2 %s: latency %g frames (port %s)\n", info.name.c_str(), latency_frames_,
                   p.symbol.c_str());
    }
  }

  World world_;
  UridMap map_;
  Options options_;
  PluginInfo info_;
  uint32_t block_frames_ = 128;
  LV2_URID sequence_ = 0, chunk_ = 0;
  std::vector<float> controls_;                       // control inputs, by port index
  std::vector<std::pair<uint32_t, int>> control_params_;  // port index -> parameter index (-1: none)
  std::vector<std::pair<uint32_t, std::size_t>> output_params_;  // control output port -> reported parameter
  rackd::Outputs* outputs_ = nullptr;
  std::vector<uint32_t> audio_in_, audio_out_, cv_ports_;
  std::vector<std::pair<uint32_t, bool>> atom_ports_;  // port index, input
  std::vector<float> silence_, scratch_;
  std::vector<std::unique_ptr<Instance>> instances_;
  std::unique_ptr<StateKeeper> state_;
  float latency_frames_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "--list") == 0) return list_plugins();
  return rackd::run_module(argc, argv, base_spec(), std::make_unique<Lv2Module>());
}
