// PipeWire's channel positions (pipewire_channels.hpp).
#include "server/pipewire_channels.hpp"

#include <spa/param/audio/raw.h>

namespace rackd::server {

std::vector<uint32_t> positions_for(uint32_t n) {
  switch (n) {
    case 1: return {SPA_AUDIO_CHANNEL_MONO};
    case 2: return {SPA_AUDIO_CHANNEL_FL, SPA_AUDIO_CHANNEL_FR};
    case 4: return {SPA_AUDIO_CHANNEL_FL, SPA_AUDIO_CHANNEL_FR, SPA_AUDIO_CHANNEL_RL, SPA_AUDIO_CHANNEL_RR};
    case 6:
      return {SPA_AUDIO_CHANNEL_FL,  SPA_AUDIO_CHANNEL_FR, SPA_AUDIO_CHANNEL_FC,
              SPA_AUDIO_CHANNEL_LFE, SPA_AUDIO_CHANNEL_RL, SPA_AUDIO_CHANNEL_RR};
    case 8:
      return {SPA_AUDIO_CHANNEL_FL, SPA_AUDIO_CHANNEL_FR, SPA_AUDIO_CHANNEL_FC, SPA_AUDIO_CHANNEL_LFE,
              SPA_AUDIO_CHANNEL_RL, SPA_AUDIO_CHANNEL_RR, SPA_AUDIO_CHANNEL_SL, SPA_AUDIO_CHANNEL_SR};
    default: {
      std::vector<uint32_t> p;
      for (uint32_t c = 0; c < n; ++c) p.push_back(SPA_AUDIO_CHANNEL_AUX0 + c);
      return p;
    }
  }
}

std::string position_names(const std::vector<uint32_t>& p) {
  std::string s;
  for (uint32_t c : p) {
    const char* name = "?";
    switch (c) {
      case SPA_AUDIO_CHANNEL_MONO: name = "MONO"; break;
      case SPA_AUDIO_CHANNEL_FL: name = "FL"; break;
      case SPA_AUDIO_CHANNEL_FR: name = "FR"; break;
      case SPA_AUDIO_CHANNEL_FC: name = "FC"; break;
      case SPA_AUDIO_CHANNEL_LFE: name = "LFE"; break;
      case SPA_AUDIO_CHANNEL_RL: name = "RL"; break;
      case SPA_AUDIO_CHANNEL_RR: name = "RR"; break;
      case SPA_AUDIO_CHANNEL_SL: name = "SL"; break;
      case SPA_AUDIO_CHANNEL_SR: name = "SR"; break;
      default: break;
    }
    s += (s.empty() ? "" : ",") + (c >= SPA_AUDIO_CHANNEL_AUX0 ? "AUX" + std::to_string(c - SPA_AUDIO_CHANNEL_AUX0)
                                                               : std::string(name));
  }
  return s;
}

}  // namespace rackd::server
