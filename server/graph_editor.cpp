// Live graph changes, step by step (see graph_editor.hpp). [control] thread
// live, the render thread offline; never the audio thread.
#include "server/graph_editor.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "shm/futex.hpp"
#include "shm/seqlock.hpp"

namespace rackd::server {
namespace {

float linear(double gain_db) { return gain_db == 0.0 ? 1.0f : static_cast<float>(std::pow(10.0, gain_db / 20.0)); }

bool contains(const std::vector<uint32_t>& v, uint32_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

// One module of a schedule being built.
struct Member {
  uint32_t slot = 0;
  const PatchModule* module = nullptr;
  std::vector<Edge> inputs;
  bool fresh = false;
};

// Inputs of module `m` of a patch whose module i sits in slots[i].
std::vector<Edge> edges_of(const PatchModule& m, const std::vector<uint32_t>& slots) {
  std::vector<Edge> out;
  for (const PatchInput& in : m.inputs) {
    out.push_back({in.from == kDeviceInput ? kDeviceSource : slots[static_cast<std::size_t>(in.from)],
                   linear(in.gain_db)});
  }
  return out;
}

// `members` in an order where every source comes before its consumers, into
// `s`, with deadlines (set_deadlines). False when the edges form a cycle.
bool fill(const std::vector<Member>& members, const std::vector<Edge>& outputs, const EngineConfig& cfg,
          uint32_t fade_frames, Schedule& s) {
  const std::size_t n = members.size();
  std::vector<int> index_of(shm::kMaxModules, -1);
  for (std::size_t i = 0; i < n; ++i) index_of[members[i].slot] = static_cast<int>(i);
  std::vector<bool> placed(n, false);
  std::vector<std::size_t> order;
  while (order.size() < n) {
    std::size_t next = n;
    for (std::size_t i = 0; i < n && next == n; ++i) {
      if (placed[i]) continue;
      bool ready = true;
      for (const Edge& e : members[i].inputs) {
        if (e.from < shm::kMaxModules && index_of[e.from] >= 0 && !placed[static_cast<std::size_t>(index_of[e.from])])
          ready = false;
      }
      if (ready) next = i;
    }
    if (next == n) return false;
    placed[next] = true;
    order.push_back(next);
  }
  const double budget_ns = 1e9 * cfg.block_frames / cfg.rate_hz * cfg.budget_fraction;
  s.count = 0;
  for (std::size_t i : order) {
    const Member& m = members[i];
    Step& st = s.steps[s.count++];
    st.slot = m.slot;
    st.in_channels = m.module->in_channels;
    st.out_channels = m.module->out_channels;
    st.bypassable = m.module->spec->bypassable && m.module->in_channels == m.module->out_channels &&
                    m.module->has_input();
    st.fresh = m.fresh;
    st.input_count = 0;
    for (const Edge& e : m.inputs) {
      if (st.input_count < kMaxInputs) st.inputs[st.input_count++] = e;
    }
  }
  s.output_count = 0;
  for (const Edge& e : outputs) {
    if (s.output_count < shm::kMaxModules) s.outputs[s.output_count++] = e;
  }
  s.fade_frames = fade_frames;
  set_deadlines(s, budget_ns);
  return true;
}

// Each edge's step from the gain it has now (the target of the schedule in
// use, which has settled before a change hands over the next one: 0 where it
// had none) to its new target, over the fade.
void set_steps(const Schedule& now, uint32_t block_frames, Schedule& s) {
  const float per_block = static_cast<float>(block_frames) / static_cast<float>(std::max(1u, s.fade_frames));
  auto had = [&](const Edge* edges, uint32_t n, uint32_t from) {
    for (uint32_t j = 0; j < n; ++j) {
      if (edges[j].from == from) return edges[j].gain;
    }
    return 0.0f;
  };
  auto step_of = [&](float from, float to) {
    const float d = std::fabs(to - from) * per_block;
    return d > 0.0f ? d : per_block;
  };
  for (uint32_t k = 0; k < s.count; ++k) {
    Step& st = s.steps[k];
    const Step* old = nullptr;
    for (uint32_t i = 0; i < now.count && !old; ++i) {
      if (now.steps[i].slot == st.slot && !st.fresh) old = &now.steps[i];
    }
    for (uint32_t j = 0; j < st.input_count; ++j) {
      Edge& e = st.inputs[j];
      e.step = step_of(old ? had(old->inputs, old->input_count, e.from) : 0.0f, e.gain);
    }
  }
  for (uint32_t j = 0; j < s.output_count; ++j)
    s.outputs[j].step = step_of(had(now.outputs, now.output_count, s.outputs[j].from), s.outputs[j].gain);
}

std::vector<Edge> output_edges(const Patch& p, const std::vector<uint32_t>& slots) {
  std::vector<Edge> out;
  for (int o : p.outputs) out.push_back({slots[static_cast<std::size_t>(o)], 1.0f});
  return out;
}

// `want` with every edge of `had` it lacks added at gain 0 (fading out).
void keep_fading(std::vector<Edge>& want, const std::vector<Edge>& had) {
  for (const Edge& e : had) {
    if (std::none_of(want.begin(), want.end(), [&](const Edge& w) { return w.from == e.from; }))
      want.push_back({e.from, 0.0f});
  }
}

// True when some edge of `s` is on its way out (target gain 0).
bool fading_out(const Schedule& s) {
  for (uint32_t k = 0; k < s.count; ++k) {
    for (uint32_t j = 0; j < s.steps[k].input_count; ++j) {
      if (s.steps[k].inputs[j].gain == 0.0f) return true;
    }
  }
  for (uint32_t j = 0; j < s.output_count; ++j) {
    if (s.outputs[j].gain == 0.0f) return true;
  }
  return false;
}

bool write_file(const std::string& path, const std::string& text, std::string& why) {
  const std::string tmp = path + ".tmp-" + std::to_string(getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) {
      why = path + ": cannot write: " + std::strerror(errno);
      return false;
    }
    f << text;
    f.flush();
    if (!f) {
      why = path + ": cannot write: " + std::strerror(errno);
      std::remove(tmp.c_str());
      return false;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    why = path + ": cannot write: " + std::strerror(errno);
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace

GraphEditor::GraphEditor(Engine& engine, Supervisor& supervisor, const Patch& initial, bool offline)
    : engine_(engine), supervisor_(supervisor), offline_(offline), model_(initial) {
  for (uint32_t i = 0; i < model_.modules.size(); ++i) slots_.push_back(i);
  update_by_slot(model_, slots_);
}

void GraphEditor::update_by_slot(const Patch& p, const std::vector<uint32_t>& slots) {
  view_ = p;
  view_slots_ = slots;
  by_slot_ = Patch{};
  by_slot_.path = p.path;
  by_slot_.rate_hz = p.rate_hz;
  by_slot_.block_frames = p.block_frames;
  by_slot_.output_channels = p.output_channels;
  by_slot_.input_channels = p.input_channels;
  uint32_t top = 0;
  for (uint32_t s : slots) top = std::max(top, s + 1);
  by_slot_.modules.resize(top);
  for (std::size_t i = 0; i < p.modules.size(); ++i) {
    by_slot_.modules[slots[i]] = p.modules[i];
    by_slot_.modules[slots[i]].inputs.clear();  // indices of `p`; names are what the dispatcher needs
  }
  ++version_;
}

void GraphEditor::read_params() {
  for (std::size_t i = 0; i < model_.modules.size(); ++i) {
    PatchModule& m = model_.modules[i];
    const shm::ModuleIn& in = engine_.segment().module_in(slots_[i]);
    for (std::size_t p = 0; p < m.params.size() && p < shm::kMaxParams; ++p) {
      const shm::ParamSlot& slot = in.params[p];
      double v[shm::kParamValues];
      shm::SeqlockReader::read(slot.seq, [&] {
        for (uint32_t k = 0; k < shm::kParamValues; ++k) v[k] = slot.value[k].load(std::memory_order_relaxed);
      });
      for (std::size_t k = 0; k < m.params[p].size() && k < shm::kParamValues; ++k) m.params[p][k] = v[k];
    }
  }
}

void GraphEditor::write_params(const Change& c) {
  for (const auto& [slot, j] : c.param_writes) {
    const PatchModule& m = c.target.modules[j];
    shm::ModuleIn& in = engine_.segment().module_in(slot);
    for (std::size_t p = 0; p < m.params.size() && p < shm::kMaxParams; ++p) {
      shm::ParamSlot& ps = in.params[p];
      const uint32_t s = shm::SeqlockWriter::begin(ps.seq);
      for (std::size_t k = 0; k < m.params[p].size() && k < shm::kParamValues; ++k)
        ps.value[k].store(m.params[p][k], std::memory_order_relaxed);
      shm::SeqlockWriter::end(ps.seq, s);
    }
    in.param_epoch.fetch_add(1, std::memory_order_release);
  }
}

std::string GraphEditor::save_text() {
  read_params();
  return graph::to_toml(model_);
}

bool GraphEditor::all_free(const std::vector<uint32_t>& slots) const {
  return std::all_of(slots.begin(), slots.end(), [&](uint32_t s) { return supervisor_.is_free(s); });
}

void GraphEditor::submit(graph::Edit e, Done done) {
  Change c;
  c.edit = std::move(e);
  c.done = std::move(done);
  queue_.push_back(std::move(c));
}

void GraphEditor::reply(Change& c, bool ok, const std::string& text) {
  if (c.replied) return;
  c.replied = true;
  if (c.done) c.done(ok, text);
}

// Validates the change and spawns what it needs; on refusal (or when there is
// nothing to change) replies and leaves the change finished: phase kAbort with
// nothing spawned.
void GraphEditor::start(Change& c) {
  c.phase = Phase::kAbort;  // nothing to apply, unless the checks below pass
  read_params();
  const graph::Edit& e = c.edit;
  if (e.kind == graph::EditKind::kSave) {
    std::string why;
    if (write_file(e.path, graph::to_toml(model_), why)) reply(c, true, e.path);
    else reply(c, false, why);
    return;
  }
  try {
    c.target = graph::apply_edit(model_, e);
  } catch (const std::exception& ex) {
    reply(c, false, ex.what());
    return;
  }
  const graph::Diff d = graph::diff(model_, c.target);
  if (!d.refused.empty()) {
    reply(c, false, d.refused);
    return;
  }
  if (d.empty()) {
    reply(c, true, e.subject());
    return;
  }
  // Slots: kept modules stay where they are, new processes get free ones.
  std::vector<uint32_t> taken = slots_;
  c.target_slots.assign(c.target.modules.size(), shm::kNoSlot);
  for (std::size_t j = 0; j < c.target.modules.size(); ++j) {
    const PatchModule& m = c.target.modules[j];
    const int i = graph::find_module(model_, m.name);
    if (i >= 0 && std::find(d.keep.begin(), d.keep.end(), m.name) != d.keep.end()) {
      c.target_slots[j] = slots_[static_cast<std::size_t>(i)];
      if (model_.modules[static_cast<std::size_t>(i)].params != m.params) c.param_writes.emplace_back(c.target_slots[j], j);
      continue;
    }
    uint32_t slot = shm::kNoSlot;
    for (uint32_t s = 0; s < shm::kMaxModules && slot == shm::kNoSlot; ++s) {
      if (!contains(taken, s) && supervisor_.is_free(s)) slot = s;
    }
    if (slot == shm::kNoSlot) {
      reply(c, false, "no free module slot (at most " + std::to_string(shm::kMaxModules) +
                          " modules run at once, counting those being replaced)");
      return;
    }
    taken.push_back(slot);
    c.target_slots[j] = slot;
  }
  for (std::size_t i = 0; i < model_.modules.size(); ++i) {
    if (!contains(c.target_slots, slots_[i])) c.retire.push_back(slots_[i]);
  }
  const EngineConfig& cfg = engine_.config();
  const double fade_ms = e.fade_ms >= 0 ? e.fade_ms : cfg.fade_ms;
  c.fade_frames = std::max<uint32_t>(1, static_cast<uint32_t>(fade_ms * 1e-3 * cfg.rate_hz + 0.5));
  for (std::size_t j = 0; j < c.target.modules.size(); ++j) {
    const uint32_t slot = c.target_slots[j];
    if (contains(slots_, slot)) continue;
    try {
      write_module_slot(engine_.segment(), slot, c.target.modules[j]);
      c.spawned.push_back(slot);
      supervisor_.add(slot, c.target.modules[j]);
    } catch (const std::exception& ex) {
      c.abort_reason = "module \"" + c.target.modules[j].name + "\": " + ex.what();
      c.phase = Phase::kAbort;
      reply(c, false, c.abort_reason);
      for (uint32_t s : c.spawned) supervisor_.remove(s);
      return;
    }
  }
  c.ready_by_ns = shm::now_ns() + kReadyTimeoutNs;
  c.phase = Phase::kReady;
}

bool GraphEditor::build_cross(const Change& c, Schedule& s) const {
  std::vector<Member> members;
  for (std::size_t i = 0; i < model_.modules.size(); ++i) {
    if (!contains(c.retire, slots_[i])) continue;
    members.push_back({slots_[i], &model_.modules[i], edges_of(model_.modules[i], slots_), false});
  }
  for (std::size_t j = 0; j < c.target.modules.size(); ++j) {
    Member m{c.target_slots[j], &c.target.modules[j], edges_of(c.target.modules[j], c.target_slots),
             contains(c.spawned, c.target_slots[j])};
    const auto old = std::find(slots_.begin(), slots_.end(), m.slot);
    if (old != slots_.end()) keep_fading(m.inputs, edges_of(model_.modules[static_cast<std::size_t>(old - slots_.begin())], slots_));
    members.push_back(std::move(m));
  }
  std::vector<Edge> outputs = output_edges(c.target, c.target_slots);
  keep_fading(outputs, output_edges(model_, slots_));
  if (!fill(members, outputs, engine_.config(), c.fade_frames, s)) return false;
  set_steps(engine_.current(), engine_.config().block_frames, s);
  return true;
}

void GraphEditor::build_fade_out(const Change& c, Schedule& s) const {
  std::vector<Member> members;
  for (std::size_t i = 0; i < model_.modules.size(); ++i) {
    Member m{slots_[i], &model_.modules[i], edges_of(model_.modules[i], slots_), false};
    if (!contains(c.retire, m.slot)) {
      // Each edge toward its gain in the new graph, or out.
      const auto j = static_cast<std::size_t>(std::find(c.target_slots.begin(), c.target_slots.end(), m.slot) -
                                              c.target_slots.begin());
      const std::vector<Edge> want = edges_of(c.target.modules[j], c.target_slots);
      for (Edge& e : m.inputs) {
        const auto w = std::find_if(want.begin(), want.end(), [&](const Edge& x) { return x.from == e.from; });
        e.gain = w == want.end() ? 0.0f : w->gain;
      }
    }
    members.push_back(std::move(m));
  }
  std::vector<Edge> outputs = output_edges(model_, slots_);
  const std::vector<Edge> want = output_edges(c.target, c.target_slots);
  for (Edge& e : outputs) {
    if (std::none_of(want.begin(), want.end(), [&](const Edge& x) { return x.from == e.from; })) e.gain = 0.0f;
  }
  fill(members, outputs, engine_.config(), c.fade_frames, s);  // the running graph: acyclic
  set_steps(engine_.current(), engine_.config().block_frames, s);
}

void GraphEditor::build_final(const Change& c, Schedule& s) const {
  std::vector<Member> members;
  for (std::size_t j = 0; j < c.target.modules.size(); ++j) {
    // After a fade-out first step, new modules join only now.
    members.push_back({c.target_slots[j], &c.target.modules[j], edges_of(c.target.modules[j], c.target_slots),
                       c.two_step && contains(c.spawned, c.target_slots[j])});
  }
  fill(members, output_edges(c.target, c.target_slots), engine_.config(), c.fade_frames, s);  // parsed: acyclic
  set_steps(engine_.current(), engine_.config().block_frames, s);
}

bool GraphEditor::step(Change& c) {
  switch (c.phase) {
    case Phase::kReady: {
      bool all = true;
      for (uint32_t slot : c.spawned) {
        const auto state =
            static_cast<shm::ModuleState>(engine_.segment().module_in(slot).state.load(std::memory_order_acquire));
        if (state == shm::ModuleState::kRunning) continue;
        all = false;
        if (state == shm::ModuleState::kSetupError || state == shm::ModuleState::kFailed) {
          std::string why;
          for (const ModuleReport& r : supervisor_.report()) {
            if (r.slot == slot) why = r.error.empty() ? r.last_exit : r.error;
          }
          c.abort_reason = "module \"" + std::string(engine_.segment().module_in(slot).name) + "\" " +
                           (state == shm::ModuleState::kSetupError ? "refused its setup: " : "failed to start: ") + why;
        }
      }
      if (all) {
        c.phase = Phase::kCross;
        return true;
      }
      if (c.abort_reason.empty() && shm::now_ns() > c.ready_by_ns) {
        c.abort_reason = "a new module was not ready after " + std::to_string(kReadyTimeoutNs / 1'000'000'000ull) +
                         " s; nothing changed";
      }
      if (!c.abort_reason.empty()) {
        reply(c, false, c.abort_reason);
        for (uint32_t s : c.spawned) supervisor_.remove(s);
        c.phase = Phase::kAbort;
        return true;
      }
      return false;
    }
    case Phase::kCross: {
      Schedule* s = engine_.next_schedule();
      if (!s) return false;
      if (build_cross(c, *s)) {
        c.two_step = false;
      } else {
        c.two_step = true;
        build_fade_out(c, *s);
      }
      c.schedule = engine_.publish(s);
      if (!c.two_step) write_params(c);
      c.phase = Phase::kCrossWait;
      return true;
    }
    case Phase::kCrossWait:
      if (engine_.adopted() != c.schedule) return false;
      if (!c.two_step) update_by_slot(c.target, c.target_slots);
      if (c.edit.kind == graph::EditKind::kConnect && !c.two_step) reply(c, true, c.edit.subject());
      c.phase = Phase::kSettle;
      return true;
    case Phase::kSettle: {
      if (c.edit.kind == graph::EditKind::kAdd && !c.two_step && !c.spawned.empty() &&
          engine_.segment().module_in(c.spawned.front()).first_good_ns.load(std::memory_order_acquire) != 0)
        reply(c, true, c.edit.subject());
      if (engine_.settled() != c.schedule) return false;
      // Nothing leaves and no edge fades out: the crossfade schedule is the
      // final one already.
      c.phase = c.retire.empty() && !fading_out(engine_.current()) ? Phase::kStop : Phase::kFinal;
      return true;
    }
    case Phase::kFinal: {
      Schedule* s = engine_.next_schedule();
      if (!s) return false;
      build_final(c, *s);
      c.schedule = engine_.publish(s);
      if (c.two_step) {
        // The old edges are out; the new graph now fades in.
        write_params(c);
        c.two_step = false;
        c.phase = Phase::kCrossWait;
        return true;
      }
      c.phase = Phase::kFinalWait;
      return true;
    }
    case Phase::kFinalWait:
      if (engine_.adopted() != c.schedule) return false;
      for (uint32_t slot : c.retire) supervisor_.remove(slot);
      c.phase = Phase::kStop;
      return true;
    case Phase::kStop:
      if (!all_free(c.retire)) return false;
      if (!c.target.modules.empty()) {
        model_ = c.target;
        slots_ = c.target_slots;
        update_by_slot(model_, slots_);
      }
      reply(c, true, c.edit.subject());
      return false;
    case Phase::kAbort:
      return false;  // poll() waits for the spawned slots to be free
  }
  return false;
}

int GraphEditor::poll() {
  for (;;) {
    if (!active_) {
      if (queue_.empty()) return -1;
      active_ = true;
      start(queue_.front());
    }
    Change& c = queue_.front();
    while (step(c)) {
    }
    const bool finished = (c.phase == Phase::kStop && c.replied && all_free(c.retire)) ||
                          (c.phase == Phase::kAbort && all_free(c.spawned));
    if (finished) {
      queue_.pop_front();
      active_ = false;
      continue;
    }
    if (!offline_) return 1;
    // Offline: processes are waited for here; cycles are not (the caller runs them).
    if (c.phase == Phase::kReady || c.phase == Phase::kStop || c.phase == Phase::kAbort) {
      std::this_thread::sleep_for(std::chrono::microseconds(500));
      continue;
    }
    return 0;
  }
}

std::vector<GraphEditor::Row> GraphEditor::rows() const {
  std::vector<Row> out;
  for (std::size_t i = 0; i < view_.modules.size(); ++i) {
    const PatchModule& m = view_.modules[i];
    Row r;
    r.name = m.name;
    r.type = m.type;
    r.state = shm::state_name(static_cast<shm::ModuleState>(
        engine_.segment().module_in(view_slots_[i]).state.load(std::memory_order_acquire)));
    for (const PatchInput& in : m.inputs) {
      if (!r.inputs.empty()) r.inputs += ", ";
      r.inputs += in.from == kDeviceInput ? "device" : view_.modules[static_cast<std::size_t>(in.from)].name;
      if (in.gain_db != 0.0) {
        char g[32];
        std::snprintf(g, sizeof g, " (%+.1f dB)", in.gain_db);
        r.inputs += g;
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::string GraphEditor::outputs() const {
  std::string s;
  for (int o : view_.outputs) s += (s.empty() ? "" : ", ") + view_.modules[static_cast<std::size_t>(o)].name;
  return s;
}

}  // namespace rackd::server
