// LV2 State saved into and restored from the module's state folder. Each
// instance k has <dir>/<k>/current, a symlink to the last complete save
// (<dir>/<k>/save-<n>/); it is replaced atomically (rename), so a process
// killed mid-save leaves the previous one. Threads: see lv2_state.hpp.
#include "modules/lv2/lv2_state.hpp"

#include <lv2/atom/atom.h>
#include <lv2/state/state.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

namespace rackd::lv2 {

namespace fs = std::filesystem;

StateKeeper::StateKeeper(LilvWorld* world, const LilvPlugin* plugin, const PluginInfo& info, UridMap& map,
                         std::string dir, const float* controls)
    : world_(world), plugin_(plugin), info_(info), map_(map), dir_(std::move(dir)), controls_(controls) {
  snapshot_.assign(info.ports.size(), 0.0f);
}

StateKeeper::~StateKeeper() {
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
}

std::string StateKeeper::current(uint32_t k) const { return dir_ + "/" + std::to_string(k) + "/current"; }

bool StateKeeper::restore(LilvInstance* instance, uint32_t k, const LV2_Feature* const* features) {
  std::error_code ec;
  const fs::path target = fs::read_symlink(current(k), ec);
  if (ec) return false;
  const std::string file = (fs::path(dir_) / std::to_string(k) / target / "state.ttl").string();
  LilvState* state = lilv_state_new_from_file(world_, map_.map_feature(), nullptr, file.c_str());
  if (!state) return false;
  // A state of another plugin (the patch's `plugin` changed) is left alone.
  const LilvNode* applies = lilv_state_get_plugin_uri(state);
  if (!applies || !lilv_node_equals(applies, lilv_plugin_get_uri(plugin_))) {
    lilv_state_free(state);
    return false;
  }
  // Port values: the server's parameters rule (the first block applies them).
  lilv_state_restore(state, instance, nullptr, nullptr, 0, features);
  lilv_state_free(state);
  return true;
}

const void* StateKeeper::get_value(const char* symbol, void* self, uint32_t* size, uint32_t* type) {
  auto* s = static_cast<StateKeeper*>(self);
  for (const Port& p : s->info_.ports)
    if (p.symbol == symbol && p.type == PortType::kControl && p.input) {
      *size = sizeof(float);
      *type = s->map_.map(LV2_ATOM__Float);
      return &s->snapshot_[p.index];
    }
  *size = *type = 0;
  return nullptr;
}

void StateKeeper::start(std::vector<LilvInstance*> instances, std::vector<const LV2_Feature* const*> features) {
  instances_ = std::move(instances);
  features_ = std::move(features);
  thread_ = std::thread([this] { loop(); });
}

void StateKeeper::save_all() {
  for (std::size_t i = 0; i < info_.ports.size(); ++i) snapshot_[i] = controls_[i];
  ++generation_;
  for (uint32_t k = 0; k < instances_.size(); ++k) {
    const fs::path base = fs::path(dir_) / std::to_string(k);
    const std::string name = "save-" + std::to_string(generation_);
    std::error_code ec;
    fs::create_directories(base, ec);
    LilvState* state = lilv_state_new_from_instance(plugin_, instances_[k], map_.map_feature(), nullptr, nullptr,
                                                    nullptr, (base / name).c_str(), &StateKeeper::get_value, this,
                                                    LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE, features_[k]);
    if (!state) continue;
    const int rc = lilv_state_save(world_, map_.map_feature(), map_.unmap_feature(), state, nullptr,
                                   (base / name).c_str(), "state.ttl");
    lilv_state_free(state);
    if (rc != 0) continue;
    const fs::path link = base / ("current." + std::to_string(generation_));
    fs::create_symlink(name, link, ec);
    const fs::path old = fs::read_symlink(base / "current", ec);
    if (std::rename(link.c_str(), (base / "current").c_str()) != 0) continue;
    if (!old.empty() && old != name) fs::remove_all(base / old, ec);
  }
}

void StateKeeper::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  save_all();  // at once: a plugin's state from its first instantiation survives an early kill
  bool first = false;
  auto last = std::chrono::steady_clock::now();
  while (!cv_.wait_for(lock, std::chrono::milliseconds(kPollMs), [this] { return quit_; })) {
    bool changed = first;
    for (const Port& p : info_.ports)
      if (p.type == PortType::kControl && p.input && controls_[p.index] != snapshot_[p.index]) changed = true;
    const auto now = std::chrono::steady_clock::now();
    if (changed || now - last >= std::chrono::milliseconds(kPeriodicMs)) {
      save_all();
      last = now;
      first = false;
    }
  }
}

}  // namespace rackd::lv2
