// Tests for the [desktop] table of a patch (graph/patch_desktop.cpp) and for
// the per-output presets it leads to (server/desktop.hpp): which entry a
// device matches, and which parameter values a switch writes. The live half
// (a PipeWire sink, outputs switched by the session manager) is in
// tests/integration/desktop_test.cpp. Single-threaded.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "graph/edit.hpp"
#include "graph/patch.hpp"
#include "server/desktop.hpp"

namespace rackd::server {
namespace {

namespace fs = std::filesystem;

struct Files {
  fs::path dir;
  Files() {
    dir = fs::temp_directory_path() / ("rackd-desktop-test-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "strong.txt") << "Preamp: -12 dB\nFilter 1: ON PK Fc 1000 Hz Gain 12 dB Q 1.0\n";
    std::ofstream(dir / "broken.txt") << "Filter 1: ON PK Fc banana Hz\n";
  }
  ~Files() { fs::remove_all(dir); }
  std::string patch(const std::string& desktop) const {
    return "[server]\nblock = 128\n"
           "[[module]]\nname = \"src\"\ntype = \"capture\"\nsource = \"device\"\nchannels = 8\n"
           "[[module]]\nname = \"binaural\"\ntype = \"hrir\"\ninput = \"src\"\nlayout = \"7.1\"\n"
           "[[module]]\nname = \"eq\"\ntype = \"eq\"\ninput = \"binaural\"\n"
           "[output]\nfrom = \"eq\"\n" +  // lines 1-18; [desktop] starts at 19
           desktop;
  }
  graph::Patch parse(const std::string& desktop) const {
    return graph::parse_patch(patch(desktop), (dir / "p.toml").string());
  }
  std::string error(const std::string& desktop) const {
    try {
      parse(desktop);
    } catch (const graph::PatchError& e) {
      return e.what();
    }
    return "(no error)";
  }
};

const char* kTwoOutputs = R"(
[desktop]
name = "rackd: 7.1 test"
[[desktop.output]]
match = "HD650"
preset = "strong.txt"
[[desktop.output]]
match = "speakers"
bypass = ["binaural", "eq"]
)";

TEST(DesktopPatch, ReadsTheTableWithPresetsResolvedNextToThePatch) {
  Files f;
  const graph::Patch p = f.parse(kTwoOutputs);
  EXPECT_FALSE(p.desktop.sink);
  EXPECT_EQ(p.desktop.name, "rackd: 7.1 test");
  EXPECT_EQ(p.desktop.eq, "eq");  // the patch's only eq, found by itself
  ASSERT_EQ(p.desktop.outputs.size(), 2u);
  EXPECT_EQ(p.desktop.outputs[0].preset, (f.dir / "strong.txt").string());
  EXPECT_FALSE(p.desktop.outputs[0].eq_params.empty());
  EXPECT_EQ(p.desktop.outputs[1].bypass, (std::vector<std::string>{"binaural", "eq"}));
  EXPECT_TRUE(p.desktop.outputs[1].eq_params.empty());
  EXPECT_TRUE(f.parse("[desktop]\nsink = true\n").desktop.sink);
  EXPECT_EQ(f.parse("").desktop.line, 0u);
}

TEST(DesktopPatch, RefusesWhatCannotWorkWithFileAndLine) {
  Files f;
  const std::string p = (f.dir / "p.toml").string();
  EXPECT_EQ(f.error("[desktop]\nsinks = true\n"),
            p + ":20: [desktop]: unknown key \"sinks\" (accepted: sink, name, eq, [[desktop.output]])");
  EXPECT_EQ(f.error("[desktop]\nsink = 1\n"), p + ":20: [desktop] sink must be true or false");
  EXPECT_EQ(f.error("[[desktop.output]]\npreset = \"strong.txt\"\n"),
            p + ":19: [[desktop.output]]: missing match = \"<part of the device's name>\"");
  EXPECT_EQ(f.error("[[desktop.output]]\nmatch = \"x\"\nbypass = [\"src\"]\n"),
            p + ":21: [[desktop.output]] bypass: \"src\" (type \"capture\") has no bypass parameter and is not an "
                "eq; only those switch without a click");
  EXPECT_EQ(f.error("[[desktop.output]]\nmatch = \"x\"\nbypass = [\"nope\"]\n"),
            p + ":21: [[desktop.output]] bypass: \"nope\" is not a module in this patch");
  EXPECT_EQ(f.error("[[desktop.output]]\nmatch = \"x\"\npreset = \"missing.txt\"\n"),
            p + ":19: [[desktop.output]] preset: cannot read \"" + (f.dir / "missing.txt").string() + "\"");
  EXPECT_NE(f.error("[[desktop.output]]\nmatch = \"x\"\npreset = \"broken.txt\"\n").find(":19: [[desktop.output]] preset: "),
            std::string::npos);
  EXPECT_EQ(f.error("[desktop]\neq = \"binaural\"\n"),
            p + ":20: [desktop] eq: \"binaural\" is not an eq module in this patch");
}

TEST(DesktopPresets, EachOutputGetsItsEntryAndAnyOtherThePatchAsWritten) {
  Files f;
  const graph::Patch p = f.parse(kTwoOutputs);
  const DesktopPresets d(p);
  EXPECT_EQ(d.entry_for("alsa_output.usb-Sennheiser", "HD650 headphones"), 0);
  EXPECT_EQ(d.entry_for("spk", "Built-in Speakers"), 1);  // any case
  EXPECT_EQ(d.entry_for("hdmi", "TV"), -1);

  auto value = [](const std::vector<DesktopPresets::Write>& w, const std::string& m, const std::string& param) {
    for (const auto& x : w)
      if (x.module == m && x.param == param) return x.values.at(0);
    ADD_FAILURE() << m << "/" << param << " not written";
    return -1.0;
  };
  const auto hp = d.writes_for("hp", "HD650-Headphones");
  EXPECT_EQ(value(hp, "eq", "preamp"), -12.0);
  EXPECT_EQ(value(hp, "eq", "band/1/on"), 1.0);
  EXPECT_EQ(value(hp, "eq", "band/1/gain"), 12.0);
  EXPECT_EQ(value(hp, "binaural", "bypass"), 0.0);

  const auto spk = d.writes_for("spk", "Speakers");
  EXPECT_EQ(value(spk, "eq", "preamp"), 0.0);
  EXPECT_EQ(value(spk, "eq", "band/1/on"), 0.0);
  EXPECT_EQ(value(spk, "binaural", "bypass"), 1.0);

  // No entry: the patch's own values (no preset in this patch: a flat eq).
  const auto tv = d.writes_for("hdmi", "TV");
  EXPECT_EQ(value(tv, "eq", "preamp"), 0.0);
  EXPECT_EQ(value(tv, "eq", "band/1/on"), 0.0);
  EXPECT_EQ(value(tv, "binaural", "bypass"), 0.0);
  // Only the modules the [desktop] table names are written.
  for (const auto& w : tv) EXPECT_NE(w.module, "src");
}

TEST(DesktopPatch, SaveWritesItBackAndALiveEditKeepsWhatStillExists) {
  Files f;
  const graph::Patch p = f.parse(kTwoOutputs);
  const graph::Patch again = graph::parse_patch(graph::to_toml(p), (f.dir / "saved.toml").string());
  EXPECT_EQ(again.desktop.name, p.desktop.name);
  ASSERT_EQ(again.desktop.outputs.size(), 2u);
  EXPECT_EQ(again.desktop.outputs[0].preset, p.desktop.outputs[0].preset);
  EXPECT_EQ(again.desktop.outputs[0].eq_params, p.desktop.outputs[0].eq_params);
  EXPECT_EQ(again.desktop.outputs[1].bypass, p.desktop.outputs[1].bypass);

  // Removing the eq live is not refused for the [desktop] table's sake: the
  // entries drop what left.
  graph::Edit e;
  e.kind = graph::EditKind::kRemove;
  e.name = "eq";
  e.rewire = true;
  const graph::Patch next = graph::apply_edit(p, e);
  EXPECT_TRUE(next.desktop.eq.empty());
  EXPECT_TRUE(next.desktop.outputs[0].preset.empty());
  EXPECT_EQ(next.desktop.outputs[1].bypass, std::vector<std::string>{"binaural"});
  EXPECT_NO_THROW(graph::parse_patch(graph::to_toml(next), (f.dir / "saved2.toml").string()));
}

}  // namespace
}  // namespace rackd::server
