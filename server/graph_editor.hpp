// Live graph changes: add, remove, connect, disconnect, load, save, applied to
// a running engine without touching what they do not concern. [control]
// thread live (the OSC control thread polls it), the render thread offline
// (between two cycles); one thread at a time, never the audio thread.
//
// How a change travels (docs/live-graph.md has the long form):
//   1. The edit is applied to the running graph written as a patch and parsed
//      again (graph/edit.hpp): a bad one is refused here, nothing changed.
//   2. New processes (added modules, and replacements of modules whose setup
//      keys changed) are spawned into free slots and set up off the audio
//      path. One that refuses its setup or is not ready in time is stopped,
//      its slot freed, and the request refused: the graph is as it was.
//   3. A crossfade schedule is handed to the engine: old and new graph at
//      once, every edge moving toward its new gain (0 for what goes away).
//      The audio thread adopts it between two cycles. If old and new
//      together would form a cycle, what goes away fades out first and what
//      comes fades in after.
//   4. Once every gain has arrived, the final schedule (the new graph alone)
//      is handed over; modules that left are stopped and their slots freed
//      after the audio thread has adopted a schedule without them.
// Requests queue: one change is under way at a time, in arrival order.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "graph/edit.hpp"
#include "server/engine.hpp"
#include "server/supervisor.hpp"

namespace rackd::server {

class GraphEditor {
 public:
  // ok: `text` is what /rackd/done names; otherwise the reason.
  using Done = std::function<void(bool ok, const std::string& text)>;

  // `offline`: poll() waits for module processes itself (render thread).
  GraphEditor(Engine& engine, Supervisor& supervisor, const Patch& initial, bool offline);

  // Queues `e`; `done` is called from poll() (or from here for what is
  // refused at once, and for save).
  void submit(graph::Edit e, Done done);
  // Moves the change under way on. Live: returns how many ms until it wants
  // to be called again, -1 when nothing is under way. Offline: waits for
  // processes, returns when the change needs cycles to go on (or is done).
  int poll();
  bool busy() const { return active_ || !queue_.empty(); }

  // The running graph, module i in slot slots()[i].
  const Patch& graph() const { return model_; }
  const std::vector<uint32_t>& slots() const { return slots_; }
  // The running graph by slot: modules[s] is the module in slot s (an entry
  // with spec == nullptr for a free slot). What the OSC dispatcher addresses.
  const Patch& by_slot() const { return by_slot_; }
  // Bumped whenever by_slot() changes.
  uint64_t version() const { return version_; }

  // The running graph with the parameter values in effect, as patch text.
  std::string save_text();

  // Per module: name, type, state, inputs ("a, b (-6.0 dB)"); and the outputs.
  struct Row {
    std::string name, type, state, inputs;
  };
  std::vector<Row> rows() const;
  std::string outputs() const;

  // The longest a new process may take to become ready.
  static constexpr uint64_t kReadyTimeoutNs = 10'000'000'000ull;

 private:
  enum class Phase { kReady, kCross, kCrossWait, kSettle, kFinal, kFinalWait, kStop, kAbort };
  struct Change {
    graph::Edit edit;
    Done done;
    bool replied = false;
    Patch target;
    std::vector<uint32_t> target_slots;   // slot per target module
    std::vector<uint32_t> spawned;        // slots of new processes
    std::vector<uint32_t> retire;         // slots leaving the graph
    std::vector<std::pair<uint32_t, std::size_t>> param_writes;  // slot, target module index
    bool two_step = false;                // old and new together would form a cycle
    Phase phase = Phase::kReady;
    uint64_t ready_by_ns = 0;
    uint32_t schedule = 0;                // id of the schedule last handed over
    uint32_t fade_frames = 0;
    std::string abort_reason;
  };

  void start(Change& c);
  bool step(Change& c);                   // true: call again at once
  void reply(Change& c, bool ok, const std::string& text);
  void read_params();
  bool all_free(const std::vector<uint32_t>& slots) const;
  void update_by_slot(const Patch& p, const std::vector<uint32_t>& slots);
  // Schedules: the union of old and new (each edge toward its new gain), the
  // old one with what goes away fading out, and the new one alone.
  bool build_cross(const Change& c, Schedule& s) const;
  void build_fade_out(const Change& c, Schedule& s) const;
  void build_final(const Change& c, Schedule& s) const;
  void write_params(const Change& c);

  Engine& engine_;
  Supervisor& supervisor_;
  bool offline_;
  Patch model_;
  std::vector<uint32_t> slots_;
  Patch by_slot_;
  Patch view_;                            // the graph as rows() shows it: the newest one in effect
  std::vector<uint32_t> view_slots_;
  uint64_t version_ = 0;
  std::deque<Change> queue_;
  bool active_ = false;
};

}  // namespace rackd::server
