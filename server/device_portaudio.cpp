// The PortAudio device back-end of a live run (live_device.hpp): a stream on a
// real device through any host API (ALSA, JACK, ...). PortAudio's callback
// thread is the audio thread that runs the graph. [setup] except callback() [rt].
#include <alsa/asoundlib.h>
#include <pa_jack.h>
#include <portaudio.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "server/live_device.hpp"

namespace rackd::server {
namespace {

// ALSA prints a line for every card it cannot find while PortAudio probes;
// on a machine without a sound card that is pages of noise.
void quiet_alsa(const char*, int, const char*, int, const char*, ...) {}

class PortAudioSession {
 public:
  // `jack_name`: the JACK client PortAudio's JACK host API opens (in
  // Pa_Initialize), so jack_lsp, qjackctl and jackd's log name rackd rather
  // than "PortAudio". PortAudio keeps the pointer: the string lives here.
  explicit PortAudioSession(std::string jack_name) : jack_name_(std::move(jack_name)) {
    // Never let PortAudio's JACK host API start a JACK server behind our back.
    setenv("JACK_NO_START_SERVER", "1", 0);
    snd_lib_error_set_handler(quiet_alsa);
    if (!jack_name_.empty() && PaJack_SetClientName(jack_name_.c_str()) != paNoError)
      std::fprintf(stderr, "rackd: warning: JACK client name \"%s\" refused (too long?); PortAudio's own is used\n",
                   jack_name_.c_str());
    err_ = Pa_Initialize();
  }
  ~PortAudioSession() {
    if (err_ == paNoError) Pa_Terminate();
  }
  PortAudioSession(const PortAudioSession&) = delete;
  PortAudioSession& operator=(const PortAudioSession&) = delete;
  PaError error() const { return err_; }

 private:
  std::string jack_name_;
  PaError err_;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string full_name(PaDeviceIndex i) {
  const PaDeviceInfo* d = Pa_GetDeviceInfo(i);
  const PaHostApiInfo* h = Pa_GetHostApiInfo(d->hostApi);
  return std::string(h ? h->name : "?") + ": " + d->name;
}

// The output device for `want` (a substring of "host API: name"), or the default.
PaDeviceIndex pick_device(const std::string& want, std::string& error) {
  if (want.empty()) {
    PaDeviceIndex d = Pa_GetDefaultOutputDevice();
    if (d == paNoDevice)
      error = "no default output device (no sound card?); pass --device null (rackd's own paced device, silent "
              "input), start a JACK server (jackd -d dummy), or pass --device, and see `rackd devices`";
    return d;
  }
  const std::string w = lower(want);
  PaDeviceIndex partial = paNoDevice;
  for (PaDeviceIndex i = 0; i < Pa_GetDeviceCount(); ++i) {
    const PaDeviceInfo* d = Pa_GetDeviceInfo(i);
    if (d->maxOutputChannels < 1) continue;
    if (lower(d->name) == w) return i;
    if (partial == paNoDevice && lower(full_name(i)).find(w) != std::string::npos) partial = i;
  }
  if (partial == paNoDevice) error = "no output device matches \"" + want + "\"; see `rackd devices`";
  return partial;
}

// [rt] The device callback.
int callback(const void* input, void* output, unsigned long frames, const PaStreamCallbackTimeInfo*,
             PaStreamCallbackFlags flags, void* user) noexcept RACKD_RT {
  RtScope rt;
  auto* s = static_cast<LiveState*>(user);
  enable_ftz_daz();
  s->note_thread();
  if (flags & (paInputUnderflow | paInputOverflow | paOutputUnderflow | paOutputOverflow))
    s->xruns.fetch_add(1, std::memory_order_relaxed);
  auto** out = static_cast<float**>(output);
  if (frames != s->block) {
    // PortAudio was asked for fixed-size buffers; anything else is a driver bug.
    s->wrong_size.fetch_add(1, std::memory_order_relaxed);
    return paContinue;
  }
  const auto* const* in = static_cast<const float* const*>(input);
  for (uint32_t c = 0; c < s->in_channels; ++c) s->in_ptrs[c] = (in && c < s->device_in) ? in[c] : nullptr;
  s->run_cycle(s->in_ptrs.data(), out);
  return paContinue;
}

class PortAudioDevice final : public LiveDevice {
 public:
  PortAudioDevice(std::unique_ptr<PortAudioSession> pa, PaDeviceIndex dev, const DeviceRequest& r)
      : pa_(std::move(pa)), dev_(dev), request_(r) {
    const PaDeviceInfo* info = Pa_GetDeviceInfo(dev_);
    device_in_ = std::min<uint32_t>(r.input_channels, static_cast<uint32_t>(std::max(0, info->maxInputChannels)));
  }
  ~PortAudioDevice() override { stop(); }

  std::string name() const override { return full_name(dev_); }
  uint32_t input_channels() const override { return device_in_; }

  bool start(LiveState& state, std::string& error) override {
    const PaDeviceInfo* info = Pa_GetDeviceInfo(dev_);
    PaStreamParameters out_p{};
    out_p.device = dev_;
    out_p.channelCount = static_cast<int>(request_.output_channels);
    out_p.sampleFormat = paFloat32 | paNonInterleaved;
    out_p.suggestedLatency = info->defaultLowOutputLatency;
    PaStreamParameters in_p{};
    in_p.device = dev_;
    in_p.channelCount = static_cast<int>(device_in_);
    in_p.sampleFormat = paFloat32 | paNonInterleaved;
    in_p.suggestedLatency = info->defaultLowInputLatency;
    PaError e = Pa_OpenStream(&stream_, device_in_ ? &in_p : nullptr, &out_p, request_.rate_hz,
                              request_.block_frames, paClipOff | paDitherOff, callback, &state);
    if (e != paNoError) {
      stream_ = nullptr;
      error = "cannot open \"" + name() + "\" at " + std::to_string(request_.rate_hz) + " Hz, block " +
              std::to_string(request_.block_frames) + ": " + Pa_GetErrorText(e);
      return false;
    }
    e = Pa_StartStream(stream_);
    if (e != paNoError) {
      error = "cannot start \"" + name() + "\": " + Pa_GetErrorText(e);
      Pa_CloseStream(stream_);
      stream_ = nullptr;
      return false;
    }
    return true;
  }

  bool active() override { return stream_ && Pa_IsStreamActive(stream_) == 1; }

  void stop() override {
    if (!stream_) return;
    Pa_StopStream(stream_);
    Pa_CloseStream(stream_);
    stream_ = nullptr;
  }

 private:
  std::unique_ptr<PortAudioSession> pa_;
  PaDeviceIndex dev_;
  DeviceRequest request_;
  uint32_t device_in_ = 0;
  PaStream* stream_ = nullptr;
};

}  // namespace

std::unique_ptr<LiveDevice> open_portaudio_device(const std::string& want, const DeviceRequest& request,
                                                  std::string& error) {
  auto pa = std::make_unique<PortAudioSession>(request.jack_name);
  if (pa->error() != paNoError) {
    error = std::string("PortAudio: ") + Pa_GetErrorText(pa->error());
    return nullptr;
  }
  const PaDeviceIndex dev = pick_device(want, error);
  if (dev == paNoDevice) return nullptr;
  const PaDeviceInfo* info = Pa_GetDeviceInfo(dev);
  if (static_cast<uint32_t>(info->maxOutputChannels) < request.output_channels) {
    error = "device \"" + full_name(dev) + "\" has " + std::to_string(info->maxOutputChannels) +
            " output channels; the patch needs " + std::to_string(request.output_channels) +
            " ([server] output_channels)";
    return nullptr;
  }
  return std::make_unique<PortAudioDevice>(std::move(pa), dev, request);
}

int list_portaudio_devices() {
  PortAudioSession pa("rackd");
  if (pa.error() != paNoError) {
    std::fprintf(stderr, "rackd: PortAudio: %s\n", Pa_GetErrorText(pa.error()));
    return 1;
  }
  const PaDeviceIndex def_out = Pa_GetDefaultOutputDevice();
  const PaDeviceIndex def_in = Pa_GetDefaultInputDevice();
  for (PaDeviceIndex i = 0; i < Pa_GetDeviceCount(); ++i) {
    const PaDeviceInfo* d = Pa_GetDeviceInfo(i);
    const PaHostApiInfo* h = Pa_GetHostApiInfo(d->hostApi);
    std::printf("%-4d %-26s %-32s %4d %4d %8.0f%s%s\n", i, h ? h->name : "?", d->name, d->maxInputChannels,
                d->maxOutputChannels, d->defaultSampleRate, i == def_out ? "  default output" : "",
                i == def_in ? "  default input" : "");
  }
  if (Pa_GetDeviceCount() <= 0)
    std::printf("(no PortAudio devices; without hardware: --device null, or a JACK server: jackd -d dummy)\n");
  return 0;
}

}  // namespace rackd::server
