// rackctl's live-graph commands (add, remove, connect, disconnect, load, save,
// graph): option parsing, add's KEY=VALUE -> TOML, the requests and the graph
// table. The addresses are described in control/README.md. rackctl's one thread.
#include "control/rackctl_graph.hpp"

#include <lo/lo.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <toml++/toml.h>
#include <vector>

#include "control/rackctl_client.hpp"
#include "graph/kv_toml.hpp"

namespace rackctl {

const char* const kGraphUsage =
    "\n"
    "live graph (a change waits until it is in effect; --fade MS sets its fade):\n"
    "  add NAME TYPE [KEY=VALUE...]  add a module; KEY=VALUE as in a patch\n"
    "  remove NAME [--rewire] remove a module (--rewire: its users take its inputs)\n"
    "  connect FROM TO [--gain DB]   mix FROM into TO's input\n"
    "  disconnect FROM TO     stop mixing FROM into TO's input\n"
    "  load PATCH             change the running graph into PATCH's (what differs)\n"
    "  save PATCH             write the running graph to PATCH\n"
    "  graph [--json]         modules, their inputs and states; what the output mixes\n";

namespace {

constexpr double kSlowTimeoutS = 15.0;  // add and load: a module may load files first

struct Options {
  std::vector<std::string> positional;
  double fade_ms = 0;  // 0: none given
  bool rewire = false;
  bool json = false;
  bool has_gain = false;
  double gain_db = 0;
  double timeout_s = 0;  // 0: none given after the command
};

bool parse_number(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtod(s.c_str(), &end);
  return *end == '\0' && errno == 0 && std::isfinite(out);
}

const char* usage_of(const std::string& cmd) {
  if (cmd == "add") return "usage: add NAME TYPE [KEY=VALUE...] [--fade MS]";
  if (cmd == "remove") return "usage: remove NAME [--rewire] [--fade MS]";
  if (cmd == "connect") return "usage: connect FROM TO [--gain DB] [--fade MS]";
  if (cmd == "disconnect") return "usage: disconnect FROM TO [--fade MS]";
  if (cmd == "load") return "usage: load PATCH [--fade MS]";
  if (cmd == "save") return "usage: save PATCH [--fade MS]";
  return "usage: graph [--json]";
}

// Options anywhere after the command word; false (and `why`) on a bad one.
bool parse_options(const std::vector<std::string>& args, Options& o, std::string& why) {
  const std::string& cmd = args[0];
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() < 2 || a.compare(0, 2, "--") != 0) {
      o.positional.push_back(a);
      continue;
    }
    const bool takes_value = a == "--fade" || a == "--gain" || a == "--timeout";
    if (takes_value && i + 1 >= args.size()) {
      why = cmd + ": " + a + " needs a value";
      return false;
    }
    double v = 0;
    if (a == "--fade" && cmd != "graph") {
      if (!parse_number(args[++i], v) || !(v > 0)) {
        why = cmd + ": --fade needs a number of milliseconds > 0";
        return false;
      }
      o.fade_ms = v;
    } else if (a == "--gain" && cmd == "connect") {
      if (!parse_number(args[++i], v)) {
        why = "connect: --gain needs a number of dB";
        return false;
      }
      o.has_gain = true;
      o.gain_db = v;
    } else if (a == "--timeout") {
      if (!parse_number(args[++i], v) || !(v > 0)) {
        why = cmd + ": --timeout must be a positive number of seconds";
        return false;
      }
      o.timeout_s = v;
    } else if (a == "--rewire" && cmd == "remove") {
      o.rewire = true;
    } else if (a == "--json" && cmd == "graph") {
      o.json = true;
    } else {
      why = std::string(usage_of(cmd)) + " (" + cmd + " has no " + a + ")";
      return false;
    }
  }
  return true;
}

std::string absolute_path(const std::string& p) {
  if (char* real = realpath(p.c_str(), nullptr)) {
    std::string s = real;
    std::free(real);
    return s;
  }
  std::error_code ec;
  const std::filesystem::path a = std::filesystem::absolute(p, ec);
  return ec ? p : a.lexically_normal().string();
}

void print_graph(const Reply& r, bool json) {
  const std::size_t n = r.types.empty() || r.types[0] != 'i' ? 0 : static_cast<std::size_t>(std::max(0.0, r.num(0)));
  std::size_t have = 0;
  while (have < n && 1 + 4 * have + 3 < r.types.size()) ++have;
  const std::string outputs = r.str(1 + 4 * have);
  if (json) {
    std::printf("{\"modules\":[");
    for (std::size_t k = 0; k < have; ++k) {
      const std::size_t b = 1 + 4 * k;
      std::printf("%s{\"name\":\"%s\",\"type\":\"%s\",\"state\":\"%s\",\"inputs\":\"%s\"}", k ? "," : "",
                  json_escape(r.str(b)).c_str(), json_escape(r.str(b + 1)).c_str(),
                  json_escape(r.str(b + 2)).c_str(), json_escape(r.str(b + 3)).c_str());
    }
    std::printf("],\"outputs\":\"%s\"}\n", json_escape(outputs).c_str());
    return;
  }
  std::printf("%-20s %-12s %-8s %s\n", "NAME", "TYPE", "STATE", "INPUTS");
  for (std::size_t k = 0; k < have; ++k) {
    const std::size_t b = 1 + 4 * k;
    const std::string inputs = r.str(b + 3);
    std::printf("%-20s %-12s %-8s %s\n", r.str(b).c_str(), r.str(b + 1).c_str(), r.str(b + 2).c_str(),
                inputs.empty() ? "-" : inputs.c_str());
  }
  std::printf("output <- %s\n", outputs.empty() ? "(nothing)" : outputs.c_str());
}

}  // namespace

bool is_graph_command(const std::string& cmd) {
  return cmd == "add" || cmd == "remove" || cmd == "connect" || cmd == "disconnect" || cmd == "load" ||
         cmd == "save" || cmd == "graph";
}

int run_graph_command(const std::vector<std::string>& args, const Target& target) {
  const std::string& cmd = args[0];
  Options o;
  std::string why;
  if (!parse_options(args, o, why)) return target.usage_error(why.c_str());
  const std::vector<std::string>& pos = o.positional;
  std::size_t want = 0;  // positional count (add: at least)
  if (cmd == "add") want = 2;
  else if (cmd == "remove" || cmd == "load" || cmd == "save") want = 1;
  else if (cmd == "connect" || cmd == "disconnect") want = 2;
  if (cmd == "add" ? pos.size() < want : pos.size() != want) return target.usage_error(usage_of(cmd));
  for (std::size_t k = 0; k < want; ++k)
    if (pos[k].empty()) return target.usage_error(usage_of(cmd));

  // Everything is checked before the socket is opened: a bad request sends nothing.
  std::string address, name;
  lo_message m = nullptr;
  if (cmd == "add") {
    std::string toml;
    if (!setup_toml(std::vector<std::string>(pos.begin() + 2, pos.end()), toml, why)) {
      std::fprintf(stderr, "rackctl: add: %s\n", why.c_str());
      return kExitUsage;
    }
    address = "/rackd/module/add";
    name = pos[0];
    m = lo_message_new();
    lo_message_add_string(m, pos[0].c_str());
    lo_message_add_string(m, pos[1].c_str());
    lo_message_add_string(m, toml.c_str());
  } else if (cmd == "remove") {
    address = "/rackd/module/remove";
    name = pos[0];
    m = lo_message_new();
    lo_message_add_string(m, pos[0].c_str());
    if (o.rewire) lo_message_add_int32(m, 1);
  } else if (cmd == "connect" || cmd == "disconnect") {
    address = "/rackd/" + cmd;
    name = pos[1];
    m = lo_message_new();
    lo_message_add_string(m, pos[0].c_str());
    lo_message_add_string(m, pos[1].c_str());
    if (o.has_gain) lo_message_add_float(m, static_cast<float>(o.gain_db));
  } else if (cmd == "load" || cmd == "save") {
    address = "/rackd/patch/" + cmd;
    name = absolute_path(pos[0]);
    m = lo_message_new();
    lo_message_add_string(m, name.c_str());
  }
  if (m && o.fade_ms > 0) {
    lo_message_add_string(m, "fade");
    lo_message_add_float(m, static_cast<float>(o.fade_ms));
  }

  double timeout_s = target.timeout_s;
  if (o.timeout_s > 0) timeout_s = o.timeout_s;
  else if (!target.timeout_given && (cmd == "add" || cmd == "load")) timeout_s = kSlowTimeoutS;
  Client c(target.host, target.port, timeout_s);
  Reply r;
  if (cmd == "graph") {
    c.send("/rackd/graph", lo_message_new());
    c.await(r, "/rackd/graph.reply", "/rackd/graph");
    print_graph(r, o.json);
    return 0;
  }
  c.send(address.c_str(), m);
  // rackd answers the sender only, so the address identifies the answer; the
  // name (a path rackd may spell differently) is not compared.
  c.await(r, "/rackd/done", address, address);
  return 0;
}

}  // namespace rackctl
