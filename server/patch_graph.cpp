// Patch files, second half: the graph. Resolves `input` names, refuses cycles,
// puts modules in topological order and works out depths and channel counts
// with each type's channel rule. patch.cpp has already checked every key and
// value. [setup] thread only; allocates freely.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "modules/common/text.hpp"
#include "server/patch.hpp"

namespace rackd::server {
namespace patch_detail {

// Called by patch.cpp, which declares it too (see there). `patch` arrives with
// modules in file order and outputs as file indices, and leaves in topological
// order with input, depth, channels and input_channels filled in.
void resolve_graph(const std::string& path,
                   const std::vector<std::pair<std::string, uint32_t>>& inputs,
                   std::optional<uint32_t> server_input_channels, uint32_t server_input_line,
                   Patch& patch);

}  // namespace patch_detail

namespace {

// A processor on "device" with no [server] input_channels reads stereo.
constexpr uint32_t kDefaultDeviceChannels = 2;

using modules::quote;

class GraphResolver {
 public:
  using Inputs = std::vector<std::pair<std::string, uint32_t>>;

  GraphResolver(const std::string& path, const Inputs& inputs, Patch& patch)
      : path_(path), inputs_(inputs), patch_(patch) {}

  // Fills input_file_ from the `input` values: file index, kDeviceInput or -1.
  void resolve_inputs();
  std::vector<std::size_t> topological_order() const;
  void assign_channels(const std::vector<std::size_t>& order, std::optional<uint32_t> server_in,
                       uint32_t server_in_line);

 private:
  [[noreturn]] void fail(uint32_t line, const std::string& reason) const { throw PatchError::at(path_, line, reason); }

  const std::string& path_;
  const Inputs& inputs_;  // per module in file order: `input` value, line (0: none)
  Patch& patch_;
  std::vector<int> input_file_;
};

void GraphResolver::resolve_inputs() {
  const auto& modules = patch_.modules;
  input_file_.assign(modules.size(), -1);
  for (std::size_t i = 0; i < modules.size(); ++i) {
    const auto& [name, line] = inputs_[i];
    if (line == 0) continue;
    if (name == "device") {
      input_file_[i] = kDeviceInput;
      continue;
    }
    const auto it = std::find_if(modules.begin(), modules.end(),
                                 [&](const PatchModule& m) { return m.name == name; });
    if (it == modules.end()) {
      std::string names;
      for (const auto& m : modules) names += m.name + ", ";
      fail(line, "module " + quote(modules[i].name) + ": input " + quote(name) +
                     " is not a module in this patch (modules: " + names + "or \"device\")");
    }
    input_file_[i] = static_cast<int>(it - modules.begin());
  }
}

// Among modules whose input is ready, file order wins, so unrelated chains keep
// the order the author wrote them in. n <= kMaxModules, so quadratic is fine.
std::vector<std::size_t> GraphResolver::topological_order() const {
  const std::size_t n = input_file_.size();
  std::vector<bool> placed(n, false);
  std::vector<std::size_t> order;
  while (order.size() < n) {
    std::size_t next = n;
    for (std::size_t i = 0; i < n && next == n; ++i) {
      const int in = input_file_[i];
      if (!placed[i] && (in < 0 || placed[static_cast<std::size_t>(in)])) next = i;
    }
    if (next == n) break;
    placed[next] = true;
    order.push_back(next);
  }
  if (order.size() == n) return order;

  // Every unplaced module has an unplaced input, so walking inputs from any of
  // them must come back to a module already seen; that one lies on a cycle.
  auto at =
      static_cast<std::size_t>(std::find(placed.begin(), placed.end(), false) - placed.begin());
  std::vector<bool> seen(n, false);
  while (!seen[at]) {
    seen[at] = true;
    at = static_cast<std::size_t>(input_file_[at]);
  }
  std::vector<std::size_t> cycle;  // in input order: each entry feeds the one before
  for (std::size_t i = at;;) {
    cycle.push_back(i);
    i = static_cast<std::size_t>(input_file_[i]);
    if (i == at) break;
  }
  // Report from the member written first, along the signal flow.
  std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
  const auto& modules = patch_.modules;
  std::string flow = modules[cycle[0]].name;
  for (std::size_t i = cycle.size(); i-- > 0;) flow += " -> " + modules[cycle[i]].name;
  fail(inputs_[cycle[0]].second, "module " + quote(modules[cycle[0]].name) +
                                     ": inputs form a cycle: " + flow +
                                     " (break it by changing one input)");
}

void GraphResolver::assign_channels(const std::vector<std::size_t>& order,
                                    std::optional<uint32_t> server_in, uint32_t server_in_line) {
  std::vector<PatchModule> sorted;
  std::vector<int> position(order.size(), -1);
  uint32_t device_max = 0;
  for (const std::size_t fi : order) {
    PatchModule m = std::move(patch_.modules[fi]);
    const registry::TypeSpec& spec = *m.spec;
    const std::string who = "module " + quote(m.name) + ": ";
    const auto line = static_cast<uint32_t>(m.line);

    // Rules read the config_toml text the module will get, so they cannot
    // disagree with the module about what the patch said.
    std::shared_ptr<const toml::table> config;
    try {
      config = std::make_shared<const toml::table>(toml::parse(m.config_toml));
    } catch (const toml::parse_error& e) {
      fail(line, who + "internal error: configuration does not re-parse: " +
                     std::string(e.description()));
    }
    registry::ChannelQuery q;
    q.get_int = [config](std::string_view k) -> std::optional<int64_t> {
      const toml::node* n = config->get(k);
      return n && n->is_integer() ? std::optional(n->as_integer()->get()) : std::nullopt;
    };
    q.get_string = [config](std::string_view k) -> std::optional<std::string> {
      const toml::node* n = config->get(k);
      return n && n->is_string() ? std::optional(n->as_string()->get()) : std::nullopt;
    };

    if (!spec.takes_input) {
      m.input = (spec.reads_device && spec.reads_device(q)) ? kDeviceInput : -1;
    } else if (input_file_[fi] == kDeviceInput) {
      m.input = kDeviceInput;
      q.upstream_channels = server_in.value_or(kDefaultDeviceChannels);
    } else {
      m.input = position[static_cast<std::size_t>(input_file_[fi])];
      const PatchModule& up = sorted[static_cast<std::size_t>(m.input)];
      m.depth = up.depth + 1;
      q.upstream_channels = up.out_channels;
    }

    registry::Channels ch;
    std::string err;
    if (!spec.channels) fail(line, who + "type " + quote(m.type) + " has no channel rule");
    if (!spec.channels(q, ch, err)) fail(line, who + err);
    if (ch.out < 1 || ch.out > shm::kMaxChannels) {
      fail(line, who + std::to_string(ch.out) + " output channels; must be 1 to " +
                     std::to_string(shm::kMaxChannels));
    }
    if (ch.in > shm::kMaxChannels) {
      fail(line, who + std::to_string(ch.in) + " input channels; at most " +
                     std::to_string(shm::kMaxChannels));
    }
    m.in_channels = ch.in;
    m.out_channels = ch.out;

    if (m.input == kDeviceInput) {
      if (server_in && ch.in > *server_in) {
        fail(line, who + "reads " + std::to_string(ch.in) + " device input channels but [server] " +
                       "input_channels = " + std::to_string(*server_in) + " (line " +
                       std::to_string(server_in_line) + ")");
      }
      device_max = std::max(device_max, ch.in);
    }
    position[fi] = static_cast<int>(sorted.size());
    sorted.push_back(std::move(m));
  }
  patch_.modules = std::move(sorted);
  patch_.input_channels = server_in.value_or(device_max);
  for (int& o : patch_.outputs) o = position[static_cast<std::size_t>(o)];
}

}  // namespace

namespace patch_detail {

void resolve_graph(const std::string& path,
                   const std::vector<std::pair<std::string, uint32_t>>& inputs,
                   std::optional<uint32_t> server_input_channels, uint32_t server_input_line,
                   Patch& patch) {
  GraphResolver graph(path, inputs, patch);
  graph.resolve_inputs();
  graph.assign_channels(graph.topological_order(), server_input_channels, server_input_line);
}

}  // namespace patch_detail
}  // namespace rackd::server
