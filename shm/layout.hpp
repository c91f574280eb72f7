// The cross-process contract: plain structs that live in the one shared-memory
// segment the server creates. No pointers (every process maps the segment at a
// different address), no interprocess mutexes (not robust when a holder dies).
//
// Segment, in page-aligned sections (offsets in SegmentHeader):
//
//   SegmentHeader                 server writes; modules map read-only
//   ModuleIn  x module_count      server -> module: identity, cycle requests,
//                                 server-kept counters, parameter slots, config;
//                                 modules map read-only, so a module can never
//                                 corrupt its own parameters or counters
//   ModuleOut x module_count      module -> server: completion word, readiness,
//                                 heartbeat, timing; the one page a module may
//                                 write besides its output bus. Untrusted.
//   Bus x bus_count               BusHeader page + ring of audio blocks; bus 0 is
//                                 the device input (server produces), bus k>0 is
//                                 the output of module slot k-1 (that module
//                                 produces). Every slot exists from the start
//                                 (module_count = kMaxModules) and its bus holds
//                                 kMaxChannels, so modules can come and go
//                                 while the segment stays as it is.
//
// Everything a module writes is untrusted by the server: the server keeps its
// own copy of every size and index it addresses memory with, and only reads
// values (completion cycles, heartbeats) that it then compares, never follows.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include <rackd/spec.hpp>

namespace rackd::shm {

inline constexpr uint32_t kMagic = 0x3144'4b52;  // "RKD1" little-endian
// The layout as a whole is the module protocol of the SDK (include/rackd/spec.hpp).
inline constexpr uint32_t kVersion = rackd::kModuleProtocol;
// A version per shared struct, checked on attach (and written by the module
// into ModuleOut). Each struct also ends its fixed part with reserved words
// that must be zero: a reader that finds them set is older than the writer.
inline constexpr uint32_t kSegmentHeaderVersion = 1;
inline constexpr uint32_t kModuleInVersion = 2;   // 2: per-slot life cycle, upstream/followers per cycle
inline constexpr uint32_t kModuleOutVersion = 3;  // 2: cycle_state (shm/protocol.hpp); 3: outputs
inline constexpr uint32_t kBusHeaderVersion = 2;  // 2: a mix slot after the spare
inline constexpr uint32_t kReservedWords = 4;
inline constexpr std::size_t kCacheLine = 64;
inline constexpr std::size_t kPage = 4096;

inline constexpr uint32_t kMaxModules = 64;
inline constexpr uint32_t kMaxBuses = kMaxModules + 1;
inline constexpr uint32_t kMaxChannels = rackd::kMaxChannels;
inline constexpr uint32_t kMinBlockFrames = 16;
inline constexpr uint32_t kMaxBlockFrames = 4096;
inline constexpr uint32_t kRingBlocks = 8;  // power of two; +1 spare slot per bus
// Most blocks one request may ask for (offline batches, see ModuleIn). One
// fewer than the ring holds, so the block before a batch, which a fade-out may
// still read, is never overwritten by it.
inline constexpr uint32_t kMaxBatch = kRingBlocks - 1;
inline constexpr uint32_t kMaxParams = 256;
inline constexpr uint32_t kParamValues = rackd::kParamValues;  // a parameter carries 1..4 doubles
inline constexpr uint32_t kNameBytes = 32;
inline constexpr uint32_t kConfigBytes = 16384;
inline constexpr uint32_t kErrorBytes = 512;
inline constexpr uint32_t kNoBus = 0xffff'ffff;
inline constexpr uint32_t kNoSlot = 0xffff'ffff;
inline constexpr uint32_t kDeviceBus = 0;

static_assert((kRingBlocks & (kRingBlocks - 1)) == 0, "ring capacity must be a power of two");
static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<double>::is_always_lock_free);

// Server-owned life cycle of a module slot (ModuleIn::state).
enum class ModuleState : uint32_t {
  kStarting = 0,    // process spawned, not yet attached and set up
  kRunning = 1,     // attached and taking cycles
  kDead = 2,        // process gone; restart pending
  kFailed = 3,      // supervisor gave up; slot bypassed or silent
  kStopped = 4,     // server shutting down
  kSetupError = 5,  // module refused its configuration (see ModuleOut::error)
  kFree = 6,        // no module in this slot (never used, or removed)
};

const char* state_name(ModuleState s) noexcept;

// Why the server muted a module (ModuleIn::mute_reason).
enum class MuteReason : uint32_t {
  kNone = 0,
  kNonFinite = 1,   // NaN or Inf in a block
  kLevel = 2,       // a sample beyond kMaxSaneLevel
  kDc = 3,          // sustained DC beyond kMaxSaneDc
};
inline constexpr float kMaxSaneLevel = 16.0f;  // +24 dBFS
inline constexpr float kMaxSaneDc = 0.5f;      // -6 dBFS of DC, held for about 50 ms
inline constexpr float kFullScaleDc = 0.99f;   // a block whose mean is this is DC, muted at once

const char* mute_reason_name(MuteReason r) noexcept;

using ParamKind = rackd::ParamKind;  // kFloat = 0, kInt = 1, kBool = 2

// One parameter. Name, kind and range are written once by the server before any
// module starts; values are written by the server's control thread under a
// seqlock (single writer), read by the module at the start of a block. The slot
// outlives module processes, so a restarted module finds its values here.
struct alignas(kCacheLine) ParamSlot {
  char name[kNameBytes];               // NUL-terminated, e.g. "gain_db", "band/3/freq"
  uint32_t kind;                       // ParamKind
  uint32_t count;                      // values in use, 1..kParamValues
  double min, max, def;                // range and default, per value
  std::atomic<uint32_t> seq{0};        // seqlock: odd while the writer is mid-update
  uint32_t pad0{0};
  std::atomic<double> value[kParamValues];
};
static_assert(sizeof(ParamSlot) % kCacheLine == 0);

// Server -> module. Modules map this read-only.
struct alignas(kPage) ModuleIn {
  uint32_t magic;
  uint32_t struct_version;             // kModuleInVersion
  uint32_t reserved[kReservedWords];   // zero
  uint32_t slot;                       // index of this module
  char name[kNameBytes];               // instance name from the patch
  char type[kNameBytes];               // module type ("passthrough", ...)
  uint32_t in_channels;                // 0 for a source without input
  uint32_t out_channels;
  uint32_t out_bus;                    // bus this module produces
  uint32_t flags;                      // kFlag*
  uint32_t param_count;
  uint32_t config_bytes;               // valid bytes in config[]
  std::atomic<uint32_t> state{0};      // ModuleState
  std::atomic<uint32_t> generation{0}; // bumped by the supervisor for every spawn

  // Cycle requests. The server writes the request_* fields, then bumps `arm`
  // (release), the module's futex. The module runs cycles request -
  // request_count + 1 .. request (request_count is 1 except in offline
  // batches, at most kMaxBatch), each on its block of bus request_in_bus: the
  // first in slot request_in_slot, later ones in the ring slot of their cycle.
  // With `request_follow` == kNoSlot the input is ready now; otherwise it is
  // the output of module request_follow, and cycle c is ready once that
  // module's `done` reaches c + 1: the module waits on that word itself, so a
  // chain hands each block straight to the next process without a round trip
  // through the server (as JACK2 clients signal their successors). A module
  // wakes the sleepers on its `done` after the last cycle of a request, so in
  // a batch each process runs all its blocks in one go. A follower of its
  // patch upstream (`upstream`) already sleeps on that word between cycles,
  // so arming it needs no wake-up. The server may arm again before a request
  // is finished (its upstream was replaced, or a batch is cut short); the
  // module then takes the newest request, skipping cycles it has already run.
  alignas(kCacheLine) std::atomic<uint32_t> arm{0};
  std::atomic<uint32_t> request{0};
  std::atomic<uint32_t> request_count{1};
  std::atomic<uint32_t> request_in_bus{kNoBus};
  std::atomic<uint32_t> request_in_slot{0};
  std::atomic<uint32_t> request_follow{kNoSlot};
  // While the server sleeps on `done`: the value it waits for (0: not
  // waiting). The module wakes it once `done` reaches it.
  std::atomic<uint32_t> server_waiting{0};
  // Written by the server's audio thread before it arms anyone in a cycle,
  // whenever the graph changes them: the module whose block this one takes
  // as it is (kNoSlot: none, or the input is summed by the server), and how
  // many modules take this one's block that way (they wait on its `done`).
  // A module reads both afresh before every sleep and after every block.
  std::atomic<uint32_t> upstream{kNoSlot};
  std::atomic<uint32_t> followers{0};

  // Counters the server keeps (mirrored here for readers such as rackctl).
  alignas(kCacheLine) std::atomic<uint64_t> late{0};       // deadline misses
  std::atomic<uint64_t> replaced{0};   // blocks replaced for any reason
  std::atomic<uint64_t> restarts{0};
  std::atomic<uint64_t> nonfinite{0};  // blocks with NaN/Inf (module muted)
  std::atomic<uint32_t> muted{0};      // 1: output replaced by silence (MuteReason in mute_reason)
  std::atomic<uint32_t> bypassed{0};   // 1: output replaced by input (server-level)
  std::atomic<uint32_t> mute_reason{0};
  std::atomic<uint64_t> busy_since_ns{0};   // CLOCK_MONOTONIC when the oldest unfinished request was sent; 0: idle
  std::atomic<uint32_t> busy_generation{0}; // process generation busy_since_ns refers to
  std::atomic<uint64_t> first_good_ns{0};   // first good block of the current process generation

  alignas(kCacheLine) std::atomic<uint32_t> param_epoch{0};  // bumped after any value write
  ParamSlot params[kMaxParams];
  char config[kConfigBytes];           // the module's patch table as TOML text
};

inline constexpr uint32_t kFlagBypassable = 1u << 0;  // output may be replaced by input

// Module -> server: the only page of control state a module writes. Untrusted.
struct alignas(kPage) ModuleOut {
  alignas(kCacheLine) std::atomic<uint32_t> done{0};  // futex: last completed cycle + 1
  std::atomic<uint32_t> cycle_state{0};       // CycleState (shm/protocol.hpp); diagnosis only
  uint32_t struct_version;                    // kModuleOutVersion, written by the module at attach
  uint32_t reserved[kReservedWords];          // zero
  std::atomic<uint32_t> ready_generation{0};  // == ModuleIn::generation once set up
  std::atomic<uint32_t> pid{0};
  std::atomic<uint32_t> setup_failed{0};      // 1: see error[]
  std::atomic<uint64_t> heartbeat{0};         // +1 per processed block
  std::atomic<uint32_t> last_block_ns{0};     // process() time of the last block
  std::atomic<uint32_t> max_block_ns{0};
  char error[kErrorBytes];                    // setup failure, NUL-terminated
  // Reported values: output parameter k (k-th with output = true) in outputs[k].
  std::atomic<double> outputs[rackd::kMaxOutputs];
};
static_assert(sizeof(ModuleOut) == kPage, "ModuleOut is one page");

// One audio bus: a single-producer/single-consumer ring of blocks. Block `seq`
// lives in slot seq % capacity; slot `capacity` is a spare the server writes
// substitutes into (never touched by the producer). Blocks are planar float32:
// channel c of a block starts at c * frames.
struct alignas(kPage) BusHeader {
  uint32_t magic;
  uint32_t struct_version;             // kBusHeaderVersion
  uint32_t reserved[kReservedWords];   // zero
  uint32_t channels;
  uint32_t frames;                     // per block
  uint32_t capacity;                   // ring blocks, power of two
  uint32_t producer;                   // module slot, or kNoBus for the server
  uint32_t block_floats;               // stride between blocks, in floats
  uint64_t data_offset;                // from segment start, page-aligned
  alignas(kCacheLine) std::atomic<uint32_t> write{0};  // producer-owned: newest seq + 1
  alignas(kCacheLine) std::atomic<uint32_t> read{0};   // consumer-owned: oldest unreleased seq
};

// Page 0. Written by the server before any module starts; read-only afterwards.
struct alignas(kPage) SegmentHeader {
  uint32_t magic;
  uint32_t version;                    // kVersion: the layout as a whole
  uint32_t struct_version;             // kSegmentHeaderVersion
  uint32_t reserved[kReservedWords];   // zero
  uint64_t total_bytes;
  uint32_t header_bytes;               // sizeof(SegmentHeader), checked on attach
  uint32_t module_in_bytes;            // sizeof(ModuleIn)
  uint32_t module_out_bytes;           // sizeof(ModuleOut)
  uint32_t bus_header_bytes;           // sizeof(BusHeader)
  uint32_t module_count;
  uint32_t bus_count;                  // module_count + 1
  uint32_t rate_hz;
  uint32_t block_frames;
  uint32_t server_pid;
  uint32_t server_uid;
  uint32_t rt_priority;                // SCHED_FIFO priority modules should ask for
  uint32_t pad0;
  uint64_t module_in_offset;           // ModuleIn[module_count]
  uint64_t module_out_offset;          // ModuleOut[module_count]
  uint64_t bus_offset[kMaxBuses];      // BusHeader of each bus
  std::atomic<uint32_t> shutting_down{0};
  // One audio CPU (server/audio_cpu.hpp): the server may put its device thread
  // and every module's block loop on one CPU, where a hand-off between two
  // processes is a same-core context switch rather than a cross-core wake-up.
  // Written by the server at any time (live: once the device thread is known);
  // a module reads both when it enters its block loop.
  std::atomic<int32_t> audio_cpu{-1};        // -1: not pinned
  std::atomic<uint32_t> module_priority{0};  // SCHED_FIFO priority modules take; 0: rt_priority
  // Futex the scheduler also sleeps on: the supervisor bumps and wakes it when
  // a module's state changes (a death), since the scheduler may be waiting
  // only on a follower further down the chain. Server-written only.
  alignas(kCacheLine) std::atomic<uint32_t> server_poke{0};
};

}  // namespace rackd::shm
