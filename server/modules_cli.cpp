// `rackd modules` and `rackd describe TYPE`. [setup] only.
#include "server/modules_cli.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "modules/registry/registry.hpp"
#include "modules/registry/spawn.hpp"

namespace rackd::server {
namespace {

using registry::TypeSpec;

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string count_text(const rackd::ChannelCount& c, bool input) {
  std::string s;
  switch (c.from) {
    case ChannelCount::From::kConst: s = std::to_string(c.value); break;
    case ChannelCount::From::kUpstream: s = input ? "any count" : "as many as its input"; break;
    case ChannelCount::From::kOut: s = "as many as its output"; break;
    case ChannelCount::From::kKey:
      if (c.map.empty()) {
        s = "setup key " + c.key + " (default " + std::to_string(c.value) + ")";
      } else {
        s = "by " + c.key + ":";
        for (std::size_t i = 0; i < c.map.size(); ++i)
          s += (i ? ", " : " ") + c.map[i].first + " " + std::to_string(c.map[i].second);
        s += " (default " + c.map_default + ")";
      }
      break;
  }
  if (!c.if_key.empty()) s += " when " + c.if_key + " = \"" + c.if_equals + "\", else none";
  return s;
}

const char* kind_text(rackd::ParamKind k) {
  switch (k) {
    case rackd::ParamKind::kInt: return "int";
    case rackd::ParamKind::kBool: return "bool";
    case rackd::ParamKind::kFloat: break;
  }
  return "float";
}

const char* kind_text(rackd::ConfigKind k) {
  switch (k) {
    case rackd::ConfigKind::kString: return "string";
    case rackd::ConfigKind::kPath: return "path";
    case rackd::ConfigKind::kInt: return "int";
    case rackd::ConfigKind::kFloat: return "float";
    case rackd::ConfigKind::kBool: return "bool";
    case rackd::ConfigKind::kEnum: return "enum";
    case rackd::ConfigKind::kArray: return "array";
  }
  return "string";
}

void print_skipped() {
  for (const auto& s : registry::skipped()) std::printf("skipped: %s: %s\n", s.path.c_str(), s.reason.c_str());
}

}  // namespace

int list_modules() {
  const auto types = registry::all_types();
  for (const TypeSpec* t : types) {
    std::printf("%-14s %s\n", t->type.c_str(), t->executable.c_str());
    std::printf("%-14s %s\n", "", t->summary.c_str());
  }
  print_skipped();
  std::string path;
  for (const auto& d : registry::module_path()) path += (path.empty() ? "" : ":") + d;
  std::printf("module path: %s%s\n", path.empty() ? "(no folder found)" : path.c_str(),
              std::getenv("RACKD_MODULE_PATH") ? " ($RACKD_MODULE_PATH)" : "");
  if (types.empty()) {
    std::fprintf(stderr, "rackd modules: no module types found\n");
    return 1;
  }
  return 0;
}

int describe_type(const std::string& type, bool json, const std::string& config_arg) {
  const TypeSpec* t = registry::find_type(type);
  if (!t) {
    std::string why = registry::skipped_reason(type);
    if (why.empty()) {
      why = "types:";
      for (const TypeSpec* k : registry::all_types()) why += " " + k->type;
    }
    std::fprintf(stderr, "rackd describe: unknown type \"%s\" (%s)\n", type.c_str(), why.c_str());
    return 1;
  }
  std::string config = config_arg;
  if (!config.empty()) {
    // A file, or the table itself; checked as TOML here so the error is ours.
    std::error_code ec;
    if (std::filesystem::is_regular_file(config, ec)) {
      std::ifstream f(config);
      config.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    }
    try {
      (void)toml::parse(config);
    } catch (const toml::parse_error& e) {
      std::fprintf(stderr, "rackd describe: --config: %s\n", std::string(e.description()).c_str());
      return 2;
    }
  }
  if (json) {
    std::vector<std::string> argv = {t->executable, "--describe"};
    if (!config.empty()) argv.insert(argv.end(), {"--config", config});
    const auto c = registry::run_captured(argv, std::chrono::seconds(5));
    std::fputs(c.out.c_str(), stdout);
    std::fputs(c.err.c_str(), stderr);
    return c.exit_status == 0 ? 0 : 1;
  }
  if (!config.empty()) {
    if (!t->configurable) {
      std::fprintf(stderr, "rackd describe: type \"%s\" does not depend on its setup keys; --config changes nothing\n",
                   type.c_str());
    } else {
      try {
        t = registry::configure(*t, config);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "rackd describe: %s\n", e.what());
        return 1;
      }
    }
  }
  std::printf("%s: %s\n", t->type.c_str(), t->summary.c_str());
  std::printf("executable: %s\n", t->executable.c_str());
  if (t->takes_input) {
    std::printf("input:      %s (input = \"<module>\" or \"device\")\n", count_text(t->rule.in, true).c_str());
  } else {
    std::printf("input:      none (a source)");
    if (t->rule.in.from != ChannelCount::From::kConst || t->rule.in.value != 0)
      std::printf("; reads the device input: %s", count_text(t->rule.in, true).c_str());
    std::printf("\n");
  }
  std::printf("output:     %s\n", count_text(t->rule.out, false).c_str());
  std::printf("bypass:     %s\n", t->bypassable ? "yes" : "no");
  if (t->latency_frames) std::printf("latency:    %u frames\n", t->latency_frames);
  std::printf("\nparameters (%zu; /<module>/<name> over OSC, name = value in a patch; an output is\n"
              "reported by the module: /<module>/<name>/get):\n",
              t->params.size());
  for (const auto& p : t->params) {
    std::string range = number(p.min) + ".." + number(p.max);
    std::string kind = kind_text(p.kind);
    if (p.count > 1) kind += " x" + std::to_string(p.count);
    std::printf("  %-20s %-9s %-14s %s %-8s %-4s %s\n", p.name.c_str(), kind.c_str(), range.c_str(),
                p.output ? "output " : "default", p.output ? "" : number(p.def).c_str(), p.unit.c_str(), p.help.c_str());
  }
  std::printf("\nsetup keys (%zu; read when the process starts, a change restarts it):\n", t->config.size());
  for (const auto& c : t->config) {
    std::string kind = kind_text(c.kind);
    if (!c.choices.empty()) {
      kind += " (";
      for (std::size_t i = 0; i < c.choices.size(); ++i) kind += (i ? ", " : "") + c.choices[i];
      kind += ")";
    }
    if (c.min != c.max) kind += " " + number(c.min) + ".." + number(c.max);
    std::printf("  %-16s %-28s %s\n", c.name.c_str(), kind.c_str(), c.help.c_str());
  }
  if (t->configurable)
    std::printf("\nparameters follow from the setup keys: rackd describe %s --config 'KEY = VALUE'\n", t->type.c_str());
  return 0;
}

int lv2_command(int argc, char** argv) {
  const std::string sub = argc > 2 ? argv[2] : "";
  if (sub != "list" && sub != "audit") {
    std::fprintf(stderr,
                 "usage: rackd lv2 list\n"
                 "       rackd lv2 audit URI [--seconds S]\n"
                 "list: the installed LV2 plugins (URI, name, audio inputs and outputs), as lv2ls.\n"
                 "audit: runs the plugin's run() for a few seconds and reports, per block, the\n"
                 "allocations and system calls the plugin itself makes (exit 0: none, 1: some).\n");
    return sub.empty() || sub == "--help" ? (sub.empty() ? 2 : 0) : 2;
  }
  const TypeSpec* t = registry::find_type("lv2");
  if (!t) {
    std::string why = registry::skipped_reason("lv2");
    std::fprintf(stderr, "rackd lv2: no lv2 module type on the module path (%s)\n",
                 why.empty() ? "see rackd modules" : why.c_str());
    return 1;
  }
  std::vector<std::string> args;
  if (sub == "list") {
    args = {t->executable, "--list"};
  } else {
    args = {(std::filesystem::path(t->executable).parent_path() / "lv2-audit").string()};
  }
  for (int i = 3; i < argc; ++i) args.emplace_back(argv[i]);
  std::vector<char*> c;
  for (auto& a : args) c.push_back(a.data());
  c.push_back(nullptr);
  execv(c[0], c.data());
  std::fprintf(stderr, "rackd lv2: cannot run %s: %s\n", c[0], std::strerror(errno));
  return 1;
}

}  // namespace rackd::server
