// The non-uniform tail of the hrir convolver (see convolver_tail.hpp for the
// schedule and the handshake). Threads: setup/destructor [setup]; write_input,
// add_output, release [rt] audio thread; run() and step() on the helper thread
// (or inline from release() when there is no helper); step() also on the
// audio thread when it takes over a late level (finish()).
#include "modules/hrir/convolver_tail.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "shm/cycle.hpp"
#include "shm/futex.hpp"
#include "shm/rt.hpp"

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

// Polls of a level's busy word before sleeping on it: the helper holds a level
// for one step at a time (an FFT or one partition's multiply-accumulate, at
// most a few tens of microseconds), so a short spin usually sees it let go;
// longer means it was preempted mid-step. 400 pauses: ~10 us on Zen 4, ~16 us
// on recent Intel cores.
constexpr int kSpins = 400;
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

bool runs_inline(uint32_t part, uint32_t block) noexcept { return part <= 4 * block; }

// Chunk counters count up forever and wrap; "a is past b" survives the wrap.
bool reached(uint32_t count, uint32_t needed) noexcept { return shm::at_or_past(count, needed); }

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
  bool on_audio = false;  // jobs run inline in release(), never on the helper
  FftPair fft;
  uint32_t slots_n = 0;
  // The job's buffers and state belong to whoever holds `busy` (the audio
  // thread alone for on_audio levels).
  FloatBuffer fdl;   // [count][inputs] input spectra
  FloatBuffer acc;   // [set 2] path pairs (both ears)
  FloatBuffer time;  // [2P]: FFT input and inverse output
  FloatBuffer scratch;  // FftPair scratch
  FloatBuffer y;     // [slot][set 2][ear 2][P]: results, read by the audio thread once done
  std::vector<Slot> slots;
  std::vector<const float*> xs, hs;  // MAC operand lists
  uint32_t job_step = 0;             // progress of chunk `done`
  uint32_t fdl_pos = 0;              // FDL entry of chunk `done`
  alignas(64) std::atomic<uint32_t> released{0};  // chunks handed to the helper
  alignas(64) std::atomic<uint32_t> done{0};      // chunks whose y is written (by the busy holder)
  // 1 while a thread runs a step of this level: the level's buffers and job
  // state above pass between the helper and the audio thread through it
  // (exchange acquire, store release).
  alignas(64) std::atomic<uint32_t> busy{0};
  std::atomic<uint32_t> audio_wants{0};  // audio thread needs this level: helper keeps off
  std::atomic<uint32_t> audio_sleeps{0};  // audio thread waits on `busy` (futex)
  float* y_of(uint32_t slot, uint32_t set, uint32_t ear) const noexcept {
    return y.data() + ((static_cast<size_t>(slot) * 2 + set) * 2 + ear) * lv.part;
  }
};

TailEngine::TailEngine() = default;

TailEngine::~TailEngine() {
  if (thread_.joinable()) {
    release_rt_helper(thread_.native_handle());
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
    // Short partitions run inline at their release: waking the helper costs
    // about as much as the job (a few microseconds), and the job is at most
    // ~1-2% of a block period (4 blocks' worth of this level's work, at the
    // head's cost per frame).
    l->on_audio = !threaded || runs_inline(levels[k].part, block);
    const Level& lv = l->lv;
    l->fft = FftPair(lv.part);
    // Chunk c is written while chunk c - slots_n + 1 may still be read.
    // A power of two, so the audio thread's 64-bit and the helper's wrapping
    // 32-bit chunk counts pick the same slot.
    l->slots_n = 1;
    while (l->slots_n < (lv.offset + lv.part - 1) / lv.part + 2) l->slots_n <<= 1;
    l->fdl = FloatBuffer(static_cast<size_t>(lv.count) * inputs * spectrum_floats(lv.part));
    l->acc = FloatBuffer(2 * pair_floats(lv.part));
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
  const bool helper_needed =
      std::any_of(levels_.begin(), levels_.end(), [](const auto& l) { return !l->on_audio; });
  uint32_t ring = 1;
  while (ring < span) ring <<= 1;
  ring_mask_ = ring - 1;
  ring_ = FloatBuffer(static_cast<size_t>(ring) * inputs);
  if (!helper_needed) return;

  thread_ = std::thread([this] { run(); });
  pthread_setname_np(thread_.native_handle(), "rackd-conv-tail");
  // Its results are due within a few blocks, so it runs real-time, one
  // priority below the audio thread, whether that thread is real-time already
  // or becomes so later (a module sets up before its block loop takes
  // SCHED_FIFO, and the server may lower both afterwards; see shm/rt.hpp).
  // Left SCHED_OTHER, the audio thread would end up doing its jobs under load.
  adopt_rt_helper(thread_.native_handle());
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
    if (!reached(l.done.load(std::memory_order_acquire), need)) finish(l, need);
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

// The helper has not finished chunk need - 1 of this level (offline rendering
// faster than real time, or a starved helper): rather than wait for it, the
// audio thread takes the level as soon as the helper ends its current step and
// runs the rest of the job itself, so both threads keep computing. The helper
// keeps off the level meanwhile (audio_wants) and turns to the others.
void TailEngine::finish(LevelState& l, uint32_t need) noexcept {
  l.audio_wants.store(1, std::memory_order_relaxed);
  for (int spins = 0;;) {
    if (reached(l.done.load(std::memory_order_acquire), need)) break;
    if (l.busy.load(std::memory_order_relaxed) == 0 &&
        l.busy.exchange(1, std::memory_order_acquire) == 0) {
      // The helper may have finished the chunk just before letting go.
      const uint32_t first = l.done.load(std::memory_order_relaxed);
      const uint32_t late = reached(first, need) ? 0 : need - first;
      while (!reached(l.done.load(std::memory_order_relaxed), need)) step(l);
      const bool more = l.released.load(std::memory_order_relaxed) != l.done.load(std::memory_order_relaxed);
      l.busy.store(0, std::memory_order_release);
      late_.store(late_.load(std::memory_order_relaxed) + late, std::memory_order_relaxed);
      // The helper may have gone to sleep while it kept off this level.
      if (more) wake_helper();
      break;
    }
    if (++spins < kSpins) {
      cpu_relax();
      continue;
    }
    // The helper was preempted mid-step: sleep until it lets go of the level.
    // seq_cst store then load, against the helper's store of busy then load
    // of audio_sleeps: one of the two sees the other.
    l.audio_sleeps.store(1);
    if (l.busy.load() != 0) futex_wait(l.busy, 1);
    l.audio_sleeps.store(0, std::memory_order_relaxed);
    spins = 0;
  }
  l.audio_wants.store(0, std::memory_order_relaxed);
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
    if (l.on_audio) {
      while (!step(l)) {
      }
    } else {
      any = true;
    }
  }
  if (any) wake_helper();
}

void TailEngine::wake_helper() noexcept {
  if (!thread_.joinable()) return;
  work_seq_.fetch_add(1);  // seq_cst, against helper_sleeping_ (see run())
  if (helper_sleeping_.load()) futex_wake(work_seq_);
}

void TailEngine::pause_helper(bool paused) noexcept {
  paused_.store(paused ? 1 : 0);
  wake_helper();
}

// One piece of level l's next job (chunk `done`): the FFT of one input, the
// MAC of one partition (all inputs, both ears, both sets when fading), or the
// inverse FFTs and the publication. Small pieces let the helper turn to a
// shorter level's job between them, so a 8192-frame job cannot make a
// 256-frame one late.
bool TailEngine::step(LevelState& l) noexcept {
  const Level& lv = l.lv;
  const uint32_t c = l.done.load(std::memory_order_relaxed);  // written only under busy
  const uint32_t slot = c % l.slots_n;
  const Slot& s = l.slots[slot];
  const uint32_t entry = l.fdl_pos;
  const size_t spec = spectrum_floats(lv.part);  // one input's spectrum
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
    l.fft.forward(l.time.data(), l.fdl.data() + (static_cast<size_t>(entry) * inputs_ + st) * spec);
    return false;
  }
  if (st < inputs_ + parts) {
    const uint32_t j = st - inputs_;
    const uint32_t src_entry = (entry + lv.count - j % lv.count) % lv.count;
    const float* x = l.fdl.data() + static_cast<size_t>(src_entry) * inputs_ * spec;
    for (uint32_t si = 0; si < 2; ++si) {
      const FilterSet* set = s.set[si];
      if (!set) continue;
      uint32_t pairs = 0;
      if (j < set->used(l.k)) {
        for (uint32_t i = 0; i < inputs_; ++i) {
          if (!set->live(l.k, j, i)) continue;
          l.xs[pairs] = x + i * spec;
          l.hs[pairs] = set->spectrum(l.k, j, i);
          ++pairs;
        }
      }
      if (pairs > 0 || j == 0) {  // partition 0 always runs: it clears the sums
        mac_pairs(lv.part, l.xs.data(), l.hs.data(), pairs, l.acc.data() + si * pair_floats(lv.part),
                  j > 0);
      }
    }
    return false;
  }
  for (uint32_t si = 0; si < 2; ++si) {
    if (!s.set[si]) continue;
    const float* acc = l.acc.data() + si * pair_floats(lv.part);
    for (uint32_t e = 0; e < 2; ++e) {
      l.fft.inverse(acc, e, l.scratch.data(), l.time.data());
      std::memcpy(l.y_of(slot, si, e), l.time.data() + lv.part, lv.part * sizeof(float));
    }
  }
  l.job_step = 0;
  l.fdl_pos = (entry + 1) % lv.count;
  l.done.store(c + 1, std::memory_order_release);
  return true;
}

void TailEngine::run() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_setcsr(_mm_getcsr() | 0x8040u);  // FTZ | DAZ, as on the audio thread
#endif
  while (!stop_.load(std::memory_order_relaxed)) {
    const uint32_t seq = work_seq_.load(std::memory_order_acquire);
    bool worked = false;
    // Shortest partition first: its result is due soonest. One step, then
    // look again, so a long job never delays a shorter level's.
    for (auto& lp : levels_) {
      if (paused_.load(std::memory_order_relaxed)) break;
      LevelState& l = *lp;
      if (l.on_audio ||
          l.released.load(std::memory_order_acquire) == l.done.load(std::memory_order_acquire) ||
          l.audio_wants.load(std::memory_order_relaxed) ||
          l.busy.exchange(1, std::memory_order_acquire) != 0) {
        continue;
      }
      if (l.released.load(std::memory_order_acquire) != l.done.load(std::memory_order_relaxed)) step(l);
      l.busy.store(0);  // seq_cst: see finish()
      if (l.audio_sleeps.load()) futex_wake(l.busy);
      worked = true;
      break;
    }
    if (worked) continue;
    helper_sleeping_.store(1);
    if (work_seq_.load() == seq && !stop_.load()) futex_wait(work_seq_, seq);
    helper_sleeping_.store(0);
  }
}

}  // namespace rackd::hrir::detail
