// Integration: live graph changes on a running `rackd run` (dummy JACK device),
// driven by rackctl from a fixed-seed RNG: add, remove (--rewire or not),
// connect, disconnect (fan-in, to/from the output), load of alternating
// patches, and requests the server must refuse. One branch ("keep" tone ->
// "keep_p" passthrough -> output) is never named by an edit: it must play on
// untouched (no late or replaced block, no restart). Everything runs on the
// test's one thread; rackd and its modules are child processes.
//
//   GraphLive.RandomEditsNeverTouchTheBranchThatPlays  RACKD_GRAPH_EDIT_SECONDS (20)
//   RealtimeCounters.RandomGraphEditsOnDummyJack       the same under librtcount (12 s)
//   GraphLiveSoak.RandomEditsAndKills                  + a module SIGKILLed every 5 s;
//                                                      fds, RSS and /dev/shm must not grow
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/harness.hpp"
#include "tests/rtcount/rtcount_expect.hpp"

namespace rackd::test {
namespace {

#if defined(__has_feature)
#if __has_feature(realtime_sanitizer)
#define RACKD_TEST_RTSAN_BUILD 1
#endif
#endif
#ifdef RACKD_TEST_RTSAN_BUILD
constexpr bool kRtsanBuild = true;
#else
constexpr bool kRtsanBuild = false;
#endif

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// ---- patches ---------------------------------------------------------------

// The part every patch shares: the branch that plays untouched, and the
// edited area's source.
constexpr const char* kHead = R"([server]
rate = 48000
block = 128

[[module]]
name = "keep"
type = "capture"
source = "tone"

[[module]]
name = "keep_p"
type = "passthrough"
input = "keep"

[[module]]
name = "src"
type = "capture"
source = "noise"
gain_db = -30.0
)";

// What rackd starts with: an eq and a passthrough in the edited area.
constexpr const char* kBase = R"(
[[module]]
name = "e0"
type = "eq"
input = "src"
preamp = -3.0

[[module]]
name = "e1"
type = "passthrough"
input = ["src", "e0"]

[output]
from = ["keep_p", "e1"]
)";

// The two patches `load` alternates between: 10 modules, 3 of which differ
// (l2's bands: a setup key, a new process; l3's gain: a parameter; l6's
// inputs: a rewiring).
std::string load_patch(bool b) {
  std::ostringstream s;
  s << kHead << R"(
[[module]]
name = "l1"
type = "passthrough"
input = "src"

[[module]]
name = "l2"
type = "eq"
input = "l1"
bands = [ { type = "peak", freq = )" << (b ? "2000.0" : "1000.0") << R"(, gain = -3.0, q = 1.0 } ]

[[module]]
name = "l3"
type = "passthrough"
input = "src"
gain_db = )" << (b ? "-12.0" : "-6.0") << R"(

[[module]]
name = "l4"
type = "passthrough"
input = ["l2", "l3"]

[[module]]
name = "l5"
type = "eq"
input = "src"
preamp = -2.0

[[module]]
name = "l6"
type = "passthrough"
input = )" << (b ? R"(["l5", "l3"])" : R"("l5")") << R"(

[[module]]
name = "l7"
type = "passthrough"
input = "l4"

[output]
from = ["keep_p", "l6", "l7"]
)";
  return s.str();
}
constexpr std::size_t kLoadModules = 10;

// ---- the running graph, from `rackctl graph --json` -------------------------

struct Mod {
  std::string name, type, state;
  std::vector<std::string> inputs;
};
struct Graph {
  bool ok = false;
  std::vector<Mod> mods;
  std::vector<std::string> outputs;
  std::string raw;
  const Mod* find(const std::string& n) const {
    for (const auto& m : mods)
      if (m.name == n) return &m;
    return nullptr;
  }
};

std::string field(const std::string& s, std::size_t from, const std::string& key) {
  const std::string k = "\"" + key + "\":\"";
  const auto at = s.find(k, from);
  if (at == std::string::npos) return "";
  const auto b = at + k.size();
  return s.substr(b, s.find('"', b) - b);
}

// "a, b (-6.0 dB)" -> {a, b}
std::vector<std::string> names(const std::string& list) {
  std::vector<std::string> v;
  std::istringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    item = item.substr(0, item.find(" ("));
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (!item.empty()) v.push_back(item);
  }
  return v;
}

Graph parse_graph(const std::string& json) {
  Graph g;
  g.raw = json;
  if (json.find("{\"modules\":[") != 0) return g;
  const std::string open = "{\"name\":\"";
  for (auto at = json.find(open); at != std::string::npos; at = json.find(open, at + 1))
    g.mods.push_back({field(json, at, "name"), field(json, at, "type"), field(json, at, "state"),
                      names(field(json, at, "inputs"))});
  g.outputs = names(field(json, json.rfind("\"outputs\":"), "outputs"));
  g.ok = true;
  return g;
}

// ---- the edit driver ----------------------------------------------------------

const std::set<std::string> kKept = {"keep", "keep_p"};

class Editor {
 public:
  Editor(uint16_t port, uint32_t seed) : port_(port), rng_(seed), dir_(temp_dir()) {
    std::ofstream(dir_ + "/a.toml") << load_patch(false);
    std::ofstream(dir_ + "/b.toml") << load_patch(true);
  }
  const std::string& dir() const { return dir_; }

  // rackctl against our rackd; a timeout (exit 3) or a usage error (exit 2)
  // fails the test whatever the caller expected.
  Result ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv{bin("rackctl"), "--port", std::to_string(port_)};
    argv.insert(argv.end(), args.begin(), args.end());
    Result r = run(argv, 60s);
    std::string line;
    for (const auto& a : args) line += (line.empty() ? "" : " ") + a;
    EXPECT_NE(r.status, 3) << "rackctl " << line << " timed out: " << r.err;
    EXPECT_NE(r.status, 2) << "rackctl " << line << ": " << r.err;
    EXPECT_NE(r.status, -1) << "rackctl " << line << " hung";
    last_ = line;
    return r;
  }
  Graph graph() {
    Result r = ctl({"graph", "--json"});
    Graph g = parse_graph(r.out);
    EXPECT_TRUE(g.ok) << "rackctl graph --json: " << r.status << " " << r.out << r.err;
    return g;
  }
  bool load(bool b) { return ctl({"load", dir_ + (b ? "/b.toml" : "/a.toml")}).status == 0; }

  // The branch that plays is as it was, whatever was edited around it.
  void expect_kept(const Graph& g) {
    if (!g.ok || kept_failed_) return;
    const Mod* keep = g.find("keep");
    const Mod* keep_p = g.find("keep_p");
    const bool ok = keep && keep->type == "capture" && keep->inputs.empty() && keep_p &&
                    keep_p->inputs == std::vector<std::string>{"keep"} &&
                    std::count(g.outputs.begin(), g.outputs.end(), "keep_p") == 1;
    kept_failed_ = !ok;
    EXPECT_TRUE(ok) << "after `" << last_ << "` the untouched branch changed: " << g.raw;
  }

  // One random edit.
  void step() {
    const Graph g = graph();
    expect_kept(g);
    if (!g.ok) return;
    std::vector<std::string> edited, inner;  // inner: edited modules that take inputs
    std::map<std::string, std::vector<std::string>> inputs;
    for (const auto& m : g.mods) {
      if (kKept.count(m.name)) continue;
      edited.push_back(m.name);
      if (m.type != "capture") inner.push_back(m.name);
      inputs[m.name] = m.inputs;
    }
    auto pick = [this](const std::vector<std::string>& v) {
      return v[std::uniform_int_distribution<std::size_t>(0, v.size() - 1)(rng_)];
    };
    auto chance = [this](double p) { return std::uniform_real_distribution<>(0, 1)(rng_) < p; };
    if (edited.empty()) {  // src went with a load gone wrong: start again from a patch
      count("load", load(next_load_ = !next_load_));
      return;
    }
    int op = std::uniform_int_distribution<int>(0, 99)(rng_);
    if (inner.size() >= 12 && op < 25) op = 25;  // enough modules: no add
    if (inner.empty() && op >= 25 && op < 70) op = 0;
    if (op < 25) {  // add, fed by one or two edited modules
      const std::string name = "n" + std::to_string(++added_);
      const bool eq = chance(0.4);
      std::string in = pick(edited);
      if (edited.size() > 1 && chance(0.3)) {
        std::string other = pick(edited);
        if (other != in) in = "[\"" + in + "\",{from=\"" + other + "\",gain_db=-6.0}]";
      }
      if (in[0] != '[') in = "\"" + in + "\"";
      const Result r = ctl({"add", name, eq ? "eq" : "passthrough", "input=" + in,
                            eq ? "preamp=-1.5" : "gain_db=-3.0"});
      EXPECT_EQ(r.status, 0) << last_ << ": " << r.err;
      count("add", r.status == 0);
      if (r.status == 0 && chance(0.5)) count("connect", ctl({"connect", name, "output"}).status == 0);
    } else if (op < 45) {  // remove
      const std::string victim = pick(inner);
      bool used = false;
      for (const auto& [m, in] : inputs) used = used || std::count(in.begin(), in.end(), victim);
      const bool rewire = chance(0.5);
      const Result r = rewire ? ctl({"remove", victim, "--rewire"}) : ctl({"remove", victim});
      if (rewire || !used) {
        EXPECT_EQ(r.status, 0) << last_ << ": " << r.err << "\n" << g.raw;
      } else {
        EXPECT_EQ(r.status, 1) << last_ << " while others take it as input: " << g.raw;
      }
      count(rewire ? "remove --rewire" : "remove", r.status == 0);
    } else if (op < 70) {  // connect (fan-in, cycles refused)
      std::vector<std::string> to = inner;
      to.push_back("output");
      const std::string t = pick(to);
      const std::string f = pick(edited);
      const Result r = chance(0.3) ? ctl({"connect", f, t, "--gain", "-6"}) : ctl({"connect", f, t});
      count("connect", r.status == 0);
    } else if (op < 85) {  // disconnect an edge that is there (the last input is refused)
      std::vector<std::pair<std::string, std::string>> edges;
      for (const auto& [m, in] : inputs)
        for (const auto& f : in) edges.emplace_back(f, m);
      for (const auto& o : g.outputs)
        if (!kKept.count(o)) edges.emplace_back(o, "output");
      if (edges.empty()) return;
      const auto e = edges[std::uniform_int_distribution<std::size_t>(0, edges.size() - 1)(rng_)];
      count("disconnect", ctl({"disconnect", e.first, e.second}).status == 0);
    } else if (op < 93) {  // load the other patch
      const bool ok = load(next_load_ = !next_load_);
      EXPECT_TRUE(ok) << last_;
      count("load", ok);
    } else {  // requests that must be refused
      const int k = std::uniform_int_distribution<int>(0, 3)(rng_);
      Result r;
      if (k == 0) r = ctl({"connect", pick(edited), "src"});  // a source takes no input
      if (k == 1) r = ctl({"remove", "nobody"});
      if (k == 2) r = ctl({"add", pick(edited), "passthrough", "input=src"});  // exists already
      if (k == 3) r = ctl({"add", "n" + std::to_string(++added_), "nosuchtype"});
      EXPECT_EQ(r.status, 1) << last_ << " was not refused: " << r.out << r.err;
      EXPECT_FALSE(r.err.empty()) << last_ << ": a refusal says why";
      count("refused on purpose", r.status == 0);
    }
  }

  // Late blocks of the untouched branch (keep + keep_p) now.
  double late_now() {
    const std::string st = ctl({"status", "--json"}).out;
    return json_number(st, "keep", "late") + json_number(st, "keep_p", "late");
  }
  // Late blocks near the edit just made, put down to it (a figure: which kind
  // of edit coincides with late blocks).
  void note_late(double late) {
    noted_late_ = true;
    if (late > 0) late_by_op_[op_] += late;
  }

  void print_counts() const {
    if (noted_late_) {
      std::printf("[ figures  ] late blocks of keep + keep_p near each kind of edit:");
      for (const auto& [op, n] : late_by_op_) std::printf(" %s %.0f;", op.c_str(), n);
      std::printf("\n");
    }
    std::printf("[ figures  ] edits (exit 0 / tried):");
    for (const auto& [op, n] : counts_) std::printf(" %s %d/%d;", op.c_str(), n.first, n.second);
    std::printf("\n");
  }
  int edits() const {
    int n = 0;
    for (const auto& [op, c] : counts_) n += c.second;
    return n;
  }

 private:
  void count(const std::string& op, bool ok) {
    op_ = op;
    auto& c = counts_[op];
    c.first += ok;
    c.second += 1;
  }

  uint16_t port_;
  std::mt19937 rng_;
  std::string dir_;
  std::string last_;
  int added_ = 0;
  bool next_load_ = true;
  bool kept_failed_ = false;
  std::map<std::string, std::pair<int, int>> counts_;  // op -> ok, tried
  std::string op_ = "none";                             // the last edit made
  bool noted_late_ = false;
  std::map<std::string, double> late_by_op_;
};

constexpr const char* kSeedText = "20240611";

double edit_seconds(double fallback) {
  const char* e = std::getenv("RACKD_GRAPH_EDIT_SECONDS");
  return e ? std::atof(e) : fallback;
}

// Waits until rackd plays (and answers OSC).
bool wait_playing(Process& p) {
  for (int i = 0; i < 100; ++i) {
    if (p.err().find("playing") != std::string::npos) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

// Every module of the graph running (a module just killed may still be
// coming back): polls up to 10 s.
Graph wait_all_running(Editor& ed) {
  Graph g;
  for (int i = 0; i < 100; ++i) {
    g = ed.graph();
    bool all = g.ok;
    for (const auto& m : g.mods) all = all && m.state == "running";
    if (all) return g;
    std::this_thread::sleep_for(100ms);
  }
  return g;
}

void expect_all_running(const Graph& g) {
  ASSERT_TRUE(g.ok);
  for (const auto& m : g.mods) EXPECT_EQ(m.state, "running") << m.name << ": " << g.raw;
}

// save, `rackd check` of the saved file, load of it.
void save_check_load(Editor& ed) {
  const std::string saved = ed.dir() + "/saved.toml";
  const Result s = ed.ctl({"save", saved});
  ASSERT_EQ(s.status, 0) << s.err;
  const Result c = run({bin("rackd"), "check", saved}, 30s);
  std::ifstream f(saved);
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(c.status, 0) << c.out << c.err << "\n" << text;
  const Result l = ed.ctl({"load", saved});
  EXPECT_EQ(l.status, 0) << l.err << "\n" << text;
}

// /dev/shm entries of this rackd (its segment) and of this test's jackd.
long shm_entries(pid_t rackd, const std::string& jack_name) {
  const std::string mine = "rackd-" + std::to_string(getuid()) + "-" + std::to_string(rackd);
  long n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm", ec)) {
    const std::string f = e.path().filename().string();
    if (f.rfind(mine, 0) == 0 || f.find(jack_name) != std::string::npos) ++n;
  }
  return n;
}

std::string jack_name(const DummyJack& jack) {
  for (const auto& e : jack.env())
    if (e.rfind("JACK_DEFAULT_SERVER=", 0) == 0) return e.substr(20);
  return "";
}

// The slot a module process serves, from its command line (--slot N).
std::string slot_of(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/cmdline");
  std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto at = cmd.find(std::string("--slot") + '\0');
  if (at == std::string::npos) return "";
  return cmd.substr(at + 7, cmd.find('\0', at + 7) - at - 7);
}

struct Steady {
  long fds = -1, rss_kb = -1, shm = -1;
};

// Same graph each time it is measured: patch A loaded, every module running
// and its process there.
Steady measure(Editor& ed, Process& p, const std::string& jack) {
  EXPECT_TRUE(ed.load(false));
  wait_all_running(ed);
  for (int i = 0; i < 200 && children(p.pid(), "rackd-").size() != kLoadModules; ++i)
    std::this_thread::sleep_for(10ms);
  std::this_thread::sleep_for(200ms);
  return {fd_count(p.pid()), rss_kb(p.pid()), shm_entries(p.pid(), jack)};
}

// Late blocks of the untouched branch (keep + keep_p) cut into windows: near
// each edit (from just before it until 150 ms after it returned) and away
// from the edits (the rest of each 0.5 s).
struct LateSplit {
  enum Window { kAway, kNear };
  double late[2] = {}, seconds[2] = {};
  void start(double late_now) {
    last_ = late_now;
    at_ = Clock::now();
  }
  // Closes window `w` at `late_now`; returns its late blocks.
  double add(Window w, double late_now) {
    const auto at = Clock::now();
    const double n = late_now - last_;
    late[w] += n;
    seconds[w] += std::chrono::duration<double>(at - at_).count();
    start(late_now);
    return n;
  }

 private:
  double last_ = 0;
  Clock::time_point at_;
};

struct RunOptions {
  double baseline_s = 0;        // played without edits first, for the late figures
  double seconds = 20;
  double kill_every_s = 0;      // 0: no kills
  std::vector<std::string> env; // added to rackd's (librtcount)
  bool soak = false;
};

// rackd on a dummy JACK device, random edits for `seconds`, then the checks
// every variant shares. Returns rackd's exit JSON.
std::string edit_run(const RunOptions& o) {
  DummyJack jack(48000, 128);
  EXPECT_TRUE(jack.ready()) << jack.log();
  if (!jack.ready()) return "";
  const std::string d = temp_dir();
  std::ofstream(d + "/base.toml") << kHead << kBase;
  const uint16_t port = free_udp_port();
  auto env = jack.env();
  env.insert(env.end(), o.env.begin(), o.env.end());
  Process p({bin("rackd"), "run", d + "/base.toml", "--osc-port", std::to_string(port)}, env);
  const uint32_t seed = static_cast<uint32_t>(std::atol(kSeedText));
  Editor ed(port, seed);
  EXPECT_TRUE(wait_playing(p)) << p.err();
  std::printf("[ info     ] seed %u, %.0f s of edits, one every 0.5 s%s\n", seed, o.seconds,
              o.kill_every_s > 0 ? ", a module SIGKILLed every 5 s" : "");
  // Late blocks of the untouched branch: without edits (the baseline, the
  // same machine a moment before), and while edits run.
  auto late_now = [&ed](const char* m) {
    return json_number(ed.ctl({"status", "--json"}).out, m, "late");
  };
  const double late0[2] = {late_now("keep"), late_now("keep_p")};
  std::this_thread::sleep_for(std::chrono::duration<double>(o.baseline_s));
  const double late1[2] = {late_now("keep"), late_now("keep_p")};

  LateSplit split;
  if (o.baseline_s > 0) split.start(ed.late_now());

  std::mt19937 kill_rng(seed + 1);
  std::map<std::string, double> last_kill;  // slot -> when
  int kills = 0;
  Steady at30, at_end;
  bool measured30 = false;
  const auto t0 = Clock::now();
  auto next = t0;
  auto next_kill = t0 + std::chrono::milliseconds(static_cast<long>(o.kill_every_s * 1000));
  while (Clock::now() - t0 < std::chrono::duration<double>(o.seconds) && !::testing::Test::HasFatalFailure()) {
    next += 500ms;
    std::this_thread::sleep_until(next);
    if (Clock::now() > next + 500ms) next = Clock::now();  // an edit took long: no burst after it
    if (o.baseline_s > 0) split.add(LateSplit::kAway, ed.late_now());
    ed.step();
    if (o.baseline_s > 0) {
      std::this_thread::sleep_for(150ms);  // a change fades in 50 ms
      ed.note_late(split.add(LateSplit::kNear, ed.late_now()));
    }
    if (o.soak && !measured30 && Clock::now() - t0 >= 30s) {
      at30 = measure(ed, p, jack_name(jack));
      measured30 = true;
    }
    if (o.kill_every_s > 0 && Clock::now() >= next_kill) {
      next_kill += std::chrono::milliseconds(static_cast<long>(o.kill_every_s * 1000));
      // The slot killed longest ago (random among those never killed): no
      // slot dies 5 times in 30 s, which would make rackd give up on it.
      const double now = std::chrono::duration<double>(Clock::now() - t0).count();
      std::vector<std::pair<double, pid_t>> candidates;
      for (pid_t k : children(p.pid(), "rackd-")) {
        const std::string s = slot_of(k);
        if (s.empty()) continue;
        auto it = last_kill.find(s);
        candidates.emplace_back(
            it == last_kill.end() ? -1e9 + std::uniform_real_distribution<>(0, 1)(kill_rng) : it->second, k);
      }
      if (!candidates.empty()) {
        const pid_t victim = std::min_element(candidates.begin(), candidates.end())->second;
        const std::string s = slot_of(victim);
        if (kill(victim, SIGKILL) == 0) {
          ++kills;
          last_kill[s] = now;
        }
      }
    }
  }
  ed.print_counts();
  EXPECT_GE(ed.edits(), static_cast<int>(o.seconds)) << "fewer than one edit a second";
  const double late2[2] = {late_now("keep"), late_now("keep_p")};
  for (int k = 0; k < 2 && o.baseline_s > 0; ++k) {
    const char* m = k ? "keep_p" : "keep";
    std::printf("[ figures  ] %s late blocks: %.0f in %.0f s without edits (baseline), %.0f in %.0f s of edits\n", m,
                late1[k] - late0[k], o.baseline_s, late2[k] - late1[k], o.seconds);
    ::testing::Test::RecordProperty(std::string(m) + "_late_baseline", std::to_string(late1[k] - late0[k]));
    ::testing::Test::RecordProperty(std::string(m) + "_late_edits", std::to_string(late2[k] - late1[k]));
  }
  if (o.baseline_s > 0) {
    const double near_rate = split.late[LateSplit::kNear] / split.seconds[LateSplit::kNear];
    const double away_rate = split.late[LateSplit::kAway] / split.seconds[LateSplit::kAway];
    std::printf("[ figures  ] keep + keep_p late blocks near the edits: %.0f in %.1f s (%.2f/s); away from them: "
                "%.0f in %.1f s (%.2f/s)\n",
                split.late[LateSplit::kNear], split.seconds[LateSplit::kNear], near_rate,
                split.late[LateSplit::kAway], split.seconds[LateSplit::kAway], away_rate);
    ::testing::Test::RecordProperty("late_near_edits", std::to_string(split.late[LateSplit::kNear]));
    ::testing::Test::RecordProperty("late_away_from_edits", std::to_string(split.late[LateSplit::kAway]));
    // This VM stalls for milliseconds at a time and makes any branch late now
    // and then, edits or not (a plain 20 s run of this patch on a busy
    // machine: 37), and the stalls come in bursts that last seconds. A
    // baseline taken before the edits (6 s, printed above) often saw none of
    // them, and judging 20 s of edits against it failed one run in 4 to 8 on
    // noise alone (once in CI). So the branch is judged within the same
    // seconds: its late blocks near the edits, at most twice its rate away
    // from them, plus one block per 4 edits. An edit that reached the branch
    // (a hard cut, a swap that waits, a stall per change) costs a block per
    // edit: 40 here, all of them near the edits.
    const double allowed = 2.0 * away_rate * split.seconds[LateSplit::kNear] + ed.edits() / 4.0;
    // Under RealtimeSanitizer every process runs instrumented and several
    // times slower, and a stall of this VM costs many more late blocks (13 and
    // 15 in 2 of 12 runs, with 29 and 49 jackd xruns in the same window, the
    // unedited source as late as its consumer; 0 of 7 for the code before the
    // module path, within the noise). That build proves the absence of
    // real-time violations during the edits; the lateness is judged in the
    // release build (the default suite) and only printed here.
    if (!kRtsanBuild) {
      EXPECT_LE(split.late[LateSplit::kNear], allowed)
          << "the untouched branch was late more often near the edits than away from them";
    }
  }

  // Every module of the graph the edits left is running.
  const Graph final_graph = wait_all_running(ed);
  ed.expect_kept(final_graph);
  expect_all_running(final_graph);
  std::printf("[ info     ] final graph: %s\n", final_graph.raw.c_str());
  if (o.soak) at_end = measure(ed, p, jack_name(jack));
  // A patch with every module type, then save / check / load of the graph.
  EXPECT_TRUE(ed.load(false));
  save_check_load(ed);
  expect_all_running(wait_all_running(ed));

  p.signal(SIGINT);
  EXPECT_EQ(p.wait(60s), 0) << p.err();
  const std::string json = p.out();
  std::printf("[ info     ] exit JSON: %s\n", json.c_str());
  std::printf("[ figures  ] %d kills; keep late %.0f replaced %.0f; keep_p late %.0f replaced %.0f; "
              "src (edited area's source) late %.0f; xruns %.0f, overruns %.0f\n",
              kills, json_number(json, "keep", "late"), json_number(json, "keep", "replaced"),
              json_number(json, "keep_p", "late"), json_number(json, "keep_p", "replaced"),
              json_number(json, "src", "late"), json_number(json, "", "xruns"), json_number(json, "", "overruns"));
  EXPECT_FALSE(segment_exists_for(p.pid()));
  if (o.soak) {
    std::printf("[ figures  ] at 30 s / at the end: fds %ld / %ld, VmRSS %ld / %ld kB, /dev/shm entries %ld / %ld\n",
                at30.fds, at_end.fds, at30.rss_kb, at_end.rss_kb, at30.shm, at_end.shm);
    ::testing::Test::RecordProperty("fd_drift", std::to_string(at_end.fds - at30.fds));
    ::testing::Test::RecordProperty("rss_drift_kb", std::to_string(at_end.rss_kb - at30.rss_kb));
    EXPECT_TRUE(measured30);
    EXPECT_LE(at_end.fds, at30.fds + 2) << "rackd leaks file descriptors";
    EXPECT_LE(at_end.rss_kb, at30.rss_kb + 10 * 1024) << "rackd's resident memory grows";
    EXPECT_LE(at_end.shm, at30.shm) << "/dev/shm entries pile up";
    EXPECT_GE(kills, static_cast<int>(o.seconds / o.kill_every_s) - 2);
  }
  return json;
}

// The untouched branch: never restarted, and no block of it replaced for any
// reason but lateness (not muted, faded, bypassed or dead because of an edit).
// Its late blocks are checked against the baseline in edit_run().
void expect_untouched(const std::string& json) {
  for (const char* m : {"keep", "keep_p"}) {
    EXPECT_EQ(json_string(json, m, "state"), "running") << m << ": " << json;
    EXPECT_EQ(json_number(json, m, "restarts"), 0) << m << ": " << json;
    EXPECT_EQ(json_number(json, m, "replaced"), json_number(json, m, "late")) << m << ": " << json;
  }
}

// Without kills nothing restarts, and every module of the last graph (patch
// A, saved and loaded again) is running until rackd stops.
void expect_nothing_restarted(const std::string& json) {
  for (const char* m : {"keep", "keep_p", "src", "l1", "l2", "l3", "l4", "l5", "l6", "l7"}) {
    EXPECT_EQ(json_string(json, m, "state"), "running") << m << ": " << json;
    EXPECT_EQ(json_number(json, m, "restarts"), 0) << m << ": " << json;
  }
}

TEST(GraphLive, RandomEditsNeverTouchTheBranchThatPlays) {
  RunOptions o;
  o.baseline_s = 6;
  o.seconds = edit_seconds(20);
  const std::string json = edit_run(o);
  expect_untouched(json);
  expect_nothing_restarted(json);
}

TEST(RealtimeCounters, RandomGraphEditsOnDummyJack) {
  const std::string dir = temp_dir() + "/rtcount";
  std::filesystem::create_directories(dir);
  RunOptions o;
  o.seconds = 12;
  o.env = {std::string("LD_PRELOAD=") + RTCOUNT_LIB, "RACKD_RTCOUNT_DIR=" + dir};
  edit_run(o);
  rtcount::expect_clean(dir, {"rackd", "rackd-capture", "rackd-passthrou", "rackd-eq"});
}

// 10 minutes under the `soak` label (RACKD_GRAPH_EDIT_SECONDS=600).
TEST(GraphLiveSoak, RandomEditsAndKills) {
  RunOptions o;
  o.seconds = edit_seconds(60);
  o.kill_every_s = 5;
  o.soak = true;
  edit_run(o);
}

}  // namespace
}  // namespace rackd::test
