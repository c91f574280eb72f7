// Raw OSC datagrams: validation before liblo sees a byte, decoding with liblo,
// encoding replies with liblo, and the bounded queue of future-stamped bundle
// messages. [control] thread (and the fuzz harness); allocates.
//
// Why validate first: liblo 0.31's lo_message_deserialise reads a blob's length
// before checking that it fits (the 8-byte datagram 23 66 00 00 2c 62 80 00
// reads past the buffer), and it knows nothing about bundles. So every packet is
// walked here, byte for byte, against the sizes it claims; only a packet that
// passes as a whole is handed to liblo, one message at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "control/osc_arg.hpp"

namespace rackd::control {

inline constexpr std::size_t kMaxPacketBytes = 16384;   // larger datagrams are refused whole
inline constexpr std::size_t kMaxAddressBytes = 255;
inline constexpr std::size_t kMaxArgs = 64;             // per message
inline constexpr int kMaxBundleDepth = 4;               // #bundle inside #bundle ...
inline constexpr std::size_t kMaxBundleMessages = 64;   // messages per datagram, all levels
inline constexpr std::size_t kBundleQueueCapacity = 256;
inline constexpr double kMaxFutureSeconds = 60.0;       // later bundles are refused
inline constexpr uint64_t kImmediate = 1;               // OSC timetag "now"

// [any] Checks one OSC message (not a bundle): size a multiple of 4 within
// kMaxPacketBytes; address "/..." of printable characters, NUL-terminated and
// zero-padded inside the buffer; a type tag string ",..." likewise, of known
// tags (i h f d s S b T F N I t c m; arrays are refused), at most kMaxArgs; every
// argument inside the buffer (blob lengths checked before use); no trailing
// bytes. False with a reason otherwise.
bool validate_message(const uint8_t* data, std::size_t size, std::string& why);

// [any] A message or a "#bundle": elements with positive, 4-aligned sizes that
// fit, nesting at most kMaxBundleDepth, at most kMaxBundleMessages messages.
bool validate_packet(const uint8_t* data, std::size_t size, std::string& why);

// [control] validate_message, then lo_message_deserialise into `out`.
bool decode_message(const uint8_t* data, std::size_t size, OscMessage& out, std::string& why);

// A message with the time it is due: kImmediate for a bare message, else the
// latest timetag of the bundles around it (an inner bundle may not be earlier
// than its outer one).
struct TimedMessage {
  uint64_t timetag = kImmediate;
  OscMessage message;
  Peer from;
};

// [control] validate_packet, then every message decoded, in packet order.
// Nothing is appended unless the whole packet is valid.
bool unpack_packet(const uint8_t* data, std::size_t size, std::vector<TimedMessage>& out,
                   std::string& why);

// [control] Serialises `m` with liblo. Empty on failure (bad address).
std::vector<uint8_t> encode_message(const OscMessage& m);

// [any] Best-effort printable address of a refused packet, for /rackd/error
// ("#bundle", "/foo", or "?").
std::string packet_label(const uint8_t* data, std::size_t size);

// [any] Current time as an OSC (NTP) timetag; seconds between two timetags.
uint64_t timetag_now();
double timetag_seconds(uint64_t later, uint64_t earlier);
uint64_t timetag_add(uint64_t t, double seconds);

// Messages of future-stamped bundles, due in timetag order (FIFO among equals).
// A fixed number of entries: when it is full, push() refuses and the caller
// reports /rackd/error, so a flood of future bundles cannot grow memory.
class BundleQueue {
 public:
  explicit BundleQueue(std::size_t capacity = kBundleQueueCapacity);

  // [control] False when full.
  bool push(TimedMessage m);
  // [control] Moves every message due at `now` into `out`, in order.
  void pop_due(uint64_t now, std::vector<TimedMessage>& out);
  // [control] Timetag of the next message, or 0 when empty.
  uint64_t next_due() const;
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return slots_.size(); }

 private:
  std::vector<TimedMessage> slots_;  // preallocated; the first size_ are used, sorted
  std::size_t size_ = 0;
};

}  // namespace rackd::control
