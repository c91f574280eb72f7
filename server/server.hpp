// A running patch: the engine (segment + scheduler) and the supervisor (module
// processes), and the exit summary. [setup] thread; drivers call
// engine().run_cycle() from their audio thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "server/engine.hpp"
#include "server/supervisor.hpp"

namespace rackd::server {

// A module that is not running once Server::start() has waited: it refused its
// configuration, failed to start as often as the supervisor allows, or is
// still starting (or restarting) when the wait ends.
struct SetupFailure {
  std::string module;
  // What the module reported ("/x.sofa: libmysofa cannot read it: ..."), or
  // "exited with status 3 before it was ready (5 processes; the supervisor
  // gave up)", or "not ready after 10 s (still setting up)".
  std::string reason;
};

class Server {
 public:
  Server(const Patch& patch, const EngineConfig& config);
  ~Server();

  // Spawns the modules and waits (up to `timeout`) until each is ready or has
  // failed for good (refused its setup, or failed to start as often as the
  // supervisor allows). Returns the modules not running then, with the reason.
  // `warn_stragglers`: name the ones still starting on stderr (live: their
  // output is replaced until they are ready).
  std::vector<SetupFailure> start(std::chrono::milliseconds timeout, bool warn_stragglers = true);
  // Stops and reaps every module; keeps the state each had before, for summary().
  void stop();

  Engine& engine() { return engine_; }
  Supervisor& supervisor() { return supervisor_; }

  // {"cycles":N,"xruns":N,"modules":{"name":{"state":..,"late":N,"restarts":N,...}}}
  // `extra` is inserted verbatim after "xruns" (e.g. "\"overruns\":0,").
  std::string summary_json(uint64_t xruns, const std::string& extra = "") const;

 private:
  Engine engine_;
  Supervisor supervisor_;
  std::vector<ModuleReport> final_;  // snapshot taken by stop()
  bool stopped_ = false;
};


}  // namespace rackd::server
