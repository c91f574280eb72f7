// rackd-chaos: a test module that passes its input through until told (by its
// `mode` parameter) to misbehave in one of the ways a real module can: crash,
// hang, overrun its deadline, write NaN/Inf/huge/DC output, or scribble over
// the shared pages it is allowed to write. The server must survive all of it.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <ctime>

#include <toml++/toml.h>

#include "modules/runtime/runtime.hpp"

#if defined(__has_feature)
#if __has_feature(realtime_sanitizer)
#include <sanitizer/rtsan_interface.h>
#define CHAOS_DELIBERATE __rtsan::ScopedDisabler deliberate
#endif
#endif
#ifndef CHAOS_DELIBERATE
#define CHAOS_DELIBERATE
#endif
#include "shm/futex.hpp"

namespace {

using rackd::ConfigKind;
using rackd::ParamKind;

// The declaration `rackd-chaos --describe` prints.
rackd::ModuleSpec spec() {
  rackd::ModuleSpec t;
  t.type = "chaos";
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
  // A reported value (read-only), for the tests of outputs.
  rackd::ParamSpec blocks{"blocks", ParamKind::kFloat, 1, 0, 1e12, 0, "blocks", "blocks this process has run"};
  blocks.output = true;
  t.params.push_back(blocks);
  t.config = {
      {"setup_ms", ConfigKind::kInt, "sleep this long in setup: a module slow to become ready (default 0)", {}, 0,
       1e9},
      {"setup_fail", ConfigKind::kBool, "refuse the configuration in setup (default false)", {}},
  };
  t.channels = {rackd::ChannelCount::upstream(), rackd::ChannelCount::upstream()};
  return t;
}

enum Mode : int {
  kPass = 0, kSegv, kAbort, kHang, kLoop, kBusy, kNaN, kInf, kHuge, kDc, kGarbageControl, kGarbageRing, kStop,
  kRtViolation
};

class ChaosModule final : public rackd::runtime::Processor {
 public:
  void setup(const rackd::runtime::SetupInfo& info) override {
    restarts_ = info.restarts;
    mode_ = info.spec->index("mode");
    after_ = info.spec->index("after_blocks");
    busy_ = info.spec->index("busy_ms");
    first_life_ = info.spec->index("first_life_only");
    blocks_index_ = info.spec->index("blocks");
    outputs_ = info.outputs;
    if (info.config) {
      if ((*info.config)["setup_fail"].value_or(false)) throw std::runtime_error("setup_fail = true: refused");
      const int64_t ms = (*info.config)["setup_ms"].value_or(int64_t{0});
      if (ms > 0) {
        const timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1'000'000L};
        nanosleep(&ts, nullptr);
      }
    }
    devnull_ = open("/dev/null", O_WRONLY | O_CLOEXEC);
    control_ = info.control_page;
    ring_ = info.ring_header;
  }

  void process(const rackd::runtime::Block& b, const rackd::runtime::ParamView& p) noexcept RACKD_RT override {
    const int mode = static_cast<int>(p[mode_]);
    outputs_->set(static_cast<std::size_t>(blocks_index_), static_cast<double>(blocks_ + 1));
    const bool armed = blocks_++ >= static_cast<uint64_t>(p[after_]) &&
                       !(p[first_life_] >= 0.5 && restarts_ > 0);
    for (uint32_t c = 0; c < b.out_channels; ++c) std::memcpy(b.out[c], b.in[c], b.frames * sizeof(float));
    if (!armed) return;
    if (mode == kRtViolation) {
      // A real-time bug as modules have them: an allocation and a system call on
      // the audio thread. Left visible to RealtimeSanitizer and the counters.
      void* volatile p = std::malloc(64);
      std::free(p);
      ssize_t w = write(devnull_, "x", 1);
      (void)w;
      return;
    }
    // What follows breaks the real-time rules on purpose: not a sanitizer finding.
    CHAOS_DELIBERATE;
    switch (mode) {
      case kSegv: {
        volatile int* bad = nullptr;
        *bad = 1;
        break;
      }
      case kAbort: std::abort();
      case kHang:
        for (;;) pause();
      case kLoop:
        for (;;) spin_.fetch_add(1, std::memory_order_relaxed);
      case kBusy: {
        const uint64_t until = rackd::shm::now_ns() + static_cast<uint64_t>(p[busy_] * 1e6);
        while (rackd::shm::now_ns() < until) {
        }
        break;
      }
      case kNaN: fill(b, std::numeric_limits<float>::quiet_NaN()); break;
      case kInf: fill(b, std::numeric_limits<float>::infinity()); break;
      case kHuge: fill(b, 1e30f); break;
      case kDc: fill(b, 1.0f); break;
      case kGarbageControl:
        // Every field a module may write, with values meant to confuse.
        control_->done.store(static_cast<uint32_t>(random()), std::memory_order_relaxed);
        control_->ready_generation.store(static_cast<uint32_t>(random()), std::memory_order_relaxed);
        control_->heartbeat.store(~0ull, std::memory_order_relaxed);
        control_->last_block_ns.store(~0u, std::memory_order_relaxed);
        control_->setup_failed.store(static_cast<uint32_t>(random()), std::memory_order_relaxed);
        std::memset(control_->error, 'x', sizeof control_->error);  // no terminating NUL
        break;
      case kGarbageRing:
        ring_->write.store(static_cast<uint32_t>(random()), std::memory_order_relaxed);
        ring_->read.store(static_cast<uint32_t>(random()), std::memory_order_relaxed);
        std::memset(static_cast<void*>(ring_), 0xff, offsetof(rackd::shm::BusHeader, write));
        break;
      case kStop: raise(SIGSTOP); break;
      default: break;
    }
  }

 private:
  static void fill(const rackd::runtime::Block& b, float v) noexcept {
    for (uint32_t c = 0; c < b.out_channels; ++c)
      for (uint32_t i = 0; i < b.frames; ++i) b.out[c][i] = v;
  }
  int mode_ = 0, after_ = 0, busy_ = 0, first_life_ = 0, blocks_index_ = 0;  // parameter indices, by name
  rackd::Outputs* outputs_ = nullptr;
  uint64_t restarts_ = 0;
  int devnull_ = -1;
  uint64_t blocks_ = 0;
  std::atomic<uint64_t> spin_{0};
  rackd::shm::ModuleOut* control_ = nullptr;
  rackd::shm::BusHeader* ring_ = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  return rackd::run_module(argc, argv, spec(), std::make_unique<ChaosModule>());
}
