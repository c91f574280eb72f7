// AudioReader/AudioWriter over libsndfile, and default_format_for(). Used at
// [setup] and from the offline driver's own thread, one thread per object; never
// on the live device path (they allocate, block on disk and throw).
//
// Sample paths, chosen so PCM -> float -> PCM of the same width is bit-exact:
//   PCM (and every other non-float subtype): sf_readf_int gives samples
//     left-justified in int32; x * 2^-31 is exact in float for <= 24 bits.
//     Writing: clamp to [-1, 1], round to the stored width (see stored_bits),
//     clip to the largest code, left-justify and sf_writef_int. For samples
//     that came from a same-width read this is exactly llrint(x * 2^31).
//   FLOAT/DOUBLE: sf_readf_float / sf_writef_float. For float files libsndfile
//     neither normalises nor clips, so values (including |x| > 1) pass as is.
#include "server/audio_file.hpp"

#include <fcntl.h>
#include <sndfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace rackd::server {

namespace {

// The server's graph never carries more channels than this per stream; a file
// with more is almost certainly not meant for us, so say so up front rather
// than allocating huge interleave buffers.
constexpr uint32_t kMaxChannels = 32;

constexpr float kIntToFloat = 1.0f / 2147483648.0f;  // 2^-31

bool is_float_subtype(int sndfile_format) {
  const int subtype = sndfile_format & SF_FORMAT_SUBMASK;
  return subtype == SF_FORMAT_FLOAT || subtype == SF_FORMAT_DOUBLE;
}

[[noreturn]] void fail(const std::string& path, const std::string& reason) {
  throw std::runtime_error(path + ": " + reason);
}

// "FLAC (Free Lossless Audio Codec) / 32 bit float (0x170006)", so an unwritable format is
// recognisable without looking up SF_FORMAT_* values by hand.
std::string describe_format(int sndfile_format) {
  auto name_of = [](int value) -> std::string {
    SF_FORMAT_INFO info{};
    info.format = value;
    if (sf_command(nullptr, SFC_GET_FORMAT_INFO, &info, sizeof(info)) != 0 || info.name == nullptr) {
      return "unknown";
    }
    return info.name;
  };
  char hex[16];
  std::snprintf(hex, sizeof(hex), "0x%06x", static_cast<unsigned>(sndfile_format));
  return name_of(sndfile_format & SF_FORMAT_TYPEMASK) + " / " +
         name_of(sndfile_format & SF_FORMAT_SUBMASK) + " (" + hex + ")";
}

// Bits that survive in the file for the PCM subtypes. libsndfile narrows the
// int32 we hand it with a plain arithmetic shift (floor, not round), so to
// round at the width that is actually stored we round there ourselves. For
// values that came from a same-width read this equals llrint(x * 2^31).
int stored_bits(int sndfile_format) {
  switch (sndfile_format & SF_FORMAT_SUBMASK) {
    case SF_FORMAT_PCM_S8:
    case SF_FORMAT_PCM_U8: return 8;
    case SF_FORMAT_PCM_16: return 16;
    case SF_FORMAT_PCM_24: return 24;
    default: return 32;
  }
}

int32_t float_to_int32(float x, int bits) {
  // NaN would make llrint unspecified; silence is the least surprising output.
  if (std::isnan(x)) return 0;
  const long long full_scale = 1LL << (bits - 1);
  const double scaled =
      std::clamp(static_cast<double>(x), -1.0, 1.0) * static_cast<double>(full_scale);
  // +1.0 scales to full_scale, one past the largest code, hence the clamp.
  const long long rounded = std::clamp(std::llrint(scaled), -full_scale, full_scale - 1);
  return static_cast<int32_t>(rounded * (1LL << (32 - bits)));
}

// WriteMode::kReplaceOnClose: where the output goes until close(), and what
// close() renames it over.
struct Replacement {
  std::string temp;    // empty: write `path` in place
  std::string target;
};

// Creates the temporary beside what `path` names (see WriteMode), exclusively,
// with the mode of the file it will replace (a new one: 0666 less the umask).
Replacement create_temporary(const std::string& path) {
  namespace fs = std::filesystem;
  Replacement r;
  r.target = path;
  struct stat st{};
  bool replaces = false;
  if (stat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) return {};
    replaces = true;
    std::error_code ec;
    if (fs::is_symlink(path, ec)) r.target = fs::canonical(path).string();
  } else if (errno != ENOENT) {
    fail(path, strerror(errno));
  } else if (struct stat lst{}; lstat(path.c_str(), &lst) == 0) {
    return {};  // a dangling symlink: writing creates its target
  }
  const fs::path target(r.target);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  static constexpr char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device seed;
  std::mt19937 rng(seed());
  std::uniform_int_distribution<std::size_t> pick(0, sizeof kChars - 2);
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string name = "." + target.filename().string() + ".rackd-";
    for (int i = 0; i < 6; ++i) name += kChars[pick(rng)];
    r.temp = (dir / name).string();
    const int fd = open(r.temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, replaces ? 0600 : 0666);
    if (fd < 0 && errno == EEXIST) continue;
    if (fd < 0) fail(path, "cannot create a temporary file in " + dir.string() + ": " + strerror(errno));
    if (replaces) (void)fchmod(fd, st.st_mode & 07777);
    ::close(fd);
    return r;
  }
  fail(path, "cannot find a free temporary name in " + dir.string());
}

}  // namespace

// ---------------------------------------------------------------------------

struct AudioReader::Impl {
  std::string path_;
  SNDFILE* file_ = nullptr;
  bool float_path_ = false;
  uint32_t channels_ = 0;
  // Interleaved staging, sized on first read() for the largest `frames` asked
  // so far (only one of the two is ever used). Callers that always read the
  // same block size allocate exactly once, on their first read.
  std::vector<int32_t> ints_;
  std::vector<float> floats_;

  ~Impl() {
    if (file_ != nullptr) sf_close(file_);
  }
};

AudioReader::AudioReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->path_ = path;
  SF_INFO info{};
  impl_->file_ = sf_open(path.c_str(), SFM_READ, &info);
  if (impl_->file_ == nullptr) fail(path, sf_strerror(nullptr));

  // Impl's destructor closes the file if any of these throw.
  if (info.channels <= 0) fail(path, "file has no channels");
  if (static_cast<uint32_t>(info.channels) > kMaxChannels) {
    fail(path, "file has " + std::to_string(info.channels) + " channels; at most " +
                   std::to_string(kMaxChannels) + " are supported");
  }
  if (info.samplerate <= 0) fail(path, "file has no sample rate");
  if (info.frames < 0) fail(path, "file length is unknown");

  format_.rate_hz = static_cast<uint32_t>(info.samplerate);
  format_.channels = static_cast<uint32_t>(info.channels);
  format_.sndfile_format = info.format;
  frames_ = static_cast<uint64_t>(info.frames);
  impl_->channels_ = format_.channels;
  impl_->float_path_ = is_float_subtype(info.format);
}

AudioReader::~AudioReader() = default;

uint32_t AudioReader::read(float* const* out, uint32_t frames) {
  Impl& im = *impl_;
  if (frames == 0) return 0;
  const uint32_t channels = im.channels_;
  const size_t samples = static_cast<size_t>(frames) * channels;

  // libsndfile may return short counts before the end (it does not promise
  // otherwise), so keep reading until the block is full or it returns 0.
  uint32_t done = 0;
  if (im.float_path_) {
    if (im.floats_.size() < samples) im.floats_.resize(samples);
    while (done < frames) {
      const sf_count_t n = sf_readf_float(im.file_, im.floats_.data() + size_t{done} * channels,
                                          frames - done);
      if (n <= 0) break;
      done += static_cast<uint32_t>(n);
    }
  } else {
    if (im.ints_.size() < samples) im.ints_.resize(samples);
    static_assert(sizeof(int) == sizeof(int32_t));
    while (done < frames) {
      const sf_count_t n =
          sf_readf_int(im.file_, reinterpret_cast<int*>(im.ints_.data()) + size_t{done} * channels,
                       frames - done);
      if (n <= 0) break;
      done += static_cast<uint32_t>(n);
    }
  }
  // End of file leaves the error at 0; anything else is a real read failure
  // (truncated FLAC, I/O error) that must not pass as a clean end.
  if (done < frames && sf_error(im.file_) != SF_ERR_NO_ERROR) {
    fail(im.path_, std::string("read failed: ") + sf_strerror(im.file_));
  }

  for (uint32_t c = 0; c < channels; ++c) {
    float* dst = out[c];
    if (im.float_path_) {
      const float* src = im.floats_.data() + c;
      for (uint32_t i = 0; i < done; ++i) dst[i] = src[size_t{i} * channels];
    } else {
      const int32_t* src = im.ints_.data() + c;
      for (uint32_t i = 0; i < done; ++i) {
        dst[i] = static_cast<float>(src[size_t{i} * channels]) * kIntToFloat;
      }
    }
  }
  return done;
}

// ---------------------------------------------------------------------------

struct AudioWriter::Impl {
  std::string path_;
  SNDFILE* file_ = nullptr;
  bool float_path_ = false;
  int stored_bits_ = 32;
  uint32_t channels_ = 0;
  Replacement replace_;  // kReplaceOnClose: the temporary, until close() renames it
  // Interleaved staging, sized on first write() for the largest `frames` seen.
  std::vector<int32_t> ints_;
  std::vector<float> floats_;

  void discard() {
    if (!replace_.temp.empty()) unlink(replace_.temp.c_str());
    replace_.temp.clear();
  }
  ~Impl() {
    if (file_ != nullptr) sf_close(file_);
    discard();
  }
};

AudioWriter::AudioWriter(const std::string& path, const AudioFormat& format, WriteMode mode)
    : impl_(std::make_unique<Impl>()), format_(format) {
  impl_->path_ = path;
  if (format.channels == 0) fail(path, "cannot write a file with 0 channels");
  if (format.channels > kMaxChannels) {
    fail(path, "cannot write " + std::to_string(format.channels) + " channels; at most " +
                   std::to_string(kMaxChannels) + " are supported");
  }
  if (format.rate_hz == 0 ||
      format.rate_hz > static_cast<uint32_t>(std::numeric_limits<int>::max())) {
    fail(path, "invalid sample rate " + std::to_string(format.rate_hz) + " Hz");
  }

  SF_INFO info{};
  info.samplerate = static_cast<int>(format.rate_hz);
  info.channels = static_cast<int>(format.channels);
  info.format = format.sndfile_format;
  // Checked before sf_open so a bad combination (say FLAC + float) fails with
  // the format named and no empty file left behind.
  if (!sf_format_check(&info)) {
    fail(path, "libsndfile cannot write format " + describe_format(format.sndfile_format) +
                   " at " + std::to_string(format.rate_hz) + " Hz with " +
                   std::to_string(format.channels) + " channels");
  }

  if (mode == WriteMode::kReplaceOnClose) impl_->replace_ = create_temporary(path);
  const std::string& open_path = impl_->replace_.temp.empty() ? path : impl_->replace_.temp;
  impl_->file_ = sf_open(open_path.c_str(), SFM_WRITE, &info);
  if (impl_->file_ == nullptr) fail(path, sf_strerror(nullptr));  // ~Impl removes the temporary
  impl_->channels_ = format.channels;
  impl_->float_path_ = is_float_subtype(format.sndfile_format);
  impl_->stored_bits_ = stored_bits(format.sndfile_format);
  if (impl_->float_path_) {
    // Clipping is already off by default; state it so a later libsndfile
    // default cannot silently start limiting float output to [-1, 1].
    sf_command(impl_->file_, SFC_SET_CLIPPING, nullptr, SF_FALSE);
  }
}

AudioWriter::~AudioWriter() = default;  // Impl closes without throwing

void AudioWriter::write(const float* const* in, uint32_t frames) {
  Impl& im = *impl_;
  if (im.file_ == nullptr) fail(im.path_, "write after close");
  if (frames == 0) return;
  const uint32_t channels = im.channels_;
  const size_t samples = static_cast<size_t>(frames) * channels;

  sf_count_t written = 0;
  if (im.float_path_) {
    if (im.floats_.size() < samples) im.floats_.resize(samples);
    for (uint32_t c = 0; c < channels; ++c) {
      const float* src = in[c];
      float* dst = im.floats_.data() + c;
      for (uint32_t i = 0; i < frames; ++i) dst[size_t{i} * channels] = src[i];
    }
    written = sf_writef_float(im.file_, im.floats_.data(), frames);
  } else {
    if (im.ints_.size() < samples) im.ints_.resize(samples);
    for (uint32_t c = 0; c < channels; ++c) {
      const float* src = in[c];
      int32_t* dst = im.ints_.data() + c;
      for (uint32_t i = 0; i < frames; ++i) {
        dst[size_t{i} * channels] = float_to_int32(src[i], im.stored_bits_);
      }
    }
    written = sf_writef_int(im.file_, reinterpret_cast<const int*>(im.ints_.data()), frames);
  }
  if (written != static_cast<sf_count_t>(frames)) {
    fail(im.path_, "short write (" + std::to_string(written) + " of " + std::to_string(frames) +
                       " frames): " + sf_strerror(im.file_));
  }
}

// Note: libsndfile (1.2.0) starts a FLAC stream only on the first write, so a
// FLAC writer closed without any frames leaves a 0-byte, unreadable file.
void AudioWriter::close() {
  Impl& im = *impl_;
  if (im.file_ == nullptr) return;
  // Forget the handle first: sf_close frees it even when it reports an error.
  SNDFILE* file = im.file_;
  im.file_ = nullptr;
  const int err = sf_close(file);
  if (err != 0) {
    im.discard();
    fail(im.path_, std::string("close failed: ") + sf_error_number(err));
  }
  if (im.replace_.temp.empty()) return;
  if (rename(im.replace_.temp.c_str(), im.replace_.target.c_str()) != 0) {
    const int e = errno;
    im.discard();
    fail(im.path_, std::string("cannot put the output in place: ") + strerror(e));
  }
  im.replace_.temp.clear();
}

// ---------------------------------------------------------------------------

int default_format_for(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  if (ext == ".wav") return SF_FORMAT_WAV | SF_FORMAT_FLOAT;
  if (ext == ".flac") return SF_FORMAT_FLAC | SF_FORMAT_PCM_24;
  if (ext == ".aif" || ext == ".aiff") return SF_FORMAT_AIFF | SF_FORMAT_PCM_24;
  fail(path, "unknown output format (use .wav, .flac or .aiff)");
}

}  // namespace rackd::server
