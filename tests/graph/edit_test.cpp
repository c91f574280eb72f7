// Tests for graph/edit.hpp: patches written back as TOML (to_toml), edits
// applied to a patch (apply_edit) with their refusals, and the difference
// between two patches (diff). Single-threaded; patches are inline strings,
// plus every shipped patch in patches/ and a broken file written to a temp
// folder for `load`.
#include "graph/edit.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

namespace rackd::graph {
namespace {

namespace fs = std::filesystem;

Patch parse(const std::string& text) { return parse_patch(text, "t.toml"); }

const PatchModule& module(const Patch& p, const std::string& name) {
  const int i = find_module(p, name);
  EXPECT_GE(i, 0) << "no module " << name;
  return p.modules.at(static_cast<std::size_t>(std::max(i, 0)));
}

// Names of a module's sources with their gains, for comparisons.
std::vector<std::pair<std::string, double>> inputs_of(const Patch& p, const std::string& name) {
  std::vector<std::pair<std::string, double>> v;
  for (const PatchInput& in : module(p, name).inputs)
    v.emplace_back(in.from == kDeviceInput ? "device" : p.modules[static_cast<std::size_t>(in.from)].name, in.gain_db);
  return v;
}

std::vector<std::string> outputs_of(const Patch& p) {
  std::vector<std::string> v;
  for (int o : p.outputs) v.push_back(p.modules[static_cast<std::size_t>(o)].name);
  return v;
}

// Everything the server reads from a patch, field by field.
::testing::AssertionResult same_graph(const Patch& a, const Patch& b) {
  auto fail = [] { return ::testing::AssertionFailure(); };
  if (a.rate_hz != b.rate_hz || a.block_frames != b.block_frames || a.output_channels != b.output_channels ||
      a.input_channels != b.input_channels || a.fade_ms != b.fade_ms)
    return fail() << "[server] differs: input_channels " << a.input_channels << " vs " << b.input_channels;
  if (a.modules.size() != b.modules.size()) return fail() << "module count differs";
  for (std::size_t i = 0; i < a.modules.size(); ++i) {
    const PatchModule& x = a.modules[i];
    const PatchModule& y = b.modules[i];
    if (x.name != y.name || x.type != y.type || x.spec != y.spec) return fail() << "module " << i << " differs";
    if (x.inputs != y.inputs) return fail() << x.name << ": inputs differ";
    if (x.in_channels != y.in_channels || x.out_channels != y.out_channels)
      return fail() << x.name << ": channels " << x.in_channels << "/" << x.out_channels << " vs " << y.in_channels
                    << "/" << y.out_channels;
    if (x.depth != y.depth) return fail() << x.name << ": depth differs";
    if (x.params != y.params) return fail() << x.name << ": params differ";
    if (x.config_toml != y.config_toml) return fail() << x.name << ": config differs";
  }
  if (a.outputs != b.outputs) return fail() << "outputs differ";
  return ::testing::AssertionSuccess();
}

// to_toml -> parse_patch gives the same graph, and writing it again the same text.
void expect_round_trip(const Patch& p, const std::string& what) {
  SCOPED_TRACE(what);
  const std::string text = to_toml(p);
  Patch p2;
  try {
    p2 = parse_patch(text, "saved.toml");
  } catch (const PatchError& e) {
    ADD_FAILURE() << "written patch does not parse: " << e.what() << "\n" << text;
    return;
  }
  const Diff d = diff(p, p2);
  EXPECT_TRUE(d.empty()) << text;
  EXPECT_TRUE(d.refused.empty()) << d.refused;
  EXPECT_TRUE(same_graph(p, p2)) << text;
  EXPECT_EQ(to_toml(p2), text);
}

// A fan-in graph for edits: three sources (one mono), two processors.
const char* kBase = R"(
[[module]]
name = "tone"
type = "capture"
source = "tone"
channels = 2

[[module]]
name = "noise"
type = "capture"
source = "noise"
channels = 2

[[module]]
name = "mono"
type = "capture"
source = "tone"
channels = 1

[[module]]
name = "a"
type = "passthrough"
input = "tone"

[[module]]
name = "b"
type = "passthrough"
input = ["a", { from = "noise", gain_db = -6.0 }]
gain_db = -3.0

[output]
from = "b"
)";

Edit add(const std::string& name, const std::string& type, const std::string& toml) {
  Edit e;
  e.kind = EditKind::kAdd;
  e.name = name;
  e.type = type;
  e.toml = toml;
  return e;
}

Edit remove(const std::string& name, bool rewire = false) {
  Edit e;
  e.kind = EditKind::kRemove;
  e.name = name;
  e.rewire = rewire;
  return e;
}

Edit link(EditKind kind, const std::string& from, const std::string& to) {
  Edit e;
  e.kind = kind;
  e.from = from;
  e.to = to;
  return e;
}
Edit connect(const std::string& from, const std::string& to) { return link(EditKind::kConnect, from, to); }
Edit disconnect(const std::string& from, const std::string& to) { return link(EditKind::kDisconnect, from, to); }

// The edit is refused with `needle` in its message, the message carries no
// "label:line: " of the generated text, and `current` is untouched.
::testing::AssertionResult refused(const Patch& current, const Edit& e, const std::string& needle) {
  const std::string before = to_toml(current);
  const Patch copy = current;
  std::string msg;
  try {
    apply_edit(current, e);
    return ::testing::AssertionFailure() << "accepted, expected \"" << needle << "\"";
  } catch (const PatchError& err) {
    msg = err.what();
  }
  if (msg.find(needle) == std::string::npos)
    return ::testing::AssertionFailure() << "expected \"" << needle << "\" in: " << msg;
  if (std::regex_search(msg, std::regex(":[0-9]+: ")))
    return ::testing::AssertionFailure() << "message carries a location: " << msg;
  if (to_toml(current) != before || !same_graph(current, copy))
    return ::testing::AssertionFailure() << "the current patch changed";
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------- to_toml

TEST(GraphToToml, ShippedPatchesRoundTrip) {
  const fs::path dir = fs::path(RACKD_SOURCE_DIR) / "patches";
  int count = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".toml") continue;
    ++count;
    Patch p;
    try {
      p = load_patch(entry.path().string());
    } catch (const PatchError& e) {
      ADD_FAILURE() << e.what();
      continue;
    }
    expect_round_trip(p, entry.path().filename().string());
  }
  EXPECT_GE(count, 5);
}

TEST(GraphToToml, FanInAndGainsRoundTrip) {
  expect_round_trip(parse(kBase), "base");
  // Device in a fan-in list, a processor first in the file reading a later
  // module, an eq with inline bands, chaos, several outputs, [server] keys.
  expect_round_trip(parse(R"(
[server]
rate = 44100
block = 64
output_channels = 2
fade_ms = 12.5

[[module]]
name = "mix"
type = "passthrough"
input = [{ from = "device", gain_db = -1.5 }, "gen", { from = "eq", gain_db = 2.25 }]

[[module]]
name = "gen"
type = "capture"
source = "sweep"
channels = 2
sweep_seconds = 3.0

[[module]]
name = "eq"
type = "eq"
input = "gen"
bands = [{ type = "peak", freq = 1000.0, gain = -3.0, q = 1.0 }, { type = "low_shelf", freq = 80.0, gain = 4.0 }]

[[module]]
name = "c"
type = "chaos"
input = "mix"
mode = 0
after_blocks = 12

[output]
from = ["c", "eq"]
)"),
                    "fan-in");
  // A source reading the device with [server] input_channels.
  expect_round_trip(parse(R"(
[server]
input_channels = 6

[[module]]
name = "src"
type = "capture"
source = "device"
channels = 6

[[module]]
name = "h"
type = "hrir"
input = "src"
layout = "5.1"
speakers = [{ name = "SL", azimuth = 100.0 }]
yaw = 12.5
ypr = [1.0, 2.0, 3.0]

[output]
from = "h"
)"),
                    "hrir");
}

// A device reader whose channel count the patch does not state: to_toml
// writes the derived [server] input_channels, which then decides the
// channels of a processor reading "device".
TEST(GraphToToml, DerivedInputChannelsRoundTrip) {
  const Patch p = parse(R"(
[[module]]
name = "src"
type = "capture"
source = "device"
channels = 4

[[module]]
name = "p"
type = "passthrough"
input = "device"

[output]
from = ["src", "p"]
)");
  ASSERT_EQ(p.input_channels, 4u);
  ASSERT_EQ(module(p, "p").out_channels, 2u);
  const Patch p2 = parse_patch(to_toml(p), "saved.toml");
  // apply_edit goes through the same text: an unrelated add replaces "p".
  const Diff d = diff(p, apply_edit(p, add("gen", "capture", "source = \"tone\"")));
  EXPECT_EQ(module(p2, "p").out_channels, 2u);
  EXPECT_TRUE(d.replace.empty());
  expect_round_trip(p, "derived input_channels");
  EXPECT_EQ(d.add, std::vector<std::string>{"gen"});
}

TEST(GraphToToml, WritesParametersChangedInMemory) {
  Patch p = parse(kBase);
  const int tone = find_module(p, "tone");
  const int b = find_module(p, "b");
  ASSERT_GE(tone, 0);
  ASSERT_GE(b, 0);
  PatchModule& t = p.modules[static_cast<std::size_t>(tone)];
  t.params[static_cast<std::size_t>(registry::find_param(*t.spec, "gain_db"))] = {-20.5};
  t.params[static_cast<std::size_t>(registry::find_param(*t.spec, "mute"))] = {1.0};
  t.params[static_cast<std::size_t>(registry::find_param(*t.spec, "freq_hz"))] = {1000.0 / 3.0};
  PatchModule& pb = p.modules[static_cast<std::size_t>(b)];
  pb.params[static_cast<std::size_t>(registry::find_param(*pb.spec, "gain_db"))] = {0.1};

  const std::string text = to_toml(p);
  EXPECT_NE(text.find("gain_db = -20.5"), std::string::npos) << text;
  EXPECT_NE(text.find("mute = true"), std::string::npos) << text;
  const Patch p2 = parse_patch(text, "saved.toml");
  EXPECT_EQ(module(p2, "tone").params, t.params);
  EXPECT_EQ(module(p2, "b").params, pb.params);
  expect_round_trip(p, "changed parameters");
  // Against the file as parsed, only parameter values changed.
  const Diff d = diff(parse(kBase), p2);
  EXPECT_TRUE(d.params_changed);
  EXPECT_FALSE(d.inputs_changed);
  EXPECT_TRUE(d.replace.empty());
}

// ---------------------------------------------------------------- apply_edit: add

TEST(GraphEditAdd, AddsModules) {
  const Patch p = parse(kBase);
  Patch q = apply_edit(p, add("c", "passthrough", "input = \"b\"\ngain_db = -2.0"));
  ASSERT_GE(find_module(q, "c"), 0);
  EXPECT_EQ(inputs_of(q, "c"), (std::vector<std::pair<std::string, double>>{{"b", 0.0}}));
  EXPECT_EQ(module(q, "c").params[0], std::vector<double>{-2.0});
  EXPECT_EQ(q.path, p.path);
  EXPECT_EQ(p.modules.size(), 5u);  // the current patch is a value

  q = apply_edit(p, add("sum", "passthrough", "input = [\"a\", { from = \"tone\", gain_db = -12.0 }, \"noise\"]"));
  EXPECT_EQ(inputs_of(q, "sum"),
            (std::vector<std::pair<std::string, double>>{{"a", 0.0}, {"tone", -12.0}, {"noise", 0.0}}));
  EXPECT_EQ(module(q, "sum").out_channels, 2u);

  q = apply_edit(p, add("gen", "capture", "source = \"noise\"\nchannels = 1"));
  EXPECT_EQ(module(q, "gen").out_channels, 1u);
  EXPECT_TRUE(module(q, "gen").inputs.empty());
  EXPECT_EQ(outputs_of(q), std::vector<std::string>{"b"});  // added, not mixed to the output
  expect_round_trip(q, "after add");
}

TEST(GraphEditAdd, Refusals) {
  const Patch p = parse(kBase);
  EXPECT_TRUE(refused(p, add("x", "reverb", "input = \"a\""), "unknown type \"reverb\""));
  EXPECT_TRUE(refused(p, add("a", "passthrough", "input = \"tone\""), "module \"a\" exists already"));
  EXPECT_TRUE(refused(p, add("x", "passthrough", "input = \"tone"), "malformed TOML"));
  EXPECT_TRUE(refused(p, add("x", "passthrough", "name = \"y\"\ninput = \"a\""), "give name and type as arguments"));
  EXPECT_TRUE(refused(p, add("x", "passthrough", "type = \"eq\"\ninput = \"a\""), "give name and type as arguments"));
  EXPECT_TRUE(refused(p, add("x", "passthrough", "input = \"ghost\""), "input \"ghost\" is not a module"));
  EXPECT_TRUE(refused(p, add("x", "passthrough", ""), "missing input"));
  EXPECT_TRUE(refused(p, add("x", "passthrough", "input = [\"a\", \"mono\"]"), "summed inputs must agree"));
  EXPECT_TRUE(refused(p, add("x", "capture", "input = \"a\""), "is a source and takes no input"));
  EXPECT_TRUE(refused(p, add("x", "passthrough", "input = \"a\"\nbogus = 1"), "unknown key \"bogus\""));
  EXPECT_TRUE(refused(p, add("Bad Name", "passthrough", "input = \"a\""), "invalid name"));
}

// A relative file in an added module, like one in the patch file, is taken
// relative to the patch's folder, not the server's working directory.
TEST(GraphEditAdd, RelativePathFollowsThePatch) {
  const Patch p = parse_patch(kBase, "/srv/patches/live.toml");
  const Patch q = apply_edit(p, add("f", "capture", "source = \"file\"\nfile = \"loop.wav\""));
  const std::string& config = module(q, "f").config_toml;
  EXPECT_NE(config.find("/srv/patches/loop.wav"), std::string::npos) << config;
  EXPECT_EQ(q.path, "/srv/patches/live.toml");
}

// ---------------------------------------------------------------- connect / disconnect

TEST(GraphEditConnect, ConnectsAndDisconnects) {
  const Patch p = parse(kBase);
  Edit e = connect("mono", "b");
  EXPECT_TRUE(refused(p, e, "summed inputs must agree"));

  e = connect("tone", "b");
  e.gain_db = -4.5;
  Patch q = apply_edit(p, e);
  EXPECT_EQ(inputs_of(q, "b"),
            (std::vector<std::pair<std::string, double>>{{"a", 0.0}, {"noise", -6.0}, {"tone", -4.5}}));
  EXPECT_EQ(diff(p, q).keep.size(), 5u);
  EXPECT_TRUE(diff(p, q).inputs_changed);

  q = apply_edit(p, disconnect("noise", "b"));
  EXPECT_EQ(inputs_of(q, "b"), (std::vector<std::pair<std::string, double>>{{"a", 0.0}}));
  q = apply_edit(p, disconnect("a", "b"));
  EXPECT_EQ(inputs_of(q, "b"), (std::vector<std::pair<std::string, double>>{{"noise", -6.0}}));

  q = apply_edit(p, connect("device", "a"));
  EXPECT_EQ(inputs_of(q, "a"), (std::vector<std::pair<std::string, double>>{{"tone", 0.0}, {"device", 0.0}}));
  EXPECT_EQ(q.input_channels, 2u);
  expect_round_trip(q, "after connect device");
}

TEST(GraphEditConnect, Refusals) {
  const Patch p = parse(kBase);
  EXPECT_TRUE(refused(p, connect("b", "a"), "inputs form a cycle"));
  EXPECT_TRUE(refused(p, connect("a", "a"), "inputs form a cycle"));
  EXPECT_TRUE(refused(p, connect("ghost", "a"), "no module \"ghost\""));
  EXPECT_TRUE(refused(p, connect("a", "ghost"), "no module \"ghost\""));
  EXPECT_TRUE(refused(p, connect("a", "noise"), "module \"noise\" is a source and takes no input"));
  EXPECT_TRUE(refused(p, connect("tone", "a"), "\"tone\" is already an input of \"a\""));
  EXPECT_TRUE(refused(p, disconnect("noise", "a"), "\"noise\" is not an input of \"a\""));
  EXPECT_TRUE(refused(p, disconnect("tone", "a"), "\"tone\" is the only input of \"a\""));
  EXPECT_TRUE(refused(p, disconnect("ghost", "a"), "no module \"ghost\""));
}

TEST(GraphEditConnect, Output) {
  const Patch p = parse(kBase);
  Patch q = apply_edit(p, connect("a", kOutputName));
  EXPECT_EQ(outputs_of(q), (std::vector<std::string>{"b", "a"}));
  EXPECT_TRUE(diff(p, q).inputs_changed);
  EXPECT_TRUE(diff(p, q).replace.empty());
  EXPECT_TRUE(refused(q, connect("a", kOutputName), "\"a\" is already mixed to the output"));
  q = apply_edit(q, disconnect("b", kOutputName));
  EXPECT_EQ(outputs_of(q), std::vector<std::string>{"a"});

  Edit gain = connect("tone", kOutputName);
  gain.gain_db = -6.0;
  EXPECT_TRUE(refused(p, gain, "the output mixer takes its sources at 0 dB"));
  EXPECT_TRUE(refused(p, connect("device", kOutputName), "the device input cannot be mixed to the output"));
  EXPECT_TRUE(refused(p, connect("ghost", kOutputName), "no module \"ghost\""));
  EXPECT_TRUE(refused(p, disconnect("a", kOutputName), "\"a\" is not mixed to the output"));
  EXPECT_TRUE(refused(p, disconnect("b", kOutputName), "\"b\" is the only module mixed to the output"));
}

// ---------------------------------------------------------------- remove

TEST(GraphEditRemove, RemovesAndRewires) {
  const Patch p = parse(kBase);
  EXPECT_TRUE(refused(p, remove("ghost"), "no module \"ghost\""));
  EXPECT_TRUE(refused(p, remove("a"), "module \"a\" is the input of \"b\""));
  EXPECT_TRUE(refused(p, remove("b"), "\"b\" is the only module mixed to the output"));

  Patch q = apply_edit(p, remove("mono"));  // nobody reads it
  EXPECT_LT(find_module(q, "mono"), 0);
  EXPECT_EQ(q.modules.size(), 4u);
  const Diff d = diff(p, q);
  EXPECT_EQ(d.remove, std::vector<std::string>{"mono"});
  EXPECT_FALSE(d.inputs_changed);  // module indices moved, names did not

  // A source's consumer would be left without input.
  const Patch withc = apply_edit(p, add("c", "passthrough", "input = \"mono\""));
  EXPECT_TRUE(refused(withc, remove("mono", true), "module \"c\": missing input"));

  // a's input takes its place in b, after b's others.
  q = apply_edit(p, remove("a", true));
  EXPECT_EQ(inputs_of(q, "b"), (std::vector<std::pair<std::string, double>>{{"noise", -6.0}, {"tone", 0.0}}));
  expect_round_trip(q, "after rewire");
}

TEST(GraphEditRemove, RewireAddsNoDuplicatesAndRewiresTheOutput) {
  const Patch p = parse(R"(
[[module]]
name = "tone"
type = "capture"
source = "tone"

[[module]]
name = "noise"
type = "capture"
source = "noise"

[[module]]
name = "a"
type = "passthrough"
input = ["tone", { from = "noise", gain_db = -3.0 }]

[[module]]
name = "b"
type = "passthrough"
input = ["a", "noise"]

[[module]]
name = "c"
type = "passthrough"
input = "a"

[output]
from = ["a", "b", "noise"]
)");
  const Patch q = apply_edit(p, remove("a", true));
  EXPECT_LT(find_module(q, "a"), 0);
  EXPECT_EQ(inputs_of(q, "b"), (std::vector<std::pair<std::string, double>>{{"noise", 0.0}, {"tone", 0.0}}));
  EXPECT_EQ(inputs_of(q, "c"), (std::vector<std::pair<std::string, double>>{{"tone", 0.0}, {"noise", -3.0}}));
  EXPECT_EQ(outputs_of(q), (std::vector<std::string>{"b", "noise", "tone"}));
  const Diff d = diff(p, q);
  EXPECT_EQ(d.remove, std::vector<std::string>{"a"});
  EXPECT_TRUE(d.inputs_changed);
  EXPECT_TRUE(d.replace.empty());

  // Without rewire a module mixed to the output with others goes away alone.
  const Patch r = apply_edit(apply_edit(apply_edit(p, disconnect("a", "b")), remove("c")), remove("a"));
  EXPECT_EQ(outputs_of(r), (std::vector<std::string>{"b", "noise"}));
}

// "output" names the output mixer in connect/disconnect, so a module called
// that could never be connected to.
TEST(GraphEditAdd, OutputIsNotAModuleName) {
  const Patch p = parse(kBase);
  std::string msg = "(accepted)";
  try {
    apply_edit(p, add(kOutputName, "passthrough", "input = \"a\""));
  } catch (const PatchError& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("reserved"), std::string::npos) << msg;
}

// ---------------------------------------------------------------- load / save

TEST(GraphEditLoad, LoadKeepsFileAndLine) {
  const fs::path dir = fs::temp_directory_path() / ("rackd_edit_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "broken.toml").string();
  {
    std::ofstream f(path);
    f << "[[module]]\nname = \"src\"\ntype = \"nope\"\n\n[output]\nfrom = \"src\"\n";
  }
  Edit e;
  e.kind = EditKind::kLoad;
  e.path = path;
  const Patch p = parse(kBase);
  std::string msg;
  try {
    apply_edit(p, e);
  } catch (const PatchError& err) {
    msg = err.what();
  }
  EXPECT_EQ(msg.rfind(path + ":3: ", 0), 0u) << msg;
  EXPECT_NE(msg.find("unknown type \"nope\""), std::string::npos) << msg;

  {
    std::ofstream f(path);
    f << to_toml(p);
  }
  const Patch loaded = apply_edit(p, e);
  EXPECT_EQ(loaded.path, path);
  EXPECT_TRUE(diff(p, loaded).empty());

  e.path = (dir / "missing.toml").string();
  EXPECT_THROW(apply_edit(p, e), PatchError);
  fs::remove_all(dir);

  Edit save;
  save.kind = EditKind::kSave;
  save.path = "/nonexistent/x.toml";
  EXPECT_TRUE(same_graph(apply_edit(p, save), p));
}

// ---------------------------------------------------------------- diff

TEST(GraphDiff, SamePatchIsEmpty) {
  const Patch p = parse(kBase);
  const Diff d = diff(p, p);
  EXPECT_TRUE(d.empty());
  EXPECT_TRUE(d.refused.empty());
  EXPECT_EQ(d.keep.size(), 5u);
}

TEST(GraphDiff, ParameterChangeKeeps) {
  const Patch p = parse(kBase);
  std::string text = kBase;
  text.replace(text.find("gain_db = -3.0"), 14, "gain_db = -9.0");
  const Diff d = diff(p, parse(text));
  EXPECT_FALSE(d.empty());
  EXPECT_TRUE(d.params_changed);
  EXPECT_FALSE(d.inputs_changed);
  EXPECT_EQ(d.keep.size(), 5u);
  EXPECT_TRUE(d.replace.empty());
}

TEST(GraphDiff, SetupKeyChangeReplaces) {
  const Patch p = parse(kBase);
  std::string text = kBase;
  text.replace(text.find("source = \"tone\""), 15, "source = \"sweep\"");
  Diff d = diff(p, parse(text));
  EXPECT_EQ(d.replace, std::vector<std::string>{"tone"});
  EXPECT_EQ(d.keep.size(), 4u);

  // Channel count of a source: it and the processors it feeds are replaced.
  text = kBase;
  text.replace(text.find("channels = 2"), 12, "channels = 1");  // tone
  text.replace(text.find("channels = 2"), 12, "channels = 1");  // noise
  d = diff(p, parse(text));
  std::sort(d.replace.begin(), d.replace.end());
  EXPECT_EQ(d.replace, (std::vector<std::string>{"a", "b", "noise", "tone"}));

  const std::string preset = std::string(RACKD_SOURCE_DIR) + "/patches/example-ParametricEQ.txt";
  const std::string eq = "[[module]]\nname = \"src\"\ntype = \"capture\"\nsource = \"tone\"\n\n"
                         "[[module]]\nname = \"eq\"\ntype = \"eq\"\ninput = \"src\"\n";
  const std::string out = "\n[output]\nfrom = \"eq\"\n";
  d = diff(parse(eq + out), parse(eq + "preset = \"" + preset + "\"\n" + out));
  EXPECT_EQ(d.replace, std::vector<std::string>{"eq"});
  EXPECT_EQ(d.keep, std::vector<std::string>{"src"});
}

TEST(GraphDiff, AddRemoveAndInputs) {
  const Patch p = parse(kBase);
  const Patch q = apply_edit(apply_edit(p, add("c", "passthrough", "input = \"a\"")), remove("mono"));
  const Diff d = diff(p, q);
  EXPECT_EQ(d.add, std::vector<std::string>{"c"});
  EXPECT_EQ(d.remove, std::vector<std::string>{"mono"});

  std::string text = kBase;
  text.replace(text.find("gain_db = -6.0"), 14, "gain_db = -7.0");  // b's gain on noise
  const Diff g = diff(p, parse(text));
  EXPECT_TRUE(g.inputs_changed);
  EXPECT_FALSE(g.params_changed);
  EXPECT_TRUE(g.replace.empty());
}

TEST(GraphDiff, ServerChangesNeedARestart) {
  const std::string body = kBase;
  const Patch p = parse("[server]\nrate = 48000\nblock = 128\noutput_channels = 2\nfade_ms = 50.0\n" + body);
  auto refusal = [&](const std::string& server) {
    return diff(p, parse("[server]\n" + server + "\n" + body)).refused;
  };
  EXPECT_EQ(refusal("rate = 44100"), "rate 48000 -> 44100 needs a restart");
  EXPECT_EQ(refusal("block = 256"), "block 128 -> 256 needs a restart");
  EXPECT_EQ(refusal("output_channels = 4"), "output_channels 2 -> 4 needs a restart");
  EXPECT_EQ(refusal("input_channels = 2"), "input_channels 0 -> 2 needs a restart");
  const Diff fade = diff(p, parse("[server]\nfade_ms = 5.0\n" + body));
  EXPECT_TRUE(fade.refused.empty()) << fade.refused;
  EXPECT_TRUE(fade.empty());
}

}  // namespace
}  // namespace rackd::graph
