// Private parts of the hrir convolver (see convolver_parts.hpp): aligned
// buffers, FFTW plan pairs, the partition planner, the MAC kernel and the
// crossfade mix. Buffers, plans and the planner run on [setup]/[control];
// mac_pairs and add_faded on the audio and tail threads [rt].
#include "modules/hrir/convolver_parts.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>

#include "modules/hrir/convolver_tail.hpp"

namespace rackd::hrir::detail {
namespace {

// The FFTW planner (plan creation and destruction) is not thread-safe; every
// convolver in the process plans under this lock. Execution needs no lock.
std::mutex& fftw_planner_lock() {
  static std::mutex m;
  return m;
}

constexpr uint32_t kMaxPart = 8192;

// Rough cost per output frame, in units of one complex multiply-accumulate:
// every level does inputs + 2 real FFTs of 2P frames per P frames, and
// 2 * inputs * count complex MACs per frame.
double level_cost(uint32_t inputs, const Level& l) {
  // One real FFT of N frames ~ kFftPerLog * N log2 N MAC-units (measured on an
  // AVX2 VM with FFTW_MEASURE against mac_pairs: 0.4 .. 1.0, depending on cache).
  constexpr double kFftPerLog = 0.8;
  const double fft = (inputs + 2.0) * 2.0 * std::log2(2.0 * l.part) * kFftPerLog;
  const double mac = 2.0 * inputs * l.count * (l.part + 1.0) / l.part;
  return fft + mac;
}

double plan_cost(uint32_t inputs, const std::vector<Level>& levels) {
  double c = 0;
  for (const Level& l : levels) c += level_cost(inputs, l);
  // Each extra level adds scheduling and a thread handoff.
  return c * (1.0 + 0.03 * static_cast<double>(levels.size() - 1));
}

Level make_level(uint32_t part, uint32_t offset, uint32_t count) {
  return Level{part, offset, count, spectrum_stride(part)};
}

}  // namespace

FloatBuffer::FloatBuffer(size_t size) : size_(size) {
  if (size == 0) return;
  const size_t bytes = ((size * sizeof(float)) + 63) / 64 * 64;
  data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (!data_) throw std::bad_alloc();
  std::memset(data_, 0, bytes);
}

FloatBuffer& FloatBuffer::operator=(FloatBuffer&& o) noexcept {
  if (this != &o) {
    std::free(data_);
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

FloatBuffer::~FloatBuffer() { std::free(data_); }

FftPair::FftPair(uint32_t part) : part_(part) {
  FloatBuffer time(2 * static_cast<size_t>(part));
  FloatBuffer scratch(fft_scratch_floats(part));
  auto* cplx = reinterpret_cast<fftwf_complex*>(scratch.data());
  const int n = static_cast<int>(2 * part);
  std::lock_guard<std::mutex> lock(fftw_planner_lock());
  // FFTW_MEASURE overwrites the arrays while planning; they are scratch here.
  fwd_ = fftwf_plan_dft_r2c_1d(n, time.data(), cplx, FFTW_MEASURE);
  inv_ = fftwf_plan_dft_c2r_1d(n, cplx, time.data(), FFTW_MEASURE);
  if (!fwd_ || !inv_) throw std::runtime_error("convolver: FFTW could not plan a real FFT of " +
                                               std::to_string(n) + " frames");
}

void FftPair::forward(float* time, float* scratch, float* re, float* im) const noexcept {
  fftwf_execute_dft_r2c(fwd_, time, reinterpret_cast<fftwf_complex*>(scratch));
  for (uint32_t k = 0; k <= part_; ++k) {
    re[k] = scratch[2 * k];
    im[k] = scratch[2 * k + 1];
  }
}

void FftPair::inverse(const float* re, const float* im, float* scratch, float* time) const noexcept {
  for (uint32_t k = 0; k <= part_; ++k) {
    scratch[2 * k] = re[k];
    scratch[2 * k + 1] = im[k];
  }
  fftwf_execute_dft_c2r(inv_, reinterpret_cast<fftwf_complex*>(scratch), time);
}

FftPair::~FftPair() {
  if (!fwd_ && !inv_) return;
  std::lock_guard<std::mutex> lock(fftw_planner_lock());
  if (fwd_) fftwf_destroy_plan(fwd_);
  if (inv_) fftwf_destroy_plan(inv_);
}

std::vector<Level> make_levels(uint32_t inputs, uint32_t block, uint32_t max_frames) {
  const uint32_t frames = std::max<uint32_t>(max_frames, 1);
  std::vector<Level> best{make_level(block, 0, (frames + block - 1) / block)};
  double best_cost = plan_cost(inputs, best);
  // Non-uniform: head of 2r blocks, then levels of r^k blocks, each starting
  // at twice its partition; the last level takes whatever remains.
  for (uint32_t ratio : {2u, 4u}) {
    std::vector<Level> levels{make_level(block, 0, 2 * ratio)};
    for (uint32_t part = ratio * block; part <= kMaxPart && 2 * part < frames; part *= ratio) {
      std::vector<Level> candidate = levels;
      candidate.push_back(make_level(part, 2 * part, (frames - 2 * part + part - 1) / part));
      const double cost = plan_cost(inputs, candidate);
      if (cost < best_cost) {
        best_cost = cost;
        best = candidate;
      }
      levels.push_back(make_level(part, 2 * part, 2 * (ratio - 1)));
    }
  }
  return best;
}

namespace {
typedef float v8 __attribute__((vector_size(32), may_alias));
}  // namespace

// Sixteen bins at a time with the four accumulators (left/right, re/im, two
// vectors each) in registers across all pairs; the clone for AVX2+FMA is picked
// at load time, the default one runs everywhere else.
__attribute__((target_clones("arch=haswell", "default")))
void mac_pairs(uint32_t part, uint32_t stride, const float* const* x, const float* const* h,
               uint32_t pairs, float* acc, bool add) noexcept {
  float* const lr = acc;
  float* const li = acc + stride;
  float* const rr = acc + 2 * static_cast<size_t>(stride);
  float* const ri = acc + 3 * static_cast<size_t>(stride);
  const size_t s = stride;
  for (uint32_t b = 0; b < part; b += 16) {
    v8 lr0{}, lr1{}, li0{}, li1{}, rr0{}, rr1{}, ri0{}, ri1{};
    if (add) {
      lr0 = *reinterpret_cast<const v8*>(lr + b);
      lr1 = *reinterpret_cast<const v8*>(lr + b + 8);
      li0 = *reinterpret_cast<const v8*>(li + b);
      li1 = *reinterpret_cast<const v8*>(li + b + 8);
      rr0 = *reinterpret_cast<const v8*>(rr + b);
      rr1 = *reinterpret_cast<const v8*>(rr + b + 8);
      ri0 = *reinterpret_cast<const v8*>(ri + b);
      ri1 = *reinterpret_cast<const v8*>(ri + b + 8);
    }
    for (uint32_t p = 0; p < pairs; ++p) {
      const float* xp = x[p] + b;
      const float* hp = h[p] + b;
      const v8 xr0 = *reinterpret_cast<const v8*>(xp);
      const v8 xr1 = *reinterpret_cast<const v8*>(xp + 8);
      const v8 xi0 = *reinterpret_cast<const v8*>(xp + s);
      const v8 xi1 = *reinterpret_cast<const v8*>(xp + s + 8);
      const v8 hlr0 = *reinterpret_cast<const v8*>(hp);
      const v8 hlr1 = *reinterpret_cast<const v8*>(hp + 8);
      const v8 hli0 = *reinterpret_cast<const v8*>(hp + s);
      const v8 hli1 = *reinterpret_cast<const v8*>(hp + s + 8);
      lr0 += xr0 * hlr0 - xi0 * hli0;
      lr1 += xr1 * hlr1 - xi1 * hli1;
      li0 += xr0 * hli0 + xi0 * hlr0;
      li1 += xr1 * hli1 + xi1 * hlr1;
      const v8 hrr0 = *reinterpret_cast<const v8*>(hp + 2 * s);
      const v8 hrr1 = *reinterpret_cast<const v8*>(hp + 2 * s + 8);
      const v8 hri0 = *reinterpret_cast<const v8*>(hp + 3 * s);
      const v8 hri1 = *reinterpret_cast<const v8*>(hp + 3 * s + 8);
      rr0 += xr0 * hrr0 - xi0 * hri0;
      rr1 += xr1 * hrr1 - xi1 * hri1;
      ri0 += xr0 * hri0 + xi0 * hrr0;
      ri1 += xr1 * hri1 + xi1 * hrr1;
    }
    *reinterpret_cast<v8*>(lr + b) = lr0;
    *reinterpret_cast<v8*>(lr + b + 8) = lr1;
    *reinterpret_cast<v8*>(li + b) = li0;
    *reinterpret_cast<v8*>(li + b + 8) = li1;
    *reinterpret_cast<v8*>(rr + b) = rr0;
    *reinterpret_cast<v8*>(rr + b + 8) = rr1;
    *reinterpret_cast<v8*>(ri + b) = ri0;
    *reinterpret_cast<v8*>(ri + b + 8) = ri1;
  }
  // The Nyquist bin (index part) is left over; it is real for real signals,
  // but the products are formed in full for clarity.
  float sums[4] = {0, 0, 0, 0};
  if (add) sums[0] = lr[part], sums[1] = li[part], sums[2] = rr[part], sums[3] = ri[part];
  for (uint32_t p = 0; p < pairs; ++p) {
    const float xr = x[p][part], xi = x[p][s + part];
    const float* hp = h[p];
    sums[0] += xr * hp[part] - xi * hp[s + part];
    sums[1] += xr * hp[s + part] + xi * hp[part];
    sums[2] += xr * hp[2 * s + part] - xi * hp[3 * s + part];
    sums[3] += xr * hp[3 * s + part] + xi * hp[2 * s + part];
  }
  lr[part] = sums[0];
  li[part] = sums[1];
  rr[part] = sums[2];
  ri[part] = sums[3];
}

void add_faded(float* out, const float* a, const float* b, uint32_t frames, int64_t t,
               int64_t start, uint32_t fade) noexcept {
  for (uint32_t n = 0; n < frames; ++n) {
    const int64_t since = t + n - start;  // frames since the fade began
    float w;
    if (since < 0) {
      w = 0.0f;
    } else if (fade == 0 || since + 1 >= static_cast<int64_t>(fade)) {
      w = 1.0f;
    } else {
      w = static_cast<float>(since + 1) / static_cast<float>(fade);
    }
    const float va = a ? a[n] : 0.0f;
    const float vb = b ? b[n] : 0.0f;
    out[n] += va + w * (vb - va);
  }
}

}  // namespace rackd::hrir::detail
