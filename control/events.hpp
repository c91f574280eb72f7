// Timed parameter changes for offline renders: `rackd render PATCH --in IN
// --out OUT --events FILE`. [setup] to load; apply_due() on the offline render
// thread between two cycles.
//
// File format, one event per line:
//   <seconds> <address> <args...>      e.g.  1.25 /binaural/yaw 90
// `#` starts a comment (whole line or after the arguments); blank lines are
// ignored. Arguments are typed like rackctl's: an integer, a number, true/false;
// anything else is a string (and refused by every parameter). Events need not
// be sorted; equal times keep file order. Every address and value is checked
// against the patch at load: a bad file is refused as a whole with
// `file:line: reason`.
//
// Graph changes take the same place, by OSC address or rackctl's word:
//   2.0 /rackd/module/add eq2 eq input=src gain_db=-3    (KEY=VALUE as rackctl add)
//   2.5 connect eq2 output        3.0 disconnect src output --fade 20
//   4.0 remove eq2 --rewire       5.0 load other.toml   (relative to this file)
// They are checked when due (the graph they apply to exists only then); a
// refused one fails the render with `file:line: reason`. While a file holds
// graph changes, parameter changes are checked when due as well.
//
// Timing rule (block-accurate and deterministic): an event at t seconds is due
// at frame f = round(t * rate_hz), and is in effect for the whole block that
// contains frame f, i.e. the block starting at floor(f / block) * block. The
// player writes it into the parameter slot before that block is run; the module
// reads its slots at the start of every block, so the block sees the new value.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "control/address.hpp"
#include "control/osc_arg.hpp"
#include "graph/edit.hpp"
#include "control/param_writer.hpp"
#include "graph/patch.hpp"
#include "shm/segment.hpp"

namespace rackd::control {

struct Event {
  double seconds = 0;
  ParamRef target;
  uint32_t count = 1;                  // values in use
  ParamValues values{};
  uint32_t line = 0;
  // A parameter change checked when it is due rather than at load (the file
  // also changes the graph, so the module may come or move): its address and
  // arguments. `lazy` false: `target` and `values` were checked at load.
  bool lazy = false;
  std::string address;
  std::vector<OscArg> args;
  // A graph change (add, remove, connect, disconnect, load, save).
  std::optional<graph::Edit> edit;
};

// [setup] Parses `text` (the content of `path`, which is used in messages).
// Throws std::runtime_error("path:line: reason"). Sorted by time, stable.
std::vector<Event> parse_events(const std::string& text, const std::string& path, const graph::Patch& patch);
// [setup] Reads and parses `path`.
std::vector<Event> load_events(const std::string& path, const graph::Patch& patch);

class EventPlayer {
 public:
  // [setup] `segment` must outlive the player.
  EventPlayer(shm::Segment& segment, std::vector<Event> events, uint32_t rate_hz, uint32_t block_frames);

  // [setup] For files with graph changes: `graph` gives the running graph by
  // slot (to resolve parameter addresses when due), `edit` applies a graph
  // change. Without them graph events are refused when due.
  void on_graph(std::function<const graph::Patch&()> graph, std::function<void(const Event&)> edit) {
    graph_ = std::move(graph);
    edit_ = std::move(edit);
  }
  // [any] The first problem met when an event was due ("file:line: reason"); empty: none.
  const std::string& error() const noexcept { return error_; }
  void set_error(const std::string& e) {
    if (error_.empty()) error_ = e;
  }

  // [offline render thread] Before running the block that starts at
  // `block_start_frame`: writes every not yet applied event whose frame is
  // before block_start_frame + block_frames. Returns how many were applied.
  // Allocation-free for parameter events checked at load; events never go
  // back in time.
  std::size_t apply_due(uint64_t block_start_frame) noexcept;

  // [any] Frame the next event not yet applied is due at; UINT64_MAX when none.
  uint64_t next_frame() const noexcept { return next_ < frames_.size() ? frames_[next_] : UINT64_MAX; }

  // [any] Frame an event is due at: round(seconds * rate_hz).
  uint64_t frame_of(const Event& e) const noexcept;
  std::size_t remaining() const noexcept { return events_.size() - next_; }

 private:
  shm::Segment& segment_;
  std::vector<Event> events_;
  std::vector<uint64_t> frames_;
  uint32_t rate_hz_;
  uint32_t block_frames_;
  std::size_t next_ = 0;
  std::function<const graph::Patch&()> graph_;
  std::function<void(const Event&)> edit_;
  std::string error_;
  std::string path_;
 public:
  void set_path(const std::string& p) { path_ = p; }
};

}  // namespace rackd::control
