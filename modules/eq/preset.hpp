// EQ presets: the Equalizer APO / AutoEQ `ParametricEQ.txt` parser, the inline
// `bands = [...]` parser, and the mapping of both onto the eq's parameter slots.
// [setup] only: runs in the server at patch load (registry init_params) and in
// tests; never on an audio thread.
//
// Parameter slot layout (the registry's ParamSpec order, also used by the
// module to read its ParamView):
//   0                 preamp              dB
//   1 + 6*b + 0       band/<b+1>/on       0|1
//   1 + 6*b + 1       band/<b+1>/type     BandType index (eq_dsp.hpp)
//   1 + 6*b + 2       band/<b+1>/freq     Hz
//   1 + 6*b + 3       band/<b+1>/gain     dB
//   1 + 6*b + 4       band/<b+1>/q
//   1 + 6*b + 5       band/<b+1>/channel  0: all channels; 1..32: only that one
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "modules/eq/eq_dsp.hpp"

namespace rackd::eq {

inline constexpr int kParamPreamp = 0;
inline constexpr int kBandParamCount = 6;
enum BandField : int {
  kFieldOn = 0,
  kFieldType = 1,
  kFieldFreq = 2,
  kFieldGain = 3,
  kFieldQ = 4,
  kFieldChannel = 5,
};
inline constexpr int kParamCount = 1 + kBandParamCount * kMaxBands;  // 193

// [any] Slot index of `field` of band `band` (0-based).
constexpr int band_param(int band, BandField field) { return 1 + kBandParamCount * band + field; }

// Ranges shared by the registry's ParamSpecs and the parsers.
inline constexpr double kPreampMinDb = -48, kPreampMaxDb = 24;
inline constexpr double kFreqMinHz = 10, kFreqMaxHz = 24000;
inline constexpr double kGainMinDb = -30, kGainMaxDb = 30;
inline constexpr double kQMin = 0.05, kQMax = 30;

struct Preset {
  double preamp_db = 0.0;
  std::vector<BandParams> bands;  // in file order; OFF filters are kept, with on = false
};

// [any] Channel names of Equalizer APO (case-insensitive) as 1-based channel
// numbers in its order: L 1, R 2, C 3, LFE (or SUB) 4, RL/BL 5, RR/BR 6, SL 7,
// SR 8; also "1".."32". ALL is 0. std::nullopt for anything else.
std::optional<int> channel_from_name(std::string_view name);

// [setup] Parses ParametricEQ.txt text. Accepted lines: blank, `# comment`,
// `Preamp: X dB` (several add up),
// `Filter [N]: ON|OFF TYPE [Fc F Hz] [Gain G dB] [Q Q] [BW Oct B]` with TYPE one
// of PK LSC HSC LS HS LP HP LPQ HPQ BP NO AP, and `Channel: C` with C one
// channel (a name or number, see channel_from_name) or ALL: the filters that
// follow apply to that channel only (BandParams::channel), until the next
// Channel: line. A Channel: line naming several channels is refused (a band
// applies to one channel or to all), and so is a Preamp: line while one
// channel is selected (the preamp is common to all channels). LS/HS are the
// fixed-slope shelves (Q = 1/sqrt(2)), LP/HP the Butterworth pass filters; a Q
// written for them is kept in the band but not used. Throws std::runtime_error
// "<name>:<line>: <reason>" for the first malformed line.
Preset parse_parametric_eq(std::string_view text, const std::string& name);

// [setup] Reads and parses a file; errors carry the path.
Preset load_parametric_eq(const std::string& path);

// [setup] Converts the patch's inline band list (an array of tables
// `{ type = "peak", freq = 1000.0, gain = -3.0, q = 1.0, on = true, channel = 2 }`;
// type is a patch name or an APO code, freq is required, gain defaults to 0, q
// to 1/sqrt(2), on to true, channel to 0 (all channels; else 1..32 or an APO
// channel name such as "L"). Errors: "bands[<i>]: <reason>" (i 0-based).
std::vector<BandParams> parse_inline_bands(const toml::array& bands);

// [setup] The registry's init_params: parses the module config (TOML text),
// loads `preset` (if any), appends the inline `bands`, and writes preamp and
// bands into params[i][0] (bands 1..k from the preset, k+1.. inline). More than
// kMaxBands bands in total is an error.
void init_params(const std::string& config_toml, std::vector<std::vector<double>>& params);

}  // namespace rackd::eq
