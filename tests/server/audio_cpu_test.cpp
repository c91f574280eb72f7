// Tests for server/audio_cpu.hpp: which graphs share one CPU, and the option.
#include "server/audio_cpu.hpp"

#include <gtest/gtest.h>
#include <sched.h>

#include <stdexcept>

namespace rackd::server {
using graph::parse_patch;
namespace {

Patch parse(const char* text) { return parse_patch(text, "x.toml"); }

constexpr const char* kChain = R"(
[[module]]
name = "a"
type = "passthrough"
input = "device"
[[module]]
name = "b"
type = "passthrough"
input = "a"
[output]
from = "b"
)";

constexpr const char* kFanOut = R"(
[[module]]
name = "a"
type = "passthrough"
input = "device"
[[module]]
name = "b"
type = "passthrough"
input = "a"
[[module]]
name = "c"
type = "passthrough"
input = "a"
[output]
from = ["b", "c"]
)";

constexpr const char* kTwoSources = R"(
[[module]]
name = "a"
type = "capture"
source = "tone"
[[module]]
name = "b"
type = "capture"
source = "noise"
[output]
from = ["a", "b"]
)";

TEST(AudioCpu, AChainIsSerialBranchesAndSecondSourcesAreNot) {
  EXPECT_TRUE(serial_graph(parse(kChain)));
  EXPECT_FALSE(serial_graph(parse(kFanOut)));
  EXPECT_FALSE(serial_graph(parse(kTwoSources)));
}

TEST(AudioCpu, AutoPinsOnlyASerialGraphAndOnlyWithTwoCpus) {
  std::string why;
  const int cpu = choose_audio_cpu(parse(kChain), AudioCpuOption{}, why);
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  if (CPU_COUNT(&set) > 1) {
    EXPECT_TRUE(CPU_ISSET(cpu, &set));
  } else {
    EXPECT_EQ(cpu, -1);
  }
  EXPECT_EQ(choose_audio_cpu(parse(kFanOut), AudioCpuOption{}, why), -1);
  EXPECT_NE(why.find("parallel"), std::string::npos) << why;
}

TEST(AudioCpu, OptionParsesAutoNoneAndANumberAndRefusesTheRest) {
  EXPECT_EQ(parse_audio_cpu("auto").mode, AudioCpuOption::Mode::kAuto);
  EXPECT_EQ(parse_audio_cpu("none").mode, AudioCpuOption::Mode::kNone);
  const AudioCpuOption three = parse_audio_cpu("3");
  EXPECT_EQ(three.mode, AudioCpuOption::Mode::kCpu);
  EXPECT_EQ(three.cpu, 3);
  std::string why;
  EXPECT_EQ(choose_audio_cpu(parse(kFanOut), three, why), 3);  // asked for: any graph
  EXPECT_EQ(choose_audio_cpu(parse(kChain), parse_audio_cpu("none"), why), -1);
  for (const char* bad : {"", "-1", "two", "1x", "100000"})
    EXPECT_THROW(parse_audio_cpu(bad), std::invalid_argument) << bad;
}

}  // namespace
}  // namespace rackd::server
