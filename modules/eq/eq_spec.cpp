// The "eq" module type: parameters (preamp, 32 bands x on/type/freq/gain/q/channel),
// setup keys (preset, bands) and the configure hook, which the server asks
// for through `rackd-eq --describe --config` at patch load. [setup] only.
#include "modules/eq/eq_spec.hpp"

#include <sstream>
#include <string>
#include <vector>

#include "modules/eq/preset.hpp"

namespace rackd::eq {
namespace {

const char* const kFieldNames[kBandParamCount] = {"on", "type", "freq", "gain", "q", "channel"};

std::string band_name(int band, int field) {
  return "band/" + std::to_string(band + 1) + "/" + kFieldNames[field];
}

// [setup] The preset and inline bands as parameter defaults. The parser
// (preset.hpp) writes the slot layout of band_param(); it is mapped to the
// declaration by name, so the declaration's order is free.
void configure(const toml::table& config, ModuleSpec& spec) {
  std::vector<std::vector<double>> layout(kParamCount, std::vector<double>(1, 0.0));
  auto slot = [&spec](const std::string& name) { return &spec.params[static_cast<std::size_t>(spec.index(name))]; };
  layout[kParamPreamp][0] = slot("preamp")->def;
  for (int b = 0; b < kMaxBands; ++b)
    for (int f = 0; f < kBandParamCount; ++f)
      layout[band_param(b, static_cast<BandField>(f))][0] = slot(band_name(b, f))->def;
  std::ostringstream os;
  os << config;
  init_params(os.str(), layout);
  slot("preamp")->def = layout[kParamPreamp][0];
  for (int b = 0; b < kMaxBands; ++b)
    for (int f = 0; f < kBandParamCount; ++f)
      slot(band_name(b, f))->def = layout[band_param(b, static_cast<BandField>(f))][0];
}

}  // namespace

ModuleSpec module_spec() {
  ModuleSpec t;
  t.type = "eq";
  t.summary =
      "parametric equalizer: 32 bands (RBJ cookbook types), each on all channels or on one, "
      "preamp, Equalizer APO/AutoEQ presets; every band parameter is live and glides without "
      "clicks";
  t.bypassable = true;
  t.takes_input = true;

  t.params.push_back({"preamp", ParamKind::kFloat, 1, kPreampMinDb, kPreampMaxDb, 0.0, "dB",
                      "gain before the bands (glides)"});
  std::string types;
  for (int i = 0; i < kBandTypeCount; ++i) {
    types += (i ? ", " : "") + std::to_string(i) + " " + std::string(band_type_name(static_cast<BandType>(i)));
  }
  for (int n = 0; n < kMaxBands; ++n) {
    t.params.push_back({band_name(n, kFieldOn), ParamKind::kBool, 1, 0, 1, 0, "", "1: band active (fades in/out)"});
    t.params.push_back({band_name(n, kFieldType), ParamKind::kInt, 1, 0, kBandTypeCount - 1, 0, "", types});
    t.params.push_back({band_name(n, kFieldFreq), ParamKind::kFloat, 1, kFreqMinHz, kFreqMaxHz, 1000.0, "Hz",
                        "centre/corner frequency (limited to 0.49 x rate)"});
    t.params.push_back({band_name(n, kFieldGain), ParamKind::kFloat, 1, kGainMinDb, kGainMaxDb, 0.0, "dB",
                        "peak and shelf gain"});
    t.params.push_back({band_name(n, kFieldQ), ParamKind::kFloat, 1, kQMin, kQMax, kButterworthQ, "",
                        "Q (unused by the fixed shelves and LP/HP)"});
    t.params.push_back({band_name(n, kFieldChannel), ParamKind::kInt, 1, 0, kMaxBandChannel, 0, "",
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
  t.channels = {ChannelCount::upstream(), ChannelCount::upstream()};
  t.configure = configure;
  return t;
}

// The field names in preset.hpp's order, for the module's index table.
const char* band_field_name(int field) { return kFieldNames[field]; }

}  // namespace rackd::eq
