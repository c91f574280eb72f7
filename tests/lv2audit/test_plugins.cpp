// Three LV2 plugins for the lv2-audit test (one bundle, rackd-test-alloc.lv2):
// urn:rackd:test:alloc mallocs and frees a buffer every 10th block and writes
// to /dev/null every 20th, inside run(); urn:rackd:test:clean copies input to
// output; urn:rackd:test:needs-worker requires worker:schedule (its .ttl).
// Threads: the host's; run() on its audio thread.
#include <fcntl.h>
#include <lv2/core/lv2.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace {

struct Plugin {
  const float* in = nullptr;
  float* out = nullptr;
  unsigned blocks = 0;
  int null_fd = -1;
};

LV2_Handle instantiate(const LV2_Descriptor*, double, const char*, const LV2_Feature* const*) {
  auto* p = new Plugin;
  p->null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  return p;
}

void connect_port(LV2_Handle h, uint32_t port, void* data) {
  auto* p = static_cast<Plugin*>(h);
  if (port == 0) p->in = static_cast<const float*>(data);
  if (port == 1) p->out = static_cast<float*>(data);
}

void run_clean(LV2_Handle h, uint32_t n) {
  auto* p = static_cast<Plugin*>(h);
  std::memcpy(p->out, p->in, n * sizeof(float));
}

void run_alloc(LV2_Handle h, uint32_t n) {
  auto* p = static_cast<Plugin*>(h);
  ++p->blocks;
  if (p->blocks % 10 == 0) {
    void* volatile buf = std::malloc(256);  // volatile: the pair must not be optimised away
    std::free(buf);
  }
  if (p->blocks % 20 == 0 && p->null_fd >= 0) {
    const char byte = 0;
    [[maybe_unused]] ssize_t w = write(p->null_fd, &byte, 1);
  }
  std::memcpy(p->out, p->in, n * sizeof(float));
}

void cleanup(LV2_Handle h) {
  auto* p = static_cast<Plugin*>(h);
  if (p->null_fd >= 0) close(p->null_fd);
  delete p;
}

const LV2_Descriptor kAlloc = {"urn:rackd:test:alloc", instantiate, connect_port, nullptr, run_alloc, nullptr,
                               cleanup, nullptr};
const LV2_Descriptor kClean = {"urn:rackd:test:clean", instantiate, connect_port, nullptr, run_clean, nullptr,
                               cleanup, nullptr};

// Declares lv2:requiredFeature worker:schedule in its .ttl; never instantiated by lv2-audit.
const LV2_Descriptor kNeedsWorker = {"urn:rackd:test:needs-worker", instantiate, connect_port, nullptr, run_clean,
                                     nullptr, cleanup, nullptr};

}  // namespace

extern "C" LV2_SYMBOL_EXPORT const LV2_Descriptor* lv2_descriptor(uint32_t index) {
  return index == 0 ? &kAlloc : index == 1 ? &kClean : index == 2 ? &kNeedsWorker : nullptr;
}
