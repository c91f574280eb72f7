// Open modules: the module path, `rackd modules` / `rackd describe`, bad files
// on the path (each skipped with a warning naming it while everything else
// keeps working), a type installed while rackd runs, and a module whose
// parameter declarations are swapped (rackd-passthrough-swapped) behaving
// exactly as the original. Runs the built rackd; no sound device.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <fstream>
#include <thread>
#include <utility>

#include "tests/integration/harness.hpp"

namespace rackd::test {
namespace {

namespace fs = std::filesystem;

void write(const std::string& path, const std::string& text, bool executable = true) {
  std::ofstream(path) << text;
  fs::permissions(path, executable ? fs::perms::owner_all : fs::perms::owner_read | fs::perms::owner_write);
}

std::string bin_dir() { return fs::path(bin("rackd")).parent_path().string(); }

// A module folder with links to the built modules named in `types`.
std::string module_folder(const std::string& dir, const std::vector<std::string>& types) {
  fs::create_directories(dir);
  for (const auto& t : types) fs::create_symlink(bin("rackd-" + t), dir + "/rackd-" + t);
  return dir;
}

constexpr const char* kTonePassthrough = R"([[module]]
name = "tone"
type = "capture"
source = "tone"

[[module]]
name = "p"
type = "%TYPE%"
input = "tone"
gain_db = -6.0

[output]
from = "p"
)";

std::string patch_with(const std::string& type) {
  std::string s = kTonePassthrough;
  s.replace(s.find("%TYPE%"), 6, type);
  return s;
}

// rackd playing `patch` live on its null device, and rackctl talking to it.
struct Live {
  uint16_t port = free_udp_port();
  Process rackd;
  Live(const std::string& patch, const std::vector<std::string>& env = {})
      : rackd({bin("rackd"), "run", patch, "--device", "null", "--osc-port", std::to_string(port)}, env) {}
  Result ctl(std::vector<std::string> args) const {
    args.insert(args.begin(), {bin("rackctl"), "--port", std::to_string(port)});
    return run(args, std::chrono::seconds(30));
  }
  // [setup] True once rackd answers.
  bool up() const {
    for (int i = 0; i < 200; ++i) {
      if (ctl({"graph"}).status == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return false;
  }
};

TEST(Modules, ListAndDescribeTheShippedTypes) {
  unsetenv("RACKD_MODULE_PATH");
  const Result r = run({bin("rackd"), "modules"});
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* t : {"capture", "passthrough", "eq", "hrir", "chaos"}) {
    EXPECT_NE(r.out.find(std::string(t) + " "), std::string::npos) << t << "\n" << r.out;
    EXPECT_NE(r.out.find(bin_dir() + "/rackd-" + t + "\n"), std::string::npos) << t << "\n" << r.out;
  }
  EXPECT_NE(r.out.find("module path: " + bin_dir()), std::string::npos) << r.out;
  EXPECT_EQ(r.err, "");

  const Result eq = run({bin("rackd"), "describe", "eq"});
  ASSERT_EQ(eq.status, 0) << eq.err;
  EXPECT_NE(eq.out.find("band/32/channel"), std::string::npos);
  EXPECT_NE(eq.out.find("preset"), std::string::npos);
  EXPECT_NE(eq.out.find("parameters follow from the setup keys: rackd describe eq --config"), std::string::npos);
  // With setup keys: the defaults a module with them has (--describe --config).
  const Result banded =
      run({bin("rackd"), "describe", "eq", "--config", "bands = [{ type = \"peak\", freq = 250.0, gain = -4.5 }]"});
  ASSERT_EQ(banded.status, 0) << banded.err;
  EXPECT_NE(banded.out.find("band/1/gain          float     -30..30        default -4.5"), std::string::npos)
      << banded.out;
  const Result missing = run({bin("rackd"), "describe", "eq", "--config", "preset = \"/nonexistent.txt\""});
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("rackd describe: /nonexistent.txt: cannot open preset file"), std::string::npos)
      << missing.err;
  const Result hrir = run({bin("rackd"), "describe", "hrir"});
  EXPECT_NE(hrir.out.find("input:      by layout: 2.0 2, 5.1 6, 7.1 8, 7.1.4 12 (default 7.1)"), std::string::npos)
      << hrir.out;
  const Result json = run({bin("rackd"), "describe", "capture", "--json"});
  EXPECT_EQ(json.status, 0);
  EXPECT_NE(json.out.find("\"rackd_module\":5"), std::string::npos) << json.out;

  const Result unknown = run({bin("rackd"), "describe", "nosuch"});
  EXPECT_EQ(unknown.status, 1);
  EXPECT_NE(unknown.err.find("unknown type \"nosuch\" (types: capture"), std::string::npos) << unknown.err;
}

// Every kind of bad file the issue lists, on one path with the real modules:
// each is skipped with a warning naming it; the real types list and render.
TEST(Modules, BadFilesOnThePathAreSkippedAndTheRestWorks) {
  const std::string d = temp_dir();
  const std::string bad = d + "/bad", later = d + "/later";
  fs::create_directories(bad);
  fs::create_directories(later);
  write(bad + "/rackd-notexec", "#!/bin/sh\nexec " + bin("rackd-passthrough") + " \"$@\"\n", false);
  write(bad + "/rackd-crash", "#!/bin/sh\nkill -SEGV $$\n");
  write(bad + "/rackd-hang", "#!/bin/sh\nexec sleep 60\n");
  write(bad + "/rackd-garbage", "#!/bin/sh\necho '{\"rackd_module\": 5, \"type\": '\n");
  // Consistent JSON in form, inconsistent in content: a default outside its range.
  write(bad + "/rackd-inconsistent",
        "#!/bin/sh\n" + bin("rackd-passthrough") + " --describe | sed 's/\"default\":0.0/\"default\":99.0/'\n");
  // A module built against another protocol.
  write(bad + "/rackd-oldproto",
        "#!/bin/sh\n" + bin("rackd-passthrough") + " --describe | sed 's/\"rackd_module\":5/\"rackd_module\":4/'\n");
  // A second executable claiming "passthrough", later on the path.
  write(later + "/rackd-passthrough2", "#!/bin/sh\nexec " + bin("rackd-passthrough") + " \"$@\"\n");
  const std::string env = "RACKD_MODULE_PATH=" + bad + ":" + bin_dir() + ":" + later;

  const Result r = run({bin("rackd"), "modules"}, std::chrono::seconds(60), {env});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("passthrough    " + bin_dir() + "/rackd-passthrough\n"), std::string::npos) << r.out;
  const std::pair<std::string, std::string> expected[] = {
      {bad + "/rackd-notexec", "not executable"},
      {bad + "/rackd-crash", "--describe was killed by signal 11"},
      {bad + "/rackd-hang", "did not answer --describe within 5.0 s (killed)"},
      {bad + "/rackd-garbage", "--describe: not JSON"},
      {bad + "/rackd-inconsistent", "--describe: type passthrough: parameter gain_db: needs min <= default <= max"},
      {bad + "/rackd-oldproto",
       "--describe: built against rackd module protocol 4; this rackd speaks 5 (rebuild it against this rackd's SDK)"},
      {later + "/rackd-passthrough2",
       "also claims type \"passthrough\", which " + bin_dir() + "/rackd-passthrough (earlier on the module path) provides"},
  };
  for (const auto& [file, why] : expected) {
    EXPECT_NE(r.err.find("rackd: warning: module path: " + file + ": " + why), std::string::npos)
        << file << "\n" << r.err;
    EXPECT_NE(r.out.find("skipped: " + file + ": " + why), std::string::npos) << file << "\n" << r.out;
  }

  // Everything else keeps working: a render through the real passthrough.
  write(d + "/ok.toml", patch_with("passthrough"), false);
  const Result ok = run({bin("rackd"), "render", d + "/ok.toml", "--duration", "0.2", "--out", d + "/o.wav"},
                        std::chrono::seconds(60), {env});
  EXPECT_EQ(ok.status, 0) << ok.err;
  EXPECT_EQ(read_audio(d + "/o.wav").frames(), 9600u);

  // A patch that uses a skipped type is refused with the reason.
  write(d + "/crash.toml", patch_with("crash"), false);
  const Result refused = run({bin("rackd"), "check", d + "/crash.toml"}, std::chrono::seconds(60), {env});
  EXPECT_EQ(refused.status, 2);
  EXPECT_NE(refused.err.find(d + "/crash.toml:8: module \"p\": type \"crash\" is not available: " + bad +
                             "/rackd-crash was skipped: --describe was killed by signal 11"),
            std::string::npos)
      << refused.err;
}

// A type that appears on the path while rackd plays is used by the next live
// add, with no restart; the modules that were playing are not touched.
TEST(Modules, ATypeInstalledWhileRackdRunsServesTheNextLiveAdd) {
  const std::string d = temp_dir();
  const std::string mods = module_folder(d + "/mods", {"capture", "passthrough"});
  write(d + "/base.toml", patch_with("passthrough"), false);
  Live live(d + "/base.toml", {"RACKD_MODULE_PATH=" + mods});
  Process& rackd = live.rackd;
  auto ctl = [&](std::vector<std::string> args) { return live.ctl(std::move(args)); };
  ASSERT_TRUE(live.up()) << rackd.err();
  const Result before = ctl({"add", "q", "passthrough-swapped", "input=p"});
  EXPECT_NE(before.status, 0);
  EXPECT_NE(before.err.find("unknown type \"passthrough-swapped\""), std::string::npos) << before.err;

  fs::create_symlink(bin("rackd-passthrough-swapped"), mods + "/rackd-passthrough-swapped");
  const Result add = ctl({"add", "q", "passthrough-swapped", "input=p", "gain_db=-3"});
  ASSERT_EQ(add.status, 0) << add.err;
  EXPECT_NE(ctl({"graph"}).out.find("passthrough-swapped"), std::string::npos);
  EXPECT_EQ(ctl({"set", "/q/gain_db", "-12"}).status, 0);
  const Result got = ctl({"get", "/q/gain_db"});
  EXPECT_NE(got.out.find("-12"), std::string::npos) << got.out << got.err;

  rackd.signal(SIGINT);
  ASSERT_EQ(rackd.wait(std::chrono::seconds(20)), 0) << rackd.err();
  EXPECT_EQ(json_number(rackd.out(), "p", "restarts"), 0) << rackd.out();
  EXPECT_EQ(json_string(rackd.out(), "q", "state"), "running") << rackd.out();
}

// The same module with its two parameter declarations swapped: the OSC
// addresses, the patch keys and the render (with a gain change mid-way and a
// bypass) are the same; only the slot order differs.
TEST(Modules, SwappedParameterDeclarationsChangeNothingObservable) {
  const std::string d = temp_dir();
  const Result a = run({bin("rackd"), "describe", "passthrough"});
  const Result b = run({bin("rackd"), "describe", "passthrough-swapped"});
  ASSERT_EQ(a.status, 0);
  ASSERT_EQ(b.status, 0);
  EXPECT_LT(a.out.find("  gain_db"), a.out.find("  bypass"));
  EXPECT_GT(b.out.find("  gain_db"), b.out.find("  bypass"));

  write(d + "/events", "0.1 /p/gain_db -20\n0.2 /p/bypass 1\n0.3 /p/bypass 0\n0.35 /p/gain_db 3\n", false);
  std::vector<Audio> out;
  for (const std::string type : {"passthrough", "passthrough-swapped"}) {
    write(d + "/" + type + ".toml", patch_with(type), false);
    const Result r = run({bin("rackd"), "render", d + "/" + type + ".toml", "--duration", "0.5", "--events",
                          d + "/events", "--out", d + "/" + type + ".wav"});
    ASSERT_EQ(r.status, 0) << r.err;
    out.push_back(read_audio(d + "/" + type + ".wav"));
  }
  ASSERT_EQ(out[0].ch.size(), 2u);
  EXPECT_TRUE(out[0].ch == out[1].ch);
  // The events did something: -6 dB, then -20 dB, then bypass (0 dB).
  float peak_early = 0, peak_bypass = 0;
  for (std::size_t i = 0; i < 2400; ++i) peak_early = std::max(peak_early, std::abs(out[0].ch[0][i]));
  for (std::size_t i = 11000; i < 13000; ++i) peak_bypass = std::max(peak_bypass, std::abs(out[0].ch[0][i]));
  EXPECT_GT(peak_bypass, peak_early * 1.5f);
}

// A value a module reports (an output parameter: chaos's `blocks`) is read
// with /get, refused as a set and as a patch key, and not written by save.
TEST(Modules, OutputsAreReadNotWritten) {
  const std::string d = temp_dir();
  std::string patch = patch_with("chaos");
  patch.replace(patch.find("gain_db = -6.0"), 14, "mode = 0");
  write(d + "/c.toml", patch, false);
  Live live(d + "/c.toml");
  Process& rackd = live.rackd;
  auto ctl = [&](std::vector<std::string> args) { return live.ctl(std::move(args)); };
  ASSERT_TRUE(live.up()) << rackd.err();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const Result a = ctl({"get", "/p/blocks"});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const Result b = ctl({"get", "/p/blocks"});
  ASSERT_EQ(a.status, 0) << a.err;
  auto number = [](const std::string& s) { return std::strtod(s.substr(s.find_first_of("0123456789")).c_str(), nullptr); };
  EXPECT_GT(number(a.out), 0) << a.out;
  EXPECT_GT(number(b.out), number(a.out)) << a.out << " then " << b.out;
  const Result set = ctl({"set", "/p/blocks", "3"});
  EXPECT_NE(set.status, 0);
  EXPECT_NE(set.err.find("is a value the module reports (read-only)"), std::string::npos) << set.err;
  EXPECT_EQ(ctl({"save", d + "/saved.toml"}).status, 0);
  std::ifstream saved(d + "/saved.toml");
  const std::string text((std::istreambuf_iterator<char>(saved)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find("\nblocks"), std::string::npos) << text;
  rackd.signal(SIGINT);
  EXPECT_EQ(rackd.wait(std::chrono::seconds(20)), 0) << rackd.err();

  write(d + "/bad.toml", patch_with("chaos").replace(patch_with("chaos").find("gain_db = -6.0"), 14, "blocks = 1"),
        false);
  const Result refused = run({bin("rackd"), "check", d + "/bad.toml"});
  EXPECT_EQ(refused.status, 2);
  EXPECT_NE(refused.err.find("bad.toml:10: module \"p\": \"blocks\" is a value the module reports (read-only"),
            std::string::npos)
      << refused.err;
}

}  // namespace
}  // namespace rackd::test
