// The null device back-end of a live run (live_device.hpp): rackd's own paced
// device, for machines without a sound card, CI, and a hop count equal to a
// chain of JACK clients on jackd's dummy driver (no sound server in between).
// One thread of rackd's, at SCHED_FIFO where allowed, sleeps to each period
// boundary with clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME), as jackd's
// dummy driver does, and runs one graph cycle with silent input; the output
// goes nowhere. Threads: [setup] for the class, the device thread in loop()
// and cycle() ([rt]).
//
// Late cycles. Cycle k starts at boundary t_k = anchor + k * block / rate and
// must be done by t_(k+1), when a device would play it. A cycle that finishes
// after that (it woke late, or ran long) is one xrun; the next cycle then
// starts at once. When it finishes more than a period late, the boundaries
// that passed meanwhile are skipped (their cycles are missed, one xrun each)
// and the next cycle runs for the last boundary that passed, so the device
// never tries to make up for lost time by running cycles back to back.
#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <thread>

#include "server/live_device.hpp"
#include "shm/futex.hpp"
#include "shm/layout.hpp"

namespace rackd::server {
namespace {

constexpr uint64_t kNsPerS = 1'000'000'000;

class NullDevice final : public LiveDevice {
 public:
  explicit NullDevice(const DeviceRequest& r)
      : request_(r),
        out_(static_cast<std::size_t>(r.output_channels) * r.block_frames, 0.0f),
        out_ptrs_(std::max<uint32_t>(r.output_channels, 1), nullptr) {
    for (uint32_t c = 0; c < r.output_channels; ++c) out_ptrs_[c] = out_.data() + std::size_t{c} * r.block_frames;
  }
  ~NullDevice() override { stop(); }

  std::string name() const override { return "rackd: null"; }
  // Every channel the patch reads, all silent.
  uint32_t input_channels() const override { return request_.input_channels; }

  bool start(LiveState& state, std::string& error) override {
    try {
      thread_ = std::thread([this, &state] { loop(state); });
    } catch (const std::system_error& e) {
      error = std::string("null device: cannot start its thread: ") + e.what();
      return false;
    }
    pthread_setname_np(thread_.native_handle(), "rackd-null");
    // The thread reports whether it got SCHED_FIFO before its first cycle.
    for (int i = 0; i < 2000 && !ready_.load(std::memory_order_acquire); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return true;
  }

  bool active() override { return thread_.joinable(); }

  void stop() override {
    stop_.store(true, std::memory_order_relaxed);
    if (thread_.joinable()) thread_.join();
  }

  std::string note() const override {
    if (!ready_.load(std::memory_order_acquire)) return "warning: the null device's thread did not start in time";
    if (request_.priority <= 0) return "warning: the null device's thread is not real-time (--rt-priority 0)";
    if (refused_)
      return "warning: the null device's thread is not real-time (SCHED_FIFO " + std::to_string(request_.priority) +
             " refused: " + refused_ + "); expect late cycles";
    return "null device thread at SCHED_FIFO " + std::to_string(request_.priority);
  }

 private:
  // [device] Boundary k, exact in frames (no drift from a rounded period).
  uint64_t boundary_ns(uint64_t k) const noexcept {
    const unsigned __int128 frames = static_cast<unsigned __int128>(k) * request_.block_frames;
    return anchor_ns_ + static_cast<uint64_t>(frames * kNsPerS / request_.rate_hz);
  }
  // [device] The last boundary at or before `t_ns`.
  uint64_t index_at(uint64_t t_ns) const noexcept {
    if (t_ns < anchor_ns_) return 0;
    const unsigned __int128 ns = t_ns - anchor_ns_;
    return static_cast<uint64_t>(ns * request_.rate_hz / (static_cast<unsigned __int128>(kNsPerS) *
                                                          request_.block_frames));
  }

  // [device] The device thread: sleeps to each boundary, runs a cycle, counts
  // late and missed ones. The sleep is outside the real-time section (cycle()),
  // as a sound server's poll between two callbacks is.
  void loop(LiveState& state) noexcept {
    enable_ftz_daz();
    const char* why = nullptr;
    if (request_.priority > 0 && !try_realtime_priority(request_.priority, &why)) refused_ = why ? why : "refused";
    anchor_ns_ = shm::now_ns();
    ready_.store(true, std::memory_order_release);
    uint64_t k = 0;
    while (!stop_.load(std::memory_order_relaxed)) {
      const uint64_t due = boundary_ns(k);
      const timespec ts{static_cast<time_t>(due / kNsPerS), static_cast<long>(due % kNsPerS)};
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
      }
      cycle(state);
      const uint64_t done = shm::now_ns();
      ++k;
      if (done <= boundary_ns(k)) continue;
      uint64_t xruns = 1;  // this cycle was late
      if (const uint64_t last = index_at(done); last > k) {
        xruns += last - k;  // boundaries that passed without a cycle
        k = last;
      }
      state.xruns.fetch_add(xruns, std::memory_order_relaxed);
    }
  }

  // [rt] One cycle: silent input, output into the preallocated buffer.
  void cycle(LiveState& state) noexcept RACKD_RT {
    RtScope rt;
    state.note_thread();
    state.run_cycle(state.in_ptrs.data(), out_ptrs_.data());
  }

  DeviceRequest request_;
  std::vector<float> out_;                 // planar, output_channels x block; nobody listens
  std::vector<float*> out_ptrs_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> ready_{false};         // release: refused_ and anchor_ns_ are written
  const char* refused_ = nullptr;          // why SCHED_FIFO was refused (a strerror string)
  uint64_t anchor_ns_ = 0;                 // boundary 0 (device thread only, after ready_)
};

}  // namespace

bool is_null_device(const std::string& want) {
  std::string w = want;
  std::transform(w.begin(), w.end(), w.begin(), [](unsigned char c) { return std::tolower(c); });
  return w == "null" || w == "rackd: null" || w == "rackd:null";
}

std::unique_ptr<LiveDevice> open_null_device(const DeviceRequest& request) {
  return std::make_unique<NullDevice>(request);
}

void print_null_device_row() {
  std::printf("%-4s %-26s %-32s %4u %4u %8s  --device null: paced by rackd, silent input, always there\n", "-",
              "rackd", "null", shm::kMaxChannels, shm::kMaxChannels, "any");
}

}  // namespace rackd::server
