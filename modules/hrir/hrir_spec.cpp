// The "hrir" (binaural) module type as the SDK declares it: parameters
// (gains, bypass, head orientation), setup keys (sofa | hesuvi, layout,
// speakers, fade_ms) and the channel rule (the layout's channel count in, 2
// out). [setup] only. binaural_test checks the layout counts against
// hrir::layout().
#include "modules/hrir/hrir_spec.hpp"

#include <string>

namespace rackd::hrir {

ModuleSpec module_spec() {
  ModuleSpec t;
  t.type = "hrir";
  t.summary =
      "binaural renderer: a 2.0/5.1/7.1/7.1.4 speaker layout through an HRTF set (SOFA or HeSuVi) to "
      "headphones, with head tracking (yaw/pitch/roll, crossfaded filter swaps)";
  t.bypassable = false;  // layout channels in, 2 out
  t.takes_input = true;

  t.params = {
      {"gain_db", ParamKind::kFloat, 1, -60.0, 24.0, 0.0, "dB", "master gain (ramped over one block)"},
      {"bypass", ParamKind::kBool, 1, 0, 1, 0, "",
       "1: plain stereo downmix instead of the HRTF (crossfaded over one block)"},
      {"yaw", ParamKind::kFloat, 1, -180.0, 180.0, 0.0, "deg", "head turn, left positive"},
      {"pitch", ParamKind::kFloat, 1, -90.0, 90.0, 0.0, "deg", "head tilt, nose up positive"},
      {"roll", ParamKind::kFloat, 1, -180.0, 180.0, 0.0, "deg", "head roll, right ear down positive"},
      {"ypr", ParamKind::kFloat, 3, -180.0, 180.0, 0.0, "deg",
       "yaw, pitch, roll in one message (head trackers); the most recently changed of ypr and "
       "yaw/pitch/roll wins"},
      {"lfe_gain_db", ParamKind::kFloat, 1, -60.0, 24.0, 0.0, "dB", "LFE to both ears (no HRTF)"},
  };
  for (uint32_t n = 1; n <= kMaxLayoutChannels; ++n) {
    t.params.push_back({"channel/" + std::to_string(n) + "/gain_db", ParamKind::kFloat, 1, -60.0, 24.0, 0.0,
                        "dB", "gain of input channel " + std::to_string(n) + " (ramped over one block)"});
  }

  t.config = {
      {"sofa", ConfigKind::kPath, "HRTF set, a SOFA file; \"default\" is /usr/share/libmysofa/default.sofa "
                                  "(the default when neither sofa nor hesuvi is set)", {}},
      {"hesuvi", ConfigKind::kPath, "HRTF set, a HeSuVi 14-channel WAV (instead of sofa)", {}},
      {"layout", ConfigKind::kEnum,
       "input speaker layout (default 7.1); channel order 2.0: FL FR; 5.1: FL FR FC LFE SL SR; "
       "7.1: FL FR FC LFE BL BR SL SR; 7.1.4: 7.1 then TFL TFR TBL TBR",
       {"2.0", "5.1", "7.1", "7.1.4"}},
      {"speakers", ConfigKind::kArray,
       "per-speaker overrides: [{ name = \"SL\" (or channel = 7), azimuth = 100.0, elevation = 0.0, "
       "gain_db = 0.0, delay_ms = 0.0 }, ...]; azimuth counterclockwise (+90 left)", {}},
      {"fade_ms", ConfigKind::kFloat, "crossfade when the head turns (default 20)", {}, 0, 1000},
  };
  t.channels.in = ChannelCount::setup_key_map("layout", {{"2.0", 2}, {"5.1", 6}, {"7.1", 8}, {"7.1.4", 12}}, "7.1");
  t.channels.out = ChannelCount::constant(2);
  return t;
}

}  // namespace rackd::hrir
