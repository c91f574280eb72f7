// Server: engine + supervisor + exit summary. [setup] thread.
#include "server/server.hpp"

#include "modules/common/text.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <sstream>

namespace rackd::server {

namespace {

SupervisorPolicy policy_for(const EngineConfig& config) {
  SupervisorPolicy p;
  // Live: a module holding a request for 50 ms (about 19 periods at 128/48k)
  // is hung. Offline there is no period: the per-module timeout decides.
  if (config.offline) {
    p.hang_after = std::chrono::milliseconds(static_cast<long>(config.offline_timeout_ns / 1'000'000));
    p.hang_cycles = 1;
  } else {
    // As many cycles as fit in hang_after: the device kept running meanwhile.
    const double period_ms = 1e3 * config.block_frames / config.rate_hz;
    p.hang_cycles = static_cast<uint32_t>(static_cast<double>(p.hang_after.count()) / period_ms);
    // Each look of the supervisor is a wake-up that costs CPU beside the audio
    // (about 5 ms a second at 100 looks a second on this project's VMs).
    p.idle_look = p.hang_after;
  }
  return p;
}

}  // namespace

Server::Server(const Patch& patch, const EngineConfig& config)
    : engine_(patch, config), supervisor_(engine_.segment(), engine_.patch(), policy_for(config)) {
  supervisor_.set_cycle_source(&engine_.cycle_now());
}

Server::~Server() { stop(); }

std::vector<SetupFailure> Server::start(std::chrono::milliseconds timeout, bool warn_stragglers) {
  supervisor_.start();
  const bool settled = supervisor_.wait_ready(timeout);
  char waited[32];
  std::snprintf(waited, sizeof waited, "%g s", static_cast<double>(timeout.count()) / 1e3);
  std::vector<SetupFailure> failures;
  for (const auto& r : supervisor_.report()) {
    const std::string tries = std::to_string(r.restarts + 1) + (r.restarts ? " processes" : " process");
    std::string why;
    switch (r.state) {
      case shm::ModuleState::kRunning: continue;
      case shm::ModuleState::kSetupError: why = r.error; break;  // says what it refused
      case shm::ModuleState::kFailed:
        why = r.last_exit + " before it was ready (" + tries + "; the supervisor gave up)";
        break;
      case shm::ModuleState::kStarting:
        why = std::string("not ready after ") + waited + " (still setting up";
        why += r.last_exit.empty() ? ")" : "; an earlier process " + r.last_exit + ")";
        break;
      case shm::ModuleState::kDead:
        why = r.last_exit + " and is not ready after " + waited + " (restarting)";
        break;
      default: why = std::string("is ") + shm::state_name(r.state); break;
    }
    if (warn_stragglers && !settled &&
        (r.state == shm::ModuleState::kStarting || r.state == shm::ModuleState::kDead))
      std::fprintf(stderr, "rackd: warning: module %s is not ready yet; its output is replaced until it is\n",
                   r.name.c_str());
    failures.push_back({r.name, std::move(why)});
  }
  return failures;
}

void Server::stop() {
  if (stopped_) return;
  stopped_ = true;
  final_ = supervisor_.report();
  supervisor_.stop();
  const auto after = supervisor_.report();
  for (ModuleReport& f : final_) {
    for (const ModuleReport& a : after) {
      if (a.slot != f.slot) continue;
      f.restarts = a.restarts;
      f.restart_ms = a.restart_ms;
      f.hangs = a.hangs;
    }
  }
  engine_.segment().remove_name();
}

using modules::json_escape;

std::string Server::summary_json(uint64_t xruns, const std::string& extra) const {
  const auto reports = stopped_ ? final_ : const_cast<Supervisor&>(supervisor_).report();
  std::ostringstream o;
  // Graph changes: how many schedules the audio thread adopted, and what each took.
  std::vector<uint32_t> sw = engine_.swap_ns();
  std::sort(sw.begin(), sw.end());
  auto pct = [&](double q) { return sw.empty() ? 0.0 : sw[static_cast<std::size_t>(q * (sw.size() - 1))] / 1e3; };
  char swaps[160];
  std::snprintf(swaps, sizeof swaps, "\"graph_swaps\":%llu,\"swap_us\":{\"p50\":%.2f,\"p99\":%.2f,\"max\":%.2f},",
                static_cast<unsigned long long>(engine_.swaps()), pct(0.5), pct(0.99), sw.empty() ? 0.0 : sw.back() / 1e3);
  o << "{\"cycles\":" << engine_.cycles() << ",\"xruns\":" << xruns << ",\"limited_frames\":" << engine_.limited_frames()
    << ",\"mix_nonfinite\":" << engine_.mix_nonfinite() << "," << swaps << extra << "\"modules\":{";
  auto& seg = const_cast<Engine&>(engine_).segment();
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const auto& r = reports[i];
    const shm::ModuleIn& in = seg.module_in(r.slot);
    if (i) o << ",";
    o << "\"" << json_escape(r.name) << "\":{\"state\":\"" << shm::state_name(r.state) << "\""
      << ",\"late\":" << in.late.load() << ",\"restarts\":" << r.restarts
      << ",\"replaced\":" << in.replaced.load() << ",\"nonfinite\":" << in.nonfinite.load()
      << ",\"hangs\":" << r.hangs;
    if (r.latency_frames) o << ",\"latency_frames\":" << r.latency_frames;
    if (in.muted.load())
      o << ",\"muted\":\"" << shm::mute_reason_name(static_cast<shm::MuteReason>(in.mute_reason.load())) << "\"";
    if (!r.restart_ms.empty()) {
      o << ",\"restart_ms\":[";
      for (std::size_t k = 0; k < r.restart_ms.size(); ++k) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%s%.2f", k ? "," : "", r.restart_ms[k]);
        o << buf;
      }
      o << "]";
    }
    if (!r.error.empty()) o << ",\"error\":\"" << json_escape(r.error) << "\"";
    o << "}";
  }
  o << "}}";
  return o.str();
}


}  // namespace rackd::server
