// rackctl against a ControlServer on a real socket, and its live-graph
// commands against FakeRackd (a socket that records requests and answers as
// told). Needs the rackctl binary: $RACKCTL, else RACKD_BIN_DIR/rackctl;
// skipped when neither exists. Test thread + FakeRackd's thread.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <lo/lo.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "control/control_server.hpp"
#include "tests/control/fixture.hpp"

namespace rackd::control {
namespace {

std::string rackctl_path() {
  if (const char* e = std::getenv("RACKCTL")) return e;
#ifdef RACKD_BIN_DIR
  if (std::filesystem::exists(RACKD_BIN_DIR "/rackctl")) return RACKD_BIN_DIR "/rackctl";
#endif
  return "";
}

struct Ran {
  int status = -1;
  std::string out;
};

Ran run(const std::string& cmd) {
  Ran r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  for (std::size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

class RackctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    exe_ = rackctl_path();
    if (exe_.empty()) GTEST_SKIP() << "rackctl not built (set RACKCTL=/path/to/rackctl)";
    rig_ = test::make_rig(test::kTwoModulePatch, "");
    ServerHooks hooks;
    hooks.cycles = [] { return uint64_t{777}; };
    hooks.restart = [](uint32_t, std::string&) { return true; };
    ControlOptions o;
    o.port = 0;
    server_ = std::make_unique<ControlServer>(*rig_->segment, rig_->patch, hooks, o);
    server_->start();
    base_ = exe_ + " --timeout 1 --port " + std::to_string(server_->port()) + " ";
  }
  std::string exe_, base_;
  std::unique_ptr<test::Rig> rig_;
  std::unique_ptr<ControlServer> server_;
};

TEST_F(RackctlTest, StatusPrintsTableAndJson) {
  Ran r = run(base_ + "status");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("48000 Hz"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("passthrough"), std::string::npos) << r.out;
  r = run(base_ + "status --json");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("\"cycles\":777"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"p\":{\"type\":\"passthrough\",\"state\":\"running\""), std::string::npos) << r.out;
}

TEST_F(RackctlTest, SetGetBypassRestartAndErrors) {
  Ran r = run(base_ + "set /p/gain_db -3.5");
  EXPECT_EQ(r.status, 0) << r.out;
  r = run(base_ + "get /p/gain_db");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, "/p/gain_db -3.5\n");
  r = run(base_ + "set /p/bypass true");
  EXPECT_EQ(run(base_ + "get /p/bypass").out, "/p/bypass true\n");
  r = run(base_ + "set /p/gain_db 300");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("out of range"), std::string::npos) << r.out;
  r = run(base_ + "get /p/nothing");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_EQ(run(base_ + "bypass p 1").status, 0);
  EXPECT_EQ(rig_->segment->module_in(1).bypassed.load(), 1u);
  EXPECT_EQ(run(base_ + "bypass src 1").status, 1);
  EXPECT_EQ(run(base_ + "restart p").status, 0);
  EXPECT_EQ(run(base_ + "restart nobody").status, 1);
}

TEST_F(RackctlTest, NoAnswerIsExitThreeWithAMessage) {
  server_->stop();
  Ran r = run(base_ + "status");
  EXPECT_EQ(r.status, 3);
  EXPECT_NE(r.out.find("does not answer"), std::string::npos) << r.out;
  EXPECT_EQ(run(exe_ + " frobnicate").status, 2);
}

// rackd takes its default --osc-port from $RACKD_OSC_PORT; rackctl does too,
// so a user who sets it once is understood by both. --port still wins.
TEST_F(RackctlTest, PortComesFromRackdOscPortWhenNotGiven) {
  const std::string port = std::to_string(server_->port());
  Ran r = run("RACKD_OSC_PORT=" + port + " " + exe_ + " --timeout 1 status --json");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("\"cycles\":777"), std::string::npos) << r.out;
  r = run("RACKD_OSC_PORT=1 " + base_ + "status --json");
  EXPECT_EQ(r.status, 0) << r.out;
  r = run("RACKD_OSC_PORT=nine " + exe_ + " status");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("RACKD_OSC_PORT"), std::string::npos) << r.out;
}

TEST_F(RackctlTest, TopRedrawsInPlaceAndQuitsOnQ) {
  Ran r = run("(sleep 1.5; echo q) | " + base_ + "top");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("\033[H"), std::string::npos);
  EXPECT_NE(r.out.find("RESTARTS"), std::string::npos);
}

TEST_F(RackctlTest, DumpPrintsNotifications) {
  Ran r = run("timeout -s INT 1 " + base_ + "dump");
  EXPECT_NE(r.out.find("/rackd/module/state p running"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/rackd/meters 777 0 0 2 src"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace rackd::control

namespace rackd::control {
namespace {

// The rackd side of the live-graph addresses, as far as rackctl can tell: every
// request is recorded as "address t:value..." and answered with `answer`.
class FakeRackd {
 public:
  enum class Answer { kDone, kError, kNothing };

  FakeRackd() {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeRackd() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }
  std::atomic<Answer> answer{Answer::kDone};
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      uint8_t buf[65536];
      sockaddr_in from{};
      socklen_t len = sizeof from;
      const ssize_t n = recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      int err = 0;
      lo_message m = n > 0 ? lo_message_deserialise(buf, static_cast<std::size_t>(n), &err) : nullptr;
      if (!m) continue;
      const std::string address = reinterpret_cast<const char*>(buf);
      const std::string types = lo_message_get_types(m);
      lo_arg** argv = lo_message_get_argv(m);
      std::string text = address;
      for (std::size_t i = 0; i < types.size(); ++i) {
        char v[64] = "";
        if (types[i] == 's') text += " s:" + std::string(&argv[i]->s);
        else if (types[i] == 'i') std::snprintf(v, sizeof v, " i:%d", argv[i]->i);
        else if (types[i] == 'f') std::snprintf(v, sizeof v, " f:%g", static_cast<double>(argv[i]->f));
        else std::snprintf(v, sizeof v, " %c:?", types[i]);
        text += v;
      }
      // done's name: TO for connect/disconnect, else the first argument.
      const std::size_t name_arg = address == "/rackd/connect" || address == "/rackd/disconnect" ? 1 : 0;
      const std::string name = name_arg < types.size() && types[name_arg] == 's' ? &argv[name_arg]->s : "";
      lo_message_free(m);
      {
        std::lock_guard<std::mutex> l(mu_);
        requests_.push_back(text);
      }
      lo_message reply = lo_message_new();
      std::string reply_to = "/rackd/done";
      if (address == "/rackd/graph") {
        reply_to = "/rackd/graph.reply";
        lo_message_add_int32(reply, 3);
        for (const char* s : {"src", "capture", "running", "",                                   //
                              "eq", "eq", "running", "src",                                      //
                              "mix", "passthrough", "starting", "src, eq (-6.0 dB) \"x\""})  //
          lo_message_add_string(reply, s);
        lo_message_add_string(reply, "eq, mix");
      } else if (answer == Answer::kNothing) {
        lo_message_free(reply);
        continue;
      } else if (answer == Answer::kError) {
        reply_to = "/rackd/error";
        lo_message_add_string(reply, address.c_str());
        lo_message_add_string(reply, "unknown module 'nobody'");
      } else {
        lo_message_add_string(reply, address.c_str());
        lo_message_add_string(reply, name.c_str());
      }
      std::size_t out_len = 0;
      void* out = lo_message_serialise(reply, reply_to.c_str(), nullptr, &out_len);
      sendto(fd_, out, out_len, 0, reinterpret_cast<sockaddr*>(&from), len);
      std::free(out);
      lo_message_free(reply);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

class RackctlGraphTest : public ::testing::Test {
 protected:
  void SetUp() override {
    exe_ = rackctl_path();
    if (exe_.empty()) GTEST_SKIP() << "rackctl not built (set RACKCTL=/path/to/rackctl)";
    base_ = exe_ + " --timeout 1 --port " + std::to_string(fake_.port()) + " ";
  }
  // The one request a command sent ("" when it sent none).
  std::string sent(const std::string& args, int want_status = 0) {
    const std::size_t before = fake_.requests().size();
    const Ran r = run(base_ + args);
    EXPECT_EQ(r.status, want_status) << args << "\n" << r.out;
    const std::vector<std::string> all = fake_.requests();
    EXPECT_LE(all.size(), before + 1) << args;
    return all.size() > before ? all.back() : "";
  }
  std::string exe_, base_;
  FakeRackd fake_;
};

TEST_F(RackctlGraphTest, AddSendsKeyValuePairsAsToml) {
  EXPECT_EQ(sent("add eq1 eq gain_db=-6 input=src 'ins=[\"a\", \"b\"]' bypass=true 'label=a\\b' "
                 "band.1/freq_hz=1e3 'cfg={ q = 0.7 }' 'note=\"hi there\"'"),
            "/rackd/module/add s:eq1 s:eq s:gain_db = -6\ninput = \"src\"\nins = [\"a\", \"b\"]\nbypass = true\n"
            "label = \"a\\\\b\"\nband.\"1/freq_hz\" = 1e3\ncfg = { q = 0.7 }\nnote = \"hi there\"");
  EXPECT_EQ(sent("add solo passthrough"), "/rackd/module/add s:solo s:passthrough s:");
}

TEST_F(RackctlGraphTest, AddRefusesWhatIsNotTomlAndSendsNothing) {
  for (const char* bad : {"add x eq 'v=[1,'", "add x eq 'v=two words'", "add x eq noequals", "add x eq 'k=1' 'k=2'",
                          "add x eq 'bad key=1'", "add x eq 'a..b=1'", "add x eq $'k=1\\nz=2'", "add x eq a=1 a.b=2",
                          "add x eq k=", "add x", "add", "add x eq --fade 0"}) {
    const Ran r = run("bash -c \"" + base_ + bad + "\"");
    EXPECT_EQ(r.status, 2) << bad << "\n" << r.out;
    EXPECT_NE(r.out.find("rackctl: "), std::string::npos) << bad;
  }
  const Ran r = run(base_ + "add x eq 'v=[1,'");
  EXPECT_NE(r.out.find("rackctl: add: v=[1,: "), std::string::npos) << r.out;
  EXPECT_TRUE(fake_.requests().empty());
}

TEST_F(RackctlGraphTest, RemoveConnectDisconnectArgumentsAndFade) {
  EXPECT_EQ(sent("remove eq1"), "/rackd/module/remove s:eq1");
  EXPECT_EQ(sent("remove eq1 --rewire"), "/rackd/module/remove s:eq1 i:1");
  EXPECT_EQ(sent("remove --fade 40 eq1 --rewire"), "/rackd/module/remove s:eq1 i:1 s:fade f:40");
  EXPECT_EQ(sent("connect src eq1"), "/rackd/connect s:src s:eq1");
  EXPECT_EQ(sent("connect src eq1 --gain -6"), "/rackd/connect s:src s:eq1 f:-6");
  EXPECT_EQ(sent("connect --fade 25 src eq1 --gain 2.5"), "/rackd/connect s:src s:eq1 f:2.5 s:fade f:25");
  EXPECT_EQ(sent("disconnect src eq1 --fade 25"), "/rackd/disconnect s:src s:eq1 s:fade f:25");
  EXPECT_EQ(sent("add m mix input=src --fade 12.5"), "/rackd/module/add s:m s:mix s:input = \"src\" s:fade f:12.5");
  // Wrong counts and options that belong to another command: usage, nothing sent.
  for (const char* bad : {"remove", "remove a b", "remove a --gain 3", "connect a", "connect a b c",
                          "connect a b --gain loud", "disconnect a b --rewire", "disconnect a", "load", "save a b",
                          "graph x", "graph --fade 5", "remove a --fade -1", "remove a --fade"})
    EXPECT_EQ(sent(bad, 2), "") << bad;
}

TEST_F(RackctlGraphTest, DoneErrorAndSilenceSetTheExitStatus) {
  EXPECT_EQ(run(base_ + "remove eq1").status, 0);
  fake_.answer = FakeRackd::Answer::kError;
  Ran r = run(base_ + "connect nobody eq1");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("rackctl: /rackd/connect: unknown module 'nobody'"), std::string::npos) << r.out;
  fake_.answer = FakeRackd::Answer::kNothing;
  r = run(base_ + "disconnect a b");
  EXPECT_EQ(r.status, 3) << r.out;
  EXPECT_NE(r.out.find("does not answer"), std::string::npos) << r.out;
  // add waits 15 s by default, but --timeout (before or after the command) wins.
  EXPECT_EQ(run(base_ + "add x eq").status, 3);
  EXPECT_EQ(run(exe_ + " --port " + std::to_string(fake_.port()) + " add x eq --timeout 0.2").status, 3);
}

TEST_F(RackctlGraphTest, LoadAndSaveSendAbsolutePaths) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("rackctl-test-" + std::to_string(getpid()));
  fs::create_directories(dir / "sub");
  std::ofstream(dir / "p.toml") << "\n";
  const std::string real = fs::canonical(dir).string();
  EXPECT_EQ(sent("load p.toml").substr(0, 21), "/rackd/patch/load s:/") << "a relative path went out";
  const std::string cd = "cd '" + (dir / "sub").string() + "' && ";
  std::size_t before = fake_.requests().size();
  EXPECT_EQ(run(cd + base_ + "load ../p.toml --fade 30").status, 0);
  EXPECT_EQ(run(cd + base_ + "save new.toml").status, 0);
  const std::vector<std::string> all = fake_.requests();
  ASSERT_EQ(all.size(), before + 2);
  EXPECT_EQ(all[before], "/rackd/patch/load s:" + real + "/p.toml s:fade f:30");
  EXPECT_EQ(all[before + 1], "/rackd/patch/save s:" + real + "/sub/new.toml");
  fs::remove_all(dir);
}

TEST_F(RackctlGraphTest, GraphPrintsTableAndJson) {
  Ran r = run(base_ + "graph");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(fake_.requests().back(), "/rackd/graph");
  EXPECT_NE(r.out.find("NAME"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("INPUTS"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nmix                  passthrough  starting src, eq (-6.0 dB) \"x\"\n"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\noutput <- eq, mix\n"), std::string::npos) << r.out;
  if (!std::filesystem::exists("/usr/bin/python3")) GTEST_SKIP() << "no python3 to parse the JSON";
  r = run(base_ + "graph --json | /usr/bin/python3 -c 'import json, sys; d = json.load(sys.stdin); "
                  "m = d[\"modules\"]; print(len(m), m[0][\"inputs\"] == \"\", m[1][\"type\"], m[2][\"state\"], "
                  "m[2][\"inputs\"], \"|\" + d[\"outputs\"])'");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, "3 True eq starting src, eq (-6.0 dB) \"x\" |eq, mix\n");
}

}  // namespace
}  // namespace rackd::control
