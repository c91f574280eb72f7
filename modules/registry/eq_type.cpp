// The "eq" module type: parameters (preamp, 32 bands x on/type/freq/gain/q/channel),
// setup keys (preset, bands) and the preset hook. [setup]/[control] threads
// only: built once by the registry, read by the server and the eq process.
#include <string>

#include "modules/eq/preset.hpp"
#include "modules/registry/registry.hpp"

namespace rackd::registry {

TypeSpec eq_type() {
  using shm::ParamKind;
  namespace eq = rackd::eq;

  TypeSpec t;
  t.type = "eq";
  t.executable = "rackd-eq";
  t.summary =
      "parametric equalizer: 32 bands (RBJ cookbook types), each on all channels or on one, "
      "preamp, Equalizer APO/AutoEQ presets; every band parameter is live and glides without "
      "clicks";
  t.bypassable = true;
  t.takes_input = true;

  // Order is the slot layout documented in modules/eq/preset.hpp.
  t.params.reserve(eq::kParamCount);
  t.params.push_back({"preamp", ParamKind::kFloat, 1, eq::kPreampMinDb, eq::kPreampMaxDb, 0.0, "dB",
                      "gain before the bands (glides)"});
  std::string types;
  for (int i = 0; i < eq::kBandTypeCount; ++i) {
    types += (i ? ", " : "") + std::to_string(i) + " " +
             std::string(eq::band_type_name(static_cast<eq::BandType>(i)));
  }
  for (int n = 1; n <= eq::kMaxBands; ++n) {
    const std::string band = "band/" + std::to_string(n) + "/";
    t.params.push_back({band + "on", ParamKind::kBool, 1, 0, 1, 0, "",
                        "1: band active (fades in/out)"});
    t.params.push_back({band + "type", ParamKind::kInt, 1, 0, eq::kBandTypeCount - 1, 0, "",
                        types});
    t.params.push_back({band + "freq", ParamKind::kFloat, 1, eq::kFreqMinHz, eq::kFreqMaxHz,
                        1000.0, "Hz", "centre/corner frequency (limited to 0.49 x rate)"});
    t.params.push_back({band + "gain", ParamKind::kFloat, 1, eq::kGainMinDb, eq::kGainMaxDb, 0.0,
                        "dB", "peak and shelf gain"});
    t.params.push_back({band + "q", ParamKind::kFloat, 1, eq::kQMin, eq::kQMax,
                        eq::kButterworthQ, "", "Q (unused by the fixed shelves and LP/HP)"});
    t.params.push_back({band + "channel", ParamKind::kInt, 1, 0, eq::kMaxBandChannel, 0, "",
                        "0: all channels (linked); 1..32: only that channel (1-based; a "
                        "channel the input lacks leaves the band silent); changes fade"});
  }

  t.config = {
      {"preset", ConfigKind::kPath,
       "Equalizer APO / AutoEQ ParametricEQ.txt; its bands fill band 1.. and set the preamp; "
       "its Channel: lines restrict the filters that follow to one channel",
       {}},
      {"bands", ConfigKind::kArray,
       "inline bands after the preset's: [{ type = \"peak\", freq = 1000.0, gain = -3.0, "
       "q = 1.0, on = true, channel = 0 }, ...]; type is a name (peak, low_shelf, high_shelf, "
       "low_shelf_fixed, high_shelf_fixed, low_pass, high_pass, low_pass_q, high_pass_q, "
       "band_pass, notch, all_pass) or an APO code (PK, LSC, ...); channel is 0 (all, the "
       "default), 1..32 or an APO name (L, R, C, LFE, RL, RR, SL, SR)",
       {}},
  };
  t.channels = [](const ChannelQuery& q, Channels& c, std::string& error) {
    if (q.upstream_channels == 0 || q.upstream_channels > shm::kMaxChannels) {
      error = "eq needs an input with 1.." + std::to_string(shm::kMaxChannels) + " channels";
      return false;
    }
    c.in = q.upstream_channels;
    c.out = q.upstream_channels;
    return true;
  };
  t.init_params = [](const std::string& config_toml, std::vector<std::vector<double>>& params) {
    eq::init_params(config_toml, params);
  };
  return t;
}

}  // namespace rackd::registry
