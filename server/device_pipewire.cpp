// The PipeWire desktop back-end of a live run (live_device.hpp): rackd as a
// sink that desktop applications play to, its output a stream to the real
// output device. docs/desktop.md argues the design; in short, two streams as
// PipeWire's own filter-chain builds a virtual sink:
//   * the sink: a capture stream with media.class Audio/Sink, the patch's
//     input channels with an explicit channel map (7.1: FL FR FC LFE RL RR SL
//     SR, the hrir module's order with PipeWire's names). Applications and the
//     session manager see an output device like any other;
//   * the output: a playback stream (Stream/Output/Audio) that the session
//     manager links to the default sink, or to --device, and moves when the
//     default changes. Both streams share node.group (one driver, one cycle)
//     and node.link-group (never linked to each other).
// The capture stream's process callback triggers the playback stream's, which
// takes the newest input buffer and the output buffer and runs one graph
// cycle: rackd's engine is clocked by the output device, as on any device.
//
// Persistence: when PipeWire goes away (restart, crash) the core reports
// EPIPE; everything is torn down and a timer tries to connect again every
// 250 ms, remaking both streams; the session manager links them as it does
// at start. The output the playback stream is linked to is watched through the
// registry (links and nodes) and reported to the session (per-output presets).
//
// Threads: [setup] for the class; the PipeWire thread loop ("rackd-pw",
// [control]) runs every callback except the process ones, which run on
// libpipewire's data thread ([rt]: cycle() allocates nothing and makes no
// system call; libpipewire's own dequeue/queue/trigger are lock-free).
#include <pipewire/extensions/metadata.h>
#include <pipewire/pipewire.h>
#include <spa/param/audio/format-utils.h>
#include <spa/utils/result.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "server/desktop_io.hpp"
#include "server/pipewire_channels.hpp"
#include "server/live_device.hpp"
#include "shm/futex.hpp"

namespace rackd::server {
namespace {

constexpr double kMoveFadeMs = 20.0;    // the output fades out before a move, in after
constexpr int kRetryMs = 250;
constexpr int kLinkCheckMs = 5000;
constexpr int kMoveTimeoutMs = 2000;     // a move whose link does not come is given up
constexpr int kSettleMs = 200;           // silent on a new output until its settings are in

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

const char* dict(const spa_dict* props, const char* key) {
  const char* v = props ? spa_dict_lookup(props, key) : nullptr;
  return v ? v : "";
}

struct NodeInfo {
  std::string name, description, media_class, serial;
};

class PipeWireDevice final : public LiveDevice {
 public:
  PipeWireDevice(const DeviceRequest& r, DesktopRequest d)
      : request_(r),
        desk_(std::move(d)),
        io_(r.block_frames, r.input_channels, r.output_channels, r.rate_hz, kMoveFadeMs, &PipeWireDevice::run, this) {
    io_.mute_now();  // silent until linked and set up for its output device
  }
  ~PipeWireDevice() override { stop(); }

  std::string name() const override { return "PipeWire: " + desk_.description; }
  uint32_t input_channels() const override { return request_.input_channels; }

  bool start(LiveState& state, std::string& error) override {
    state_ = &state;
    pw_init(nullptr, nullptr);
    loop_ = pw_thread_loop_new("rackd-pw", nullptr);
    if (!loop_) {
      error = "PipeWire: cannot create its thread loop";
      return false;
    }
    pw_loop* loop = pw_thread_loop_get_loop(loop_);
    // client-rt.conf: libpipewire-module-rt makes the data thread real-time.
    context_ = pw_context_new(loop, pw_properties_new(PW_KEY_CONFIG_NAME, "client-rt.conf", nullptr), 0);
    if (!context_) {
      error = std::string("PipeWire: cannot create a context: ") + std::strerror(errno);
      return false;
    }
    retry_ = pw_loop_add_timer(loop, &PipeWireDevice::on_retry, this);
    link_check_ = pw_loop_add_timer(loop, &PipeWireDevice::on_link_check, this);
    move_timer_ = pw_loop_add_timer(loop, &PipeWireDevice::on_move_timer, this);
    settle_timer_ = pw_loop_add_timer(loop, &PipeWireDevice::on_settle, this);
    if (!connect_core()) {
      const char* rt = std::getenv("XDG_RUNTIME_DIR");
      error = std::string("cannot connect to PipeWire: ") + std::strerror(errno) +
              " (is PipeWire running for this user? XDG_RUNTIME_DIR=" + (rt ? rt : "unset") +
              "); without PipeWire, leave out --desktop";
      return false;
    }
    if (pw_thread_loop_start(loop_) < 0) {
      error = "PipeWire: cannot start its thread loop";
      return false;
    }
    started_ = true;
    return true;
  }

  bool active() override { return started_; }

  void stop() override {
    if (!loop_) return;
    if (started_) pw_thread_loop_lock(loop_);
    teardown();
    if (retry_) pw_loop_destroy_source(pw_thread_loop_get_loop(loop_), retry_);
    if (link_check_) pw_loop_destroy_source(pw_thread_loop_get_loop(loop_), link_check_);
    if (move_timer_) pw_loop_destroy_source(pw_thread_loop_get_loop(loop_), move_timer_);
    if (settle_timer_) pw_loop_destroy_source(pw_thread_loop_get_loop(loop_), settle_timer_);
    retry_ = link_check_ = move_timer_ = settle_timer_ = nullptr;
    if (started_) {
      pw_thread_loop_unlock(loop_);
      pw_thread_loop_stop(loop_);
    }
    started_ = false;
    if (context_) pw_context_destroy(context_);
    context_ = nullptr;
    pw_thread_loop_destroy(loop_);
    loop_ = nullptr;
  }

  std::string summary_json() const override {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "\"desktop\":{\"silent_input_frames\":%llu,\"padded_frames\":%llu,\"dropped_frames\":%llu,"
                  "\"reconnects\":%u,\"moves\":%u},",
                  static_cast<unsigned long long>(io_.underrun_frames()),
                  static_cast<unsigned long long>(io_.padded_frames()),
                  static_cast<unsigned long long>(io_.dropped_frames()), reconnects_, moves_);
    return buf;
  }

  std::string note() const override {
    return "desktop sink \"" + desk_.description + "\" (" + desk_.node_name + "), " +
           std::to_string(request_.input_channels) + " channels " + desk_.positions + "; output " +
           (desk_.output_match.empty() ? "follows the default device" : "to the device matching \"" +
                                                                             desk_.output_match + "\"");
  }

 private:
  // ---- connection ([control]: the PipeWire thread, or start() before it runs)

  bool connect_core() {
    core_ = pw_context_connect(context_, nullptr, 0);
    if (!core_) return false;
    static const pw_core_events core_events = [] {
      pw_core_events e{};
      e.version = PW_VERSION_CORE_EVENTS;
      e.done = &PipeWireDevice::on_core_done;
      e.error = &PipeWireDevice::on_core_error;
      return e;
    }();
    pw_core_add_listener(core_, &core_hook_, &core_events, this);
    registry_ = pw_core_get_registry(core_, PW_VERSION_REGISTRY, 0);
    static const pw_registry_events registry_events = [] {
      pw_registry_events e{};
      e.version = PW_VERSION_REGISTRY_EVENTS;
      e.global = &PipeWireDevice::on_global;
      e.global_remove = &PipeWireDevice::on_global_remove;
      return e;
    }();
    pw_registry_add_listener(registry_, &registry_hook_, &registry_events, this);
    // The streams come once the registry has listed what exists (for --device).
    sync_seq_ = pw_core_sync(core_, PW_ID_CORE, 0);
    return true;
  }

  void teardown() {
    // Destroying the streams reports their state: nothing may react to it.
    tearing_down_ = true;
    if (move_timer_) arm(move_timer_, 0);
    if (settle_timer_) arm(settle_timer_, 0);
    // The capture stream first: it is what triggers the playback stream.
    if (capture_) pw_stream_destroy(capture_);
    capture_ = nullptr;
    playback_rt_.store(nullptr, std::memory_order_release);
    playback_streaming_.store(false, std::memory_order_release);
    if (playback_) pw_stream_destroy(playback_);
    playback_ = nullptr;
    if (metadata_) pw_proxy_destroy(reinterpret_cast<pw_proxy*>(metadata_));
    metadata_ = nullptr;
    if (registry_) pw_proxy_destroy(reinterpret_cast<pw_proxy*>(registry_));
    registry_ = nullptr;
    if (core_) pw_core_disconnect(core_);
    core_ = nullptr;
    nodes_.clear();
    links_.clear();
    moving_ = target_set_ = user_moved_ = false;
    pinned_serial_.clear();
    output_ = NodeInfo{};
    io_.mute_now();  // until the output is linked again
    tearing_down_ = false;
  }

  void arm(spa_source* timer, int ms) {
    timespec value{ms / 1000, static_cast<long>(ms % 1000) * 1'000'000L};
    timespec interval{0, 0};
    pw_loop_update_timer(pw_thread_loop_get_loop(loop_), timer, &value, &interval, false);
  }
  void arm_retry(int ms) { arm(retry_, ms); }

  // A while after the streams were made: nothing links the output without a
  // session manager, and silence would be all a user notices.
  static void on_link_check(void* data, uint64_t) {
    auto* self = static_cast<PipeWireDevice*>(data);
    if (self->core_ && self->output_.name.empty())
      std::fprintf(stderr,
                   "rackd: desktop: warning: after %d s the output is linked to no device; is a session manager "
                   "(WirePlumber) running, and is there an output device?\n",
                   kLinkCheckMs / 1000);
  }

  static void on_retry(void* data, uint64_t) {
    auto* self = static_cast<PipeWireDevice*>(data);
    self->teardown();
    if (!self->connect_core()) {
      self->arm_retry(kRetryMs);
      return;
    }
    ++self->reconnects_;
    std::fprintf(stderr, "rackd: desktop: connected to PipeWire again\n");
  }

  static void on_core_error(void* data, uint32_t id, int, int res, const char* message) {
    auto* self = static_cast<PipeWireDevice*>(data);
    if (id != PW_ID_CORE || res != -EPIPE) {
      if (id == PW_ID_CORE)
        std::fprintf(stderr, "rackd: desktop: PipeWire: %s (%s)\n", message ? message : "", spa_strerror(res));
      return;
    }
    std::fprintf(stderr, "rackd: desktop: PipeWire went away; reconnecting every %d ms\n", kRetryMs);
    self->output_ = NodeInfo{};
    self->arm_retry(1);  // not from inside the core's own callback
  }

  static void on_core_done(void* data, uint32_t id, int seq) {
    auto* self = static_cast<PipeWireDevice*>(data);
    if (id != PW_ID_CORE || seq != self->sync_seq_ || self->capture_) return;
    if (!self->make_streams()) self->arm_retry(kRetryMs);
  }

  // ---- streams

  pw_properties* common_props(const char* media_class) const {
    const std::string latency = std::to_string(request_.block_frames) + "/" + std::to_string(request_.rate_hz);
    const std::string group = "rackd-" + std::to_string(::getpid());
    return pw_properties_new(PW_KEY_MEDIA_TYPE, "Audio", PW_KEY_MEDIA_CLASS,
                             media_class, PW_KEY_NODE_GROUP, group.c_str(), PW_KEY_NODE_LINK_GROUP, group.c_str(),
                             PW_KEY_NODE_LATENCY, latency.c_str(), PW_KEY_NODE_ALWAYS_PROCESS, "true",
                             PW_KEY_APP_NAME, "rackd", nullptr);
  }

  static const spa_pod* format(spa_pod_builder& b, uint32_t rate, const std::vector<uint32_t>& positions) {
    spa_audio_info_raw info{};
    info.format = SPA_AUDIO_FORMAT_F32P;
    info.rate = rate;
    info.channels = static_cast<uint32_t>(positions.size());
    for (std::size_t i = 0; i < positions.size() && i < SPA_AUDIO_MAX_CHANNELS; ++i) info.position[i] = positions[i];
    return spa_format_audio_raw_build(&b, SPA_PARAM_EnumFormat, &info);
  }

  static pw_stream_events stream_events(void (*process)(void*),
                                        void (*state)(void*, pw_stream_state, pw_stream_state, const char*)) {
    pw_stream_events e{};
    e.version = PW_VERSION_STREAM_EVENTS;
    e.state_changed = state;
    e.process = process;
    return e;
  }

  bool make_streams() {
    static const pw_stream_events capture_events = stream_events(&PipeWireDevice::on_capture_process, &PipeWireDevice::on_state);
    static const pw_stream_events playback_events = stream_events(&PipeWireDevice::on_playback_process, &PipeWireDevice::on_playback_state);
    pw_properties* cp = common_props("Audio/Sink");
    pw_properties_set(cp, PW_KEY_NODE_NAME, desk_.node_name.c_str());
    pw_properties_set(cp, PW_KEY_NODE_DESCRIPTION, desk_.description.c_str());
    pw_properties_set(cp, PW_KEY_NODE_VIRTUAL, "true");
    pw_properties_setf(cp, PW_KEY_AUDIO_CHANNELS, "%u", request_.input_channels);
    pw_properties_set(cp, SPA_KEY_AUDIO_POSITION, desk_.positions.c_str());
    capture_ = pw_stream_new(core_, "rackd sink", cp);

    pw_properties* pp = common_props("Stream/Output/Audio");
    const std::string out_name = desk_.node_name + ".output";
    const std::string out_desc = desk_.description + " (output)";
    pw_properties_set(pp, PW_KEY_NODE_NAME, out_name.c_str());
    pw_properties_set(pp, PW_KEY_NODE_DESCRIPTION, out_desc.c_str());
    pw_properties_set(pp, PW_KEY_STREAM_DONT_REMIX, "true");
    if (const NodeInfo* target = matching_output()) pw_properties_set(pp, PW_KEY_TARGET_OBJECT, target->name.c_str());
    else if (!desk_.output_match.empty())
      std::fprintf(stderr, "rackd: desktop: no output device matches \"%s\" yet; playing on the default one\n",
                   desk_.output_match.c_str());
    playback_ = pw_stream_new(core_, "rackd output", pp);
    if (!capture_ || !playback_) {
      std::fprintf(stderr, "rackd: desktop: PipeWire refused a stream: %s\n", std::strerror(errno));
      return false;
    }
    pw_stream_add_listener(capture_, &capture_hook_, &capture_events, this);
    pw_stream_add_listener(playback_, &playback_hook_, &playback_events, this);
    playback_rt_.store(playback_, std::memory_order_release);

    uint8_t buf[2048];
    spa_pod_builder b{};
    spa_pod_builder_init(&b, buf, sizeof buf);
    const spa_pod* in_params[1] = {format(b, request_.rate_hz, desk_.in_positions)};
    const spa_pod* out_params[1] = {format(b, request_.rate_hz, desk_.out_positions)};
    const auto flags = static_cast<pw_stream_flags>(PW_STREAM_FLAG_AUTOCONNECT | PW_STREAM_FLAG_MAP_BUFFERS |
                                                    PW_STREAM_FLAG_RT_PROCESS);
    int r = pw_stream_connect(capture_, PW_DIRECTION_INPUT, PW_ID_ANY, flags, in_params, 1);
    if (r >= 0)
      r = pw_stream_connect(playback_, PW_DIRECTION_OUTPUT, PW_ID_ANY,
                            static_cast<pw_stream_flags>(flags | PW_STREAM_FLAG_TRIGGER), out_params, 1);
    if (r < 0) {
      std::fprintf(stderr, "rackd: desktop: cannot connect the streams: %s\n", spa_strerror(r));
      return false;
    }
    arm(link_check_, kLinkCheckMs);
    if (!announced_) {
      std::fprintf(stderr, "rackd: desktop: connected to PipeWire; sink \"%s\" (%s) is up\n", desk_.description.c_str(),
                   desk_.node_name.c_str());
      announced_ = true;
    }
    return true;
  }

  static void on_state(void* data, pw_stream_state, pw_stream_state state, const char* error) {
    auto* self = static_cast<PipeWireDevice*>(data);
    if (state == PW_STREAM_STATE_ERROR)
      std::fprintf(stderr, "rackd: desktop: the sink: %s\n", error ? error : "error");
    self->check_output();
  }

  // The capture stream triggers the playback stream only while that one
  // streams: triggering it before its format is set crashes libpipewire 0.3.65.
  static void on_playback_state(void* data, pw_stream_state, pw_stream_state state, const char* error) {
    auto* self = static_cast<PipeWireDevice*>(data);
    self->playback_streaming_.store(state == PW_STREAM_STATE_STREAMING, std::memory_order_release);
    self->reconcile();
    if (state == PW_STREAM_STATE_ERROR)
      std::fprintf(stderr, "rackd: desktop: no output device yet (PipeWire: %s); waiting for one\n",
                   error ? error : "error");
    self->check_output();
  }

  // ---- the registry: which device the output plays on

  static void on_global(void* data, uint32_t id, uint32_t, const char* type, uint32_t, const spa_dict* props) {
    auto* self = static_cast<PipeWireDevice*>(data);
    if (std::strcmp(type, PW_TYPE_INTERFACE_Node) == 0) {
      self->nodes_[id] = NodeInfo{dict(props, PW_KEY_NODE_NAME), dict(props, PW_KEY_NODE_DESCRIPTION),
                                  dict(props, PW_KEY_MEDIA_CLASS), dict(props, PW_KEY_OBJECT_SERIAL)};
      self->reconcile();
    } else if (std::strcmp(type, PW_TYPE_INTERFACE_Link) == 0) {
      const char* out = dict(props, PW_KEY_LINK_OUTPUT_NODE);
      const char* in = dict(props, PW_KEY_LINK_INPUT_NODE);
      if (*out && *in) self->links_[id] = {static_cast<uint32_t>(std::atol(out)), static_cast<uint32_t>(std::atol(in))};
      self->check_output();
    } else if (std::strcmp(type, PW_TYPE_INTERFACE_Metadata) == 0 && !self->metadata_ &&
               std::strcmp(dict(props, PW_KEY_METADATA_NAME), "default") == 0) {
      self->metadata_ = static_cast<pw_metadata*>(
          pw_registry_bind(self->registry_, id, PW_TYPE_INTERFACE_Metadata, PW_VERSION_METADATA, 0));
      static const pw_metadata_events metadata_events = [] {
        pw_metadata_events e{};
        e.version = PW_VERSION_METADATA_EVENTS;
        e.property = &PipeWireDevice::on_metadata_property;
        return e;
      }();
      if (self->metadata_) pw_metadata_add_listener(self->metadata_, &self->metadata_hook_, &metadata_events, self);
    }
  }

  static void on_global_remove(void* data, uint32_t id) {
    auto* self = static_cast<PipeWireDevice*>(data);
    self->nodes_.erase(id);
    const auto link = self->links_.find(id);
    if (link == self->links_.end()) return;
    // The output's link went away without rackd moving it (a device
    // unplugged): silent until the session manager links it elsewhere, then
    // faded in, rather than starting there mid-signal.
    const uint32_t node = self->playback_ ? pw_stream_get_node_id(self->playback_) : SPA_ID_INVALID;
    if (link->second.first == node && !self->moving_) self->io_.mute_now();
    self->links_.erase(link);
    self->check_output();
  }

  static bool is_sink(const NodeInfo& n) { return n.media_class == "Audio/Sink"; }

  // The --device sink, if present (never rackd's own).
  const NodeInfo* matching_output() const {
    if (desk_.output_match.empty()) return nullptr;
    const std::string want = lower(desk_.output_match);
    for (const auto& [id, n] : nodes_) {
      if (!is_sink(n) || n.name == desk_.node_name) continue;
      if (lower(n.name).find(want) != std::string::npos || lower(n.description).find(want) != std::string::npos)
        return &n;
    }
    return nullptr;
  }

  // ---- which device the output plays on, and moving it there without a click
  //
  // The output plays on the --device match or else on the default sink; while
  // rackd's own sink is the default (how a user sends the desktop through
  // rackd), on the default before it. rackd pins its output there (the
  // stream's target.object in the "default" metadata, as pavucontrol does) so
  // the session manager does not move it, and moves it itself: fade out, the
  // new device's settings, the move, 200 ms for the settings to arrive, fade
  // in. A move the user makes by hand (pavucontrol) stands until the default
  // changes again.

  const NodeInfo* wanted_output() const {
    if (!desk_.output_match.empty()) return matching_output();
    for (const auto& [id, n] : nodes_)
      if (is_sink(n) && n.name == real_default_) return &n;
    return nullptr;
  }

  void reconcile() {
    if (tearing_down_ || !playback_ || !metadata_ || moving_ || user_moved_) return;
    const NodeInfo* want = wanted_output();
    if (!want || want->serial.empty()) return;
    const uint32_t node = pw_stream_get_node_id(playback_);
    if (node == SPA_ID_INVALID) return;
    if (want->name == output_.name) {
      if (pinned_serial_ != want->serial) {
        pinned_serial_ = want->serial;
        pw_metadata_set_property(metadata_, node, "target.object", "Spa:Id", pinned_serial_.c_str());
      }
      return;
    }
    move_serial_ = want->serial;
    moving_ = true;
    target_set_ = false;
    move_started_ns_ = shm::now_ns();
    // The new device's settings take effect while the output is silent.
    ++moves_;
    announce(*want);
    if (output_.name.empty()) {  // not playing anywhere yet: nothing to fade
      on_move_timer(this, 0);
      return;
    }
    io_.fade_to(0.0f);
    arm(move_timer_, 2);
  }

  static void on_move_timer(void* data, uint64_t) {
    auto* self = static_cast<PipeWireDevice*>(data);
    if (!self->moving_) return;
    if (!self->target_set_) {
      // Wait for the fade (a stalled output cannot fade: move after 200 ms).
      if (!self->io_.faded_out() && shm::now_ns() - self->move_started_ns_ < 200'000'000ull) {
        self->arm(self->move_timer_, 2);
        return;
      }
      const uint32_t node = self->playback_ ? pw_stream_get_node_id(self->playback_) : SPA_ID_INVALID;
      if (self->metadata_ && node != SPA_ID_INVALID) {
        self->pinned_serial_ = self->move_serial_;
        pw_metadata_set_property(self->metadata_, node, "target.object", "Spa:Id", self->move_serial_.c_str());
      }
      self->target_set_ = true;
      self->arm(self->move_timer_, kMoveTimeoutMs);
      return;
    }
    // No link to the new device in time: play on where we are.
    self->moving_ = false;
    self->io_.fade_to(1.0f);
  }

  void announce(const NodeInfo& n) {
    if (desk_.on_output) desk_.on_output(n.name, n.description);
    else std::fprintf(stderr, "rackd: desktop: output is \"%s\" (%s)\n", n.description.c_str(), n.name.c_str());
  }

  static void on_settle(void* data, uint64_t) { static_cast<PipeWireDevice*>(data)->io_.fade_to(1.0f); }

  static int on_metadata_property(void* data, uint32_t subject, const char* key, const char*, const char* value) {
    auto* self = static_cast<PipeWireDevice*>(data);
    if (!key) return 0;
    const uint32_t node = self->playback_ ? pw_stream_get_node_id(self->playback_) : SPA_ID_INVALID;
    if (subject != PW_ID_CORE && subject == node && std::strcmp(key, "target.object") == 0) {
      // Someone else (pavucontrol, pactl move-sink-input) moves the output:
      // their choice stands until the default changes.
      if (value && self->pinned_serial_ != value) {
        self->pinned_serial_ = value;
        self->user_moved_ = true;
      }
      return 0;
    }
    if (subject != PW_ID_CORE || std::strcmp(key, "default.audio.sink") != 0) return 0;
    // {"name":"alsa_output.usb-..."}
    std::string name;
    if (const char* v = value ? std::strstr(value, "\"name\"") : nullptr) {
      if (const char* q = std::strchr(v + 6, '"')) {
        if (const char* e = std::strchr(q + 1, '"')) name.assign(q + 1, e);
      }
    }
    if (!name.empty() && name != self->desk_.node_name) self->real_default_ = name;
    self->user_moved_ = false;
    self->reconcile();
    return 0;
  }

  void check_output() {
    if (tearing_down_ || !playback_) return;
    const uint32_t node = pw_stream_get_node_id(playback_);
    if (node == SPA_ID_INVALID) return;
    for (const auto& [id, l] : links_) {
      if (l.first != node) continue;
      const auto it = nodes_.find(l.second);
      if (it == nodes_.end()) continue;
      if (it->second.name == output_.name) return;
      output_ = it->second;
      if (moving_) {
        moving_ = false;  // announced when it began
      } else {
        // The session manager linked it (at start, device gone, the user's
        // choice): its settings take effect before it is heard.
        const NodeInfo* want = wanted_output();
        user_moved_ = want && want->name != output_.name;
        io_.fade_to(0.0f);
        announce(output_);
      }
      // Sound comes back once the settings have arrived (the control thread
      // applies them within its 100 ms tick; eq bands glide meanwhile).
      arm(settle_timer_, kSettleMs);
      reconcile();  // pin it there
      return;
    }
  }

  // ---- processing ([rt], libpipewire's data thread)

  // Every buffer the sink received goes into the FIFO once; then the output
  // stream runs, in this same cycle.
  static void on_capture_process(void* data) {
    auto* self = static_cast<PipeWireDevice*>(data);
    pw_stream* playback = self->playback_rt_.load(std::memory_order_acquire);
    const bool running = playback && self->playback_streaming_.load(std::memory_order_acquire);
    while (pw_buffer* b = pw_stream_dequeue_buffer(self->capture_)) {
      if (running) self->push(b->buffer);
      pw_stream_queue_buffer(self->capture_, b);
    }
    if (!running || pw_stream_trigger_process(playback) < 0) self->io_.discard_input();
  }

  void push(const spa_buffer* b) noexcept RACKD_RT {
    const float* in[shm::kMaxChannels] = {};
    uint32_t n = DesktopIo::kMaxQuantum;
    bool any = false;
    for (uint32_t c = 0; c < request_.input_channels && c < b->n_datas; ++c) {
      const spa_data& d = b->datas[c];
      if (!d.data || !d.chunk) continue;
      const uint32_t off = std::min(d.chunk->offset, d.maxsize);
      const uint32_t size = std::min(d.chunk->size, d.maxsize - off);
      in[c] = reinterpret_cast<const float*>(static_cast<const uint8_t*>(d.data) + off);
      n = std::min<uint32_t>(n, size / sizeof(float));
      any = true;
    }
    if (any && n) io_.push_input(in, n);
  }

  static void on_playback_process(void* data) {
    auto* self = static_cast<PipeWireDevice*>(data);
    pw_buffer* out = pw_stream_dequeue_buffer(self->playback_);
    if (!out) return;
    spa_buffer* ob = out->buffer;
    uint32_t n = ob->n_datas ? ob->datas[0].maxsize / sizeof(float) : 0;
    if (out->requested) n = std::min<uint32_t>(n, static_cast<uint32_t>(out->requested));
    n = std::min(n, DesktopIo::kMaxQuantum);
    float* ptrs[shm::kMaxChannels] = {};
    for (uint32_t c = 0; c < self->request_.output_channels && c < ob->n_datas; ++c) {
      spa_data& d = ob->datas[c];
      ptrs[c] = static_cast<float*>(d.data);
      d.chunk->offset = 0;
      d.chunk->stride = sizeof(float);
      d.chunk->size = n * sizeof(float);
    }
    self->cycle(ptrs, n);
    pw_stream_queue_buffer(self->playback_, out);
  }

  void cycle(float* const* out, uint32_t n) noexcept RACKD_RT {
    RtScope rt;
    enable_ftz_daz();
    state_->note_thread();
    io_.pull_output(out, n);
  }

  // One engine cycle (DesktopIo::Run).
  static void run(void* ctx, const float* const* in, float* const* out) noexcept RACKD_RT {
    static_cast<PipeWireDevice*>(ctx)->state_->run_cycle(in, out);
  }

  DeviceRequest request_;
  DesktopRequest desk_;
  LiveState* state_ = nullptr;
  pw_thread_loop* loop_ = nullptr;
  pw_context* context_ = nullptr;
  pw_core* core_ = nullptr;
  spa_hook core_hook_{};
  pw_registry* registry_ = nullptr;
  spa_hook registry_hook_{};
  pw_metadata* metadata_ = nullptr;
  pw_stream* capture_ = nullptr;
  pw_stream* playback_ = nullptr;
  std::atomic<pw_stream*> playback_rt_{nullptr};
  std::atomic<bool> playback_streaming_{false};
  spa_hook capture_hook_{};
  spa_hook playback_hook_{};
  spa_source* retry_ = nullptr;
  spa_source* link_check_ = nullptr;
  spa_source* move_timer_ = nullptr;
  spa_source* settle_timer_ = nullptr;
  spa_hook metadata_hook_{};
  std::string real_default_;                                 // the default sink, never rackd's own
  std::string move_serial_;                                  // where a move goes
  std::string pinned_serial_;                                // the output's target.object as rackd set it
  uint64_t move_started_ns_ = 0;
  bool moving_ = false, target_set_ = false, user_moved_ = false, tearing_down_ = false;
  uint32_t reconnects_ = 0, moves_ = 0;
  int sync_seq_ = -1;
  bool started_ = false;
  bool announced_ = false;
  std::map<uint32_t, NodeInfo> nodes_;
  std::map<uint32_t, std::pair<uint32_t, uint32_t>> links_;  // link id -> output node, input node
  NodeInfo output_;                                          // where the output plays now
  DesktopIo io_;                                             // the audio thread's side
};

}  // namespace

std::unique_ptr<LiveDevice> open_pipewire_device(const DeviceRequest& request, DesktopRequest desktop,
                                                 std::string& error) {
  if (request.input_channels == 0) {
    error = "--desktop: the patch reads no device input, so a sink would go nowhere; use a patch whose first "
            "module reads source = \"device\" (patches/binaural-7.1.toml)";
    return nullptr;
  }
  const auto in = positions_for(request.input_channels);
  desktop.in_positions = in;
  desktop.out_positions = positions_for(request.output_channels);
  desktop.positions = position_names(in);
  return std::make_unique<PipeWireDevice>(request, std::move(desktop));
}

}  // namespace rackd::server
