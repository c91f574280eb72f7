// rackd-eq: the eq module process. setup() runs on the main thread before the
// block loop; process() runs on the same thread once it has become the audio
// thread ([rt]). Parameter slots are the single source of truth: the preset
// and inline bands were written into them by the server at patch load, so this
// process never reads preset files.
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>

#include "modules/eq/eq_dsp.hpp"
#include "modules/eq/eq_spec.hpp"
#include "modules/eq/preset.hpp"
#include "modules/runtime/runtime.hpp"

namespace {

namespace eq = rackd::eq;

// [setup] Index of parameter `name` in the declaration.
int index(const rackd::ModuleSpec& spec, const std::string& name) {
  const int i = spec.index(name);
  if (i < 0) throw std::logic_error("eq: parameter " + name + " is not declared");
  return i;
}

class EqModule final : public rackd::runtime::Processor {
 public:
  void setup(const rackd::runtime::SetupInfo& info) override {
    if (info.in_channels != info.out_channels) {
      throw std::runtime_error("eq: input and output channel counts differ");
    }
    // Parameter indices by name from the declaration (eq_spec.cpp), in
    // preset.hpp's band/field order.
    preamp_ = index(*info.spec, "preamp");
    for (int b = 0; b < eq::kMaxBands; ++b)
      for (int f = 0; f < eq::kBandParamCount; ++f)
        band_[b][f] = index(*info.spec, "band/" + std::to_string(b + 1) + "/" + eq::band_field_name(f));
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
    dsp_.set_preamp_db(p[preamp_]);
    for (int i = 0; i < eq::kMaxBands; ++i) {
      eq::BandParams band;
      band.on = p[band_[i][eq::kFieldOn]] >= 0.5;
      const double type = std::round(p[band_[i][eq::kFieldType]]);
      band.type = static_cast<eq::BandType>(
          type >= 0 && type < eq::kBandTypeCount ? static_cast<int>(type) : 0);
      band.freq_hz = p[band_[i][eq::kFieldFreq]];
      band.gain_db = p[band_[i][eq::kFieldGain]];
      band.q = p[band_[i][eq::kFieldQ]];
      // Out-of-range values (the server clamps to 0..32) leave the band silent.
      const double channel = std::round(p[band_[i][eq::kFieldChannel]]);
      band.channel = channel >= 0 && channel <= eq::kMaxBandChannel ? static_cast<int>(channel) : -1;
      dsp_.set_band(i, band);
    }
  }

  eq::Equalizer dsp_;
  int preamp_ = 0;
  int band_[eq::kMaxBands][eq::kBandParamCount] = {};
};

}  // namespace

int main(int argc, char** argv) {
  return rackd::run_module(argc, argv, eq::module_spec(), std::make_unique<EqModule>());
}
