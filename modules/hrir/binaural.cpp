// The hrir module's DSP (see binaural.hpp for who calls what on which thread).
//
// Hand-over protocol, audio thread <-> builder thread:
//  1. [rt] set_orientation() writes (yaw, pitch, roll) under a seqlock, bumps
//     requested_ and wakes the builder (a futex wake).
//  2. [builder] reads the latest orientation, builds and prepares the filters,
//     exchanges them into ready_ (taking back, and deleting, a set the audio
//     thread had not picked up yet: only the newest matters), stores built_.
//  3. [rt] process() takes ready_ into held_ when it holds none and swaps held_
//     in when the convolver is not fading; if it cannot yet, held_ waits for a
//     later block (ownership stays with the audio thread, nothing is freed).
//  4. [rt] When a fade ends the convolver retires the old set; process() wakes
//     the builder, which takes and deletes it.
#include "modules/common/gain.hpp"
#include "modules/hrir/binaural.hpp"

#include <pthread.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "shm/futex.hpp"

namespace rackd::hrir {
namespace {

using modules::db_to_linear;

// Plain stereo downmix for bypass: FL/FR at unity, centres at -3 dB to both
// ears, every other left/right speaker (sides, backs, heights) at -3 dB to its
// own side, LFE dropped.
void downmix_for(const Speaker& s, float& left, float& right) {
  constexpr float kMinus3Db = 0.70710678f;
  left = right = 0;
  if (s.lfe) return;
  if (s.name == "FL") {
    left = 1;
  } else if (s.name == "FR") {
    right = 1;
  } else if (!s.name.empty() && s.name.back() == 'L') {
    left = kMinus3Db;
  } else if (!s.name.empty() && s.name.back() == 'R') {
    right = kMinus3Db;
  } else {
    left = right = kMinus3Db;
  }
}

// Four floats, the baseline SIMD width (SSE2, NEON); the loops below are
// written with it because GCC's -O2 vectoriser leaves loops of run-time length
// alone. Unaligned: the runtime's block buffers carry no alignment promise.
typedef float v4 __attribute__((vector_size(16)));

// [rt] out[k] = in[k] * (g + step * (k + 1)): a gain ramp ending at g + n step
// (step 0: a constant gain). n is a multiple of 16 (the convolver's blocks are
// powers of two >= 16).
void scale_ramp(float* out, const float* in, uint32_t n, float g, float step) noexcept {
  v4 t = {1, 2, 3, 4};  // k + 1, exact in float for any block size
  for (uint32_t k = 0; k < n; k += 4) {
    v4 x;
    std::memcpy(&x, in + k, sizeof x);
    x *= g + step * t;
    std::memcpy(out + k, &x, sizeof x);
    t += 4;
  }
}

// [rt] out[k] += c * in[k].
void add_scaled(float* out, const float* in, uint32_t n, float c) noexcept {
  for (uint32_t k = 0; k < n; k += 4) {
    v4 x, y;
    std::memcpy(&x, in + k, sizeof x);
    std::memcpy(&y, out + k, sizeof y);
    y += c * x;
    std::memcpy(out + k, &y, sizeof y);
  }
}

}  // namespace

Binaural::Binaural() = default;

Binaural::~Binaural() {
  stop_builder();
  delete held_;
  delete ready_.exchange(nullptr);
}

void Binaural::setup(std::vector<SpeakerConfig> speakers, HrtfSet set, const BinauralConfig& config) {
  if (builder_.joinable()) throw std::logic_error("binaural: setup() called twice");
  if (speakers.empty()) throw std::invalid_argument("binaural: no speakers");
  if (config.block == 0 || config.rate_hz == 0) throw std::invalid_argument("binaural: zero block or rate");
  if (!(config.fade_ms >= 0 && config.fade_ms <= 1000)) {
    throw std::invalid_argument("binaural: fade_ms must be 0..1000");
  }
  uint32_t max_frames = 1;
  delay_frames_.clear();
  for (const SpeakerConfig& s : speakers) {
    const std::string who = "speaker " + s.speaker.name + ": ";
    if (!std::isfinite(s.speaker.dir.azimuth_deg) || !std::isfinite(s.speaker.dir.elevation_deg) ||
        std::fabs(s.speaker.dir.elevation_deg) > 90) {
      throw std::invalid_argument(who + "azimuth must be finite and elevation -90..90");
    }
    if (!(s.gain_db >= -60 && s.gain_db <= 24)) throw std::invalid_argument(who + "gain_db must be -60..24");
    if (!(s.delay_ms >= 0 && s.delay_ms <= kMaxDelayMs)) {
      throw std::invalid_argument(who + "delay_ms must be 0.." + std::to_string(static_cast<int>(kMaxDelayMs)));
    }
    const auto delay = static_cast<uint32_t>(std::lround(s.delay_ms * config.rate_hz / 1000.0));
    delay_frames_.push_back(delay);
    max_frames = std::max(max_frames, delay + (s.speaker.lfe ? 1 : set.filter_frames()));
  }

  speakers_ = std::move(speakers);
  set_ = std::make_unique<HrtfSet>(std::move(set));
  block_ = config.block;
  fade_blocks_ = static_cast<uint32_t>(std::ceil(config.fade_ms * config.rate_hz / 1000.0 / config.block));

  const uint32_t n = channels();
  conv_.setup(ConvolverConfig{n, block_, max_frames, config.tail_thread});  // checks the block
  scratch_.assign(static_cast<size_t>(n) * block_, 0.0f);
  scratch_ptrs_.resize(n);
  for (uint32_t i = 0; i < n; ++i) scratch_ptrs_[i] = scratch_.data() + static_cast<size_t>(i) * block_;
  wet_.assign(2 * static_cast<size_t>(block_), 0.0f);
  dry_.assign(2 * static_cast<size_t>(block_), 0.0f);
  downmix_.assign(2 * static_cast<size_t>(n), 0.0f);
  for (uint32_t i = 0; i < n; ++i) downmix_for(speakers_[i].speaker, downmix_[2 * i], downmix_[2 * i + 1]);
  gain_now_.assign(n, 1.0f);
  gain_target_.assign(n, 1.0f);

  // The first set at once, without a fade: the first block already uses it.
  if (!conv_.try_swap(build(Orientation{}).release(), 0)) {
    throw std::logic_error("binaural: the convolver refused its first filter set");
  }
  builder_ = std::thread([this] { builder_loop(); });
  pthread_setname_np(builder_.native_handle(), "rackd-builder");
}

std::unique_ptr<FilterSet> Binaural::build(const Orientation& o) const {
  std::vector<std::vector<std::vector<float>>> filters(speakers_.size(), std::vector<std::vector<float>>(2));
  for (size_t i = 0; i < speakers_.size(); ++i) {
    const SpeakerConfig& s = speakers_[i];
    const float g = db_to_linear(s.gain_db);
    const uint32_t delay = delay_frames_[i];
    if (s.speaker.lfe) {
      // LFE bypasses the HRTF: a (delayed) unit impulse to both ears.
      for (auto& ear : filters[i]) {
        ear.assign(delay + 1, 0.0f);
        ear[delay] = g;
      }
      continue;
    }
    const HrirPair pair = set_->filter_for(rotate(s.speaker.dir, o.yaw, o.pitch, o.roll));
    for (int e = 0; e < 2; ++e) {
      const std::vector<float>& h = e == 0 ? pair.left : pair.right;
      std::vector<float>& out = filters[i][e];
      out.assign(delay, 0.0f);
      out.reserve(delay + h.size());
      for (float x : h) out.push_back(x * g);
    }
  }
  return conv_.prepare(filters);
}

void Binaural::builder_loop() {
  // Heavy work without a deadline (a filter set per head turn: allocation,
  // FFTs, milliseconds): never real-time, whatever created this thread, so it
  // cannot hold up the audio threads or jackd. Not SCHED_BATCH/IDLE either: on
  // a busy machine those would let head tracking lag by seconds, and a late set
  // only delays a swap, it never breaks a block.
  leave_realtime();
  uint32_t done = 0;
  for (;;) {
    const uint32_t wake = wake_.load(std::memory_order_acquire);
    while (conv_.take_retired()) {
    }
    if (stop_.load(std::memory_order_acquire)) return;
    const uint32_t request = requested_.load(std::memory_order_acquire);
    if (request == done) {
      shm::futex_wait(wake_, wake, 0);  // EINTR or a spurious return: look again
      continue;
    }
    Orientation o;
    for (;;) {
      const uint32_t s1 = seq_.load(std::memory_order_acquire);
      if (s1 & 1u) {
        std::this_thread::yield();
        continue;
      }
      o = {yaw_.load(std::memory_order_relaxed), pitch_.load(std::memory_order_relaxed),
           roll_.load(std::memory_order_relaxed)};
      std::atomic_thread_fence(std::memory_order_acquire);
      if (seq_.load(std::memory_order_relaxed) == s1) break;
    }
    std::unique_ptr<FilterSet> set;
    try {
      set = build(o);
    } catch (const std::exception&) {
      // Out of memory at most (the set and the speakers were validated in
      // setup): keep the current filters; a later request tries again.
    }
    if (set) delete ready_.exchange(set.release(), std::memory_order_acq_rel);
    done = request;
    built_.store(request, std::memory_order_release);
  }
}

void Binaural::stop_builder() noexcept {
  if (!builder_.joinable()) return;
  stop_.store(true, std::memory_order_release);
  wake_builder();
  builder_.join();
}

void Binaural::wake_builder() noexcept {
  wake_.fetch_add(1, std::memory_order_release);
  // The one system call allowed here (shm::futex_wake also tells
  // RealtimeSanitizer so); only on a request or at the end of a fade.
  shm::futex_wake(wake_, 1);
}

void Binaural::set_orientation(double yaw_deg, double pitch_deg, double roll_deg) noexcept {
  if (yaw_deg == posted_.yaw && pitch_deg == posted_.pitch && roll_deg == posted_.roll) return;
  posted_ = {yaw_deg, pitch_deg, roll_deg};
  const uint32_t s = seq_.load(std::memory_order_relaxed);
  seq_.store(s + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  yaw_.store(yaw_deg, std::memory_order_relaxed);
  pitch_.store(pitch_deg, std::memory_order_relaxed);
  roll_.store(roll_deg, std::memory_order_relaxed);
  seq_.store(s + 2, std::memory_order_release);
  requested_.store(requested_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  wake_builder();
}

void Binaural::set_channel_gain_db(uint32_t channel, double db) noexcept {
  if (channel < gain_target_.size()) gain_target_[channel] = db_to_linear(db);
}

void Binaural::set_master_gain_db(double db) noexcept { master_target_ = db_to_linear(db); }

void Binaural::set_bypass(bool on) noexcept { bypass_target_ = on ? 1.0f : 0.0f; }

bool Binaural::settled() const noexcept {
  return built_.load(std::memory_order_acquire) == requested_.load(std::memory_order_relaxed) &&
         held_ == nullptr && ready_.load(std::memory_order_acquire) == nullptr && !conv_.fading();
}

void Binaural::process(const float* const* in, float* const* out) noexcept {
  // A plain load first: the exchange (a locked instruction) only when a set waits.
  if (!held_ && ready_.load(std::memory_order_relaxed)) {
    held_ = ready_.exchange(nullptr, std::memory_order_acq_rel);
  }
  if (held_ && !conv_.fading() && conv_.try_swap(held_, fade_blocks_)) {
    held_ = nullptr;
    swaps_.fetch_add(1, std::memory_order_relaxed);
  }

  // Channel gains: unity channels go to the convolver as they are (it copies
  // its input anyway); the others are scaled, or ramped when their target moved.
  const uint32_t n = block_;
  const float inv = 1.0f / static_cast<float>(n);
  const uint32_t channels = this->channels();
  for (uint32_t i = 0; i < channels; ++i) {
    const float g = gain_now_[i];
    const float target = gain_target_[i];
    if (g == target && g == 1.0f) {
      scratch_ptrs_[i] = in[i];
      continue;
    }
    float* x = scratch_.data() + static_cast<size_t>(i) * n;
    scale_ramp(x, in[i], n, g, (target - g) * inv);
    scratch_ptrs_[i] = x;
    gain_now_[i] = target;
  }

  // The convolver runs in bypass too, so leaving bypass finds its history intact.
  const bool dry = bypass_now_ > 0 || bypass_target_ > 0;
  const bool unity = !dry && master_now_ == 1.0f && master_target_ == 1.0f;
  float* wet[2] = {wet_.data(), wet_.data() + n};
  conv_.process(scratch_ptrs_.data(), unity ? out : wet);
  if (!unity) mix_output(wet, out, dry);

  const bool fading = conv_.fading();
  if (was_fading_ && !fading) wake_builder();  // a set was retired: the builder frees it
  was_fading_ = fading;
}

void Binaural::mix_output(float* const* wet, float* const* out, bool dry) noexcept {
  const uint32_t n = block_;
  const float inv = 1.0f / static_cast<float>(n);
  const uint32_t channels = this->channels();
  if (dry) {
    std::fill(dry_.begin(), dry_.end(), 0.0f);
    for (uint32_t i = 0; i < channels; ++i) {
      const float* x = scratch_ptrs_[i];
      for (uint32_t e = 0; e < 2; ++e) {
        const float c = downmix_[2 * i + e];
        if (c != 0) add_scaled(dry_.data() + static_cast<size_t>(e) * n, x, n, c);
      }
    }
  }
  const float mstep = (master_target_ - master_now_) * inv;
  const float bstep = (bypass_target_ - bypass_now_) * inv;
  for (uint32_t e = 0; e < 2; ++e) {
    if (dry) {
      // Crossfade wet -> dry by the bypass ramp, both under the master ramp.
      const float* w = wet[e];
      const float* d = dry_.data() + static_cast<size_t>(e) * n;
      float* o = out[e];
      for (uint32_t k = 0; k < n; ++k) {
        const float t = static_cast<float>(k + 1);
        const float m = master_now_ + mstep * t;
        const float b = bypass_now_ + bstep * t;
        o[k] = m * (w[k] + b * (d[k] - w[k]));
      }
    } else {
      scale_ramp(out[e], wet[e], n, master_now_, mstep);
    }
  }
  master_now_ = master_target_;
  bypass_now_ = bypass_target_;
}

}  // namespace rackd::hrir
