// rackd-passthrough: the passthrough module process (gain, bypass).
#include <cmath>
#include <utility>

#include "modules/common/gain.hpp"
#include "modules/passthrough/passthrough_dsp.hpp"
#include "modules/runtime/runtime.hpp"

namespace {

using rackd::ParamKind;

// The declaration `rackd-passthrough --describe` prints.
rackd::ModuleSpec spec() {
  rackd::ModuleSpec t;
  t.type = "passthrough";
  t.summary = "copies its input to its output with a gain; for tests and benchmarks";
  t.bypassable = true;
  t.takes_input = true;
  t.params = {{"gain_db", ParamKind::kFloat, 1, -96.0, 24.0, 0.0, "dB", "output gain; changes are ramped over one block"},
              {"bypass", ParamKind::kBool, 1, 0, 1, 0, "", "1: output = input, gain ignored"}};
#ifdef RACKD_SWAPPED_DECLARATIONS
  // A test build (rackd-passthrough-swapped): the same module with its two
  // parameters declared the other way round, as its own type.
  t.type = "passthrough-swapped";
  std::swap(t.params[0], t.params[1]);
#endif
  t.channels = {rackd::ChannelCount::upstream(), rackd::ChannelCount::upstream()};
  return t;
}

class PassthroughModule final : public rackd::runtime::Processor {
 public:
  void setup(const rackd::runtime::SetupInfo& info) override {
    gain_db_ = info.spec->index("gain_db");
    bypass_index_ = info.spec->index("bypass");
  }

  void process(const rackd::runtime::Block& b, const rackd::runtime::ParamView& p) noexcept RACKD_RT override {
    if (p.changed()) {
      gain_ = rackd::modules::db_to_linear(p[gain_db_]);
      bypass_ = p[bypass_index_] >= 0.5;
    }
    dsp_.process(b.in, b.out, b.out_channels, b.frames, gain_, bypass_);
  }

 private:
  int gain_db_ = 0, bypass_index_ = 0;  // parameter indices, by name from the declaration
  rackd::passthrough::Passthrough dsp_;
  float gain_ = 1.0f;
  bool bypass_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  return rackd::run_module(argc, argv, spec(), std::make_unique<PassthroughModule>());
}
