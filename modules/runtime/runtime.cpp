// The module process: attach, set up, block loop. The main thread does setup,
// then becomes the module's audio thread in block_loop().
#include "modules/runtime/runtime.hpp"

#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include "shm/cycle.hpp"
#include "shm/futex.hpp"
#include "shm/protocol.hpp"
#include "shm/seqlock.hpp"
#include "shm/segment.hpp"
#include "modules/runtime/describe.hpp"

namespace rackd {
namespace {

struct Options {
  std::string segment;
  long slot = -1;
};

void usage(const char* type, FILE* to) {
  std::fprintf(to,
               "usage: rackd-%s --segment NAME --slot N\n"
               "       rackd-%s --describe [--config TOML|FILE]\n"
               "A rackd module process. rackd starts it for a [[module]] of type \"%s\";\n"
               "it attaches to the server's shared-memory segment NAME and runs slot N.\n"
               "--describe prints the type's parameters, setup keys and channel rule as\n"
               "JSON (module protocol %u); with --config, the parameter defaults that\n"
               "follow from those setup keys (a TOML table, inline or in a file).\n",
               type, type, type, static_cast<unsigned>(kModuleProtocol));
}

// Everything the block loop touches, prepared in setup.
struct Loop {
  uint64_t protocol_errors = 0;         // cycle-state transitions shm/protocol.hpp does not list
  const shm::SegmentHeader* header = nullptr;
  const shm::ModuleIn* in = nullptr;
  shm::ModuleOut* out = nullptr;
  shm::RingView out_ring;
  std::vector<shm::RingView> rings;     // every bus, read-only view
  std::vector<const shm::ModuleOut*> outs;  // every module's completion page, read-only
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
    double v[shm::kParamValues];
    const bool ok = shm::SeqlockReader::read_bounded(slot.seq, 4, [&]() noexcept RACKD_RT {
      for (uint32_t k = 0; k < shm::kParamValues; ++k) v[k] = slot.value[k].load(std::memory_order_relaxed);
    });
    if (ok) std::copy(v, v + shm::kParamValues, l.params.values_.begin() + i * shm::kParamValues);
    complete = complete && ok;
  }
  return complete;
}

// [rt] True when a block an upstream process handed over directly holds a
// non-finite sample or one beyond kMaxSaneLevel. The server checks that block
// too, but only after this process has read it; such a block is read as
// silence here, so one broken module cannot poison another one's state.
bool hostile(const float* block, std::size_t n) noexcept RACKD_RT {
  bool bad = false;
  for (std::size_t i = 0; i < n; ++i) {
    const float x = block[i];
    // Written without isfinite (safe under -ffast-math): NaN fails both tests.
    bad |= !(x <= shm::kMaxSaneLevel && x >= -shm::kMaxSaneLevel);
  }
  return bad;
}

// A cycle request as the module read it (see ModuleIn).
struct Request {
  uint32_t last = 0;                    // last cycle asked for
  uint32_t first = 0;                   // first cycle asked for
  uint32_t in_bus = shm::kNoBus;
  uint32_t in_slot = 0;                 // input slot of the first cycle
  uint32_t follow = shm::kNoSlot;
};

// [rt] True once a module whose completion word reads `done` has completed
// `cycle`. At or beyond: if the server gave up on this module for that cycle
// (late), the upstream may already be a cycle further when it gets here; the
// block is run all the same (its output was replaced anyway), so this process
// catches up instead of waiting for a completion that has passed.
bool reached(uint32_t done, uint32_t cycle) noexcept RACKD_RT { return shm::completed(done, cycle); }

// [rt] One cycle: point at the input, process, publish, signal. `last`: the
// last cycle of the request, after which sleepers on `done` are woken.
void run_block(Loop& l, const Request& r, uint32_t cycle, bool last) noexcept RACKD_RT {
  uint32_t epoch = l.in->param_epoch.load(std::memory_order_acquire);
  // The first block reports every parameter as changed, so processors derive
  // their state (gains, coefficients) from the slots before any audio.
  l.params.changed_ = l.first_block;
  l.first_block = false;
  if (epoch != l.seen_epoch) {
    if (refresh_params(l)) l.seen_epoch = epoch;
    l.params.changed_ = true;
  }

  bool have_input = r.in_bus < l.rings.size() && l.rings[r.in_bus].geometry().channels >= l.in_channels;
  const float* in_block = nullptr;
  if (have_input) {
    const shm::RingView& ring = l.rings[r.in_bus];
    in_block = ring.slot_data(cycle == r.first ? r.in_slot : ring.slot_of(cycle));
    if (r.follow != shm::kNoSlot) have_input = !hostile(in_block, std::size_t{l.in_channels} * l.frames);
  }
  for (uint32_t c = 0; c < l.in_channels; ++c)
    l.in_ptrs[c] = have_input ? in_block + std::size_t{c} * l.frames : l.zeros.data();
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
  // `done` (Dekker): either it sees this store, or this load sees its wish.
  // Followers sleep on this word whenever they have nothing else to do, so
  // after the last cycle of a request a module that feeds others wakes every
  // sleeper: besides its consumers, modules past a bypassed consumer follow
  // this one too. Within a batch it does not: its followers then run their
  // blocks in one go after it, instead of one context switch per block.
  l.out->done.store(cycle + 1, std::memory_order_seq_cst);
  bool wake = last && l.in->followers.load(std::memory_order_relaxed) > 0;
  if (!wake) {
    const uint32_t want = l.in->server_waiting.load(std::memory_order_seq_cst);
    wake = want != 0 && reached(cycle + 1, want - 1);
  }
  if (wake) shm::futex_wake(l.out->done, INT_MAX);
}

// [rt] Moves this process's cycle state (shm/protocol.hpp). A transition the
// protocol does not list is counted: the runtime checks itself.
void set_state(Loop& l, shm::CycleState next) noexcept RACKD_RT {
  const auto now = static_cast<shm::CycleState>(l.out->cycle_state.load(std::memory_order_relaxed));
  if (now == next) return;
  if (!shm::cycle_transition_allowed(now, next)) ++l.protocol_errors;
  l.out->cycle_state.store(static_cast<uint32_t>(next), std::memory_order_relaxed);
}

// [rt] Reads the request behind arming `arm`; false if the server re-armed
// meanwhile (the caller looks again).
bool read_request(const shm::ModuleIn& in, uint32_t arm, Request& r) noexcept RACKD_RT {
  r.last = in.request.load(std::memory_order_relaxed);
  const uint32_t count = std::clamp<uint32_t>(in.request_count.load(std::memory_order_relaxed), 1, shm::kMaxBatch);
  r.first = r.last - (count - 1);
  r.in_bus = in.request_in_bus.load(std::memory_order_relaxed);
  r.in_slot = in.request_in_slot.load(std::memory_order_relaxed);
  r.follow = in.request_follow.load(std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_acquire);
  return in.arm.load(std::memory_order_relaxed) == arm;
}

// [rt] Waits for cycle requests until the server shuts down. Between cycles it
// sleeps on its arm word and on its upstream's completion word: the server
// arms a follower without waking it, and the upstream's completion does.
void block_loop(Loop& l, uint32_t seen_arm) noexcept RACKD_RT {
  const std::atomic<uint32_t>* words[2] = {&l.in->arm, nullptr};
  uint32_t expected[2] = {seen_arm, 0};
  bool ran = false;                     // this process has run a cycle, the last being last_run
  uint32_t last_run = 0;
  Request r;                            // the newest request
  uint32_t next = 0, remaining = 0;     // its cycles still to run
  for (;;) {
    const uint32_t arm = l.in->arm.load(std::memory_order_seq_cst);
    if (arm != seen_arm) {
      Request fresh;
      if (!read_request(*l.in, arm, fresh)) continue;  // re-armed meanwhile
      seen_arm = arm;
      r = fresh;
      // Cycles of it already run (the server armed again after they ran, or
      // cut a batch short that this process had finished) are not run again.
      next = ran && shm::at_or_past(last_run, r.first) ? last_run + 1 : r.first;
      remaining = shm::at_or_past(r.last, next) ? r.last - next + 1 : 0;
      // A batch cut short while its new last block was running: that block
      // went out without the wake-up that ends a request. Sent now.
      if (remaining == 0 && ran && l.in->followers.load(std::memory_order_relaxed) > 0)
        shm::futex_wake(l.out->done, INT_MAX);
    }
    // The graph may change between any two cycles: the upstream is read
    // afresh (the server wakes this process when it changes).
    const uint32_t upstream = l.in->upstream.load(std::memory_order_relaxed);
    const shm::ModuleOut* wait_for = upstream < l.outs.size() ? l.outs[upstream] : nullptr;
    if (remaining > 0) {
      const shm::ModuleOut* from = r.follow < l.outs.size() ? l.outs[r.follow] : nullptr;
      if (!from || reached(from->done.load(std::memory_order_acquire), next)) {
        set_state(l, shm::CycleState::kRunning);
        {
          RtScope rt;
          run_block(l, r, next, remaining == 1);
        }
        set_state(l, shm::CycleState::kPublished);
        ran = true;
        last_run = next++;
        --remaining;
        continue;  // looks at the arm word before every block
      }
      wait_for = from;  // armed, input not ready yet
      set_state(l, shm::CycleState::kWaiting);
    } else {
      set_state(l, shm::CycleState::kIdle);
    }
    if (l.header->shutting_down.load(std::memory_order_relaxed)) return;
    expected[0] = arm;
    uint32_t n = 1;
    if (wait_for) {
      words[1] = &wait_for->done;
      expected[1] = wait_for->done.load(std::memory_order_seq_cst);  // pairs with the server's arming
      if (remaining > 0 && reached(expected[1], next)) continue;     // completed just now
      n = 2;
    }
    // The timeout only bounds how late a shutdown is noticed; a server that
    // dies kills this process through the parent-death signal.
    shm::futex_wait_any(words, expected, n, shm::now_ns() + 500'000'000ull);
  }
}

// [setup] True when `spec` declares the parameters the server laid out in `in`.
bool same_params(const ModuleSpec& spec, const shm::ModuleIn& in) {
  if (in.param_count != spec.params.size()) return false;
  for (uint32_t i = 0; i < in.param_count; ++i)
    if (spec.params[i].name != std::string_view(in.params[i].name, strnlen(in.params[i].name, shm::kNameBytes)))
      return false;
  return true;
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

int run_module(int argc, char** argv, const ModuleSpec& spec, std::unique_ptr<Processor> processor) {
  const char* type = spec.type.c_str();
  Options opt;
  bool describe = false;
  const char* config_arg = nullptr;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      usage(type, stdout);
      return 0;
    } else if (a == "--describe") {
      describe = true;
    } else if (a == "--config" && i + 1 < argc) {
      config_arg = argv[++i];
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
  if (describe || config_arg) return describe_main(spec, config_arg);
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
  // Started off the audio CPU (the supervisor keeps set-up work away from it);
  // helper threads may use it all the same.
  add_start_cpu(h.audio_cpu.load(std::memory_order_acquire));
  const shm::ModuleIn& in = seg->module_in(slot);
  auto* out = static_cast<shm::ModuleOut*>(
      seg->map_writable(seg->module_out_offset(slot), sizeof(shm::ModuleOut)));
  out->pid.store(static_cast<uint32_t>(getpid()), std::memory_order_relaxed);
  out->struct_version = shm::kModuleOutVersion;
  out->cycle_state.store(static_cast<uint32_t>(shm::CycleState::kIdle), std::memory_order_relaxed);
  const std::string name(in.name, strnlen(in.name, shm::kNameBytes));
  const std::string who = std::string("rackd-") + type + "[" + name + "]";

  Loop l;
  toml::table config;
  ModuleSpec configured = spec;
  Outputs outputs;
  try {
    if (strncmp(in.type, type, shm::kNameBytes) != 0)
      throw std::runtime_error("slot is a \"" + std::string(in.type, strnlen(in.type, shm::kNameBytes)) +
                               "\", this binary runs \"" + type + "\"");
    std::size_t cfg_len = std::min<std::size_t>(in.config_bytes, shm::kConfigBytes);
    try {
      config = toml::parse(std::string_view(in.config, strnlen(in.config, cfg_len)));
    } catch (const toml::parse_error& e) {
      throw std::runtime_error(std::string("config: ") + std::string(e.description()));
    }

    // The spec as this slot's setup keys make it (the server asked the same
    // with --describe --config at patch load), when they decide which
    // parameters there are (an LV2 plugin's ports). A hook that only changes
    // defaults (eq's preset) is not run again: the slots hold the values, and
    // a restart must not depend on the preset file still being there.
    if (spec.configure && !same_params(spec, in)) spec.configure(config, configured);
    // The server laid the slots out from this executable's --describe; a
    // mismatch means the file changed since (a rebuild while rackd runs).
    if (in.param_count != configured.params.size())
      throw std::runtime_error("the server knows " + std::to_string(in.param_count) + " parameters, this executable " +
                               std::to_string(configured.params.size()) + " (rebuilt while rackd ran? reload the patch)");
    for (uint32_t i = 0; i < in.param_count; ++i) {
      if (configured.params[i].name != std::string_view(in.params[i].name, strnlen(in.params[i].name, shm::kNameBytes)))
        throw std::runtime_error("parameter " + configured.params[i].name +
                                 " is not where the server put it (rebuilt while rackd ran? reload the patch)");
    }
    if (in.out_bus >= h.bus_count || in.out_bus == shm::kDeviceBus)
      throw std::runtime_error("output bus out of range");
    for (uint32_t b = 0; b < h.bus_count; ++b) l.rings.push_back(seg->ring(b));
    for (uint32_t m = 0; m < h.module_count; ++m) l.outs.push_back(&seg->module_out(m));
    const shm::RingView& ro = l.rings[in.out_bus];
    if (ro.geometry().channels < in.out_channels || in.out_channels > shm::kMaxChannels ||
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
    info.spec = &configured;
    outputs.slot_of_.assign(configured.params.size(), -1);
    for (std::size_t i = 0, k = 0; i < configured.params.size() && k < kMaxOutputs; ++i)
      if (configured.params[i].output) outputs.slot_of_[i] = static_cast<int>(k++);
    outputs.values_ = out->outputs;
    for (auto& v : out->outputs) v.store(0.0, std::memory_order_relaxed);
    info.outputs = &outputs;
    info.state_dir = shm::module_state_dir(opt.segment, name, true);
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
  // Locked while this process still runs off the audio CPU at normal
  // priority: faulting the segment in is a long system call, which on a
  // kernel without preemption would hold up the audio CPU's device thread.
  if (!try_lock_memory(&why))
    std::fprintf(stderr, "%s: warning: mlockall refused (%s); pages may fault\n", who.c_str(), why);
  // The server may lower the priority (to stay below its device thread on a
  // shared CPU) and pick the CPU; see server/audio_cpu.hpp.
  // This thread becomes the audio thread; helper threads the processor
  // adopted in setup (shm/rt.hpp) go one priority below it. The server may
  // store a new priority while this runs and then set it by process id: look
  // again, so neither this thread nor a helper keeps the old one.
  for (uint32_t priority = ~0u;;) {
    const uint32_t now = h.module_priority.load(std::memory_order_acquire);
    if (now == priority) break;
    priority = now;
    const int rt_priority = static_cast<int>(priority ? priority : h.rt_priority);
    if (rt_priority > 0 && !try_audio_thread_priority(rt_priority, &why)) {
      std::fprintf(stderr, "%s: warning: real-time priority refused (%s); running without\n", who.c_str(), why);
      break;
    }
  }
  if (const int cpu = h.audio_cpu.load(std::memory_order_acquire); cpu >= 0 && !try_pin_to_cpu(0, cpu, &why))
    std::fprintf(stderr, "%s: warning: cannot run on CPU %d (%s)\n", who.c_str(), cpu, why);

  // Read the arm word before announcing readiness: the server's first request
  // after it sees us ready is then guaranteed to differ from `seen`.
  uint32_t seen = in.arm.load(std::memory_order_acquire);
  out->ready_generation.store(in.generation.load(std::memory_order_acquire), std::memory_order_release);
  block_loop(l, seen);
  if (l.protocol_errors)
    std::fprintf(stderr, "%s: %llu cycle-state transitions the protocol does not list (shm/protocol.hpp)\n", who.c_str(),
                 static_cast<unsigned long long>(l.protocol_errors));
  return 0;
}

}  // namespace rackd
