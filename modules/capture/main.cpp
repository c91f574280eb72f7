// rackd-capture: the source module process (device input, file, tone, noise, sweep).
#include <cmath>
#include <stdexcept>

#include "modules/common/gain.hpp"
#include "modules/capture/capture_dsp.hpp"
#include "modules/runtime/runtime.hpp"

namespace {

using rackd::capture::Source;
using rackd::ConfigKind;
using rackd::ParamKind;

// The declaration `rackd-capture --describe` prints.
rackd::ModuleSpec spec() {
  rackd::ModuleSpec t;
  t.type = "capture";
  t.summary = "source: device input, a sound file, a tone, noise or a sine sweep";
  t.bypassable = false;
  t.takes_input = false;
  t.params = {{"gain_db", ParamKind::kFloat, 1, -96.0, 24.0, 0.0, "dB", "output gain; changes are ramped over one block"},
              {"mute", ParamKind::kBool, 1, 0, 1, 0, "", "1: silence (ramped)"},
              {"freq_hz", ParamKind::kFloat, 1, 1.0, 20000.0, 440.0, "Hz", "tone frequency (source = \"tone\")"}};
  t.config = {
      {"source", ConfigKind::kEnum, "where the signal comes from", {"device", "file", "tone", "noise", "sweep"}},
      {"file", ConfigKind::kPath, "sound file for source = \"file\" (WAV, FLAC, ...)", {}},
      {"loop", ConfigKind::kBool, "restart the file at its end (default true)", {}},
      {"channels", ConfigKind::kInt, "output channels (default 2)", {}, 1, rackd::kMaxChannels},
      {"sweep_start_hz", ConfigKind::kFloat, "sweep start (default 20)", {}, 1, 100000},
      {"sweep_end_hz", ConfigKind::kFloat, "sweep end (default 20000)", {}, 1, 100000},
      {"sweep_seconds", ConfigKind::kFloat, "sweep duration, then it repeats (default 10)", {}, 0.01, 3600},
      {"seed", ConfigKind::kInt, "noise seed (default 1)", {}, 0, 4294967295.0},
  };
  // channels (default 2) out; as many device channels in when source = "device".
  t.channels.out = rackd::ChannelCount::setup_key("channels", 2);
  t.channels.in = rackd::ChannelCount::out().when("source", "device");
  return t;
}

Source parse_source(const std::string& s) {
  if (s == "device") return Source::kDevice;
  if (s == "file") return Source::kFile;
  if (s == "tone") return Source::kTone;
  if (s == "noise") return Source::kNoise;
  if (s == "sweep") return Source::kSweep;
  throw std::runtime_error("unknown source \"" + s + "\"");
}

class CaptureModule final : public rackd::runtime::Processor {
 public:
  void setup(const rackd::runtime::SetupInfo& info) override {
    const toml::table& t = *info.config;
    rackd::capture::CaptureConfig c;
    c.source = parse_source(t["source"].value_or(std::string("tone")));
    c.file = t["file"].value_or(std::string());
    if (c.source == Source::kFile && c.file.empty())
      throw std::runtime_error("source = \"file\" needs file = \"path\"");
    c.loop = t["loop"].value_or(true);
    c.channels = info.out_channels;
    c.sweep_start_hz = t["sweep_start_hz"].value_or(c.sweep_start_hz);
    c.sweep_end_hz = t["sweep_end_hz"].value_or(c.sweep_end_hz);
    c.sweep_seconds = t["sweep_seconds"].value_or(c.sweep_seconds);
    c.seed = static_cast<uint64_t>(t["seed"].value_or(int64_t{1}));
    dsp_.setup(c, info.rate_hz, info.block_frames);
    gain_db_ = info.spec->index("gain_db");
    mute_ = info.spec->index("mute");
    freq_hz_ = info.spec->index("freq_hz");
  }

  void process(const rackd::runtime::Block& b, const rackd::runtime::ParamView& p) noexcept RACKD_RT override {
    if (p.changed()) gain_ = rackd::modules::db_to_linear(p[gain_db_]);
    dsp_.process(b.in, b.in_channels, b.out, b.frames, gain_, p[mute_] >= 0.5, p[freq_hz_]);
  }

 private:
  int gain_db_ = 0, mute_ = 0, freq_hz_ = 0;  // parameter indices, by name from the declaration
  rackd::capture::Capture dsp_;
  float gain_ = 1.0f;
};

}  // namespace

int main(int argc, char** argv) {
  return rackd::run_module(argc, argv, spec(), std::make_unique<CaptureModule>());
}
