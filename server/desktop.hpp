// Per-output presets of a desktop run ([[desktop.output]] in a patch, see
// graph/patch_desktop.cpp): when PipeWire moves rackd's output to another
// device, the entry whose `match` the device's name contains decides the eq
// preset and which modules are bypassed; no entry matching means the patch as
// written. Applied as parameter writes (eq bands glide, a hrir's bypass
// crossfades), so a switch needs no restart and makes no click, and touches
// only the modules the [desktop] table names.
//
// Threads: output_changed() on the PipeWire thread ([control]); apply() on the
// thread that owns the graph editor (the OSC control thread, or the main one).
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "graph/patch.hpp"
#include "shm/segment.hpp"

namespace rackd::server {

class GraphEditor;

class DesktopPresets {
 public:
  explicit DesktopPresets(const graph::Patch& patch);

  // [control] The output now plays on this device: logs it and queues the switch.
  void output_changed(const std::string& name, const std::string& description);
  // [control] Writes the parameters of the newest queued switch, if any.
  void apply(const GraphEditor& editor, shm::Segment& segment);

  // What the entry for a device would set, for tests: module, parameter, values.
  struct Write {
    std::string module;
    std::string param;
    std::vector<double> values;
  };
  std::vector<Write> writes_for(const std::string& name, const std::string& description) const;
  // The entry index for a device, or -1.
  int entry_for(const std::string& name, const std::string& description) const;

 private:
  struct Module {
    std::string name;
    const registry::TypeSpec* spec = nullptr;
    std::vector<std::vector<double>> initial;  // the values the patch starts with
  };
  graph::Desktop desktop_;
  std::vector<Module> modules_;                // every module the [desktop] table names
  std::mutex mu_;
  bool pending_ = false;
  std::string name_, description_;
};

}  // namespace rackd::server
