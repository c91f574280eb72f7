// PipeWire's channel positions for a channel count, in the order rackd's
// modules use (WAV/SMPTE; the hrir module's layouts), and their short names.
// [setup] only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rackd::server {

// SPA_AUDIO_CHANNEL_* for `n` channels: 1 MONO; 2 FL FR; 4 FL FR RL RR; 6 FL
// FR FC LFE RL RR; 8 FL FR FC LFE RL RR SL SR (PipeWire calls the back pair
// RL RR where WAV says BL BR); any other count AUX0...
std::vector<uint32_t> positions_for(uint32_t n);
// "FL,FR,FC,..." for the log and the sink's audio.position.
std::string position_names(const std::vector<uint32_t>& p);

}  // namespace rackd::server
