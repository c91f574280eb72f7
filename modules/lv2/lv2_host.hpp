// The host side of LV2 for one rackd-lv2 process: the URID map (filled in
// setup, read lock-free on the audio thread), the options, the worker (a
// non-real-time thread fed by lock-free rings) and the feature array handed
// to every instance.
// Threads: built in [setup]; map()/unmap() on any thread ([rt] for URIs
// already mapped); Worker::schedule/deliver on [rt], its thread on [control].
#pragma once

#include <lv2/core/lv2.h>
#include <lv2/options/options.h>
#include <lv2/urid/urid.h>
#include <lv2/worker/worker.h>
#include <semaphore.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include <rackd/rt.hpp>

namespace rackd::lv2 {

// URI <-> URID. An open-addressing table of atomic string pointers with a
// fixed size: a lookup probes and compares, never locks or allocates; a new
// URI allocates its copy and claims a slot with a CAS. URID = slot + 1.
class UridMap {
 public:
  static constexpr uint32_t kSlots = 8192;
  UridMap();
  ~UridMap();
  LV2_URID map(const char* uri) noexcept;
  const char* unmap(LV2_URID id) const noexcept;
  LV2_URID_Map* map_feature() { return &map_; }
  LV2_URID_Unmap* unmap_feature() { return &unmap_; }

 private:
  std::unique_ptr<std::atomic<const char*>[]> slots_;
  LV2_URID_Map map_;
  LV2_URID_Unmap unmap_;
};

// A single-producer single-consumer byte ring of size-prefixed messages.
class Ring {
 public:
  explicit Ring(uint32_t bytes);
  // [rt] false when the message does not fit.
  bool write(const void* data, uint32_t size) noexcept RACKD_RT;
  // [rt] Size of the next message (0: none); read() copies it out.
  uint32_t peek() const noexcept RACKD_RT;
  void read(void* out, uint32_t size) noexcept RACKD_RT;

 private:
  void copy_in(uint64_t at, const void* src, uint32_t n) noexcept;
  void copy_out(uint64_t at, void* dst, uint32_t n) const noexcept;
  std::vector<uint8_t> buf_;
  std::atomic<uint64_t> head_{0}, tail_{0};  // written by the producer, the consumer
};

// LV2 Worker for one instance: schedule_work() from run() goes to a ring and
// wakes the worker thread (sem_post: a futex), which calls work(); its
// responses come back through another ring and deliver() hands them to
// work_response() on the audio thread, then calls end_run().
class Worker {
 public:
  static constexpr uint32_t kRingBytes = 1 << 16;
  Worker();
  ~Worker();
  // [setup] The instance's worker interface (nullptr: none) and handle.
  void start(const LV2_Worker_Interface* iface, LV2_Handle handle);
  // [setup] Joins the worker thread (before the instance is freed).
  void stop();
  LV2_Worker_Schedule* schedule_feature() { return &schedule_; }
  // [rt] After run(): responses to work_response(), then end_run().
  void deliver() noexcept RACKD_RT;

 private:
  static LV2_Worker_Status schedule(LV2_Worker_Schedule_Handle h, uint32_t size, const void* data);
  static LV2_Worker_Status respond(LV2_Worker_Respond_Handle h, uint32_t size, const void* data);
  void loop();
  LV2_Worker_Schedule schedule_;
  const LV2_Worker_Interface* iface_ = nullptr;
  LV2_Handle handle_ = nullptr;
  Ring requests_{kRingBytes}, responses_{kRingBytes};
  std::vector<uint8_t> scratch_rt_, scratch_worker_;
  sem_t wake_;
  std::atomic<bool> quit_{false};
  std::thread thread_;
};

// Options every instance gets: sample rate, nominal/max/min block length.
struct Options {
  void fill(UridMap& map, uint32_t rate_hz, uint32_t block_frames);
  float rate = 48000;
  int32_t nominal = 128, max = 128, min = 1;
  LV2_Options_Option opts[5] = {};
};

// The feature array for one instance (its own worker schedule).
struct Features {
  void build(UridMap& map, Options& options, Worker& worker);
  std::vector<LV2_Feature> storage;
  std::vector<const LV2_Feature*> list;  // nullptr-terminated
};

}  // namespace rackd::lv2
