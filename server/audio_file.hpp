// Sound files for the offline driver (libsndfile: WAV, FLAC, ...). [setup] and
// the offline driver's own thread; not used on the live device path.
//
// Bit-exactness: PCM input is read as left-justified int32 and scaled by 2^-31,
// which is exact in float32 for 8/16/24-bit samples; writing scales back by 2^31
// with rounding and clipping, so PCM -> float -> PCM of the same width returns
// the same samples. Float files are read and written as float.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace rackd::server {

struct AudioFormat {
  uint32_t rate_hz = 48000;
  uint32_t channels = 2;
  int sndfile_format = 0;   // SF_FORMAT_* container | subtype, as libsndfile reports it
};

class AudioReader {
 public:
  // [setup] Throws std::runtime_error("path: reason").
  explicit AudioReader(const std::string& path);
  ~AudioReader();
  AudioReader(const AudioReader&) = delete;
  AudioReader& operator=(const AudioReader&) = delete;

  const AudioFormat& format() const { return format_; }
  uint64_t frames() const { return frames_; }

  // Reads up to `frames` frames into planar out[channel][frame] (out has
  // format().channels channels with room for `frames`). Returns frames read
  // (0 at the end). Allocation-free after construction for frames <= max_frames.
  uint32_t read(float* const* out, uint32_t frames);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  AudioFormat format_;
  uint64_t frames_ = 0;
};

// How an AudioWriter treats `path`.
enum class WriteMode {
  kInPlace,          // create (or truncate) `path` and write it
  // Write a temporary file beside `path` (".<name>.rackd-XXXXXX", created
  // exclusively) and rename it over `path` in close(): until then `path` is
  // untouched, and a writer destroyed without close() removes the temporary.
  // A symlink at `path` has its target replaced, with the old file's mode.
  // A `path` that exists and is no regular file (a FIFO, /dev/stdout) is
  // written in place.
  kReplaceOnClose,
};

class AudioWriter {
 public:
  // [setup] Creates `path` with `format` (rate, channels, container|subtype).
  // Throws std::runtime_error("path: reason").
  AudioWriter(const std::string& path, const AudioFormat& format, WriteMode mode = WriteMode::kInPlace);
  ~AudioWriter();  // in place: closes and flushes; kReplaceOnClose: removes the unclosed temporary
  AudioWriter(const AudioWriter&) = delete;
  AudioWriter& operator=(const AudioWriter&) = delete;

  // Writes `frames` frames from planar in[channel][frame]. Throws on I/O error.
  void write(const float* const* in, uint32_t frames);
  // Flush and close now (kReplaceOnClose: then rename over `path`). Throws on
  // error; kReplaceOnClose then removes the temporary and leaves `path` as it was.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  AudioFormat format_;
};

// [setup] The default format for an output path when there is no input file to
// copy it from: by extension, .wav -> float32 WAV, .flac -> 24-bit FLAC,
// .aiff -> 24-bit AIFF; otherwise throws.
int default_format_for(const std::string& path);

}  // namespace rackd::server
