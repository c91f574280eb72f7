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
#include "graph/patch.hpp"
#include "graph/patch_detail.hpp"

namespace rackd::graph {

namespace {

// A processor on "device" with no [server] input_channels reads stereo.
constexpr uint32_t kDefaultDeviceChannels = 2;

using modules::quote;

class GraphResolver {
 public:
  using Inputs = std::vector<std::vector<patch_detail::NamedInput>>;

  GraphResolver(const std::string& path, const Inputs& inputs, Patch& patch)
      : path_(path), inputs_(inputs), patch_(patch) {}

  // Fills input_file_ from the `input` entries: file index or kDeviceInput.
  void resolve_inputs();
  std::vector<std::size_t> topological_order() const;
  void assign_channels(const std::vector<std::size_t>& order, std::optional<uint32_t> server_in,
                       uint32_t server_in_line);

 private:
  [[noreturn]] void fail(uint32_t line, const std::string& reason) const { throw PatchError::at(path_, line, reason); }

  const std::string& path_;
  const Inputs& inputs_;  // per module in file order: its `input` entries
  Patch& patch_;
  std::vector<std::vector<int>> input_file_;  // per module in file order: file index or kDeviceInput
};

void GraphResolver::resolve_inputs() {
  const auto& modules = patch_.modules;
  input_file_.assign(modules.size(), {});
  for (std::size_t i = 0; i < modules.size(); ++i) {
    for (const patch_detail::NamedInput& in : inputs_[i]) {
      if (in.name == "device") {
        input_file_[i].push_back(kDeviceInput);
        continue;
      }
      const auto it = std::find_if(modules.begin(), modules.end(),
                                   [&](const PatchModule& m) { return m.name == in.name; });
      if (it == modules.end()) {
        std::string names;
        for (const auto& m : modules) names += m.name + ", ";
        fail(in.line, "module " + quote(modules[i].name) + ": input " + quote(in.name) +
                          " is not a module in this patch (modules: " + names + "or \"device\")");
      }
      input_file_[i].push_back(static_cast<int>(it - modules.begin()));
    }
  }
}

// Among modules whose inputs are all placed, file order wins, so unrelated
// chains keep the order the author wrote them in. n <= kMaxModules, so
// quadratic is fine.
std::vector<std::size_t> GraphResolver::topological_order() const {
  const std::size_t n = input_file_.size();
  std::vector<bool> placed(n, false);
  auto ready = [&](std::size_t i) {
    for (int in : input_file_[i]) {
      if (in >= 0 && !placed[static_cast<std::size_t>(in)]) return false;
    }
    return true;
  };
  std::vector<std::size_t> order;
  while (order.size() < n) {
    std::size_t next = n;
    for (std::size_t i = 0; i < n && next == n; ++i) {
      if (!placed[i] && ready(i)) next = i;
    }
    if (next == n) break;
    placed[next] = true;
    order.push_back(next);
  }
  if (order.size() == n) return order;

  // Every unplaced module has an unplaced input, so walking unplaced inputs
  // from any of them must come back to a module already seen; that one lies
  // on a cycle.
  auto unplaced_input = [&](std::size_t i) {
    for (int in : input_file_[i]) {
      if (in >= 0 && !placed[static_cast<std::size_t>(in)]) return static_cast<std::size_t>(in);
    }
    return i;  // not reached
  };
  auto at = static_cast<std::size_t>(std::find(placed.begin(), placed.end(), false) - placed.begin());
  std::vector<bool> seen(n, false);
  while (!seen[at]) {
    seen[at] = true;
    at = unplaced_input(at);
  }
  std::vector<std::size_t> cycle;  // in input order: each entry feeds the one before
  for (std::size_t i = at;;) {
    cycle.push_back(i);
    i = unplaced_input(i);
    if (i == at) break;
  }
  // Report from the member written first, along the signal flow.
  std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
  const auto& modules = patch_.modules;
  std::string flow = modules[cycle[0]].name;
  for (std::size_t i = cycle.size(); i-- > 0;) flow += " -> " + modules[cycle[i]].name;
  // The line of the input entry that closes the cycle.
  const std::size_t feeder = cycle.size() > 1 ? cycle[1] : cycle[0];
  uint32_t line = static_cast<uint32_t>(modules[cycle[0]].line);
  for (std::size_t k = 0; k < input_file_[cycle[0]].size(); ++k) {
    if (input_file_[cycle[0]][k] == static_cast<int>(feeder)) line = inputs_[cycle[0]][k].line;
  }
  fail(line, "module " + quote(modules[cycle[0]].name) + ": inputs form a cycle: " + flow +
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

    bool reads_device = false;
    if (!spec.takes_input) {
      if (spec.reads_device && spec.reads_device(q)) {
        m.inputs.push_back({kDeviceInput, 0.0, 0});
        reads_device = true;
      }
    } else {
      // Every source must deliver the same channel count; the device adapts
      // to the modules it is summed with.
      std::optional<uint32_t> module_channels;
      const patch_detail::NamedInput* first_module = nullptr;
      for (std::size_t k = 0; k < input_file_[fi].size(); ++k) {
        const int from_file = input_file_[fi][k];
        const patch_detail::NamedInput& named = inputs_[fi][k];
        if (from_file == kDeviceInput) {
          reads_device = true;
          m.inputs.push_back({kDeviceInput, named.gain_db, named.line});
          continue;
        }
        const int from = position[static_cast<std::size_t>(from_file)];
        const PatchModule& up = sorted[static_cast<std::size_t>(from)];
        m.depth = std::max(m.depth, up.depth + 1);
        if (module_channels && *module_channels != up.out_channels) {
          fail(named.line, who + "input " + quote(up.name) + " has " + std::to_string(up.out_channels) +
                               " channels but input " + quote(first_module->name) + " has " +
                               std::to_string(*module_channels) + "; summed inputs must agree");
        }
        if (!module_channels) first_module = &named;
        module_channels = up.out_channels;
        m.inputs.push_back({from, named.gain_db, named.line});
      }
      q.upstream_channels = module_channels.value_or(server_in.value_or(kDefaultDeviceChannels));
      if (reads_device && module_channels && server_in && *server_in < *module_channels) {
        fail(line, who + "sums the device (" + std::to_string(*server_in) + " channels, [server] input_channels) with " +
                       quote(first_module->name) + " (" + std::to_string(*module_channels) +
                       " channels); summed inputs must agree");
      }
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

    if (reads_device) {
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
                   const std::vector<std::vector<NamedInput>>& inputs,
                   std::optional<uint32_t> server_input_channels, uint32_t server_input_line,
                   Patch& patch) {
  GraphResolver graph(path, inputs, patch);
  graph.resolve_inputs();
  graph.assign_channels(graph.topological_order(), server_input_channels, server_input_line);
}

}  // namespace patch_detail
}  // namespace rackd::graph
