// The desktop device's audio side (desktop_io.hpp).
#include "server/desktop_io.hpp"

#include <algorithm>
#include <cstring>

namespace rackd::server {

DesktopIo::DesktopIo(uint32_t block, uint32_t in_channels, uint32_t out_channels, uint32_t rate_hz,
                     double fade_ms, Run run, void* ctx)
    : block_(block),
      in_ch_(std::max<uint32_t>(in_channels, 1)),
      out_ch_(std::max<uint32_t>(out_channels, 1)),
      in_cap_(2 * kMaxQuantum + 2 * block),
      out_cap_(kMaxQuantum + 2 * block),
      step_(fade_ms > 0 ? static_cast<float>(1000.0 / (fade_ms * rate_hz)) : 1.0f),
      run_(run),
      ctx_(ctx),
      in_(std::size_t{in_ch_} * in_cap_, 0.0f),
      out_(std::size_t{out_ch_} * out_cap_, 0.0f),
      scratch_(std::size_t{out_ch_} * block, 0.0f),
      in_ptrs_(in_ch_, nullptr),
      scratch_ptrs_(out_ch_, nullptr) {
  for (uint32_t c = 0; c < in_ch_; ++c) in_ptrs_[c] = in_.data() + std::size_t{c} * in_cap_;
  for (uint32_t c = 0; c < out_ch_; ++c) scratch_ptrs_[c] = scratch_.data() + std::size_t{c} * block;
}

void DesktopIo::push_input(const float* const* in, uint32_t n) noexcept {
  n = std::min(n, in_cap_);
  if (in_frames_ + n > in_cap_) {
    const uint32_t excess = in_frames_ + n - in_cap_;
    drop_input(excess);
    dropped_.fetch_add(excess, std::memory_order_relaxed);
  }
  for (uint32_t c = 0; c < in_ch_; ++c) {
    float* dst = in_.data() + std::size_t{c} * in_cap_ + in_frames_;
    if (in && in[c]) std::memcpy(dst, in[c], n * sizeof(float));
    else std::memset(dst, 0, n * sizeof(float));
  }
  in_frames_ += n;
  pushed_ = true;
}

void DesktopIo::pull_output(float* const* out, uint32_t n) noexcept {
  n = std::min(n, kMaxQuantum);
  // No input since the last output: once is a buffer that comes late (it is
  // waited for: the output below is padded); from the second time on (or
  // before anything came), the sink is delivering nothing, and silence stands
  // in for it, so the engine and every module keep their clock.
  if (pushed_) {
    missed_ = 0;
  } else if (++missed_ >= 2 || !primed_) {
    if (primed_) underrun_.fetch_add(n, std::memory_order_relaxed);
    push_input(nullptr, n);
  }
  pushed_ = false;
  bool direct = false;
  while (out_frames_ < n && in_frames_ >= block_) {
    // Quantum == block and nothing queued: the engine writes PipeWire's buffer.
    direct = out_frames_ == 0 && n == block_ && std::all_of(out, out + out_ch_, [](float* p) { return p; });
    float* const* dst = direct ? out : scratch_ptrs_.data();
    run_(ctx_, in_ptrs_.data(), dst);
    drop_input(block_);
    if (direct) break;
    for (uint32_t c = 0; c < out_ch_; ++c)
      std::memcpy(out_.data() + std::size_t{c} * out_cap_ + out_frames_, scratch_ptrs_[c], block_ * sizeof(float));
    out_frames_ += block_;
  }
  if (!direct) {
    // Short of output (a quantum smaller than the block, or input that came
    // late): what is there, then silence. The input waits in the FIFO, so
    // the stream goes on later where it stopped: latency grows, no frame is lost.
    const uint32_t have = std::min(out_frames_, n);
    if (have < n) padded_.fetch_add(n - have, std::memory_order_relaxed);
    for (uint32_t c = 0; c < out_ch_; ++c) {
      if (!out[c]) continue;
      std::memcpy(out[c], out_.data() + std::size_t{c} * out_cap_, have * sizeof(float));
      std::memset(out[c] + have, 0, (n - have) * sizeof(float));
    }
    drop_output(have);
    if (have < n && n % block_ != 0) {
      // Pad once for good: a block of silence queued behind this one gives
      // the next cycles the margin a quantum that is not a multiple of the
      // block (or a late buffer) needs, instead of a gap every few cycles.
      for (uint32_t c = 0; c < out_ch_; ++c)
        std::memset(out_.data() + std::size_t{c} * out_cap_ + out_frames_, 0, block_ * sizeof(float));
      out_frames_ += block_;
    }
  }
  primed_ = true;
  // Input piling up (capture running ahead of the output) would only add
  // latency: beyond a few buffers' worth, the oldest goes.
  const uint32_t keep = 4 * std::max(n, block_) + block_;
  if (in_frames_ > keep) {
    dropped_.fetch_add(in_frames_ - keep, std::memory_order_relaxed);
    drop_input(in_frames_ - keep);
  }
  apply_gain(out, n);
}

void DesktopIo::apply_gain(float* const* out, uint32_t n) noexcept {
  if (restart_.exchange(false, std::memory_order_acq_rel)) gain_ = 0.0f;
  const float target = target_.load(std::memory_order_acquire);
  if (gain_ == target) {
    silent_.store(gain_ == 0.0f, std::memory_order_release);
    if (gain_ == 1.0f) return;
    for (uint32_t c = 0; c < out_ch_; ++c)
      if (out[c]) std::memset(out[c], 0, n * sizeof(float));
    return;
  }
  const float step = target > gain_ ? step_ : -step_;
  float g = gain_;
  for (uint32_t i = 0; i < n; ++i) {
    g = step > 0 ? std::min(target, g + step) : std::max(target, g + step);
    for (uint32_t c = 0; c < out_ch_; ++c)
      if (out[c]) out[c][i] *= g;
  }
  gain_ = g;
  silent_.store(gain_ == 0.0f && target == 0.0f, std::memory_order_release);
}

namespace {

// [rt] Drops the first `drop` of `frames` queued frames in each of `channels`
// planar FIFOs of `cap` frames.
void drop_front(float* data, uint32_t channels, uint32_t cap, uint32_t& frames, uint32_t drop) noexcept RACKD_RT {
  drop = std::min(drop, frames);
  for (uint32_t c = 0; c < channels; ++c) {
    float* q = data + std::size_t{c} * cap;
    std::memmove(q, q + drop, (frames - drop) * sizeof(float));
  }
  frames -= drop;
}

}  // namespace

void DesktopIo::drop_input(uint32_t frames) noexcept { drop_front(in_.data(), in_ch_, in_cap_, in_frames_, frames); }

void DesktopIo::drop_output(uint32_t frames) noexcept {
  drop_front(out_.data(), out_ch_, out_cap_, out_frames_, frames);
}

}  // namespace rackd::server
