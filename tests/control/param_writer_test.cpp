// param_writer: type conversion, ranges, seqlock writes a concurrent reader
// never sees torn, epoch bumps.
#include "control/param_writer.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

namespace rackd::control {
namespace {

using registry::ParamSpec;
using shm::ParamKind;

const ParamSpec kGain{"gain_db", ParamKind::kFloat, 1, -96.0, 24.0, 0.0, "dB", ""};
const ParamSpec kCount{"taps", ParamKind::kInt, 1, 1, 16, 4, "", ""};
const ParamSpec kSwitch{"bypass", ParamKind::kBool, 1, 0, 1, 0, "", ""};
const ParamSpec kVec{"pos", ParamKind::kFloat, 3, -1, 1, 0, "", ""};

double conv(const ParamSpec& s, const OscArg& a) {
  double v = -1234;
  std::string why;
  EXPECT_TRUE(convert_arg(s, a, v, why)) << why;
  return v;
}

std::string refuse(const ParamSpec& s, const OscArg& a) {
  double v = -1234;
  std::string why;
  EXPECT_FALSE(convert_arg(s, a, v, why));
  EXPECT_EQ(v, -1234);
  return why;
}

TEST(ParamWriter, FloatParamAcceptsEveryNumericType) {
  EXPECT_EQ(conv(kGain, OscArg::int32(-3)), -3.0);
  EXPECT_EQ(conv(kGain, OscArg::int64(12)), 12.0);
  EXPECT_EQ(conv(kGain, OscArg::float32(-6.5f)), -6.5);
  EXPECT_EQ(conv(kGain, OscArg::float64(1.25)), 1.25);
}

TEST(ParamWriter, FloatParamRefusesStringsBoolsAndNonFinite) {
  EXPECT_NE(refuse(kGain, OscArg::string("loud")).find("expects a number"), std::string::npos);
  refuse(kGain, OscArg::boolean(true));
  refuse(kGain, OscArg::float64(std::numeric_limits<double>::quiet_NaN()));
  refuse(kGain, OscArg::float64(std::numeric_limits<double>::infinity()));
  OscArg nil;
  refuse(kGain, nil);
}

TEST(ParamWriter, OutOfRangeNamesTheRangeAndUnit) {
  const std::string why = refuse(kGain, OscArg::float64(30));
  EXPECT_EQ(why, "gain_db: 30 is out of range [-96, 24] dB");
  refuse(kGain, OscArg::int32(-97));
  EXPECT_EQ(conv(kGain, OscArg::float64(24.0)), 24.0);  // inclusive
}

TEST(ParamWriter, IntParamRoundsFloatsHalfAwayFromZero) {
  EXPECT_EQ(conv(kCount, OscArg::float32(2.4f)), 2.0);
  EXPECT_EQ(conv(kCount, OscArg::float64(2.5)), 3.0);
  EXPECT_EQ(conv(kCount, OscArg::int32(16)), 16.0);
  refuse(kCount, OscArg::float64(16.5));  // rounds to 17: out of range
  refuse(kCount, OscArg::int32(0));
  refuse(kCount, OscArg::boolean(true));
}

TEST(ParamWriter, BoolParamFromTrueFalseIntsAndUnitFloats) {
  EXPECT_EQ(conv(kSwitch, OscArg::boolean(true)), 1.0);
  EXPECT_EQ(conv(kSwitch, OscArg::boolean(false)), 0.0);
  EXPECT_EQ(conv(kSwitch, OscArg::int32(1)), 1.0);
  EXPECT_EQ(conv(kSwitch, OscArg::int64(0)), 0.0);
  EXPECT_EQ(conv(kSwitch, OscArg::float32(0.49f)), 0.0);
  EXPECT_EQ(conv(kSwitch, OscArg::float32(0.5f)), 1.0);
  refuse(kSwitch, OscArg::int32(2));
  refuse(kSwitch, OscArg::float64(1.5));
  refuse(kSwitch, OscArg::string("true"));
}

TEST(ParamWriter, SetWritesValuesAndBumpsEpochOnlyOnSuccess) {
  auto in = std::make_unique<shm::ModuleIn>();
  std::string why;
  const uint32_t e0 = in->param_epoch.load();
  std::vector<OscArg> args{OscArg::float32(-6.0f)};
  ASSERT_TRUE(set_param(*in, 0, kGain, args, why)) << why;
  EXPECT_EQ(get_param(*in, 0)[0], -6.0);
  EXPECT_EQ(in->param_epoch.load(), e0 + 1);
  EXPECT_EQ(in->params[0].seq.load() % 2, 0u);

  std::vector<OscArg> bad{OscArg::float32(100.0f)};
  EXPECT_FALSE(set_param(*in, 0, kGain, bad, why));
  std::vector<OscArg> two{OscArg::float32(1.0f), OscArg::float32(2.0f)};
  EXPECT_FALSE(set_param(*in, 0, kGain, two, why));
  EXPECT_EQ(why, "gain_db takes 1 value, got 2");
  EXPECT_EQ(get_param(*in, 0)[0], -6.0);
  EXPECT_EQ(in->param_epoch.load(), e0 + 1);
}

TEST(ParamWriter, MultiValueParamNeedsExactlyCountValuesAllInRange) {
  auto in = std::make_unique<shm::ModuleIn>();
  std::string why;
  std::vector<OscArg> ok{OscArg::float32(0.5f), OscArg::int32(-1), OscArg::float64(0.25)};
  ASSERT_TRUE(set_param(*in, 3, kVec, ok, why)) << why;
  auto v = get_param(*in, 3);
  EXPECT_EQ(v[0], 0.5);
  EXPECT_EQ(v[1], -1.0);
  EXPECT_EQ(v[2], 0.25);
  std::vector<OscArg> one_bad{OscArg::float32(0.5f), OscArg::int32(-2), OscArg::float64(0.25)};
  EXPECT_FALSE(set_param(*in, 3, kVec, one_bad, why));
  EXPECT_EQ(get_param(*in, 3)[1], -1.0);  // nothing written, not even the good values
}

TEST(ParamWriter, CheckValuesRefusesFractionalIntsAndOutOfRange) {
  std::string why;
  const double a[] = {3.0};
  EXPECT_TRUE(check_values(kCount, a, why));
  const double b[] = {3.5};
  EXPECT_FALSE(check_values(kCount, b, why));
  const double c[] = {100.0};
  EXPECT_FALSE(check_values(kGain, c, why));
}

TEST(ParamWriter, ParamArgsUseTheParameterType) {
  ParamValues v{-3.0, 0, 0, 0};
  EXPECT_EQ(param_args(kGain, v)[0].tag, 'f');
  v[0] = 7;
  EXPECT_EQ(param_args(kCount, v)[0].tag, 'i');
  v[0] = 1;
  EXPECT_EQ(param_args(kSwitch, v)[0].tag, 'T');
  EXPECT_EQ(param_args(kVec, v).size(), 3u);
}

// A reader that follows the module runtime's protocol never sees a torn slot,
// even with two writers (OSC thread + events player) racing on it.
TEST(ParamWriter, ConcurrentReaderNeverSeesTornValuesWithTwoWriters) {
  auto in = std::make_unique<shm::ModuleIn>();
  std::atomic<bool> stop{false};
  auto writer = [&](double base) {
    for (int n = 1; n < 200000; ++n) {
      const double x = base + n;
      const double vals[4] = {x, x, x, x};
      write_param(*in, 5, vals);
    }
  };
  std::atomic<uint64_t> reads{0}, torn{0};
  std::thread reader([&] {
    while (!stop.load()) {
      const ParamValues v = get_param(*in, 5);
      if (!(v[0] == v[1] && v[1] == v[2] && v[2] == v[3])) torn.fetch_add(1);
      reads.fetch_add(1);
    }
  });
  std::thread w1(writer, 0.0), w2(writer, 1e9);
  w1.join();
  w2.join();
  stop.store(true);
  reader.join();
  EXPECT_EQ(torn.load(), 0u);
  EXPECT_GT(reads.load(), 0u);
  EXPECT_EQ(in->params[5].seq.load(), 2u * 2u * 199999u);
  EXPECT_EQ(in->param_epoch.load(), 2u * 199999u);
}

}  // namespace
}  // namespace rackd::control
