// Tests for server/audio_file: files are made with raw libsndfile, passed through
// AudioReader -> AudioWriter, and compared sample for sample with raw libsndfile
// again, so the check does not depend on the code under test. Single-threaded.
#include "server/audio_file.hpp"

#include <gtest/gtest.h>
#include <sndfile.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace rackd::server {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards even when the test fails.
class AudioFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = (fs::temp_directory_path() / "rackd_audio_file_XXXXXX").string();
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

// Raw libsndfile helpers; interleaved data throughout.

template <typename T>
void write_raw(const std::string& path, int format, int rate, int channels,
               const std::vector<T>& interleaved) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = format;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  ASSERT_NE(f, nullptr) << sf_strerror(nullptr);
  const sf_count_t frames = static_cast<sf_count_t>(interleaved.size() / channels);
  sf_count_t n = 0;
  if constexpr (std::is_same_v<T, short>) n = sf_writef_short(f, interleaved.data(), frames);
  if constexpr (std::is_same_v<T, int>) n = sf_writef_int(f, interleaved.data(), frames);
  if constexpr (std::is_same_v<T, float>) n = sf_writef_float(f, interleaved.data(), frames);
  EXPECT_EQ(n, frames);
  EXPECT_EQ(sf_close(f), 0);
}

template <typename T>
std::vector<T> read_raw(const std::string& path, SF_INFO* info_out = nullptr) {
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  EXPECT_NE(f, nullptr) << path << ": " << sf_strerror(nullptr);
  if (f == nullptr) return {};
  std::vector<T> data(static_cast<size_t>(info.frames) * info.channels);
  sf_count_t n = 0;
  if constexpr (std::is_same_v<T, short>) n = sf_readf_short(f, data.data(), info.frames);
  if constexpr (std::is_same_v<T, int>) n = sf_readf_int(f, data.data(), info.frames);
  if constexpr (std::is_same_v<T, float>) n = sf_readf_float(f, data.data(), info.frames);
  EXPECT_EQ(n, info.frames);
  sf_close(f);
  if (info_out != nullptr) *info_out = info;
  return data;
}

// Copies `in` to `out` through the classes under test, `block` frames at a
// time, keeping the input's format. Returns the total frames read.
uint64_t copy_through(const std::string& in, const std::string& out, uint32_t block) {
  AudioReader reader(in);
  AudioWriter writer(out, reader.format());
  const uint32_t channels = reader.format().channels;
  std::vector<std::vector<float>> planes(channels, std::vector<float>(block));
  std::vector<float*> ptrs(channels);
  for (uint32_t c = 0; c < channels; ++c) ptrs[c] = planes[c].data();
  uint64_t total = 0;
  while (uint32_t n = reader.read(ptrs.data(), block)) {
    writer.write(ptrs.data(), n);
    total += n;
  }
  writer.close();
  return total;
}

// Full-scale extremes first, then zero and its neighbours, then random values.
std::vector<int> pcm_pattern(int bits, size_t frames, int channels, uint32_t seed) {
  const int max = (1 << (bits - 1)) - 1;
  const int min = -(1 << (bits - 1));
  std::vector<int> v = {min, max, min + 1, max - 1, 0, 1, -1};
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(min, max);
  const size_t total = frames * static_cast<size_t>(channels);
  v.resize(std::min(v.size(), total));
  while (v.size() < total) v.push_back(dist(rng));
  return v;
}

struct PcmCase {
  const char* name;
  int format;
  int bits;
  const char* ext;
};

class PcmRoundTrip : public AudioFileTest, public ::testing::WithParamInterface<PcmCase> {};

TEST_P(PcmRoundTrip, IsBitExactAndKeepsFormat) {
  const PcmCase& pc = GetParam();
  const std::string in = path(std::string("in") + pc.ext);
  const std::string out = path(std::string("out") + pc.ext);
  constexpr int kChannels = 2;
  constexpr size_t kFrames = 1234;
  const int shift = 32 - pc.bits;  // libsndfile's int API is left-justified
  std::vector<int> samples = pcm_pattern(pc.bits, kFrames, kChannels, 1234u + pc.bits);

  if (pc.bits == 16) {
    write_raw(in, pc.format, 44100, kChannels, std::vector<short>(samples.begin(), samples.end()));
  } else {
    std::vector<int> justified(samples.size());
    for (size_t i = 0; i < samples.size(); ++i) {
      justified[i] = static_cast<int>(static_cast<uint32_t>(samples[i]) << shift);
    }
    write_raw(in, pc.format, 44100, kChannels, justified);
  }

  EXPECT_EQ(copy_through(in, out, 100), kFrames);

  SF_INFO in_info{}, out_info{};
  if (pc.bits == 16) {
    const auto a = read_raw<short>(in, &in_info);
    const auto b = read_raw<short>(out, &out_info);
    ASSERT_EQ(a.size(), samples.size());
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], samples[i]) << "input sample " << i;
    ASSERT_EQ(a, b);
  } else {
    const auto a = read_raw<int>(in, &in_info);
    const auto b = read_raw<int>(out, &out_info);
    ASSERT_EQ(a.size(), samples.size());
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i] >> shift, samples[i]) << "input sample " << i;
    }
    ASSERT_EQ(a, b);
  }
  EXPECT_EQ(out_info.samplerate, 44100);
  EXPECT_EQ(out_info.channels, kChannels);
  EXPECT_EQ(out_info.format, in_info.format);
  EXPECT_EQ(out_info.format, pc.format);
  EXPECT_EQ(out_info.frames, static_cast<sf_count_t>(kFrames));
}

INSTANTIATE_TEST_SUITE_P(
    Formats, PcmRoundTrip,
    ::testing::Values(PcmCase{"WavPcm16", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16, ".wav"},
                      PcmCase{"WavPcm24", SF_FORMAT_WAV | SF_FORMAT_PCM_24, 24, ".wav"},
                      PcmCase{"FlacPcm16", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 16, ".flac"},
                      PcmCase{"FlacPcm24", SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 24, ".flac"},
                      PcmCase{"AiffPcm24", SF_FORMAT_AIFF | SF_FORMAT_PCM_24, 24, ".aiff"}),
    [](const ::testing::TestParamInfo<PcmCase>& info) { return std::string(info.param.name); });

TEST_F(AudioFileTest, WavFloatRoundTripIsBitExactIncludingOutOfRangeValues) {
  const std::string in = path("in.wav");
  const std::string out = path("out.wav");
  constexpr int kChannels = 2;
  constexpr size_t kFrames = 1234;
  // Beyond full scale, tiny, subnormal and signed zero must all survive: a
  // float file is a float file, not a clipped PCM stream.
  std::vector<float> samples = {1.0f, -1.0f, 1.5f, -2.75f, 0.0f, -0.0f, 1e-30f,
                                std::numeric_limits<float>::denorm_min(),
                                std::numeric_limits<float>::max()};
  std::mt19937 rng(99);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  while (samples.size() < kFrames * kChannels) samples.push_back(dist(rng));
  write_raw(in, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 96000, kChannels, samples);

  EXPECT_EQ(copy_through(in, out, 100), kFrames);

  SF_INFO in_info{}, out_info{};
  const auto a = read_raw<float>(in, &in_info);
  const auto b = read_raw<float>(out, &out_info);
  ASSERT_EQ(a.size(), samples.size());
  ASSERT_EQ(b.size(), samples.size());
  EXPECT_EQ(std::memcmp(a.data(), samples.data(), a.size() * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  EXPECT_EQ(out_info.samplerate, 96000);
  EXPECT_EQ(out_info.format, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
}

TEST_F(AudioFileTest, ReadsInBlocksThatDoNotDivideTheLength) {
  const std::string in = path("in.wav");
  constexpr size_t kFrames = 1234;
  std::vector<short> samples(kFrames);
  for (size_t i = 0; i < kFrames; ++i) samples[i] = static_cast<short>(i);
  write_raw(in, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 48000, 1, samples);

  AudioReader reader(in);
  EXPECT_EQ(reader.frames(), kFrames);
  std::vector<float> block(100);
  float* ptr = block.data();
  std::vector<uint32_t> counts;
  uint64_t total = 0;
  while (uint32_t n = reader.read(&ptr, 100)) {
    for (uint32_t i = 0; i < n; ++i) {
      ASSERT_EQ(block[i], static_cast<float>(total + i) / 32768.0f) << "frame " << total + i;
    }
    counts.push_back(n);
    total += n;
  }
  EXPECT_EQ(total, kFrames);
  ASSERT_EQ(counts.size(), 13u);
  EXPECT_EQ(counts.back(), 34u);
  EXPECT_EQ(reader.read(&ptr, 100), 0u) << "stays at the end";
}

TEST_F(AudioFileTest, BlockSizeMayGrowAndShrinkBetweenReads) {
  const std::string in = path("in.wav");
  std::vector<short> samples(1000);
  for (size_t i = 0; i < samples.size(); ++i) samples[i] = static_cast<short>(i * 3);
  write_raw(in, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 48000, 1, samples);

  AudioReader reader(in);
  std::vector<float> block(700);
  float* ptr = block.data();
  uint64_t pos = 0;
  for (uint32_t want : {7u, 300u, 1u, 700u}) {
    const uint32_t n = reader.read(&ptr, want);
    ASSERT_EQ(n, std::min<uint64_t>(want, samples.size() - pos));
    for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(block[i], samples[pos + i] / 32768.0f);
    pos += n;
  }
  EXPECT_EQ(pos, samples.size());
}

class ChannelLayout : public AudioFileTest, public ::testing::WithParamInterface<int> {};

TEST_P(ChannelLayout, ReadIsPlanarAndWriteInterleavesBack) {
  const int channels = GetParam();
  const std::string in = path("in.wav");
  const std::string out = path("out.wav");
  constexpr size_t kFrames = 257;
  // Each sample encodes its own channel and frame, so any transposition shows.
  auto value = [](int c, size_t i) { return static_cast<short>(c * 1000 + static_cast<int>(i)); };
  std::vector<short> samples(kFrames * channels);
  for (size_t i = 0; i < kFrames; ++i) {
    for (int c = 0; c < channels; ++c) samples[i * channels + c] = value(c, i);
  }
  write_raw(in, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 48000, channels, samples);

  {
    AudioReader reader(in);
    ASSERT_EQ(reader.format().channels, static_cast<uint32_t>(channels));
    std::vector<std::vector<float>> planes(channels, std::vector<float>(kFrames + 10));
    std::vector<float*> ptrs;
    for (auto& p : planes) ptrs.push_back(p.data());
    ASSERT_EQ(reader.read(ptrs.data(), kFrames + 10), kFrames);
    for (int c = 0; c < channels; ++c) {
      for (size_t i = 0; i < kFrames; ++i) {
        ASSERT_EQ(planes[c][i], value(c, i) / 32768.0f) << "channel " << c << " frame " << i;
      }
    }
  }

  EXPECT_EQ(copy_through(in, out, 64), kFrames);
  SF_INFO out_info{};
  EXPECT_EQ(read_raw<short>(out, &out_info), samples);
  EXPECT_EQ(out_info.channels, channels);
}

INSTANTIATE_TEST_SUITE_P(Channels, ChannelLayout, ::testing::Values(1, 2, 8));

TEST_F(AudioFileTest, PcmWriterClipsAndRoundsAtTheStoredWidth) {
  const std::string out16 = path("clip16.wav");
  const std::string out24 = path("clip24.flac");
  // 1.0 must clip to the largest code rather than wrap; NaN is written as
  // silence; in-between values round to nearest at the stored width (libsndfile
  // alone would floor them when narrowing int32 to 16 or 24 bits).
  const std::vector<float> in = {1.0f, -1.0f, 2.0f, -3.0f, 0.5f, std::nanf(""),
                                 100.6f / 32768.0f, -100.4f / 32768.0f, -100.6f / 32768.0f};
  const float* ptr = in.data();
  {
    AudioWriter writer(out16, AudioFormat{48000, 1, SF_FORMAT_WAV | SF_FORMAT_PCM_16});
    writer.write(&ptr, static_cast<uint32_t>(in.size()));
  }  // destructor closes
  {
    AudioWriter writer(out24, AudioFormat{48000, 1, SF_FORMAT_FLAC | SF_FORMAT_PCM_24});
    writer.write(&ptr, static_cast<uint32_t>(in.size()));
    writer.close();
  }
  const std::vector<short> expected16 = {32767, -32768, 32767, -32768, 16384, 0, 101, -100, -101};
  EXPECT_EQ(read_raw<short>(out16), expected16);
  const std::vector<int> got24 = read_raw<int>(out24);
  ASSERT_EQ(got24.size(), in.size());
  auto to24 = [](float x) { return static_cast<int>(std::lrint(x * 8388608.0)); };
  const std::vector<int> expected24 = {8388607, -8388608, 8388607, -8388608, 4194304, 0,
                                       to24(in[6]), to24(in[7]), to24(in[8])};
  for (size_t i = 0; i < in.size(); ++i) EXPECT_EQ(got24[i] >> 8, expected24[i]) << "sample " << i;
}

TEST_F(AudioFileTest, CloseIsIdempotentAndWriteAfterCloseThrows) {
  // WAV, not FLAC: libsndfile 1.2.0 starts the FLAC stream on the first write,
  // so a FLAC file closed with no frames is 0 bytes and cannot be reopened.
  const std::string out = path("c.wav");
  std::vector<float> a(4, 0.25f), b(4, -0.25f);
  const float* ptrs[] = {a.data(), b.data()};
  AudioWriter writer(out, AudioFormat{48000, 2, default_format_for(out)});
  writer.write(ptrs, 4);
  writer.close();
  EXPECT_NO_THROW(writer.close());
  EXPECT_THROW(writer.write(ptrs, 4), std::runtime_error);
  SF_INFO info{};
  EXPECT_EQ(read_raw<float>(out, &info), (std::vector<float>{0.25f, -0.25f, 0.25f, -0.25f,
                                                             0.25f, -0.25f, 0.25f, -0.25f}));
  EXPECT_EQ(info.format, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
}

// Expects `fn` to throw std::runtime_error whose message contains every part.
template <typename Fn>
void expect_error(Fn&& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    for (const auto& part : parts) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "\"" << e.what() << "\" lacks \"" << part << "\"";
    }
  }
}

TEST_F(AudioFileTest, MissingFileThrowsWithPath) {
  const std::string missing = path("missing.wav");
  expect_error([&] { AudioReader r(missing); }, {missing + ": "});
}

TEST_F(AudioFileTest, GarbageFileThrowsWithPath) {
  const std::string garbage = path("garbage.wav");
  {
    std::ofstream f(garbage, std::ios::binary);
    std::mt19937 rng(7);
    for (int i = 0; i < 4096; ++i) f.put(static_cast<char>(rng() & 0xff));
  }
  expect_error([&] { AudioReader r(garbage); }, {garbage + ": "});
}

TEST_F(AudioFileTest, TooManyChannelsIsRejected) {
  const std::string in = path("wide.wav");
  write_raw(in, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 48000, 33, std::vector<short>(33 * 4));
  expect_error([&] { AudioReader r(in); }, {in + ": ", "33 channels", "32"});
}

TEST_F(AudioFileTest, WriterRejectsUnwritableFormatNamingIt) {
  const std::string out = path("bad.flac");
  const int flac_float = SF_FORMAT_FLAC | SF_FORMAT_FLOAT;
  expect_error([&] { AudioWriter w(out, AudioFormat{48000, 2, flac_float}); },
               {out + ": ", "FLAC", "0x170006"});
  EXPECT_FALSE(fs::exists(out)) << "checked before creating the file";
  const int flac_16 = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
  expect_error([&] { AudioWriter w(out, AudioFormat{0, 2, flac_16}); },
               {out + ": ", "sample rate"});
  expect_error([&] { AudioWriter w(out, AudioFormat{48000, 0, flac_16}); },
               {out + ": ", "0 channels"});
}

TEST_F(AudioFileTest, WriterToMissingDirectoryThrowsWithPath) {
  const std::string out = path("no/such/dir/out.wav");
  expect_error([&] { AudioWriter w(out, AudioFormat{48000, 2, SF_FORMAT_WAV | SF_FORMAT_FLOAT}); },
               {out + ": "});
}

// WriteMode::kReplaceOnClose: what `dir_` holds besides the named files.
std::vector<std::string> others(const fs::path& dir, const std::vector<std::string>& named) {
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (std::find(named.begin(), named.end(), name) == named.end()) found.push_back(name);
  }
  return found;
}

std::string text_of(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST_F(AudioFileTest, ReplaceOnCloseLeavesThePathAsItWasUntilClose) {
  const std::string out = path("o.wav");
  std::ofstream(out) << "previous";
  std::vector<float> a(4, 0.5f);
  const float* ptrs[] = {a.data()};
  AudioWriter w(out, AudioFormat{48000, 1, default_format_for(out)}, WriteMode::kReplaceOnClose);
  w.write(ptrs, 4);
  EXPECT_EQ(text_of(out), "previous");
  const auto temps = others(dir_, {"o.wav"});
  ASSERT_EQ(temps.size(), 1u);
  EXPECT_EQ(temps[0].rfind(".o.wav.rackd-", 0), 0u) << temps[0];
  w.close();
  EXPECT_EQ(read_raw<float>(out), a);
  EXPECT_TRUE(others(dir_, {"o.wav"}).empty());
}

TEST_F(AudioFileTest, ReplaceOnCloseWithoutCloseLeavesNothing) {
  std::vector<float> a(4, 0.5f);
  const float* ptrs[] = {a.data()};
  const std::string old_file = path("old.wav"), new_file = path("new.wav");
  std::ofstream(old_file) << "previous";
  for (const std::string& out : {old_file, new_file}) {
    AudioWriter w(out, AudioFormat{48000, 1, default_format_for(out)}, WriteMode::kReplaceOnClose);
    w.write(ptrs, 4);
  }
  EXPECT_EQ(text_of(old_file), "previous");
  EXPECT_FALSE(fs::exists(new_file));
  EXPECT_TRUE(others(dir_, {"old.wav"}).empty());
  // A writer that cannot open its file leaves no temporary either.
  expect_error([&] { AudioWriter w(path("no/dir/x.wav"), AudioFormat{48000, 1, default_format_for("x.wav")},
                                   WriteMode::kReplaceOnClose); },
               {path("no/dir/x.wav") + ": "});
  EXPECT_TRUE(others(dir_, {"old.wav"}).empty());
}

TEST_F(AudioFileTest, ReplaceOnCloseReplacesASymlinkTargetKeepingItsMode) {
  const std::string target = path("target.wav"), link = path("link.wav");
  std::ofstream(target) << "previous";
  ASSERT_EQ(chmod(target.c_str(), 0640), 0);
  fs::create_symlink(target, link);
  std::vector<float> a(4, -0.5f);
  const float* ptrs[] = {a.data()};
  AudioWriter w(link, AudioFormat{48000, 1, default_format_for(link)}, WriteMode::kReplaceOnClose);
  w.write(ptrs, 4);
  w.close();
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(read_raw<float>(target), a);
  struct stat st{};
  ASSERT_EQ(stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_TRUE(others(dir_, {"target.wav", "link.wav"}).empty());
}

TEST(DefaultFormatFor, PicksByExtensionIgnoringCase) {
  EXPECT_EQ(default_format_for("out.wav"), SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  EXPECT_EQ(default_format_for("/a.b/OUT.WAV"), SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  EXPECT_EQ(default_format_for("x.flac"), SF_FORMAT_FLAC | SF_FORMAT_PCM_24);
  EXPECT_EQ(default_format_for("x.FLAC"), SF_FORMAT_FLAC | SF_FORMAT_PCM_24);
  EXPECT_EQ(default_format_for("x.aif"), SF_FORMAT_AIFF | SF_FORMAT_PCM_24);
  EXPECT_EQ(default_format_for("x.Aiff"), SF_FORMAT_AIFF | SF_FORMAT_PCM_24);
}

TEST(DefaultFormatFor, UnknownExtensionThrowsWithPathAndChoices) {
  for (const std::string p : {"x.mp3", "x", "dir.wav/x", "x.wav.txt"}) {
    expect_error([&] { default_format_for(p); },
                 {p + ": unknown output format (use .wav, .flac or .aiff)"});
  }
}

}  // namespace
}  // namespace rackd::server
