// rackd's OSC endpoint: owns the UDP socket (127.0.0.1 unless told otherwise,
// because liblo's own server always binds the wildcard address), the control
// thread that receives, validates, decodes and dispatches datagrams, the bounded
// queue of future-stamped bundle messages, and the periodic notifications.
//
// Threads: the constructor, start() and stop() run on the [setup] thread; the
// control thread does everything else. No audio thread is involved: values
// reach modules through parameter slots (param_writer.hpp), which the module
// reads at the start of its next block.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "control/dispatch.hpp"
#include "control/osc_packet.hpp"

namespace rackd::control {

inline constexpr uint16_t kDefaultOscPort = 9000;  // rackd --osc-port; rackctl --port

struct ControlOptions {
  uint16_t port = kDefaultOscPort;        // 0: any free port (tests); see port()
  std::string bind_addr = "127.0.0.1";    // IPv4 literal or "localhost"; others warn
  uint16_t feedback_port = 0;             // [osc.map] feedback port; 0: the sender's
  std::chrono::milliseconds tick{100};    // notifications and controller feedback
};

class ControlServer {
 public:
  // [setup] Reads [osc.map] from patch.path (throws graph::PatchError with
  // "file:line: reason"). `segment` and `patch` must outlive this object.
  ControlServer(shm::Segment& segment, const graph::Patch& patch, ServerHooks hooks, ControlOptions options);
  ~ControlServer();  // stop()
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // [setup] Binds the socket and starts the control thread. Throws
  // std::runtime_error with a message a user can act on ("OSC port 9000 on
  // 127.0.0.1 is already in use; choose another with --osc-port").
  void start();
  // [setup] Stops and joins the control thread, closes the socket. Idempotent.
  void stop();
  // [any] The bound port (after start()).
  uint16_t port() const { return port_; }

  // [any] Datagrams received / refused as malformed, since start().
  uint64_t received() const { return received_.load(std::memory_order_relaxed); }
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

  // [control] The dispatcher (hooks that answer later send through it).
  Dispatcher& dispatcher() { return dispatcher_; }

 private:
  void thread_main();
  void handle_datagram(const uint8_t* data, std::size_t size, const Peer& from);
  void send(const Peer& to, const OscMessage& m);

  ControlOptions options_;
  Dispatcher dispatcher_;
  BundleQueue queue_;
  std::vector<uint8_t> buffer_;          // receive buffer, allocated once
  std::vector<TimedMessage> scratch_;
  int fd_ = -1;
  int wake_fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> received_{0};
  std::atomic<uint64_t> refused_{0};
};

}  // namespace rackd::control
