// Reads the reports librtcount.so (tests/rtcount/rtcount.cpp) writes into
// records for tests. Header-only; test threads only, allocates freely.
//
// librtcount.so's report: if RACKD_RTCOUNT_DIR is set,
// $RACKD_RTCOUNT_DIR/<pid>.txt, rewritten atomically (temp file + rename) every 200 ms while something changed, on
// normal exit (library destructor) and on a default-disposition SIGTERM/SIGINT.
// SIGKILL loses at most the last 200 ms. Format, one record per line, fields
// `key=value` separated by single spaces, `#` lines are comments:
//   # rtcount v1
//   comm=<process name from /proc/self/comm>
//   notifications=<syscalls of filtered threads the listener saw, in or out of rt>
//   lost_threads=<threads that entered rt after the thread table was full>
//   tid=<tid> sections=<n> allocs=<n> frees=<n> syscalls=<n>
//       first_syscalls=<nr,nr,...> seccomp=<own|inherited|off>
//       malloc=<n> calloc=<n> realloc=<n> memalign=<n> new=<n> free=<n> delete=<n>
// (the tid record is one line). One tid line per thread that ever entered a
// real-time section. sections counts outermost sections; allocs = malloc +
// calloc + realloc (+ reallocarray) + memalign (aligned_alloc, posix_memalign,
// memalign, valloc, pvalloc) + new (every operator new); frees = free + delete
// (non-null pointers only). syscalls counts system calls made inside sections;
// first_syscalls lists the first 8 distinct numbers (x86_64 numbering, see
// <sys/syscall.h>). seccomp says whether syscalls were counted for the thread:
// own = its own filter, inherited = a filter inherited from the thread that
// created it (same listener, so still counted), off = not counted (syscalls=0
// means nothing then).
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace rackd::rtcount {

// One thread that entered a real-time section.
struct ThreadRecord {
  pid_t tid = 0;
  uint64_t sections = 0;                  // outermost sections entered
  uint64_t allocs = 0;                    // allocator calls inside sections (malloc ... operator new)
  uint64_t frees = 0;                     // free/delete of non-null pointers inside sections
  uint64_t syscalls = 0;                  // syscalls other than futex inside sections
  std::vector<int> first_syscalls;        // first distinct syscall numbers, in order seen
  std::string seccomp;                    // "own" | "inherited" (counted) | "off" (syscalls not counted)
  std::map<std::string, uint64_t> kinds;  // malloc, calloc, realloc, memalign, new, free, delete

  bool syscalls_counted() const { return seccomp == "own" || seccomp == "inherited"; }
  bool clean() const { return allocs == 0 && frees == 0 && syscalls == 0; }
  uint64_t kind(const std::string& k) const {
    auto it = kinds.find(k);
    return it == kinds.end() ? 0 : it->second;
  }
  bool saw_syscall(int nr) const {
    return std::find(first_syscalls.begin(), first_syscalls.end(), nr) != first_syscalls.end();
  }
};

// One preloaded process (one <pid>.txt).
struct ProcessRecord {
  pid_t pid = 0;
  std::string comm;
  uint64_t notifications = 0;  // syscalls of filtered threads seen, in or out of rt
  uint64_t lost_threads = 0;   // rt threads the fixed table had no room for
  std::vector<ThreadRecord> threads;

  bool clean() const {
    return lost_threads == 0 &&
           std::all_of(threads.begin(), threads.end(), [](const ThreadRecord& t) { return t.clean(); });
  }
};

namespace detail {

inline std::map<std::string, std::string> fields(const std::string& line) {
  std::map<std::string, std::string> out;
  std::istringstream in(line);
  std::string tok;
  while (in >> tok) {
    auto eq = tok.find('=');
    if (eq != std::string::npos) out[tok.substr(0, eq)] = tok.substr(eq + 1);
  }
  return out;
}

inline uint64_t num(const std::map<std::string, std::string>& f, const char* key) {
  auto it = f.find(key);
  return it == f.end() ? 0 : std::strtoull(it->second.c_str(), nullptr, 10);
}

}  // namespace detail

// Parses one report file; the pid comes from its name.
inline ProcessRecord read_report(const std::filesystem::path& file) {
  ProcessRecord p;
  p.pid = static_cast<pid_t>(std::strtol(file.stem().c_str(), nullptr, 10));
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto f = detail::fields(line);
    if (f.count("tid")) {
      ThreadRecord t;
      t.tid = static_cast<pid_t>(detail::num(f, "tid"));
      t.sections = detail::num(f, "sections");
      t.allocs = detail::num(f, "allocs");
      t.frees = detail::num(f, "frees");
      t.syscalls = detail::num(f, "syscalls");
      t.seccomp = f.count("seccomp") ? f["seccomp"] : "off";
      std::istringstream nrs(f["first_syscalls"]);
      std::string nr;
      while (std::getline(nrs, nr, ','))
        if (!nr.empty()) t.first_syscalls.push_back(std::atoi(nr.c_str()));
      for (const char* k : {"malloc", "calloc", "realloc", "memalign", "new", "free", "delete"})
        t.kinds[k] = detail::num(f, k);
      p.threads.push_back(std::move(t));
    } else if (f.count("comm")) {
      p.comm = f["comm"];
    } else if (f.count("notifications")) {
      p.notifications = detail::num(f, "notifications");
    } else if (f.count("lost_threads")) {
      p.lost_threads = detail::num(f, "lost_threads");
    }
  }
  return p;
}

// Every <pid>.txt in `dir` (temp files start with '.' and end in .tmp), by pid.
inline std::vector<ProcessRecord> read_reports(const std::filesystem::path& dir) {
  std::vector<ProcessRecord> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const auto& path = e.path();
    if (path.extension() == ".txt" && path.filename().string()[0] != '.') out.push_back(read_report(path));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.pid < b.pid; });
  return out;
}

// Name of an x86_64 syscall number for messages; the number itself elsewhere.
inline std::string syscall_name(int nr) {
#if defined(__x86_64__)
  // clang-format off
  static const std::map<int, const char*> names = {
      {0, "read"}, {1, "write"}, {2, "open"}, {3, "close"}, {7, "poll"}, {9, "mmap"}, {10, "mprotect"},
      {11, "munmap"}, {12, "brk"}, {13, "rt_sigaction"}, {14, "rt_sigprocmask"}, {16, "ioctl"}, {17, "pread64"},
      {18, "pwrite64"}, {20, "writev"}, {23, "select"}, {24, "sched_yield"}, {25, "mremap"}, {28, "madvise"},
      {34, "pause"}, {35, "nanosleep"}, {39, "getpid"}, {44, "sendto"}, {45, "recvfrom"}, {46, "sendmsg"},
      {47, "recvmsg"}, {56, "clone"}, {61, "wait4"}, {62, "kill"}, {72, "fcntl"}, {74, "fsync"}, {110, "getppid"},
      {186, "gettid"}, {200, "tkill"}, {202, "futex"}, {228, "clock_gettime"}, {230, "clock_nanosleep"},
      {232, "epoll_wait"}, {234, "tgkill"}, {257, "openat"}, {270, "pselect6"}, {271, "ppoll"}, {281, "epoll_pwait"},
      {284, "eventfd"}, {290, "eventfd2"}, {318, "getrandom"}, {435, "clone3"}, {449, "futex_waitv"},
  };
  // clang-format on
  auto it = names.find(nr);
  if (it != names.end()) return std::string(it->second) + "(" + std::to_string(nr) + ")";
#endif
  return std::to_string(nr);
}

// Human-readable summary: one line per process, one per thread that broke the
// rules (or every thread with `verbose`).
inline std::string summary(const std::vector<ProcessRecord>& procs, bool verbose = false) {
  std::ostringstream o;
  for (const auto& p : procs) {
    uint64_t sections = 0;
    for (const auto& t : p.threads) sections += t.sections;
    o << "pid " << p.pid << " (" << p.comm << "): " << p.threads.size() << " rt thread(s), " << sections
      << " section(s)" << (p.clean() ? ", clean" : ", VIOLATIONS");
    if (p.lost_threads) o << ", " << p.lost_threads << " thread(s) not tracked";
    o << "\n";
    for (const auto& t : p.threads) {
      if (!verbose && t.clean() && t.syscalls_counted()) continue;
      o << "  tid " << t.tid << ": sections=" << t.sections << " allocs=" << t.allocs << " frees=" << t.frees
        << " syscalls=" << t.syscalls;
      if (!t.first_syscalls.empty()) {
        o << " [";
        for (size_t i = 0; i < t.first_syscalls.size(); ++i) o << (i ? " " : "") << syscall_name(t.first_syscalls[i]);
        o << "]";
      }
      if (!t.syscalls_counted()) o << " (syscalls not counted: seccomp=" << t.seccomp << ")";
      o << "\n";
    }
  }
  if (procs.empty()) o << "no rtcount reports\n";
  return o.str();
}

}  // namespace rackd::rtcount
