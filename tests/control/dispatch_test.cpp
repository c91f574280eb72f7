// dispatch: the address space on a real segment, through a send callback.
#include "control/dispatch.hpp"

#include <gtest/gtest.h>

#include "tests/control/fixture.hpp"

namespace rackd::control {
namespace {

struct Sent {
  Peer to;
  OscMessage m;
};

class DispatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rig_ = test::make_rig();
    hooks_.rate_hz = 48000;
    hooks_.block_frames = 128;
    hooks_.cycles = [] { return uint64_t{1000}; };
    hooks_.xruns = [] { return uint64_t{2}; };
    hooks_.limited_frames = [] { return uint64_t{5}; };
    hooks_.restart = [this](uint32_t slot, std::string& why) {
      restarted_.push_back(slot);
      if (slot == 0) {
        why = "source modules restart on their own";
        return false;
      }
      return true;
    };
    make();
  }
  void make(OscMap map = {}, uint16_t feedback_port = 0) {
    d_ = std::make_unique<Dispatcher>(*rig_->segment, rig_->patch, hooks_, std::move(map),
                                      [this](const Peer& to, const OscMessage& m) { sent_.push_back({to, m}); },
                                      feedback_port);
  }
  void send(const std::string& address, std::vector<OscArg> args, Peer from = Peer::loopback(5000)) {
    d_->dispatch(OscMessage{address, std::move(args)}, from);
  }
  // The one reply to the last request; fails unless exactly one was sent.
  OscMessage reply() {
    EXPECT_EQ(sent_.size(), 1u);
    OscMessage m = sent_.empty() ? OscMessage{} : sent_.back().m;
    sent_.clear();
    return m;
  }
  void expect_error(const std::string& address, std::vector<OscArg> args, const std::string& reason_part) {
    const std::string before = test::snapshot(*rig_->segment);
    send(address, std::move(args));
    OscMessage r = reply();
    EXPECT_EQ(r.address, "/rackd/error");
    ASSERT_EQ(r.types(), "ss");
    EXPECT_EQ(r.args[0].s, address);
    EXPECT_NE(r.args[1].s.find(reason_part), std::string::npos) << r.args[1].s;
    EXPECT_EQ(test::snapshot(*rig_->segment), before) << address << " changed something";
  }
  shm::ModuleIn& in(uint32_t i) { return rig_->segment->module_in(i); }

  std::unique_ptr<test::Rig> rig_;
  ServerHooks hooks_;
  std::unique_ptr<Dispatcher> d_;
  std::vector<Sent> sent_;
  std::vector<uint32_t> restarted_;
};

TEST_F(DispatchTest, StatusReplyCarriesServerAndPerModuleFields) {
  rig_->segment->module_out(1).last_block_ns.store(1333333);  // half the 2.67 ms period
  rig_->segment->module_out(1).max_block_ns.store(2666666);
  in(1).late.store(7);
  in(1).restarts.store(3);
  send("/rackd/status", {});
  OscMessage r = reply();
  EXPECT_EQ(r.address, "/rackd/status.reply");
  ASSERT_EQ(r.types(), "iihhhi" + std::string("sssffhhiii") + "sssffhhiii");
  EXPECT_EQ(r.args[0].i, 48000);
  EXPECT_EQ(r.args[1].i, 128);
  EXPECT_EQ(r.args[2].i, 1000);
  EXPECT_EQ(r.args[3].i, 2);
  EXPECT_EQ(r.args[4].i, 5);
  EXPECT_EQ(r.args[5].i, 2);
  EXPECT_EQ(r.args[6].s, "src");
  EXPECT_EQ(r.args[7].s, "capture");
  EXPECT_EQ(r.args[8].s, "running");
  EXPECT_EQ(r.args[15].i, 0);  // latency_frames
  EXPECT_EQ(r.args[16].s, "p");
  EXPECT_NEAR(r.args[19].d, 0.5, 0.001);
  EXPECT_NEAR(r.args[20].d, 1.0, 0.001);
  EXPECT_EQ(r.args[21].i, 7);
  EXPECT_EQ(r.args[22].i, 3);
  expect_error("/rackd/status", {OscArg::int32(1)}, "no arguments");
}

TEST_F(DispatchTest, SetThenGetRoundTrips) {
  const uint32_t epoch = in(1).param_epoch.load();
  send("/p/gain_db", {OscArg::float32(-6.5f)});
  EXPECT_TRUE(sent_.empty());  // a set is silent on success
  EXPECT_EQ(in(1).param_epoch.load(), epoch + 1);
  send("/p/gain_db/get", {});
  OscMessage r = reply();
  EXPECT_EQ(r.address, "/p/gain_db");
  ASSERT_EQ(r.types(), "f");
  EXPECT_EQ(r.args[0].d, -6.5);

  send("/p/bypass", {OscArg::boolean(true)});
  send("/p/bypass/get", {});
  EXPECT_EQ(reply().types(), "T");
  send("/src/freq_hz", {OscArg::int32(1000)});
  send("/src/freq_hz/get", {});
  EXPECT_EQ(reply().args[0].d, 1000.0);
}

TEST_F(DispatchTest, UnknownModuleOrParameterIsAnErrorThatChangesNothing) {
  expect_error("/nope/gain_db", {OscArg::float32(1)}, "unknown module \"nope\"");
  expect_error("/p/volume", {OscArg::float32(1)}, "has no parameter \"volume\"");
  expect_error("/p", {OscArg::float32(1)}, "no parameter");
  expect_error("/p/volume/get", {}, "has no parameter");
  expect_error("/rackd/whatever", {}, "unknown address");
}

TEST_F(DispatchTest, OutOfRangeAndWrongTypesAreErrors) {
  expect_error("/p/gain_db", {OscArg::float32(30)}, "out of range [-96, 24] dB");
  expect_error("/p/gain_db", {OscArg::string("loud")}, "expects a number");
  expect_error("/p/gain_db", {}, "takes 1 value, got 0");
  expect_error("/p/gain_db", {OscArg::float32(1), OscArg::float32(2)}, "takes 1 value, got 2");
  expect_error("/p/bypass", {OscArg::int32(2)}, "true/false or 0/1");
  expect_error("/p/gain_db/get", {OscArg::int32(1)}, "no arguments");
}

TEST_F(DispatchTest, BypassWritesTheSwitchAndRefusesSources) {
  send("/rackd/module/bypass", {OscArg::string("p"), OscArg::int32(1)});
  OscMessage r = reply();
  EXPECT_EQ(r.address, "/rackd/done");
  EXPECT_EQ(r.args[0].s, "/rackd/module/bypass");
  EXPECT_EQ(in(1).bypassed.load(), 1u);
  send("/rackd/module/bypass", {OscArg::string("p"), OscArg::boolean(false)});
  reply();
  EXPECT_EQ(in(1).bypassed.load(), 0u);
  expect_error("/rackd/module/bypass", {OscArg::string("src"), OscArg::int32(1)}, "cannot be bypassed");
  expect_error("/rackd/module/bypass", {OscArg::string("zz"), OscArg::int32(1)}, "unknown module");
  expect_error("/rackd/module/bypass", {OscArg::string("p")}, "two arguments");
  expect_error("/rackd/module/bypass", {OscArg::string("p"), OscArg::int32(3)}, "0/1");
}

TEST_F(DispatchTest, BypassHookIsCalledWhenGiven) {
  std::vector<std::pair<uint32_t, bool>> calls;
  hooks_.bypass = [&](uint32_t slot, bool on, std::string&) {
    calls.emplace_back(slot, on);
    return true;
  };
  make();
  send("/rackd/module/bypass", {OscArg::string("p"), OscArg::float32(1.0f)});
  EXPECT_EQ(reply().address, "/rackd/done");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0], std::make_pair(1u, true));
}

TEST_F(DispatchTest, RestartCallsTheHookAndReportsItsRefusal) {
  send("/rackd/module/restart", {OscArg::string("p")});
  OscMessage r = reply();
  EXPECT_EQ(r.address, "/rackd/done");
  EXPECT_EQ(r.args[1].s, "p");
  expect_error("/rackd/module/restart", {OscArg::string("src")}, "restart on their own");
  EXPECT_EQ(restarted_, (std::vector<uint32_t>{1, 0}));
  expect_error("/rackd/module/restart", {OscArg::string("ghost")}, "unknown module");
  expect_error("/rackd/module/restart", {OscArg::int32(1)}, "module name");
  hooks_.restart = nullptr;
  make();
  expect_error("/rackd/module/restart", {OscArg::string("p")}, "not available");
}

TEST_F(DispatchTest, SyncRepliesWithItsId) {
  send("/rackd/sync", {OscArg::int32(42)});
  OscMessage r = reply();
  EXPECT_EQ(r.address, "/rackd/synced");
  EXPECT_EQ(r.args[0].i, 42);
  expect_error("/rackd/sync", {OscArg::string("x")}, "int32");
}

TEST_F(DispatchTest, SubscribersGetStateChangesParameterChangesAndMeters) {
  const Peer a = Peer::loopback(6000);
  send("/rackd/notify", {OscArg::int32(1)}, a);
  ASSERT_EQ(sent_.size(), 3u);  // notify.reply + one state per module
  EXPECT_EQ(sent_[0].m.address, "/rackd/notify.reply");
  EXPECT_EQ(sent_[1].m.address, "/rackd/module/state");
  sent_.clear();
  d_->tick(false);
  EXPECT_TRUE(sent_.empty());

  in(1).state.store(static_cast<uint32_t>(shm::ModuleState::kDead));
  send("/p/gain_db", {OscArg::float32(-1.0f)}, Peer::loopback(7000));
  d_->tick(true);
  bool state = false, param = false, meters = false;
  for (const auto& s : sent_) {
    EXPECT_TRUE(s.to == a);
    if (s.m.address == "/rackd/module/state") state = s.m.args[0].s == "p" && s.m.args[1].s == "dead";
    if (s.m.address == "/p/gain_db") param = s.m.args[0].d == -1.0;
    if (s.m.address == "/rackd/meters") meters = s.m.types() == "hhhisffhsffh";
  }
  EXPECT_TRUE(state);
  EXPECT_TRUE(param);
  EXPECT_TRUE(meters);

  sent_.clear();
  send("/rackd/notify", {OscArg::int32(0)}, a);
  EXPECT_EQ(reply().args[0].i, 0);
  send("/p/gain_db", {OscArg::float32(-2.0f)});
  d_->tick(true);
  EXPECT_TRUE(sent_.empty());
}

// A value the module reports (an output: chaos's `blocks`, an LV2 meter) is
// read from its ModuleOut page by /get and by notifications, never set.
TEST_F(DispatchTest, OutputsAreReadFromTheModuleAndNeverSet) {
  rig_ = test::make_rig("[[module]]\nname = \"src\"\ntype = \"capture\"\nsource = \"tone\"\n\n"
                        "[[module]]\nname = \"c\"\ntype = \"chaos\"\ninput = \"src\"\n\n[output]\nfrom = \"c\"\n");
  make();
  rig_->segment->module_out(1).outputs[0].store(42.0);
  send("/c/blocks/get", {});
  OscMessage r = reply();
  EXPECT_EQ(r.address, "/c/blocks");
  ASSERT_EQ(r.types(), "f");
  EXPECT_EQ(r.args[0].d, 42.0);
  expect_error("/c/blocks", {OscArg::float32(3.0f)}, "is a value the module reports (read-only)");

  d_->tick(false);  // followed without subscribers too: nothing stale is sent later
  const Peer a = Peer::loopback(6000);
  send("/rackd/notify", {OscArg::int32(1)}, a);
  sent_.clear();
  d_->tick(false);
  EXPECT_TRUE(sent_.empty());  // unchanged since the subscription
  rig_->segment->module_out(1).outputs[0].store(43.0);
  d_->tick(false);
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].m.address, "/c/blocks");
  EXPECT_EQ(sent_[0].m.args[0].d, 43.0);
}

// Live graph changes move modules between slots: a mapping follows its
// module by name, and one whose module left answers with an error.
TEST_F(DispatchTest, MappingsFollowTheirModuleWhenTheGraphChanges) {
  uint64_t version = 1;
  hooks_.graph_version = [&version] { return version; };
  make(parse_osc_map(test::kTwoModulePatch, "t.toml", rig_->patch));
  send("/1/fader1", {OscArg::float32(0.75f)});
  EXPECT_NEAR(get_param(in(1), 0)[0], 6.0, 1e-9);
  // "p" moves from slot 1 to slot 2 (as a replacement would), slot 1 is free.
  rig_->patch.modules.resize(3);
  rig_->patch.modules[2] = rig_->patch.modules[1];
  rig_->patch.modules[1] = graph::PatchModule{};
  server::write_module_slot(*rig_->segment, 2, rig_->patch.modules[2]);
  in(2).state.store(static_cast<uint32_t>(shm::ModuleState::kRunning));
  ++version;
  send("/1/fader1", {OscArg::float32(0.25f)});
  EXPECT_NEAR(get_param(in(2), 0)[0], -6.0, 1e-9);
  EXPECT_NEAR(get_param(in(1), 0)[0], 6.0, 1e-9) << "the old slot is left alone";
  // "p" leaves.
  rig_->patch.modules.resize(2);
  ++version;
  sent_.clear();
  expect_error("/1/fader1", {OscArg::float32(0.5f)}, "not in the segment");
}

TEST_F(DispatchTest, SubscriberListIsBoundedDroppingTheOldest) {
  for (uint16_t k = 0; k < kMaxSubscribers + 3; ++k) send("/rackd/notify", {OscArg::int32(1)}, Peer::loopback(10000 + k));
  EXPECT_EQ(d_->subscribers().size(), kMaxSubscribers);
  EXPECT_EQ(d_->subscribers().front().port(), 10003);
}

TEST_F(DispatchTest, MappedControllerScalesIntoTheParameterAndGetsFeedback) {
  make(parse_osc_map(test::kTwoModulePatch, "t.toml", rig_->patch), 9100);
  d_->tick(false);  // with --osc-feedback the controller is 127.0.0.1:9100 from the start
  ASSERT_EQ(sent_.size(), 3u);
  EXPECT_EQ(sent_[0].to.port(), 9100);
  EXPECT_EQ(sent_[0].m.address, "/1/fader1");
  EXPECT_NEAR(sent_[0].m.args[0].d, 0.5, 1e-6);  // gain 0 dB in [-12, 12]
  sent_.clear();

  Peer phone = Peer::loopback(40000);
  phone.addr.sin_addr.s_addr = htonl(0x0a000002);  // 10.0.0.2
  send("/1/fader1", {OscArg::float32(0.75f)}, phone);
  EXPECT_NEAR(get_param(in(1), 0)[0], 6.0, 1e-9);
  // New controller address: every mapping is sent to it once, at the feedback port.
  ASSERT_EQ(sent_.size(), 3u);
  EXPECT_EQ(sent_[0].to.addr.sin_addr.s_addr, htonl(0x0a000002));
  EXPECT_EQ(sent_[0].to.port(), 9100);
  sent_.clear();
  d_->tick(false);
  EXPECT_TRUE(sent_.empty());  // no echo of the controller's own move

  send("/p/gain_db", {OscArg::float32(-12.0f)}, Peer::loopback(5555));  // changed elsewhere
  d_->tick(false);
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].m.address, "/1/fader1");
  EXPECT_NEAR(sent_[0].m.args[0].d, 0.0, 1e-6);
  sent_.clear();

  send("/1/toggle1", {OscArg::float32(1.0f)}, phone);
  EXPECT_EQ(get_param(in(1), 1)[0], 1.0);
  send("/1/fader2", {OscArg::float32(2.0f)}, phone);  // clamped to 1 -> max
  EXPECT_EQ(get_param(in(0), 2)[0], 20000.0);
  sent_.clear();
  expect_error("/1/fader1", {OscArg::string("x")}, "number");
  expect_error("/1/fader1", {}, "one value");
}

TEST(OscMap, ParseErrorsNameFileAndLine) {
  auto rig = test::make_rig();
  const std::string head =
      "[server]\nrate = 48000\n[[module]]\nname = \"src\"\ntype = \"capture\"\nsource = \"tone\"\n"
      "[[module]]\nname = \"p\"\ntype = \"passthrough\"\ninput = \"src\"\n[output]\nfrom = \"p\"\n";
  auto err = [&](const std::string& tail) {
    try {
      parse_osc_map(head + tail, "m.toml", rig->patch);
    } catch (const graph::PatchError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(err("[osc.map]\n\"/1/f\" = { to = \"/p/nope\" }\n").rfind("m.toml:14: ", 0), 0u)
      << err("[osc.map]\n\"/1/f\" = { to = \"/p/nope\" }\n");
  EXPECT_NE(err("[osc.map]\n\"/1/f\" = { to = \"/p/gain_db\", min = -200.0 }\n").find("outside"), std::string::npos);
  EXPECT_NE(err("[osc.map]\n\"/1/f\" = { to = \"/p/gain_db\", min = 1, max = 1 }\n").find("differ"), std::string::npos);
  EXPECT_NE(err("[osc.map]\n\"1/f\" = \"/p/gain_db\"\n").find("must start with '/'"), std::string::npos);
  EXPECT_NE(err("[osc.map]\n\"/rackd/x\" = \"/p/gain_db\"\n").find("reserved"), std::string::npos);
  EXPECT_NE(err("[osc]\nport = 1\n").find("unknown key"), std::string::npos);
  EXPECT_NE(err("[osc.map]\n\"/1/f\" = { to = \"/p/gain_db\", scale = 2 }\n").find("unknown key"), std::string::npos);
  EXPECT_EQ(err(""), "no error");
}

}  // namespace
}  // namespace rackd::control
