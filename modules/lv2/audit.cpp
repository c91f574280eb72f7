// lv2-audit's host and report: loads one plugin through lilv with the usual
// host features (URID map/unmap, options with sample rate and block lengths,
// bounded/fixed/power-of-two block length), connects every port, runs run()
// block after block on a worker thread under the counters of
// audit_counters.cpp, and prints what the plugin did inside run(). The worker
// is driven as fast as possible (no pacing): the counts do not depend on
// wall-clock time, and pacing would add the pacing's own syscalls to the
// thread. Threads: main [setup] does everything but run(); the worker
// [rt-audited] only calls run() between enter_block/leave_block.
#include "modules/lv2/audit.hpp"

#include <lilv/lilv.h>
#include <lv2/atom/atom.h>
#include <lv2/buf-size/buf-size.h>
#include <lv2/core/lv2.h>
#include <lv2/options/options.h>
#include <lv2/parameters/parameters.h>
#include <lv2/urid/urid.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace rackd::lv2 {
namespace {

constexpr size_t kAtomCapacityBytes = 8192;

struct Args {
  std::string uri;
  double seconds = 3.0;
  double rate_hz = 48000.0;
  uint32_t block = 128;
  int list = 20;  // offending blocks listed
};

// URID map: every URI the host itself needs is mapped in setup; a plugin that
// maps in run() pays the lock and allocation, and the audit counts them.
class UridMap {
 public:
  LV2_URID map(const char* uri) {
    std::lock_guard lock(mutex_);
    auto [it, added] = ids_.try_emplace(uri, static_cast<LV2_URID>(ids_.size() + 1));
    if (added) uris_.push_back(&it->first);
    return it->second;
  }
  const char* unmap(LV2_URID id) {
    std::lock_guard lock(mutex_);
    return id >= 1 && id <= uris_.size() ? uris_[id - 1]->c_str() : nullptr;
  }
  static LV2_URID map_cb(LV2_URID_Map_Handle h, const char* uri) { return static_cast<UridMap*>(h)->map(uri); }
  static const char* unmap_cb(LV2_URID_Unmap_Handle h, LV2_URID id) { return static_cast<UridMap*>(h)->unmap(id); }

 private:
  std::mutex mutex_;
  std::map<std::string, LV2_URID> ids_;
  std::vector<const std::string*> uris_;
};

bool parse(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto value = [&](double& out) {
      if (i + 1 >= argc) return false;
      char* end = nullptr;
      out = std::strtod(argv[++i], &end);
      return end && *end == '\0' && out > 0;
    };
    double v = 0;
    if (s == "--seconds") {
      if (!value(a.seconds)) return false;
    } else if (s == "--rate") {
      if (!value(a.rate_hz)) return false;
    } else if (s == "--block") {
      if (!value(v) || v > 8192) return false;
      a.block = static_cast<uint32_t>(v);
    } else if (s == "--list") {
      if (!value(v)) return false;
      a.list = static_cast<int>(v);
    } else if (!s.empty() && s[0] != '-' && a.uri.empty()) {
      a.uri = s;
    } else {
      return false;
    }
  }
  return !a.uri.empty();
}

struct Port {
  enum Kind { kAudio, kControl, kCv, kAtom, kOther } kind = kOther;
  bool input = false;
  std::string symbol;
  float value = 0;                  // control
  std::vector<float> samples;       // audio, cv
  std::vector<uint64_t> atom;       // atom (8-byte aligned)
};

uint32_t g_noise = 22222;  // [rt-audited] deterministic test signal
float noise() noexcept {
  g_noise = g_noise * 1664525u + 1013904223u;
  return static_cast<float>(static_cast<int32_t>(g_noise)) * (0.25f / 2147483648.0f);
}

void print_report(const Args& a, uint32_t blocks) {
  uint64_t allocs = 0, frees = 0, sys = 0, futex = 0, max_allocs = 0, max_sys = 0;
  uint32_t dirty = 0, with_allocs = 0, with_sys = 0;
  int64_t first = -1;
  for (uint32_t b = 0; b < blocks; ++b) {
    const auto& c = audit::block(b);
    const uint32_t al = c.allocs.load() + c.frees.load(), sc = c.syscalls.load();
    allocs += c.allocs.load();
    frees += c.frees.load();
    sys += sc;
    futex += c.futex.load();
    max_allocs = std::max<uint64_t>(max_allocs, al);
    max_sys = std::max<uint64_t>(max_sys, sc);
    with_allocs += al > 0;
    with_sys += sc > 0;
    if (al || sc) {
      ++dirty;
      if (first < 0) first = b;
    }
  }
  std::printf("lv2 audit: %s\n", a.uri.c_str());
  std::printf("  %u blocks of %u frames at %.0f Hz (%.2f s of audio), run() driven as fast as possible on one thread\n",
              blocks, a.block, a.rate_hz, blocks * double(a.block) / a.rate_hz);
  std::printf("  %-50s %10s\n", "what (inside run() only)", "count");
  std::printf("  %-50s %10u\n", "blocks with allocations or frees", with_allocs);
  std::printf("  %-50s %10llu\n", "allocations (malloc/calloc/realloc/memalign/new)", (unsigned long long)allocs);
  std::printf("  %-50s %10llu\n", "frees (free/delete)", (unsigned long long)frees);
  std::printf("  %-50s %10llu\n", "max allocations+frees in one block", (unsigned long long)max_allocs);
  std::printf("  %-50s %10u\n", "blocks with system calls (non-futex)", with_sys);
  std::printf("  %-50s %10llu\n", "system calls (non-futex)", (unsigned long long)sys);
  std::printf("  %-50s %10llu\n", "max system calls in one block", (unsigned long long)max_sys);
  std::printf("  %-50s %10llu\n", "futex calls (lock contention; not a failure)", (unsigned long long)futex);
  for (int nr = 0; nr < audit::kMaxSyscallNr; ++nr)
    if (uint64_t n = audit::syscalls_by_nr(nr)) {
      const char* name = audit::syscall_name(nr);
      std::printf("  syscall %-42s %10llu\n", (std::string(name ? name : "nr") + "(" + std::to_string(nr) + ")").c_str(),
                  (unsigned long long)n);
    }
  if (first < 0) {
    std::printf("  first offending block: none\nresult: clean (no allocation, no non-futex system call in run())\n");
    return;
  }
  std::printf("  first offending block: %lld\n  %8s %8s %8s %8s  first syscall\n", (long long)first, "block", "allocs",
              "frees", "syscalls");
  int listed = 0;
  for (uint32_t b = 0; b < blocks && listed < a.list; ++b) {
    const auto& c = audit::block(b);
    if (!c.allocs.load() && !c.frees.load() && !c.syscalls.load()) continue;
    ++listed;
    const int nr = c.first_nr.load();
    const char* name = nr >= 0 ? audit::syscall_name(nr) : nullptr;
    std::printf("  %8u %8u %8u %8u  %s\n", b, c.allocs.load(), c.frees.load(), c.syscalls.load(),
                nr < 0 ? "-" : (std::string(name ? name : "nr") + "(" + std::to_string(nr) + ")").c_str());
  }
  if (dirty > static_cast<uint32_t>(listed)) std::printf("  ... %u more offending blocks\n", dirty - listed);
  std::printf("result: NOT real-time safe (%u of %u blocks allocate or make system calls in run())\n", dirty, blocks);
}

}  // namespace

int audit_main(int argc, char** argv) {
  Args a;
  if (!parse(argc, argv, a)) {
    std::fprintf(stderr, "usage: lv2-audit URI [--seconds S] [--rate HZ] [--block FRAMES] [--list N (offending blocks listed, default 20)]\n");
    return 2;
  }
  LilvWorld* world = lilv_world_new();
  lilv_world_load_all(world);  // LV2_PATH is honoured
  LilvNode* uri = lilv_new_uri(world, a.uri.c_str());
  const LilvPlugin* plugin = lilv_plugins_get_by_uri(lilv_world_get_all_plugins(world), uri);
  lilv_node_free(uri);
  if (!plugin) {
    std::fprintf(stderr, "lv2-audit: no installed plugin %s (LV2_PATH=%s)\n", a.uri.c_str(),
                 std::getenv("LV2_PATH") ? std::getenv("LV2_PATH") : "default");
    lilv_world_free(world);
    return 2;
  }

  // Host features.
  UridMap urids;
  LV2_URID_Map map{&urids, UridMap::map_cb};
  LV2_URID_Unmap unmap{&urids, UridMap::unmap_cb};
  const float rate_f = static_cast<float>(a.rate_hz);
  const int32_t block_len = static_cast<int32_t>(a.block);
  const LV2_URID atom_float = urids.map(LV2_ATOM__Float), atom_int = urids.map(LV2_ATOM__Int);
  LV2_Options_Option options[] = {
      {LV2_OPTIONS_INSTANCE, 0, urids.map(LV2_PARAMETERS__sampleRate), sizeof(float), atom_float, &rate_f},
      {LV2_OPTIONS_INSTANCE, 0, urids.map(LV2_BUF_SIZE__minBlockLength), sizeof(int32_t), atom_int, &block_len},
      {LV2_OPTIONS_INSTANCE, 0, urids.map(LV2_BUF_SIZE__maxBlockLength), sizeof(int32_t), atom_int, &block_len},
      {LV2_OPTIONS_INSTANCE, 0, urids.map(LV2_BUF_SIZE__nominalBlockLength), sizeof(int32_t), atom_int, &block_len},
      {LV2_OPTIONS_INSTANCE, 0, 0, 0, 0, nullptr},
  };
  LV2_Feature f_map{LV2_URID__map, &map}, f_unmap{LV2_URID__unmap, &unmap}, f_opts{LV2_OPTIONS__options, options};
  LV2_Feature f_bounded{LV2_BUF_SIZE__boundedBlockLength, nullptr}, f_fixed{LV2_BUF_SIZE__fixedBlockLength, nullptr},
      f_pow2{LV2_BUF_SIZE__powerOf2BlockLength, nullptr};
  const LV2_Feature* features[] = {&f_map, &f_unmap, &f_opts, &f_bounded, &f_fixed, &f_pow2, nullptr};
  const bool pow2 = (a.block & (a.block - 1)) == 0;

  // A required feature we do not provide: refused, naming its URI.
  LilvNodes* required = lilv_plugin_get_required_features(plugin);
  std::vector<std::string> missing;
  LILV_FOREACH(nodes, i, required) {
    const char* f = lilv_node_as_uri(lilv_nodes_get(required, i));
    bool have = std::strcmp(f, LV2_CORE__isLive) == 0 || std::strcmp(f, LV2_CORE__inPlaceBroken) == 0 ||
                std::strcmp(f, LV2_CORE__hardRTCapable) == 0;
    for (const LV2_Feature* const* p = features; *p; ++p)
      if (std::strcmp((*p)->URI, f) == 0 && (pow2 || *p != &f_pow2)) have = true;
    if (!have) missing.emplace_back(f);
  }
  lilv_nodes_free(required);
  if (!missing.empty()) {
    for (const auto& f : missing)
      std::fprintf(stderr, "lv2-audit: %s requires feature %s, which lv2-audit does not provide\n", a.uri.c_str(),
                   f.c_str());
    lilv_world_free(world);
    return 2;
  }

  // Ports: audio/CV get a noise-filled buffer, control inputs their default
  // (clamped to the range), atom ports an empty sequence / a writable chunk.
  const uint32_t nports = lilv_plugin_get_num_ports(plugin);
  std::vector<float> mins(nports), maxs(nports), defs(nports);
  lilv_plugin_get_port_ranges_float(plugin, mins.data(), maxs.data(), defs.data());
  LilvNode* c_audio = lilv_new_uri(world, LV2_CORE__AudioPort);
  LilvNode* c_control = lilv_new_uri(world, LV2_CORE__ControlPort);
  LilvNode* c_cv = lilv_new_uri(world, LV2_CORE__CVPort);
  LilvNode* c_atom = lilv_new_uri(world, LV2_ATOM__AtomPort);
  LilvNode* c_input = lilv_new_uri(world, LV2_CORE__InputPort);
  std::vector<Port> ports(nports);
  for (uint32_t i = 0; i < nports; ++i) {
    const LilvPort* lp = lilv_plugin_get_port_by_index(plugin, i);
    Port& p = ports[i];
    p.symbol = lilv_node_as_string(lilv_port_get_symbol(plugin, lp));
    p.input = lilv_port_is_a(plugin, lp, c_input);
    if (lilv_port_is_a(plugin, lp, c_audio)) p.kind = Port::kAudio;
    else if (lilv_port_is_a(plugin, lp, c_control)) p.kind = Port::kControl;
    else if (lilv_port_is_a(plugin, lp, c_cv)) p.kind = Port::kCv;
    else if (lilv_port_is_a(plugin, lp, c_atom)) p.kind = Port::kAtom;
    float v = std::isnan(defs[i]) ? (std::isnan(mins[i]) ? 0.0f : mins[i]) : defs[i];
    if (!std::isnan(mins[i]) && v < mins[i]) v = mins[i];
    if (!std::isnan(maxs[i]) && v > maxs[i]) v = maxs[i];
    p.value = v;
    if (p.kind == Port::kAudio || p.kind == Port::kCv) p.samples.assign(a.block, 0.0f);
    if (p.kind == Port::kAtom) p.atom.assign(kAtomCapacityBytes / sizeof(uint64_t), 0);
  }
  for (LilvNode* n : {c_audio, c_control, c_cv, c_atom, c_input}) lilv_node_free(n);

  LilvInstance* instance = lilv_plugin_instantiate(plugin, a.rate_hz, features);
  if (!instance) {
    std::fprintf(stderr, "lv2-audit: %s failed to instantiate\n", a.uri.c_str());
    lilv_world_free(world);
    return 2;
  }
  for (uint32_t i = 0; i < nports; ++i) {
    Port& p = ports[i];
    void* buf = p.kind == Port::kControl ? static_cast<void*>(&p.value)
                : p.kind == Port::kAtom  ? static_cast<void*>(p.atom.data())
                : p.samples.empty()      ? nullptr
                                         : static_cast<void*>(p.samples.data());
    lilv_instance_connect_port(instance, i, buf);
  }
  const LV2_URID seq = urids.map(LV2_ATOM__Sequence), chunk = urids.map(LV2_ATOM__Chunk);

  const auto blocks = static_cast<uint32_t>(std::ceil(a.seconds * a.rate_hz / a.block));
  if (!audit::begin(blocks)) return 2;
  lilv_instance_activate(instance);
  audit::start_listener();
  int filter_errno = 0;
  std::thread worker([&] {
    // Give this thread its malloc arena before counting: a fresh thread's
    // first malloc maps one (mmap, mprotect, munmap), which a module's
    // long-lived audio thread has long done; the plugin's own calls remain.
    void* volatile warm = std::malloc(64);
    std::free(warm);
    if (!audit::install_syscall_filter()) {
      filter_errno = errno;
      return;
    }
    for (uint32_t b = 0; b < blocks; ++b) {
      for (Port& p : ports) {  // [rt-audited] refill inputs, reset atom buffers: plain stores
        if (p.input && (p.kind == Port::kAudio || p.kind == Port::kCv))
          for (float& s : p.samples) s = noise();
        if (p.kind == Port::kAtom) {
          auto* atom = reinterpret_cast<LV2_Atom*>(p.atom.data());
          if (p.input) {
            atom->size = sizeof(LV2_Atom_Sequence_Body);
            atom->type = seq;
            reinterpret_cast<LV2_Atom_Sequence*>(atom)->body = {0, 0};
          } else {
            atom->size = kAtomCapacityBytes - sizeof(LV2_Atom);
            atom->type = chunk;
          }
        }
      }
      audit::enter_block(b);
      lilv_instance_run(instance, a.block);
      audit::leave_block();
    }
  });
  worker.join();
  audit::stop_listener();
  lilv_instance_deactivate(instance);
  lilv_instance_free(instance);
  lilv_world_free(world);
  if (filter_errno) {
    std::fprintf(stderr, "lv2-audit: cannot install the seccomp filter: %s\n", std::strerror(filter_errno));
    return 3;
  }
  print_report(a, blocks);
  bool dirty = false;
  for (uint32_t b = 0; b < blocks && !dirty; ++b) {
    const auto& c = audit::block(b);
    dirty = c.allocs.load() || c.frees.load() || c.syscalls.load();
  }
  return dirty ? 1 : 0;
}

}  // namespace rackd::lv2
