// rackctl against a ControlServer on a real socket. Needs the rackctl binary:
// $RACKCTL, else RACKD_BIN_DIR/rackctl; skipped when neither exists.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

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
