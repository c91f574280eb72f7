// Integration test harness: processes, dummy JACK, sound files, JSON lookup.
#include "tests/integration/harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sndfile.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <atomic>
#include <cstring>
#include <thread>

extern char** environ;

namespace rackd::test {
namespace fs = std::filesystem;

std::string bin(const std::string& name) { return std::string(RACKD_BIN_DIR) + "/" + name; }
std::string source(const std::string& path) { return std::string(RACKD_SOURCE_DIR) + "/" + path; }

namespace {

struct TempRoot {
  std::string path;
  TempRoot() {
    std::string t = (fs::temp_directory_path() / "rackd-it-XXXXXX").string();
    path = mkdtemp(t.data());
  }
  ~TempRoot() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};
TempRoot& root() {
  static TempRoot r;
  return r;
}

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& out,
            const std::string& err) {
  std::vector<char*> a;
  for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  // An entry of `env` replaces the inherited variable of the same name (getenv
  // returns the first match, so appending alone would not override it).
  auto overridden = [&env](const char* kv) {
    const char* eq = std::strchr(kv, '=');
    const size_t n = eq ? static_cast<size_t>(eq - kv) + 1 : std::strlen(kv);
    for (const auto& o : env)
      if (o.compare(0, n, kv, n) == 0) return true;
    return false;
  };
  std::vector<std::string> e_store;
  for (char** e = environ; *e; ++e)
    if (!overridden(*e)) e_store.emplace_back(*e);
  // Every rackd started by a test takes any free OSC port unless the test says
  // otherwise, so tests (and a rackd the developer is running) never collide.
  e_store.emplace_back("RACKD_OSC_PORT=0");
  for (const auto& kv : env) e_store.push_back(kv);
  std::vector<char*> e;
  for (auto& s : e_store) e.push_back(s.data());
  e.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, a[0], &fa, nullptr, a.data(), e.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("cannot start " + argv[0]);
  return pid;
}

int decode(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

}  // namespace

std::string temp_dir() {
  static int n = 0;
  std::string d = root().path + "/" + std::to_string(++n);
  fs::create_directories(d);
  return d;
}

Process::Process(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  std::string d = temp_dir();
  out_path_ = d + "/stdout";
  err_path_ = d + "/stderr";
  pid_ = spawn(argv, env, out_path_, err_path_);
}

bool has_rtsan_report(const std::string& text) {
  return text.find("ERROR: RealtimeSanitizer") != std::string::npos;
}

Process::~Process() {
  if (!reaped_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (!allow_rtsan_) {
    const std::string e = err();
    if (has_rtsan_report(e)) ADD_FAILURE() << "RealtimeSanitizer report from " << pid_ << ":\n" << e;
  }
}

void Process::signal(int sig) {
  if (!reaped_) kill(pid_, sig);
}

int Process::wait(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      return decode(status);
    }
    if (std::chrono::steady_clock::now() >= until) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string Process::out() const { return slurp(out_path_); }
std::string Process::err() const { return slurp(err_path_); }

Result run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout, const std::vector<std::string>& env) {
  Process p(argv, env);
  Result r;
  r.status = p.wait(timeout);
  if (r.status == -1) {
    p.signal(SIGKILL);
    p.wait(std::chrono::seconds(5));
  }
  r.out = p.out();
  r.err = p.err();
  return r;
}

std::string comm_of(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
  std::string c;
  std::getline(f, c);
  return c;
}

bool running(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return false;
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

std::vector<pid_t> children(pid_t pid, const std::string& prefix) {
  std::vector<pid_t> kids;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string n = e.path().filename().string();
    if (n.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream f(e.path() / "stat");
    std::string line;
    std::getline(f, line);
    auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state;
    pid_t ppid;
    rest >> state >> ppid;
    if (ppid != pid) continue;
    pid_t child = static_cast<pid_t>(std::stol(n));
    if (comm_of(child).rfind(prefix, 0) != 0) continue;
    // Module discovery asks each module executable `--describe` at patch
    // load: those short-lived processes are not module processes.
    std::ifstream cmd(e.path() / "cmdline");
    const std::string args((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
    // (A zombie, described or not, has an empty command line: not a module either.)
    if (state == 'Z' || args.empty() || args.find(std::string("--describe") + '\0') != std::string::npos) continue;
    kids.push_back(child);
  }
  return kids;
}

DummyJack::DummyJack(int rate, int period) {
  static int n = 0;
  name_ = "rackd-test-" + std::to_string(getpid()) + "-" + std::to_string(++n);
  log_path_ = temp_dir() + "/jackd.log";
  pid_ = spawn({"/usr/bin/jackd", "-n", name_, "-d", "dummy", "-r", std::to_string(rate), "-p", std::to_string(period)},
               {}, log_path_, log_path_ + ".err");
  // Ready once a client can connect: jack_lsp exits 0.
  for (int i = 0; i < 100 && !ready_; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    Result r = run({"/usr/bin/jack_lsp"}, std::chrono::seconds(5), env());
    ready_ = r.status == 0;
  }
}

DummyJack::~DummyJack() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    for (int i = 0; i < 200; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::vector<std::string> DummyJack::env() const {
  return {"JACK_DEFAULT_SERVER=" + name_, "JACK_NO_START_SERVER=1"};
}

std::string DummyJack::log() const { return slurp(log_path_) + slurp(log_path_ + ".err"); }

void write_audio(const std::string& path, const Audio& a) {
  SF_INFO info{};
  info.samplerate = a.rate;
  info.channels = static_cast<int>(a.ch.size());
  info.format = a.format;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  if (!f) throw std::runtime_error(path + ": " + sf_strerror(nullptr));
  std::vector<float> inter(a.frames() * a.ch.size());
  for (size_t i = 0; i < a.frames(); ++i)
    for (size_t c = 0; c < a.ch.size(); ++c) inter[i * a.ch.size() + c] = a.ch[c][i];
  sf_writef_float(f, inter.data(), static_cast<sf_count_t>(a.frames()));
  sf_close(f);
}

Audio read_audio(const std::string& path) {
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  if (!f) throw std::runtime_error(path + ": " + sf_strerror(nullptr));
  Audio a;
  a.rate = info.samplerate;
  a.format = info.format;
  std::vector<float> inter(static_cast<size_t>(info.frames * info.channels));
  sf_readf_float(f, inter.data(), info.frames);
  sf_close(f);
  a.ch.assign(static_cast<size_t>(info.channels), std::vector<float>(static_cast<size_t>(info.frames)));
  for (sf_count_t i = 0; i < info.frames; ++i)
    for (int c = 0; c < info.channels; ++c) a.ch[c][i] = inter[static_cast<size_t>(i * info.channels + c)];
  return a;
}

std::vector<int> read_raw_ints(const std::string& path) {
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  if (!f) throw std::runtime_error(path + ": " + sf_strerror(nullptr));
  std::vector<int> v(static_cast<size_t>(info.frames * info.channels));
  sf_readf_int(f, v.data(), info.frames);
  sf_close(f);
  return v;
}

namespace {
std::string scope(const std::string& json, const std::string& module) {
  if (module.empty()) return json;
  auto at = json.find("\"" + module + "\":{");
  if (at == std::string::npos) return "";
  auto end = json.find('}', at);
  return json.substr(at, end - at);
}
}  // namespace

double json_number(const std::string& json, const std::string& module, const std::string& key) {
  std::string s = scope(json, module);
  auto at = s.find("\"" + key + "\":");
  if (at == std::string::npos) return -1;
  return std::strtod(s.c_str() + at + key.size() + 3, nullptr);
}

std::string json_string(const std::string& json, const std::string& module, const std::string& key) {
  std::string s = scope(json, module);
  auto at = s.find("\"" + key + "\":\"");
  if (at == std::string::npos) return "";
  at += key.size() + 4;
  return s.substr(at, s.find('"', at) - at);
}

long fd_count(pid_t pid) {
  long n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       it != std::filesystem::directory_iterator(); ++it)
    ++n;
  return n;
}

long rss_kb(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

uint16_t free_udp_port() {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

namespace {
// OSC message: address and type tag strings NUL-padded to 4 bytes, then a
// big-endian float32.
std::vector<uint8_t> osc_float_message(const std::string& address, float value) {
  std::vector<uint8_t> m;
  auto put_string = [&m](const std::string& s) {
    m.insert(m.end(), s.begin(), s.end());
    m.push_back(0);
    while (m.size() % 4) m.push_back(0);
  };
  put_string(address);
  put_string(",f");
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  for (int shift = 24; shift >= 0; shift -= 8) m.push_back(static_cast<uint8_t>(bits >> shift));
  return m;
}
}  // namespace

struct OscTraffic::Impl {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0};
  std::thread thread;
};

OscTraffic::OscTraffic(uint16_t port, std::vector<std::string> addresses, float lo, float hi, int per_second)
    : impl_(new Impl) {
  impl_->thread = std::thread([this, port, addresses, lo, hi, per_second] {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const auto period = std::chrono::nanoseconds(1'000'000'000 / std::max(per_second, 1));
    auto next = std::chrono::steady_clock::now();
    for (uint64_t k = 0; !impl_->stop.load(); ++k) {
      const float v = lo + (hi - lo) * static_cast<float>(k % 101) / 100.0f;
      const auto msg = osc_float_message(addresses[k % addresses.size()], v);
      sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
      impl_->sent.fetch_add(1);
      next += period;
      std::this_thread::sleep_until(next);
    }
    close(fd);
  });
}

OscTraffic::~OscTraffic() {
  impl_->stop.store(true);
  impl_->thread.join();
  delete impl_;
}

uint64_t OscTraffic::sent() const { return impl_->sent.load(); }

void expect_device_kept_playing(double cycles, double seconds) {
  const double expected = seconds * 48000.0 / 128.0;
  ::testing::Test::RecordProperty("cycles", std::to_string(cycles));
  EXPECT_GT(cycles, 0.5 * expected) << "the device stalled";
  EXPECT_LT(cycles, 1.1 * expected);
}

std::vector<int> cpus_of(pid_t tid) {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> out;
  if (sched_getaffinity(tid, sizeof set, &set) != 0) return out;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) out.push_back(c);
  return out;
}

int logged(const std::string& err, const std::string& key) {
  const size_t at = err.find(key);
  return at == std::string::npos ? -1 : std::atoi(err.c_str() + at + key.size());
}

bool segment_exists_for(pid_t pid) {
  return fs::exists("/dev/shm/rackd-" + std::to_string(getuid()) + "-" + std::to_string(pid));
}

std::string tone_chain_patch() {
  const std::string d = temp_dir();
  std::ofstream(d + "/chain.toml") << R"([[module]]
name = "src"
type = "capture"
source = "tone"

[[module]]
name = "p1"
type = "passthrough"
input = "src"
gain_db = -6.0

[[module]]
name = "p2"
type = "passthrough"
input = "p1"

[output]
from = "p2"
)";
  return d + "/chain.toml";
}

std::string kill_p1_and_expect_recovery(Process& p, double seconds) {
  pid_t victim = -1;
  for (int i = 0; i < 3000 && victim < 0; ++i) {
    for (pid_t c : children(p.pid(), "rackd-passthrou"))
      if (victim < 0 || c < victim) victim = c;  // p1, spawned first (patch order)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_GT(victim, 0) << "no passthrough process";
  if (victim <= 0) return "";
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_EQ(kill(victim, SIGKILL), 0);
  EXPECT_EQ(p.wait(std::chrono::seconds(30)), 0) << p.err();
  const std::string json = p.out();
  EXPECT_EQ(json_number(json, "p1", "restarts") + json_number(json, "p2", "restarts"), 1) << json;
  expect_device_kept_playing(json_number(json, "", "cycles"), seconds);
  for (const char* m : {"src", "p1", "p2"}) EXPECT_EQ(json_string(json, m, "state"), "running") << json;
  EXPECT_NE(p.err().find("is back after"), std::string::npos) << p.err();
  EXPECT_FALSE(segment_exists_for(p.pid()));
  return json;
}

}  // namespace rackd::test
