// Tests for the eq's preset import (Equalizer APO / AutoEQ ParametricEQ.txt,
// including Channel: lines), inline bands, init_params (the registry hook the
// server runs at patch load) and the parameter slot layout the registry, the
// presets and the module share. [setup] code only; single-threaded.
#include "modules/eq/preset.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "modules/eq/eq_spec.hpp"
#include "shm/layout.hpp"

namespace rackd::eq {
namespace {

// An AutoEQ result for the Sennheiser HD 650 (harman over-ear target), as
// AutoEQ writes it: CRLF line endings, a preamp, ten filters.
constexpr const char* kHd650 =
    "Preamp: -6.3 dB\r\n"
    "Filter 1: ON LSC Fc 105 Hz Gain 6.5 dB Q 0.70\r\n"
    "Filter 2: ON PK Fc 195 Hz Gain -2.8 dB Q 0.66\r\n"
    "Filter 3: ON PK Fc 1340 Hz Gain 1.7 dB Q 1.74\r\n"
    "Filter 4: ON PK Fc 3006 Hz Gain -2.3 dB Q 2.67\r\n"
    "Filter 5: ON PK Fc 5584 Hz Gain 3.4 dB Q 4.39\r\n"
    "Filter 6: ON PK Fc 19 Hz Gain -0.8 dB Q 1.30\r\n"
    "Filter 7: ON PK Fc 3897 Hz Gain 1.2 dB Q 4.81\r\n"
    "Filter 8: ON PK Fc 7253 Hz Gain -1.6 dB Q 3.45\r\n"
    "Filter 9: ON PK Fc 9683 Hz Gain 1.3 dB Q 2.01\r\n"
    "Filter 10: ON HSC Fc 10000 Hz Gain -2.9 dB Q 0.70\r\n";

std::string error_of(const std::string& text, const std::string& name = "hd650.txt") {
  try {
    parse_parametric_eq(text, name);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}

struct TempFile {
  explicit TempFile(const std::string& text, const char* name = "eq_preset_test.txt")
      : path((std::filesystem::temp_directory_path() / name).string()) {
    std::ofstream(path, std::ios::binary) << text;
  }
  ~TempFile() { std::remove(path.c_str()); }
  std::string path;
};

std::vector<std::vector<double>> default_params() {
  std::vector<std::vector<double>> p(kParamCount, std::vector<double>{0.0});
  for (int b = 0; b < kMaxBands; ++b) {
    p[band_param(b, kFieldFreq)][0] = 1000;
    p[band_param(b, kFieldQ)][0] = kButterworthQ;
  }
  return p;
}

TEST(ParametricEq, AutoEqFileImportsToExpectedBands) {
  const Preset p = parse_parametric_eq(kHd650, "HD 650 ParametricEQ.txt");
  EXPECT_DOUBLE_EQ(p.preamp_db, -6.3);
  ASSERT_EQ(p.bands.size(), 10u);
  EXPECT_TRUE(p.bands[0].on);
  EXPECT_EQ(p.bands[0].type, BandType::kLowShelf);
  EXPECT_DOUBLE_EQ(p.bands[0].freq_hz, 105);
  EXPECT_DOUBLE_EQ(p.bands[0].gain_db, 6.5);
  EXPECT_DOUBLE_EQ(p.bands[0].q, 0.70);
  EXPECT_EQ(p.bands[4].type, BandType::kPeak);
  EXPECT_DOUBLE_EQ(p.bands[4].freq_hz, 5584);
  EXPECT_DOUBLE_EQ(p.bands[4].gain_db, 3.4);
  EXPECT_DOUBLE_EQ(p.bands[4].q, 4.39);
  EXPECT_DOUBLE_EQ(p.bands[5].freq_hz, 19);
  EXPECT_EQ(p.bands[9].type, BandType::kHighShelf);
  EXPECT_DOUBLE_EQ(p.bands[9].gain_db, -2.9);
}

TEST(ParametricEq, EveryApoTypeOffFiltersCommentsAndBlankLines) {
  const Preset p = parse_parametric_eq(
      "\xEF\xBB\xBF# made by hand\n"
      "\n"
      "Preamp: -3 dB\n"
      "Preamp: -1.5 dB\n"
      "Filter 1: ON PK Fc 100 Hz Gain 1 dB Q 1\n"
      "Filter 2: OFF LSC Fc 80 Hz Gain 3 dB Q 0.7\n"
      "Filter 3: ON HSC Fc 8000 Hz Gain -2 dB Q 0.7\n"
      "Filter 4: ON LS Fc 120 Hz Gain 4 dB\n"
      "Filter 5: ON HS Fc 9000 Hz Gain -4 dB\n"
      "Filter 6: ON LP Fc 18000 Hz\n"
      "Filter 7: ON HP Fc 20 Hz\n"
      "Filter 8: ON LPQ Fc 15000 Hz Q 0.5\n"
      "Filter 9: ON HPQ Fc 30 Hz Q 0.9\n"
      "Filter 10: ON BP Fc 1000 Hz Q 2\n"
      "Filter 11: ON NO Fc 50 Hz Q 10\n"
      "Filter 12: ON AP Fc 300 Hz Q 0.7\n"
      "Filter: ON PK Fc 2000 Hz Gain -1 dB BW Oct 1\n",
      "all.txt");
  EXPECT_DOUBLE_EQ(p.preamp_db, -4.5);
  ASSERT_EQ(p.bands.size(), 13u);
  for (int t = 0; t < kBandTypeCount; ++t) EXPECT_EQ(p.bands[t].type, static_cast<BandType>(t)) << t;
  EXPECT_FALSE(p.bands[1].on);
  EXPECT_DOUBLE_EQ(p.bands[3].gain_db, 4);
  EXPECT_NEAR(p.bands[12].q, 1.4142, 1e-3);  // 1 octave
}

TEST(ParametricEq, MalformedLinesAreRefusedWithFileAndLine) {
  EXPECT_EQ(error_of("Preamp: -6 dB\nFilter 1: ON XX Fc 100 Hz Gain 1 dB Q 1\n"),
            "hd650.txt:2: unknown filter type \"XX\" (expected PK, LSC, HSC, LS, HS, LP, HP, "
            "LPQ, HPQ, BP, NO or AP)");
  EXPECT_EQ(error_of("# c\n\nFilter 1: ON PK Gain 1 dB Q 1\n"),
            "hd650.txt:3: PK filter needs \"Fc <freq> Hz\"");
  EXPECT_EQ(error_of("Filter 1: ON PK Fc 100 Hz Q 1\n"), "hd650.txt:1: PK filter needs \"Gain <gain> dB\"");
  EXPECT_EQ(error_of("Filter 1: ON PK Fc 100 Hz Gain 2 dB\n"), "hd650.txt:1: PK filter needs \"Q <q>\"");
  EXPECT_EQ(error_of("Filter 1: ON PK Fc abc Hz Gain 2 dB Q 1\n"),
            "hd650.txt:1: Fc value \"abc\" is not a number");
  EXPECT_EQ(error_of("Filter 1: MAYBE PK Fc 100 Hz Gain 2 dB Q 1\n"),
            "hd650.txt:1: expected ON or OFF, got \"MAYBE\"");
  EXPECT_EQ(error_of("Filter 1: ON PK Fc 100 Hz Gain 2 dB Q 1 Extra 3\n"),
            "hd650.txt:1: unexpected \"Extra\" (expected Fc, Gain, Q or BW)");
  EXPECT_EQ(error_of("Filter 1: ON PK Fc 5 Hz Gain 2 dB Q 1\n"),
            "hd650.txt:1: Fc 5 Hz is out of range [10, 24000] Hz");
  EXPECT_EQ(error_of("Filter 1: ON PK Fc 100 Hz Gain 2 dB Q 0\n"),
            "hd650.txt:1: Q 0 is out of range [0.05, 30]");
  EXPECT_EQ(error_of("Preamp: loud\n"), "hd650.txt:1: Preamp value \"loud\" is not a number");
  EXPECT_EQ(error_of("Filter 1: ON LS 12dB Fc 100 Hz Gain 3 dB\n"),
            "hd650.txt:1: slope variants such as \"LS 12dB\" are not supported; use LSC/HSC with a Q");
  EXPECT_EQ(error_of("Preamp: -1 dB\r\nInclude: other.txt\r\n"),
            "hd650.txt:2: unsupported line \"Include: other.txt\" (expected \"Preamp: X dB\", "
            "\"Filter N: ...\" or \"Channel: ...\")");
  EXPECT_EQ(error_of("Filter x: ON PK Fc 100 Hz Gain 1 dB Q 1\n"),
            "hd650.txt:1: filter number \"x\" is not a whole number");
  std::string many;
  for (int i = 1; i <= 33; ++i) many += "Filter " + std::to_string(i) + ": ON PK Fc 100 Hz Gain 1 dB Q 1\n";
  EXPECT_EQ(error_of(many), "hd650.txt:33: more than 32 filters (the eq has 32 bands)");
}

TEST(ParametricEq, MissingFileNamesThePath) {
  try {
    load_parametric_eq("/nonexistent/eq.txt");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/eq.txt: cannot open preset file");
  }
}

TEST(ParametricEq, ShippedExamplePresetParses) {
#ifdef RACKD_SOURCE_DIR
  const std::string root = RACKD_SOURCE_DIR;
#else
  const std::string root = ".";
#endif
  const Preset p = load_parametric_eq(root + "/patches/example-ParametricEQ.txt");
  EXPECT_LT(p.preamp_db, 0);
  EXPECT_EQ(p.bands.size(), 6u);
}

TEST(EqInitParams, PresetBandsThenInlineBandsFillTheSlots) {
  TempFile preset(kHd650);
  auto params = default_params();
  init_params("preset = \"" + preset.path +
                  "\"\nbands = [ { type = \"notch\", freq = 50.0, q = 10.0 },"
                  " { type = \"PK\", freq = 2000, gain = -3.0, q = 1.0, on = false } ]\n",
              params);
  EXPECT_DOUBLE_EQ(params[kParamPreamp][0], -6.3);
  EXPECT_EQ(params[band_param(0, kFieldOn)][0], 1.0);
  EXPECT_EQ(params[band_param(0, kFieldType)][0], static_cast<double>(BandType::kLowShelf));
  EXPECT_DOUBLE_EQ(params[band_param(0, kFieldFreq)][0], 105);
  EXPECT_DOUBLE_EQ(params[band_param(9, kFieldGain)][0], -2.9);
  // Inline bands follow the preset's ten.
  EXPECT_EQ(params[band_param(10, kFieldType)][0], static_cast<double>(BandType::kNotch));
  EXPECT_EQ(params[band_param(10, kFieldOn)][0], 1.0);
  EXPECT_DOUBLE_EQ(params[band_param(10, kFieldQ)][0], 10.0);
  EXPECT_EQ(params[band_param(11, kFieldType)][0], static_cast<double>(BandType::kPeak));
  EXPECT_EQ(params[band_param(11, kFieldOn)][0], 0.0);
  EXPECT_DOUBLE_EQ(params[band_param(11, kFieldGain)][0], -3.0);
  // The rest keep their defaults.
  EXPECT_EQ(params[band_param(12, kFieldOn)][0], 0.0);
  EXPECT_DOUBLE_EQ(params[band_param(12, kFieldFreq)][0], 1000);
}

std::string init_error(const std::string& config) {
  auto params = default_params();
  try {
    init_params(config, params);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(EqInitParams, ErrorsNameTheBandOrTheFileLine) {
  EXPECT_EQ(init_error("bands = [ { type = \"peak\", freq = 100.0 }, { type = \"peak\", freq = 1.0e3 },"
                       " { type = \"peak\", freq = 200.0 }, { type = \"peek\", freq = 100.0 } ]"),
            "bands[3]: unknown type \"peek\" (peak, low_shelf, high_shelf, low_shelf_fixed, "
            "high_shelf_fixed, low_pass, high_pass, low_pass_q, high_pass_q, band_pass, notch, "
            "all_pass, or an APO code)");
  EXPECT_EQ(init_error("bands = [ { type = \"peak\" } ]"), "bands[0]: missing freq");
  EXPECT_EQ(init_error("bands = [ { type = \"peak\", freq = 100.0, gian = 3.0 } ]"),
            "bands[0]: unknown key \"gian\" (accepted: type, freq, gain, q, on, channel)");
  EXPECT_EQ(init_error("bands = [ { type = \"peak\", freq = 100.0, gain = 40.0 } ]"),
            "bands[0]: gain = 40 is out of range [-30, 30] dB");
  EXPECT_EQ(init_error("bands = [ 3 ]"),
            "bands[0]: must be a table like { type = \"peak\", freq = 1000.0, gain = -3.0, q = 1.0 }");
  TempFile bad("Preamp: -2 dB\nFilter 1: ON XX Fc 100 Hz Gain 1 dB Q 1\n", "eq_bad_preset.txt");
  EXPECT_EQ(init_error("preset = \"" + bad.path + "\""),
            bad.path + ":2: unknown filter type \"XX\" (expected PK, LSC, HSC, LS, HS, LP, HP, LPQ, "
                       "HPQ, BP, NO or AP)");
  TempFile full(kHd650, "eq_full_preset.txt");
  std::string bands = "bands = [";
  for (int i = 0; i < 23; ++i) bands += "{ type = \"peak\", freq = 100.0 },";
  EXPECT_EQ(init_error("preset = \"" + full.path + "\"\n" + bands + "]"),
            "the preset has 10 bands and bands lists 23; the eq has 32");
}

// ---------------------------------------------------------------------------
// Per-channel bands.

TEST(ParametricEq, ChannelLinesRestrictTheFiltersThatFollow) {
  const Preset p = parse_parametric_eq(
      "Preamp: -4 dB\n"
      "Filter 1: ON PK Fc 100 Hz Gain 1 dB Q 1\n"
      "Channel: L\n"
      "Filter 2: ON PK Fc 200 Hz Gain 2 dB Q 1\n"
      "Filter 3: OFF PK Fc 300 Hz Gain 3 dB Q 1\n"
      "channel: r\n"
      "Filter 4: ON PK Fc 400 Hz Gain 4 dB Q 1\n"
      "Channel: 7\n"
      "Filter 5: ON PK Fc 500 Hz Gain 5 dB Q 1\n"
      "Channel: BL\n"
      "Filter 6: ON PK Fc 600 Hz Gain 6 dB Q 1\n"
      "Channel: LFE\n"
      "Filter 7: ON LP Fc 120 Hz\n"
      "Channel: ALL\n"
      "Filter 8: ON PK Fc 800 Hz Gain 8 dB Q 1\n"
      "Channel: 2 R\n"  // the same channel twice is still one channel
      "Filter 9: ON PK Fc 900 Hz Gain 9 dB Q 1\n"
      "Channel: all\n"
      "Preamp: -1 dB\n",
      "ch.txt");
  EXPECT_DOUBLE_EQ(p.preamp_db, -5);
  ASSERT_EQ(p.bands.size(), 9u);
  const int expected[] = {0, 1, 1, 2, 7, 5, 4, 0, 2};
  for (int i = 0; i < 9; ++i) EXPECT_EQ(p.bands[i].channel, expected[i]) << "filter " << i + 1;
  EXPECT_FALSE(p.bands[2].on);
  EXPECT_EQ(p.bands[6].type, BandType::kLowPass);
}

TEST(ParametricEq, ChannelNamesFollowEqualizerApoOrder) {
  const std::pair<const char*, int> names[] = {
      {"L", 1},  {"R", 2},  {"C", 3},  {"LFE", 4}, {"SUB", 4}, {"RL", 5}, {"BL", 5},
      {"RR", 6}, {"BR", 6}, {"SL", 7}, {"SR", 8},  {"sr", 8},  {"1", 1},  {"32", 32},
      {"ALL", 0}, {"All", 0}};
  for (const auto& [name, channel] : names) EXPECT_EQ(channel_from_name(name), channel) << name;
  for (const char* bad : {"0", "33", "1.5", "-1", "X", "LR", ""}) {
    EXPECT_FALSE(channel_from_name(bad)) << bad;
  }
}

TEST(ParametricEq, ChannelErrorsNameTheFileAndLine) {
  EXPECT_EQ(error_of("Filter 1: ON PK Fc 100 Hz Gain 1 dB Q 1\nChannel: 1 2\n"),
            "hd650.txt:2: \"Channel: 1 2\" names several channels; an eq band applies to one "
            "channel or to all, so give each channel its own Channel: line and filters (or use "
            "ALL)");
  EXPECT_EQ(error_of("Channel: L R\n"),
            "hd650.txt:1: \"Channel: L R\" names several channels; an eq band applies to one "
            "channel or to all, so give each channel its own Channel: line and filters (or use "
            "ALL)");
  EXPECT_EQ(error_of("Channel: ALL L\n"),
            "hd650.txt:1: \"Channel: ALL L\" names several channels; an eq band applies to one "
            "channel or to all, so give each channel its own Channel: line and filters (or use "
            "ALL)");
  EXPECT_EQ(error_of("# x\nChannel: Q\n"),
            "hd650.txt:2: unknown channel \"Q\" (expected L, R, C, LFE, RL, RR, SL, SR, BL, BR, "
            "a number 1..32, or ALL)");
  EXPECT_EQ(error_of("Channel: 33\n"),
            "hd650.txt:1: unknown channel \"33\" (expected L, R, C, LFE, RL, RR, SL, SR, BL, BR, "
            "a number 1..32, or ALL)");
  EXPECT_EQ(error_of("Channel:\n"),
            "hd650.txt:1: Channel has no value (expected a channel such as L, R, 1, 2, or ALL)");
  EXPECT_EQ(error_of("Preamp: -3 dB\nChannel: R\nPreamp: -1 dB\n"),
            "hd650.txt:3: Preamp after \"Channel: R\" would apply to that channel only, but the "
            "eq's preamp is common to all channels; move it before the first Channel: line or "
            "after \"Channel: ALL\"");
}

TEST(EqInitParams, ChannelsFromPresetAndInlineBandsFillTheChannelSlots) {
  TempFile preset("Preamp: -2 dB\nFilter 1: ON PK Fc 100 Hz Gain 1 dB Q 1\nChannel: R\n"
                  "Filter 2: ON PK Fc 200 Hz Gain 2 dB Q 1\n",
                  "eq_channel_preset.txt");
  auto params = default_params();
  init_params("preset = \"" + preset.path +
                  "\"\nbands = [ { type = \"peak\", freq = 50.0, channel = 3 },"
                  " { type = \"peak\", freq = 60.0, channel = \"SL\" },"
                  " { type = \"peak\", freq = 70.0 }, { type = \"peak\", freq = 80.0, channel = 2.0 } ]\n",
              params);
  const double expected[] = {0, 2, 3, 7, 0, 2};
  for (int b = 0; b < 6; ++b) EXPECT_EQ(params[band_param(b, kFieldChannel)][0], expected[b]) << b;
  EXPECT_DOUBLE_EQ(params[band_param(3, kFieldFreq)][0], 60);
}

TEST(EqInitParams, InlineChannelErrors) {
  EXPECT_EQ(init_error("bands = [ { type = \"peak\", freq = 100.0, channel = 33 } ]"),
            "bands[0]: channel = 33 is out of range: 0 (all channels) or 1..32");
  EXPECT_EQ(init_error("bands = [ { type = \"peak\", freq = 100.0, channel = -1 } ]"),
            "bands[0]: channel = -1 is out of range: 0 (all channels) or 1..32");
  EXPECT_EQ(init_error("bands = [ { type = \"peak\", freq = 100.0, channel = 1.5 } ]"),
            "bands[0]: channel must be a whole number: 0 (all channels) or 1..32");
  EXPECT_EQ(init_error("bands = [ { type = \"peak\", freq = 100.0, channel = true } ]"),
            "bands[0]: channel must be a whole number: 0 (all channels) or 1..32");
  EXPECT_EQ(init_error("bands = [ { type = \"peak\", freq = 100.0, channel = \"left\" } ]"),
            "bands[0]: unknown channel \"left\" (0 (all channels) or 1..32, or L, R, C, LFE, RL, "
            "RR, SL, SR, BL, BR, ALL)");
}

// ---------------------------------------------------------------------------
// The slot layout: the registry lists the parameters in band_param() order,
// with the ranges the parsers use.

TEST(EqLayout, TheDeclarationNamesEverySlotOfTheParser) {
  const ModuleSpec spec = module_spec();
  ASSERT_EQ(spec.params.size(), static_cast<std::size_t>(kParamCount));
  EXPECT_GE(spec.index("preamp"), 0);
  for (int b = 0; b < kMaxBands; ++b) {
    for (int f = 0; f < kBandParamCount; ++f) {
      const std::string name = "band/" + std::to_string(b + 1) + "/" + band_field_name(f);
      EXPECT_GE(spec.index(name), 0) << name;
    }
    const auto& channel = spec.params[static_cast<std::size_t>(spec.index("band/" + std::to_string(b + 1) + "/channel"))];
    EXPECT_EQ(channel.kind, shm::ParamKind::kInt);
    EXPECT_EQ(channel.min, 0);
    EXPECT_EQ(channel.max, kMaxBandChannel);
    EXPECT_EQ(channel.def, 0);
  }
  EXPECT_LE(spec.params.size(), shm::kMaxParams);
}

// The configure hook (rackd-eq --describe --config) writes the preset's bands
// as defaults, by name.
TEST(EqLayout, ConfigureTurnsAPresetIntoDefaults) {
  ModuleSpec spec = module_spec();
  const toml::table config = toml::parse("bands = [{ type = \"peak\", freq = 250.0, gain = -4.5, q = 2.0 }]");
  spec.configure(config, spec);
  auto def = [&](const char* name) { return spec.params[static_cast<std::size_t>(spec.index(name))].def; };
  EXPECT_EQ(def("band/1/on"), 1.0);
  EXPECT_EQ(def("band/1/freq"), 250.0);
  EXPECT_EQ(def("band/1/gain"), -4.5);
  EXPECT_EQ(def("band/1/q"), 2.0);
  EXPECT_EQ(def("band/2/on"), 0.0);
}

}  // namespace
}  // namespace rackd::eq
