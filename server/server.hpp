// A running patch: the engine (segment + scheduler) and the supervisor (module
// processes), and the exit summary. [setup] thread; drivers call
// engine().run_cycle() from their audio thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "server/engine.hpp"
#include "server/supervisor.hpp"

namespace rackd::server {

class Server {
 public:
  Server(const Patch& patch, const EngineConfig& config, const std::string& module_dir);
  ~Server();

  // Spawns the modules and waits (up to `timeout`) until each is ready or has
  // refused its setup; names the stragglers on stderr.
  void start(std::chrono::milliseconds timeout);
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

// Directory of the module executables: $RACKD_MODULE_DIR, else the directory
// of the running rackd binary if the modules are there (the build tree), else
// <that directory>/../libexec/rackd (installed).
std::string module_directory();

}  // namespace rackd::server
