// The module process: attach, set up, block loop. The main thread does setup,
// then becomes the module's audio thread in block_loop().
#include "modules/runtime/runtime.hpp"

#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include "shm/futex.hpp"
#include "shm/segment.hpp"

namespace rackd::runtime {
namespace {

struct Options {
  std::string segment;
  long slot = -1;
};

void usage(const char* type, FILE* to) {
  std::fprintf(to,
               "usage: rackd-%s --segment NAME --slot N\n"
               "A rackd module process. rackd starts it for a [[module]] of type \"%s\";\n"
               "it attaches to the server's shared-memory segment NAME and runs slot N.\n",
               type, type);
}

// Everything the block loop touches, prepared in setup.
struct Loop {
  const shm::SegmentHeader* header = nullptr;
  const shm::ModuleIn* in = nullptr;
  shm::ModuleOut* out = nullptr;
  shm::RingView out_ring;
  std::vector<shm::RingView> rings;     // every bus, read-only view
  Processor* processor = nullptr;
  ParamView params;
  uint32_t param_count = 0;
  uint32_t in_channels = 0;
  uint32_t out_channels = 0;
  uint32_t frames = 0;
  std::vector<const float*> in_ptrs;
  std::vector<float*> out_ptrs;
  std::vector<float> zeros;             // input when a bus is missing
  uint32_t seen_epoch = 0;
  bool first_block = true;
};

// [rt] Copies parameter values out of their seqlocked slots. A slot caught
// mid-write (odd or changed sequence) keeps its previous value after a few tries;
// the epoch stays unseen so the next block tries again.
bool refresh_params(Loop& l) noexcept RACKD_RT {
  bool complete = true;
  for (uint32_t i = 0; i < l.param_count; ++i) {
    const shm::ParamSlot& slot = l.in->params[i];
    bool ok = false;
    for (int attempt = 0; attempt < 4 && !ok; ++attempt) {
      uint32_t s1 = slot.seq.load(std::memory_order_acquire);
      if (s1 & 1u) continue;
      double v[shm::kParamValues];
      for (uint32_t k = 0; k < shm::kParamValues; ++k) v[k] = slot.value[k].load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (slot.seq.load(std::memory_order_relaxed) != s1) continue;
      std::copy(v, v + shm::kParamValues, l.params.values_.begin() + i * shm::kParamValues);
      ok = true;
    }
    complete = complete && ok;
  }
  return complete;
}

// [rt] One cycle: point at the input the server chose, process, publish, signal.
void run_block(Loop& l, uint32_t cycle) noexcept RACKD_RT {
  uint32_t epoch = l.in->param_epoch.load(std::memory_order_acquire);
  // The first block reports every parameter as changed, so processors derive
  // their state (gains, coefficients) from the slots before any audio.
  l.params.changed_ = l.first_block;
  l.first_block = false;
  if (epoch != l.seen_epoch) {
    if (refresh_params(l)) l.seen_epoch = epoch;
    l.params.changed_ = true;
  }

  uint32_t in_bus = l.in->request_in_bus.load(std::memory_order_relaxed);
  uint32_t in_slot = l.in->request_in_slot.load(std::memory_order_relaxed);
  const bool have_input = in_bus < l.rings.size() &&
                          l.rings[in_bus].geometry().channels >= l.in_channels;
  for (uint32_t c = 0; c < l.in_channels; ++c) {
    l.in_ptrs[c] = have_input ? l.rings[in_bus].slot_data(in_slot) + std::size_t{c} * l.frames
                              : l.zeros.data();
  }
  float* out_block = l.out_ring.block(cycle);
  for (uint32_t c = 0; c < l.out_channels; ++c) l.out_ptrs[c] = out_block + std::size_t{c} * l.frames;

  Block b;
  b.in = l.in_channels ? l.in_ptrs.data() : nullptr;
  b.in_channels = l.in_channels;
  b.out = l.out_ptrs.data();
  b.out_channels = l.out_channels;
  b.frames = l.frames;
  b.cycle = cycle;

  uint64_t t0 = shm::now_ns();
  l.processor->process(b, l.params);
  uint64_t dt = shm::now_ns() - t0;

  l.out_ring.publish(cycle);
  l.out->heartbeat.fetch_add(1, std::memory_order_relaxed);
  uint32_t ns = dt > 0xffffffffull ? 0xffffffffu : static_cast<uint32_t>(dt);
  l.out->last_block_ns.store(ns, std::memory_order_relaxed);
  if (ns > l.out->max_block_ns.load(std::memory_order_relaxed))
    l.out->max_block_ns.store(ns, std::memory_order_relaxed);
  // seq_cst pairs with the server's store of server_waiting and its re-check of
  // `done` (Dekker): either it sees this store, or this load sees its flag.
  l.out->done.store(cycle + 1, std::memory_order_seq_cst);
  if (l.in->server_waiting.load(std::memory_order_seq_cst)) shm::futex_wake(l.out->done, 1);
}

// [rt] Waits for cycle requests until the server shuts down.
void block_loop(Loop& l, uint32_t last) noexcept RACKD_RT {
  for (;;) {
    uint32_t req = l.in->request.load(std::memory_order_acquire);
    if (req == last) {
      if (l.header->shutting_down.load(std::memory_order_relaxed)) return;
      // The timeout only bounds how late a shutdown is noticed; a server that
      // dies kills this process through the parent-death signal.
      shm::futex_wait(l.in->request, last, shm::now_ns() + 500'000'000ull);
      continue;
    }
    last = req;
    RtScope rt;
    run_block(l, req);
  }
}

void report(shm::ModuleOut* out, const std::string& message) {
  if (out) {
    std::size_t n = std::min<std::size_t>(message.size(), shm::kErrorBytes - 1);
    std::memcpy(out->error, message.data(), n);
    out->error[n] = '\0';
    out->setup_failed.store(1, std::memory_order_release);
  }
}

}  // namespace

int run_module(int argc, char** argv, const char* type, std::unique_ptr<Processor> processor) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      usage(type, stdout);
      return 0;
    } else if (a == "--segment" && i + 1 < argc) {
      opt.segment = argv[++i];
    } else if (a == "--slot" && i + 1 < argc) {
      opt.slot = std::strtol(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "rackd-%s: unknown argument '%s'\n", type, argv[i]);
      usage(type, stderr);
      return 64;
    }
  }
  if (opt.segment.empty() || opt.slot < 0) {
    usage(type, stderr);
    return 64;
  }
  // Die with the server. Set before attaching, then check the parent is still
  // the server, which closes the race with a server that died before prctl.
  prctl(PR_SET_PDEATHSIG, SIGKILL);

  std::unique_ptr<shm::Segment> seg;
  try {
    seg = shm::Segment::attach(opt.segment);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rackd-%s: %s\n", type, e.what());
    return 70;
  }
  const shm::SegmentHeader& h = seg->header();
  if (static_cast<uint32_t>(getppid()) != h.server_pid) {
    std::fprintf(stderr, "rackd-%s: the server that owns %s is gone\n", type, opt.segment.c_str());
    return 70;
  }
  if (static_cast<uint32_t>(opt.slot) >= h.module_count) {
    std::fprintf(stderr, "rackd-%s: slot %ld out of range\n", type, opt.slot);
    return 64;
  }
  const uint32_t slot = static_cast<uint32_t>(opt.slot);
  const shm::ModuleIn& in = seg->module_in(slot);
  auto* out = static_cast<shm::ModuleOut*>(
      seg->map_writable(seg->module_out_offset(slot), sizeof(shm::ModuleOut)));
  out->pid.store(static_cast<uint32_t>(getpid()), std::memory_order_relaxed);
  const std::string name(in.name, strnlen(in.name, shm::kNameBytes));
  const std::string who = std::string("rackd-") + type + "[" + name + "]";

  Loop l;
  toml::table config;
  try {
    if (strncmp(in.type, type, shm::kNameBytes) != 0)
      throw std::runtime_error("slot is a \"" + std::string(in.type, strnlen(in.type, shm::kNameBytes)) +
                               "\", this binary runs \"" + type + "\"");
    const registry::TypeSpec* spec = registry::find_type(type);
    if (!spec) throw std::runtime_error("type not in the registry");
    if (in.param_count != spec->params.size())
      throw std::runtime_error("parameter table does not match this build");
    for (uint32_t i = 0; i < in.param_count; ++i) {
      if (spec->params[i].name != std::string_view(in.params[i].name, strnlen(in.params[i].name, shm::kNameBytes)))
        throw std::runtime_error("parameter " + spec->params[i].name + " does not match this build");
    }
    std::size_t cfg_len = std::min<std::size_t>(in.config_bytes, shm::kConfigBytes);
    try {
      config = toml::parse(std::string_view(in.config, strnlen(in.config, cfg_len)));
    } catch (const toml::parse_error& e) {
      throw std::runtime_error(std::string("config: ") + std::string(e.description()));
    }

    if (in.out_bus >= h.bus_count || in.out_bus == shm::kDeviceBus)
      throw std::runtime_error("output bus out of range");
    for (uint32_t b = 0; b < h.bus_count; ++b) l.rings.push_back(seg->ring(b));
    const shm::RingView& ro = l.rings[in.out_bus];
    if (ro.geometry().channels != in.out_channels || in.out_channels > shm::kMaxChannels ||
        in.in_channels > shm::kMaxChannels)
      throw std::runtime_error("channel counts do not match the output bus");
    // The output bus is the one bus this process writes: map it again, writable.
    uint64_t bus_off = h.bus_offset[in.out_bus];
    std::size_t bus_bytes = sizeof(shm::BusHeader) + ro.geometry().data_bytes();
    bus_bytes = (bus_bytes + shm::kPage - 1) / shm::kPage * shm::kPage;
    auto* bus = static_cast<std::byte*>(seg->map_writable(bus_off, bus_bytes));
    l.out_ring = shm::RingView(reinterpret_cast<shm::BusHeader*>(bus),
                               reinterpret_cast<float*>(bus + sizeof(shm::BusHeader)), ro.geometry());

    SetupInfo info;
    info.name = name;
    info.rate_hz = h.rate_hz;
    info.block_frames = h.block_frames;
    info.in_channels = in.in_channels;
    info.out_channels = in.out_channels;
    info.config = &config;
    info.spec = spec;
    info.restarts = in.restarts.load(std::memory_order_relaxed);
    info.control_page = out;
    info.ring_header = l.out_ring.header();
    processor->setup(info);

    l.header = &h;
    l.in = &in;
    l.out = out;
    l.processor = processor.get();
    l.param_count = in.param_count;
    l.params.values_.assign(std::size_t{in.param_count} * shm::kParamValues, 0.0);
    l.in_channels = in.in_channels;
    l.out_channels = in.out_channels;
    l.frames = h.block_frames;
    l.in_ptrs.assign(shm::kMaxChannels, nullptr);
    l.out_ptrs.assign(shm::kMaxChannels, nullptr);
    l.zeros.assign(h.block_frames, 0.0f);
    l.seen_epoch = in.param_epoch.load(std::memory_order_acquire);
    refresh_params(l);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: setup failed: %s\n", who.c_str(), e.what());
    report(out, e.what());
    return 78;
  }

  enable_ftz_daz();
  const char* why = nullptr;
  if (h.rt_priority > 0 && !try_realtime_priority(static_cast<int>(h.rt_priority), &why))
    std::fprintf(stderr, "%s: warning: real-time priority refused (%s); running without\n", who.c_str(), why);
  if (!try_lock_memory(&why))
    std::fprintf(stderr, "%s: warning: mlockall refused (%s); pages may fault\n", who.c_str(), why);

  // Read the request word before announcing readiness: the server's first
  // request after it sees us ready is then guaranteed to differ from `last`.
  uint32_t last = in.request.load(std::memory_order_acquire);
  out->ready_generation.store(in.generation.load(std::memory_order_acquire), std::memory_order_release);
  block_loop(l, last);
  return 0;
}

}  // namespace rackd::runtime
