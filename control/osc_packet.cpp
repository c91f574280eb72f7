// OSC packet validation, liblo decode/encode, bundle queue. [control] thread.
#include "control/osc_packet.hpp"

#include <lo/lo.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>

namespace rackd::control {
namespace {

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

uint64_t be64(const uint8_t* p) { return (uint64_t{be32(p)} << 32) | be32(p + 4); }

std::size_t pad4(std::size_t n) { return (n + 3) & ~std::size_t{3}; }

// An OSC string at data[pos]: NUL-terminated and zero-padded to 4 bytes, all of
// it before `size`. Returns the position after the padding, or 0 on failure.
std::size_t read_string(const uint8_t* data, std::size_t size, std::size_t pos, std::string& why,
                        const char* what) {
  const void* nul = pos < size ? std::memchr(data + pos, 0, size - pos) : nullptr;
  if (!nul) {
    why = std::string(what) + " is not NUL-terminated inside the packet";
    return 0;
  }
  const std::size_t len = static_cast<std::size_t>(static_cast<const uint8_t*>(nul) - (data + pos));
  const std::size_t end = pos + pad4(len + 1);
  if (end > size) {
    why = std::string(what) + " padding runs past the end of the packet";
    return 0;
  }
  for (std::size_t i = pos + len; i < end; ++i) {
    if (data[i] != 0) {
      why = std::string(what) + " padding is not zero";
      return 0;
    }
  }
  return end;
}

bool is_bundle(const uint8_t* data, std::size_t size) {
  return size >= 8 && std::memcmp(data, "#bundle", 8) == 0;
}

bool validate_bundle(const uint8_t* data, std::size_t size, int depth, std::size_t& messages,
                     std::string& why) {
  if (depth > kMaxBundleDepth) {
    why = "bundles nested deeper than " + std::to_string(kMaxBundleDepth);
    return false;
  }
  if (size < 16 || size % 4 != 0) {
    why = "bundle of " + std::to_string(size) + " bytes is too short or not a multiple of 4";
    return false;
  }
  std::size_t pos = 16;  // "#bundle\0" + timetag
  while (pos < size) {
    if (size - pos < 4) {
      why = "bundle element size runs past the end";
      return false;
    }
    const uint32_t len = be32(data + pos);
    pos += 4;
    if (len == 0 || len % 4 != 0 || len > size - pos) {
      why = "bundle element of " + std::to_string(len) + " bytes does not fit (" +
            std::to_string(size - pos) + " left) or is not a positive multiple of 4";
      return false;
    }
    const uint8_t* e = data + pos;
    if (e[0] == '#') {
      if (!is_bundle(e, len)) {
        why = "bundle element starts with '#' but is not a #bundle";
        return false;
      }
      if (!validate_bundle(e, len, depth + 1, messages, why)) return false;
    } else {
      if (++messages > kMaxBundleMessages) {
        why = "more than " + std::to_string(kMaxBundleMessages) + " messages in one packet";
        return false;
      }
      if (!validate_message(e, len, why)) return false;
    }
    pos += len;
  }
  return true;
}

void unpack_bundle(const uint8_t* data, std::size_t size, uint64_t outer, const Peer& from,
                   std::vector<TimedMessage>& out) {
  uint64_t tt = be64(data + 8);
  // "Immediately" inside a timed bundle means at the outer bundle's time; an
  // inner timetag earlier than its outer one is raised to it.
  if (tt == kImmediate || tt < outer) tt = outer;
  std::size_t pos = 16;
  while (pos < size) {
    const uint32_t len = be32(data + pos);
    pos += 4;
    if (data[pos] == '#') {
      unpack_bundle(data + pos, len, tt, from, out);
    } else {
      TimedMessage m;
      m.timetag = tt;
      m.from = from;
      std::string why;
      decode_message(data + pos, len, m.message, why);  // validated already
      out.push_back(std::move(m));
    }
    pos += len;
  }
}

}  // namespace

bool validate_message(const uint8_t* data, std::size_t size, std::string& why) {
  if (size > kMaxPacketBytes) {
    why = "packet of " + std::to_string(size) + " bytes is larger than " + std::to_string(kMaxPacketBytes);
    return false;
  }
  if (size < 8 || size % 4 != 0) {
    why = "message of " + std::to_string(size) + " bytes is too short or not a multiple of 4";
    return false;
  }
  if (data[0] != '/') {
    why = "address must start with '/'";
    return false;
  }
  std::size_t pos = read_string(data, size, 0, why, "address");
  if (!pos) return false;
  const std::size_t addr_len = std::strlen(reinterpret_cast<const char*>(data));
  if (addr_len > kMaxAddressBytes) {
    why = "address longer than " + std::to_string(kMaxAddressBytes) + " bytes";
    return false;
  }
  for (std::size_t i = 0; i < addr_len; ++i) {
    if (data[i] <= 0x20 || data[i] >= 0x7f) {
      why = "address contains a space or a non-printable character";
      return false;
    }
  }
  if (pos >= size || data[pos] != ',') {
    why = "missing type tag string (must start with ',')";
    return false;
  }
  const std::size_t tags_at = pos + 1;
  pos = read_string(data, size, pos, why, "type tag string");
  if (!pos) return false;
  const std::size_t ntags = std::strlen(reinterpret_cast<const char*>(data + tags_at));
  if (ntags > kMaxArgs) {
    why = "more than " + std::to_string(kMaxArgs) + " arguments";
    return false;
  }
  for (std::size_t t = 0; t < ntags; ++t) {
    const char tag = static_cast<char>(data[tags_at + t]);
    const std::size_t left = size - pos;
    switch (tag) {
      case 'i': case 'f': case 'c': case 'r': case 'm':
        if (left < 4) {
          why = std::string("argument ") + std::to_string(t + 1) + " ('" + tag + "') runs past the end";
          return false;
        }
        pos += 4;
        break;
      case 'h': case 'd': case 't':
        if (left < 8) {
          why = std::string("argument ") + std::to_string(t + 1) + " ('" + tag + "') runs past the end";
          return false;
        }
        pos += 8;
        break;
      case 's': case 'S':
        pos = read_string(data, size, pos, why, "string argument");
        if (!pos) return false;
        break;
      case 'b': {
        if (left < 4) {
          why = "blob argument " + std::to_string(t + 1) + " has no length";
          return false;
        }
        const uint32_t raw = be32(data + pos);
        // The length is a signed int32 on the wire; negative or larger than
        // what is left is refused before anything reads the blob.
        if (raw > 0x7fffffffu || raw > left - 4 || pad4(raw) > left - 4) {
          why = "blob length " + std::to_string(static_cast<int32_t>(raw)) + " does not fit in the " +
                std::to_string(left - 4) + " bytes left";
          return false;
        }
        pos += 4 + pad4(raw);
        break;
      }
      case 'T': case 'F': case 'N': case 'I':
        break;
      case '[': case ']':
        why = "array arguments are not supported";
        return false;
      default:
        why = std::string("unknown type tag '") + (tag >= 0x20 && tag < 0x7f ? std::string(1, tag) : "?") + "'";
        return false;
    }
  }
  if (pos != size) {
    why = std::to_string(size - pos) + " bytes after the last argument";
    return false;
  }
  return true;
}

bool validate_packet(const uint8_t* data, std::size_t size, std::string& why) {
  if (size > kMaxPacketBytes) {
    why = "packet of " + std::to_string(size) + " bytes is larger than " + std::to_string(kMaxPacketBytes);
    return false;
  }
  if (size > 0 && data[0] == '#') {
    if (!is_bundle(data, size)) {
      why = "packet starts with '#' but is not a #bundle";
      return false;
    }
    std::size_t messages = 0;
    return validate_bundle(data, size, 1, messages, why);
  }
  return validate_message(data, size, why);
}

bool decode_message(const uint8_t* data, std::size_t size, OscMessage& out, std::string& why) {
  if (!validate_message(data, size, why)) return false;
  // liblo takes a non-const pointer; give it a copy so the receive buffer stays ours.
  std::vector<uint8_t> copy(data, data + size);
  int result = 0;
  lo_message m = lo_message_deserialise(copy.data(), copy.size(), &result);
  if (!m) {
    why = "liblo could not decode the message (error " + std::to_string(result) + ")";
    return false;
  }
  out.address.assign(reinterpret_cast<const char*>(data));
  out.args.clear();
  const char* types = lo_message_get_types(m);
  lo_arg** argv = lo_message_get_argv(m);
  const int argc = lo_message_get_argc(m);
  for (int k = 0; k < argc; ++k) {
    OscArg a;
    a.tag = types[k];
    const lo_arg* v = argv[k];
    switch (a.tag) {
      case 'i': a.i = v->i; break;
      case 'h': a.i = v->h; break;
      case 'c': a.i = static_cast<unsigned char>(v->c); break;
      case 'r': a.i = v->i; break;  // RGBA colour, as one integer
      case 'm': a.i = (int64_t{v->m[0]} << 24) | (v->m[1] << 16) | (v->m[2] << 8) | v->m[3]; break;
      case 't': a.i = static_cast<int64_t>((uint64_t{v->t.sec} << 32) | v->t.frac); break;
      case 'f': a.d = v->f; break;
      case 'd': a.d = v->d; break;
      case 's': case 'S': a.s = &v->s; break;
      case 'b': {
        const uint32_t n = lo_blob_datasize(const_cast<lo_blob>(reinterpret_cast<const void*>(v)));
        const auto* bytes = static_cast<const char*>(lo_blob_dataptr(const_cast<lo_blob>(reinterpret_cast<const void*>(v))));
        a.s.assign(bytes, n);
        break;
      }
      default: break;  // T F N I carry no value
    }
    out.args.push_back(std::move(a));
  }
  lo_message_free(m);
  return true;
}

bool unpack_packet(const uint8_t* data, std::size_t size, std::vector<TimedMessage>& out,
                   std::string& why) {
  if (!validate_packet(data, size, why)) return false;
  if (data[0] == '#') {
    std::vector<TimedMessage> tmp;
    unpack_bundle(data, size, kImmediate, Peer{}, tmp);
    for (auto& m : tmp) out.push_back(std::move(m));
    return true;
  }
  TimedMessage m;
  if (!decode_message(data, size, m.message, why)) return false;
  out.push_back(std::move(m));
  return true;
}

std::vector<uint8_t> encode_message(const OscMessage& msg) {
  std::vector<uint8_t> bytes;
  if (msg.address.empty() || msg.address[0] != '/') return bytes;
  lo_message m = lo_message_new();
  for (const auto& a : msg.args) {
    switch (a.tag) {
      case 'i': lo_message_add_int32(m, static_cast<int32_t>(a.i)); break;
      case 'h': lo_message_add_int64(m, a.i); break;
      case 'f': lo_message_add_float(m, static_cast<float>(a.d)); break;
      case 'd': lo_message_add_double(m, a.d); break;
      case 's': lo_message_add_string(m, a.s.c_str()); break;
      case 'S': lo_message_add_symbol(m, a.s.c_str()); break;
      case 'T': lo_message_add_true(m); break;
      case 'F': lo_message_add_false(m); break;
      case 'N': lo_message_add_nil(m); break;
      case 'I': lo_message_add_infinitum(m); break;
      case 'b': {
        lo_blob b = lo_blob_new(static_cast<int32_t>(a.s.size()), a.s.data());
        lo_message_add_blob(m, b);
        lo_blob_free(b);
        break;
      }
      default: lo_message_add_nil(m); break;
    }
  }
  std::size_t len = 0;
  void* buf = lo_message_serialise(m, msg.address.c_str(), nullptr, &len);
  if (buf) {
    bytes.assign(static_cast<uint8_t*>(buf), static_cast<uint8_t*>(buf) + len);
    std::free(buf);
  }
  lo_message_free(m);
  return bytes;
}

std::string packet_label(const uint8_t* data, std::size_t size) {
  if (is_bundle(data, size)) return "#bundle";
  std::string s;
  for (std::size_t i = 0; i < size && i < 64; ++i) {
    if (data[i] == 0) break;
    if (data[i] <= 0x20 || data[i] >= 0x7f) return "?";
    s += static_cast<char>(data[i]);
  }
  if (s.empty() || s[0] != '/') return "?";
  return s;
}

uint64_t timetag_now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  const uint64_t sec = static_cast<uint64_t>(ts.tv_sec) + 2208988800ull;  // 1900 -> 1970
  const uint64_t frac = (static_cast<uint64_t>(ts.tv_nsec) << 32) / 1'000'000'000ull;
  return (sec << 32) | frac;
}

double timetag_seconds(uint64_t later, uint64_t earlier) {
  const double d = static_cast<double>(later >= earlier ? later - earlier : earlier - later) / 4294967296.0;
  return later >= earlier ? d : -d;
}

uint64_t timetag_add(uint64_t t, double seconds) {
  return t + static_cast<uint64_t>(std::llround(seconds * 4294967296.0));
}

BundleQueue::BundleQueue(std::size_t capacity) : slots_(capacity) {}

bool BundleQueue::push(TimedMessage m) {
  if (size_ == slots_.size()) return false;
  // Insert after every entry due at or before m: FIFO among equal timetags.
  std::size_t at = size_;
  while (at > 0 && slots_[at - 1].timetag > m.timetag) {
    slots_[at] = std::move(slots_[at - 1]);
    --at;
  }
  slots_[at] = std::move(m);
  ++size_;
  return true;
}

void BundleQueue::pop_due(uint64_t now, std::vector<TimedMessage>& out) {
  std::size_t n = 0;
  while (n < size_ && slots_[n].timetag <= now) ++n;
  if (n == 0) return;  // (and no self-move below)
  for (std::size_t k = 0; k < n; ++k) out.push_back(std::move(slots_[k]));
  for (std::size_t k = n; k < size_; ++k) slots_[k - n] = std::move(slots_[k]);
  for (std::size_t k = size_ - n; k < size_; ++k) slots_[k] = TimedMessage{};
  size_ -= n;
}

uint64_t BundleQueue::next_due() const { return size_ ? slots_[0].timetag : 0; }

}  // namespace rackd::control
