// Partitioned convolution for the hrir module (see convolver.hpp): the head
// level, uniformly partitioned overlap-save at the block size on the audio
// thread, filter-set preparation, swaps and crossfades. The non-uniform tail
// lives in convolver_tail.cpp, shared pieces in convolver_parts.cpp.
// Threads: setup() [setup]; prepare() and take_retired() [control];
// try_swap(), process(), fading() on the audio thread [rt]; late_chunks() and
// pause_tail_thread() [any].
//
// Per block: each input's block is appended to a 2-block window and FFT'd
// once into the head's frequency-domain delay line (FDL); one pass of the
// kernel multiplies-accumulates every live (partition, input) pair into both
// ears, then one inverse FFT per ear; the last block of it is the output (zero
// latency). Tail levels add their results, computed earlier from the same
// input history.
//
// Crossfade: during a fade both sets are computed from the same FDLs (history
// is never reset) and mixed as (1 - w) old + w new, w rising per sample. The
// head fades from the swap; tail level k fades over the same length from the
// first output frame of its first chunk released after the swap (earlier
// chunks were computed before the new set existed, and computing them again
// would cost a whole tail at once). So a swap reaches the direct sound and
// early part (the head, >= 4 blocks for long filters, the whole filter for
// HRIR-length ones) at once and a tail level at most its offset plus one
// partition later (3 partitions for a level starting at twice its partition);
// every level is continuous, and after the last level's fade the output is
// exactly the new set's convolution of the whole input history.
#include "modules/hrir/convolver.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "modules/hrir/convolver_parts.hpp"
#include "modules/hrir/convolver_tail.hpp"

namespace rackd::hrir {

using detail::Fade;
using detail::FftPair;
using detail::FloatBuffer;
using detail::Level;

namespace {
constexpr uint32_t kMaxInputs = 64;
constexpr uint32_t kMaxFilterFrames = 1u << 20;
constexpr size_t kRetireSlots = 4;
}  // namespace

struct Convolver::Impl {
  ConvolverConfig config;
  std::vector<Level> levels;
  std::vector<FftPair> ffts;          // one per level; prepare() and the head use them
  FloatBuffer head_in;                // [input][2 * block]: previous block, this block
  FloatBuffer head_fdl;               // [count][input] input spectra
  FloatBuffer head_acc;               // one path pair: both ears
  FloatBuffer head_time;              // [2 * block]
  FloatBuffer head_y;                 // [set 2][ear 2][block]
  FloatBuffer head_scratch;           // FftPair scratch, audio thread only
  std::vector<const float*> xs, hs;   // MAC operand lists, count * inputs
  uint32_t fdl_pos = 0;               // FDL entry of the current block
  std::unique_ptr<detail::TailEngine> tail;
  uint64_t now = 0;                   // frame of the next block's first sample
  FilterSet* current = nullptr;       // owned; the set in use when not fading
  Fade fade;                          // fade.from/to owned while active
  int64_t fade_end = 0;               // frame after which nothing uses fade.from
  FilterSet* pending_retire = nullptr;
  std::atomic<FilterSet*> retired[kRetireSlots] = {};  // audio stores, control takes

  ~Impl() {
    tail.reset();  // stop the helper before the sets it reads go
    delete current;
    if (fade.active) {
      delete fade.from;
      delete fade.to;
    }
    delete pending_retire;
    for (auto& r : retired) delete r.exchange(nullptr);
  }

  // [rt] Head output of `set` for the current block into y[ear][block]:
  // every live (partition, input) pair in one pass of the kernel.
  void head(const FilterSet& set, float* y) noexcept RACKD_RT {
    const Level& lv = levels[0];
    const uint32_t inputs = config.inputs;
    const size_t spec = detail::spectrum_floats(lv.part);
    uint32_t pairs = 0;
    for (uint32_t j = 0; j < set.used(0); ++j) {
      const uint32_t entry = (fdl_pos + lv.count - j) % lv.count;
      for (uint32_t i = 0; i < inputs; ++i) {
        if (!set.live(0, j, i)) continue;
        xs[pairs] = head_fdl.data() + (static_cast<size_t>(entry) * inputs + i) * spec;
        hs[pairs] = set.spectrum(0, j, i);
        ++pairs;
      }
    }
    detail::mac_pairs(lv.part, xs.data(), hs.data(), pairs, head_acc.data(), false);
    for (uint32_t e = 0; e < 2; ++e) {
      ffts[0].inverse(head_acc.data(), e, head_scratch.data(), head_time.data());
      std::memcpy(y + e * lv.part, head_time.data() + lv.part, lv.part * sizeof(float));
    }
  }

  // [rt] Hands the finished set to the control thread, if a slot is free.
  void try_retire() noexcept RACKD_RT {
    for (auto& r : retired) {
      FilterSet* empty = nullptr;
      if (r.compare_exchange_strong(empty, pending_retire, std::memory_order_acq_rel)) {
        pending_retire = nullptr;
        return;
      }
    }
  }
};

Convolver::Convolver() = default;
Convolver::~Convolver() = default;

void Convolver::setup(const ConvolverConfig& config) {
  if (config.inputs == 0 || config.inputs > kMaxInputs) {
    throw std::invalid_argument("convolver: inputs must be 1.." + std::to_string(kMaxInputs) +
                                ", got " + std::to_string(config.inputs));
  }
  if (config.block < 16 || config.block > 8192 || (config.block & (config.block - 1)) != 0) {
    throw std::invalid_argument("convolver: block must be a power of two in 16..8192, got " +
                                std::to_string(config.block));
  }
  if (config.max_filter_frames > kMaxFilterFrames) {
    throw std::invalid_argument("convolver: max_filter_frames " +
                                std::to_string(config.max_filter_frames) + " exceeds " +
                                std::to_string(kMaxFilterFrames));
  }
  impl_.reset();
  auto m = std::make_unique<Impl>();
  m->config = config;
  m->levels = detail::make_levels(config.inputs, config.block, config.max_filter_frames);
  for (const Level& lv : m->levels) m->ffts.emplace_back(lv.part);
  const Level& h = m->levels[0];
  const size_t inputs = config.inputs;
  m->head_in = FloatBuffer(inputs * 2 * h.part);
  m->head_fdl = FloatBuffer(static_cast<size_t>(h.count) * inputs * detail::spectrum_floats(h.part));
  m->head_acc = FloatBuffer(detail::pair_floats(h.part));
  m->head_time = FloatBuffer(2 * static_cast<size_t>(h.part));
  m->head_y = FloatBuffer(4 * static_cast<size_t>(h.part));
  m->head_scratch = FloatBuffer(detail::fft_scratch_floats(h.part));
  m->xs.resize(h.count * inputs);
  m->hs.resize(h.count * inputs);
  m->fade.start.assign(m->levels.size(), 0);
  m->tail = std::make_unique<detail::TailEngine>();
  m->tail->setup(m->levels, config.inputs, config.block, config.tail_thread);
  impl_ = std::move(m);
}

std::unique_ptr<FilterSet> Convolver::prepare(
    const std::vector<std::vector<std::vector<float>>>& filters) const {
  if (!impl_) throw std::logic_error("convolver: prepare() before setup()");
  const Impl& m = *impl_;
  const uint32_t inputs = m.config.inputs;
  if (filters.size() != inputs) {
    throw std::invalid_argument("convolver: " + std::to_string(filters.size()) +
                                " filter inputs for " + std::to_string(inputs) + " inputs");
  }
  for (uint32_t i = 0; i < inputs; ++i) {
    if (filters[i].size() != 2) {
      throw std::invalid_argument("convolver: input " + std::to_string(i) + " has " +
                                  std::to_string(filters[i].size()) + " ears, need 2");
    }
    for (uint32_t e = 0; e < 2; ++e) {
      const auto& f = filters[i][e];
      if (f.size() > m.config.max_filter_frames) {
        throw std::invalid_argument("convolver: filter " + std::to_string(i) + "/" +
                                    std::to_string(e) + " has " + std::to_string(f.size()) +
                                    " frames, max_filter_frames is " +
                                    std::to_string(m.config.max_filter_frames));
      }
      for (float v : f) {
        if (!std::isfinite(v)) {
          throw std::invalid_argument("convolver: filter " + std::to_string(i) + "/" +
                                      std::to_string(e) + " has a non-finite tap");
        }
      }
    }
  }
  auto set = std::make_unique<FilterSet>();
  set->owner_ = impl_.get();
  set->inputs_ = inputs;
  for (size_t k = 0; k < m.levels.size(); ++k) {
    const Level& lv = m.levels[k];
    const size_t pair = detail::pair_floats(lv.part);
    set->parts_.push_back(lv.part);
    set->used_.push_back(0);
    set->live_.emplace_back(static_cast<size_t>(lv.count) * inputs, 0);
    set->levels_.emplace_back(static_cast<size_t>(lv.count) * inputs * pair);
    FloatBuffer time(2 * static_cast<size_t>(lv.part));
    FloatBuffer spec(detail::spectrum_floats(lv.part));
    const float scale = 1.0f / (2.0f * static_cast<float>(lv.part));  // unnormalised FFTs
    for (uint32_t j = 0; j < lv.count; ++j) {
      const size_t begin = lv.offset + static_cast<size_t>(j) * lv.part;
      for (uint32_t i = 0; i < inputs; ++i) {
        float* dst = set->levels_[k].data() + (static_cast<size_t>(j) * inputs + i) * pair;
        for (uint32_t e = 0; e < 2; ++e) {
          const auto& f = filters[i][e];
          std::fill(time.data(), time.data() + time.size(), 0.0f);
          bool nonzero = false;
          for (size_t n = begin; n < std::min(f.size(), begin + lv.part); ++n) {
            time.data()[n - begin] = f[n] * scale;
            nonzero = nonzero || f[n] != 0.0f;
          }
          if (!nonzero) continue;  // the buffer is already zero
          set->used_[k] = std::max(set->used_[k], j + 1);
          set->live_[k][static_cast<size_t>(j) * inputs + i] = 1;
          // Input-spectrum layout (groups of 8 re, 8 im) into ear e's half of
          // each group of the pair layout.
          m.ffts[k].forward(time.data(), spec.data());
          const size_t part = lv.part;
          for (size_t g = 0; g < part; g += 8) {
            std::memcpy(dst + 4 * g + 16 * e, spec.data() + 2 * g, 16 * sizeof(float));
          }
          dst[4 * part + 2 * e] = spec.data()[2 * part];  // Nyquist
          dst[4 * part + 2 * e + 1] = spec.data()[2 * part + 1];
        }
      }
    }
  }
  return set;
}

bool Convolver::try_swap(FilterSet* next, uint32_t fade_blocks) noexcept {
  if (!impl_) return false;
  Impl& m = *impl_;
  if (m.fade.active || m.pending_retire) return false;
  if (next && next->owner() != impl_.get()) return false;  // prepared by another setup
  const uint32_t block = m.config.block;
  const int64_t t0 = static_cast<int64_t>(m.now);
  Fade& f = m.fade;
  f.active = true;
  f.from = m.current;
  f.to = next;
  f.frames = fade_blocks * block;
  f.start[0] = t0;
  int64_t last_start = t0;
  for (size_t k = 1; k < m.levels.size(); ++k) {
    const int64_t part = m.levels[k].part;
    // First chunk released after this swap: the one that ends at or after t0 + block.
    const int64_t first_chunk = (t0 + block + part - 1) / part - 1;
    f.start[k] = first_chunk * part + m.levels[k].offset;
    last_start = std::max(last_start, f.start[k]);
  }
  m.fade_end = last_start + f.frames;
  m.current = nullptr;  // owned by the fade until it ends
  return true;
}

std::unique_ptr<FilterSet> Convolver::take_retired() noexcept {
  if (!impl_) return nullptr;
  for (auto& r : impl_->retired) {
    if (FilterSet* s = r.exchange(nullptr, std::memory_order_acq_rel)) {
      return std::unique_ptr<FilterSet>(s);
    }
  }
  return nullptr;
}

bool Convolver::fading() const noexcept { return impl_ && impl_->fade.active; }

uint64_t Convolver::late_chunks() const noexcept { return impl_ ? impl_->tail->late_chunks() : 0; }

void Convolver::pause_tail_thread(bool paused) noexcept {
  if (impl_) impl_->tail->pause_helper(paused);
}

void Convolver::process(const float* const* in, float* const* out) noexcept {
  if (!impl_) {
    return;
  }
  Impl& m = *impl_;
  const Level& lv = m.levels[0];
  const uint32_t block = lv.part;
  const uint32_t inputs = m.config.inputs;
  const size_t spec = detail::spectrum_floats(lv.part);

  // Each input once into the head FDL; the tail keeps its own time history.
  float* entry = m.head_fdl.data() + static_cast<size_t>(m.fdl_pos) * inputs * spec;
  for (uint32_t i = 0; i < inputs; ++i) {
    float* window = m.head_in.data() + static_cast<size_t>(i) * 2 * block;
    std::memcpy(window, window + block, block * sizeof(float));
    std::memcpy(window + block, in[i], block * sizeof(float));
    m.ffts[0].forward(window, entry + i * spec);
  }
  m.tail->write_input(in, m.now);

  // Head: one set, or both while the head's part of the fade runs.
  const Fade& f = m.fade;
  const int64_t t = static_cast<int64_t>(m.now);
  const bool mix = f.active && t < f.start[0] + static_cast<int64_t>(f.frames);
  const FilterSet* sets[2] = {mix ? f.from : (f.active ? f.to : m.current), mix ? f.to : nullptr};
  float* y[2] = {m.head_y.data(), m.head_y.data() + 2 * block};
  for (uint32_t s = 0; s < 2; ++s) {
    if (sets[s]) m.head(*sets[s], y[s]);
  }
  for (uint32_t e = 0; e < 2; ++e) {
    if (mix) {
      std::memset(out[e], 0, block * sizeof(float));
      detail::add_faded(out[e], sets[0] ? y[0] + e * block : nullptr,
                        sets[1] ? y[1] + e * block : nullptr, block, t, f.start[0], f.frames);
    } else if (sets[0]) {
      std::memcpy(out[e], y[0] + e * block, block * sizeof(float));
    } else {
      std::memset(out[e], 0, block * sizeof(float));
    }
  }

  m.tail->add_output(m.now, out);
  m.tail->release(m.now + block, m.current, f);
  m.fdl_pos = (m.fdl_pos + 1) % lv.count;
  m.now += block;

  if (f.active && static_cast<int64_t>(m.now) >= m.fade_end) {
    m.pending_retire = f.from;
    m.current = f.to;
    m.fade.active = false;
    m.fade.from = m.fade.to = nullptr;
  }
  if (m.pending_retire) m.try_retire();
}

}  // namespace rackd::hrir
