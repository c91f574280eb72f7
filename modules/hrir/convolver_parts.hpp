// Private parts of the hrir convolver, shared by convolver.cpp and
// convolver_tail.cpp: the partition plan, 64-byte aligned buffers, FFTW plan
// pairs, the spectrum layout, the frequency-domain FilterSet and the complex
// multiply-accumulate kernel. Code that deletes a FilterSet (the owner of
// prepare()/take_retired() results) includes this header so the type is
// complete.
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

// Spectrum layout. A real FFT of 2P frames has P + 1 bins; bin P (Nyquist) is
// real. Bins 0 .. P-1 are stored in groups of 8: the 8 real parts, then the 8
// imaginary parts (64 bytes, one cache line), so the kernel reads whole
// vectors without shuffles, and FFTW's interleaved output becomes this layout
// in place with two shuffles per group (no copy through a scratch array).
//  - An input spectrum ("x"): groups, then Nyquist re, im at [2P], [2P + 1].
//  - A path pair ("h", and the accumulators): one input to both ears; per group
//    left re, left im, right re, right im (8 each, 128 bytes), then Nyquist
//    left re, left im, right re, right im at [4P .. 4P + 3].
// Sizes are rounded up so every spectrum starts on a 64-byte boundary (FFTW's
// new-array execute needs the alignment of the planning arrays). P is a power
// of two >= 16: the kernel takes 16 bins a step.
constexpr size_t spectrum_floats(uint32_t part) { return 2 * static_cast<size_t>(part) + 16; }
constexpr size_t pair_floats(uint32_t part) { return 4 * static_cast<size_t>(part) + 16; }

// Floats in an FftPair scratch buffer for `part` (interleaved bins for c2r).
constexpr size_t fft_scratch_floats(uint32_t part) { return spectrum_floats(part); }

// One uniformly partitioned level: filter taps [offset, offset + count * part)
// in partitions of `part` frames, FFT size 2 * part (overlap-save). Level 0 is
// the head (part = block, offset 0, on the audio thread); level k >= 1 has
// offset >= 2 * part, so its result for an input chunk is due at least one of
// its own partitions after the chunk completes (Gardner's schedule).
struct Level {
  uint32_t part = 0;
  uint32_t offset = 0;
  uint32_t count = 0;
};

// [setup] Levels for `max_frames` taps at `block` frames per call, the
// cheapest of a family of plans under a cost model (FFTs vs multiply-
// accumulates per frame, measured with the kernels below; see the .cpp).
// Short filters get a single uniform level; long ones grow the partition by
// 2, 4 or 8 per level up to 8192.
std::vector<Level> make_levels(uint32_t inputs, uint32_t block, uint32_t max_frames);

// [setup] The plan's modelled cost in nanoseconds per frame (for the planner
// and for tests that compare plans; not a measurement).
double plan_cost_ns(uint32_t inputs, const std::vector<Level>& levels);

// r2c and c2r plans of size 2 * part, unnormalised, on FFTW's interleaved
// complex format (its SIMD real transforms run ~1.5x slower on split arrays);
// forward() rearranges into the layout above in place, inverse() from it
// through a caller-owned scratch of fft_scratch_floats(part) (the head, every
// tail level and prepare() each own one, so a plan runs on several threads at
// once). Plans are made with FFTW_MEASURE under a process-wide lock (the FFTW
// planner is not thread-safe); the new-array execute functions are.
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
  // [any] time[2P] -> spec[spectrum_floats(P)], an input spectrum; time is kept.
  void forward(float* time, float* spec) const noexcept RACKD_RT;
  // [any] Ear `ear` of pair-layout spectrum `pair` -> time[2P].
  void inverse(const float* pair, uint32_t ear, float* scratch, float* time) const noexcept RACKD_RT;

 private:
  fftwf_plan fwd_ = nullptr;
  fftwf_plan inv_ = nullptr;
  uint32_t part_ = 0;
};

// [any] acc (+)= sum over p of x[p] * h[p], complex, bins [0, part]: x[p] an
// input spectrum, h[p] and acc path pairs (one input spectrum feeds both
// ears). add = false starts from zero (pairs may be 0: acc becomes zero).
// AVX2+FMA where the CPU has them (chosen at load time), SSE2 elsewhere; the
// forward/inverse packing follows the same choice.
void mac_pairs(uint32_t part, const float* const* x, const float* const* h, uint32_t pairs,
               float* acc, bool add) noexcept RACKD_RT;

// [any] Name of the kernels in use ("avx2+fma", "sse2").
const char* mac_kernel_name() noexcept;

// [setup] Tests: run the baseline kernels even where AVX2+FMA exist (or go
// back to the native ones). Only while no convolver runs. Both produce the
// same layout, so filter sets and histories do not depend on the choice.
void use_baseline_kernels(bool baseline) noexcept;

}  // namespace detail

// Every path's filter, partitioned as the convolver's levels, in the frequency
// domain and scaled by 1 / FFT size. Immutable once prepare() returns.
class FilterSet {
 public:
  // [any] Path pair (both ears) of partition j of level k for input i.
  const float* spectrum(uint32_t k, uint32_t j, uint32_t i) const noexcept RACKD_RT {
    return levels_[k].data() + (static_cast<size_t>(j) * inputs_ + i) * detail::pair_floats(parts_[k]);
  }
  // [any] Partitions of level k holding a nonzero tap on any path; the rest
  // are skipped (shorter or all-zero filters cost less).
  uint32_t used(uint32_t k) const noexcept RACKD_RT { return used_[k]; }
  // [any] Whether partition j of level k has a nonzero tap for input i (to
  // either ear); pairs that have none are left out of the sums (an LFE path
  // of one tap, leading zeros of a delay).
  bool live(uint32_t k, uint32_t j, uint32_t i) const noexcept RACKD_RT {
    return live_[k][static_cast<size_t>(j) * inputs_ + i] != 0;
  }
  const void* owner() const noexcept RACKD_RT { return owner_; }

 private:
  friend class Convolver;
  const void* owner_ = nullptr;  // the Convolver::Impl that prepared it
  uint32_t inputs_ = 0;
  std::vector<uint32_t> parts_;
  std::vector<uint32_t> used_;
  std::vector<std::vector<uint8_t>> live_;  // [level][partition * inputs + input]
  std::vector<detail::FloatBuffer> levels_;
};

}  // namespace rackd::hrir
