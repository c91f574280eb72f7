// Live graph requests decoded from OSC (see graph_request.hpp). [control].
#include "control/graph_request.hpp"

#include <cmath>
#include <vector>

namespace rackd::control {
namespace {

bool is_string(const OscArg& a) { return a.tag == 's' || a.tag == 'S'; }

}  // namespace

bool parse_graph_request(const OscMessage& m, graph::Edit& e, std::string& why) {
  const std::string& a = m.address;
  std::vector<OscArg> args = m.args;
  // A trailing "fade" <ms> applies to every change.
  for (std::size_t k = 0; k < args.size(); ++k) {
    if (!is_string(args[k]) || args[k].s != "fade") continue;
    if (k + 2 != args.size() || !args[k + 1].is_number() || !std::isfinite(args[k + 1].number()) ||
        args[k + 1].number() < 0 || args[k + 1].number() > 10000) {
      why = "\"fade\" must be followed by the fade time in ms (0 to 10000), last";
      return false;
    }
    e.fade_ms = args[k + 1].number();
    args.resize(k);
    break;
  }
  auto strings = [&](std::size_t n, const char* usage) {
    for (std::size_t k = 0; k < n; ++k) {
      if (k >= args.size() || !is_string(args[k]) || args[k].s.empty()) {
        why = std::string("takes ") + usage;
        return false;
      }
    }
    return true;
  };
  if (a == "/rackd/module/add") {
    // The toml may be empty: a source with every key at its default.
    if (args.size() != 3 || !is_string(args[0]) || !is_string(args[1]) || !is_string(args[2]) || args[0].s.empty() ||
        args[1].s.empty()) {
      why = "takes s:name s:type s:toml [s:fade f:ms]";
      return false;
    }
    e.kind = graph::EditKind::kAdd;
    e.name = args[0].s;
    e.type = args[1].s;
    e.toml = args[2].s;
    return true;
  }
  if (a == "/rackd/module/remove") {
    if (!strings(1, "s:name [i:rewire] [s:fade f:ms]") || args.size() > 2 ||
        (args.size() == 2 && !(args[1].tag == 'i' || args[1].tag == 'T' || args[1].tag == 'F'))) {
      why = "takes s:name [i:rewire] [s:fade f:ms]";
      return false;
    }
    e.kind = graph::EditKind::kRemove;
    e.name = args[0].s;
    e.rewire = args.size() == 2 && (args[1].tag == 'T' || (args[1].tag == 'i' && args[1].i != 0));
    return true;
  }
  if (a == "/rackd/connect" || a == "/rackd/disconnect") {
    const bool connect = a == "/rackd/connect";
    const char* usage = connect ? "s:from s:to [f:gain_db] [s:fade f:ms]" : "s:from s:to [s:fade f:ms]";
    if (!strings(2, usage) || args.size() > (connect ? 3u : 2u) ||
        (args.size() == 3 && (!args[2].is_number() || !std::isfinite(args[2].number())))) {
      why = std::string("takes ") + usage;
      return false;
    }
    e.kind = connect ? graph::EditKind::kConnect : graph::EditKind::kDisconnect;
    e.from = args[0].s;
    e.to = args[1].s;
    if (args.size() == 3) {
      e.gain_db = args[2].number();
      if (*e.gain_db < -120 || *e.gain_db > 24) {
        why = "gain_db must be within [-120, 24]";
        return false;
      }
    }
    return true;
  }
  if (a == "/rackd/patch/load" || a == "/rackd/patch/save") {
    if (!strings(1, "s:path [s:fade f:ms]") || args.size() != 1) {
      why = "takes s:path (absolute) [s:fade f:ms]";
      return false;
    }
    if (args[0].s[0] != '/') {
      why = "the path must be absolute (the server's folder is not yours): " + args[0].s;
      return false;
    }
    e.kind = a == "/rackd/patch/load" ? graph::EditKind::kLoad : graph::EditKind::kSave;
    e.path = args[0].s;
    return true;
  }
  why = "not a graph request";
  return false;
}

}  // namespace rackd::control
