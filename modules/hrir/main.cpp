// rackd-hrir: the binaural (hrir) module process. setup() runs on the main
// thread before the block loop: it reads the patch keys (sofa | hesuvi,
// layout, speakers, fade_ms), loads the HRTF set and sets up the DSP, whose
// builder thread then prepares filters whenever the head turns. process()
// runs on the same main thread once it has become the audio thread ([rt]).
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>

#include "modules/hrir/binaural.hpp"
#include "modules/hrir/hrir_spec.hpp"
#include "modules/runtime/runtime.hpp"

namespace {

namespace hrir = rackd::hrir;

constexpr const char* kDefaultSofa = "/usr/share/libmysofa/default.sofa";

constexpr uint32_t kMaxChannels = hrir::kMaxLayoutChannels;

// [setup] Index of parameter `name` in the declaration (hrir_spec.cpp).
int index(const rackd::ModuleSpec& spec, const std::string& name) {
  const int i = spec.index(name);
  if (i < 0) throw std::logic_error("hrir: parameter " + name + " is not declared");
  return i;
}

double number(const toml::node& n, const std::string& what) {
  if (auto v = n.value<double>()) return *v;
  throw std::invalid_argument(what + " must be a number");
}

// [setup] Applies `speakers = [{ channel = n | name = "FL", azimuth, elevation,
// gain_db, delay_ms }, ...]` to the layout's defaults.
void apply_overrides(const toml::node_view<const toml::node>& node, std::vector<hrir::SpeakerConfig>& out,
                     const std::string& layout_name) {
  if (!node) return;
  const toml::array* list = node.as_array();
  if (!list) throw std::invalid_argument("speakers must be an array of inline tables");
  for (size_t k = 0; k < list->size(); ++k) {
    const std::string where = "speakers[" + std::to_string(k) + "]";
    const toml::table* t = (*list)[k].as_table();
    if (!t) throw std::invalid_argument(where + " must be a table like { name = \"FL\", azimuth = 30.0 }");
    size_t index = out.size();
    if (auto ch = (*t)["channel"].value<int64_t>()) {
      if (*ch < 1 || *ch > static_cast<int64_t>(out.size())) {
        throw std::invalid_argument(where + ": channel " + std::to_string(*ch) + " is not in layout " +
                                    layout_name + " (1.." + std::to_string(out.size()) + ")");
      }
      index = static_cast<size_t>(*ch - 1);
    } else if (auto name = (*t)["name"].value<std::string>()) {
      for (size_t i = 0; i < out.size(); ++i)
        if (out[i].speaker.name == *name) index = i;
      if (index == out.size()) {
        throw std::invalid_argument(where + ": no speaker \"" + *name + "\" in layout " + layout_name);
      }
    } else {
      throw std::invalid_argument(where + " needs channel = 1.." + std::to_string(out.size()) +
                                  " or name = \"FL\" (...)");
    }
    hrir::SpeakerConfig& s = out[index];
    for (const auto& [key, value] : *t) {
      const std::string w = where + "." + std::string(key.str());
      if (key == "channel" || key == "name") continue;
      if (key == "azimuth") {
        s.speaker.dir.azimuth_deg = number(value, w);
      } else if (key == "elevation") {
        s.speaker.dir.elevation_deg = number(value, w);
      } else if (key == "gain_db") {
        s.gain_db = number(value, w);
      } else if (key == "delay_ms") {
        s.delay_ms = number(value, w);
      } else {
        throw std::invalid_argument(where + ": unknown key \"" + std::string(key.str()) +
                                    "\" (known: channel, name, azimuth, elevation, gain_db, delay_ms)");
      }
    }
  }
}

class HrirModule final : public rackd::runtime::Processor {
 public:
  void setup(const rackd::runtime::SetupInfo& info) override {
    if (!info.config) throw std::runtime_error("hrir: no configuration");
    const toml::table& cfg = *info.config;
    const rackd::ModuleSpec& spec = *info.spec;
    gain_db_ = index(spec, "gain_db");
    bypass_ = index(spec, "bypass");
    yaw_ = index(spec, "yaw");
    pitch_ = index(spec, "pitch");
    roll_ = index(spec, "roll");
    ypr_index_ = index(spec, "ypr");
    lfe_gain_db_ = index(spec, "lfe_gain_db");
    for (uint32_t n = 0; n < kMaxChannels; ++n)
      channel_gain_db_[n] = index(spec, "channel/" + std::to_string(n + 1) + "/gain_db");
    const std::string layout_name = cfg["layout"].value_or<std::string>("7.1");
    std::vector<hrir::SpeakerConfig> speakers;
    for (const hrir::Speaker& s : hrir::layout(layout_name)) speakers.push_back({s, 0, 0});
    if (info.in_channels != speakers.size()) {
      throw std::runtime_error("layout " + layout_name + " takes " + std::to_string(speakers.size()) +
                               " input channels; its input has " + std::to_string(info.in_channels));
    }
    if (info.out_channels != 2) throw std::runtime_error("hrir: the output must have 2 channels");
    apply_overrides(cfg["speakers"], speakers, layout_name);

    hrir::BinauralConfig bc;
    bc.rate_hz = info.rate_hz;
    bc.block = info.block_frames;
    bc.fade_ms = cfg["fade_ms"].value_or(20.0);

    const auto sofa = cfg["sofa"].value<std::string>();
    const auto hesuvi = cfg["hesuvi"].value<std::string>();
    if (sofa && hesuvi) throw std::invalid_argument("hrir: set either sofa or hesuvi, not both");
    hrir::HrtfSet set = hesuvi ? hrir::HrtfSet::load_hesuvi(*hesuvi, info.rate_hz)
                               : hrir::HrtfSet::load_sofa(!sofa || *sofa == "default" ? kDefaultSofa : *sofa,
                                                          info.rate_hz);
    for (const auto& s : speakers) lfe_.push_back(s.speaker.lfe);
    dsp_.setup(std::move(speakers), std::move(set), bc);
  }

  void process(const rackd::runtime::Block& b, const rackd::runtime::ParamView& p) noexcept RACKD_RT override {
    if (p.changed()) read_params(p);
    dsp_.process(b.in, b.out);
  }

 private:
  // [rt] Gains, bypass and orientation. `ypr` and yaw/pitch/roll address the
  // same orientation: whichever changed in this block wins, ypr when both did.
  // On the first block (a restart restores the slots) ypr wins if it is not
  // all zero, so the last setting survives either way it was made.
  void read_params(const rackd::runtime::ParamView& p) noexcept RACKD_RT {
    dsp_.set_master_gain_db(p[gain_db_]);
    dsp_.set_bypass(p[bypass_] >= 0.5);
    const double angles[3] = {p[yaw_], p[pitch_], p[roll_]};
    const double ypr[3] = {p.value(ypr_index_, 0), p.value(ypr_index_, 1), p.value(ypr_index_, 2)};
    bool ypr_changed = false, angles_changed = false;
    for (int k = 0; k < 3; ++k) {
      ypr_changed = ypr_changed || (first_ ? ypr[k] != 0 : ypr[k] != ypr_[k]);
      angles_changed = angles_changed || first_ || angles[k] != angles_[k];
      ypr_[k] = ypr[k];
      angles_[k] = angles[k];
    }
    first_ = false;
    if (ypr_changed) {
      dsp_.set_orientation(ypr[0], ypr[1], ypr[2]);
    } else if (angles_changed) {
      dsp_.set_orientation(angles[0], angles[1], angles[2]);
    }
    const double lfe_db = p[lfe_gain_db_];
    for (uint32_t i = 0; i < dsp_.channels() && i < kMaxChannels; ++i) {
      dsp_.set_channel_gain_db(i, p[channel_gain_db_[i]] + (lfe_[i] ? lfe_db : 0.0));
    }
  }

  hrir::Binaural dsp_;
  std::vector<bool> lfe_;
  double ypr_[3] = {}, angles_[3] = {};
  bool first_ = true;
  // Parameter indices, looked up by name in setup().
  int gain_db_ = 0, bypass_ = 0, yaw_ = 0, pitch_ = 0, roll_ = 0, ypr_index_ = 0, lfe_gain_db_ = 0;
  int channel_gain_db_[kMaxChannels] = {};
};

}  // namespace

int main(int argc, char** argv) {
  return rackd::run_module(argc, argv, hrir::module_spec(), std::make_unique<HrirModule>());
}
