// rackctl's live-graph commands: add, remove, connect, disconnect, load, save,
// graph. Each change command sends one request and waits for rackd's
// /rackd/done (the change is in effect) or /rackd/error. rackctl's one thread.
#pragma once

#include "graph/kv_toml.hpp"
#include <string>
#include <vector>

namespace rackctl {

// Where and how long to wait, from rackctl's global options.
struct Target {
  std::string host;
  int port = 0;
  double timeout_s = 2.0;
  bool timeout_given = false;       // --timeout before the command
  int (*usage_error)(const char*);  // prints why + the usage, returns the usage exit status
};

// The --help lines for these commands.
extern const char* const kGraphUsage;

// True for add, remove, connect, disconnect, load, save, graph.
bool is_graph_command(const std::string& cmd);

// Runs one of them; args[0] is the command word. Returns the exit status
// (or exits from the client on an error reply or no answer).
int run_graph_command(const std::vector<std::string>& args, const Target& target);

// `add`'s KEY=VALUE pairs as TOML text (graph/kv_toml.hpp).
using rackd::graph::setup_toml;

}  // namespace rackctl
