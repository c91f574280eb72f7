// rackd-passthrough: the passthrough module process (gain, bypass).
#include <cmath>

#include "modules/common/gain.hpp"
#include "modules/passthrough/passthrough_dsp.hpp"
#include "modules/runtime/runtime.hpp"

namespace {

class PassthroughModule final : public rackd::runtime::Processor {
 public:
  void setup(const rackd::runtime::SetupInfo&) override {}

  void process(const rackd::runtime::Block& b, const rackd::runtime::ParamView& p) noexcept RACKD_RT override {
    if (p.changed()) {
      gain_ = rackd::modules::db_to_linear(p[kGainDb]);
      bypass_ = p[kBypass] >= 0.5;
    }
    dsp_.process(b.in, b.out, b.out_channels, b.frames, gain_, bypass_);
  }

 private:
  // Indices into the registry's parameter list for "passthrough".
  static constexpr int kGainDb = 0;
  static constexpr int kBypass = 1;
  rackd::passthrough::Passthrough dsp_;
  float gain_ = 1.0f;
  bool bypass_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  return rackd::runtime::run_module(argc, argv, "passthrough", std::make_unique<PassthroughModule>());
}
