// Tests for the hrir module's HRTF sources: SOFA sets against libmysofa's own
// nearest-measurement output (libmysofa runs in this test process on good files
// only), the crash-regression corpus in shared/sofa/bad, Data.Delay handling,
// HeSuVi WAVs, layouts and head rotation. [setup]/[control] code, tested from
// the main thread (plus one watcher thread in the crash test).
#include "modules/hrir/hrtf.hpp"

#include <gtest/gtest.h>
#include <mysofa.h>
#include <signal.h>
#include <sndfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "modules/common/resample.hpp"

#ifndef RACKD_SHARED_DIR
#define RACKD_SHARED_DIR "/work/shared"
#endif

namespace rackd::hrir {
namespace {

namespace fs = std::filesystem;

const std::string kSofaDir = std::string(RACKD_SHARED_DIR) + "/sofa";
const std::string kDefaultSofa = "/usr/share/libmysofa/default.sofa";  // MIT KEMAR, 44.1 kHz

// A scratch directory of this test process, removed at the end.
class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("hrtf_test_" + std::to_string(getpid()))) {
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// What loading `path` threw, or "" if it loaded.
template <typename Load>
std::string error_of(Load load) {
  try {
    load();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

bool all_finite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

// Directions on a grid offset from measurement grids (whole, half and tenth
// degrees), so that no direction is equally far from two measurements: there
// libmysofa's kd-tree and a linear scan may rightly pick different ones.
// `stride` thins the grid for tests that resample every filter (~3 ms each).
std::vector<Direction> test_directions(int stride = 1) {
  std::vector<Direction> dirs;
  for (int i = 0; i < 49; ++i) {
    for (int j = 0; j < 17; ++j) {
      if ((i * 17 + j) % stride == 0) dirs.push_back({-179.37 + 7.3 * i, -75.13 + 9.3 * j});
    }
  }
  return dirs;
}

// libmysofa's answer for a direction, brought to `rate_hz` the way hrtf.cpp
// documents it: resampled with dsp::resample and scaled by file/server rate,
// Data.Delay (samples at the file's rate, none negative in these sets) as
// leading zeros rounded at the server rate, padded to `frames`.
class Reference {
 public:
  Reference(const std::string& path, double file_rate_hz) : file_rate_hz_(file_rate_hz) {
    int err = 0;
    easy_ = mysofa_open_no_norm(path.c_str(), static_cast<float>(file_rate_hz), &taps_, &err);
    if (easy_ == nullptr) throw std::runtime_error(path + ": libmysofa error " + std::to_string(err));
  }
  ~Reference() { mysofa_close(easy_); }
  Reference(const Reference&) = delete;
  Reference& operator=(const Reference&) = delete;

  // Raw nearest measurement at the file's rate.
  void raw(Direction d, std::vector<float>& left, std::vector<float>& right, float& delay_left,
           float& delay_right) const {
    float c[3] = {static_cast<float>(d.azimuth_deg), static_cast<float>(d.elevation_deg), 1.0f};
    mysofa_s2c(c);
    left.assign(taps_, 0.0f);
    right.assign(taps_, 0.0f);
    mysofa_getfilter_float_nointerp(easy_, c[0], c[1], c[2], left.data(), right.data(), &delay_left,
                                    &delay_right);
  }

  HrirPair at(Direction d, double rate_hz, size_t frames) const {
    std::vector<float> left, right;
    float dl = 0, dr = 0;
    raw(d, left, right, dl, dr);
    return HrirPair{place(left, dl, rate_hz, frames), place(right, dr, rate_hz, frames)};
  }

 private:
  std::vector<float> place(std::vector<float> ir, float delay, double rate_hz, size_t frames) const {
    if (rate_hz != file_rate_hz_) {
      ir = dsp::resample(ir, file_rate_hz_, rate_hz);
      const float gain = static_cast<float>(file_rate_hz_ / rate_hz);
      for (float& v : ir) v *= gain;
    }
    const auto lead = static_cast<size_t>(std::lround(delay * rate_hz / file_rate_hz_));
    std::vector<float> out(frames, 0.0f);
    if (lead + ir.size() > frames) throw std::runtime_error("reference longer than the filter");
    std::copy(ir.begin(), ir.end(), out.begin() + static_cast<std::ptrdiff_t>(lead));
    return out;
  }

  MYSOFA_EASY* easy_ = nullptr;
  int taps_ = 0;
  double file_rate_hz_;
};

void expect_matches_libmysofa(const std::string& path, double file_rate_hz, uint32_t rate_hz,
                              int stride = 1) {
  SCOPED_TRACE(path + " at " + std::to_string(rate_hz) + " Hz");
  const HrtfSet set = HrtfSet::load_sofa(path, rate_hz);
  const Reference ref(path, file_rate_hz);
  ASSERT_EQ(set.rate_hz(), rate_hz);
  int mismatches = 0;
  for (const Direction d : test_directions(stride)) {
    const HrirPair ours = set.filter_for(d);
    const HrirPair theirs = ref.at(d, rate_hz, set.filter_frames());
    ASSERT_EQ(ours.left.size(), set.filter_frames());
    ASSERT_EQ(ours.right.size(), set.filter_frames());
    if (ours.left != theirs.left || ours.right != theirs.right) {
      if (++mismatches <= 5) ADD_FAILURE() << "differs at az " << d.azimuth_deg << " el " << d.elevation_deg;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(HrtfSofa, FhkAt48kIsExactlyLibmysofasNearestMeasurement) {
  expect_matches_libmysofa(kSofaDir + "/FHK_HRIR_L2354.sofa", 48000, 48000);
}

TEST(HrtfSofa, DefaultKemarAtItsRateIsExactlyLibmysofasNearestMeasurement) {
  expect_matches_libmysofa(kDefaultSofa, 44100, 44100);
}

TEST(HrtfSofa, ResampledSetsAreLibmysofasMeasurementResampled) {
  expect_matches_libmysofa(kDefaultSofa, 44100, 48000, 7);
  expect_matches_libmysofa(kSofaDir + "/FHK_HRIR_L2354.sofa", 48000, 96000, 3);
  expect_matches_libmysofa(kSofaDir + "/CIPIC_subject_003_hrir_final_itdInDelayField.sofa", 44100, 48000, 7);
}

TEST(HrtfSofa, FilterLengthAndRateAreReported) {
  const HrtfSet kemar = HrtfSet::load_sofa(kDefaultSofa, 44100);
  EXPECT_EQ(kemar.filter_frames(), 512u);
  EXPECT_EQ(kemar.rate_hz(), 44100u);
  EXPECT_NE(kemar.description().find("MIT KEMAR"), std::string::npos) << kemar.description();
  EXPECT_NE(kemar.description().find("710 directions"), std::string::npos) << kemar.description();
  HrtfSet at48 = HrtfSet::load_sofa(kDefaultSofa, 48000);
  EXPECT_EQ(at48.filter_frames(), static_cast<uint32_t>(std::lround(512 * 48000.0 / 44100.0)));
  // Resampled measurements are kept after first use: asking again gives the same.
  const HrirPair first = at48.filter_for({12, 3});
  const HrirPair again = at48.filter_for({12, 3});
  EXPECT_EQ(first.left, again.left);
  EXPECT_EQ(first.right, again.right);
  const HrtfSet moved = std::move(at48);
  EXPECT_EQ(moved.filter_for({12, 3}).left, first.left);
}

// Index of the first sample reaching `fraction` of the peak.
size_t onset(const std::vector<float>& v, double fraction) {
  float peak = 0;
  for (const float x : v) peak = std::max(peak, std::fabs(x));
  for (size_t i = 0; i < v.size(); ++i) {
    if (std::fabs(v[i]) >= fraction * peak) return i;
  }
  return v.size();
}

// This file is CIPIC subject 3 with part of each response's onset moved out of
// Data.IR into Data.Delay (per measurement and ear; e.g. 9 and 6 samples at
// azimuth 83): dropping the field would shift the ears against each other.
TEST(HrtfSofa, CipicDataDelayBecomesLeadingDelayPerEar) {
  const std::string path = kSofaDir + "/CIPIC_subject_003_hrir_final_itdInDelayField.sofa";
  const Reference ref(path, 44100);
  const HrtfSet set = HrtfSet::load_sofa(path, 44100);
  const HrtfSet at48 = HrtfSet::load_sofa(path, 48000);
  const HrtfSet plain = HrtfSet::load_sofa(kSofaDir + "/CIPIC_subject_003_hrir_final.sofa", 44100);
  for (const double az : {80.3, -79.6, 61.7, -44.2}) {
    SCOPED_TRACE("azimuth " + std::to_string(az));
    std::vector<float> left, right;
    float dl = 0, dr = 0;
    ref.raw({az, 0}, left, right, dl, dr);
    ASSERT_NE(dl, dr);  // lateral: the ears' delays differ
    const auto lead_l = static_cast<size_t>(dl), lead_r = static_cast<size_t>(dr);
    ASSERT_EQ(float(lead_l), dl);  // CIPIC stores whole samples
    ASSERT_EQ(float(lead_r), dr);

    // Each ear starts with exactly its Data.Delay in zeros, then the measurement.
    const HrirPair ours = set.filter_for({az, 0});
    const auto zero = [](float x) { return x == 0; };
    EXPECT_TRUE(std::all_of(ours.left.begin(), ours.left.begin() + lead_l, zero));
    EXPECT_TRUE(std::all_of(ours.right.begin(), ours.right.begin() + lead_r, zero));
    EXPECT_TRUE(std::equal(left.begin(), left.end(), ours.left.begin() + lead_l));
    EXPECT_TRUE(std::equal(right.begin(), right.end(), ours.right.begin() + lead_r));

    // At 48 kHz: the same times, in whole 48 kHz samples (sample-exact placement
    // is checked against libmysofa in ResampledSetsAreLibmysofasMeasurementResampled).
    const HrirPair resampled = at48.filter_for({az, 0});
    const auto zeros48 = [](const std::vector<float>& v) {
      return static_cast<size_t>(std::find_if(v.begin(), v.end(), [](float x) { return x != 0; }) - v.begin());
    };
    EXPECT_GE(zeros48(resampled.left), static_cast<size_t>(std::lround(dl * 48000.0 / 44100.0)));
    EXPECT_GE(zeros48(resampled.right), static_cast<size_t>(std::lround(dr * 48000.0 / 44100.0)));

    // With the delays applied, the interaural onset difference is the one the
    // same subject has with the ITD left inside the responses (to within the
    // sample or two that onset picking on different response shapes allows).
    const HrirPair embedded = plain.filter_for({az, 0});
    const double itd_embedded = double(onset(embedded.right, 0.2)) - double(onset(embedded.left, 0.2));
    const double itd_applied = double(onset(ours.right, 0.2)) - double(onset(ours.left, 0.2));
    const double itd_raw = double(onset(right, 0.2)) - double(onset(left, 0.2));
    EXPECT_NEAR(itd_applied, itd_raw + (dr - dl), 1e-9);
    EXPECT_NEAR(itd_applied, itd_embedded, 2.0);
    EXPECT_GE(std::fabs(itd_applied), 15.0);  // a lateral source: 0.3 ms or more
  }
}

TEST(HrtfSofa, EveryGoodSetLoads) {
  std::vector<std::string> paths{kDefaultSofa};
  for (const auto& entry : fs::directory_iterator(kSofaDir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".sofa") paths.push_back(entry.path().string());
  }
  ASSERT_GE(paths.size(), 8u);
  for (const std::string& path : paths) {
    {
      SCOPED_TRACE(path);
      const HrtfSet set = HrtfSet::load_sofa(path, 48000);  // resampled where the set is 44.1 kHz
      EXPECT_GT(set.filter_frames(), 0u);
      EXPECT_NE(set.description().find("directions"), std::string::npos);
      for (const Direction d : {Direction{0, 0}, Direction{90, 0}, Direction{-135, 30}, Direction{0, -40}}) {
        const HrirPair p = set.filter_for(d);
        ASSERT_EQ(p.left.size(), set.filter_frames());
        ASSERT_EQ(p.right.size(), set.filter_frames());
        EXPECT_TRUE(all_finite(p.left) && all_finite(p.right));
      }
    }
  }
}

// libmysofa's crash-regression corpus: every file is refused with the file and
// a reason, or loads valid data; and this process survives all of them.
TEST(HrtfSofa, BadFilesAreRefusedWithAReasonOrLoadValidData) {
  std::vector<std::string> paths;
  for (const auto& entry : fs::directory_iterator(kSofaDir + "/bad")) paths.push_back(entry.path().string());
  std::sort(paths.begin(), paths.end());
  ASSERT_FALSE(paths.empty());
  for (const std::string& path : paths) {
    SCOPED_TRACE(path);
    std::string error;
    try {
      const HrtfSet set = HrtfSet::load_sofa(path, 48000);
      EXPECT_GT(set.filter_frames(), 0u);
      for (const Direction d : test_directions()) {
        const HrirPair p = set.filter_for(d);
        ASSERT_EQ(p.left.size(), set.filter_frames());
        ASSERT_EQ(p.right.size(), set.filter_frames());
        ASSERT_TRUE(all_finite(p.left) && all_finite(p.right));
      }
      std::cout << "  loads:   " << fs::path(path).filename().string() << ": " << set.description() << "\n";
    } catch (const std::runtime_error& e) {
      error = e.what();
      ASSERT_EQ(error.rfind(path + ": ", 0), 0u) << error;
      EXPECT_GT(error.size(), path.size() + 10) << error;
      std::cout << "  refused: " << error << "\n";
    }
  }
}

TEST(HrtfSofa, GarbageMissingAndDirectoryPathsGiveClearErrors) {
  const TempDir dir;
  const std::string garbage = dir.file("garbage.sofa");
  {
    std::mt19937 rng(42);
    std::ofstream out(garbage, std::ios::binary);
    for (int i = 0; i < 8192; ++i) out.put(static_cast<char>(rng()));
  }
  std::string e = error_of([&] { HrtfSet::load_sofa(garbage, 48000); });
  EXPECT_EQ(e.rfind(garbage + ": ", 0), 0u) << e;
  EXPECT_NE(e.find("libmysofa cannot read it"), std::string::npos) << e;

  e = error_of([&] { HrtfSet::load_hesuvi(garbage, 48000); });
  EXPECT_EQ(e.rfind(garbage + ": ", 0), 0u) << e;
  EXPECT_NE(e.find("libsndfile cannot read it"), std::string::npos) << e;

  const std::string missing = dir.file("missing.sofa");
  for (const std::string& m : {error_of([&] { HrtfSet::load_sofa(missing, 48000); }),
                               error_of([&] { HrtfSet::load_hesuvi(missing, 48000); })}) {
    EXPECT_EQ(m, missing + ": No such file or directory");
  }
  e = error_of([&] { HrtfSet::load_sofa(dir.file(""), 48000); });
  EXPECT_NE(e.find("is a directory"), std::string::npos) << e;
  e = error_of([&] { HrtfSet::load_sofa(kDefaultSofa, 1000); });
  EXPECT_NE(e.find("server rate 1000 Hz"), std::string::npos) << e;
}

// A reader stuck in libmysofa (here: opening a FIFO nobody writes) is killed.
TEST(HrtfSofa, HangingReaderIsKilledAfterTheTimeout) {
  const TempDir dir;
  const std::string fifo = dir.file("stuck.sofa");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  setenv("RACKD_SOFA_TIMEOUT_S", "1", 1);
  const auto start = std::chrono::steady_clock::now();
  const std::string e = error_of([&] { HrtfSet::load_sofa(fifo, 48000); });
  const auto took = std::chrono::steady_clock::now() - start;
  unsetenv("RACKD_SOFA_TIMEOUT_S");
  EXPECT_EQ(e, fifo + ": libmysofa did not finish reading it within 1 s (killed the reader)");
  EXPECT_LT(took, std::chrono::seconds(5));
}

// A reader that crashes (here: sent SIGSEGV while stuck, standing in for a
// libmysofa bug) is reported; this process goes on.
TEST(HrtfSofa, CrashingReaderIsReportedAndTheCallerSurvives) {
  const std::string children =
      "/proc/self/task/" + std::to_string(static_cast<long>(syscall(SYS_gettid))) + "/children";
  if (!std::ifstream(children)) GTEST_SKIP() << "no " << children << " on this kernel";
  const TempDir dir;
  const std::string fifo = dir.file("crash.sofa");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    // The only child of the loading thread is the reader load_sofa forks.
    for (int i = 0; i < 500 && !done; ++i) {
      std::ifstream in(children);
      pid_t pid = 0;
      if (in >> pid && pid > 0) {
        kill(pid, SIGSEGV);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  const std::string e = error_of([&] { HrtfSet::load_sofa(fifo, 48000); });
  done = true;
  watcher.join();
  EXPECT_EQ(e.rfind(fifo + ": libmysofa crashed reading it (signal 11", 0), 0u) << e;
  // And the next load works as usual.
  EXPECT_GT(HrtfSet::load_sofa(kDefaultSofa, 48000).filter_frames(), 0u);
}

// ---- HeSuVi ----

constexpr int kTracks = 14;
constexpr int kHesuviFrames = 300;

// Track k: one impulse at 16 + 9k, amplitude 0.5 + 0.03k.
size_t impulse_at(int track) { return 16 + 9 * static_cast<size_t>(track); }

std::vector<float> track_samples(int track) {
  std::vector<float> v(kHesuviFrames, 0.0f);
  v[impulse_at(track)] = 0.5f + 0.03f * track;
  return v;
}

std::string write_hesuvi(const TempDir& dir, int channels, int rate_hz) {
  const std::string path = dir.file("hesuvi_" + std::to_string(channels) + ".wav");
  SF_INFO info{};
  info.samplerate = rate_hz;
  info.channels = channels;
  info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  if (f == nullptr) throw std::runtime_error(sf_strerror(nullptr));
  std::vector<float> interleaved(static_cast<size_t>(kHesuviFrames) * channels, 0.0f);
  for (int c = 0; c < channels; ++c) {
    const std::vector<float> t = track_samples(c % kTracks);
    for (int i = 0; i < kHesuviFrames; ++i) interleaved[static_cast<size_t>(i) * channels + c] = t[i];
  }
  sf_writef_float(f, interleaved.data(), kHesuviFrames);
  sf_close(f);
  return path;
}

size_t peak_index(const std::vector<float>& v) {
  return static_cast<size_t>(std::max_element(v.begin(), v.end(), [](float a, float b) {
                               return std::fabs(a) < std::fabs(b);
                             }) - v.begin());
}

struct HesuviCase {
  Direction dir;
  int left_track, right_track;
};

// Speaker positions and nearby directions, with the tracks HeSuVi's order
// (FL-L FL-R SL-L SL-R BL-L BL-R FC-L FR-R FR-L SR-R SR-L BR-R BR-L FC-R) gives them.
const HesuviCase kHesuviCases[] = {
    {{30, 0}, 0, 1},    {{-30, 0}, 8, 7},   {{0, 0}, 6, 13},    {{90, 0}, 2, 3},
    {{-90, 0}, 10, 9},  {{150, 0}, 4, 5},   {{-150, 0}, 12, 11}, {{100, 10}, 2, 3},
    {{-170, 0}, 12, 11}, {{5, 80}, 6, 13},  {{40, -20}, 0, 1},   {{-125, 0}, 12, 11},
};

TEST(HrtfHesuvi, EachSpeakerAndEarGetsItsTrackAtTheFilesRate) {
  const TempDir dir;
  const HrtfSet set = HrtfSet::load_hesuvi(write_hesuvi(dir, kTracks, 44100), 44100);
  EXPECT_EQ(set.filter_frames(), static_cast<uint32_t>(kHesuviFrames));
  EXPECT_NE(set.description().find("HeSuVi"), std::string::npos);
  for (const HesuviCase& c : kHesuviCases) {
    SCOPED_TRACE("az " + std::to_string(c.dir.azimuth_deg) + " el " + std::to_string(c.dir.elevation_deg));
    const HrirPair p = set.filter_for(c.dir);
    EXPECT_EQ(p.left, track_samples(c.left_track));
    EXPECT_EQ(p.right, track_samples(c.right_track));
  }
}

TEST(HrtfHesuvi, A44kFileLoadedAt48kIsResampledPerTrack) {
  const TempDir dir;
  const HrtfSet set = HrtfSet::load_hesuvi(write_hesuvi(dir, kTracks, 44100), 48000);
  const auto frames = static_cast<uint32_t>(std::lround(kHesuviFrames * 48000.0 / 44100.0));
  EXPECT_EQ(set.filter_frames(), frames);
  EXPECT_EQ(set.rate_hz(), 48000u);
  for (const HesuviCase& c : kHesuviCases) {
    SCOPED_TRACE("az " + std::to_string(c.dir.azimuth_deg) + " el " + std::to_string(c.dir.elevation_deg));
    const HrirPair p = set.filter_for(c.dir);
    ASSERT_EQ(p.left.size(), frames);
    ASSERT_EQ(p.right.size(), frames);
    // The impulse lands at the same time in 48 kHz samples...
    EXPECT_EQ(peak_index(p.left), static_cast<size_t>(std::lround(impulse_at(c.left_track) * 48000.0 / 44100.0)));
    EXPECT_EQ(peak_index(p.right), static_cast<size_t>(std::lround(impulse_at(c.right_track) * 48000.0 / 44100.0)));
    // ...and is exactly the resampled track, scaled to keep its response.
    for (const auto& [ours, track] : {std::pair{&p.left, c.left_track}, std::pair{&p.right, c.right_track}}) {
      std::vector<float> expected = dsp::resample(track_samples(track), 44100, 48000);
      for (float& v : expected) v *= static_cast<float>(44100.0 / 48000.0);
      EXPECT_EQ(*ours, expected);
    }
  }
}

TEST(HrtfHesuvi, WrongChannelCountIsRefused) {
  const TempDir dir;
  const std::string path = write_hesuvi(dir, 2, 48000);
  const std::string e = error_of([&] { HrtfSet::load_hesuvi(path, 48000); });
  EXPECT_EQ(e.rfind(path + ": 2 channels; a HeSuVi file has 14", 0), 0u) << e;
}

// ---- layouts ----

std::vector<std::string> names(const std::vector<Speaker>& speakers) {
  std::vector<std::string> n;
  for (const Speaker& s : speakers) n.push_back(s.name);
  return n;
}

TEST(HrtfLayout, ChannelOrdersAreTheDocumentedOnes) {
  using V = std::vector<std::string>;
  EXPECT_EQ(names(layout("2.0")), (V{"FL", "FR"}));
  EXPECT_EQ(names(layout("5.1")), (V{"FL", "FR", "FC", "LFE", "SL", "SR"}));
  EXPECT_EQ(names(layout("7.1")), (V{"FL", "FR", "FC", "LFE", "BL", "BR", "SL", "SR"}));
  EXPECT_EQ(names(layout("7.1.4")),
            (V{"FL", "FR", "FC", "LFE", "BL", "BR", "SL", "SR", "TFL", "TFR", "TBL", "TBR"}));
  EXPECT_THROW(layout("9.1.6"), std::invalid_argument);
}

TEST(HrtfLayout, OnlyLfeBypassesAndDirectionsFollowTheConventions) {
  for (const char* name : {"2.0", "5.1", "7.1", "7.1.4"}) {
    for (const Speaker& s : layout(name)) EXPECT_EQ(s.lfe, s.name == "LFE") << name << " " << s.name;
  }
  const auto at = [](const std::vector<Speaker>& l, const std::string& n) {
    return std::find_if(l.begin(), l.end(), [&](const Speaker& s) { return s.name == n; })->dir;
  };
  const std::vector<Speaker> l51 = layout("5.1"), l714 = layout("7.1.4");
  EXPECT_EQ(at(l51, "FL").azimuth_deg, 30);
  EXPECT_EQ(at(l51, "FR").azimuth_deg, -30);
  EXPECT_EQ(at(l51, "SL").azimuth_deg, 110);
  EXPECT_EQ(at(l51, "SR").azimuth_deg, -110);
  EXPECT_EQ(at(l714, "SL").azimuth_deg, 90);
  EXPECT_EQ(at(l714, "BR").azimuth_deg, -150);
  EXPECT_EQ(at(l714, "TFL").azimuth_deg, 45);
  EXPECT_EQ(at(l714, "TBR").azimuth_deg, -135);
  EXPECT_EQ(at(l714, "TBR").elevation_deg, 45);
  EXPECT_EQ(at(l714, "FC").elevation_deg, 0);
}

// ---- rotation ----

void expect_direction(Direction got, double az, double el) {
  EXPECT_NEAR(got.azimuth_deg, az, 1e-9);
  EXPECT_NEAR(got.elevation_deg, el, 1e-9);
}

TEST(HrtfRotate, NoRotationIsIdentity) {
  for (const Direction d : {Direction{0, 0}, Direction{37, 12}, Direction{-150, -30}, Direction{180, 0}}) {
    expect_direction(rotate(d, 0, 0, 0), d.azimuth_deg, d.elevation_deg);
  }
}

TEST(HrtfRotate, TurningLeftMovesSourcesRight) {
  expect_direction(rotate({0, 0}, 90, 0, 0), -90, 0);     // FC ends up on the right
  expect_direction(rotate({0, 0}, -90, 0, 0), 90, 0);
  expect_direction(rotate({30, 0}, 30, 0, 0), 0, 0);      // face FL: it is in front
  expect_direction(rotate({-150, 20}, 60, 0, 0), 150, 20); // wraps, keeps elevation
  expect_direction(rotate({10, 0}, 360, 0, 0), 10, 0);
}

TEST(HrtfRotate, LookingUpLowersSources) {
  expect_direction(rotate({0, 0}, 0, 30, 0), 0, -30);
  expect_direction(rotate({0, 45}, 0, 45, 0), 0, 0);
  expect_direction(rotate({90, 0}, 0, 40, 0), 90, 0);  // on the pitch axis: unmoved
  expect_direction(rotate({180, 0}, 0, 30, 0), 180, 30);
}

TEST(HrtfRotate, RightEarDownPutsLeftBelowAndAboveLeft) {
  expect_direction(rotate({90, 0}, 0, 0, 90), 0, -90);  // left source: under the head
  expect_direction(rotate({0, 90}, 0, 0, 90), 90, 0);   // overhead: at the left ear
  expect_direction(rotate({0, 0}, 0, 0, 70), 0, 0);     // on the roll axis: unmoved
  expect_direction(rotate({-90, 0}, 0, 0, 30), -90, 30);
}

TEST(HrtfRotate, ComposesAsYawThenPitchThenRollAndKeepsAngles) {
  const Direction d{-40, 25};
  const double yaw = 33, pitch = -21, roll = 47;
  const Direction all = rotate(d, yaw, pitch, roll);
  const Direction stepwise = rotate(rotate(rotate(d, yaw, 0, 0), 0, pitch, 0), 0, 0, roll);
  expect_direction(all, stepwise.azimuth_deg, stepwise.elevation_deg);
  const Direction yaws = rotate(rotate(d, 20, 0, 0), 50, 0, 0);
  const Direction once = rotate(d, 70, 0, 0);
  expect_direction(yaws, once.azimuth_deg, once.elevation_deg);
  // A rotation keeps the angle between two sources.
  const auto dot = [](Direction a, Direction b) {
    const double r = std::numbers::pi / 180;
    return std::cos(a.elevation_deg * r) * std::cos(b.elevation_deg * r) *
               std::cos((a.azimuth_deg - b.azimuth_deg) * r) +
           std::sin(a.elevation_deg * r) * std::sin(b.elevation_deg * r);
  };
  const Direction e{100, -10};
  EXPECT_NEAR(dot(d, e), dot(all, rotate(e, yaw, pitch, roll)), 1e-12);
}

}  // namespace
}  // namespace rackd::hrir
