// rackd-capture: the source module process (device input, file, tone, noise, sweep).
#include <cmath>
#include <stdexcept>

#include "modules/common/gain.hpp"
#include "modules/capture/capture_dsp.hpp"
#include "modules/runtime/runtime.hpp"

namespace {

using rackd::capture::Source;

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
  }

  void process(const rackd::runtime::Block& b, const rackd::runtime::ParamView& p) noexcept RACKD_RT override {
    if (p.changed()) gain_ = rackd::modules::db_to_linear(p[kGainDb]);
    dsp_.process(b.in, b.in_channels, b.out, b.frames, gain_, p[kMute] >= 0.5, p[kFreqHz]);
  }

 private:
  // Indices into the registry's parameter list for "capture".
  static constexpr int kGainDb = 0;
  static constexpr int kMute = 1;
  static constexpr int kFreqHz = 2;
  rackd::capture::Capture dsp_;
  float gain_ = 1.0f;
};

}  // namespace

int main(int argc, char** argv) {
  return rackd::runtime::run_module(argc, argv, "capture", std::make_unique<CaptureModule>());
}
