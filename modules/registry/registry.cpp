// The module type table. [any] thread; built once on first use.
#include "modules/registry/registry.hpp"

namespace rackd::registry {
namespace {

using shm::ParamKind;

ParamSpec gain_param() {
  return {"gain_db", ParamKind::kFloat, 1, -96.0, 24.0, 0.0, "dB",
          "output gain; changes are ramped over one block"};
}

// Channel rule of a processor that keeps its input's channel count.
bool same_as_input(const ChannelQuery& q, Channels& c, std::string&) {
  c.in = q.upstream_channels;
  c.out = q.upstream_channels;
  return true;
}

TypeSpec passthrough_type() {
  TypeSpec t;
  t.type = "passthrough";
  t.executable = "rackd-passthrough";
  t.summary = "copies its input to its output with a gain; for tests and benchmarks";
  t.bypassable = true;
  t.takes_input = true;
  t.params = {gain_param(),
              {"bypass", ParamKind::kBool, 1, 0, 1, 0, "", "1: output = input, gain ignored"}};
  t.channels = same_as_input;
  return t;
}

TypeSpec capture_type() {
  TypeSpec t;
  t.type = "capture";
  t.executable = "rackd-capture";
  t.summary = "source: device input, a sound file, a tone, noise or a sine sweep";
  t.bypassable = false;
  t.takes_input = false;
  t.reads_device = [](const ChannelQuery& q) {
    auto s = q.get_string("source");
    return s && *s == "device";
  };
  t.params = {gain_param(),
              {"mute", ParamKind::kBool, 1, 0, 1, 0, "", "1: silence (ramped)"},
              {"freq_hz", ParamKind::kFloat, 1, 1.0, 20000.0, 440.0, "Hz",
               "tone frequency (source = \"tone\")"}};
  t.config = {
      {"source", ConfigKind::kEnum, "where the signal comes from",
       {"device", "file", "tone", "noise", "sweep"}},
      {"file", ConfigKind::kPath, "sound file for source = \"file\" (WAV, FLAC, ...)", {}},
      {"loop", ConfigKind::kBool, "restart the file at its end (default true)", {}},
      {"channels", ConfigKind::kInt, "output channels (default 2)", {}, 1, shm::kMaxChannels},
      {"sweep_start_hz", ConfigKind::kFloat, "sweep start (default 20)", {}, 1, 100000},
      {"sweep_end_hz", ConfigKind::kFloat, "sweep end (default 20000)", {}, 1, 100000},
      {"sweep_seconds", ConfigKind::kFloat, "sweep duration, then it repeats (default 10)", {},
       0.01, 3600},
      {"seed", ConfigKind::kInt, "noise seed (default 1)", {}, 0, 4294967295.0},
  };
  t.channels = [](const ChannelQuery& q, Channels& c, std::string&) {
    auto n = q.get_int("channels");
    c.out = n ? static_cast<uint32_t>(*n) : 2u;
    auto s = q.get_string("source");
    c.in = (s && *s == "device") ? c.out : 0u;
    return true;
  };
  return t;
}

TypeSpec chaos_type() {
  TypeSpec t;
  t.type = "chaos";
  t.executable = "rackd-chaos";
  t.summary = "test module: passes its input through, or misbehaves as `mode` says";
  t.bypassable = true;
  t.takes_input = true;
  t.params = {
      {"mode", ParamKind::kInt, 1, 0, 13, 0, "",
       "0 pass, 1 SIGSEGV, 2 abort, 3 hang (sleep), 4 endless loop, 5 busy past the deadline, 6 NaN, "
       "7 Inf, 8 1e30, 9 full-scale DC, 10 garbage in its control page, 11 garbage in its ring header, "
       "12 SIGSTOP itself, 13 allocate and write(2) on the audio thread (a real-time bug, for the proofs)"},
      {"after_blocks", ParamKind::kInt, 1, 0, 1e9, 0, "blocks", "pass this many blocks first"},
      {"busy_ms", ParamKind::kFloat, 1, 0, 1000, 10, "ms", "mode 5: time burnt per block"},
      {"first_life_only", ParamKind::kBool, 1, 0, 1, 0, "", "1: misbehave only before the first restart"},
  };
  t.config = {
      {"setup_ms", ConfigKind::kInt, "sleep this long in setup: a module slow to become ready (default 0)", {}, 0,
       1e9},
      {"setup_fail", ConfigKind::kBool, "refuse the configuration in setup (default false)", {}},
  };
  t.channels = same_as_input;
  return t;
}

}  // namespace

const std::vector<TypeSpec>& all_types() {
  static const std::vector<TypeSpec> types = {capture_type(), passthrough_type(), eq_type(), hrir_type(), chaos_type()};
  return types;
}

const TypeSpec* find_type(std::string_view name) {
  for (const auto& t : all_types()) {
    if (t.type == name) return &t;
  }
  return nullptr;
}

int find_param(const TypeSpec& spec, std::string_view name) {
  for (std::size_t i = 0; i < spec.params.size(); ++i) {
    if (spec.params[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace rackd::registry
