// The non-uniform tail of the hrir convolver (see convolver_tail.hpp for the
// schedule and the handshake). Threads: setup/destructor [setup]; write_input,
// add_output, release [rt] audio thread; run() and step() on the helper thread
// (or inline from release() when there is no helper).
#include "modules/hrir/convolver_tail.hpp"

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>

#include "shm/futex.hpp"
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace rackd::hrir::detail {
namespace {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
static_assert(std::atomic<uint32_t>::is_always_lock_free);

// The project's futex calls: the one system call audio threads may make, and
// the place where RealtimeSanitizer is told so (shm/futex.cpp).
void futex_wait(std::atomic<uint32_t>& word, uint32_t expected) noexcept {
  shm::futex_wait(word, expected, 0);
}
void futex_wake(std::atomic<uint32_t>& word) noexcept { shm::futex_wake(word, INT_MAX); }

// Pause between polls of a counter the other thread is about to bump.
constexpr int kSpins = 4000;  // a few microseconds
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

// Chunk counters count up forever and wrap; "a is past b" survives the wrap.
bool reached(uint32_t count, uint32_t needed) noexcept {
  return static_cast<int32_t>(count - needed) >= 0;
}

}  // namespace

// What a released chunk must compute and how its output is mixed. Written by
// the audio thread before `released` is stored; read by the helper after.
struct Slot {
  const FilterSet* set[2] = {nullptr, nullptr};
  bool mix = false;  // out = (1 - w) y[0] + w y[1]; else out = y[0]
  int64_t fade_start = 0;
  uint32_t fade_frames = 0;
};

struct TailEngine::LevelState {
  uint32_t k = 0;  // index in the plan (and in FilterSet)
  Level lv;
  FftPair fft;
  uint32_t slots_n = 0;
  FloatBuffer fdl;   // [count][inputs][re|im][stride]: input spectra, helper only
  FloatBuffer acc;   // [set 2][4][stride], helper only
  FloatBuffer time;  // [2P]: FFT input and inverse output, helper only
  FloatBuffer scratch;  // FftPair scratch, helper only
  FloatBuffer y;     // [slot][set 2][ear 2][P]: results, helper writes, audio reads
  std::vector<Slot> slots;
  std::vector<const float*> xs, hs;  // MAC operand lists, helper only
  uint32_t job_step = 0;             // helper only: progress of chunk `done`
  uint32_t fdl_pos = 0;              // helper only: FDL entry of chunk `done`
  alignas(64) std::atomic<uint32_t> released{0};  // chunks handed to the helper
  alignas(64) std::atomic<uint32_t> done{0};      // chunks whose y is written
  float* y_of(uint32_t slot, uint32_t set, uint32_t ear) const noexcept {
    return y.data() + ((static_cast<size_t>(slot) * 2 + set) * 2 + ear) * lv.part;
  }
};

TailEngine::TailEngine() = default;

TailEngine::~TailEngine() {
  if (thread_.joinable()) {
    stop_.store(true);
    work_seq_.fetch_add(1);
    futex_wake(work_seq_);
    thread_.join();
  }
}

void TailEngine::setup(const std::vector<Level>& levels, uint32_t inputs, uint32_t block,
                       bool threaded) {
  inputs_ = inputs;
  block_ = block;
  uint32_t span = block;
  for (size_t k = 1; k < levels.size(); ++k) {
    auto l = std::make_unique<LevelState>();
    l->k = static_cast<uint32_t>(k);
    l->lv = levels[k];
    const Level& lv = l->lv;
    l->fft = FftPair(lv.part);
    // Chunk c is written while chunk c - slots_n + 1 may still be read.
    // A power of two, so the audio thread's 64-bit and the helper's wrapping
    // 32-bit chunk counts pick the same slot.
    l->slots_n = 1;
    while (l->slots_n < (lv.offset + lv.part - 1) / lv.part + 2) l->slots_n <<= 1;
    l->fdl = FloatBuffer(static_cast<size_t>(lv.count) * inputs * 2 * lv.stride);
    l->acc = FloatBuffer(2 * 4 * static_cast<size_t>(lv.stride));
    l->time = FloatBuffer(2 * static_cast<size_t>(lv.part));
    l->scratch = FloatBuffer(fft_scratch_floats(lv.part));
    l->y = FloatBuffer(static_cast<size_t>(l->slots_n) * 4 * lv.part);
    l->slots.resize(l->slots_n);
    l->xs.resize(inputs);
    l->hs.resize(inputs);
    // While chunk c is not done the audio thread writes at most up to frame
    // cP + offset + block; the helper still reads from cP - P.
    span = std::max(span, lv.offset + lv.part + 2 * block);
    levels_.push_back(std::move(l));
  }
  if (levels_.empty()) return;
  uint32_t ring = 1;
  while (ring < span) ring <<= 1;
  ring_mask_ = ring - 1;
  ring_ = FloatBuffer(static_cast<size_t>(ring) * inputs);
  if (!threaded) return;

  thread_ = std::thread([this] { run(); });
  pthread_setname_np(thread_.native_handle(), "rackd-conv-tail");
  // One step below the caller when the caller is real-time; else normal.
  int policy = 0;
  sched_param param{};
  if (pthread_getschedparam(pthread_self(), &policy, &param) == 0 && policy == SCHED_FIFO &&
      param.sched_priority > 1) {
    param.sched_priority -= 1;
    pthread_setschedparam(thread_.native_handle(), SCHED_FIFO, &param);
  }
}

void TailEngine::write_input(const float* const* in, uint64_t t) noexcept {
  if (levels_.empty()) return;
  const uint32_t ring = ring_mask_ + 1;
  const uint32_t pos = static_cast<uint32_t>(t) & ring_mask_;  // block divides ring
  for (uint32_t i = 0; i < inputs_; ++i) {
    std::memcpy(ring_.data() + static_cast<size_t>(i) * ring + pos, in[i], block_ * sizeof(float));
  }
}

void TailEngine::add_output(uint64_t t, float* const* out) noexcept {
  for (auto& lp : levels_) {
    LevelState& l = *lp;
    if (t < l.lv.offset) continue;  // before any input reached this level
    const uint64_t rel = t - l.lv.offset;
    const uint64_t c = rel / l.lv.part;
    const uint32_t off = static_cast<uint32_t>(rel - c * l.lv.part);
    const uint32_t need = static_cast<uint32_t>(c + 1);
    if (!reached(l.done.load(std::memory_order_acquire), need)) {
      // Late: wait for this one chunk (see the header for the bound). Spin
      // briefly first: the rest of a job is often shorter than a futex round trip.
      for (int spin = 0; spin < kSpins && !reached(l.done.load(std::memory_order_acquire), need);
           ++spin) {
        cpu_relax();
      }
      audio_waiting_.store(1);
      for (;;) {
        const uint32_t d = l.done.load();
        if (reached(d, need)) break;
        futex_wait(l.done, d);
      }
      audio_waiting_.store(0);
    }
    const uint32_t slot = static_cast<uint32_t>(c % l.slots_n);
    const Slot& s = l.slots[slot];
    for (uint32_t e = 0; e < 2; ++e) {
      const float* y0 = s.set[0] ? l.y_of(slot, 0, e) + off : nullptr;
      if (!s.mix) {
        if (y0) {
          for (uint32_t n = 0; n < block_; ++n) out[e][n] += y0[n];
        }
        continue;
      }
      const float* y1 = s.set[1] ? l.y_of(slot, 1, e) + off : nullptr;
      add_faded(out[e], y0, y1, block_, static_cast<int64_t>(t), s.fade_start, s.fade_frames);
    }
  }
}

void TailEngine::release(uint64_t t_end, const FilterSet* current, const Fade& fade) noexcept {
  bool any = false;
  for (auto& lp : levels_) {
    LevelState& l = *lp;
    const uint32_t part = l.lv.part;
    if (t_end % part != 0) continue;
    const uint64_t c = t_end / part - 1;
    Slot& s = l.slots[c % l.slots_n];
    s = Slot{};
    if (!fade.active) {
      s.set[0] = current;
    } else {
      const int64_t first = static_cast<int64_t>(c * part + l.lv.offset);
      const int64_t start = fade.start[l.k];
      const bool need_from = first < start + static_cast<int64_t>(fade.frames);
      const bool need_to = first + static_cast<int64_t>(part) > start;
      if (need_from && need_to) {
        s = Slot{{fade.from, fade.to}, true, start, fade.frames};
      } else {
        s.set[0] = need_to ? fade.to : fade.from;
      }
    }
    l.released.store(static_cast<uint32_t>(c + 1), std::memory_order_release);
    any = true;
    if (!thread_.joinable()) {
      while (!step(l)) {
      }
    }
  }
  if (any && thread_.joinable()) {
    work_seq_.fetch_add(1);
    if (helper_sleeping_.load()) futex_wake(work_seq_);
  }
}

// One piece of level l's next job (chunk `done`): the FFT of one input, the
// MAC of one partition (all inputs, both ears, both sets when fading), or the
// inverse FFTs and the publication. Small pieces let the helper turn to a
// shorter level's job between them, so a 8192-frame job cannot make a
// 256-frame one late.
bool TailEngine::step(LevelState& l) noexcept {
  const Level& lv = l.lv;
  const uint32_t c = l.done.load(std::memory_order_relaxed);  // helper is the only writer
  const uint32_t slot = c % l.slots_n;
  const Slot& s = l.slots[slot];
  const uint32_t entry = l.fdl_pos;
  const size_t spec = 2 * static_cast<size_t>(lv.stride);  // one input's spectrum
  uint32_t parts = 1;
  for (const FilterSet* set : s.set) {
    if (set) parts = std::max(parts, set->used(l.k));
  }
  const uint32_t st = l.job_step++;
  if (st < inputs_) {
    // Input frames [cP - P, cP + P): the previous chunk and this one.
    const uint32_t ring = ring_mask_ + 1;
    const uint32_t begin = (static_cast<uint32_t>(c) * lv.part - lv.part) & ring_mask_;
    const uint32_t first = std::min(2 * lv.part, ring - begin);
    const float* src = ring_.data() + static_cast<size_t>(st) * ring;
    std::memcpy(l.time.data(), src + begin, first * sizeof(float));
    std::memcpy(l.time.data() + first, src, (2 * lv.part - first) * sizeof(float));
    float* x = l.fdl.data() + (static_cast<size_t>(entry) * inputs_ + st) * spec;
    l.fft.forward(l.time.data(), l.scratch.data(), x, x + lv.stride);
    return false;
  }
  if (st < inputs_ + parts) {
    const uint32_t j = st - inputs_;
    const uint32_t src_entry = (entry + lv.count - j % lv.count) % lv.count;
    for (uint32_t i = 0; i < inputs_; ++i) {
      l.xs[i] = l.fdl.data() + (static_cast<size_t>(src_entry) * inputs_ + i) * spec;
    }
    for (uint32_t si = 0; si < 2; ++si) {
      const FilterSet* set = s.set[si];
      if (!set) continue;
      const bool live = j < set->used(l.k);
      if (live) {
        for (uint32_t i = 0; i < inputs_; ++i) l.hs[i] = set->spectrum(l.k, j, i);
      }
      if (live || j == 0) {
        mac_pairs(lv.part, lv.stride, l.xs.data(), l.hs.data(), live ? inputs_ : 0,
                  l.acc.data() + si * 4 * static_cast<size_t>(lv.stride), j > 0);
      }
    }
    return false;
  }
  for (uint32_t si = 0; si < 2; ++si) {
    if (!s.set[si]) continue;
    float* acc = l.acc.data() + si * 4 * static_cast<size_t>(lv.stride);
    for (uint32_t e = 0; e < 2; ++e) {
      float* a = acc + 2 * e * static_cast<size_t>(lv.stride);
      l.fft.inverse(a, a + lv.stride, l.scratch.data(), l.time.data());
      std::memcpy(l.y_of(slot, si, e), l.time.data() + lv.part, lv.part * sizeof(float));
    }
  }
  l.job_step = 0;
  l.fdl_pos = (entry + 1) % lv.count;
  l.done.store(c + 1);  // seq_cst: pairs with audio_waiting_ (see add_output)
  if (audio_waiting_.load()) futex_wake(l.done);
  return true;
}

void TailEngine::run() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_setcsr(_mm_getcsr() | 0x8040u);  // FTZ | DAZ, as on the audio thread
#endif
  while (!stop_.load(std::memory_order_relaxed)) {
    const uint32_t seq = work_seq_.load(std::memory_order_acquire);
    bool worked = false;
    // Shortest partition first: its result is due soonest.
    for (auto& lp : levels_) {
      LevelState& l = *lp;
      if (l.released.load(std::memory_order_acquire) != l.done.load(std::memory_order_relaxed)) {
        step(l);
        worked = true;
        break;
      }
    }
    if (worked) continue;
    helper_sleeping_.store(1);
    if (work_seq_.load() == seq && !stop_.load()) futex_wait(work_seq_, seq);
    helper_sleeping_.store(0);
  }
}

}  // namespace rackd::hrir::detail
