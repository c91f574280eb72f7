// rackd-example-gain: a whole rackd module, built out of tree against the
// installed SDK (see README.md, "Writing a module"). Type "example-gain": its
// input times a gain, ramped over one block. Threads: main() and setup() on
// the process's main thread, which then runs process() as its audio thread.
#include <cmath>
#include <memory>

#include <rackd/module.hpp>

namespace {

// [setup] Everything rackd knows about the type; `rackd-example-gain --describe` prints it.
rackd::ModuleSpec spec() {
  rackd::ModuleSpec s;
  s.type = "example-gain";
  s.summary = "multiplies its input by a gain (the SDK example)";
  s.bypassable = true;   // `rackctl bypass NAME 1`, and a restart, pass the input through
  s.takes_input = true;  // channels: out = in = upstream, the default rule
  s.params = {{.name = "gain_db", .min = -96, .max = 24, .def = 0, .unit = "dB", .help = "output gain"}};
  return s;
}

class Gain final : public rackd::Processor {
 public:
  void setup(const rackd::SetupInfo& info) override { gain_db_ = info.spec->index("gain_db"); }

  void process(const rackd::Block& b, const rackd::ParamView& p) noexcept RACKD_RT override {
    if (p.changed()) target_ = std::pow(10.0f, static_cast<float>(p[gain_db_]) / 20.0f);
    if (gain_ < 0) gain_ = target_;  // the first block starts where the parameter is
    const float step = (target_ - gain_) / static_cast<float>(b.frames);
    for (uint32_t c = 0; c < b.out_channels; ++c)
      for (uint32_t i = 0; i < b.frames; ++i) b.out[c][i] = b.in[c][i] * (gain_ + step * static_cast<float>(i + 1));
    gain_ = target_;
  }

 private:
  int gain_db_ = 0;     // index of gain_db in spec().params, looked up by name
  float target_ = 1.0f;  // linear gain_db
  float gain_ = -1.0f;   // linear gain at the end of the previous block
};

}  // namespace

int main(int argc, char** argv) { return rackd::run_module(argc, argv, spec(), std::make_unique<Gain>()); }
