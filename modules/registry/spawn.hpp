// Runs a module executable to ask it something (--describe) and collects what
// it prints, within a time limit. [setup]/[control] threads.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace rackd::registry {

struct Captured {
  bool started = false;      // false: the file could not be run (error says why)
  bool timed_out = false;    // killed after the time limit
  int exit_status = -1;      // exit code, or -1
  int signal = 0;            // the signal that ended it, or 0
  std::string out, err;      // standard output and error (each cut at 1 MiB)
  std::string error;         // why it could not be started
};

// [setup] posix_spawn (no copy of the caller's pages, safe beside a running
// audio thread), reads both pipes until exit or `limit`, then SIGKILL.
Captured run_captured(const std::vector<std::string>& argv, std::chrono::milliseconds limit);

// [any] "exited with status 3", "killed by signal 11 (Segmentation fault)",
// "did not answer within 5 s", ...
std::string describe_failure(const Captured& c, std::chrono::milliseconds limit);

}  // namespace rackd::registry
