// Private parts of the hrir convolver (see convolver_parts.hpp): aligned
// buffers, FFTW plan pairs and the spectrum layout, the partition planner, the
// MAC kernel and the crossfade mix. Buffers, plans and the planner run on
// [setup]/[control]; FftPair::forward/inverse, mac_pairs and add_faded on the
// audio and tail threads [rt].
#include "modules/hrir/convolver_parts.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>

#include "modules/hrir/convolver_tail.hpp"

namespace rackd::hrir::detail {
namespace {

// The FFTW planner (plan creation and destruction) is not thread-safe; every
// convolver in the process plans under this lock. Execution needs no lock.
std::mutex& fftw_planner_lock() {
  static std::mutex m;
  return m;
}

// ---------------------------------------------------------------------------
// Kernels. Written once with GCC/clang vector types and compiled twice: for
// AVX2+FMA (8 floats a vector, fused multiply-adds) and for the baseline
// (SSE2: the compiler splits each 8-float vector in two). The choice is made
// once, at load time, from the CPU's feature bits: target_clones("arch=...")
// would test the CPU *model* (an AMD Zen 4 is no "haswell" and would get the
// baseline), so the dispatch is by hand.

typedef float v8 __attribute__((vector_size(32), may_alias));

// Vectors are reached through references, never passed or returned by value,
// so no function here has a vector in its calling convention (which AVX would
// change: GCC's psabi note).
__attribute__((always_inline)) inline const v8& vec(const float* p) noexcept {
  return *reinterpret_cast<const v8*>(p);
}
__attribute__((always_inline)) inline v8& vec(float* p) noexcept { return *reinterpret_cast<v8*>(p); }

// Sixteen bins (two groups) a step, with the eight accumulators (left/right,
// re/im, two groups) in registers across all pairs. Each accumulator takes two
// fused multiply-adds per pair, so the dependency chain (2 x 4 cycles) matches
// the throughput of the sixteen (two per cycle): written as separate `+=`/`-=`
// so the compiler contracts each into one FMA rather than mul, fmsub, add.
__attribute__((always_inline)) inline void mac_body(uint32_t part, const float* const* x,
                                                    const float* const* h, uint32_t pairs,
                                                    float* acc, bool add) noexcept {
  for (uint32_t b = 0; b < part; b += 16) {
    float* a = acc + 4 * static_cast<size_t>(b);  // group g at a + 32 g: lr, li, rr, ri
    const v8 zero{};
    v8 lr0 = add ? vec(a) : zero, li0 = add ? vec(a + 8) : zero;
    v8 rr0 = add ? vec(a + 16) : zero, ri0 = add ? vec(a + 24) : zero;
    v8 lr1 = add ? vec(a + 32) : zero, li1 = add ? vec(a + 40) : zero;
    v8 rr1 = add ? vec(a + 48) : zero, ri1 = add ? vec(a + 56) : zero;
    for (uint32_t p = 0; p < pairs; ++p) {
      const float* xp = x[p] + 2 * static_cast<size_t>(b);  // group g at xp + 16 g: re, im
      const float* hp = h[p] + 4 * static_cast<size_t>(b);
      const v8 xr0 = vec(xp), xi0 = vec(xp + 8), xr1 = vec(xp + 16), xi1 = vec(xp + 24);
      const v8 hlr0 = vec(hp), hli0 = vec(hp + 8), hrr0 = vec(hp + 16), hri0 = vec(hp + 24);
      lr0 += xr0 * hlr0;
      lr0 -= xi0 * hli0;
      li0 += xr0 * hli0;
      li0 += xi0 * hlr0;
      rr0 += xr0 * hrr0;
      rr0 -= xi0 * hri0;
      ri0 += xr0 * hri0;
      ri0 += xi0 * hrr0;
      const v8 hlr1 = vec(hp + 32), hli1 = vec(hp + 40), hrr1 = vec(hp + 48), hri1 = vec(hp + 56);
      lr1 += xr1 * hlr1;
      lr1 -= xi1 * hli1;
      li1 += xr1 * hli1;
      li1 += xi1 * hlr1;
      rr1 += xr1 * hrr1;
      rr1 -= xi1 * hri1;
      ri1 += xr1 * hri1;
      ri1 += xi1 * hrr1;
    }
    vec(a) = lr0;
    vec(a + 8) = li0;
    vec(a + 16) = rr0;
    vec(a + 24) = ri0;
    vec(a + 32) = lr1;
    vec(a + 40) = li1;
    vec(a + 48) = rr1;
    vec(a + 56) = ri1;
  }
  // The Nyquist bin: real for real signals (imaginary parts are zero), but the
  // products are formed in full for clarity.
  float* a = acc + 4 * static_cast<size_t>(part);
  float s[4] = {0, 0, 0, 0};
  if (add) s[0] = a[0], s[1] = a[1], s[2] = a[2], s[3] = a[3];
  for (uint32_t p = 0; p < pairs; ++p) {
    const float xr = x[p][2 * static_cast<size_t>(part)], xi = x[p][2 * static_cast<size_t>(part) + 1];
    const float* hp = h[p] + 4 * static_cast<size_t>(part);
    s[0] += xr * hp[0] - xi * hp[1];
    s[1] += xr * hp[1] + xi * hp[0];
    s[2] += xr * hp[2] - xi * hp[3];
    s[3] += xr * hp[3] + xi * hp[2];
  }
  a[0] = s[0], a[1] = s[1], a[2] = s[2], a[3] = s[3];
}

// FFTW's interleaved bins (re0 im0 re1 im1 ...) to groups of 8 re, 8 im, in place.
__attribute__((always_inline)) inline void pack_body(float* spec, uint32_t part) noexcept {
  for (uint32_t g = 0; g < part; g += 8) {
    float* p = spec + 2 * static_cast<size_t>(g);
    const v8 a = vec(p), b = vec(p + 8);
    vec(p) = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
    vec(p + 8) = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
  }
}

// One ear of a pair-layout spectrum back to FFTW's interleaved bins.
__attribute__((always_inline)) inline void unpack_body(const float* pair, uint32_t ear, float* out,
                                                       uint32_t part) noexcept {
  for (uint32_t g = 0; g < part; g += 8) {
    const float* src = pair + 4 * static_cast<size_t>(g) + 16 * ear;
    const v8 re = vec(src), im = vec(src + 8);
    float* o = out + 2 * static_cast<size_t>(g);
    vec(o) = __builtin_shufflevector(re, im, 0, 8, 1, 9, 2, 10, 3, 11);
    vec(o + 8) = __builtin_shufflevector(re, im, 4, 12, 5, 13, 6, 14, 7, 15);
  }
  out[2 * static_cast<size_t>(part)] = pair[4 * static_cast<size_t>(part) + 2 * ear];
  out[2 * static_cast<size_t>(part) + 1] = pair[4 * static_cast<size_t>(part) + 2 * ear + 1];
}

// The x86 AVX2+FMA builds of the kernels; elsewhere the same code again.
#if defined(__x86_64__) || defined(__i386__)
#define RACKD_HRIR_AVX2 __attribute__((target("avx2,fma")))
#else
#define RACKD_HRIR_AVX2
#endif
RACKD_HRIR_AVX2 void mac_avx2(uint32_t part, const float* const* x, const float* const* h,
                              uint32_t pairs, float* acc, bool add) noexcept {
  mac_body(part, x, h, pairs, acc, add);
}
void mac_base(uint32_t part, const float* const* x, const float* const* h, uint32_t pairs,
              float* acc, bool add) noexcept {
  mac_body(part, x, h, pairs, acc, add);
}
RACKD_HRIR_AVX2 void pack_avx2(float* spec, uint32_t part) noexcept { pack_body(spec, part); }
void pack_base(float* spec, uint32_t part) noexcept { pack_body(spec, part); }
RACKD_HRIR_AVX2 void unpack_avx2(const float* pair, uint32_t ear, float* out, uint32_t part) noexcept {
  unpack_body(pair, ear, out, part);
}
void unpack_base(const float* pair, uint32_t ear, float* out, uint32_t part) noexcept {
  unpack_body(pair, ear, out, part);
}
#undef RACKD_HRIR_AVX2

bool cpu_has_avx2_fma() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();  // may run before the constructors that would call it
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

// Set during static initialisation; changed afterwards only by
// use_baseline_kernels() (tests), while no convolver runs.
const bool g_cpu_avx2 = cpu_has_avx2_fma();
bool g_avx2 = g_cpu_avx2;

// ---------------------------------------------------------------------------
// The planner's cost model, nanoseconds per output frame, measured on an AMD
// EPYC (Zen 4) with the kernels above and FFTW 3.3.10 (FFTW_MEASURE):
//  - one real FFT of N = 2P frames, forward with packing or inverse with
//    unpacking: ~40 ns + 0.068 ns * N log2 N while its data stays in L1/L2
//    (101 ns at P = 64, 1.7 us at P = 1024), ~1.45x the second term beyond
//    (P >= 4096: 12 us, 24 us at P = 8192);
//  - one complex multiply-accumulate of a bin into both ears: ~0.24 ns while
//    the level's spectra (filter and input history) stay in L2, rising to
//    ~0.32 ns when they stream from L3 (a few MB; the hardware prefetchers
//    follow the two streams per pair, software prefetch only slowed it);
//  - per level, a fixed share for its scheduling, its slot handoff and output
//    mixing (about 1.5 ns a frame).
// Whole plans measure 10-25% above the model (cache traffic between levels),
// alike for the candidates, so the choice holds: 48000 taps, 8 inputs, block
// 256, the chosen 8x256 + 6x1024 + 10x4096 ran at 127 ns a frame, five other
// plans (zita-convolver's shape among them) at 145-159. Only the ratios
// matter; an AVX2 Intel core gives similar ones.
constexpr uint32_t kMaxPart = 8192;
constexpr double kFftNs = 40.0;
constexpr double kFftNsPerNLogN = 0.068;
constexpr double kMacNsInCache = 0.24;
constexpr double kMacNsStreaming = 0.32;
constexpr double kLevelNs = 1.5;

double fft_ns(uint32_t part) {
  const double n = 2.0 * part;
  return kFftNs + kFftNsPerNLogN * n * std::log2(n) * (part >= 4096 ? 1.45 : 1.0);
}

double level_ns_per_frame(uint32_t inputs, uint32_t part, uint32_t count) {
  // Bytes the level's MAC reads per pass: filter pairs and input spectra.
  const double bytes = 4.0 * count * inputs * (pair_floats(part) + spectrum_floats(part));
  const double t = std::clamp((std::log2(std::max(bytes, 1.0)) - 19.0) / 3.0, 0.0, 1.0);  // 512 KB .. 4 MB
  const double mac = kMacNsInCache + t * (kMacNsStreaming - kMacNsInCache);
  const double fft = (inputs + 2.0) * fft_ns(part);  // every input forward, both ears back
  return (fft + mac * inputs * count * (part + 1.0)) / part + kLevelNs;
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
  if (part < 16 || (part & (part - 1)) != 0) {
    throw std::invalid_argument("convolver: partition " + std::to_string(part) +
                                " is not a power of two >= 16");
  }
  FloatBuffer time(2 * static_cast<size_t>(part));
  FloatBuffer spec(spectrum_floats(part));
  auto* cplx = reinterpret_cast<fftwf_complex*>(spec.data());
  const int n = static_cast<int>(2 * part);
  std::lock_guard<std::mutex> lock(fftw_planner_lock());
  // FFTW_MEASURE overwrites the arrays while planning; they are scratch here.
  fwd_ = fftwf_plan_dft_r2c_1d(n, time.data(), cplx, FFTW_MEASURE);
  inv_ = fftwf_plan_dft_c2r_1d(n, cplx, time.data(), FFTW_MEASURE);
  if (!fwd_ || !inv_) throw std::runtime_error("convolver: FFTW could not plan a real FFT of " +
                                               std::to_string(n) + " frames");
}

void FftPair::forward(float* time, float* spec) const noexcept {
  fftwf_execute_dft_r2c(fwd_, time, reinterpret_cast<fftwf_complex*>(spec));
  if (g_avx2) {
    pack_avx2(spec, part_);
  } else {
    pack_base(spec, part_);
  }
}

void FftPair::inverse(const float* pair, uint32_t ear, float* scratch, float* time) const noexcept {
  if (g_avx2) {
    unpack_avx2(pair, ear, scratch, part_);
  } else {
    unpack_base(pair, ear, scratch, part_);
  }
  fftwf_execute_dft_c2r(inv_, reinterpret_cast<fftwf_complex*>(scratch), time);
}

FftPair::~FftPair() {
  if (!fwd_ && !inv_) return;
  std::lock_guard<std::mutex> lock(fftw_planner_lock());
  if (fwd_) fftwf_destroy_plan(fwd_);
  if (inv_) fftwf_destroy_plan(inv_);
}

void mac_pairs(uint32_t part, const float* const* x, const float* const* h, uint32_t pairs,
               float* acc, bool add) noexcept {
  if (g_avx2) {
    mac_avx2(part, x, h, pairs, acc, add);
  } else {
    mac_base(part, x, h, pairs, acc, add);
  }
}

const char* mac_kernel_name() noexcept { return g_avx2 ? "avx2+fma" : "sse2"; }

void use_baseline_kernels(bool baseline) noexcept { g_avx2 = g_cpu_avx2 && !baseline; }

double plan_cost_ns(uint32_t inputs, const std::vector<Level>& levels) {
  double c = 0;
  for (const Level& l : levels) c += level_ns_per_frame(inputs, l.part, l.count);
  return c;
}

// Dynamic programming over (partition, offset): the cheapest way to cover taps
// [offset, frames) with levels whose first has partition `part`, each later
// level k starting at a tap offset >= 2 P_k (its result is then due one
// partition after its input chunk completes) and growing the partition by 2, 4
// or 8 up to kMaxPart. The head (offset 0) has no such bound. A level followed
// by another has at most kMaxCount partitions (this bounds the search; the
// plans the model prefers stay far below it); the last one takes whatever
// remains. Milliseconds for HRTF and room lengths, ~0.3 s at 2^20 taps and
// block 16.
std::vector<Level> make_levels(uint32_t inputs, uint32_t block, uint32_t max_frames) {
  constexpr uint32_t kMaxCount = 64;
  const uint32_t frames = std::max<uint32_t>(max_frames, 1);
  struct Choice {
    double cost = 0;
    uint32_t count = 0;
    uint32_t next_part = 0;  // 0: the last level
  };
  std::map<std::pair<uint32_t, uint32_t>, Choice> memo;
  auto solve = [&](auto& self, uint32_t part, uint32_t offset) -> Choice {
    const auto key = std::make_pair(part, offset);
    if (auto it = memo.find(key); it != memo.end()) return it->second;
    const uint32_t rest = (frames - offset + part - 1) / part;
    Choice best{level_ns_per_frame(inputs, part, rest), rest, 0};
    for (uint32_t count = 1; count < rest && count <= kMaxCount; ++count) {
      const double here = level_ns_per_frame(inputs, part, count);
      if (here >= best.cost) break;  // grows with count
      const uint32_t end = offset + count * part;
      for (uint32_t next = 2 * part; next <= std::min(8 * part, kMaxPart); next *= 2) {
        if (end < 2 * next) break;
        const double c = here + self(self, next, end).cost;
        if (c < best.cost) best = Choice{c, count, next};
      }
    }
    memo.emplace(key, best);
    return best;
  };
  std::vector<Level> levels;
  uint32_t part = block, offset = 0;
  for (;;) {
    const Choice c = solve(solve, part, offset);
    levels.push_back(Level{part, offset, c.count});
    if (c.next_part == 0) break;
    offset += c.count * part;
    part = c.next_part;
  }
  return levels;
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
