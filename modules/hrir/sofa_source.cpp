// SOFA files read through libmysofa in a child process, so that a file that
// crashes or hangs libmysofa cannot take the calling module process down; in
// the same child, libhdf5 reads valid HDF5 files libmysofa refuses
// (sofa_hdf5.cpp says which, and why).
// [setup]/[control] threads only: forks, allocates, blocks up to a timeout.
//
// Why a child, and why libmysofa never runs in the caller at all: libmysofa's
// HDF5 reader has a long CVE history (its own crash corpus is in shared/sofa/bad)
// and Debian's 1.3.1 still returns structurally broken sets (filter length 0,
// Data.IR holding more or fewer values than M*R*N, absurd rates). Loading once
// in a child "to see if it survives" and then again in-process would still run
// the parser on untrusted bytes in the caller, where a heap overflow that
// happened not to crash the child can crash later (different heap layout, the
// file changing in between). So the child does all of libmysofa's work
// (mysofa_load, mysofa_check, mysofa_tocartesian), checks that every array it
// is about to read has the size the header claims, and streams plain numbers
// through a pipe; the caller only reads bounded, size-checked arrays and never
// links its fate to the parser. The nearest-measurement search that libmysofa
// would do with its kd-tree is reproduced exactly in hrtf.cpp (same float
// distances, same radius clamping).
//
// libhdf5 gets a file only when libmysofa refused it and the file carries an
// HDF5 signature; a file that is not HDF5 is refused with libmysofa's reason
// as before. What libhdf5 returns takes the same path as libmysofa's answer:
// the same size checks here, the same value checks in hrtf.cpp. A refusal by
// both names both reasons.
//
// The child is forked without exec (module binaries have no loader mode to
// exec into). It calls only libmysofa, libhdf5, malloc and write(2) and leaves with
// _exit(), never returning into the caller's code: glibc resets its malloc and
// stdio locks in the child, so this is safe even when other threads of the
// caller held them at fork time. It dies with its parent (PR_SET_PDEATHSIG),
// writes no core file, and is killed after the timeout (default 10 s, or
// RACKD_SOFA_TIMEOUT_S seconds: real sets load in well under a second).
#include <fcntl.h>
#include <mysofa.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "modules/hrir/sofa_source.hpp"

#include "modules/hrir/hrtf.hpp"
#include "modules/hrir/sofa_hdf5.hpp"

namespace rackd::hrir::sofa_detail {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint32_t kMagic = 0x464f5352;    // "RSOF": start of the child's answer
constexpr uint32_t kTrailer = 0x21444e45;  // "END!": the answer arrived whole
constexpr uint32_t kStageMagic = 0x35444848;  // "HHD5": libhdf5 takes over
constexpr uint32_t kMaxMeasurements = 1u << 17;  // real sets: up to ~12k directions; generated ones 40k+
constexpr uint64_t kMaxIrValues = 1ull << 26;    // 256 MB of float taps
constexpr uint32_t kMaxText = 4096;
constexpr int kDefaultTimeoutS = 10;

// The child's answer: optionally {kStageMagic, bytes} and that many bytes of
// libmysofa's refusal (libhdf5 reads the file from then on); then this header,
// text_bytes of text (the reason for a refusal, or the set's name), then for
// ok == 1: positions (measurements x 3, cartesian, metres), Data.IR
// (measurements x 2 x taps), Data.Delay (delay_values), kTrailer.
struct Header {
  uint32_t magic = kMagic;
  uint32_t ok = 0;
  uint32_t measurements = 0;
  uint32_t taps = 0;
  uint32_t delay_values = 0;  // 2 (per ear, every measurement) or 2 x measurements
  uint32_t text_bytes = 0;
  double rate_hz = 0;
};

// ---- child side: no exceptions, no return ----

void write_all(int fd, const void* data, size_t bytes) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = write(fd, p, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(3);  // the caller went away
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

[[noreturn]] void answer(int fd, const Header& header, const char* text) {
  write_all(fd, &header, sizeof header);
  write_all(fd, text, header.text_bytes);
  _exit(0);
}

[[noreturn]] void refuse(int fd, const char* text) {
  Header h;
  h.text_bytes = static_cast<uint32_t>(strnlen(text, kMaxText));
  answer(fd, h, text);
}

const char* mysofa_error_name(int err) {
  switch (err) {
    case MYSOFA_INTERNAL_ERROR: return "libmysofa internal error";
    case MYSOFA_INVALID_FORMAT: return "not a SOFA/HDF5 file libmysofa can parse (invalid format)";
    case MYSOFA_UNSUPPORTED_FORMAT: return "unsupported HDF5 feature";
    case MYSOFA_NO_MEMORY: return "out of memory";
    case MYSOFA_READ_ERROR: return "read error";
    case MYSOFA_INVALID_ATTRIBUTES: return "missing or invalid SOFA attributes (not SimpleFreeFieldHRIR?)";
    case MYSOFA_INVALID_DIMENSIONS: return "invalid dimensions";
    case MYSOFA_INVALID_DIMENSION_LIST: return "invalid dimension list";
    case MYSOFA_INVALID_COORDINATE_TYPE: return "invalid coordinate type";
    case MYSOFA_ONLY_EMITTER_WITH_ECI_SUPPORTED: return "only emitters with ECI supported";
    case MYSOFA_ONLY_DELAYS_WITH_IR_OR_MR_SUPPORTED: return "Data.Delay must have dimensions IR or MR";
    case MYSOFA_ONLY_THE_SAME_SAMPLING_RATE_SUPPORTED: return "only one sampling rate supported";
    case MYSOFA_RECEIVERS_WITH_RCI_SUPPORTED: return "only receivers with RCI supported";
    case MYSOFA_RECEIVERS_WITH_CARTESIAN_SUPPORTED: return "only cartesian receivers supported";
    case MYSOFA_INVALID_RECEIVER_POSITIONS: return "invalid receiver positions";
    case MYSOFA_ONLY_SOURCES_WITH_MC_SUPPORTED: return "only sources with MC supported";
    default: return err > 0 && err < 1000 ? strerror(err) : "unknown libmysofa error";
  }
}

const char* attribute(MYSOFA_ATTRIBUTE* list, const char* name) {
  for (; list != nullptr; list = list->next) {
    if (list->name != nullptr && list->value != nullptr && strcmp(list->name, name) == 0) {
      return list->value;
    }
  }
  return "";
}

// The numbers a reader found, before they go down the pipe. Every size is what
// the file claims; send_set() checks that each array holds that many values.
struct Found {
  uint64_t m = 0, r = 0, n = 0, c = 0;
  const float* positions = nullptr;  // cartesian
  uint64_t position_values = 0;
  const float* irs = nullptr;
  uint64_t ir_values = 0;
  uint64_t rate_values = 0;  // elements of Data.SamplingRate
  double rate_hz = 0;        // its first
  const float* delays = nullptr;
  uint64_t delay_values = 0;
  const char* name = "";
};

// Checks the structure of what a reader found (every array read below has the
// size the header claims) and streams the numbers to `fd`. Values (rate,
// finiteness, delays) are judged by the caller.
[[noreturn]] void send_set(int fd, const Found& f) {
  char text[kMaxText];
  const uint64_t m = f.m, r = f.r, n = f.n;
  const auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  if (r != 2) {
    snprintf(text, sizeof text, "%llu receivers; need 2 (left and right ear)", u(r));
    refuse(fd, text);
  }
  if (f.c != 3) refuse(fd, "coordinates are not 3-dimensional");
  if (m == 0) refuse(fd, "no measurements (M = 0)");
  if (n == 0) refuse(fd, "filter length 0 (Data.IR has no taps)");
  if (n > HrtfSet::kMaxFilterFrames) {
    snprintf(text, sizeof text, "filter length %llu frames exceeds the limit of %u", u(n),
             HrtfSet::kMaxFilterFrames);
    refuse(fd, text);
  }
  if (m > kMaxMeasurements || m * r * n > kMaxIrValues) {
    snprintf(text, sizeof text, "too large: %llu measurements x %llu taps", u(m), u(n));
    refuse(fd, text);
  }
  if (f.irs == nullptr || f.ir_values != m * r * n) {
    snprintf(text, sizeof text, "Data.IR holds %llu values; M*R*N = %llu*%llu*%llu = %llu", u(f.ir_values), u(m),
             u(r), u(n), u(m * r * n));
    refuse(fd, text);
  }
  if (f.positions == nullptr || f.position_values != m * 3) {
    snprintf(text, sizeof text, "SourcePosition holds %llu values; M*3 = %llu", u(f.position_values), u(m * 3));
    refuse(fd, text);
  }
  if (f.rate_values != 1) refuse(fd, "Data.SamplingRate is not a single value");
  if ((f.delay_values != r && f.delay_values != m * r) || f.delays == nullptr) {
    snprintf(text, sizeof text, "Data.Delay holds %llu values; need R = 2 or M*R = %llu", u(f.delay_values),
             u(m * r));
    refuse(fd, text);
  }

  Header header;
  header.ok = 1;
  header.measurements = static_cast<uint32_t>(m);
  header.taps = static_cast<uint32_t>(n);
  header.delay_values = static_cast<uint32_t>(f.delay_values);
  header.text_bytes = static_cast<uint32_t>(strnlen(f.name, kMaxText));
  header.rate_hz = f.rate_hz;
  write_all(fd, &header, sizeof header);
  write_all(fd, f.name, header.text_bytes);
  write_all(fd, f.positions, m * 3 * sizeof(float));
  write_all(fd, f.irs, m * r * n * sizeof(float));
  write_all(fd, f.delays, f.delay_values * sizeof(float));
  write_all(fd, &kTrailer, sizeof kTrailer);
  _exit(0);  // no mysofa_free: nothing of the child outlives it anyway
}

// libmysofa refused (or misreads) a valid HDF5 file: tell the caller (so that a crash or a
// timeout from here on is put on libhdf5, with libmysofa's reason beside it),
// then read it with libhdf5.
[[noreturn]] void read_with_libhdf5(const char* path, int fd, const char* mysofa_refusal) {
  const uint32_t stage[2] = {kStageMagic, static_cast<uint32_t>(strnlen(mysofa_refusal, kMaxText))};
  write_all(fd, stage, sizeof stage);
  write_all(fd, mysofa_refusal, stage[1]);
  char reason[kMaxText / 2];
  static Hdf5Sofa set;  // static: the child never returns, so nothing is ever destroyed
  if (!read_sofa_hdf5(path, kMaxMeasurements, HrtfSet::kMaxFilterFrames, kMaxIrValues, set, reason,
                      sizeof reason)) {
    char text[kMaxText];
    snprintf(text, sizeof text, "%.1024s; libhdf5 cannot read it either: %.2048s", mysofa_refusal, reason);
    refuse(fd, text);
  }
  Found f;
  f.m = set.measurements;
  f.r = set.receivers;
  f.n = set.taps;
  f.c = 3;  // SourcePosition was checked to be [M][3]
  f.positions = set.positions_xyz.data();
  f.position_values = set.positions_xyz.size();
  f.irs = set.irs.data();
  f.ir_values = set.irs.size();
  f.rate_values = set.rate_values;
  f.rate_hz = set.rate_hz;
  f.delays = set.delays.data();
  f.delay_values = set.delays.size();
  f.name = set.name.c_str();
  send_set(fd, f);
}

// libmysofa first; libhdf5 for valid HDF5 files libmysofa cannot parse, or
// parses into wrong values (see libmysofa_misreads).
[[noreturn]] void child_main(const char* path, int fd) {
  char text[kMaxText];
  int err = 0;
  MYSOFA_HRTF* h = mysofa_load(path, &err);
  if (h == nullptr || err != MYSOFA_OK) {
    snprintf(text, sizeof text, "libmysofa cannot read it: %s (error %d)", mysofa_error_name(err), err);
    if (is_hdf5(path)) read_with_libhdf5(path, fd, text);
    refuse(fd, text);
  }
  if (is_hdf5(path) && libmysofa_misreads(path, text, sizeof text)) read_with_libhdf5(path, fd, text);
  if (const int check = mysofa_check(h); check != MYSOFA_OK) {
    snprintf(text, sizeof text, "not a usable SOFA HRIR set: %s (mysofa_check error %d)",
             mysofa_error_name(check), check);
    refuse(fd, text);
  }
  mysofa_tocartesian(h);
  // libmysofa's own lookup refuses anything else (mysofa_lookup_init).
  if (strcmp(attribute(h->SourcePosition.attributes, "Type"), "cartesian") != 0) {
    refuse(fd, "SourcePosition is neither spherical nor cartesian");
  }
  snprintf(text, sizeof text, "%s %s", attribute(h->attributes, "DatabaseName"),
           attribute(h->attributes, "ListenerShortName"));
  Found f;
  f.m = h->M;
  f.r = h->R;
  f.n = h->N;
  f.c = h->C;
  f.positions = h->SourcePosition.values;
  f.position_values = h->SourcePosition.elements;
  f.irs = h->DataIR.values;
  f.ir_values = h->DataIR.elements;
  if (h->DataSamplingRate.values != nullptr && h->DataSamplingRate.elements > 0) {
    f.rate_values = h->DataSamplingRate.elements;
    f.rate_hz = h->DataSamplingRate.values[0];
  }
  f.delays = h->DataDelay.values;
  f.delay_values = h->DataDelay.elements;
  f.name = text;
  send_set(fd, f);
}

// ---- caller side ----

int timeout_s() {
  if (const char* s = std::getenv("RACKD_SOFA_TIMEOUT_S")) {
    const int v = std::atoi(s);
    if (v > 0 && v <= 3600) return v;
  }
  return kDefaultTimeoutS;
}

enum class Read { kOk, kEof, kTimeout, kError };

Read read_exact(int fd, void* dst, size_t bytes, Clock::time_point deadline) {
  char* p = static_cast<char*>(dst);
  while (bytes > 0) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Read::kTimeout;
    pollfd pfd{fd, POLLIN, 0};
    const int ready = poll(&pfd, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Read::kError;
    if (ready == 0) return Read::kTimeout;
    const ssize_t n = read(fd, p, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Read::kError;
    if (n == 0) return Read::kEof;
    p += n;
    bytes -= static_cast<size_t>(n);
  }
  return Read::kOk;
}

// Owns the child and the read end of its pipe: whatever way the caller leaves,
// the child is killed (if still running) and reaped, and the pipe is closed.
// Signals go to our own unreaped child only: module processes reap children
// by pid (never waitpid(-1)), so its pid cannot have been reused meanwhile.
class Child {
 public:
  Child(pid_t pid, int fd) : pid_(pid), fd_(fd) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    close(fd_);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      reap();
    }
  }
  int fd() const { return fd_; }

  // The child said libmysofa refused the file (`refusal`) and libhdf5 reads it now.
  void hand_over_to_libhdf5(std::string refusal) {
    reader_ = "libhdf5";
    before_ = std::move(refusal) + "; ";
  }

  // Kills the child on timeout, reaps it, and says why it gave no full answer.
  std::string why_no_answer(Read result) {
    if (result == Read::kTimeout) {
      kill(pid_, SIGKILL);
      reap();
      return before_ + reader_ + " did not finish reading it within " + std::to_string(timeout_s()) +
             " s (killed the reader)";
    }
    // On end of file the child is exiting; after a read error (which a pipe
    // does not produce in practice) it is not left running either.
    if (result == Read::kError) kill(pid_, SIGKILL);
    const int status = reap();
    if (status >= 0 && WIFSIGNALED(status)) {
      const int sig = WTERMSIG(status);
      return before_ + reader_ + " crashed reading it (signal " + std::to_string(sig) + ", " + strsignal(sig) +
             ")";
    }
    if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) != 0) {
      return before_ + "the reader process failed (exit status " + std::to_string(WEXITSTATUS(status)) + ")";
    }
    return before_ + "the reader process ended without a complete answer";
  }

  // After a complete answer: the child has only _exit() left to do.
  bool exited_cleanly() {
    const int status = reap();
    // -1: no status to be had (the caller ignores SIGCHLD, or a handler of its
    // own reaped the child); the trailer vouches for the answer.
    return status == -1 || (WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }

 private:
  // Exit status, or -1 when it cannot be had (already reaped, or SIGCHLD ignored).
  int reap() {
    if (pid_ <= 0) return -1;
    int status = 0;
    pid_t r;
    do {
      r = waitpid(pid_, &status, 0);
    } while (r < 0 && errno == EINTR);
    pid_ = -1;
    return r < 0 ? -1 : status;
  }

  pid_t pid_;
  int fd_;
  std::string reader_ = "libmysofa";  // the one at work, for crashes and timeouts
  std::string before_;                // libmysofa's refusal, once libhdf5 took over
};

template <typename T>
Read read_vector(int fd, std::vector<T>& v, size_t count, Clock::time_point deadline) {
  v.resize(count);
  return read_exact(fd, v.data(), count * sizeof(T), deadline);
}

}  // namespace

SofaNumbers read_sofa_isolated(const std::string& path) {
  // Checked here so that the common mistakes get the system's own words.
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) throw fail(path, strerror(errno));
  if (S_ISDIR(st.st_mode)) throw fail(path, "is a directory, not a SOFA file");
  if (access(path.c_str(), R_OK) != 0) throw fail(path, strerror(errno));

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw fail(path, std::string("pipe: ") + strerror(errno));
  const int limit_s = timeout_s();
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    const int e = errno;
    close(fds[0]);
    close(fds[1]);
    throw fail(path, std::string("fork: ") + strerror(e));
  }
  if (pid == 0) {
    // Keep only stdio and the answer pipe (as fd 3): without exec, the child
    // would otherwise hold every descriptor of the caller, including the write
    // ends of readers forked concurrently by other threads (delaying their EOF).
    close(fds[0]);
    if (fds[1] != 3 && dup2(fds[1], 3) != 3) _exit(5);
    close_range(4, ~0u, 0);
    // The caller's signal handlers (a crash reporter, a shutdown flag) are not
    // the child's business: a crash must end the child and show as a signal.
    for (const int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS, SIGTERM, SIGINT,
                          SIGHUP, SIGPIPE}) {
      signal(sig, SIG_DFL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(4);  // the parent died before prctl took effect
    const rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    const rlimit cpu{static_cast<rlim_t>(limit_s + 5), static_cast<rlim_t>(limit_s + 5)};
    setrlimit(RLIMIT_CPU, &cpu);  // backstop should the parent stop watching
    child_main(path.c_str(), 3);
  }
  close(fds[1]);
  Child child(pid, fds[0]);
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(limit_s);

  SofaNumbers out;
  Header header;
  Read got = read_exact(child.fd(), &header.magic, sizeof header.magic, deadline);
  if (got != Read::kOk) throw fail(path, child.why_no_answer(got));
  if (header.magic == kStageMagic) {
    uint32_t bytes = 0;
    got = read_exact(child.fd(), &bytes, sizeof bytes, deadline);
    if (got != Read::kOk) throw fail(path, child.why_no_answer(got));
    if (bytes > kMaxText) throw fail(path, "the reader process sent a malformed answer");
    out.libmysofa_refusal.resize(bytes);
    got = read_exact(child.fd(), out.libmysofa_refusal.data(), bytes, deadline);
    if (got != Read::kOk) throw fail(path, child.why_no_answer(got));
    child.hand_over_to_libhdf5(out.libmysofa_refusal);
    got = read_exact(child.fd(), &header.magic, sizeof header.magic, deadline);
    if (got != Read::kOk) throw fail(path, child.why_no_answer(got));
  }
  static_assert(offsetof(Header, magic) == 0);
  got = read_exact(child.fd(), reinterpret_cast<char*>(&header) + sizeof header.magic,
                   sizeof header - sizeof header.magic, deadline);
  if (got != Read::kOk) throw fail(path, child.why_no_answer(got));
  if (header.magic != kMagic || header.text_bytes > kMaxText) {
    throw fail(path, "the reader process sent a malformed answer");
  }
  std::string text(header.text_bytes, '\0');
  got = read_exact(child.fd(), text.data(), text.size(), deadline);
  if (got != Read::kOk) throw fail(path, child.why_no_answer(got));
  if (header.ok == 0) throw fail(path, text);

  // The child checked these; checked again so that no answer can make us allocate wildly.
  const uint64_t m = header.measurements;
  const uint64_t n = header.taps;
  if (m == 0 || m > kMaxMeasurements || n == 0 || n > HrtfSet::kMaxFilterFrames ||
      m * 2 * n > kMaxIrValues || (header.delay_values != 2 && header.delay_values != 2 * m)) {
    throw fail(path, "the reader process sent inconsistent sizes");
  }
  uint32_t trailer = 0;
  if ((got = read_vector(child.fd(), out.positions_xyz, m * 3, deadline)) != Read::kOk ||
      (got = read_vector(child.fd(), out.irs, m * 2 * n, deadline)) != Read::kOk ||
      (got = read_vector(child.fd(), out.delays, header.delay_values, deadline)) != Read::kOk ||
      (got = read_exact(child.fd(), &trailer, sizeof trailer, deadline)) != Read::kOk) {
    throw fail(path, child.why_no_answer(got));
  }
  if (trailer != kTrailer) throw fail(path, "the reader process sent a malformed answer");
  if (!child.exited_cleanly()) throw fail(path, "the reader process failed after answering");

  out.file_rate_hz = header.rate_hz;
  out.taps = header.taps;
  out.name = std::move(text);
  return out;
}

}  // namespace rackd::hrir::sofa_detail
