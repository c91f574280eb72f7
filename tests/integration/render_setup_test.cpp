// Integration: `rackd render` with a module that fails its setup. Offline the
// user asked for a file: a module that refuses its configuration (an hrir
// module given a bad SOFA file), never becomes ready (its process exits at
// start, every time) or is still starting after the setup wait fails the
// render with exit 1, the module and the reason on stderr, and no output: a
// file already at --out is left as it was. --keep-going renders anyway, with
// that module's output replaced. A module that was set up once and fails
// mid-render (even a restart that then refuses its setup) is restarted and
// replaced as live, and the render goes on. A render that fails for another
// reason leaves no file either; an interrupted one keeps what it rendered
// (render_test.cpp).
#include <gtest/gtest.h>
#include <signal.h>
#include <sndfile.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/integration/harness.hpp"

#ifndef RACKD_SHARED_DIR
#define RACKD_SHARED_DIR "/work/shared"
#endif

namespace rackd::test {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPrevious = "a file the user had here before";

// A SOFA file of the crash-regression corpus that the loader refuses (not HDF5).
std::string bad_sofa() { return std::string(RACKD_SHARED_DIR) + "/sofa/bad/fail-issue-137.sofa"; }  // refused: Data.IR size does not match M*R*N

// 8 channels of tone -> hrir with `sofa` -> output: the module cannot be bypassed
// (8 in, 2 out), so its replaced output is silence.
std::string hrir_patch(const std::string& dir, const std::string& sofa) {
  std::ofstream(dir + "/hrir.toml") << "[server]\noutput_channels = 2\n\n"
                                       "[[module]]\nname = \"src\"\ntype = \"capture\"\nsource = \"tone\"\n"
                                       "channels = 8\n\n"
                                       "[[module]]\nname = \"binaural\"\ntype = \"hrir\"\ninput = \"src\"\nsofa = \""
                                    << sofa << "\"\nlayout = \"7.1\"\n\n[output]\nfrom = \"binaural\"\n";
  return dir + "/hrir.toml";
}

std::string text_of(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Files in `dir` other than `named` (a temporary output left behind shows here).
std::vector<std::string> others(const std::string& dir, const std::vector<std::string>& named) {
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (std::find(named.begin(), named.end(), name) == named.end()) found.push_back(name);
  }
  return found;
}

Result render(const std::string& patch, const std::string& out, const std::vector<std::string>& extra = {},
              const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv = {bin("rackd"), "render", patch, "--duration", "0.5", "--out", out};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return run(argv, std::chrono::seconds(120), env);
}

// A module folder where rackd-passthrough is `script` (it answers --describe
// as the real one does) and every other module is the real one. Returns
// RACKD_MODULE_PATH=<it> for the environment.
std::string fake_passthrough(const std::string& dir, const std::string& script) {
  unsetenv("RACKD_MODULE_PATH");  // the one given to rackd must be the only one
  const std::string mods = dir + "/modules";
  fs::create_directories(mods);
  for (const auto& e : fs::directory_iterator(fs::path(bin("rackd")).parent_path())) {
    const std::string name = e.path().filename().string();
    if (name.rfind("rackd-", 0) == 0 && name != "rackd-passthrough") fs::create_symlink(e.path(), mods + "/" + name);
  }
  const std::string real = (fs::path(bin("rackd")).parent_path() / "rackd-passthrough").string();
  std::ofstream(mods + "/rackd-passthrough") << "#!/bin/sh\n[ \"$1\" = --describe ] && exec " << real
                                             << " \"$@\"\n" << script << "\n";
  fs::permissions(mods + "/rackd-passthrough", fs::perms::owner_all);
  std::ofstream(dir + "/p.toml") << "[[module]]\nname = \"tone\"\ntype = \"capture\"\nsource = \"tone\"\n\n"
                                    "[[module]]\nname = \"p\"\ntype = \"passthrough\"\ninput = \"tone\"\n\n"
                                    "[output]\nfrom = \"p\"\n";
  return "RACKD_MODULE_PATH=" + mods;
}

TEST(RenderSetup, RefusedSofaFailsTheRenderAndLeavesOutAsItWas) {
  const std::string d = temp_dir();
  const std::string patch = hrir_patch(d, bad_sofa());
  std::ofstream(d + "/o.wav") << kPrevious;
  Result r = render(patch, d + "/o.wav");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("rackd render: module \"binaural\" failed setup: " + bad_sofa() + ": "), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("no output written (--keep-going renders anyway"), std::string::npos) << r.err;
  EXPECT_EQ(json_string(r.out, "binaural", "state"), "setup-error") << r.out;
  EXPECT_EQ(json_number(r.out, "", "cycles"), 0) << r.out;
  EXPECT_EQ(text_of(d + "/o.wav"), kPrevious);
  // Nor is a new file created, and no temporary is left beside either.
  Result fresh = render(patch, d + "/new.wav");
  EXPECT_EQ(fresh.status, 1) << fresh.err;
  EXPECT_FALSE(fs::exists(d + "/new.wav"));
  EXPECT_EQ(others(d, {"hrir.toml", "o.wav"}), std::vector<std::string>{});
}

TEST(RenderSetup, KeepGoingRendersTheRefusedModuleAsSilenceAtFullLength) {
  const std::string d = temp_dir();
  std::ofstream(d + "/o.wav") << kPrevious;
  Result r = render(hrir_patch(d, bad_sofa()), d + "/o.wav", {"--keep-going"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("rackd render: warning: module \"binaural\" failed setup: " + bad_sofa()), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("--keep-going: rendering with silence in its place"), std::string::npos) << r.err;
  EXPECT_EQ(json_string(r.out, "binaural", "state"), "setup-error") << r.out;
  const Audio o = read_audio(d + "/o.wav");
  ASSERT_EQ(o.ch.size(), 2u);
  EXPECT_EQ(o.frames(), 24000u);
  for (const auto& c : o.ch)
    for (float x : c) ASSERT_EQ(x, 0.0f);
  EXPECT_EQ(others(d, {"hrir.toml", "o.wav"}), std::vector<std::string>{});
}

// "Never becomes ready": every process of the module exits at once, so the
// supervisor gives up on it before the first block.
TEST(RenderSetup, ModuleThatExitsAtStartFailsTheRender) {
  const std::string d = temp_dir();
  const std::string env = fake_passthrough(d, "exit 3");
  Result r = render(d + "/p.toml", d + "/o.wav", {}, {env});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("rackd render: module \"p\" failed setup: exited with status 3 before it was ready ("),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("the supervisor gave up); no output written"), std::string::npos) << r.err;
  EXPECT_EQ(json_string(r.out, "p", "state"), "failed") << r.out;
  EXPECT_FALSE(fs::exists(d + "/o.wav"));

  // --keep-going: the passthrough is bypassed, the tone comes through, full length.
  Result k = render(d + "/p.toml", d + "/o.wav", {"--keep-going"}, {env});
  ASSERT_EQ(k.status, 0) << k.err;
  EXPECT_NE(k.err.find("--keep-going: rendering with its input passed through in its place"), std::string::npos)
      << k.err;
  const Audio o = read_audio(d + "/o.wav");
  EXPECT_EQ(o.frames(), 24000u);
  float peak = 0;
  for (float x : o.ch[0]) peak = std::max(peak, std::abs(x));
  EXPECT_GT(peak, 0.01f) << "the bypass passes the tone";
}

// A module still setting up when the setup wait (10 s) ends fails the render.
TEST(RenderSetup, ModuleStillStartingAfterTheSetupWaitFailsTheRender) {
  const std::string d = temp_dir();
  const std::string env = fake_passthrough(d, "exec sleep 60");
  std::ofstream(d + "/o.wav") << kPrevious;
  Result r = render(d + "/p.toml", d + "/o.wav", {}, {env});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("rackd render: module \"p\" failed setup: not ready after 10 s (still setting up); "
                       "no output written"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(text_of(d + "/o.wav"), kPrevious);
}

// Set up once, then killed mid-render while its file is gone: the restart
// refuses its setup, the slot is replaced (silence) and the render goes on to
// full length and exit 0 (the module's first process was set up; what
// happens after that is the restart case, as live). The render is slowed by a
// downstream chaos module (3 ms per block) so that the kill lands mid-render.
TEST(RenderSetup, RestartThatRefusesItsSetupMidRenderKeepsGoing) {
  const std::string d = temp_dir();
  Audio in;
  in.ch.assign(1, std::vector<float>(48000, 0.25f));
  write_audio(d + "/src.wav", in);
  std::ofstream(d + "/p.toml") << "[[module]]\nname = \"f\"\ntype = \"capture\"\nsource = \"file\"\n"
                                  "file = \"src.wav\"\nchannels = 1\n\n"
                                  "[[module]]\nname = \"slow\"\ntype = \"chaos\"\ninput = \"f\"\nmode = 5\n"
                                  "busy_ms = 3\n\n[output]\nfrom = \"slow\"\n";
  Process p({bin("rackd"), "render", d + "/p.toml", "--duration", "4", "--out", d + "/o.wav"});
  std::vector<pid_t> capture;
  for (int i = 0; i < 5000 && capture.empty(); ++i) {
    capture = children(p.pid(), "rackd-capture");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(capture.size(), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  fs::remove(d + "/src.wav");
  ASSERT_EQ(kill(capture[0], SIGKILL), 0);
  ASSERT_EQ(p.wait(std::chrono::seconds(120)), 0) << p.err();
  EXPECT_EQ(json_string(p.out(), "f", "state"), "setup-error") << p.out();
  EXPECT_EQ(json_number(p.out(), "f", "restarts"), 1) << p.out();
  EXPECT_NE(p.err().find("src.wav"), std::string::npos) << p.err();
  const Audio o = read_audio(d + "/o.wav");
  ASSERT_EQ(o.frames(), 192000u);
  EXPECT_EQ(o.ch[0][0], 0.25f) << "the first process rendered";
  EXPECT_EQ(o.ch[0].back(), 0.0f) << "the refused restart's blocks are silence";
}

// A module path without the patch's types: the patch is refused (exit 2,
// naming the path searched) before OUT is touched.
TEST(RenderSetup, RenderThatFailsOtherwiseLeavesOutAsItWas) {
  const std::string d = temp_dir();
  unsetenv("RACKD_MODULE_PATH");
  fs::create_directories(d + "/empty");
  std::ofstream(d + "/o.wav") << kPrevious;
  Result r = run({bin("rackd"), "render", source("patches/tone.toml"), "--duration", "0.5", "--out", d + "/o.wav"},
                 std::chrono::seconds(120), {"RACKD_MODULE_PATH=" + d + "/empty"});
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("unknown type \"capture\" (types: ; module path: " + d + "/empty)"), std::string::npos) << r.err;
  EXPECT_EQ(text_of(d + "/o.wav"), kPrevious);
  EXPECT_EQ(others(d, {"empty", "o.wav"}), std::vector<std::string>{});
}

}  // namespace
}  // namespace rackd::test
