// Tests for capture_dsp: generators, device copy, gain/mute, sound-file playback
// (files written with libsndfile into a temporary directory). Single-threaded;
// process() is called the way the module's block thread calls it.
#include "modules/capture/capture_dsp.hpp"

#include <gtest/gtest.h>
#include <sndfile.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

namespace rackd::capture {
namespace {

constexpr double kRate = 48000.0;
constexpr double kTwoPi = 2.0 * std::numbers::pi;

// Runs `total` frames through process() in blocks of `block` frames and
// returns the planar result.
std::vector<std::vector<float>> run(Capture& cap, uint32_t total, uint32_t block,
                                    double freq_hz = 1000.0, float gain = 1.0f,
                                    bool mute = false) {
  std::vector<std::vector<float>> out(cap.channels(), std::vector<float>(total));
  std::vector<float*> ptrs(cap.channels());
  for (uint32_t done = 0; done < total;) {
    const uint32_t n = std::min(block, total - done);
    for (uint32_t c = 0; c < cap.channels(); ++c) ptrs[c] = out[c].data() + done;
    cap.process(nullptr, 0, ptrs.data(), n, gain, mute, freq_hz);
    done += n;
  }
  return out;
}

// Frequency estimated from upward zero crossings over x[begin, end).
double crossing_hz(const std::vector<float>& x, size_t begin, size_t end, double rate_hz) {
  double first = -1.0;
  double last = -1.0;
  int count = 0;
  for (size_t i = begin + 1; i < end; ++i) {
    if (x[i - 1] < 0.0f && x[i] >= 0.0f) {
      const double t = (i - 1) + x[i - 1] / (x[i - 1] - x[i]);  // interpolated
      if (first < 0.0) first = t;
      last = t;
      ++count;
    }
  }
  return count < 2 ? 0.0 : (count - 1) * rate_hz / (last - first);
}

float max_abs(const std::vector<float>& x, size_t begin, size_t end) {
  float m = 0.0f;
  for (size_t i = begin; i < end; ++i) m = std::max(m, std::abs(x[i]));
  return m;
}

bool bit_equal(const float* a, const float* b, size_t n) {
  return std::memcmp(a, b, n * sizeof(float)) == 0;
}

CaptureConfig config_for(Source source, uint32_t channels = 2) {
  CaptureConfig c;
  c.source = source;
  c.channels = channels;
  return c;
}

TEST(CaptureTone, HasRequestedFrequencyAndAmplitude) {
  Capture cap;
  cap.setup(config_for(Source::kTone), kRate, 256);
  const auto out = run(cap, 48000, 256, 1000.0);
  EXPECT_NEAR(crossing_hz(out[0], 0, out[0].size(), kRate), 1000.0, 0.01);
  EXPECT_NEAR(max_abs(out[0], 0, out[0].size()), 0.5f, 1e-4f);
  EXPECT_EQ(out[0][0], 0.0f);  // starts at phase 0
  EXPECT_EQ(out[0], out[1]);
}

TEST(CaptureTone, PhaseIsContinuousAcrossBlocksAndFrequencyChanges) {
  Capture cap;
  cap.setup(config_for(Source::kTone, 1), kRate, 512);
  const double freqs[] = {440.0, 440.0, 3000.0, 3000.0, 100.0, 12000.0, 12000.0, 50.0};
  const uint32_t sizes[] = {128, 77, 128, 1, 333, 64, 200, 512};
  std::vector<float> all;
  double max_hz = 440.0;
  for (size_t b = 0; b < std::size(freqs); ++b) {
    std::vector<float> block(sizes[b]);
    float* p = block.data();
    cap.process(nullptr, 0, &p, sizes[b], 1.0f, false, freqs[b]);
    // Within a block the frequency moves between the previous and the new value.
    const double hz = std::max(max_hz, freqs[b]);
    const float bound = static_cast<float>(kTwoPi * hz / kRate * 0.5) + 1e-6f;
    for (size_t i = 0; i < block.size(); ++i) {
      if (!all.empty()) {
        ASSERT_LE(std::abs(block[i] - all.back()), bound) << "block " << b << " frame " << i;
      }
      all.push_back(block[i]);
    }
    max_hz = freqs[b];
  }
}

TEST(CaptureTone, FrequencyRampsWithinOneBlock) {
  Capture cap;
  cap.setup(config_for(Source::kTone, 1), kRate, 4800);
  run(cap, 4800, 4800, 1000.0);
  const auto out = run(cap, 4800 * 3, 4800, 2000.0);
  // The first block ramps 1000 -> 2000 Hz; the following ones hold 2000 Hz.
  const double ramp_hz = crossing_hz(out[0], 0, 4800, kRate);
  EXPECT_GT(ramp_hz, 1400.0);
  EXPECT_LT(ramp_hz, 1600.0);
  EXPECT_NEAR(crossing_hz(out[0], 4800, out[0].size(), kRate), 2000.0, 0.1);
}

TEST(CaptureNoise, IsDeterministicBoundedAndSeedDependent) {
  CaptureConfig cfg = config_for(Source::kNoise);
  cfg.seed = 7;
  Capture a;
  Capture b;
  a.setup(cfg, kRate, 128);
  b.setup(cfg, kRate, 128);
  const auto x = run(a, 10000, 128);
  const auto y = run(b, 10000, 100);  // block size does not change the sequence
  EXPECT_EQ(x[0], y[0]);
  EXPECT_EQ(x[0], x[1]);
  double sum = 0.0;
  double sq = 0.0;
  for (float v : x[0]) {
    ASSERT_GE(v, -0.5f);
    ASSERT_LE(v, 0.5f);
    sum += v;
    sq += static_cast<double>(v) * v;
  }
  EXPECT_NEAR(sum / x[0].size(), 0.0, 0.02);
  EXPECT_NEAR(sq / x[0].size(), 1.0 / 12.0, 0.005);  // variance of U(-0.5, 0.5)

  a.reset();
  EXPECT_EQ(run(a, 10000, 128)[0], x[0]);

  for (uint64_t seed : {0ull, 1ull, 8ull}) {
    cfg.seed = seed;
    Capture c;
    c.setup(cfg, kRate, 128);
    EXPECT_NE(run(c, 1000, 128)[0], std::vector<float>(x[0].begin(), x[0].begin() + 1000));
    EXPECT_GT(max_abs(run(c, 1000, 128)[0], 0, 1000), 0.4f) << "seed " << seed;
  }
}

TEST(CaptureSweep, RunsFromStartToEndThenRestarts) {
  CaptureConfig cfg = config_for(Source::kSweep, 1);
  cfg.sweep_start_hz = 100.0;
  cfg.sweep_end_hz = 10000.0;
  cfg.sweep_seconds = 1.0;
  Capture cap;
  cap.setup(cfg, kRate, 256);
  const auto out = run(cap, 96000, 256);
  const auto& x = out[0];
  // Over the first 20 ms the frequency rises 100 -> 110 Hz; over the last 10 ms
  // of the sweep it rises 9550 -> 10000 Hz.
  EXPECT_NEAR(crossing_hz(x, 0, 960, kRate), 105.0, 5.0);
  EXPECT_NEAR(crossing_hz(x, 47520, 48000, kRate), 9770.0, 250.0);
  EXPECT_NEAR(crossing_hz(x, 48000, 48960, kRate), 105.0, 5.0);
  EXPECT_NEAR(max_abs(x, 0, x.size()), 0.5f, 1e-3f);
  for (size_t i = 1; i < x.size(); ++i) {
    ASSERT_LE(std::abs(x[i] - x[i - 1]), kTwoPi * 10000.0 / kRate * 0.5 + 1e-6) << i;
  }
}

TEST(CaptureSweep, RejectsBadSettings) {
  Capture cap;
  CaptureConfig cfg = config_for(Source::kSweep);
  cfg.sweep_end_hz = cfg.sweep_start_hz;
  EXPECT_THROW(cap.setup(cfg, kRate, 64), std::runtime_error);
  cfg = config_for(Source::kSweep);
  cfg.sweep_seconds = 0.0;
  EXPECT_THROW(cap.setup(cfg, kRate, 64), std::runtime_error);
  cfg = config_for(Source::kSweep);
  cfg.sweep_start_hz = -20.0;
  EXPECT_THROW(cap.setup(cfg, kRate, 64), std::runtime_error);
}

TEST(Capture, RejectsChannelCountsOutside1To32) {
  Capture cap;
  EXPECT_THROW(cap.setup(config_for(Source::kTone, 0), kRate, 64), std::runtime_error);
  EXPECT_THROW(cap.setup(config_for(Source::kTone, 33), kRate, 64), std::runtime_error);
  EXPECT_NO_THROW(cap.setup(config_for(Source::kTone, 32), kRate, 64));
}

TEST(CaptureDevice, CopiesInputBitExactlyAtUnityGain) {
  Capture cap;
  cap.setup(config_for(Source::kDevice, 3), kRate, 64);
  const uint32_t frames = 64;
  std::vector<std::vector<float>> in(2, std::vector<float>(frames));
  for (uint32_t i = 0; i < frames; ++i) {
    in[0][i] = std::nextafter(0.1f * i, 1.0f) - 0.3f;
    in[1][i] = -1e-38f * i;
  }
  const float* in_ptrs[] = {in[0].data(), in[1].data()};
  std::vector<std::vector<float>> out(3, std::vector<float>(frames, 9.0f));
  float* out_ptrs[] = {out[0].data(), out[1].data(), out[2].data()};
  for (int block = 0; block < 3; ++block) {
    cap.process(in_ptrs, 2, out_ptrs, frames, 1.0f, false, 440.0);
    EXPECT_TRUE(bit_equal(out[0].data(), in[0].data(), frames));
    EXPECT_TRUE(bit_equal(out[1].data(), in[1].data(), frames));
    EXPECT_EQ(out[2], std::vector<float>(frames, 0.0f));  // no device channel 2
  }
  cap.process(nullptr, 0, out_ptrs, frames, 1.0f, false, 440.0);
  EXPECT_EQ(out[0], std::vector<float>(frames, 0.0f));
}

TEST(CaptureGain, MuteRampsToExactZeroWithinOneBlock) {
  Capture cap;
  cap.setup(config_for(Source::kNoise), kRate, 64);
  run(cap, 64, 64, 0.0, 1.0f, false);  // playing at unity first
  const auto first = run(cap, 64, 64, 0.0, 1.0f, true);
  EXPECT_GT(max_abs(first[0], 0, 32), 0.0f);  // ramping down, not a jump
  EXPECT_EQ(first[0][63], 0.0f);
  const auto after = run(cap, 640, 64, 0.0, 1.0f, true);
  for (const auto& ch : after) EXPECT_EQ(ch, std::vector<float>(640, 0.0f));
}

TEST(CaptureGain, FirstBlockStartsAtItsTargetGain) {
  Capture cap;
  cap.setup(config_for(Source::kDevice, 1), kRate, 100);
  std::vector<float> ones(100, 1.0f);
  std::vector<float> out(100);
  const float* in = ones.data();
  float* o = out.data();
  cap.process(&in, 1, &o, 100, 0.25f, false, 0.0);
  EXPECT_EQ(out, std::vector<float>(100, 0.25f));
}

TEST(CaptureGain, GainRampsLinearlyToTarget) {
  Capture cap;
  cap.setup(config_for(Source::kDevice, 1), kRate, 100);
  std::vector<float> ones(100, 1.0f);
  std::vector<float> out(100);
  const float* in = ones.data();
  float* o = out.data();
  cap.process(&in, 1, &o, 100, 1.0f, false, 0.0);  // playing at unity first
  cap.process(&in, 1, &o, 100, 0.5f, false, 0.0);
  for (uint32_t i = 0; i < 100; ++i) EXPECT_NEAR(out[i], 1.0f - 0.005f * (i + 1), 1e-6f);
  EXPECT_EQ(out[99], 0.5f);
  cap.process(&in, 1, &o, 100, 0.5f, false, 0.0);
  EXPECT_EQ(out, std::vector<float>(100, 0.5f));
}

// A temporary directory removed with the test.
class CaptureFile : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("rackd_capture_test_" + std::to_string(::getpid()) + "_" + info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes planar `data` as a float WAV and returns its path.
  std::string write_wav(const std::string& name, const std::vector<std::vector<float>>& data,
                        int rate_hz, int format = SF_FORMAT_WAV | SF_FORMAT_FLOAT) {
    const std::string path = (dir_ / name).string();
    SF_INFO info{};
    info.samplerate = rate_hz;
    info.channels = static_cast<int>(data.size());
    info.format = format;
    SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
    EXPECT_NE(f, nullptr) << sf_strerror(nullptr);
    const size_t frames = data.empty() ? 0 : data[0].size();
    std::vector<float> interleaved(frames * data.size());
    for (size_t i = 0; i < frames; ++i) {
      for (size_t c = 0; c < data.size(); ++c) interleaved[i * data.size() + c] = data[c][i];
    }
    EXPECT_EQ(sf_writef_float(f, interleaved.data(), frames), static_cast<sf_count_t>(frames));
    sf_close(f);
    return path;
  }

  static std::vector<std::vector<float>> ramp_data(uint32_t channels, uint32_t frames) {
    std::vector<std::vector<float>> d(channels, std::vector<float>(frames));
    for (uint32_t c = 0; c < channels; ++c) {
      for (uint32_t i = 0; i < frames; ++i) d[c][i] = (c + 1) * (0.001f * i + 0.0001f) - 0.05f;
    }
    return d;
  }

  std::filesystem::path dir_;
};

TEST_F(CaptureFile, LoopingFloatFileWrapsBitExactly) {
  const auto data = ramp_data(2, 100);
  CaptureConfig cfg = config_for(Source::kFile);
  cfg.file = write_wav("loop.wav", data, 48000);
  Capture cap;
  cap.setup(cfg, kRate, 64);
  const auto out = run(cap, 350, 64);  // blocks do not divide the file length
  for (uint32_t c = 0; c < 2; ++c) {
    for (uint32_t i = 0; i < 350; ++i) ASSERT_EQ(out[c][i], data[c][i % 100]) << c << ":" << i;
  }
  cap.reset();
  EXPECT_EQ(run(cap, 10, 10)[0][0], data[0][0]);
}

TEST_F(CaptureFile, WithoutLoopIsSilentAfterTheEnd) {
  const auto data = ramp_data(2, 100);
  CaptureConfig cfg = config_for(Source::kFile);
  cfg.file = write_wav("once.wav", data, 48000);
  cfg.loop = false;
  Capture cap;
  cap.setup(cfg, kRate, 64);
  const auto out = run(cap, 300, 64);
  for (uint32_t c = 0; c < 2; ++c) {
    EXPECT_TRUE(bit_equal(out[c].data(), data[c].data(), 100));
    for (uint32_t i = 100; i < 300; ++i) ASSERT_EQ(out[c][i], 0.0f) << i;
  }
}

TEST_F(CaptureFile, MonoFileFeedsEveryChannelAndExtraChannelsAreSilent) {
  const auto mono = ramp_data(1, 50);
  CaptureConfig cfg = config_for(Source::kFile, 3);
  cfg.file = write_wav("mono.wav", mono, 48000);
  Capture cap;
  cap.setup(cfg, kRate, 50);
  auto out = run(cap, 50, 50);
  for (uint32_t c = 0; c < 3; ++c) EXPECT_EQ(out[c], mono[0]);

  const auto stereo = ramp_data(2, 50);
  cfg.file = write_wav("stereo.wav", stereo, 48000);
  cap.setup(cfg, kRate, 50);
  out = run(cap, 50, 50);
  EXPECT_EQ(out[0], stereo[0]);
  EXPECT_EQ(out[1], stereo[1]);
  EXPECT_EQ(out[2], std::vector<float>(50, 0.0f));

  cfg.channels = 1;  // file channel 1 is dropped
  cap.setup(cfg, kRate, 50);
  out = run(cap, 50, 50);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], stereo[0]);
}

TEST_F(CaptureFile, Pcm16SamplesAreExact) {
  std::vector<std::vector<float>> data(1, std::vector<float>(64));
  for (int i = 0; i < 64; ++i) data[0][i] = static_cast<float>(i * 511 - 16000) / 32768.0f;
  CaptureConfig cfg = config_for(Source::kFile, 1);
  cfg.file = write_wav("pcm16.wav", data, 48000, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  Capture cap;
  cap.setup(cfg, kRate, 64);
  EXPECT_EQ(run(cap, 64, 64)[0], data[0]);
}

TEST_F(CaptureFile, OtherRateIsResampled) {
  std::vector<std::vector<float>> data(1, std::vector<float>(4410));
  for (size_t i = 0; i < data[0].size(); ++i) {
    data[0][i] = static_cast<float>(0.5 * std::sin(kTwoPi * 1000.0 * i / 44100.0));
  }
  CaptureConfig cfg = config_for(Source::kFile, 1);
  cfg.file = write_wav("cd.wav", data, 44100);
  cfg.loop = false;
  Capture cap;
  cap.setup(cfg, kRate, 256);
  const auto out = run(cap, 6000, 256);
  // 4410 frames at 44.1 kHz last 4800 frames at 48 kHz.
  EXPECT_GT(max_abs(out[0], 4700, 4800), 0.3f);
  for (size_t i = 4800; i < out[0].size(); ++i) ASSERT_EQ(out[0][i], 0.0f) << i;
  EXPECT_NEAR(crossing_hz(out[0], 200, 4600, kRate), 1000.0, 0.5);
}

TEST_F(CaptureFile, MissingFileThrowsNamingThePath) {
  CaptureConfig cfg = config_for(Source::kFile);
  cfg.file = (dir_ / "no_such_file.wav").string();
  Capture cap;
  try {
    cap.setup(cfg, kRate, 64);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(cfg.file), std::string::npos) << e.what();
  }
}

TEST_F(CaptureFile, EmptyFileThrowsNamingThePath) {
  CaptureConfig cfg = config_for(Source::kFile);
  cfg.file = write_wav("empty.wav", {{}, {}}, 48000);
  Capture cap;
  try {
    cap.setup(cfg, kRate, 64);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(cfg.file), std::string::npos) << what;
    EXPECT_NE(what.find("no audio"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace rackd::capture
