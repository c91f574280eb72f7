// Integration: live graph changes that go wrong, on rackd's null device (no
// JACK needed). A refused or failed change answers with an error and leaves
// the graph and the audio as they were; faults during a change (a module
// killed while it is added or crossfaded, a load while another one fades)
// never stall the device nor leave a process or a slot behind.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <thread>

#include "tests/integration/harness.hpp"

namespace rackd::test {
namespace {

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

const char* kBase = R"([server]
rate = 48000
block = 128

[[module]]
name = "src"
type = "capture"
source = "tone"

[[module]]
name = "p"
type = "passthrough"
input = "src"

[output]
from = "p"
)";

struct Live {
  std::string dir;
  uint16_t port = 0;
  std::unique_ptr<Process> rackd;

  Live() : dir(temp_dir()), port(free_udp_port()) {
    write(dir + "/base.toml", kBase);
    rackd = std::make_unique<Process>(std::vector<std::string>{bin("rackd"), "run", dir + "/base.toml", "--device",
                                                                "null", "--osc-port", std::to_string(port)});
    for (int i = 0; i < 200; ++i) {
      if (ctl({"graph"}, std::chrono::seconds(1)).status == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
  }
  Result ctl(std::vector<std::string> args, std::chrono::milliseconds timeout = std::chrono::seconds(30)) const {
    args.insert(args.begin(), {bin("rackctl"), "--port", std::to_string(port)});
    return run(args, timeout);
  }
  std::string graph() const { return ctl({"graph"}).out; }
  double cycles() const {
    const Result r = ctl({"status", "--json"});
    return json_number(r.out, "", "cycles");
  }
  // Stops rackd; returns its exit JSON.
  std::string stop() {
    rackd->signal(SIGINT);
    EXPECT_EQ(rackd->wait(std::chrono::seconds(20)), 0) << rackd->err();
    EXPECT_FALSE(segment_exists_for(rackd->pid()));
    return rackd->out();
  }
};

TEST(GraphFaults, BadRequestsAreRefusedAndChangeNothing) {
  Live live;
  write(live.dir + "/broken.toml", "[server]\nrate = 48000\n\n[[module]]\nname = \"x\"\ntype = \"nosuch\"\n");
  write(live.dir + "/faster.toml", std::string(kBase).replace(std::string(kBase).find("48000"), 5, "44100"));
  ASSERT_EQ(live.ctl({"add", "mono", "capture", "source=tone", "channels=1"}).status, 0);
  const std::string before = live.graph();
  const double cycles0 = live.cycles();
  struct Case {
    std::vector<std::string> args;
    std::string needle;
  };
  const Case cases[] = {
      {{"add", "x", "nosuch"}, "unknown type \"nosuch\""},
      {{"add", "p", "passthrough", "input=src"}, "exists already"},
      {{"connect", "p", "src"}, "is a source and takes no input"},
      {{"add", "q", "passthrough", "input=p"}, ""},  // fine; then a cycle:
      {{"connect", "q", "p"}, "inputs form a cycle"},
      {{"connect", "mono", "p"}, "summed inputs must agree"},
      {{"connect", "nobody", "p"}, "no module \"nobody\""},
      {{"remove", "nobody"}, "no module \"nobody\""},
      {{"remove", "src"}, "is the input of"},
      {{"disconnect", "src", "p"}, "only input"},
      {{"load", live.dir + "/broken.toml"}, "broken.toml:6: module \"x\": unknown type \"nosuch\""},
      {{"load", live.dir + "/missing.toml"}, "missing.toml: cannot read"},
      {{"load", live.dir + "/faster.toml"}, "rate 48000 -> 44100 needs a restart"},
  };
  for (const Case& c : cases) {
    const Result r = live.ctl(c.args);
    if (c.needle.empty()) {
      EXPECT_EQ(r.status, 0) << r.err;
      continue;
    }
    EXPECT_EQ(r.status, 1) << c.args[0] << " " << c.args[1] << ": " << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << r.err;
  }
  // Malformed TOML sent as it is (rackctl would refuse it before sending).
  ASSERT_EQ(live.ctl({"remove", "q"}).status, 0);
  EXPECT_EQ(live.graph(), before);
  EXPECT_GT(live.cycles(), cycles0);
  const std::string json = live.stop();
  EXPECT_EQ(json_number(json, "p", "restarts"), 0) << json;
  EXPECT_EQ(json_number(json, "src", "restarts"), 0) << json;
}

TEST(GraphFaults, AModuleThatRefusesItsSetupOrNeverGetsReadyLeavesTheGraphAsItWas) {
  Live live;
  const std::string before = live.graph();
  Result r = live.ctl({"add", "bad", "chaos", "input=src", "setup_fail=true"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("refused its setup"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("setup_fail"), std::string::npos) << r.err;
  EXPECT_EQ(live.graph(), before);
  const auto t0 = std::chrono::steady_clock::now();
  r = live.ctl({"add", "slow", "chaos", "input=src", "setup_ms=100000"}, std::chrono::seconds(40));
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("not ready after 10 s"), std::string::npos) << r.err;
  EXPECT_GT(waited, 9.0);
  EXPECT_EQ(live.graph(), before);
  // Its process is gone and its slot is free again: a module can take it.
  for (int i = 0; i < 100 && !children(live.rackd->pid(), "rackd-chaos").empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(children(live.rackd->pid(), "rackd-chaos").empty());
  EXPECT_EQ(live.ctl({"add", "fine", "chaos", "input=src"}).status, 0);
  EXPECT_EQ(live.ctl({"connect", "fine", "output"}).status, 0);
  const std::string json = live.stop();
  EXPECT_EQ(json_string(json, "fine", "state"), "running") << json;
  EXPECT_EQ(json_number(json, "p", "restarts"), 0) << json;
}

TEST(GraphFaults, KillsDuringAddAndCrossfadeAndALoadWhileAnotherFades) {
  Live live;
  // Killed while it sets up: restarted by the supervisor, then it joins.
  std::thread killer([&] {
    for (int i = 0; i < 200; ++i) {
      const auto kids = children(live.rackd->pid(), "rackd-chaos");
      if (!kids.empty()) {
        kill(kids.front(), SIGKILL);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  Result r = live.ctl({"add", "c", "chaos", "input=src", "setup_ms=300"});
  killer.join();
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(live.graph().find("\nc "), std::string::npos) << live.graph();

  // A load that replaces p (new setup keys: a different type) with a long
  // fade; the new process is killed during the crossfade; a second load
  // arrives while the first still fades. Both are applied, in order.
  write(live.dir + "/one.toml", std::string(kBase).replace(std::string(kBase).find("type = \"passthrough\""), 20,
                                                           "type = \"chaos\""));
  write(live.dir + "/two.toml", kBase);
  std::thread second;
  std::thread crossfade_killer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    for (pid_t k : children(live.rackd->pid(), "rackd-chaos")) kill(k, SIGKILL);
  });
  Result first;
  std::thread load_one([&] { first = live.ctl({"load", live.dir + "/one.toml", "--fade", "1500"}); });
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  const Result two = live.ctl({"load", live.dir + "/two.toml", "--fade", "200"});
  load_one.join();
  crossfade_killer.join();
  EXPECT_EQ(first.status, 0) << first.err;
  EXPECT_EQ(two.status, 0) << two.err;
  const std::string g = live.graph();
  EXPECT_NE(g.find("passthrough"), std::string::npos) << g;
  EXPECT_EQ(g.find("chaos"), std::string::npos) << g;
  for (int i = 0; i < 100 && !children(live.rackd->pid(), "rackd-chaos").empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(children(live.rackd->pid(), "rackd-chaos").empty()) << "a process left behind";
  const std::string json = live.stop();
  EXPECT_EQ(json_number(json, "src", "restarts"), 0) << json;
  EXPECT_EQ(json_string(json, "p", "state"), "running") << json;
  EXPECT_GT(json_number(json, "", "graph_swaps"), 4) << json;
}

TEST(GraphFaults, WatchReloadsOnSaveAndABadSaveChangesNothing) {
  const std::string dir = temp_dir();
  const uint16_t port = free_udp_port();
  write(dir + "/live.toml", kBase);
  Process rackd({bin("rackd"), "run", dir + "/live.toml", "--device", "null", "--osc-port", std::to_string(port),
                 "--watch"});
  auto graph = [&] { return run({bin("rackctl"), "--port", std::to_string(port), "graph"}).out; };
  auto wait_for = [&](const std::string& needle, bool present) {
    for (int i = 0; i < 150; ++i) {
      if ((graph().find(needle) != std::string::npos) == present) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  };
  ASSERT_TRUE(wait_for("passthrough", true)) << rackd.err();
  // Saved with a second module: it joins. (The file's time stamp must move.)
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  std::string two = kBase;
  two.replace(two.find("[output]"), std::string::npos,
              "[[module]]\nname = \"q\"\ntype = \"passthrough\"\ninput = \"src\"\n\n[output]\nfrom = [\"p\", \"q\"]\n");
  write(dir + "/live.toml", two);
  EXPECT_TRUE(wait_for("\nq ", true)) << graph() << rackd.err();
  // A broken save: refused on stderr, the graph plays on as it was.
  const std::string before = graph();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  write(dir + "/live.toml", "[server]\nrate = 48000\n\n[[module]]\nname = \"p\"\ntype = \"nosuch\"\n");
  for (int i = 0; i < 100 && rackd.err().find("refused") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_NE(rackd.err().find("live.toml:6: module \"p\": unknown type \"nosuch\""), std::string::npos) << rackd.err();
  EXPECT_NE(rackd.err().find("still playing the graph as it was"), std::string::npos) << rackd.err();
  EXPECT_EQ(graph(), before);
  rackd.signal(SIGINT);
  EXPECT_EQ(rackd.wait(std::chrono::seconds(20)), 0) << rackd.err();
}

}  // namespace
}  // namespace rackd::test
