// Private parts of the hrir convolver, shared by convolver.cpp and
// convolver_tail.cpp: the partition plan, 64-byte aligned buffers, FFTW plan
// pairs, the frequency-domain FilterSet and the complex multiply-accumulate
// kernel. Code that deletes a FilterSet (the owner of prepare()/take_retired()
// results) includes this header so the type is complete.
// Threads: plans and FilterSets are built on [setup]/[control]; afterwards the
// audio thread and the tail thread only read them.
#pragma once

#include <fftw3.h>

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "shm/rt.hpp"

namespace rackd::hrir {

namespace detail {

// Owning, zeroed, 64-byte aligned float array. Allocated in setup/control only.
class FloatBuffer {
 public:
  FloatBuffer() = default;
  explicit FloatBuffer(size_t size);
  FloatBuffer(FloatBuffer&& o) noexcept : data_(o.data_), size_(o.size_) { o.data_ = nullptr; o.size_ = 0; }
  FloatBuffer& operator=(FloatBuffer&& o) noexcept;
  FloatBuffer(const FloatBuffer&) = delete;
  FloatBuffer& operator=(const FloatBuffer&) = delete;
  ~FloatBuffer();
  float* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }

 private:
  float* data_ = nullptr;
  size_t size_ = 0;
};

// Floats per half (re or im) of a spectrum of `part` + 1 bins, rounded up so
// every half starts on a 64-byte boundary (FFTW's new-array execute needs the
// alignment of the planning arrays; the kernel loads 16 bins at a time).
constexpr uint32_t spectrum_stride(uint32_t part) { return (part + 1 + 15) & ~15u; }

// Floats in an FftPair scratch buffer for `part`.
constexpr size_t fft_scratch_floats(uint32_t part) { return 2 * static_cast<size_t>(spectrum_stride(part)); }

// One uniformly partitioned level: filter taps [offset, offset + count * part)
// in partitions of `part` frames, FFT size 2 * part (overlap-save). Level 0 is
// the head (part = block, offset 0, on the audio thread); level k >= 1 has
// offset = 2 * part, so its result for an input chunk is due one of its own
// partitions after the chunk completes (Gardner's schedule).
struct Level {
  uint32_t part = 0;
  uint32_t offset = 0;
  uint32_t count = 0;
  uint32_t stride = 0;  // spectrum_stride(part)
};

// [setup] Levels for `max_frames` taps at `block` frames per call, chosen by a
// rough cost model (FFT vs multiply-accumulate per frame). Short filters get a
// single uniform level; long ones grow the partition by 4 per level up to 8192.
std::vector<Level> make_levels(uint32_t inputs, uint32_t block, uint32_t max_frames);

// r2c and c2r plans of size 2 * part, unnormalised. FFTW's SIMD real
// transforms want interleaved complex data (split arrays run ~1.5x slower), so
// the plans are interleaved and forward()/inverse() convert to and from the
// split layout the MAC kernel uses, through a caller-owned scratch of
// 2 * (part + 1) floats (the head, every tail level and prepare() each own one,
// so a plan runs on several threads at once). Plans are made with
// FFTW_MEASURE under a process-wide lock (the FFTW planner is not
// thread-safe); the new-array execute functions are.
class FftPair {
 public:
  FftPair() = default;
  explicit FftPair(uint32_t part);
  FftPair(FftPair&& o) noexcept : fwd_(o.fwd_), inv_(o.inv_), part_(o.part_) { o.fwd_ = o.inv_ = nullptr; }
  FftPair& operator=(FftPair&& o) noexcept {
    std::swap(fwd_, o.fwd_);
    std::swap(inv_, o.inv_);
    std::swap(part_, o.part_);
    return *this;
  }
  FftPair(const FftPair&) = delete;
  ~FftPair();
  // [any] time[2P] -> re/im[P+1]; time is kept.
  void forward(float* time, float* scratch, float* re, float* im) const noexcept RACKD_RT;
  // [any] re/im[P+1] -> time[2P].
  void inverse(const float* re, const float* im, float* scratch, float* time) const noexcept RACKD_RT;

 private:
  fftwf_plan fwd_ = nullptr;
  fftwf_plan inv_ = nullptr;
  uint32_t part_ = 0;
};

// [any] acc (+)= sum over p of x[p] * h[p], split complex over bins [0, part].
// x[p]: re at x[p], im at x[p] + stride. h[p] and acc: left re, left im,
// right re, right im, each `stride` apart: one input spectrum feeds both ears.
// add = false starts from zero (pairs may be 0: acc becomes zero).
void mac_pairs(uint32_t part, uint32_t stride, const float* const* x, const float* const* h,
               uint32_t pairs, float* acc, bool add) noexcept RACKD_RT;

}  // namespace detail

// Every path's filter, partitioned as the convolver's levels, in the frequency
// domain and scaled by 1 / FFT size. Immutable once prepare() returns.
class FilterSet {
 public:
  // [any] Spectrum (left re, left im, right re, right im) of partition j of
  // level k for input i.
  const float* spectrum(uint32_t k, uint32_t j, uint32_t i) const noexcept RACKD_RT {
    return levels_[k].data() + (static_cast<size_t>(j) * inputs_ + i) * 4 * strides_[k];
  }
  // [any] Partitions of level k holding a nonzero tap on any path; the rest
  // are skipped (shorter or all-zero filters cost less).
  uint32_t used(uint32_t k) const noexcept RACKD_RT { return used_[k]; }
  const void* owner() const noexcept RACKD_RT { return owner_; }

 private:
  friend class Convolver;
  const void* owner_ = nullptr;  // the Convolver::Impl that prepared it
  uint32_t inputs_ = 0;
  std::vector<uint32_t> strides_;
  std::vector<uint32_t> used_;
  std::vector<detail::FloatBuffer> levels_;
};

}  // namespace rackd::hrir
