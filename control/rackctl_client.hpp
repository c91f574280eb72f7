// rackctl's UDP client: one connected socket to rackd, liblo for encoding and
// decoding, and the wait-for-answer rules every command shares (exit 1 on
// /rackd/error, 3 when rackd does not answer). rackctl's one thread only.
#pragma once

#include "modules/common/text.hpp"
#include <lo/lo.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

namespace rackctl {

constexpr int kExitRefused = 1;    // rackd answered /rackd/error
constexpr int kExitUsage = 2;      // bad command line; nothing was sent
constexpr int kExitNoAnswer = 3;   // rackd did not answer in time

struct Reply {
  std::string address;
  std::string types;
  lo_message msg = nullptr;
  lo_arg** argv = nullptr;
  ~Reply() {
    if (msg) lo_message_free(msg);
  }
  Reply() = default;
  Reply(const Reply&) = delete;
  Reply& operator=(const Reply&) = delete;
  double num(std::size_t i) const {
    if (i >= types.size()) return 0;
    switch (types[i]) {
      case 'i': return argv[i]->i;
      case 'h': return static_cast<double>(argv[i]->h);
      case 'f': return argv[i]->f;
      case 'd': return argv[i]->d;
      case 'T': return 1;
      default: return 0;
    }
  }
  std::string str(std::size_t i) const {
    return i < types.size() && (types[i] == 's' || types[i] == 'S') ? std::string(&argv[i]->s) : std::string();
  }
};

class Client {
 public:
  Client(const std::string& host, int port, double timeout_s) : timeout_ms_(static_cast<int>(timeout_s * 1000)) {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* res = nullptr;
    const std::string p = std::to_string(port);
    if (getaddrinfo(host.c_str(), p.c_str(), &hints, &res) != 0 || !res) {
      std::fprintf(stderr, "rackctl: cannot resolve host '%s'\n", host.c_str());
      std::exit(kExitUsage);
    }
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    // Connected: only rackd's datagrams arrive, and a closed port is reported
    // (ECONNREFUSED) instead of waiting for the timeout.
    if (fd_ < 0 || connect(fd_, res->ai_addr, res->ai_addrlen) != 0) {
      std::fprintf(stderr, "rackctl: cannot reach %s:%d: %s\n", host.c_str(), port, std::strerror(errno));
      std::exit(kExitNoAnswer);
    }
    freeaddrinfo(res);
    where_ = host + ":" + p;
  }
  ~Client() { close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void send(const char* path, lo_message m) {
    std::size_t len = 0;
    void* buf = lo_message_serialise(m, path, nullptr, &len);
    lo_message_free(m);
    if (!buf) {
      std::fprintf(stderr, "rackctl: '%s' is not a valid OSC address\n", path);
      std::exit(kExitUsage);
    }
    ::send(fd_, buf, len, 0);
    std::free(buf);
  }

  // Next message within timeout_ms (-1: the default). False on timeout.
  bool recv(Reply& r, int timeout_ms = -1) {
    pollfd p{fd_, POLLIN, 0};
    const int rc = poll(&p, 1, timeout_ms < 0 ? timeout_ms_ : timeout_ms);
    if (rc <= 0) return false;
    static uint8_t buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == ECONNREFUSED) no_answer();
      return false;
    }
    if (n < 4 || buf[0] != '/' || !memchr(buf, 0, static_cast<std::size_t>(n))) return false;
    int result = 0;
    lo_message m = lo_message_deserialise(buf, static_cast<std::size_t>(n), &result);
    if (!m) return false;
    if (r.msg) lo_message_free(r.msg);
    r.msg = m;
    r.address = reinterpret_cast<const char*>(buf);
    r.types = lo_message_get_types(m);
    r.argv = lo_message_get_argv(m);
    return true;
  }

  // Waits for `want` (whose first argument is the string `first`, when that is
  // not empty) or an error about `about`; exits 1 on the error, 3 on timeout.
  void await(Reply& r, const std::string& want, const std::string& about, const std::string& first = "") {
    timespec t0{};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
      timespec t{};
      clock_gettime(CLOCK_MONOTONIC, &t);
      const int left = timeout_ms_ - static_cast<int>((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
      if (left <= 0 || !recv(r, left)) no_answer();
      if (r.address == want && (first.empty() || r.str(0) == first)) return;
      if (r.address == "/rackd/error" && (about.empty() || r.str(0) == about)) {
        std::fprintf(stderr, "rackctl: %s: %s\n", r.str(0).c_str(), r.str(1).c_str());
        std::exit(kExitRefused);
      }
    }
  }

  [[noreturn]] void no_answer() const {
    std::fprintf(stderr, "rackctl: rackd does not answer on %s (is it running? is --port its --osc-port?)\n",
                 where_.c_str());
    std::exit(kExitNoAnswer);
  }

 private:
  int fd_ = -1;
  int timeout_ms_;
  std::string where_;
};

using rackd::modules::json_escape;


}  // namespace rackctl
