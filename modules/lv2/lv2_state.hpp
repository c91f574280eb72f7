// LV2 State for the instances of one rackd-lv2 process: restored in setup
// from the module's state folder (which outlives the process), saved by a
// helper thread whenever the control port values change and periodically.
// Threads: restore() [setup]; the saver thread is [control] and only calls
// lilv_state_new_from_instance (allowed beside run()) and file I/O.
#pragma once

#include <lilv/lilv.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "modules/lv2/lv2_host.hpp"
#include "modules/lv2/lv2_plugin.hpp"

namespace rackd::lv2 {

class StateKeeper {
 public:
  static constexpr int kPollMs = 500;
  static constexpr int kPeriodicMs = 5000;
  // `controls`: the control input values the audio thread writes (one float
  // per port index); read without locking (a torn float is impossible).
  StateKeeper(LilvWorld* world, const LilvPlugin* plugin, const PluginInfo& info, UridMap& map, std::string dir,
              const float* controls);
  ~StateKeeper();
  // [setup] Restores instance k from the saved state, if any. True when restored.
  bool restore(LilvInstance* instance, uint32_t k, const LV2_Feature* const* features);
  // [setup] Starts saving `instances` (their features for save()).
  void start(std::vector<LilvInstance*> instances, std::vector<const LV2_Feature* const*> features);
  // [control] Saves every instance now (the thread does this by itself).
  void save_all();

 private:
  static const void* get_value(const char* symbol, void* self, uint32_t* size, uint32_t* type);
  std::string current(uint32_t k) const;
  void loop();
  LilvWorld* world_;
  const LilvPlugin* plugin_;
  const PluginInfo& info_;
  UridMap& map_;
  std::string dir_;
  const float* controls_;
  std::vector<float> snapshot_;  // the values as last saved (saver thread)
  std::vector<LilvInstance*> instances_;
  std::vector<const LV2_Feature* const*> features_;
  uint64_t generation_ = 0;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool quit_ = false;
  std::thread thread_;
};

}  // namespace rackd::lv2
