// The "hrir" (binaural) module type: parameters (gains, bypass, head
// orientation), setup keys (sofa | hesuvi, layout, speakers, fade_ms) and the
// channel rule. [setup]/[control] threads only: built once by the registry,
// read by the server and the hrir process. The registry does not link the HRTF
// code, so layout channel counts are listed here; binaural_test checks them
// against hrir::layout().
#include <string>
#include <utility>

#include "modules/registry/registry.hpp"

namespace rackd::registry {

TypeSpec hrir_type() {
  using shm::ParamKind;
  static const std::pair<const char*, uint32_t> kLayouts[] = {{"2.0", 2}, {"5.1", 6}, {"7.1", 8}, {"7.1.4", 12}};
  constexpr int kMaxChannels = 12;

  TypeSpec t;
  t.type = "hrir";
  t.executable = "rackd-hrir";
  t.summary =
      "binaural renderer: a 2.0/5.1/7.1/7.1.4 speaker layout through an HRTF set (SOFA or HeSuVi) to "
      "headphones, with head tracking (yaw/pitch/roll, crossfaded filter swaps)";
  t.bypassable = false;  // layout channels in, 2 out
  t.takes_input = true;

  // Order is the slot layout read by modules/hrir/main.cpp.
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
  for (int n = 1; n <= kMaxChannels; ++n) {
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
  t.channels = [](const ChannelQuery& q, Channels& c, std::string& error) {
    const auto s = q.get_string("layout");
    const std::string name = s ? *s : "7.1";
    uint32_t count = 0;
    for (const auto& [layout, n] : kLayouts)
      if (name == layout) count = n;
    if (count == 0) {
      error = "unknown layout \"" + name + "\" (known: 2.0, 5.1, 7.1, 7.1.4)";
      return false;
    }
    if (q.upstream_channels != count) {
      error = "layout " + name + " takes " + std::to_string(count) + " input channels; its input has " +
              std::to_string(q.upstream_channels);
      return false;
    }
    c.in = count;
    c.out = 2;
    return true;
  };
  return t;
}

}  // namespace rackd::registry
