// Tests for the libhdf5 fallback of the SOFA reader (sofa_source.cpp,
// sofa_hdf5.cpp): valid HDF5 files libmysofa 1.3.1 refuses, written here with
// the HDF5 C API (tests/modules/sofa_writer.cpp) into a scratch directory, load
// with the exact responses written; truncated, corrupted and non-conforming
// files are refused with both readers' reasons. libmysofa runs in this test
// process on these generated files only, to prove that it refuses them.
// [setup]/[control] code, tested from the main thread.
#include <gtest/gtest.h>
#include <mysofa.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "modules/hrir/hrtf.hpp"
#include "tests/modules/sofa_writer.hpp"

namespace rackd::hrir {
namespace {

namespace fs = std::filesystem;
using test::SofaWriteOptions;

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("sofa_fallback_test_" + std::to_string(getpid()))) {
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::string error_of(const std::string& path) {
  try {
    HrtfSet::load_sofa(path, 48000);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

// libmysofa's own verdict on a file (MYSOFA_OK when it reads it).
int libmysofa_error(const std::string& path) {
  int err = 0;
  MYSOFA_HRTF* h = mysofa_load(path.c_str(), &err);
  if (h != nullptr) mysofa_free(h);
  return err;
}

SofaWriteOptions chunked(uint32_t measurements, uint32_t chunk_measurements) {
  SofaWriteOptions o;
  o.measurements = measurements;
  o.chunked = true;
  o.chunk_measurements = chunk_measurements;
  o.deflate_level = 1;
  return o;
}

SofaWriteOptions latest(uint32_t measurements) {
  SofaWriteOptions o;
  o.measurements = measurements;
  o.latest_format = true;
  return o;
}

// What filter_for must return for measurement m at the file's rate: Data.Delay
// in zeros, the taps written, zeros up to the set's filter length.
std::vector<float> expected_ear(uint32_t m, int ear, uint32_t taps, uint32_t frames) {
  std::vector<float> v(frames, 0.0f);
  const auto lead = static_cast<uint32_t>(test::sofa_delay(m, ear));
  for (uint32_t t = 0; t < taps; ++t) v[lead + t] = test::sofa_tap(m, ear, t);
  return v;
}

// What triggers the refusal, each beside the nearest file libmysofa reads:
// 64 chunks read and 65 do not (a two-level chunk B-tree); chunks must be
// deflated; HDF5's newest format (data layout message version 4) is refused.
// And chunks deflated without shuffle are "read" into scrambled values: those
// go to libhdf5 too, and every tap comes back as written.
TEST(HrtfSofaFallback, WhatLibmysofa131RefusesOrMisreadsGoesToLibhdf5) {
  const TempDir dir;
  enum Verdict { kReads, kRefuses, kMisreads };
  struct Case {
    const char* name;
    SofaWriteOptions options;
    Verdict libmysofa;
  };
  SofaWriteOptions undeflated = chunked(2000, 64);
  undeflated.deflate_level = 0;
  SofaWriteOptions unshuffled = chunked(2000, 64);
  unshuffled.shuffle = false;
  const Case cases[] = {
      {"64 chunks, shuffled and deflated", chunked(64, 1), kReads},
      {"65 chunks, shuffled and deflated", chunked(65, 1), kRefuses},
      {"2000 directions, contiguous", SofaWriteOptions{}, kReads},
      {"2000 directions, 32 chunks, shuffled and deflated", chunked(2000, 64), kReads},
      {"2000 directions, 32 chunks, shuffled, not deflated", undeflated, kRefuses},
      {"2000 directions, 32 chunks, deflated, not shuffled", unshuffled, kMisreads},
      {"2000 directions, contiguous, libver latest", latest(2000), kRefuses},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir.file("case.sofa");
    test::write_sofa(path, c.options);
    int err = 0;
    MYSOFA_HRTF* h = mysofa_load(path.c_str(), &err);
    EXPECT_EQ(err, c.libmysofa == kRefuses ? MYSOFA_INVALID_FORMAT : MYSOFA_OK);
    if (h != nullptr) {
      ASSERT_EQ(h->DataIR.elements, h->M * h->R * h->N);
      EXPECT_EQ(h->DataIR.values[1] == test::sofa_tap(0, 0, 1), c.libmysofa == kReads);
      mysofa_free(h);
    }
    const HrtfSet set = HrtfSet::load_sofa(path, 48000);  // either way
    const bool fallback = set.description().find("read with libhdf5") != std::string::npos;
    EXPECT_EQ(fallback, c.libmysofa != kReads) << set.description();
    const uint32_t frames = c.options.taps + 7;
    ASSERT_EQ(set.filter_frames(), frames);
    for (const uint32_t m : {0u, c.options.measurements / 2, c.options.measurements - 1}) {
      Direction d;
      test::sofa_direction(m, c.options.measurements, d.azimuth_deg, d.elevation_deg);
      EXPECT_EQ(set.filter_for(d).left, expected_ear(m, 0, c.options.taps, frames)) << m;
    }
    std::cout << "  " << c.name << ": " << set.description() << "\n";
  }
}

// A large set as netCDF-4 writes one (chunked, deflated: 1,250 chunks here):
// libmysofa refuses it, libhdf5 reads it, and every direction measured comes
// back bit-exact with its own Data.Delay.
TEST(HrtfSofaFallback, LargeChunkedSetLoadsWithTheExactResponsesWritten) {
  const TempDir dir;
  const std::string path = dir.file("large.sofa");
  const SofaWriteOptions o = chunked(20000, 16);
  test::write_sofa(path, o);
  ASSERT_EQ(libmysofa_error(path), MYSOFA_INVALID_FORMAT);

  const HrtfSet set = HrtfSet::load_sofa(path, 48000);
  EXPECT_NE(set.description().find("20000 directions"), std::string::npos) << set.description();
  EXPECT_NE(set.description().find("read with libhdf5"), std::string::npos) << set.description();
  const uint32_t frames = o.taps + 7;  // the longest Data.Delay written is 7 samples
  ASSERT_EQ(set.filter_frames(), frames);
  for (const uint32_t m : {0u, 1u, 777u, 4321u, 10000u, 12345u, 19998u, 19999u}) {
    SCOPED_TRACE("measurement " + std::to_string(m));
    Direction d;
    test::sofa_direction(m, o.measurements, d.azimuth_deg, d.elevation_deg);
    const HrirPair p = set.filter_for(d);
    EXPECT_EQ(p.left, expected_ear(m, 0, o.taps, frames));
    EXPECT_EQ(p.right, expected_ear(m, 1, o.taps, frames));
  }
}

// The same set read by either library gives the same filter for every
// direction: positions are converted to cartesian exactly as libmysofa does.
TEST(HrtfSofaFallback, EitherReaderGivesTheSameFilters) {
  const TempDir dir;
  SofaWriteOptions plain;
  plain.measurements = 3000;
  const std::string by_mysofa = dir.file("contiguous.sofa");
  const std::string by_hdf5 = dir.file("chunked.sofa");
  test::write_sofa(by_mysofa, plain);
  test::write_sofa(by_hdf5, chunked(3000, 1));
  ASSERT_EQ(libmysofa_error(by_mysofa), MYSOFA_OK);
  ASSERT_EQ(libmysofa_error(by_hdf5), MYSOFA_INVALID_FORMAT);
  for (const uint32_t rate_hz : {48000u, 44100u}) {
    SCOPED_TRACE(rate_hz);
    const HrtfSet a = HrtfSet::load_sofa(by_mysofa, rate_hz);
    const HrtfSet b = HrtfSet::load_sofa(by_hdf5, rate_hz);
    ASSERT_EQ(a.filter_frames(), b.filter_frames());
    int mismatches = 0;
    const int stride = rate_hz == 48000 ? 1 : 15;  // resampling costs ~1 ms per filter
    int k = 0;
    for (double az = -179.37; az < 180; az += 7.3) {
      for (double el = -85.13; el < 90; el += 9.3) {
        if (k++ % stride != 0) continue;
        const HrirPair pa = a.filter_for({az, el});
        const HrirPair pb = b.filter_for({az, el});
        if ((pa.left != pb.left || pa.right != pb.right) && ++mismatches <= 5) {
          ADD_FAILURE() << "differs at az " << az << " el " << el;
        }
      }
    }
    EXPECT_EQ(mismatches, 0);
  }
}

// A file libhdf5 cannot read either is refused with both reasons.
TEST(HrtfSofaFallback, TruncatedAndCorruptedHdf5FilesAreRefusedWithBothReasons) {
  const TempDir dir;
  const std::string whole = dir.file("whole.sofa");
  test::write_sofa(whole, chunked(2000, 1));
  const auto size = fs::file_size(whole);

  const std::string truncated = dir.file("truncated.sofa");
  fs::copy_file(whole, truncated);
  fs::resize_file(truncated, size * 3 / 5);

  // Garbage over the middle of Data.IR's deflated chunks (the bulk of the file).
  const std::string corrupted = dir.file("corrupted.sofa");
  fs::copy_file(whole, corrupted);
  {
    std::fstream f(corrupted, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2));
    const std::string junk(64 * 1024, '\xa5');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }

  for (const std::string& path : {truncated, corrupted}) {
    SCOPED_TRACE(path);
    const std::string e = error_of(path);
    std::cout << "  refused: " << e << "\n";
    EXPECT_EQ(e.rfind(path + ": libmysofa cannot read it: ", 0), 0u) << e;
    const size_t hdf5 = e.find("; libhdf5 cannot read it either: ");
    ASSERT_NE(hdf5, std::string::npos) << e;
    EXPECT_GT(e.size(), hdf5 + 40) << e;  // and says why
  }
  EXPECT_NE(error_of(truncated).find("cannot open it"), std::string::npos);
  EXPECT_NE(error_of(corrupted).find("cannot read Data.IR"), std::string::npos);
}

// libhdf5's answer is judged like libmysofa's: conventions, and then values.
TEST(HrtfSofaFallback, WhatLibhdf5ReadsIsValidatedLikeLibmysofasAnswer) {
  const TempDir dir;
  const std::string path = dir.file("set.sofa");

  SofaWriteOptions other = latest(50);
  other.sofa_conventions = "SimpleFreeFieldSOS";
  test::write_sofa(path, other);
  std::string e = error_of(path);
  EXPECT_NE(e.find("libhdf5 cannot read it either: not a SOFA SimpleFreeFieldHRIR set"), std::string::npos) << e;

  SofaWriteOptions poisoned = latest(50);
  poisoned.nan_measurement = 17;
  test::write_sofa(path, poisoned);
  e = error_of(path);
  EXPECT_EQ(e, path + ": Data.IR holds a non-finite value (measurement 17)");

  SofaWriteOptions slow = latest(50);
  slow.rate_hz = 1000;
  test::write_sofa(path, slow);
  e = error_of(path);
  EXPECT_EQ(e, path + ": sampling rate 1000 Hz is outside 8000..384000 Hz");
}

// Only HDF5 files get the second reader: anything else keeps libmysofa's word.
TEST(HrtfSofaFallback, AFileThatIsNotHdf5IsRefusedByLibmysofaAlone) {
  const TempDir dir;
  const std::string path = dir.file("text.sofa");
  std::ofstream(path) << std::string(4096, 'x');
  const std::string e = error_of(path);
  EXPECT_EQ(e.rfind(path + ": libmysofa cannot read it: ", 0), 0u) << e;
  EXPECT_EQ(e.find("libhdf5"), std::string::npos) << e;
}

}  // namespace
}  // namespace rackd::hrir
