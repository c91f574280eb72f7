// The UDP socket and the control thread. [setup] start/stop; [control] the rest.
#include "control/control_server.hpp"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace rackd::control {
namespace {

// Datagrams read per wake-up before the thread looks at timers again.
constexpr int kBurst = 256;
// Large enough for any UDP datagram, so MSG_TRUNC reports the real size.
constexpr std::size_t kReceiveBytes = 65536;

uint64_t mono_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1'000'000;
}

}  // namespace

ControlServer::ControlServer(shm::Segment& segment, const graph::Patch& patch, ServerHooks hooks,
                             ControlOptions options)
    : options_(std::move(options)),
      dispatcher_(segment, patch, std::move(hooks), load_osc_map(patch),
                  [this](const Peer& to, const OscMessage& m) { send(to, m); }, options_.feedback_port),
      buffer_(kReceiveBytes) {
  scratch_.reserve(kMaxBundleMessages);
}

ControlServer::~ControlServer() { stop(); }

void ControlServer::start() {
  if (thread_.joinable()) return;
  std::string addr = options_.bind_addr.empty() || options_.bind_addr == "localhost" ? "127.0.0.1" : options_.bind_addr;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(options_.port);
  if (inet_pton(AF_INET, addr.c_str(), &sa.sin_addr) != 1)
    throw std::runtime_error("--osc-bind " + options_.bind_addr + ": not an IPv4 address (e.g. 127.0.0.1)");
  const bool loopback = (ntohl(sa.sin_addr.s_addr) >> 24) == 127;
  fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) throw std::runtime_error(std::string("OSC socket: ") + std::strerror(errno));
  if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    const int err = errno;
    close(fd_);
    fd_ = -1;
    if (err == EADDRINUSE)
      throw std::runtime_error("OSC port " + std::to_string(options_.port) + " on " + addr +
                               " is already in use (another rackd?); choose another with --osc-port");
    throw std::runtime_error("OSC socket: cannot bind " + addr + ":" + std::to_string(options_.port) + ": " +
                             std::strerror(err));
  }
  socklen_t len = sizeof sa;
  getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
  port_ = ntohs(sa.sin_port);
  if (!loopback)
    std::fprintf(stderr,
                 "rackd: warning: OSC bound to %s:%u, not loopback: anyone who can reach this address can "
                 "change parameters and restart modules\n",
                 addr.c_str(), port_);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    close(fd_);
    fd_ = -1;
    throw std::runtime_error(std::string("OSC eventfd: ") + std::strerror(errno));
  }
  stopping_.store(false);
  thread_ = std::thread([this] { thread_main(); });
}

void ControlServer::stop() {
  if (thread_.joinable()) {
    stopping_.store(true);
    const uint64_t one = 1;
    ssize_t r = write(wake_fd_, &one, sizeof one);
    (void)r;
    thread_.join();
  }
  if (fd_ >= 0) close(fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  fd_ = wake_fd_ = -1;
}

void ControlServer::send(const Peer& to, const OscMessage& m) {
  const std::vector<uint8_t> bytes = encode_message(m);
  if (bytes.empty() || fd_ < 0) return;
  // Non-blocking: a reply that does not fit in the socket buffer is dropped,
  // like any UDP datagram; the control thread never waits for a client.
  sendto(fd_, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&to.addr),
         sizeof to.addr);
}

void ControlServer::handle_datagram(const uint8_t* data, std::size_t size, const Peer& from) {
  received_.fetch_add(1, std::memory_order_relaxed);
  std::string why;
  scratch_.clear();
  if (size > kMaxPacketBytes) {
    why = "packet of " + std::to_string(size) + " bytes is larger than " + std::to_string(kMaxPacketBytes);
  } else if (unpack_packet(data, size, scratch_, why)) {
    const uint64_t now = timetag_now();
    for (TimedMessage& m : scratch_) {
      m.from = from;
      if (m.timetag <= now) {
        dispatcher_.dispatch(m.message, from);
      } else if (timetag_seconds(m.timetag, now) > kMaxFutureSeconds) {
        dispatcher_.error(from, m.message.address,
                          "bundle time is more than " + std::to_string(static_cast<int>(kMaxFutureSeconds)) +
                              " s in the future");
      } else {
        const std::string address = m.message.address;
        if (!queue_.push(std::move(m)))
          dispatcher_.error(from, address, "bundle queue full (" + std::to_string(queue_.capacity()) +
                                               " timed messages pending); message dropped");
      }
    }
    return;
  }
  refused_.fetch_add(1, std::memory_order_relaxed);
  dispatcher_.error(from, packet_label(data, size < kMaxPacketBytes ? size : kMaxPacketBytes), why);
}

void ControlServer::thread_main() {
  uint64_t next_tick = mono_ms() + static_cast<uint64_t>(options_.tick.count());
  std::vector<TimedMessage> due;
  due.reserve(kBundleQueueCapacity);
  while (!stopping_.load(std::memory_order_relaxed)) {
    uint64_t now_ms = mono_ms();
    int timeout = now_ms >= next_tick ? 0 : static_cast<int>(next_tick - now_ms);
    if (queue_.size()) {
      const double s = timetag_seconds(queue_.next_due(), timetag_now());
      const int ms = s <= 0 ? 0 : static_cast<int>(s * 1000.0) + 1;
      if (ms < timeout) timeout = ms;
    }
    // The poll hook (live graph changes) may want to be called again within
    // the millisecond: microseconds, through ppoll.
    int64_t wait_us = static_cast<int64_t>(timeout) * 1000;
    if (const auto& poll_hook = dispatcher_.hooks().poll) {
      const int us = poll_hook();
      if (us >= 0 && us < wait_us) wait_us = us;
    }
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    const timespec ts{static_cast<time_t>(wait_us / 1'000'000), static_cast<long>(wait_us % 1'000'000) * 1000};
    const int r = ppoll(fds, 2, &ts, nullptr);
    if (r < 0 && errno != EINTR) break;
    if (r > 0 && (fds[0].revents & POLLIN)) {
      for (int k = 0; k < kBurst; ++k) {
        sockaddr_in from{};
        socklen_t len = sizeof from;
        const ssize_t n = recvfrom(fd_, buffer_.data(), buffer_.size(), MSG_DONTWAIT | MSG_TRUNC,
                                   reinterpret_cast<sockaddr*>(&from), &len);
        if (n < 0) break;
        Peer p;
        p.addr = from;
        handle_datagram(buffer_.data(), static_cast<std::size_t>(n), p);
      }
    }
    if (queue_.size()) {
      due.clear();
      queue_.pop_due(timetag_now(), due);
      for (const TimedMessage& m : due) dispatcher_.dispatch(m.message, m.from);
    }
    now_ms = mono_ms();
    if (now_ms >= next_tick) {
      // Meters every tick; state and parameter changes are checked as often.
      dispatcher_.tick(true);
      next_tick = now_ms + static_cast<uint64_t>(options_.tick.count());
    }
  }
}

}  // namespace rackd::control
