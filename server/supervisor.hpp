// The supervisor: spawns one process per module, notices a death within a
// millisecond through its pidfd, restarts it (the new process finds its
// parameters in the segment), and stops everything on shutdown. Its own thread
// does the watching; the other methods are for the [setup] thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "graph/patch.hpp"
#include "shm/segment.hpp"

namespace rackd::server {

// The graph library's names, as the server uses them.
using graph::kDeviceInput;
using graph::Patch;
using graph::PatchError;
using graph::PatchInput;
using graph::PatchModule;

struct ModuleReport {
  uint32_t slot = 0;
  std::string name;
  shm::ModuleState state = shm::ModuleState::kStarting;
  uint64_t restarts = 0;
  std::string error;                 // setup failure, if any
  std::string last_exit;             // how its last process ended ("exited with status 3"); empty: none has
  std::vector<double> restart_ms;    // death -> first good block again, per restart
  uint64_t hangs = 0;                // times it was killed for not progressing
  uint32_t latency_frames = 0;       // what its spec says it delays its output by
};

struct SupervisorPolicy {
  // A module with a request outstanding this long is hung: killed and restarted,
  // provided the server ran at least hang_cycles cycles meanwhile (so a stall
  // of the whole machine, which stops the device too, is not taken for a hang).
  std::chrono::milliseconds hang_after{50};
  uint32_t hang_cycles = 0;
  // How often a running module that holds no request is looked at (its
  // control page checked for scribbles). At most hang_after: a request taken
  // after a look is then still caught hang_after after it was sent. Live,
  // every look is a wake-up that costs CPU beside the audio: hang_after.
  std::chrono::milliseconds idle_look{10};
  // After this many failures within `window`, stop restarting (state "failed").
  std::size_t give_up_after = 5;
  std::chrono::seconds window{30};
  // Running this long without a failure forgets earlier failures (backoff resets).
  std::chrono::seconds healthy_after{60};
};

class Supervisor {
 public:
  // Each module runs its type's executable (an absolute path found on the
  // module path, modules/registry/registry.hpp).
  Supervisor(shm::Segment& segment, const Patch& patch, SupervisorPolicy policy = {});
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // [setup] Spawns every module and starts the watcher thread. Throws if a
  // module executable is missing.
  void start();
  // [setup] Waits until every module is ready or has refused its setup.
  // Returns false on timeout.
  bool wait_ready(std::chrono::milliseconds timeout);
  // [setup] No more restarts; SIGTERM, SIGKILL after 300 ms; reaps everything.
  void stop();

  // Every module in a slot, in slot order.
  std::vector<ModuleReport> report() const;
  pid_t pid_of(uint32_t slot) const;

  // [control] A new module in free slot `slot`, whose ModuleIn the caller has
  // written: spawned now, watched and restarted like the others. Throws if
  // its executable is missing.
  void add(uint32_t slot, const PatchModule& m);
  // [control] Stops the module in `slot` for good (no restart): SIGKILL, and
  // the slot is free once the process is reaped (is_free()).
  void remove(uint32_t slot);
  // [any] True when `slot` holds no module and no process.
  bool is_free(uint32_t slot) const;

  // [control] Restart a module now: a running one is killed and replaced
  // (not counted as a failure); a failed or refused one is re-armed with a
  // clean failure history. False (with a reason) while stopping.
  bool restart(uint32_t slot, std::string& error);

  // [setup] Where the supervisor reads the number of the cycle being run.
  void set_cycle_source(const std::atomic<uint32_t>* cycle) { cycle_source_ = cycle; }

  // Restart delay after the k-th failure within the failure window: 0 for the
  // first, then 50 ms doubling, capped at 2 s.
  static std::chrono::milliseconds backoff(std::size_t failures_in_window);

 private:
  struct Child {
    bool active = false;             // a module lives in this slot
    bool removing = false;           // remove() asked: no restart, free once reaped
    bool spawn_pending = false;      // add() asked: the watcher thread spawns it
    std::string exe;
    pid_t pid = -1;
    int pidfd = -1;
    bool restart_pending = false;
    uint64_t restart_at_ns = 0;
    uint64_t died_at_ns = 0;
    bool restarted = false;          // the current process replaces a dead one
    bool manual = false;             // the current death was asked for (restart())
    bool hang_killed = false;        // the supervisor killed it for not progressing
    uint64_t ready_at_ns = 0;
    std::deque<uint64_t> failures;   // death times within the window
    ModuleReport report;
  };

  void spawn(uint32_t slot);
  void reap(uint32_t slot);
  void check_ready(uint32_t slot, uint64_t now);
  // Returns how long until the module should be looked at again, in ns.
  uint64_t check_hung(uint32_t slot, uint64_t now);
  void thread_main();

  shm::Segment& segment_;
  SupervisorPolicy policy_;
  const std::atomic<uint32_t>* cycle_source_ = nullptr;
  mutable std::mutex mu_;            // guards children_ between the watcher and readers
  std::vector<Child> children_;      // per slot (kMaxModules)
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
};

}  // namespace rackd::server
