// The offline driver: reads the device input from a file, drives the same
// module processes as a live run as fast as the graph allows, writes the
// device output to a file of the input's rate and sample format. The render
// loop runs on its own thread; file I/O stays outside Engine::run_cycle().
//
// The output appears at --out only when the render ends (finished, or
// interrupted: the partial output is kept); until then it is a temporary file
// beside it, and a failed render removes that and leaves --out as it was.
// The first block runs once every module is ready or has failed its setup
// (refused its configuration, or failed to start as often as the supervisor
// allows, or is still starting after kSetupTimeout). Any such module fails the
// render unless --keep-going. A module that dies after that (killed,
// crashed, hung; even one whose restart then refuses its setup) was set up
// once: as live, it is restarted, its blocks are replaced meanwhile, and the
// render goes on at full length.
#include <algorithm>
#include <cstdio>
#include <thread>
#include <vector>

#include "control/events.hpp"
#include "server/audio_file.hpp"
#include "server/drivers.hpp"
#include "server/graph_editor.hpp"
#include "server/server.hpp"
#include "shm/futex.hpp"

namespace rackd::server {

namespace {

// Offline there is no device waiting: a module has this long to set up (load
// its files, build its filters) before the render gives up on it.
constexpr std::chrono::seconds kSetupTimeout{10};

// What replaces a module's blocks while it is not running (engine.hpp).
const char* replacement_of(const PatchModule& m) {
  return m.spec->bypassable && m.in_channels == m.out_channels && m.has_input() ? "its input passed through"
                                                                                : "silence";
}

}  // namespace

int run_render(const Patch& patch, const RenderOptions& opt) {
  std::unique_ptr<AudioReader> reader;
  AudioFormat out_format;
  uint64_t total_frames = 0;
  if (!opt.in.empty()) {
    reader = std::make_unique<AudioReader>(opt.in);
    out_format = reader->format();
    total_frames = reader->frames();
    if (opt.duration_s > 0)
      total_frames = std::min<uint64_t>(total_frames, static_cast<uint64_t>(opt.duration_s * out_format.rate_hz));
  } else {
    if (opt.duration_s <= 0) {
      std::fprintf(stderr, "rackd render: give --in FILE or --duration SECONDS\n");
      return 64;
    }
    out_format.rate_hz = opt.rate_hz ? opt.rate_hz : patch.rate_hz;
    out_format.sndfile_format = default_format_for(opt.out);
    total_frames = static_cast<uint64_t>(opt.duration_s * out_format.rate_hz + 0.5);
  }
  out_format.channels = patch.output_channels;

  EngineConfig cfg;
  cfg.fade_ms = patch.fade_ms;
  cfg.rate_hz = out_format.rate_hz;
  cfg.block_frames = opt.block_frames ? opt.block_frames : patch.block_frames;
  cfg.input_channels = patch.input_channels;
  cfg.output_channels = patch.output_channels;
  cfg.offline = true;
  cfg.offline_timeout_ns = static_cast<uint64_t>(opt.module_timeout_s * 1e9);
  cfg.rt_priority = 0;  // offline: fast, not real-time; never starve the machine

  // Timed parameter changes are validated against the patch before anything starts.
  std::vector<control::Event> events;
  if (!opt.events.empty()) events = control::load_events(opt.events, patch);

  AudioWriter writer(opt.out, out_format, WriteMode::kReplaceOnClose);
  Server server(patch, cfg);
  // Offline nothing runs SCHED_FIFO, so a spinning module only slows the
  // render (and meets --module-timeout); the modules read the CPU at start.
  std::string no_pin;
  const int cpu = choose_audio_cpu(patch, opt.audio_cpu, no_pin);
  server.engine().segment().header().audio_cpu.store(cpu, std::memory_order_release);
  const std::vector<SetupFailure> failed = server.start(kSetupTimeout, false);
  if (!failed.empty() && !opt.keep_going) {
    if (failed.size() == 1) {
      std::fprintf(stderr,
                   "rackd render: module \"%s\" failed setup: %s; no output written "
                   "(--keep-going renders anyway, with its output replaced)\n",
                   failed[0].module.c_str(), failed[0].reason.c_str());
    } else {
      for (const SetupFailure& f : failed)
        std::fprintf(stderr, "rackd render: module \"%s\" failed setup: %s\n", f.module.c_str(), f.reason.c_str());
      std::fprintf(stderr,
                   "rackd render: no output written (--keep-going renders anyway, with their outputs replaced)\n");
    }
    server.stop();
    std::printf("%s\n", server.summary_json(0, "\"frames\":0,").c_str());
    std::fflush(stdout);
    return 1;  // `writer` removes its temporary: --out is as it was
  }
  for (const SetupFailure& f : failed) {
    const auto m = std::find_if(patch.modules.begin(), patch.modules.end(),
                                [&](const PatchModule& pm) { return pm.name == f.module; });
    std::fprintf(stderr,
                 "rackd render: warning: module \"%s\" failed setup: %s; --keep-going: rendering with %s in its "
                 "place\n",
                 f.module.c_str(), f.reason.c_str(), m != patch.modules.end() ? replacement_of(*m) : "silence");
  }

  control::EventPlayer player(server.engine().segment(), std::move(events), cfg.rate_hz, cfg.block_frames);
  player.set_path(opt.events);
  // Graph changes from the events file, applied between two blocks on the
  // render thread; one refused fails the render.
  GraphEditor editor(server.engine(), server.supervisor(), patch, true);
  player.on_graph([&]() -> const Patch& { return editor.by_slot(); },
                  [&](const control::Event& e) {
                    const std::string where = opt.events + ":" + std::to_string(e.line) + ": ";
                    editor.submit(*e.edit, [&player, where](bool ok, const std::string& text) {
                      if (!ok) player.set_error(where + text);
                    });
                  });

  // File I/O goes through staging buffers of kStageBlocks blocks, so the render
  // thread makes one read and one write system call per 64 cycles rather than
  // per cycle. The engine reads and writes its blocks in place in them, up to
  // `batch` blocks at a time (none holding a timed event past its first).
  constexpr uint32_t kStageBlocks = 64;
  const uint32_t block = cfg.block_frames;
  const uint32_t stage = block * kStageBlocks;
  const uint32_t batch = std::clamp<uint32_t>(opt.batch, 1, shm::kMaxBatch);
  const uint64_t total_blocks = (total_frames + block - 1) / block;
  const uint32_t file_ch = reader ? reader->format().channels : 0;
  std::vector<std::vector<float>> in_stage(std::max(file_ch, cfg.input_channels), std::vector<float>(stage));
  std::vector<std::vector<float>> out_stage(cfg.output_channels, std::vector<float>(stage));
  std::vector<float*> in_stage_ptrs, out_stage_ptrs;
  for (auto& b : in_stage) in_stage_ptrs.push_back(b.data());
  for (auto& b : out_stage) out_stage_ptrs.push_back(b.data());
  std::vector<float*> in_ptrs(cfg.input_channels, nullptr), out_ptrs(cfg.output_channels, nullptr);

  uint64_t done = 0;  // frames written
  bool interrupted = false;
  std::string failure;
  const uint64_t t0 = shm::now_ns();
  std::thread worker([&] {
    enable_ftz_daz();
    const char* why = nullptr;
    if (cpu >= 0 && !try_pin_to_cpu(0, cpu, &why))
      std::fprintf(stderr, "rackd render: warning: cannot run on CPU %d (%s)\n", cpu, why);
    try {
      uint64_t next = 0;                // next block to run
      uint32_t pos = kStageBlocks;      // its place in the staging buffers (kStageBlocks: refill)
      auto flush = [&] {                // the staged output so far, never beyond the input's length
        const uint64_t frames = std::min<uint64_t>(uint64_t{pos} * block, total_frames - done);
        writer.write(out_stage_ptrs.data(), static_cast<uint32_t>(frames));
        done += frames;
        pos = kStageBlocks;
      };
      while (next < total_blocks) {
        if (g_stop_requested.load()) {
          interrupted = true;
          break;
        }
        if (pos == kStageBlocks) {
          // Whole blocks only; the tail of a short last read is silence.
          const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(stage, total_frames - next * block));
          const uint32_t got = reader ? reader->read(in_stage_ptrs.data(), n) : 0;
          for (auto& b : in_stage) std::fill(b.begin() + got, b.end(), 0.0f);
          pos = 0;
        }
        player.apply_due(next * block);  // in effect from this block on
        if (editor.busy()) editor.poll();  // a change's schedule is adopted by the next block
        if (!player.error().empty()) throw std::runtime_error(player.error() + "; no output written");
        uint64_t k = std::min<uint64_t>({batch, kStageBlocks - pos, total_blocks - next});
        if (editor.busy()) k = 1;  // a change under way moves block by block
        if (const uint64_t e = player.next_frame(); e != UINT64_MAX) k = std::clamp<uint64_t>(e / block - next, 1, k);
        for (uint32_t c = 0; c < cfg.input_channels; ++c)
          in_ptrs[c] = c < file_ch ? in_stage[c].data() + std::size_t{pos} * block : nullptr;
        for (uint32_t c = 0; c < cfg.output_channels; ++c) out_ptrs[c] = out_stage[c].data() + std::size_t{pos} * block;
        {
          RtScope rt;
          server.engine().run_cycles(in_ptrs.data(), out_ptrs.data(), static_cast<uint32_t>(k));
        }
        next += k;
        pos += static_cast<uint32_t>(k);
        if (pos == kStageBlocks) flush();
      }
      if (pos != kStageBlocks) flush();  // the last, partial stage (or what an interruption left)
      writer.close();
    } catch (const std::exception& e) {
      failure = e.what();
    }
  });
  worker.join();
  const double seconds = static_cast<double>(shm::now_ns() - t0) / 1e9;
  server.stop();
  if (!failure.empty()) {
    std::fprintf(stderr, "rackd render: %s\n", failure.c_str());
    return 1;
  }
  const double audio_s = static_cast<double>(done) / cfg.rate_hz;
  char extra[160];
  std::snprintf(extra, sizeof extra, "\"frames\":%llu,\"seconds\":%.3f,\"realtime_factor\":%.1f,",
                static_cast<unsigned long long>(done), seconds, seconds > 0 ? audio_s / seconds : 0.0);
  std::printf("%s\n", server.summary_json(0, extra).c_str());
  std::fflush(stdout);
  return interrupted ? 130 : 0;
}

}  // namespace rackd::server
