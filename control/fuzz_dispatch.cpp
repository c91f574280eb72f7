// libFuzzer harness over the whole receive path short of the socket:
// validate + decode (liblo) + bundle unpacking + dispatch, on a real small
// segment (capture -> passthrough) with an [osc.map]. Future-stamped messages
// go through a BundleQueue that is drained as if their time had come.
// Single-threaded; built with clang only (see control/README.md):
//
//   clang++-14 -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     control/fuzz_dispatch.cpp control/{param_writer,osc_packet,address,osc_map,dispatch}.cpp \
//     graph/patch.cpp graph/patch_graph.cpp modules/registry/registry.cpp \
//     shm/segment.cpp shm/futex.cpp shm/rt.cpp $(pkg-config --cflags --libs tomlplusplus) \
//     -llo -lrt -o /tmp/fuzz_dispatch
//   /tmp/fuzz_dispatch -max_total_time=60 -max_len=2048
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "control/dispatch.hpp"
#include "control/osc_packet.hpp"
#include "tests/control/fixture.hpp"

namespace {

using namespace rackd::control;

struct World {
  std::unique_ptr<test::Rig> rig = test::make_rig();
  BundleQueue queue{16};
  std::size_t sent_bytes = 0;
  Dispatcher dispatcher{*rig->segment, rig->patch,
                        ServerHooks{[] { return uint64_t{1}; }, [] { return uint64_t{0}; },
                                    [](uint32_t, std::string&) { return true; }, nullptr, 48000, 128},
                        parse_osc_map(test::kTwoModulePatch, "fuzz.toml", rig->patch),
                        [this](const Peer&, const OscMessage& m) {
                          // Every reply must encode; that also exercises the encoder.
                          sent_bytes += encode_message(m).size();
                        },
                        0};
};

World& world() {
  // Never destroyed (the segment outlives every input); its name is removed at
  // once so a killed fuzzer leaves nothing in /dev/shm.
  static World* w = [] {
    auto* n = new World();
    n->rig->segment->remove_name();
    return n;
  }();
  return *w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = world();
  const Peer from = Peer::loopback(12345);
  std::vector<TimedMessage> out;
  std::string why;
  if (!unpack_packet(data, size, out, why)) {
    if (why.empty()) std::abort();  // a refusal always says why
    w.dispatcher.error(from, packet_label(data, size), why);
    return 0;
  }
  for (TimedMessage& m : out) {
    m.from = from;
    if (m.timetag == kImmediate) {
      w.dispatcher.dispatch(m.message, from);
    } else if (!w.queue.push(std::move(m))) {
      w.dispatcher.error(from, "#bundle", "bundle queue full");
    }
  }
  std::vector<TimedMessage> due;
  w.queue.pop_due(UINT64_MAX, due);
  for (const TimedMessage& m : due) w.dispatcher.dispatch(m.message, m.from);
  w.dispatcher.tick(true);
  return 0;
}
