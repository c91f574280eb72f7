// The OSC address space of rackd: one handler per address, operating on the
// shared-memory segment (parameter slots, counters) and on hooks into the
// server. Socket-free: replies, errors and notifications leave through a send
// callback, so every handler is testable without a network. [control] thread
// only (one Dispatcher per control thread; not thread-safe).
//
// Addresses (requests -> replies to the sender):
//   /<module>/<param> v...        set; nothing on success (use /rackd/sync)
//   /<module>/<param>/get         -> /<module>/<param> v...   ('f' | 'i' | T/F)
//   /rackd/status                 -> /rackd/status.reply (layout below)
//   /rackd/notify 1|0             -> /rackd/notify.reply i; subscribes the sender
//   /rackd/module/restart name    -> /rackd/done /rackd/module/restart name
//   /rackd/module/bypass name 0|1 -> /rackd/done /rackd/module/bypass name
//   /rackd/sync [i]               -> /rackd/synced [i]   (after every earlier reply)
//   <[osc.map] address> x         set the mapped parameter (x in 0..1)
//   anything refused              -> /rackd/error s:address s:reason, nothing changed
//
// /rackd/status.reply: i rate_hz, i block_frames, h cycles, h xruns,
//   i module_count, then per module 10 values: s name, s type, s state,
//   f load (last block's process time / period), f max_load (worst / period),
//   h late, h restarts, i bypassed, i muted, i latency_frames (what the
//   module says it delays its output by: an LV2 plugin's latency).
//
// Notifications to subscribers (tick(), every ~100 ms from the control server):
//   /rackd/module/state s name, s state, h restarts, i bypassed, i muted
//       on any change, and for every module when a client subscribes;
//   /rackd/meters h cycles, h xruns, i module_count, then per module
//       s name, f load, f max_load, h late;
//   /<module>/<param> v...        whenever a value changed, whoever changed it.
// Controller feedback ([osc.map]): /<controller address> f x (0..1) whenever a
// mapped parameter changes other than through that very mapping.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "control/osc_arg.hpp"
#include "control/osc_map.hpp"
#include "control/param_writer.hpp"
#include "graph/patch.hpp"
#include "shm/segment.hpp"

namespace rackd::control {

// What the control plane needs from the server. All callbacks run on the
// control thread and must be safe to call concurrently with the audio thread.
struct ServerHooks {
  std::function<uint64_t()> cycles;  // device cycles so far (empty: 0)
  std::function<uint64_t()> xruns;   // device xruns so far (empty: 0)
  std::function<uint64_t()> limited_frames;  // output frames the safety limiter changed (empty: 0)
  // Restart module `slot` now (e.g. SIGKILL it; the supervisor respawns it and
  // the new process finds its parameters). False + reason when refused. Empty:
  // every restart is refused with "restart is not available".
  std::function<bool(uint32_t slot, std::string& why)> restart;
  // Optional bypass hook. Empty: the dispatcher stores ModuleIn::bypassed
  // itself (the scheduler reads it each cycle).
  std::function<bool(uint32_t slot, bool on, std::string& why)> bypass;
  // Live graph changes (/rackd/module/add, /rackd/module/remove,
  // /rackd/connect, /rackd/disconnect, /rackd/patch/load, /rackd/patch/save,
  // /rackd/graph): the hook answers the sender itself, now or later. Empty:
  // refused with "live graph changes are not available".
  std::function<void(const OscMessage& m, const Peer& from)> graph;
  // Bumped whenever the patch the dispatcher was given (modules by slot)
  // changes; empty: it never does.
  std::function<uint64_t()> graph_version;
  // Called by the control thread's loop; returns how many microseconds until
  // it wants to be called again (-1: no wish). Live graph changes move on here.
  std::function<int()> poll;
  uint32_t rate_hz = 48000;
  uint32_t block_frames = 128;
};

using SendFn = std::function<void(const Peer& to, const OscMessage& m)>;

inline constexpr std::size_t kMaxSubscribers = 16;

class Dispatcher {
 public:
  // `feedback_port`: 0 sends controller feedback back to the controller's own
  // address and port; otherwise to its address at this port (127.0.0.1 until
  // a controller has sent something).
  Dispatcher(shm::Segment& segment, const graph::Patch& patch, ServerHooks hooks, OscMap map, SendFn send,
             uint16_t feedback_port = 0);

  // [control] Handles one decoded message from `from`.
  void dispatch(const OscMessage& m, const Peer& from);
  // [control] Sends /rackd/error address reason to `to`.
  void error(const Peer& to, std::string_view address, std::string_view reason);
  // [control] Notifications: state changes and parameter changes always,
  // meters when `meters` is true; controller feedback.
  void tick(bool meters);

  const std::vector<Peer>& subscribers() const { return subscribers_; }
  // [control] Sends `m` to `to` (replies of hooks that answer later).
  void send(const Peer& to, const OscMessage& m) { send_(to, m); }
  const OscMap& map() const { return map_; }
  const ServerHooks& hooks() const { return hooks_; }

 private:
  struct ModuleSeen {
    uint32_t state = 0xffffffffu, bypassed = 0, muted = 0;
    uint64_t restarts = 0;
    uint32_t epoch = 0;
  };

  void status(const Peer& from);
  // Follows the patch when modules come and go: per-slot state for slots
  // whose module changed.
  void sync_slots();
  // [control] Parameter p of module i as it reads now: its slot, or what the
  // module reports for an output.
  ParamValues value_of(uint32_t i, uint32_t p) const;
  bool live(uint32_t slot) const { return slot < patch_.modules.size() && patch_.modules[slot].spec != nullptr; }
  // Fields /rackd/status.reply and /rackd/meters share.
  void append_counters(OscMessage& r) const;             // h:cycles h:xruns
  void append_load(OscMessage& r, uint32_t module) const;  // f:load f:max_load h:late
  void notify(const OscMessage& m, const Peer& from);
  void restart(const OscMessage& m, const Peer& from);
  void bypass(const OscMessage& m, const Peer& from);
  void mapped(const OscMapping& map, const OscMessage& m, const Peer& from);
  void param(const OscMessage& m, const Peer& from);
  bool module_arg(const OscMessage& m, const Peer& from, std::size_t nargs, uint32_t& slot);
  OscMessage module_state(uint32_t slot) const;
  void feedback(bool all);
  void send_all(const OscMessage& m);

  shm::Segment& segment_;
  const graph::Patch& patch_;
  ServerHooks hooks_;
  OscMap map_;
  SendFn send_;
  uint16_t feedback_port_;
  double period_ns_;
  std::vector<Peer> subscribers_;      // oldest first; at most kMaxSubscribers
  std::vector<ModuleSeen> seen_;
  std::vector<std::string> seen_names_;  // per slot: the module seen_ and values_ describe
  uint64_t seen_version_ = 0;
  std::vector<std::vector<ParamValues>> values_;  // last values notified, per module/param
  bool have_controller_ = false;
  Peer controller_;                    // where feedback goes
  std::vector<double> fed_;            // per mapping: last parameter value fed back (NaN: never)
};

}  // namespace rackd::control
