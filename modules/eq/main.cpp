// rackd-eq: the eq module process. setup() runs on the main thread before the
// block loop; process() runs on the same thread once it has become the audio
// thread ([rt]). Parameter slots are the single source of truth: the preset
// and inline bands were written into them by the server at patch load, so this
// process never reads preset files.
#include <cmath>
#include <memory>
#include <stdexcept>

#include "modules/eq/eq_dsp.hpp"
#include "modules/eq/preset.hpp"
#include "modules/runtime/runtime.hpp"

namespace {

namespace eq = rackd::eq;

class EqModule final : public rackd::runtime::Processor {
 public:
  void setup(const rackd::runtime::SetupInfo& info) override {
    if (info.in_channels != info.out_channels) {
      throw std::runtime_error("eq: input and output channel counts differ");
    }
    if (info.spec && info.spec->params.size() != static_cast<std::size_t>(eq::kParamCount)) {
      throw std::runtime_error("eq: registry lists an unexpected number of parameters");
    }
    dsp_.setup(info.rate_hz, info.out_channels);
  }

  void process(const rackd::runtime::Block& b, const rackd::runtime::ParamView& p) noexcept RACKD_RT override {
    if (p.changed()) read_params(p);
    dsp_.process(b.in, b.out, b.frames);
  }

 private:
  // [rt] Hands every parameter to the DSP as a target; unchanged bands cost a
  // comparison, changed ones glide there inside process().
  void read_params(const rackd::runtime::ParamView& p) noexcept RACKD_RT {
    dsp_.set_preamp_db(p[eq::kParamPreamp]);
    for (int i = 0; i < eq::kMaxBands; ++i) {
      eq::BandParams band;
      band.on = p[eq::band_param(i, eq::kFieldOn)] >= 0.5;
      const double type = std::round(p[eq::band_param(i, eq::kFieldType)]);
      band.type = static_cast<eq::BandType>(
          type >= 0 && type < eq::kBandTypeCount ? static_cast<int>(type) : 0);
      band.freq_hz = p[eq::band_param(i, eq::kFieldFreq)];
      band.gain_db = p[eq::band_param(i, eq::kFieldGain)];
      band.q = p[eq::band_param(i, eq::kFieldQ)];
      // Out-of-range values (the server clamps to 0..32) leave the band silent.
      const double channel = std::round(p[eq::band_param(i, eq::kFieldChannel)]);
      band.channel = channel >= 0 && channel <= eq::kMaxBandChannel ? static_cast<int>(channel) : -1;
      dsp_.set_band(i, band);
    }
  }

  eq::Equalizer dsp_;
};

}  // namespace

int main(int argc, char** argv) {
  return rackd::runtime::run_module(argc, argv, "eq", std::make_unique<EqModule>());
}
