// SOFA files read through libmysofa in a child process, so that a file that
// crashes or hangs libmysofa cannot take the calling module process down.
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
// The child is forked without exec (module binaries have no loader mode to
// exec into). It calls only libmysofa, malloc and write(2) and leaves with
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
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "modules/hrir/hrtf.hpp"

namespace rackd::hrir::sofa_detail {

// Declared again in hrtf.cpp, which validates the values and builds the set.
void read_sofa_isolated(const std::string& path, double& file_rate_hz, uint32_t& taps,
                        std::vector<float>& positions_xyz, std::vector<float>& irs,
                        std::vector<float>& delays, std::string& description);

namespace {

using Clock = std::chrono::steady_clock;

constexpr uint32_t kMagic = 0x464f5352;    // "RSOF": start of the child's answer
constexpr uint32_t kTrailer = 0x21444e45;  // "END!": the answer arrived whole
constexpr uint32_t kMaxMeasurements = 1u << 17;  // real sets: up to ~12k directions
constexpr uint64_t kMaxIrValues = 1ull << 26;    // 256 MB of float taps
constexpr uint32_t kMaxText = 4096;
constexpr int kDefaultTimeoutS = 10;

// The child's answer: this header, text_bytes of text (the reason for a refusal,
// or the set's name), then for ok == 1: positions (measurements x 3, cartesian,
// metres), Data.IR (measurements x 2 x taps), Data.Delay (delay_values), kTrailer.
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

// Loads, checks the structure (every array read below has the size the header
// claims), converts positions to cartesian and streams the numbers to `fd`.
// Values (rate, finiteness, delays) are judged by the caller.
[[noreturn]] void child_main(const char* path, int fd) {
  char text[kMaxText];
  int err = 0;
  MYSOFA_HRTF* h = mysofa_load(path, &err);
  if (h == nullptr || err != MYSOFA_OK) {
    snprintf(text, sizeof text, "libmysofa cannot read it: %s (error %d)", mysofa_error_name(err), err);
    refuse(fd, text);
  }
  if (const int check = mysofa_check(h); check != MYSOFA_OK) {
    snprintf(text, sizeof text, "not a usable SOFA HRIR set: %s (mysofa_check error %d)",
             mysofa_error_name(check), check);
    refuse(fd, text);
  }
  const uint64_t m = h->M, r = h->R, n = h->N;
  if (r != 2) {
    snprintf(text, sizeof text, "%u receivers; need 2 (left and right ear)", h->R);
    refuse(fd, text);
  }
  if (h->C != 3) refuse(fd, "coordinates are not 3-dimensional");
  if (m == 0) refuse(fd, "no measurements (M = 0)");
  if (n == 0) refuse(fd, "filter length 0 (Data.IR has no taps)");
  if (n > HrtfSet::kMaxFilterFrames) {
    snprintf(text, sizeof text, "filter length %u frames exceeds the limit of %u", h->N,
             HrtfSet::kMaxFilterFrames);
    refuse(fd, text);
  }
  if (m > kMaxMeasurements || m * r * n > kMaxIrValues) {
    snprintf(text, sizeof text, "too large: %u measurements x %u taps", h->M, h->N);
    refuse(fd, text);
  }
  if (h->DataIR.values == nullptr || h->DataIR.elements != m * r * n) {
    snprintf(text, sizeof text, "Data.IR holds %u values; M*R*N = %u*%u*%u = %llu", h->DataIR.elements,
             h->M, h->R, h->N, static_cast<unsigned long long>(m * r * n));
    refuse(fd, text);
  }
  if (h->SourcePosition.values == nullptr || h->SourcePosition.elements != m * 3) {
    snprintf(text, sizeof text, "SourcePosition holds %u values; M*3 = %llu", h->SourcePosition.elements,
             static_cast<unsigned long long>(m * 3));
    refuse(fd, text);
  }
  if (h->DataSamplingRate.values == nullptr || h->DataSamplingRate.elements != 1) {
    refuse(fd, "Data.SamplingRate is not a single value");
  }
  const uint64_t delays = h->DataDelay.elements;
  if ((delays != r && delays != m * r) || h->DataDelay.values == nullptr) {
    snprintf(text, sizeof text, "Data.Delay holds %u values; need R = 2 or M*R = %llu", h->DataDelay.elements,
             static_cast<unsigned long long>(m * r));
    refuse(fd, text);
  }
  mysofa_tocartesian(h);
  // libmysofa's own lookup refuses anything else (mysofa_lookup_init).
  if (strcmp(attribute(h->SourcePosition.attributes, "Type"), "cartesian") != 0) {
    refuse(fd, "SourcePosition is neither spherical nor cartesian");
  }

  snprintf(text, sizeof text, "%s %s", attribute(h->attributes, "DatabaseName"),
           attribute(h->attributes, "ListenerShortName"));
  Header header;
  header.ok = 1;
  header.measurements = h->M;
  header.taps = h->N;
  header.delay_values = h->DataDelay.elements;
  header.text_bytes = static_cast<uint32_t>(strnlen(text, kMaxText));
  header.rate_hz = h->DataSamplingRate.values[0];
  write_all(fd, &header, sizeof header);
  write_all(fd, text, header.text_bytes);
  write_all(fd, h->SourcePosition.values, m * 3 * sizeof(float));
  write_all(fd, h->DataIR.values, m * r * n * sizeof(float));
  write_all(fd, h->DataDelay.values, delays * sizeof(float));
  write_all(fd, &kTrailer, sizeof kTrailer);
  _exit(0);  // no mysofa_free: nothing of the child outlives it anyway
}

// ---- caller side ----

std::runtime_error fail(const std::string& path, const std::string& reason) {
  return std::runtime_error(path + ": " + reason);
}

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

  // Kills the child on timeout, reaps it, and says why it gave no full answer.
  std::string why_no_answer(Read result) {
    if (result == Read::kTimeout) {
      kill(pid_, SIGKILL);
      reap();
      return "libmysofa did not finish reading it within " + std::to_string(timeout_s()) +
             " s (killed the reader)";
    }
    // On end of file the child is exiting; after a read error (which a pipe
    // does not produce in practice) it is not left running either.
    if (result == Read::kError) kill(pid_, SIGKILL);
    const int status = reap();
    if (status >= 0 && WIFSIGNALED(status)) {
      const int sig = WTERMSIG(status);
      return "libmysofa crashed reading it (signal " + std::to_string(sig) + ", " + strsignal(sig) + ")";
    }
    if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) != 0) {
      return "the reader process failed (exit status " + std::to_string(WEXITSTATUS(status)) + ")";
    }
    return "the reader process ended without a complete answer";
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
};

template <typename T>
Read read_vector(int fd, std::vector<T>& v, size_t count, Clock::time_point deadline) {
  v.resize(count);
  return read_exact(fd, v.data(), count * sizeof(T), deadline);
}

}  // namespace

void read_sofa_isolated(const std::string& path, double& file_rate_hz, uint32_t& taps,
                        std::vector<float>& positions_xyz, std::vector<float>& irs,
                        std::vector<float>& delays, std::string& description) {
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

  Header header;
  Read got = read_exact(child.fd(), &header, sizeof header, deadline);
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
  if ((got = read_vector(child.fd(), positions_xyz, m * 3, deadline)) != Read::kOk ||
      (got = read_vector(child.fd(), irs, m * 2 * n, deadline)) != Read::kOk ||
      (got = read_vector(child.fd(), delays, header.delay_values, deadline)) != Read::kOk ||
      (got = read_exact(child.fd(), &trailer, sizeof trailer, deadline)) != Read::kOk) {
    throw fail(path, child.why_no_answer(got));
  }
  if (trailer != kTrailer) throw fail(path, "the reader process sent a malformed answer");
  if (!child.exited_cleanly()) throw fail(path, "the reader process failed after answering");

  file_rate_hz = header.rate_hz;
  taps = header.taps;
  description = std::move(text);
}

}  // namespace rackd::hrir::sofa_detail
