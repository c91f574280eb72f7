// --events files and the offline events player. [setup] parse; apply_due() on
// the offline render thread.
#include "control/events.hpp"

#include <algorithm>
#include <utility>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace rackd::control {
namespace {

[[noreturn]] void fail(const std::string& path, uint32_t line, const std::string& reason) {
  throw std::runtime_error(path + ":" + std::to_string(line) + ": " + reason);
}

// rackctl's inference: integer, number, true/false, else string.
OscArg infer(const std::string& tok) {
  if (tok == "true") return OscArg::boolean(true);
  if (tok == "false") return OscArg::boolean(false);
  char* end = nullptr;
  errno = 0;
  const long long i = std::strtoll(tok.c_str(), &end, 10);
  if (end && *end == '\0' && errno == 0 && !tok.empty()) {
    if (i >= INT32_MIN && i <= INT32_MAX) return OscArg::int32(static_cast<int32_t>(i));
    return OscArg::int64(i);
  }
  errno = 0;
  const double d = std::strtod(tok.c_str(), &end);
  if (end && *end == '\0' && errno == 0 && !tok.empty()) return OscArg::float64(d);
  return OscArg::string(tok);
}

}  // namespace

std::vector<Event> parse_events(const std::string& text, const std::string& path, const graph::Patch& patch) {
  std::vector<Event> events;
  std::istringstream in(text);
  std::string raw;
  uint32_t line = 0;
  while (std::getline(in, raw)) {
    ++line;
    if (const std::size_t hash = raw.find('#'); hash != std::string::npos) raw.resize(hash);
    std::istringstream ls(raw);
    std::vector<std::string> tok;
    for (std::string t; ls >> t;) tok.push_back(t);
    if (tok.empty()) continue;
    Event e;
    e.line = line;
    char* end = nullptr;
    e.seconds = std::strtod(tok[0].c_str(), &end);
    if (!end || *end != '\0' || !std::isfinite(e.seconds))
      fail(path, line, "\"" + tok[0] + "\" is not a time in seconds (write: <seconds> <address> <values...>)");
    if (e.seconds < 0) fail(path, line, "time " + tok[0] + " is negative");
    if (e.seconds > 1e7) fail(path, line, "time " + tok[0] + " is too far away");
    if (tok.size() < 2) fail(path, line, "missing address after the time");
    std::string why;
    if (!resolve_param(patch, tok[1], e.target, why)) fail(path, line, tok[1] + ": " + why);
    std::vector<OscArg> args;
    for (std::size_t k = 2; k < tok.size(); ++k) args.push_back(infer(tok[k]));
    if (!convert_args(*e.target.spec, args, e.values, why)) fail(path, line, tok[1] + ": " + why);
    e.count = e.target.spec->count;
    events.push_back(e);
  }
  // By time, then file order (one event per line). Not std::stable_sort: with
  // clang and this libstdc++ it instantiates the deprecated get_temporary_buffer.
  std::sort(events.begin(), events.end(),
            [](const Event& a, const Event& b) { return std::pair(a.seconds, a.line) < std::pair(b.seconds, b.line); });
  return events;
}

std::vector<Event> load_events(const std::string& path, const graph::Patch& patch) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot read the events file");
  std::ostringstream ss;
  ss << f.rdbuf();
  return parse_events(ss.str(), path, patch);
}

EventPlayer::EventPlayer(shm::Segment& segment, std::vector<Event> events, uint32_t rate_hz, uint32_t block_frames)
    : segment_(segment), events_(std::move(events)), rate_hz_(rate_hz), block_frames_(block_frames ? block_frames : 1) {
  for (const Event& e : events_) {
    if (e.target.module >= segment_.module_count())
      throw std::runtime_error("events: module index out of range for this segment");
    frames_.push_back(frame_of(e));
  }
}

uint64_t EventPlayer::frame_of(const Event& e) const noexcept {
  return static_cast<uint64_t>(std::llround(e.seconds * rate_hz_));
}

std::size_t EventPlayer::apply_due(uint64_t block_start_frame) noexcept {
  const uint64_t end = block_start_frame + block_frames_;
  std::size_t n = 0;
  while (next_ < events_.size() && frames_[next_] < end) {
    const Event& e = events_[next_];
    write_param(segment_.module_in(e.target.module), e.target.param, std::span<const double>(e.values.data(), e.count));
    ++next_;
    ++n;
  }
  return n;
}

}  // namespace rackd::control
