// Creating (server) and attaching to (modules, tests) the shared-memory segment
// described in layout.hpp, plus naming and stale-segment cleanup. [setup] only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "shm/block_ring.hpp"
#include "shm/layout.hpp"

namespace rackd::shm {

struct BusPlan {
  uint32_t channels = 0;
  uint32_t producer = kNoBus;  // module slot, or kNoBus for the server (device input)
};

struct SegmentPlan {
  uint32_t rate_hz = 48000;
  uint32_t block_frames = 128;
  uint32_t rt_priority = 0;
  uint32_t module_count = 0;
  std::vector<BusPlan> buses;  // bus 0 = device input; bus k = output of module k-1
};

class Segment {
 public:
  // Server: creates the named segment with mode 0600 (passed explicitly, not left
  // to the umask), fails if it exists, lays it out and writes every header.
  // Throws std::runtime_error naming the segment and the reason.
  static std::unique_ptr<Segment> create(const std::string& name, const SegmentPlan& plan);

  // Module or test: maps the whole segment read-only and checks magic, version,
  // struct sizes and every offset against the real size of the object. Throws
  // std::runtime_error("segment <name>: <reason>").
  static std::unique_ptr<Segment> attach(const std::string& name);

  ~Segment();  // unmaps; the creator also removes the name
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  const std::string& name() const { return name_; }
  std::size_t size() const { return size_; }
  bool owner() const { return owner_; }

  SegmentHeader& header() const { return *reinterpret_cast<SegmentHeader*>(base_); }
  ModuleIn& module_in(uint32_t i) const;
  ModuleOut& module_out(uint32_t i) const;
  BusHeader& bus_header(uint32_t b) const;
  RingView ring(uint32_t b) const;  // geometry from the validated headers
  uint32_t module_count() const { return header().module_count; }
  uint32_t bus_count() const { return header().bus_count; }

  // Attacher: maps the page-aligned range [offset, offset + bytes) again,
  // read-write, and returns its address (valid while this Segment lives).
  void* map_writable(uint64_t offset, std::size_t bytes);
  uint64_t module_out_offset(uint32_t i) const;

  // Removes the name now (clean exit); mappings stay valid.
  void remove_name();

 private:
  Segment() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string name_;
  std::byte* base_ = nullptr;
  std::size_t size_ = 0;
  bool owner_ = false;
  std::vector<RingGeometry> rings_;
};

// "rackd-<uid>-<pid>": the segment of the server with that pid.
std::string segment_name(uid_t uid, pid_t pid);

// [setup] Where module instance `module` of the server whose segment is
// `segment` keeps what must outlive its process (LV2 state): a folder under
// $XDG_RUNTIME_DIR/rackd-state/ (else /tmp/rackd-state-<uid>/), removed with
// the segment. Created (0700) on demand by module_state_dir(create = true).
std::string module_state_dir(const std::string& segment, const std::string& module, bool create = false);

// [setup] Removes every module's state folder of `segment`.
void remove_state_dirs(const std::string& segment);

// Removes this uid's rackd segments whose server process is gone (or is no
// longer rackd). Returns the names removed.
std::vector<std::string> remove_stale_segments(uid_t uid);

// True when `pid` is alive and its command name starts with "rackd".
bool server_alive(pid_t pid);

}  // namespace rackd::shm
