// The host side of LV2: URID map, SPSC rings, the worker thread, options and
// features. Threads: see lv2_host.hpp.
#include "modules/lv2/lv2_host.hpp"

#include <lv2/atom/atom.h>
#include <lv2/buf-size/buf-size.h>
#include <lv2/parameters/parameters.h>
#include <lv2/state/state.h>

#include <cstdlib>
#include <cstring>

namespace rackd::lv2 {

// ---- URID map ----

UridMap::UridMap() : slots_(new std::atomic<const char*>[kSlots]) {
  for (uint32_t i = 0; i < kSlots; ++i) slots_[i].store(nullptr, std::memory_order_relaxed);
  map_ = {this, [](LV2_URID_Map_Handle h, const char* uri) { return static_cast<UridMap*>(h)->map(uri); }};
  unmap_ = {this, [](LV2_URID_Unmap_Handle h, LV2_URID id) { return static_cast<const UridMap*>(h)->unmap(id); }};
}

UridMap::~UridMap() {
  for (uint32_t i = 0; i < kSlots; ++i) std::free(const_cast<char*>(slots_[i].load()));
}

LV2_URID UridMap::map(const char* uri) noexcept {
  if (!uri) return 0;
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (const char* c = uri; *c; ++c) h = (h ^ static_cast<unsigned char>(*c)) * 1099511628211ull;
  char* mine = nullptr;
  for (uint32_t probe = 0; probe < kSlots; ++probe) {
    const uint32_t i = static_cast<uint32_t>((h + probe) % kSlots);
    const char* s = slots_[i].load(std::memory_order_acquire);
    if (!s) {
      // Not mapped yet: only here does mapping allocate (never for the URIs
      // mapped in setup, which is all an audio thread should ask for).
      if (!mine) mine = strdup(uri);
      if (!mine) return 0;
      const char* expected = nullptr;
      if (slots_[i].compare_exchange_strong(expected, mine, std::memory_order_acq_rel)) return i + 1;
      s = expected;  // another thread won the slot
    }
    if (std::strcmp(s, uri) == 0) {
      std::free(mine);
      return i + 1;
    }
  }
  std::free(mine);
  return 0;  // full
}

const char* UridMap::unmap(LV2_URID id) const noexcept {
  return id == 0 || id > kSlots ? nullptr : slots_[id - 1].load(std::memory_order_acquire);
}

// ---- Ring ----

Ring::Ring(uint32_t bytes) : buf_(bytes) {}

void Ring::copy_in(uint64_t at, const void* src, uint32_t n) noexcept {
  const auto* s = static_cast<const uint8_t*>(src);
  for (uint32_t k = 0; k < n; ++k) buf_[(at + k) % buf_.size()] = s[k];
}

void Ring::copy_out(uint64_t at, void* dst, uint32_t n) const noexcept {
  auto* d = static_cast<uint8_t*>(dst);
  for (uint32_t k = 0; k < n; ++k) d[k] = buf_[(at + k) % buf_.size()];
}

bool Ring::write(const void* data, uint32_t size) noexcept {
  const uint64_t head = head_.load(std::memory_order_relaxed), tail = tail_.load(std::memory_order_acquire);
  if (head - tail + sizeof size + size > buf_.size()) return false;
  copy_in(head, &size, sizeof size);
  copy_in(head + sizeof size, data, size);
  head_.store(head + sizeof size + size, std::memory_order_release);
  return true;
}

uint32_t Ring::peek() const noexcept {
  const uint64_t tail = tail_.load(std::memory_order_relaxed), head = head_.load(std::memory_order_acquire);
  if (head == tail) return 0;
  uint32_t size = 0;
  copy_out(tail, &size, sizeof size);
  return size;
}

void Ring::read(void* out, uint32_t size) noexcept {
  const uint64_t tail = tail_.load(std::memory_order_relaxed);
  copy_out(tail + sizeof size, out, size);
  tail_.store(tail + sizeof size + size, std::memory_order_release);
}

// ---- Worker ----

Worker::Worker() : scratch_rt_(kRingBytes), scratch_worker_(kRingBytes) {
  schedule_ = {this, &Worker::schedule};
  sem_init(&wake_, 0, 0);
}

Worker::~Worker() {
  stop();
  sem_destroy(&wake_);
}

void Worker::stop() {
  if (!thread_.joinable()) return;
  quit_.store(true);
  sem_post(&wake_);
  thread_.join();
}

void Worker::start(const LV2_Worker_Interface* iface, LV2_Handle handle) {
  iface_ = iface;
  handle_ = handle;
  if (iface_ && iface_->work) thread_ = std::thread([this] { loop(); });
}

LV2_Worker_Status Worker::schedule(LV2_Worker_Schedule_Handle h, uint32_t size, const void* data) {
  auto* self = static_cast<Worker*>(h);
  if (!self->thread_.joinable()) return LV2_WORKER_ERR_UNKNOWN;
  if (!self->requests_.write(data, size)) return LV2_WORKER_ERR_NO_SPACE;
  sem_post(&self->wake_);
  return LV2_WORKER_SUCCESS;
}

LV2_Worker_Status Worker::respond(LV2_Worker_Respond_Handle h, uint32_t size, const void* data) {
  return static_cast<Worker*>(h)->responses_.write(data, size) ? LV2_WORKER_SUCCESS : LV2_WORKER_ERR_NO_SPACE;
}

void Worker::loop() {
  while (true) {
    sem_wait(&wake_);
    if (quit_.load()) return;
    while (uint32_t size = requests_.peek()) {
      requests_.read(scratch_worker_.data(), size);
      iface_->work(handle_, &Worker::respond, this, size, scratch_worker_.data());
    }
  }
}

// The plugin's work_response() and end_run() are third-party code (see main.cpp).
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wfunction-effects"
#endif
void Worker::deliver() noexcept {
  if (!iface_) return;
  while (uint32_t size = responses_.peek()) {
    responses_.read(scratch_rt_.data(), size);
    if (iface_->work_response) iface_->work_response(handle_, size, scratch_rt_.data());
  }
  if (iface_->end_run) iface_->end_run(handle_);
}
#if defined(__clang__)
#pragma clang diagnostic pop
#endif

// ---- Options and features ----

void Options::fill(UridMap& map, uint32_t rate_hz, uint32_t block_frames) {
  rate = static_cast<float>(rate_hz);
  nominal = max = static_cast<int32_t>(block_frames);
  const LV2_URID f = map.map(LV2_ATOM__Float), i = map.map(LV2_ATOM__Int);
  opts[0] = {LV2_OPTIONS_INSTANCE, 0, map.map(LV2_PARAMETERS__sampleRate), sizeof rate, f, &rate};
  opts[1] = {LV2_OPTIONS_INSTANCE, 0, map.map(LV2_BUF_SIZE__nominalBlockLength), sizeof nominal, i, &nominal};
  opts[2] = {LV2_OPTIONS_INSTANCE, 0, map.map(LV2_BUF_SIZE__maxBlockLength), sizeof max, i, &max};
  opts[3] = {LV2_OPTIONS_INSTANCE, 0, map.map(LV2_BUF_SIZE__minBlockLength), sizeof min, i, &min};
  opts[4] = {LV2_OPTIONS_INSTANCE, 0, 0, 0, 0, nullptr};
}

void Features::build(UridMap& map, Options& options, Worker& worker) {
  storage = {{LV2_URID__map, map.map_feature()},
             {LV2_URID__unmap, map.unmap_feature()},
             {LV2_OPTIONS__options, options.opts},
             {LV2_BUF_SIZE__boundedBlockLength, nullptr},
             {LV2_WORKER__schedule, worker.schedule_feature()},
             {LV2_CORE__isLive, nullptr}};
  list.clear();
  for (auto& f : storage) list.push_back(&f);
  list.push_back(nullptr);
}

}  // namespace rackd::lv2
