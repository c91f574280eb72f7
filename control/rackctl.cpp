// rackctl: the command-line client of rackd's OSC control plane. Its own
// program with one thread; talks to rackd over UDP (127.0.0.1:9000 unless
// told otherwise) with liblo for encoding and decoding. See `rackctl --help`.
// Here: main, status/set/get/restart/bypass/dump/top; the socket is in
// rackctl_client.hpp, the live-graph commands in rackctl_graph.cpp.
#include <lo/lo.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "control/rackctl_client.hpp"
#include "control/rackctl_graph.hpp"

namespace {

using rackctl::Client;
using rackctl::json_escape;
using rackctl::Reply;

constexpr int kDefaultPort = 9000;  // rackd's default --osc-port

const char* const kUsageHead =
    "usage: rackctl [--host ADDR] [--port N] [--timeout SECONDS] COMMAND [ARGS...]\n"
    "\n"
    "Talks to a running rackd over OSC (UDP, default 127.0.0.1:9000).\n"
    "\n"
    "commands:\n"
    "  status [--json]        rate, block, cycles, xruns; per module state, DSP load,\n"
    "                         worst block, late blocks, restarts\n"
    "  set ADDR ARGS...       send any OSC message, e.g. set /eq/band/1/gain -3.0;\n"
    "                         arguments are typed: 12 -> int, -3.0 / 1e3 -> float,\n"
    "                         true / false -> bool, anything else -> string\n"
    "  get ADDR               print a parameter's value (ADDR/get)\n"
    "  restart NAME           restart module NAME\n"
    "  bypass NAME 0|1        bypass module NAME (output = input) or stop bypassing\n"
    "  dump                   print notifications (state changes, meters, parameter\n"
    "                         changes) until Ctrl-C\n"
    "  top                    live per-module view, refreshed every second; q quits\n";
const char* const kUsageTail =
    "\n"
    "options:\n"
    "  --host ADDR            rackd's address (default 127.0.0.1)\n"
    "  --port N               rackd's --osc-port (default $RACKD_OSC_PORT, else 9000)\n"
    "  --timeout SECONDS      how long to wait for an answer (default 2; add\n"
    "                         and load: 15)\n"
    "\n"
    "exit status: 0 ok, 1 rackd refused the request (/rackd/error), 2 usage,\n"
    "3 rackd did not answer.\n";

void print_usage(FILE* to) {
  std::fputs(kUsageHead, to);
  std::fputs(rackctl::kGraphUsage, to);
  std::fputs(kUsageTail, to);
}

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

lo_message typed(const std::vector<std::string>& args) {
  lo_message m = lo_message_new();
  for (const std::string& a : args) {
    char* end = nullptr;
    errno = 0;
    const long long i = std::strtoll(a.c_str(), &end, 10);
    if (!a.empty() && *end == '\0' && errno == 0) {
      if (i >= INT32_MIN && i <= INT32_MAX) lo_message_add_int32(m, static_cast<int32_t>(i));
      else lo_message_add_int64(m, i);
      continue;
    }
    errno = 0;
    const double d = std::strtod(a.c_str(), &end);
    if (!a.empty() && *end == '\0' && errno == 0) {
      lo_message_add_float(m, static_cast<float>(d));
      continue;
    }
    if (a == "true") lo_message_add_true(m);
    else if (a == "false") lo_message_add_false(m);
    else lo_message_add_string(m, a.c_str());
  }
  return m;
}

void print_args(const Reply& r, FILE* to) {
  for (std::size_t i = 0; i < r.types.size(); ++i) {
    switch (r.types[i]) {
      case 'i': std::fprintf(to, " %d", r.argv[i]->i); break;
      case 'h': std::fprintf(to, " %" PRId64, static_cast<int64_t>(r.argv[i]->h)); break;
      case 'f': std::fprintf(to, " %g", static_cast<double>(r.argv[i]->f)); break;
      case 'd': std::fprintf(to, " %g", r.argv[i]->d); break;
      case 's': case 'S': std::fprintf(to, " %s", &r.argv[i]->s); break;
      case 'T': std::fprintf(to, " true"); break;
      case 'F': std::fprintf(to, " false"); break;
      default: std::fprintf(to, " <%c>", r.types[i]); break;
    }
  }
}

struct ModuleRow {
  std::string name, type, state;
  double load = 0, max_load = 0;
  uint64_t late = 0, restarts = 0;
  bool bypassed = false, muted = false;
  uint32_t latency_frames = 0;
};

struct Status {
  uint32_t rate = 0, block = 0;
  uint64_t cycles = 0, xruns = 0, limited_frames = 0;
  std::vector<ModuleRow> modules;
};

Status fetch_status(Client& c) {
  c.send("/rackd/status", lo_message_new());
  Reply r;
  c.await(r, "/rackd/status.reply", "/rackd/status");
  Status s;
  constexpr std::size_t kHead = 6;  // rate block cycles xruns limited_frames n
  if (r.types.size() < kHead) return s;
  s.rate = static_cast<uint32_t>(r.num(0));
  s.block = static_cast<uint32_t>(r.num(1));
  s.cycles = static_cast<uint64_t>(r.num(2));
  s.xruns = static_cast<uint64_t>(r.num(3));
  s.limited_frames = static_cast<uint64_t>(r.num(4));
  const std::size_t n = static_cast<std::size_t>(r.num(5));
  for (std::size_t k = 0; k < n && kHead + 10 * k + 9 < r.types.size(); ++k) {
    const std::size_t b = kHead + 10 * k;
    ModuleRow m;
    m.name = r.str(b);
    m.type = r.str(b + 1);
    m.state = r.str(b + 2);
    m.load = r.num(b + 3);
    m.max_load = r.num(b + 4);
    m.late = static_cast<uint64_t>(r.num(b + 5));
    m.restarts = static_cast<uint64_t>(r.num(b + 6));
    m.bypassed = r.num(b + 7) != 0;
    m.muted = r.num(b + 8) != 0;
    m.latency_frames = static_cast<uint32_t>(r.num(b + 9));
    s.modules.push_back(m);
  }
  return s;
}

void print_status(const Status& s, bool json, uint64_t xrun_delta = 0, bool top = false) {
  const double period_us = s.rate ? 1e6 * s.block / s.rate : 0;
  if (json) {
    std::printf("{\"rate\":%u,\"block\":%u,\"cycles\":%" PRIu64 ",\"xruns\":%" PRIu64 ",\"limited_frames\":%" PRIu64
                ",\"modules\":{",
                s.rate, s.block, s.cycles, s.xruns, s.limited_frames);
    for (std::size_t k = 0; k < s.modules.size(); ++k) {
      const ModuleRow& m = s.modules[k];
      std::printf("%s\"%s\":{\"type\":\"%s\",\"state\":\"%s\",\"load\":%.4f,\"max_load\":%.4f,"
                  "\"max_block_us\":%.1f,\"late\":%" PRIu64 ",\"restarts\":%" PRIu64 ",\"bypassed\":%s,\"muted\":%s,"
                  "\"latency_frames\":%u}",
                  k ? "," : "", json_escape(m.name).c_str(), json_escape(m.type).c_str(), json_escape(m.state).c_str(),
                  m.load, m.max_load, m.max_load * period_us, m.late, m.restarts, m.bypassed ? "true" : "false",
                  m.muted ? "true" : "false", m.latency_frames);
    }
    std::printf("}}\n");
    return;
  }
  std::printf("rackd  %u Hz  block %u (%.2f ms)  cycles %" PRIu64 "  xruns %" PRIu64, s.rate, s.block, period_us / 1000,
              s.cycles, s.xruns);
  if (top) std::printf(" (+%" PRIu64 ")", xrun_delta);
  std::printf("  limited %" PRIu64, s.limited_frames);
  std::printf("%s", top ? "\033[K\r\n\033[K\r\n" : "\n\n");
  std::printf("%-20s %-12s %-8s %6s %10s %8s %8s  %s%s", "NAME", "TYPE", "STATE", "LOAD", "WORST", "LATE", "RESTARTS",
              "FLAGS", top ? "\033[K\r\n" : "\n");
  for (const ModuleRow& m : s.modules) {
    std::string flags = std::string(m.bypassed ? "bypassed " : "") + (m.muted ? "muted " : "");
    if (m.latency_frames) flags += "latency " + std::to_string(m.latency_frames);
    std::printf("%-20s %-12s %-8s %5.1f%% %8.0fus %8" PRIu64 " %8" PRIu64 "  %s%s", m.name.c_str(), m.type.c_str(),
                m.state.c_str(), 100 * m.load, m.max_load * period_us, m.late, m.restarts, flags.c_str(),
                top ? "\033[K\r\n" : "\n");
  }
}

int cmd_top(Client& c) {
  termios saved{};
  const bool tty = isatty(0) && tcgetattr(0, &saved) == 0;
  if (tty) {
    termios raw = saved;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    tcsetattr(0, TCSANOW, &raw);
  }
  std::printf("\033[?25l\033[2J");  // hide cursor, clear once; then redraw in place
  uint64_t first_xruns = UINT64_MAX;
  while (!g_stop) {
    const Status s = fetch_status(c);
    if (first_xruns == UINT64_MAX) first_xruns = s.xruns;
    std::printf("\033[H");
    print_status(s, false, s.xruns - first_xruns, true);
    std::printf("\033[K\r\nq: quit\033[K\033[J");
    std::fflush(stdout);
    pollfd p{0, POLLIN, 0};
    timespec t0{};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
      timespec t{};
      clock_gettime(CLOCK_MONOTONIC, &t);
      const long left = 1000 - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
      if (left <= 0 || g_stop) break;
      if (poll(&p, 1, static_cast<int>(left)) > 0) {
        char ch = 0;
        if (read(0, &ch, 1) == 1 && (ch == 'q' || ch == 'Q')) g_stop = 1;
        if (!tty) break;
      }
    }
  }
  std::printf("\033[?25h\r\n");
  if (tty) tcsetattr(0, TCSANOW, &saved);
  return 0;
}

int cmd_dump(Client& c) {
  lo_message m = lo_message_new();
  lo_message_add_int32(m, 1);
  c.send("/rackd/notify", m);
  Reply r;
  c.await(r, "/rackd/notify.reply", "/rackd/notify");
  std::fprintf(stderr, "rackctl: subscribed; printing notifications until Ctrl-C\n");
  while (!g_stop) {
    if (!c.recv(r, 200)) continue;
    std::printf("%s", r.address.c_str());
    print_args(r, stdout);
    std::printf("\n");
    std::fflush(stdout);
  }
  m = lo_message_new();
  lo_message_add_int32(m, 0);
  c.send("/rackd/notify", m);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = kDefaultPort;
  bool port_given = false;
  double timeout = 2.0;
  bool timeout_given = false;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (args.empty() && (a == "--help" || a == "-h")) {
      print_usage(stdout);
      return 0;
    } else if (args.empty() && a == "--host" && i + 1 < argc) {
      host = argv[++i];
    } else if (args.empty() && a == "--port" && i + 1 < argc) {
      port = std::atoi(argv[++i]);
      port_given = true;
      if (port <= 0 || port > 65535) {
        std::fprintf(stderr, "rackctl: --port must be 1..65535\n");
        return 2;
      }
    } else if (args.empty() && a == "--timeout" && i + 1 < argc) {
      timeout = std::atof(argv[++i]);
      timeout_given = true;
      if (!(timeout > 0)) {
        std::fprintf(stderr, "rackctl: --timeout must be a positive number of seconds\n");
        return 2;
      }
    } else {
      args.push_back(a);
    }
  }
  auto usage_error = [](const char* why) {
    std::fprintf(stderr, "rackctl: %s\n\n", why);
    print_usage(stderr);
    return rackctl::kExitUsage;
  };
  if (args.empty()) return usage_error("no command");
  // Without --port, the variable that sets rackd's default --osc-port sets ours,
  // so a user who sets it once is understood by both.
  if (const char* env = std::getenv("RACKD_OSC_PORT"); !port_given && env && *env) {
    char* end = nullptr;
    const long p = std::strtol(env, &end, 10);
    if (*end != '\0' || p <= 0 || p > 65535) {
      std::fprintf(stderr, "rackctl: RACKD_OSC_PORT is \"%s\"; rackctl needs rackd's port, 1..65535 (or --port N)\n", env);
      return 2;
    }
    port = static_cast<int>(p);
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const std::string& cmd = args[0];
  if (rackctl::is_graph_command(cmd))
    return rackctl::run_graph_command(args, rackctl::Target{host, port, timeout, timeout_given, usage_error});
  Client c(host, port, timeout);
  Reply r;
  if (cmd == "status") {
    if (args.size() > 2 || (args.size() == 2 && args[1] != "--json")) return usage_error("usage: status [--json]");
    print_status(fetch_status(c), args.size() == 2);
    return 0;
  }
  if (cmd == "set") {
    if (args.size() < 2 || args[1].empty() || args[1][0] != '/') return usage_error("usage: set /ADDRESS [ARGS...]");
    c.send(args[1].c_str(), typed(std::vector<std::string>(args.begin() + 2, args.end())));
    // Replies come in order: an error about the set arrives before /rackd/synced.
    lo_message s = lo_message_new();
    lo_message_add_int32(s, getpid() & 0x7fffffff);
    c.send("/rackd/sync", s);
    c.await(r, "/rackd/synced", args[1]);
    return 0;
  }
  if (cmd == "get") {
    if (args.size() != 2 || args[1].empty() || args[1][0] != '/') return usage_error("usage: get /MODULE/PARAM");
    c.send((args[1] + "/get").c_str(), lo_message_new());
    c.await(r, args[1], args[1] + "/get");
    std::printf("%s", args[1].c_str());
    print_args(r, stdout);
    std::printf("\n");
    return 0;
  }
  if (cmd == "restart") {
    if (args.size() != 2) return usage_error("usage: restart NAME");
    lo_message m = lo_message_new();
    lo_message_add_string(m, args[1].c_str());
    c.send("/rackd/module/restart", m);
    c.await(r, "/rackd/done", "/rackd/module/restart");
    return 0;
  }
  if (cmd == "bypass") {
    if (args.size() != 3 || (args[2] != "0" && args[2] != "1")) return usage_error("usage: bypass NAME 0|1");
    lo_message m = lo_message_new();
    lo_message_add_string(m, args[1].c_str());
    lo_message_add_int32(m, args[2] == "1");
    c.send("/rackd/module/bypass", m);
    c.await(r, "/rackd/done", "/rackd/module/bypass");
    return 0;
  }
  if (cmd == "dump") return args.size() == 1 ? cmd_dump(c) : usage_error("usage: dump");
  if (cmd == "top") return args.size() == 1 ? cmd_top(c) : usage_error("usage: top");
  return usage_error(("unknown command '" + cmd + "'").c_str());
}
