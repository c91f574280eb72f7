// Changes to a running graph, as values: the edit a user asks for (add,
// remove, connect, disconnect, load, save), the patch it leads to, the patch
// written back as TOML, and the difference between two patches. Shared by the
// control plane (OSC requests, timed events) and the server (which applies
// them). [setup]/[control] threads; everything here allocates.
//
// Every edit is validated the way a patch file is: the running graph is
// written out as a patch, the edit is applied to that text, and the result is
// parsed again. So a live graph can never hold what a patch file could not,
// and `rackd check` accepts whatever `save` writes.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "graph/patch.hpp"

namespace rackd::graph {

enum class EditKind { kAdd, kRemove, kConnect, kDisconnect, kLoad, kSave };

struct Edit {
  EditKind kind = EditKind::kAdd;
  std::string name;                    // add, remove: the module
  std::string type;                    // add
  std::string toml;                    // add: the module's keys as TOML (`input` included)
  std::string from, to;                // connect, disconnect; `to` may be "output"
  std::optional<double> gain_db;       // connect: the new source's gain
  bool rewire = false;                 // remove: connect its consumers to its inputs
  std::string path;                    // load, save
  double fade_ms = -1.0;               // < 0: the server's [server] fade_ms

  // The OSC address of the command ("/rackd/module/add", ...).
  const char* address() const;
  // What /rackd/done names: the module, TO, or the path.
  std::string subject() const;
};

// The name `output` stands for in connect/disconnect: the device output mixer.
inline constexpr const char* kOutputName = "output";

// The patch `current` becomes with `e` applied (add, remove, connect,
// disconnect; load reads e.path). Throws PatchError with a reason that names
// what is wrong; nothing about `current` changes.
Patch apply_edit(const Patch& current, const Edit& e);

// `p` as patch text that parse_patch() turns back into the same graph: every
// module in topological order with its input list, setup keys and parameter
// values (p.modules[i].params: callers put the values in effect there).
std::string to_toml(const Patch& p);

// What changes from `a` to `b`, module by module (by name).
struct Diff {
  std::vector<std::string> keep;       // same type, setup keys and channels: keeps running
  std::vector<std::string> replace;    // same name, anything else changed: a new process
  std::vector<std::string> add;        // only in b
  std::vector<std::string> remove;     // only in a
  bool inputs_changed = false;         // some kept module's inputs or the outputs changed
  bool params_changed = false;         // some kept module's parameter values changed
  // Non-empty when b cannot be applied while running ("rate 48000 -> 44100
  // needs a restart").
  std::string refused;
  bool empty() const {
    return replace.empty() && add.empty() && remove.empty() && !inputs_changed && !params_changed;
  }
};
Diff diff(const Patch& a, const Patch& b);

// Index of module `name` in `p`, or -1.
int find_module(const Patch& p, const std::string& name);

}  // namespace rackd::graph
