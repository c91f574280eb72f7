// Module discovery: the module path scanned for rackd-* files, each asked
// --describe once per (path, size, mtime), the results kept for the life of
// the process (a TypeSpec pointer handed out stays valid). [any] thread: one
// mutex around the tables; a scan runs a few short processes under it.
#include "modules/registry/registry.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "modules/registry/spawn.hpp"

namespace rackd::registry {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kDescribeLimit{5000};
constexpr std::chrono::milliseconds kRescanAge{1000};
constexpr const char* kPrefix = "rackd-";

struct FileKey {
  std::string path;
  int64_t size = 0, mtime_ns = 0;
  bool operator<(const FileKey& o) const {
    return std::tie(path, size, mtime_ns) < std::tie(o.path, o.size, o.mtime_ns);
  }
};

struct Described {
  const TypeSpec* spec = nullptr;  // or
  std::string problem;              // why the file is skipped
};

struct State {
  std::mutex mu;
  std::deque<TypeSpec> specs;                  // every description ever read (stable addresses)
  std::map<FileKey, Described> by_file;        // the cache
  std::map<std::pair<const TypeSpec*, std::string>, const TypeSpec*> configured;  // (base, config) -> spec
  std::set<std::string> warned;                // "path|size|mtime|problem" already printed
  std::vector<const TypeSpec*> types;          // the last scan's winners, in path order
  std::vector<Skipped> skipped;
  Clock::time_point scanned{};
  bool ever = false;
};

State& state() {
  static State s;
  return s;
}

void warn_once(State& s, const FileKey& k, const std::string& problem) {
  if (!s.warned.insert(k.path + "|" + std::to_string(k.size) + "|" + std::to_string(k.mtime_ns) + "|" + problem).second)
    return;
  std::fprintf(stderr, "rackd: warning: module path: %s: %s; skipped\n", k.path.c_str(), problem.c_str());
}

// Exits the closure with the module's message (its standard error, trimmed).
std::string message_of(const Captured& c) {
  std::string m = c.err;
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  if (m.empty()) m = describe_failure(c, kDescribeLimit);
  return m;
}

void wire(TypeSpec& t) {
  const std::string type = t.type;
  const bool takes_input = t.takes_input;
  const rackd::ChannelRule rule = t.rule;
  t.channels = [type, takes_input, rule](const ChannelQuery& q, Channels& c, std::string& error) {
    return evaluate_channels(type, takes_input, rule, q, c, error);
  };
  if (!takes_input) {
    t.reads_device = [type, rule](const ChannelQuery& q) {
      Channels c;
      std::string error;
      return evaluate_channels(type, false, rule, q, c, error) && c.in > 0;
    };
  }
}

Described describe(State& s, const FileKey& k) {
  if (access(k.path.c_str(), X_OK) != 0) return {nullptr, "not executable"};
  const Captured c = run_captured({k.path, "--describe"}, kDescribeLimit);
  if (!c.started || c.timed_out || c.signal || c.exit_status != 0) {
    std::string why = describe_failure(c, kDescribeLimit);
    std::string err = c.err.substr(0, 200);
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    if (!err.empty() && !c.timed_out) why += " (" + err + ")";
    return {nullptr, why};
  }
  try {
    TypeSpec t = parse_description(c.out, k.path);
    wire(t);
    s.specs.push_back(std::move(t));
    return {&s.specs.back(), ""};
  } catch (const std::exception& e) {
    return {nullptr, std::string("--describe: ") + e.what()};
  }
}

std::vector<std::string> path_entries() {
  std::vector<std::string> dirs;
  if (const char* p = std::getenv("RACKD_MODULE_PATH"); p && *p) {
    std::string all = p;
    std::size_t start = 0;
    while (start <= all.size()) {
      const std::size_t end = std::min(all.find(':', start), all.size());
      if (end > start) dirs.push_back(all.substr(start, end - start));
      start = end + 1;
    }
    return dirs;
  }
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return dirs;
  const fs::path here = exe.parent_path();
  // Installed: PREFIX/bin/rackd beside PREFIX/libexec/rackd.
  dirs.push_back((here.parent_path() / "libexec" / "rackd").string());
  // A build tree (CMakeCache.txt above bin/): the build's own modules.
  if (fs::exists(here.parent_path() / "CMakeCache.txt", ec)) dirs.push_back(here.string());
  return dirs;
}

void scan(State& s) {
  std::vector<const TypeSpec*> types;
  std::vector<Skipped> skipped;
  std::map<std::string, std::string> owner;  // type -> path
  for (const std::string& dir : path_entries()) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind(kPrefix, 0) == 0 && name.size() > std::string_view(kPrefix).size()) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      struct stat st {};
      if (stat(f.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) continue;
      FileKey k{fs::absolute(f).lexically_normal().string(), static_cast<int64_t>(st.st_size),
                static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
      auto it = s.by_file.find(k);
      if (it == s.by_file.end()) it = s.by_file.emplace(k, describe(s, k)).first;
      std::string problem = it->second.problem;
      const TypeSpec* t = it->second.spec;
      if (t) {
        if (auto o = owner.find(t->type); o != owner.end()) {
          problem = "also claims type \"" + t->type + "\", which " + o->second + " (earlier on the module path) provides";
          t = nullptr;
        }
      }
      if (t) {
        owner[t->type] = k.path;
        types.push_back(t);
      } else {
        warn_once(s, k, problem);
        skipped.push_back({k.path, problem});
      }
    }
  }
  s.types = std::move(types);
  s.skipped = std::move(skipped);
  s.scanned = Clock::now();
  s.ever = true;
}

void scan_if_old(State& s) {
  if (!s.ever || Clock::now() - s.scanned >= kRescanAge) scan(s);
}

}  // namespace

std::vector<std::string> module_path() {
  std::vector<std::string> out;
  for (const auto& d : path_entries()) {
    std::error_code ec;
    if (fs::is_directory(d, ec)) out.push_back(d);
  }
  return out;
}

std::vector<const TypeSpec*> all_types() {
  State& s = state();
  std::lock_guard lock(s.mu);
  scan_if_old(s);
  return s.types;
}

const TypeSpec* find_type(std::string_view name) {
  State& s = state();
  std::lock_guard lock(s.mu);
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 0) scan_if_old(s);
    else scan(s);  // a miss: something may have been installed this second
    for (const TypeSpec* t : s.types)
      if (t->type == name) return t;
  }
  return nullptr;
}

std::string skipped_reason(std::string_view name) {
  State& s = state();
  std::lock_guard lock(s.mu);
  const std::string file = kPrefix + std::string(name);
  for (const Skipped& k : s.skipped)
    if (fs::path(k.path).filename() == file) return k.path + " was skipped: " + k.reason;
  return "";
}

std::vector<Skipped> skipped() {
  State& s = state();
  std::lock_guard lock(s.mu);
  scan_if_old(s);
  return s.skipped;
}

const TypeSpec* configure(const TypeSpec& spec, const std::string& config_toml) {
  if (!spec.configurable) return &spec;
  State& s = state();
  std::lock_guard lock(s.mu);
  const auto key = std::make_pair(&spec, config_toml);
  if (auto it = s.configured.find(key); it != s.configured.end()) return it->second;
  const Captured c = run_captured({spec.executable, "--describe", "--config", config_toml}, kDescribeLimit);
  if (!c.started || c.timed_out || c.signal || c.exit_status != 0) throw std::runtime_error(message_of(c));
  TypeSpec t = parse_description(c.out, spec.executable);
  if (t.type != spec.type)
    throw std::runtime_error(spec.executable + " --describe --config names type \"" + t.type + "\", not \"" +
                             spec.type + "\"");
  t.configurable = false;  // this one is configured
  t.base = &spec;
  wire(t);
  s.specs.push_back(std::move(t));
  s.configured.emplace(key, &s.specs.back());
  return &s.specs.back();
}

int output_slot(const TypeSpec& spec, std::size_t param) {
  if (param >= spec.params.size() || !spec.params[param].output) return -1;
  int k = 0;
  for (std::size_t i = 0; i < param; ++i) k += spec.params[i].output ? 1 : 0;
  return k < static_cast<int>(kMaxOutputs) ? k : -1;
}

int find_param(const TypeSpec& spec, std::string_view name) {
  for (std::size_t i = 0; i < spec.params.size(); ++i) {
    if (spec.params[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace rackd::registry
