// Decoded OSC values as the control plane passes them around: one argument,
// one message, one peer (the UDP address a message came from or goes to).
// Plain value types; [control] thread (and the offline events loader).
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <vector>

namespace rackd::control {

// One argument. `tag` is the OSC type tag; the value sits in the field that tag
// uses: i/h/c/m/t -> i, f/d -> d, s/S/b -> s (a blob's bytes), T/F/N/I none.
struct OscArg {
  char tag = 'N';
  int64_t i = 0;
  double d = 0;
  std::string s;

  static OscArg int32(int32_t v) { OscArg a; a.tag = 'i'; a.i = v; return a; }
  static OscArg int64(int64_t v) { OscArg a; a.tag = 'h'; a.i = v; return a; }
  static OscArg float32(float v) { OscArg a; a.tag = 'f'; a.d = v; return a; }
  static OscArg float64(double v) { OscArg a; a.tag = 'd'; a.d = v; return a; }
  static OscArg boolean(bool v) { OscArg a; a.tag = v ? 'T' : 'F'; return a; }
  static OscArg string(std::string v) { OscArg a; a.tag = 's'; a.s = std::move(v); return a; }

  bool is_number() const { return tag == 'i' || tag == 'h' || tag == 'f' || tag == 'd'; }
  double number() const { return (tag == 'f' || tag == 'd') ? d : static_cast<double>(i); }
};

struct OscMessage {
  std::string address;
  std::vector<OscArg> args;

  std::string types() const {
    std::string t;
    for (const auto& a : args) t += a.tag;
    return t;
  }
};

// An IPv4 UDP endpoint (rackd binds IPv4 only: 127.0.0.1 unless told otherwise).
struct Peer {
  sockaddr_in addr{};

  bool operator==(const Peer& o) const {
    return addr.sin_addr.s_addr == o.addr.sin_addr.s_addr && addr.sin_port == o.addr.sin_port;
  }
  uint16_t port() const { return ntohs(addr.sin_port); }
  static Peer loopback(uint16_t port) {
    Peer p;
    p.addr.sin_family = AF_INET;
    p.addr.sin_port = htons(port);
    p.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return p;
  }
};

}  // namespace rackd::control
