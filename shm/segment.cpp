// Segment creation, validation on attach, naming and stale cleanup. [setup]
#include "shm/segment.hpp"

#include "shm/protocol.hpp"

#include <signal.h>
#include <unistd.h>

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <stdexcept>

namespace bip = boost::interprocess;

namespace rackd::shm {

struct Segment::Impl {
  bip::shared_memory_object object;
  bip::mapped_region region;
  std::vector<bip::mapped_region> extra;  // writable windows (attachers)
};

namespace {

constexpr std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

[[noreturn]] void fail(const std::string& name, const std::string& why) {
  throw std::runtime_error("segment " + name + ": " + why);
}

}  // namespace

const char* state_name(ModuleState s) noexcept {
  switch (s) {
    case ModuleState::kStarting: return "starting";
    case ModuleState::kRunning: return "running";
    case ModuleState::kDead: return "dead";
    case ModuleState::kFailed: return "failed";
    case ModuleState::kStopped: return "stopped";
    case ModuleState::kSetupError: return "setup-error";
    case ModuleState::kFree: return "free";
  }
  return "unknown";
}

const char* cycle_state_name(CycleState s) noexcept {
  switch (s) {
    case CycleState::kIdle: return "idle";
    case CycleState::kWaiting: return "waiting";
    case CycleState::kRunning: return "running";
    case CycleState::kPublished: return "published";
  }
  return "unknown";
}

const char* mute_reason_name(MuteReason r) noexcept {
  switch (r) {
    case MuteReason::kNone: return "none";
    case MuteReason::kNonFinite: return "nonfinite";
    case MuteReason::kLevel: return "level";
    case MuteReason::kDc: return "dc";
  }
  return "unknown";
}

std::unique_ptr<Segment> Segment::create(const std::string& name, const SegmentPlan& plan) {
  if (plan.module_count > kMaxModules) fail(name, "too many modules");
  if (plan.buses.size() != plan.module_count + 1) fail(name, "bus plan does not match modules");
  if (plan.block_frames < kMinBlockFrames || plan.block_frames > kMaxBlockFrames)
    fail(name, "block size out of range");

  std::vector<RingGeometry> rings;
  std::size_t off = round_up(sizeof(SegmentHeader), kPage);
  const std::size_t in_off = off;
  off += plan.module_count * sizeof(ModuleIn);
  const std::size_t out_off = off;
  off += plan.module_count * sizeof(ModuleOut);
  std::vector<std::size_t> bus_off;
  for (const auto& b : plan.buses) {
    if (b.channels > kMaxChannels) fail(name, "too many channels on a bus");
    rings.push_back(RingGeometry::make(b.channels, plan.block_frames));
    bus_off.push_back(off);
    off += sizeof(BusHeader) + round_up(rings.back().data_bytes(), kPage);
  }
  const std::size_t total = off;

  auto seg = std::unique_ptr<Segment>(new Segment());
  seg->impl_ = std::make_unique<Impl>();
  seg->name_ = name;
  try {
    bip::permissions perm(0600);
    seg->impl_->object = bip::shared_memory_object(bip::create_only, name.c_str(), bip::read_write, perm);
    seg->owner_ = true;
    seg->impl_->object.truncate(static_cast<bip::offset_t>(total));
    seg->impl_->region = bip::mapped_region(seg->impl_->object, bip::read_write);
  } catch (const bip::interprocess_exception& e) {
    if (seg->owner_) bip::shared_memory_object::remove(name.c_str());
    seg->owner_ = false;
    fail(name, e.what());
  }
  seg->base_ = static_cast<std::byte*>(seg->impl_->region.get_address());
  seg->size_ = total;
  seg->rings_ = rings;

  auto* h = new (seg->base_) SegmentHeader{};
  h->magic = kMagic;
  h->version = kVersion;
  h->struct_version = kSegmentHeaderVersion;
  h->total_bytes = total;
  h->header_bytes = sizeof(SegmentHeader);
  h->module_in_bytes = sizeof(ModuleIn);
  h->module_out_bytes = sizeof(ModuleOut);
  h->bus_header_bytes = sizeof(BusHeader);
  h->module_count = plan.module_count;
  h->bus_count = static_cast<uint32_t>(plan.buses.size());
  h->rate_hz = plan.rate_hz;
  h->block_frames = plan.block_frames;
  h->server_pid = static_cast<uint32_t>(getpid());
  h->server_uid = static_cast<uint32_t>(getuid());
  h->rt_priority = plan.rt_priority;
  h->module_in_offset = in_off;
  h->module_out_offset = out_off;
  for (uint32_t i = 0; i < plan.module_count; ++i) {
    auto* mi = new (seg->base_ + in_off + i * sizeof(ModuleIn)) ModuleIn{};
    mi->magic = kMagic;
    mi->struct_version = kModuleInVersion;
    mi->slot = i;
    new (seg->base_ + out_off + i * sizeof(ModuleOut)) ModuleOut{};
  }
  for (std::size_t b = 0; b < plan.buses.size(); ++b) {
    h->bus_offset[b] = bus_off[b];
    auto* bh = new (seg->base_ + bus_off[b]) BusHeader{};
    bh->magic = kMagic;
    bh->struct_version = kBusHeaderVersion;
    bh->channels = rings[b].channels;
    bh->frames = rings[b].frames;
    bh->capacity = rings[b].capacity;
    bh->producer = plan.buses[b].producer;
    bh->block_floats = rings[b].block_floats;
    bh->data_offset = bus_off[b] + sizeof(BusHeader);
  }
  return seg;
}

std::unique_ptr<Segment> Segment::attach(const std::string& name) {
  auto seg = std::unique_ptr<Segment>(new Segment());
  seg->impl_ = std::make_unique<Impl>();
  seg->name_ = name;
  bip::offset_t size = 0;
  try {
    seg->impl_->object = bip::shared_memory_object(bip::open_only, name.c_str(), bip::read_only);
    if (!seg->impl_->object.get_size(size) || size < static_cast<bip::offset_t>(sizeof(SegmentHeader)))
      fail(name, "too small to be a rackd segment");
    seg->impl_->region = bip::mapped_region(seg->impl_->object, bip::read_only);
  } catch (const bip::interprocess_exception& e) {
    fail(name, e.what());
  }
  seg->base_ = static_cast<std::byte*>(seg->impl_->region.get_address());
  seg->size_ = static_cast<std::size_t>(size);
  const SegmentHeader& h = seg->header();
  if (h.magic != kMagic) fail(name, "bad magic (not a rackd segment)");
  if (h.version != kVersion)
    fail(name, "the server speaks rackd module protocol " + std::to_string(h.version) +
                   "; this was built against protocol " + std::to_string(kVersion) +
                   " (rebuild the module against the server's SDK)");
  if (h.header_bytes != sizeof(SegmentHeader) || h.module_in_bytes != sizeof(ModuleIn) ||
      h.module_out_bytes != sizeof(ModuleOut) || h.bus_header_bytes != sizeof(BusHeader))
    fail(name, "struct sizes differ from this build");
  if (h.total_bytes != seg->size_) fail(name, "size does not match its header");
  auto zero = [](const uint32_t (&r)[kReservedWords]) {
    for (uint32_t w : r) {
      if (w != 0) return false;
    }
    return true;
  };
  if (h.struct_version != kSegmentHeaderVersion || !zero(h.reserved))
    fail(name, "segment header version " + std::to_string(h.struct_version) + " or reserved fields unknown to this build");
  if (h.module_count > kMaxModules || h.bus_count != h.module_count + 1)
    fail(name, "module/bus counts out of range");
  if (h.block_frames < kMinBlockFrames || h.block_frames > kMaxBlockFrames)
    fail(name, "block size out of range");
  auto inside = [&](uint64_t off, uint64_t bytes) { return off <= seg->size_ && bytes <= seg->size_ - off; };
  if (!inside(h.module_in_offset, uint64_t{h.module_count} * sizeof(ModuleIn)) ||
      !inside(h.module_out_offset, uint64_t{h.module_count} * sizeof(ModuleOut)) ||
      h.module_in_offset % kPage || h.module_out_offset % kPage)
    fail(name, "module tables outside the segment");
  for (uint32_t b = 0; b < h.bus_count; ++b) {
    uint64_t off = h.bus_offset[b];
    if (off % kPage || !inside(off, sizeof(BusHeader))) fail(name, "bus header outside the segment");
    const auto& bh = *reinterpret_cast<const BusHeader*>(seg->base_ + off);
    RingGeometry g = RingGeometry::make(bh.channels, h.block_frames, kRingBlocks);
    if (bh.magic != kMagic || bh.struct_version != kBusHeaderVersion || !zero(bh.reserved) || bh.channels > kMaxChannels || bh.frames != h.block_frames ||
        bh.capacity != kRingBlocks || bh.block_floats != g.block_floats ||
        bh.data_offset != off + sizeof(BusHeader) || !inside(bh.data_offset, g.data_bytes()))
      fail(name, "bus " + std::to_string(b) + " header is inconsistent");
    seg->rings_.push_back(g);
  }
  for (uint32_t i = 0; i < h.module_count; ++i) {
    const auto& mi = *reinterpret_cast<const ModuleIn*>(seg->base_ + h.module_in_offset + i * sizeof(ModuleIn));
    if (mi.magic != kMagic || mi.struct_version != kModuleInVersion || !zero(mi.reserved))
      fail(name, "module slot " + std::to_string(i) + ": version or reserved fields unknown to this build");
  }
  return seg;
}

Segment::~Segment() {
  if (owner_) {
    bip::shared_memory_object::remove(name_.c_str());
    remove_state_dirs(name_);
  }
}

void Segment::remove_name() {
  if (owner_) {
    bip::shared_memory_object::remove(name_.c_str());
    remove_state_dirs(name_);
  }
  owner_ = false;
}

namespace {

std::string state_root() {
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  std::error_code ec;
  if (xdg && *xdg && std::filesystem::is_directory(xdg, ec)) return std::string(xdg) + "/rackd-state";
  return "/tmp/rackd-state-" + std::to_string(getuid());
}

}  // namespace

std::string module_state_dir(const std::string& segment, const std::string& module, bool create) {
  const std::string dir = state_root() + "/" + segment + "/" + module;
  if (create) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    std::filesystem::permissions(state_root(), std::filesystem::perms::owner_all, ec);
    if (ec) throw std::runtime_error("state folder " + dir + ": " + ec.message());
  }
  return dir;
}

void remove_state_dirs(const std::string& segment) {
  std::error_code ec;
  std::filesystem::remove_all(state_root() + "/" + segment, ec);
}

uint64_t Segment::module_out_offset(uint32_t i) const {
  return header().module_out_offset + uint64_t{i} * sizeof(ModuleOut);
}

ModuleIn& Segment::module_in(uint32_t i) const {
  return *reinterpret_cast<ModuleIn*>(base_ + header().module_in_offset + i * sizeof(ModuleIn));
}

ModuleOut& Segment::module_out(uint32_t i) const {
  return *reinterpret_cast<ModuleOut*>(base_ + module_out_offset(i));
}

BusHeader& Segment::bus_header(uint32_t b) const {
  return *reinterpret_cast<BusHeader*>(base_ + header().bus_offset[b]);
}

RingView Segment::ring(uint32_t b) const {
  BusHeader& bh = bus_header(b);
  return RingView(&bh, reinterpret_cast<float*>(base_ + bh.data_offset), rings_.at(b));
}

void* Segment::map_writable(uint64_t offset, std::size_t bytes) {
  if (offset % kPage || offset > size_ || bytes > size_ - offset) fail(name_, "writable window out of range");
  bip::shared_memory_object rw(bip::open_only, name_.c_str(), bip::read_write);
  impl_->extra.emplace_back(rw, bip::read_write, static_cast<bip::offset_t>(offset), bytes);
  return impl_->extra.back().get_address();
}

std::string segment_name(uid_t uid, pid_t pid) {
  return "rackd-" + std::to_string(uid) + "-" + std::to_string(pid);
}

bool server_alive(pid_t pid) {
  if (pid <= 0) return false;
  if (kill(pid, 0) != 0 && errno != EPERM) return false;
  std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
  std::string c;
  std::getline(comm, c);
  return c.rfind("rackd", 0) == 0;
}

std::vector<std::string> remove_stale_segments(uid_t uid) {
  std::vector<std::string> removed;
  const std::string prefix = "rackd-" + std::to_string(uid) + "-";
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm", ec)) {
    std::string n = e.path().filename().string();
    if (n.rfind(prefix, 0) != 0) continue;
    std::string pid_text = n.substr(prefix.size());
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    if (pid == getpid() || server_alive(pid)) continue;
    if (bip::shared_memory_object::remove(n.c_str())) {
      removed.push_back(n);
      remove_state_dirs(n);
    }
  }
  return removed;
}

}  // namespace rackd::shm
