// --events files and the offline events player. [setup] parse; apply_due() on
// the offline render thread.
#include "control/events.hpp"

#include "graph/kv_toml.hpp"

#include <algorithm>
#include <utility>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
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

bool is_graph_word(const std::string& w) {
  static const char* const kWords[] = {"/rackd/module/add", "/rackd/module/remove", "/rackd/connect",
                                       "/rackd/disconnect", "/rackd/patch/load",    "/rackd/patch/save",
                                       "add", "remove", "connect", "disconnect", "load", "save"};
  for (const char* k : kWords) {
    if (w == k) return true;
  }
  return false;
}

// `<seconds> <command> <arguments...> [--fade MS] [--rewire] [--gain DB]`.
graph::Edit parse_edit(const std::vector<std::string>& tok, const std::string& path, uint32_t line) {
  graph::Edit e;
  std::string word = tok[1];
  if (word.rfind("/rackd/", 0) == 0) word = word.substr(word.rfind('/') + 1);
  std::vector<std::string> pos;
  for (std::size_t k = 2; k < tok.size(); ++k) {
    const std::string& t = tok[k];
    auto number = [&](double& out) {
      if (k + 1 >= tok.size()) fail(path, line, t + " needs a number");
      char* end = nullptr;
      out = std::strtod(tok[k + 1].c_str(), &end);
      if (!end || *end != '\0' || !std::isfinite(out)) fail(path, line, t + " needs a number, not \"" + tok[k + 1] + "\"");
      ++k;
    };
    if (t == "--fade") {
      number(e.fade_ms);
      if (e.fade_ms < 0) fail(path, line, "--fade must be 0 or more milliseconds");
    } else if (t == "--rewire") {
      e.rewire = true;
    } else if (t == "--gain") {
      double g = 0;
      number(g);
      e.gain_db = g;
    } else {
      pos.push_back(t);
    }
  }
  auto want = [&](std::size_t n, const char* usage) {
    if (word == "add" ? pos.size() < n : pos.size() != n) fail(path, line, std::string("usage: <seconds> ") + usage);
  };
  if (word == "add") {
    want(2, "add NAME TYPE [KEY=VALUE...] [--fade MS]");
    e.kind = graph::EditKind::kAdd;
    e.name = pos[0];
    e.type = pos[1];
    std::string why;
    if (!graph::setup_toml(std::vector<std::string>(pos.begin() + 2, pos.end()), e.toml, why))
      fail(path, line, "add: " + why);
  } else if (word == "remove") {
    want(1, "remove NAME [--rewire] [--fade MS]");
    e.kind = graph::EditKind::kRemove;
    e.name = pos[0];
  } else if (word == "connect" || word == "disconnect") {
    want(2, word == "connect" ? "connect FROM TO [--gain DB] [--fade MS]" : "disconnect FROM TO [--fade MS]");
    e.kind = word == "connect" ? graph::EditKind::kConnect : graph::EditKind::kDisconnect;
    e.from = pos[0];
    e.to = pos[1];
  } else {
    want(1, word == "load" ? "load PATCH [--fade MS]" : "save PATCH");
    e.kind = word == "load" ? graph::EditKind::kLoad : graph::EditKind::kSave;
    // Relative to the events file, like paths in a patch.
    std::filesystem::path p = pos[0];
    if (p.is_relative()) p = std::filesystem::absolute(std::filesystem::path(path).parent_path() / p);
    e.path = p.lexically_normal().string();
  }
  return e;
}

}  // namespace

std::vector<Event> parse_events(const std::string& text, const std::string& path, const graph::Patch& patch) {
  std::vector<Event> events;
  bool any_edit = false;
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
    if (is_graph_word(tok[1])) {
      e.edit = parse_edit(tok, path, line);
      any_edit = true;
      events.push_back(std::move(e));
      continue;
    }
    e.address = tok[1];
    for (std::size_t k = 2; k < tok.size(); ++k) e.args.push_back(infer(tok[k]));
    events.push_back(std::move(e));
  }
  // Parameter changes are checked now unless the graph changes under them.
  for (Event& e : events) {
    if (e.edit) continue;
    if (any_edit) {
      e.lazy = true;
      continue;
    }
    std::string why;
    if (!resolve_param(patch, e.address, e.target, why)) fail(path, e.line, e.address + ": " + why);
    if (!convert_args(*e.target.spec, e.args, e.values, why)) fail(path, e.line, e.address + ": " + why);
    e.count = e.target.spec->count;
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
    if (!e.lazy && !e.edit && e.target.module >= segment_.module_count())
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
    if (e.edit) {
      if (edit_) edit_(e);
      else set_error(path_ + ":" + std::to_string(e.line) + ": graph changes are not available here");
    } else if (e.lazy) {
      ParamRef ref;
      ParamValues values{};
      std::string why;
      if (!graph_ || !resolve_param(graph_(), e.address, ref, why) || !convert_args(*ref.spec, e.args, values, why)) {
        set_error(path_ + ":" + std::to_string(e.line) + ": " + e.address + ": " + (why.empty() ? "not available" : why));
      } else {
        write_param(segment_.module_in(ref.module), ref.param, std::span<const double>(values.data(), ref.spec->count));
      }
    } else {
      write_param(segment_.module_in(e.target.module), e.target.param,
                  std::span<const double>(e.values.data(), e.count));
    }
    ++next_;
    ++n;
  }
  return n;
}

}  // namespace rackd::control
