// Tests for graph/patch.hpp: parsing, validation and graph resolution of patch
// files. Single-threaded; patches are inline strings so line numbers in the
// asserted messages can be read off the source, plus a few real files for
// load_patch.
#include "graph/patch.hpp"

#include <gtest/gtest.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace rackd::graph {
namespace {

// The one input of a module taken as it is; -1 for none (or several).
int input_of(const PatchModule& m) { return m.inputs.size() == 1 ? m.inputs[0].from : -1; }

namespace fs = std::filesystem;

// Raw literals start with a newline after R"( so the text lines up with the
// source; drop it so the first visible line is line 1.
std::string lines(const char* s) { return s[0] == '\n' ? std::string(s + 1) : std::string(s); }

std::string error_of(const std::string& text, const std::string& path = "x.toml") {
  try {
    parse_patch(text, path);
  } catch (const PatchError& e) {
    return e.what();
  }
  return "(no error)";
}

::testing::AssertionResult fails_at(const std::string& text, int line, const std::string& needle) {
  const std::string msg = error_of(text);
  const std::string prefix = "x.toml:" + std::to_string(line) + ": ";
  if (msg.rfind(prefix, 0) != 0) {
    return ::testing::AssertionFailure() << "expected prefix \"" << prefix << "\", got: " << msg;
  }
  if (msg.find(needle) == std::string::npos) {
    return ::testing::AssertionFailure() << "expected \"" << needle << "\" in: " << msg;
  }
  return ::testing::AssertionSuccess();
}

// A one-module patch with `extra` lines appended to the module table, which
// starts on line 1; the first extra line is line 4.
std::string capture_with(const std::string& extra) {
  return "[[module]]\nname = \"src\"\ntype = \"capture\"\n" + extra +
         "\n[output]\nfrom = \"src\"\n";
}

std::string passthrough_with(const std::string& extra) {
  return "[[module]]\nname = \"src\"\ntype = \"capture\"\n\n[[module]]\nname = \"p\"\n"
         "type = \"passthrough\"\ninput = \"src\"\n" +
         extra + "\n[output]\nfrom = \"p\"\n";
}

const char* kChain = R"(
[server]
rate = 44100
block = 100
output_channels = 2

[[module]]
name = "c"
type = "passthrough"
input = "b"
gain_db = -6

[[module]]
name = "src"
type = "capture"
source = "file"
file = "sounds/in.wav"
channels = 4
gain_db = -3.5

[[module]]
name = "a"
type = "passthrough"
input = "src"
bypass = true

[[module]]
name = "b"
type = "passthrough"
input = "a"

[output]
from = "c"
)";

TEST(Patch, ChainWrittenOutOfOrderComesBackInTopologicalOrder) {
  const Patch p = parse_patch(lines(kChain), "/srv/patches/chain.toml");
  EXPECT_EQ(p.path, "/srv/patches/chain.toml");
  EXPECT_EQ(p.rate_hz, 44100u);
  EXPECT_EQ(p.block_frames, 100u);
  EXPECT_EQ(p.output_channels, 2u);
  EXPECT_EQ(p.input_channels, 0u);
  ASSERT_EQ(p.modules.size(), 4u);

  const char* names[] = {"src", "a", "b", "c"};
  const int lines_of[] = {12, 20, 26, 6};
  for (std::size_t i = 0; i < 4; ++i) {
    const PatchModule& m = p.modules[i];
    EXPECT_EQ(m.name, names[i]);
    EXPECT_EQ(m.line, lines_of[i]) << m.name;
    EXPECT_EQ(m.depth, i) << m.name;
    EXPECT_EQ(input_of(m), static_cast<int>(i) - 1) << m.name;
    EXPECT_EQ(m.in_channels, i == 0 ? 0u : 4u) << m.name;
    EXPECT_EQ(m.out_channels, 4u) << m.name;
    ASSERT_NE(m.spec, nullptr);
    EXPECT_EQ(m.spec->type, m.type);
    ASSERT_EQ(m.params.size(), m.spec->params.size());
  }
  EXPECT_EQ(p.modules[0].type, "capture");
  EXPECT_EQ(p.modules[1].type, "passthrough");
  ASSERT_EQ(p.outputs, std::vector<int>{3});

  // capture: gain_db, mute, freq_hz
  EXPECT_EQ(p.modules[0].params, (std::vector<std::vector<double>>{{-3.5}, {0.0}, {440.0}}));
  // passthrough: gain_db, bypass; an integer is accepted for a float parameter.
  EXPECT_EQ(p.modules[1].params, (std::vector<std::vector<double>>{{0.0}, {1.0}}));
  EXPECT_EQ(p.modules[2].params, (std::vector<std::vector<double>>{{0.0}, {0.0}}));
  EXPECT_EQ(p.modules[3].params, (std::vector<std::vector<double>>{{-6.0}, {0.0}}));

  const toml::table config = toml::parse(p.modules[0].config_toml);
  EXPECT_EQ(config["source"].value<std::string>(), "file");
  EXPECT_EQ(config["file"].value<std::string>(), "/srv/patches/sounds/in.wav");
  EXPECT_EQ(config["channels"].value<int64_t>(), 4);
  EXPECT_FALSE(config.contains("gain_db"));
  EXPECT_FALSE(config.contains("name"));
  EXPECT_FALSE(config.contains("type"));
  EXPECT_EQ(config.size(), 3u);

  const toml::table pt = toml::parse(p.modules[3].config_toml);
  EXPECT_TRUE(pt.empty()) << p.modules[3].config_toml;
}

TEST(Patch, IndependentChainsKeepFileOrder) {
  const Patch p = parse_patch(lines(R"(
[[module]]
name = "p2"
type = "passthrough"
input = "s2"
[[module]]
name = "s1"
type = "capture"
[[module]]
name = "p1"
type = "passthrough"
input = "s1"
[[module]]
name = "s2"
type = "capture"
[output]
from = ["p1", "p2"]
)"),
                              "x.toml");
  ASSERT_EQ(p.modules.size(), 4u);
  EXPECT_EQ(p.modules[0].name, "s1");
  EXPECT_EQ(p.modules[1].name, "p1");
  EXPECT_EQ(p.modules[2].name, "s2");
  EXPECT_EQ(p.modules[3].name, "p2");
  EXPECT_EQ(input_of(p.modules[3]), 2);
  EXPECT_EQ(p.outputs, (std::vector<int>{1, 3}));
}

TEST(Patch, FanOutAndArrayOutputInTopologicalIndices) {
  const Patch p = parse_patch(lines(R"(
[[module]]
name = "left"
type = "passthrough"
input = "src"
[[module]]
name = "src"
type = "capture"
channels = 1
[[module]]
name = "right"
type = "passthrough"
input = "src"
[output]
from = ["right", "left", "src"]
)"),
                              "x.toml");
  ASSERT_EQ(p.modules.size(), 3u);
  EXPECT_EQ(p.modules[0].name, "src");
  EXPECT_EQ(p.modules[1].name, "left");
  EXPECT_EQ(p.modules[2].name, "right");
  EXPECT_EQ(p.modules[1].depth, 1u);
  EXPECT_EQ(p.modules[2].depth, 1u);
  EXPECT_EQ(p.modules[2].out_channels, 1u);
  EXPECT_EQ(p.outputs, (std::vector<int>{2, 1, 0}));
}

TEST(Patch, DefaultsWithoutServerTable) {
  const Patch p = parse_patch(capture_with(""), "x.toml");
  EXPECT_EQ(p.rate_hz, 48000u);
  EXPECT_EQ(p.block_frames, 128u);
  EXPECT_EQ(p.output_channels, 2u);
  EXPECT_EQ(p.input_channels, 0u);
  ASSERT_EQ(p.modules.size(), 1u);
  EXPECT_EQ(input_of(p.modules[0]), -1);
  EXPECT_EQ(p.modules[0].out_channels, 2u);
  EXPECT_EQ(p.modules[0].in_channels, 0u);
}

TEST(Patch, OscTableIsAcceptedAndKeptOutOfModules) {
  const Patch p = parse_patch(lines(R"(
[[module]]
name = "src"
type = "capture"
[output]
from = "src"
[osc]
port = 9000
[osc.map]
"/1/fader1" = { to = "/src/gain_db", min = -12.0, max = 12.0 }
)"),
                              "x.toml");
  ASSERT_EQ(p.modules.size(), 1u);
  EXPECT_EQ(p.modules[0].config_toml.find("fader"), std::string::npos);
  EXPECT_EQ(p.modules[0].config_toml.find("9000"), std::string::npos);
}

TEST(Patch, DeviceInputForSourcesAndProcessors) {
  const Patch p = parse_patch(lines(R"(
[[module]]
name = "mic"
type = "capture"
source = "device"
channels = 6
[[module]]
name = "direct"
type = "passthrough"
input = "device"
[output]
from = ["mic", "direct"]
)"),
                              "x.toml");
  ASSERT_EQ(p.modules.size(), 2u);
  EXPECT_EQ(input_of(p.modules[0]), kDeviceInput);
  EXPECT_EQ(p.modules[0].in_channels, 6u);
  EXPECT_EQ(p.modules[0].out_channels, 6u);
  EXPECT_EQ(input_of(p.modules[1]), kDeviceInput);
  EXPECT_EQ(p.modules[1].depth, 0u);
  EXPECT_EQ(p.modules[1].in_channels, 2u);  // no [server] input_channels: 2
  EXPECT_EQ(p.input_channels, 6u);
}

TEST(Patch, ServerInputChannelsFeedsDeviceProcessors) {
  const Patch p = parse_patch(lines(R"(
[server]
input_channels = 8
[[module]]
name = "direct"
type = "passthrough"
input = "device"
[output]
from = "direct"
)"),
                              "x.toml");
  EXPECT_EQ(p.input_channels, 8u);
  EXPECT_EQ(p.modules[0].in_channels, 8u);
  EXPECT_EQ(p.modules[0].out_channels, 8u);
}

TEST(Patch, ServerInputChannelsSmallerThanAModuleReadsIsAnError) {
  EXPECT_TRUE(fails_at(
      lines(R"(
[server]
input_channels = 2

[[module]]
name = "mic"
type = "capture"
source = "device"
channels = 6
[output]
from = "mic"
)"),
      4, "module \"mic\": reads 6 device input channels but [server] input_channels = 2 (line 2)"));
}

TEST(Patch, UnknownModuleKeyListsAcceptedKeys) {
  EXPECT_EQ(error_of(passthrough_with("gian_db = 3")),
            "x.toml:9: module \"p\": unknown key \"gian_db\" (accepted: gain_db, bypass, input)");
  EXPECT_TRUE(
      fails_at(capture_with("source = \"tone\"\nfrequency = 3"), 5,
               "module \"src\": unknown key \"frequency\" (accepted: gain_db, mute, freq_hz, "
               "source, file, loop, channels,"));
}

TEST(Patch, UnknownKeysElsewhere) {
  EXPECT_TRUE(fails_at("[server]\nrate = 48000\nbolck = 64\n" + capture_with(""), 3,
                       "[server]: unknown key \"bolck\""));
  EXPECT_TRUE(fails_at(capture_with("") + "to = \"x\"\n", 7, "[output]: unknown key \"to\""));
  EXPECT_TRUE(
      fails_at(capture_with("") + "\n[mixer]\ngain = 1\n", 8, "unknown top-level key \"mixer\""));
  EXPECT_TRUE(fails_at("title = \"x\"\n" + capture_with(""), 1, "unknown top-level key \"title\""));
}

TEST(Patch, ServerValues) {
  EXPECT_TRUE(fails_at("[server]\nrate = 48000.0\n" + capture_with(""), 2,
                       "[server] rate must be an integer, got floating-point"));
  EXPECT_TRUE(fails_at("[server]\nrate = 4000\n" + capture_with(""), 2,
                       "[server] rate = 4000 is out of range [8000, 384000]"));
  EXPECT_TRUE(fails_at("\n[server]\nblock = 8\n" + capture_with(""), 3, "[16, 4096]"));
  EXPECT_TRUE(fails_at("[server]\nblock = 4097\n" + capture_with(""), 2, "block = 4097"));
  EXPECT_TRUE(fails_at("[server]\noutput_channels = 33\n" + capture_with(""), 2, "[1, 32]"));
  EXPECT_TRUE(fails_at("[server]\noutput_channels = 0\n" + capture_with(""), 2, "[1, 32]"));
  EXPECT_TRUE(fails_at("server = 1\n" + capture_with(""), 1, "must be a table"));
  const Patch p = parse_patch("[server]\nblock = 100\nrate = 8000\n" + capture_with(""), "x.toml");
  EXPECT_EQ(p.block_frames, 100u);  // no power of two required
  EXPECT_EQ(p.rate_hz, 8000u);
}

TEST(Patch, TomlSyntaxErrorReportsItsLine) {
  EXPECT_TRUE(fails_at("[server]\nrate = 48000\nblock = = 3\n", 3, ""));
  EXPECT_TRUE(fails_at(capture_with("gain_db = \"unterminated\n"), 4, ""));
  EXPECT_TRUE(fails_at("[server]\n[server]\n", 2, ""));
}

TEST(Patch, CyclesAreRefusedNamingTheModules) {
  const std::string msg = error_of(lines(R"(
[[module]]
name = "src"
type = "capture"
[[module]]
name = "a"
type = "passthrough"
input = "c"
[[module]]
name = "b"
type = "passthrough"
input = "a"
[[module]]
name = "c"
type = "passthrough"
input = "b"
[[module]]
name = "tail"
type = "passthrough"
input = "c"
[output]
from = "src"
)"));
  EXPECT_EQ(msg.rfind("x.toml:7: module \"a\": inputs form a cycle: a -> b -> c -> a", 0), 0u)
      << msg;
}

TEST(Patch, SelfInputIsACycle) {
  EXPECT_TRUE(fails_at(lines(R"(
[[module]]
name = "loop"
type = "passthrough"
input = "loop"
[output]
from = "loop"
)"),
                       4, "inputs form a cycle: loop -> loop"));
}

TEST(Patch, InputProblems) {
  EXPECT_TRUE(
      fails_at(lines(R"(
[[module]]
name = "p"
type = "passthrough"
input = "nowhere"
[output]
from = "p"
)"),
               4, "module \"p\": input \"nowhere\" is not a module in this patch (modules: p"));
  EXPECT_TRUE(fails_at(lines(R"(
[[module]]
name = "p"
type = "passthrough"
[output]
from = "p"
)"),
                       1, "module \"p\": missing input"));
  EXPECT_TRUE(fails_at(
      passthrough_with("").replace(passthrough_with("").find("input = \"src\""), 13, "input = 3"),
      8, "input must be a module name, \"device\", or a list of them, got integer"));
  EXPECT_TRUE(fails_at(capture_with("input = \"device\""), 4,
                       "module \"src\": type \"capture\" is a source and takes no input"));
  EXPECT_TRUE(fails_at(lines(R"(
[[module]]
name = "p"
type = "passthrough"
input = ""
[output]
from = "p"
)"),
                       4, "input \"\" is not a module"));
}

TEST(Patch, Names) {
  const std::string dup = lines(R"(
[[module]]
name = "src"
type = "capture"

[[module]]
name = "src"
type = "capture"
[output]
from = "src"
)");
  EXPECT_TRUE(fails_at(dup, 6, "module \"src\": name already used by the module on line 1"));

  auto named = [](const std::string& name) {
    return "[[module]]\nname = " + name + "\ntype = \"capture\"\n[output]\nfrom = \"x\"\n";
  };
  EXPECT_TRUE(fails_at(named("\"Src\""), 2, "module #1: invalid name \"Src\""));
  EXPECT_TRUE(fails_at(named("\"a b\""), 2, "invalid name"));
  EXPECT_TRUE(fails_at(named("\"a/b\""), 2, "invalid name"));
  EXPECT_TRUE(fails_at(named("\"\""), 2, "invalid name"));
  EXPECT_TRUE(fails_at(named("\"" + std::string(32, 'a') + "\""), 2, "invalid name"));
  EXPECT_TRUE(fails_at(named("\"device\""), 2, "name \"device\" is reserved"));
  EXPECT_TRUE(fails_at(named("\"rackd\""), 2, "name \"rackd\" is reserved"));
  EXPECT_TRUE(fails_at(named("7"), 2, "name must be a string, got integer"));
  EXPECT_TRUE(fails_at("[[module]]\ntype = \"capture\"\n[output]\nfrom = \"x\"\n", 1,
                       "module #1: missing name"));

  const Patch ok = parse_patch(
      "[[module]]\nname = \"" + std::string(31, 'z') +
          "\"\ntype = \"capture\"\n"
          "[[module]]\nname = \"a_b-9\"\ntype = \"capture\"\n[output]\nfrom = \"a_b-9\"\n",
      "x.toml");
  EXPECT_EQ(ok.modules.size(), 2u);
}

TEST(Patch, Types) {
  EXPECT_TRUE(fails_at("[[module]]\nname = \"q\"\ntype = \"eqq\"\n[output]\nfrom = \"q\"\n", 3,
                       "module \"q\": unknown type \"eqq\" (types: capture, chaos, eq, hrir, lv2, passthrough"));
  EXPECT_TRUE(fails_at("[[module]]\nname = \"q\"\n[output]\nfrom = \"q\"\n", 1,
                       "module \"q\": missing type"));
}

TEST(Patch, ParamRangesAndTypes) {
  EXPECT_TRUE(fails_at(capture_with("gain_db = 30"), 4,
                       "module \"src\": gain_db = 30 is out of range [-96, 24] dB"));
  EXPECT_TRUE(
      fails_at(capture_with("\nfreq_hz = 0.5"), 5, "freq_hz = 0.5 is out of range [1, 20000] Hz"));
  EXPECT_TRUE(fails_at(capture_with("gain_db = nan"), 4, "out of range"));
  EXPECT_TRUE(
      fails_at(capture_with("gain_db = \"loud\""), 4, "gain_db must be a number, got string"));
  EXPECT_TRUE(fails_at(capture_with("mute = 1"), 4, "mute must be true or false, got integer"));
  EXPECT_TRUE(fails_at(capture_with("gain_db = [1.0]"), 4, "got array"));
  const Patch p = parse_patch(capture_with("gain_db = 24\nmute = true\nfreq_hz = 1"), "x.toml");
  EXPECT_EQ(p.modules[0].params, (std::vector<std::vector<double>>{{24.0}, {1.0}, {1.0}}));
}

TEST(Patch, ConfigRangesAndTypes) {
  EXPECT_TRUE(fails_at(capture_with("channels = 0"), 4, "channels = 0 is out of range [1, 32]"));
  EXPECT_TRUE(fails_at(capture_with("channels = 33"), 4, "[1, 32]"));
  EXPECT_TRUE(fails_at(capture_with("channels = 2.5"), 4,
                       "channels must be an integer, got floating-point"));
  EXPECT_TRUE(fails_at(
      capture_with("source = \"mic\""), 4,
      "source = \"mic\" is not one of \"device\", \"file\", \"tone\", \"noise\", \"sweep\""));
  EXPECT_TRUE(fails_at(capture_with("source = 1"), 4, "source must be one of"));
  EXPECT_TRUE(
      fails_at(capture_with("loop = \"yes\""), 4, "loop must be true or false, got string"));
  EXPECT_TRUE(fails_at(capture_with("file = \"\""), 4, "file must not be empty"));
  EXPECT_TRUE(fails_at(capture_with("file = 3"), 4, "file must be a string"));
  EXPECT_TRUE(fails_at(capture_with("sweep_seconds = 0.001"), 4,
                       "sweep_seconds = 0.001 is out of range [0.01, 3600]"));
  EXPECT_TRUE(fails_at(capture_with("sweep_end_hz = inf"), 4, "finite"));
  EXPECT_TRUE(fails_at(capture_with("seed = -1"), 4, "[0, 4294967295]"));
  const Patch p =
      parse_patch(capture_with("sweep_start_hz = 20\nseed = 4294967295\nloop = false"), "x.toml");
  const toml::table config = toml::parse(p.modules[0].config_toml);
  EXPECT_EQ(config["sweep_start_hz"].value<int64_t>(), 20);
  EXPECT_EQ(config["loop"].value<bool>(), false);
}

TEST(Patch, OutputProblems) {
  const std::string no_output = "[[module]]\nname = \"src\"\ntype = \"capture\"\n";
  EXPECT_TRUE(fails_at(no_output, 1, "missing [output] table"));
  EXPECT_TRUE(fails_at(no_output + "[output]\n", 4, "[output]: missing from"));
  EXPECT_TRUE(fails_at(no_output + "[output]\nfrom = \"nope\"\n", 5,
                       "[output] from: \"nope\" is not a module in this patch (modules: src)"));
  EXPECT_TRUE(fails_at(no_output + "[output]\nfrom = [\n  \"src\",\n  \"src\",\n]\n", 7,
                       "[output] from: \"src\" is listed twice"));
  EXPECT_TRUE(fails_at(no_output + "[output]\nfrom = []\n", 5, "at least one module"));
  EXPECT_TRUE(
      fails_at(no_output + "[output]\nfrom = 1\n", 5, "expected a module name, got integer"));
  EXPECT_TRUE(fails_at(no_output + "[output]\nfrom = \"device\"\n", 5, "not a module"));
  EXPECT_TRUE(fails_at("output = 1\n" + no_output, 1, "\"output\" must be a table"));
}

TEST(Patch, ModuleCount) {
  EXPECT_TRUE(fails_at("[server]\nrate = 48000\n[output]\nfrom = \"x\"\n", 1, "no modules"));
  EXPECT_TRUE(fails_at("", 1, "no modules"));
  EXPECT_TRUE(fails_at("module = 1\n", 1, "[[module]]"));
  EXPECT_TRUE(fails_at("\nmodule = []\n", 2, "no modules"));

  std::string many;
  for (uint32_t i = 0; i <= shm::kMaxModules; ++i) {
    many += "[[module]]\nname = \"m" + std::to_string(i) + "\"\ntype = \"capture\"\n";
  }
  many += "[output]\nfrom = \"m0\"\n";
  EXPECT_TRUE(fails_at(many, static_cast<int>(3 * shm::kMaxModules + 1), "too many modules (65)"));
}

TEST(Patch, ConfigTooLargeForTheSlot) {
  EXPECT_TRUE(fails_at(capture_with("file = \"/" + std::string(shm::kConfigBytes, 'f') + "\""), 1,
                       "module \"src\": configuration is"));
}

TEST(Patch, RelativePatchPathResolvesAgainstTheWorkingDirectory) {
  const Patch p = parse_patch(capture_with("file = \"a.wav\""), "patches/x.toml");
  const toml::table config = toml::parse(p.modules[0].config_toml);
  const fs::path expect = fs::current_path() / "patches" / "a.wav";
  EXPECT_EQ(config["file"].value<std::string>(), expect.string());

  const Patch bare = parse_patch(capture_with("file = \"a.wav\""), "x.toml");
  EXPECT_EQ(toml::parse(bare.modules[0].config_toml)["file"].value<std::string>(),
            (fs::current_path() / "a.wav").string());

  const Patch dot = parse_patch(capture_with("file = \"a.wav\""), "./patches/./x.toml");
  EXPECT_EQ(toml::parse(dot.modules[0].config_toml)["file"].value<std::string>(), expect.string());

  const Patch abs = parse_patch(capture_with("file = \"/data/a.wav\""), "patches/x.toml");
  EXPECT_EQ(toml::parse(abs.modules[0].config_toml)["file"].value<std::string>(), "/data/a.wav");
}

class PatchFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("rackd_patch_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(PatchFile, LoadsAndResolvesPathsAgainstItsFolder) {
  const fs::path file = dir_ / "p.toml";
  std::ofstream(file) << capture_with("source = \"file\"\nfile = \"../sounds/x.flac\"");
  const Patch p = load_patch(file.string());
  EXPECT_EQ(p.path, file.string());
  EXPECT_EQ(toml::parse(p.modules[0].config_toml)["file"].value<std::string>(),
            (dir_ / "../sounds/x.flac").string());
}

TEST_F(PatchFile, UnreadableFileNamesTheReason) {
  const std::string missing = (dir_ / "missing.toml").string();
  try {
    load_patch(missing);
    FAIL() << "no error";
  } catch (const PatchError& e) {
    EXPECT_EQ(std::string(e.what()), missing + ": cannot read: No such file or directory");
  }
  try {
    load_patch(dir_.string());
    FAIL() << "no error";
  } catch (const PatchError& e) {
    EXPECT_EQ(std::string(e.what()), dir_.string() + ": cannot read: Is a directory");
  }
}

TEST_F(PatchFile, ErrorsInAFileCarryItsPath) {
  const fs::path file = dir_ / "bad.toml";
  std::ofstream(file) << capture_with("gain_db = 99");
  try {
    load_patch(file.string());
    FAIL() << "no error";
  } catch (const PatchError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(file.string() + ":4: ", 0), 0u) << e.what();
  }
}


// ---- fan-in: `input` as a list, with an optional gain per source ----

const char* kFanIn = R"(
[[module]]
name = "a"
type = "capture"
source = "tone"

[[module]]
name = "sum"
type = "passthrough"
input = ["a", { from = "b", gain_db = -6.0 }, "device"]

[[module]]
name = "b"
type = "capture"
source = "noise"

[output]
from = "sum"
)";

TEST(Patch, InputListIsSummedWithGainsAndOrdersAfterEverySource) {
  const Patch p = parse_patch(lines(kFanIn), "x.toml");
  ASSERT_EQ(p.modules.size(), 3u);
  EXPECT_EQ(p.modules[0].name, "a");
  EXPECT_EQ(p.modules[1].name, "b");
  const PatchModule& sum = p.modules[2];
  ASSERT_EQ(sum.name, "sum");
  ASSERT_EQ(sum.inputs.size(), 3u);
  EXPECT_EQ(sum.inputs[0].from, 0);
  EXPECT_EQ(sum.inputs[0].gain_db, 0.0);
  EXPECT_EQ(sum.inputs[1].from, 1);
  EXPECT_EQ(sum.inputs[1].gain_db, -6.0);
  EXPECT_EQ(sum.inputs[1].line, 9);
  EXPECT_EQ(sum.inputs[2].from, kDeviceInput);
  EXPECT_EQ(sum.in_channels, 2u);
  EXPECT_EQ(sum.depth, 1u);
  EXPECT_EQ(p.input_channels, 2u);
  EXPECT_EQ(sum.single_input(), -1);
}

TEST(Patch, SummedInputsMustAgreeOnChannels) {
  EXPECT_TRUE(fails_at(lines(R"(
[[module]]
name = "a"
type = "capture"
source = "tone"
channels = 1

[[module]]
name = "b"
type = "capture"
source = "tone"

[[module]]
name = "sum"
type = "passthrough"
input = ["a", "b"]

[output]
from = "sum"
)"),
                       15, "module \"sum\": input \"b\" has 2 channels but input \"a\" has 1; summed inputs must agree"));
}

TEST(Patch, InputListProblemsPointAtTheEntry) {
  EXPECT_TRUE(fails_at(passthrough_with("").replace(passthrough_with("").find("input = \"src\""), 13, "input = []"),
                       8, "input = []: name at least one module"));
  EXPECT_TRUE(fails_at(passthrough_with("").replace(passthrough_with("").find("input = \"src\""), 13,
                                                    "input = [\"src\", \"src\"]"),
                       8, "input \"src\" is listed twice"));
  EXPECT_TRUE(fails_at(passthrough_with("").replace(passthrough_with("").find("input = \"src\""), 13,
                                                    "input = [{ from = \"src\", gain = 1 }]"),
                       8, "unknown key \"gain\""));
  EXPECT_TRUE(fails_at(passthrough_with("").replace(passthrough_with("").find("input = \"src\""), 13,
                                                    "input = [{ gain_db = 1 }]"),
                       8, "input entry without from"));
  EXPECT_TRUE(fails_at(lines(R"(
[[module]]
name = "a"
type = "passthrough"
input = ["device", "b"]

[[module]]
name = "b"
type = "passthrough"
input = "a"

[output]
from = "b"
)"),
                       4, "inputs form a cycle: a -> b -> a"));
}

}  // namespace
}  // namespace rackd::graph
