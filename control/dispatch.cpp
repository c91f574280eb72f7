// OSC handlers. [control] thread only.
#include "control/dispatch.hpp"

#include <cmath>
#include <cstring>
#include <limits>

#include "control/address.hpp"

namespace rackd::control {
namespace {

std::string module_name(const shm::ModuleIn& in) { return std::string(in.name, strnlen(in.name, shm::kNameBytes)); }

const char* state_text(uint32_t s) {
  if (s > static_cast<uint32_t>(shm::ModuleState::kSetupError)) return "unknown";
  return shm::state_name(static_cast<shm::ModuleState>(s));
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Reads a 0|1 / true|false switch argument the way a bool parameter would.
bool switch_arg(const OscArg& a, bool& on, std::string& why) {
  static const registry::ParamSpec kSwitch{"value", shm::ParamKind::kBool, 1, 0, 1, 0, "", ""};
  double v = 0;
  if (!convert_arg(kSwitch, a, v, why)) return false;
  on = v >= 0.5;
  return true;
}

}  // namespace

Dispatcher::Dispatcher(shm::Segment& segment, const graph::Patch& patch, ServerHooks hooks, OscMap map,
                       SendFn send, uint16_t feedback_port)
    : segment_(segment),
      patch_(patch),
      hooks_(std::move(hooks)),
      map_(std::move(map)),
      send_(std::move(send)),
      feedback_port_(feedback_port) {
  if (hooks_.rate_hz == 0) hooks_.rate_hz = 48000;
  period_ns_ = 1e9 * hooks_.block_frames / hooks_.rate_hz;
  sync_slots();
  fed_.assign(map_.entries.size(), std::numeric_limits<double>::quiet_NaN());
  subscribers_.reserve(kMaxSubscribers);
  if (feedback_port_ != 0) {
    controller_ = Peer::loopback(feedback_port_);
    have_controller_ = !map_.entries.empty();
  }
}

void Dispatcher::sync_slots() {
  if (!seen_names_.empty() && hooks_.graph_version && hooks_.graph_version() == seen_version_ &&
      seen_.size() == patch_.modules.size())
    return;
  if (hooks_.graph_version) seen_version_ = hooks_.graph_version();
  // Mappings follow their module by name: a module replaced by a load lives
  // in another slot, a removed one leaves its mappings without a target.
  for (OscMapping& mp : map_.entries) {
    std::string why;
    if (!resolve_param(patch_, mp.to, mp.target, why)) mp.target.module = shm::kNoSlot;
  }
  const uint32_t n = std::min<uint32_t>(segment_.module_count(), static_cast<uint32_t>(patch_.modules.size()));
  seen_.resize(n);
  values_.resize(n);
  seen_names_.resize(n, std::string(1, '\0'));
  for (uint32_t i = 0; i < n; ++i) {
    const std::string& name = patch_.modules[i].name;
    if (seen_names_[i] == name) continue;
    seen_names_[i] = name;
    const shm::ModuleIn& in = segment_.module_in(i);
    seen_[i] = ModuleSeen{};
    seen_[i].state = in.state.load(std::memory_order_acquire);
    seen_[i].restarts = in.restarts.load(std::memory_order_relaxed);
    seen_[i].bypassed = in.bypassed.load(std::memory_order_relaxed);
    seen_[i].muted = in.muted.load(std::memory_order_relaxed);
    seen_[i].epoch = in.param_epoch.load(std::memory_order_acquire);
    values_[i].clear();
    const std::size_t np = patch_.modules[i].spec ? patch_.modules[i].spec->params.size() : 0;
    for (uint32_t p = 0; p < np; ++p) values_[i].push_back(value_of(i, p));
  }
}

ParamValues Dispatcher::value_of(uint32_t i, uint32_t p) const {
  const registry::TypeSpec* spec = patch_.modules[i].spec;
  if (const int k = spec ? registry::output_slot(*spec, p) : -1; k >= 0) {
    ParamValues v{};
    v[0] = segment_.module_out(i).outputs[k].load(std::memory_order_relaxed);
    return v;
  }
  return get_param(segment_.module_in(i), p);
}

void Dispatcher::error(const Peer& to, std::string_view address, std::string_view reason) {
  OscMessage e;
  e.address = "/rackd/error";
  e.args.push_back(OscArg::string(std::string(address)));
  e.args.push_back(OscArg::string(std::string(reason)));
  send_(to, e);
}

void Dispatcher::dispatch(const OscMessage& m, const Peer& from) {
  const std::string& a = m.address;
  sync_slots();
  if (a.rfind("/rackd/", 0) == 0) {
    if (a == "/rackd/module/add" || a == "/rackd/module/remove" || a == "/rackd/connect" ||
        a == "/rackd/disconnect" || a == "/rackd/patch/load" || a == "/rackd/patch/save" || a == "/rackd/graph") {
      if (!hooks_.graph) return error(from, a, "live graph changes are not available");
      return hooks_.graph(m, from);
    }
    if (a == "/rackd/status") {
      if (!m.args.empty()) return error(from, a, "takes no arguments");
      return status(from);
    }
    if (a == "/rackd/notify") return notify(m, from);
    if (a == "/rackd/module/restart") return restart(m, from);
    if (a == "/rackd/module/bypass") return bypass(m, from);
    if (a == "/rackd/sync") {
      if (m.args.size() > 1 || (m.args.size() == 1 && m.args[0].tag != 'i'))
        return error(from, a, "takes an optional int32 id");
      OscMessage r{"/rackd/synced", m.args};
      return send_(from, r);
    }
    return error(from, a, "unknown address (rackd: /rackd/status, /rackd/notify, /rackd/module/restart, "
                          "/rackd/module/bypass, /rackd/sync, /rackd/module/add, /rackd/module/remove, "
                          "/rackd/connect, /rackd/disconnect, /rackd/patch/load, /rackd/patch/save, /rackd/graph)");
  }
  if (const OscMapping* mp = map_.find(a)) return mapped(*mp, m, from);
  param(m, from);
}

void Dispatcher::param(const OscMessage& m, const Peer& from) {
  ParamRef ref;
  std::string why;
  if (resolve_param(patch_, m.address, ref, why)) {
    if (ref.module >= seen_.size()) return error(from, m.address, "module is not in the segment");
    if (ref.spec->output)
      return error(from, m.address, "is a value the module reports (read-only); read it with " + m.address + "/get");
    shm::ModuleIn& in = segment_.module_in(ref.module);
    if (!set_param(in, ref.param, *ref.spec, m.args, why)) return error(from, m.address, why);
    return;
  }
  if (ends_with(m.address, "/get")) {
    const std::string base = m.address.substr(0, m.address.size() - 4);
    std::string why_get;
    if (resolve_param(patch_, base, ref, why_get)) {
      if (!m.args.empty()) return error(from, m.address, "takes no arguments");
      if (ref.module >= seen_.size()) return error(from, m.address, "module is not in the segment");
      OscMessage r{base, param_args(*ref.spec, value_of(ref.module, ref.param))};
      return send_(from, r);
    }
  }
  error(from, m.address, why);
}

void Dispatcher::mapped(const OscMapping& mp, const OscMessage& m, const Peer& from) {
  if (m.args.size() != 1) return error(from, m.address, "a mapped control takes one value (0..1)");
  const OscArg& a = m.args[0];
  double x = 0;
  if (a.is_number()) x = a.number();
  else if (a.tag == 'T' || a.tag == 'F') x = a.tag == 'T' ? 1.0 : 0.0;
  else return error(from, m.address, "a mapped control takes a number or true/false");
  if (!std::isfinite(x)) return error(from, m.address, "value is not a finite number");
  const OscArg v = OscArg::float64(map_to_param(mp, x));
  std::string why;
  if (mp.target.module >= seen_.size()) return error(from, m.address, "module is not in the segment");
  if (mp.target.spec->output) return error(from, m.address, mp.to + " is a value the module reports (read-only)");
  shm::ModuleIn& in = segment_.module_in(mp.target.module);
  if (!set_param(in, mp.target.param, *mp.target.spec, std::span<const OscArg>(&v, 1), why))
    return error(from, m.address, mp.to + ": " + why);
  // The controller that moved this control already shows it: no echo for
  // this mapping; others mapped to the same parameter follow on tick().
  fed_[static_cast<std::size_t>(&mp - map_.entries.data())] = get_param(in, mp.target.param)[0];
  Peer to = from;
  if (feedback_port_ != 0) to.addr.sin_port = htons(feedback_port_);
  const bool changed = !have_controller_ || !(to == controller_);
  controller_ = to;
  have_controller_ = true;
  if (changed) feedback(true);
}

void Dispatcher::append_counters(OscMessage& r) const {
  r.args.push_back(OscArg::int64(static_cast<int64_t>(hooks_.cycles ? hooks_.cycles() : 0)));
  r.args.push_back(OscArg::int64(static_cast<int64_t>(hooks_.xruns ? hooks_.xruns() : 0)));
  r.args.push_back(OscArg::int64(static_cast<int64_t>(hooks_.limited_frames ? hooks_.limited_frames() : 0)));
}

void Dispatcher::append_load(OscMessage& r, uint32_t module) const {
  const shm::ModuleOut& out = segment_.module_out(module);
  r.args.push_back(OscArg::float32(static_cast<float>(out.last_block_ns.load(std::memory_order_relaxed) / period_ns_)));
  r.args.push_back(OscArg::float32(static_cast<float>(out.max_block_ns.load(std::memory_order_relaxed) / period_ns_)));
  r.args.push_back(OscArg::int64(static_cast<int64_t>(segment_.module_in(module).late.load(std::memory_order_relaxed))));
}

void Dispatcher::status(const Peer& from) {
  OscMessage r;
  r.address = "/rackd/status.reply";
  r.args.push_back(OscArg::int32(static_cast<int32_t>(hooks_.rate_hz)));
  r.args.push_back(OscArg::int32(static_cast<int32_t>(hooks_.block_frames)));
  append_counters(r);
  int32_t count = 0;
  for (uint32_t i = 0; i < seen_.size(); ++i) count += live(i) ? 1 : 0;
  r.args.push_back(OscArg::int32(count));
  for (uint32_t i = 0; i < seen_.size(); ++i) {
    if (!live(i)) continue;
    const shm::ModuleIn& in = segment_.module_in(i);
    r.args.push_back(OscArg::string(module_name(in)));
    r.args.push_back(OscArg::string(patch_.modules[i].type));
    r.args.push_back(OscArg::string(state_text(in.state.load(std::memory_order_acquire))));
    append_load(r, i);
    r.args.push_back(OscArg::int64(static_cast<int64_t>(in.restarts.load(std::memory_order_relaxed))));
    r.args.push_back(OscArg::int32(static_cast<int32_t>(in.bypassed.load(std::memory_order_relaxed))));
    r.args.push_back(OscArg::int32(static_cast<int32_t>(in.muted.load(std::memory_order_relaxed))));
    r.args.push_back(OscArg::int32(static_cast<int32_t>(patch_.modules[i].spec->latency_frames)));
  }
  send_(from, r);
}

void Dispatcher::notify(const OscMessage& m, const Peer& from) {
  bool on = false;
  std::string why;
  if (m.args.size() != 1) return error(from, m.address, "takes one argument: 1 to subscribe, 0 to unsubscribe");
  if (!switch_arg(m.args[0], on, why)) return error(from, m.address, why);
  for (auto it = subscribers_.begin(); it != subscribers_.end(); ++it) {
    if (*it == from) {
      subscribers_.erase(it);
      break;
    }
  }
  if (on) {
    // A full list drops its oldest subscriber: clients that vanished without
    // unsubscribing never lock new ones out.
    if (subscribers_.size() == kMaxSubscribers) subscribers_.erase(subscribers_.begin());
    subscribers_.push_back(from);
  }
  send_(from, OscMessage{"/rackd/notify.reply", {OscArg::int32(on ? 1 : 0)}});
  if (on) {
    for (uint32_t i = 0; i < seen_.size(); ++i) {
      if (live(i)) send_(from, module_state(i));
    }
  }
}

bool Dispatcher::module_arg(const OscMessage& m, const Peer& from, std::size_t nargs, uint32_t& slot) {
  if (m.args.size() != nargs || (m.args[0].tag != 's' && m.args[0].tag != 'S')) {
    error(from, m.address, nargs == 1 ? "takes one argument: the module name"
                                      : "takes two arguments: the module name and 0|1");
    return false;
  }
  const int i = find_module(patch_, m.args[0].s);
  if (i < 0 || static_cast<uint32_t>(i) >= seen_.size()) {
    error(from, m.address, "unknown module \"" + m.args[0].s + "\"");
    return false;
  }
  slot = static_cast<uint32_t>(i);
  return true;
}

void Dispatcher::restart(const OscMessage& m, const Peer& from) {
  uint32_t slot = 0;
  if (!module_arg(m, from, 1, slot)) return;
  std::string why = "restart is not available";
  if (!hooks_.restart || !hooks_.restart(slot, why)) return error(from, m.address, why);
  send_(from, OscMessage{"/rackd/done", {OscArg::string(m.address), OscArg::string(m.args[0].s)}});
}

void Dispatcher::bypass(const OscMessage& m, const Peer& from) {
  uint32_t slot = 0;
  if (!module_arg(m, from, 2, slot)) return;
  bool on = false;
  std::string why;
  if (!switch_arg(m.args[1], on, why)) return error(from, m.address, why);
  shm::ModuleIn& in = segment_.module_in(slot);
  const graph::PatchModule& pm = patch_.modules[slot];
  if (on && !(pm.spec && pm.spec->bypassable && pm.in_channels == pm.out_channels && pm.has_input()))
    return error(from, m.address, "module \"" + pm.name + "\" cannot be bypassed (type \"" + pm.type +
                                      "\" is not bypassable, or it has no input with matching channels)");
  if (hooks_.bypass) {
    if (!hooks_.bypass(slot, on, why)) return error(from, m.address, why);
  } else {
    in.bypassed.store(on ? 1u : 0u, std::memory_order_relaxed);
  }
  send_(from, OscMessage{"/rackd/done", {OscArg::string(m.address), OscArg::string(m.args[0].s)}});
}

OscMessage Dispatcher::module_state(uint32_t i) const {
  const shm::ModuleIn& in = segment_.module_in(i);
  return OscMessage{"/rackd/module/state",
                    {OscArg::string(module_name(in)), OscArg::string(state_text(in.state.load(std::memory_order_acquire))),
                     OscArg::int64(static_cast<int64_t>(in.restarts.load(std::memory_order_relaxed))),
                     OscArg::int32(static_cast<int32_t>(in.bypassed.load(std::memory_order_relaxed))),
                     OscArg::int32(static_cast<int32_t>(in.muted.load(std::memory_order_relaxed)))}};
}

void Dispatcher::send_all(const OscMessage& m) {
  for (const Peer& p : subscribers_) send_(p, m);
}

void Dispatcher::tick(bool meters) {
  sync_slots();
  for (uint32_t i = 0; i < seen_.size(); ++i) {
    if (!live(i)) continue;
    const shm::ModuleIn& in = segment_.module_in(i);
    ModuleSeen now;
    now.state = in.state.load(std::memory_order_acquire);
    now.restarts = in.restarts.load(std::memory_order_relaxed);
    now.bypassed = in.bypassed.load(std::memory_order_relaxed);
    now.muted = in.muted.load(std::memory_order_relaxed);
    now.epoch = in.param_epoch.load(std::memory_order_acquire);
    ModuleSeen& was = seen_[i];
    if (now.state != was.state || now.restarts != was.restarts || now.bypassed != was.bypassed ||
        now.muted != was.muted) {
      send_all(module_state(i));
    }
    if (now.epoch != was.epoch) {
      const registry::TypeSpec* spec = patch_.modules[i].spec;
      for (uint32_t p = 0; p < values_[i].size(); ++p) {
        if (spec->params[p].output) continue;
        const ParamValues v = get_param(in, p);
        if (v == values_[i][p]) continue;
        values_[i][p] = v;
        send_all(OscMessage{"/" + patch_.modules[i].name + "/" + spec->params[p].name, param_args(spec->params[p], v)});
      }
    }
    // What the module reports (meters, latency) changes without an epoch;
    // followed every tick, sent to whoever subscribes.
    const registry::TypeSpec* spec = patch_.modules[i].spec;
    for (uint32_t p = 0; p < values_[i].size(); ++p) {
      if (!spec->params[p].output) continue;
      const ParamValues v = value_of(i, p);
      if (v == values_[i][p]) continue;
      values_[i][p] = v;
      if (!subscribers_.empty())
        send_all(OscMessage{"/" + patch_.modules[i].name + "/" + spec->params[p].name, param_args(spec->params[p], v)});
    }
    was = now;
  }
  if (meters && !subscribers_.empty()) {
    OscMessage r;
    r.address = "/rackd/meters";
    append_counters(r);
    int32_t count = 0;
    for (uint32_t i = 0; i < seen_.size(); ++i) count += live(i) ? 1 : 0;
    r.args.push_back(OscArg::int32(count));
    for (uint32_t i = 0; i < seen_.size(); ++i) {
      if (!live(i)) continue;
      r.args.push_back(OscArg::string(module_name(segment_.module_in(i))));
      append_load(r, i);
    }
    send_all(r);
  }
  feedback(false);
}

void Dispatcher::feedback(bool all) {
  if (!have_controller_) return;
  for (std::size_t k = 0; k < map_.entries.size(); ++k) {
    const OscMapping& mp = map_.entries[k];
    if (mp.target.module >= seen_.size()) continue;
    const double v = get_param(segment_.module_in(mp.target.module), mp.target.param)[0];
    if (!all && v == fed_[k]) continue;
    fed_[k] = v;
    send_(controller_, OscMessage{mp.from, {OscArg::float32(static_cast<float>(map_to_controller(mp, v)))}});
  }
}

}  // namespace rackd::control
