#!/usr/bin/env python3
"""What rackd costs as a PipeWire 7.1 virtual-surround sink (`rackd run PATCH
--desktop`), beside PipeWire's own filter-chain doing the same job: 7 speakers
x 2 ears of HRIR convolution, LFE straight to both ears, into a stereo output.

Everything runs headless in a private PipeWire session started here (private
XDG_RUNTIME_DIR and HOME, its own D-Bus session bus, pipewire, wireplumber,
pipewire-pulse, a null sink `hp` as the headphones); every process is started
and stopped by pid, also on failure or Ctrl-C.

One HRIR set for both sides. It is derived from rackd's default SOFA set (MIT
KEMAR, as patches/binaural-7.1.toml uses it) by rendering one impulse per input
channel through `capture -> hrir` with `rackd render` and cutting each
speaker's left and right response at its full length (557 taps at 48 kHz: the
render's LFE impulse shows it has no latency). The cuts are written as a
HeSuVi 14-channel WAV in the order rackd's hesuvi reader takes
(modules/hrir/hrtf.cpp): FL-L FL-R SL-L SL-R BL-L BL-R FC-L FR-R FR-L SR-R SR-L
BR-R BR-L FC-R. Both sides then load that file:

* rackd: a patch `capture(8 ch) -> hrir(hesuvi = that WAV, layout 7.1)` as
  patches/binaural-7.1.toml without its eq, `[server] block = 128`, run with
  --desktop. Cost = CPU of rackd and all its descendants (module processes).
* rackd-direct: the same with the hrir module reading the device input itself
  (`input = "device"`): one module process fewer.
* fc, the baseline: PipeWire's virtual-surround sink as its HeSuVi example
  builds it (copy nodes, one builtin `convolver` per speaker and ear with
  `channel = N` of the WAV, two `mixer`s), except that LFE goes straight into
  both mixers as rackd's hrir does: 14 convolutions, node.latency 128/48000,
  in its own process (`pipewire -c fc.conf`), whose CPU is its cost.
* fc16: as PipeWire's example ships, LFE convolved with FC's pair: 16.

The sides run in turn, each round in the opposite order of the last, each
started afresh, linked by WirePlumber to `hp`, with the same 8-channel pink
noise (-26 dBFS RMS per channel) played to its sink by pw-cat, the quantum
forced to 128 (clock.force-quantum). Not at once: two sinks playing share one
graph cycle on this machine's two CPUs, and each one's cost would include the
other's interference; alternating, each sees the machine as a user running one
of them does, and both see the same background on average. Per run: CPU ms per
second of audio of the side's processes (schedstat, all threads) and of the
main pipewire daemon beside it; rackd's own xruns and late blocks from its
exit summary (pw-top 0.3.65 has no batch mode; the filter-chain's xruns are
not counted). Ratios are taken round by round against fc.

First, a check that the sides compute the same thing: an impulse per channel
is played through rackd and fc, `hp.monitor` recorded (parecord), each
recording aligned to the expected output (the WAV's filters placed at the
impulses); normalised correlation and residual are printed.

    python3 bench/desktop_cpu.py [--rounds 5] [--seconds 20] [--sides rackd,fc,fc16,rackd-direct]
                                 [--bin build/release/bin] [--keep DIR]
"""
import argparse
import array
import json
import math
import os
import random
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pipewire_session import Session, cpu_by_pid, cpu_ns, comm, descendants, stop, wait_until  # noqa: E402

RATE = 48000
QUANTUM = 128
POSITIONS = "FL,FR,FC,LFE,RL,RR,SL,SR"  # rackd's 7.1 order, PipeWire's names
MASK_71 = 0x63F                          # WAVE_FORMAT_EXTENSIBLE: FL FR FC LFE BL BR SL SR
GAP = 2048                               # frames between the derivation impulses
IMPULSE = 0.125                          # below rackd's output limiter with every peak
# Input channel (rackd's 7.1 order) -> (left-ear, right-ear) track of the HeSuVi WAV.
HESUVI_TRACKS = {0: (0, 1), 1: (8, 7), 2: (6, 13), 4: (4, 5), 5: (12, 11), 6: (2, 3), 7: (10, 9)}
LFE = 3
FC_NAMES = ["FL", "FR", "FC", "LFE", "RL", "RR", "SL", "SR"]

# ---------------------------------------------------------------- WAV files


def write_wav(path, channels, mask=0):
    """Float32 WAV; WAVE_FORMAT_EXTENSIBLE with `mask` when mask is given."""
    c, n = len(channels), len(channels[0])
    inter = array.array("f", bytes(4 * n * c))
    for k, ch in enumerate(channels):
        inter[k::c] = ch if isinstance(ch, array.array) else array.array("f", ch)
    data = inter.tobytes()
    if mask:
        guid = struct.pack("<IHH", 3, 0, 0x10) + bytes([0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71])
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, c, RATE, RATE * 4 * c, 4 * c, 32, 22, 32, mask) + guid
    else:
        fmt = struct.pack("<HHIIHH", 3, c, RATE, RATE * 4 * c, 4 * c, 32)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE")
        f.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)


def read_wav(path):
    """(channels, [array per channel]) of a float32 WAV. A data size of 0 or
    past the end (a recorder stopped by a signal) reads to the end."""
    with open(path, "rb") as f:
        b = f.read()
    pos, fmt, data = 12, None, b""
    while pos + 8 <= len(b):
        cid, size = b[pos:pos + 4], struct.unpack("<I", b[pos + 4:pos + 8])[0]
        if cid == b"data":
            data = b[pos + 8:] if size == 0 or pos + 8 + size > len(b) else b[pos + 8:pos + 8 + size]
            break
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", b[pos + 8:pos + 24])
        pos += 8 + size + (size & 1)
    c, a = fmt[1], array.array("f")
    if fmt[5] != 32:
        raise RuntimeError(f"{path}: {fmt[5]}-bit samples, float32 expected")
    a.frombytes(data[:len(data) - len(data) % (4 * c)])
    return c, [a[k::c] for k in range(c)]


def pink_noise(frames, rms, seed):
    """Paul Kellet's pink filter over white noise, scaled to `rms`."""
    rnd = random.Random(seed)
    b0 = b1 = b2 = b3 = b4 = b5 = b6 = 0.0
    out = array.array("f", bytes(4 * frames))
    acc = 0.0
    for i in range(frames):
        w = rnd.uniform(-1, 1)
        b0 = 0.99886 * b0 + w * 0.0555179
        b1 = 0.99332 * b1 + w * 0.0750759
        b2 = 0.96900 * b2 + w * 0.1538520
        b3 = 0.86650 * b3 + w * 0.3104856
        b4 = 0.55000 * b4 + w * 0.5329522
        b5 = -0.7616 * b5 - w * 0.0168980
        v = b0 + b1 + b2 + b3 + b4 + b5 + b6 + w * 0.5362
        b6 = w * 0.115926
        out[i] = v
        acc += v * v
    g = rms / math.sqrt(acc / frames)
    return array.array("f", (v * g for v in out))


# ---------------------------------------------------------------- the HRIR set and the two sides


def derive_hrir(bindir, tmp):
    """Render one impulse per channel through the default SOFA set; write the
    HeSuVi WAV. Returns (path, taps)."""
    n = GAP * 9
    imp = [array.array("f", bytes(4 * n)) for _ in range(8)]
    for k in range(8):
        imp[k][GAP // 2 + k * GAP] = IMPULSE
    write_wav(os.path.join(tmp, "impulses.wav"), imp)
    with open(os.path.join(tmp, "derive.toml"), "w") as f:
        f.write(f'[server]\nrate = {RATE}\nblock = {QUANTUM}\noutput_channels = 2\n\n'
                '[[module]]\nname = "src"\ntype = "capture"\nsource = "device"\nchannels = 8\n\n'
                '[[module]]\nname = "binaural"\ntype = "hrir"\ninput = "src"\nsofa = "default"\nlayout = "7.1"\n\n'
                '[output]\nfrom = "binaural"\n')
    r = subprocess.run([os.path.join(bindir, "rackd"), "render", os.path.join(tmp, "derive.toml"), "--in",
                        os.path.join(tmp, "impulses.wav"), "--out", os.path.join(tmp, "derived.wav")],
                       capture_output=True, text=True)
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    if r.returncode != 0 or summary.get("limited_frames"):
        raise RuntimeError(f"derivation render failed: {r.stderr} {r.stdout}")
    _, (left, right) = read_wav(os.path.join(tmp, "derived.wav"))
    at = GAP // 2 + LFE * GAP  # LFE is a unit impulse to both ears: where it lands is the latency
    latency = max(range(GAP), key=lambda i: abs(left[at - GAP // 2 + i])) - GAP // 2
    if latency != 0 or abs(left[at] - IMPULSE) > 1e-6:
        raise RuntimeError(f"derivation render has latency {latency}; expected none")
    taps = 0
    for k in HESUVI_TRACKS:
        for ear in (left, right):
            w = ear[GAP // 2 + k * GAP:GAP // 2 + (k + 1) * GAP]
            peak = max(abs(v) for v in w)
            taps = max(taps, 1 + max(i for i, v in enumerate(w) if abs(v) > 1e-6 * peak))
    tracks = [None] * 14
    for k, (tl, tr) in HESUVI_TRACKS.items():
        s = GAP // 2 + k * GAP
        tracks[tl] = array.array("f", (v / IMPULSE for v in left[s:s + taps]))
        tracks[tr] = array.array("f", (v / IMPULSE for v in right[s:s + taps]))
    path = os.path.join(tmp, "kemar-hesuvi.wav")
    write_wav(path, tracks)
    return path, taps, tracks


def rackd_patch(tmp, hesuvi, direct=False):
    """capture -> hrir as patches/binaural-7.1.toml (no eq); direct: hrir reads
    the device input itself, one module process fewer."""
    stem = "bench-71-direct" if direct else "bench-71"
    src = "" if direct else \
        '[[module]]\nname = "src"\ntype = "capture"\nsource = "device"\nchannels = 8\n\n'
    path = os.path.join(tmp, stem + ".toml")
    with open(path, "w") as f:
        f.write(f'[server]\nrate = {RATE}\nblock = {QUANTUM}\ninput_channels = 8\noutput_channels = 2\n\n{src}'
                f'[[module]]\nname = "binaural"\ntype = "hrir"\ninput = "{"device" if direct else "src"}"\n'
                f'hesuvi = "{hesuvi}"\nlayout = "7.1"\n\n[output]\nfrom = "binaural"\n')
    return path, "rackd-" + stem, "rackd-" + stem + ".output"


def fc_conf(tmp, hesuvi, stock):
    """A filter-chain virtual 7.1 sink in its own process; stock = LFE through
    FC's pair as PipeWire's HeSuVi example, else straight to both mixers."""
    name = "fc16-surround" if stock else "fc-surround"
    nodes = [f'{{ type = builtin label = copy name = copy{c} }}' for c in FC_NAMES]
    conv = {}  # speaker -> (left node, right node)
    for k, (tl, tr) in HESUVI_TRACKS.items():
        sp = FC_NAMES[k]
        for ear, track in (("L", tl), ("R", tr)):
            nodes.append(f'{{ type = builtin label = convolver name = conv{sp}_{ear} '
                         f'config = {{ filename = "{hesuvi}" channel = {track} }} }}')
        conv[sp] = (f"conv{sp}_L", f"conv{sp}_R")
    if stock:
        for ear, track in (("L", 6), ("R", 13)):
            nodes.append(f'{{ type = builtin label = convolver name = convLFE_{ear} '
                         f'config = {{ filename = "{hesuvi}" channel = {track} }} }}')
        conv["LFE"] = ("convLFE_L", "convLFE_R")
    nodes += ['{ type = builtin label = mixer name = mixL }', '{ type = builtin label = mixer name = mixR }']
    links = []
    for i, sp in enumerate(FC_NAMES):
        if sp in conv:
            for ear, node in zip("LR", conv[sp]):
                links.append(f'{{ output = "copy{sp}:Out" input = "{node}:In" }}')
                links.append(f'{{ output = "{node}:Out" input = "mix{ear}:In {i + 1}" }}')
        else:  # LFE straight to both ears, as rackd's hrir
            links += [f'{{ output = "copy{sp}:Out" input = "mix{ear}:In {i + 1}" }}' for ear in "LR"]
    conf = f"""context.properties = {{ log.level = 2 }}
context.spa-libs = {{ audio.convert.* = audioconvert/libspa-audioconvert
                     support.* = support/libspa-support }}
context.modules = [
  {{ name = libpipewire-module-rt args = {{ }} flags = [ ifexists nofail ] }}
  {{ name = libpipewire-module-protocol-native }}
  {{ name = libpipewire-module-client-node }}
  {{ name = libpipewire-module-adapter }}
  {{ name = libpipewire-module-filter-chain
    args = {{
      node.description = "{name}"
      media.name = "{name}"
      filter.graph = {{
        nodes = [
          {chr(10).join('          ' + n for n in nodes).lstrip()}
        ]
        links = [
          {chr(10).join('          ' + x for x in links).lstrip()}
        ]
        inputs = [ {' '.join(f'"copy{c}:In"' for c in FC_NAMES)} ]
        outputs = [ "mixL:Out" "mixR:Out" ]
      }}
      capture.props = {{
        node.name = "{name}" media.class = Audio/Sink node.latency = {QUANTUM}/{RATE}
        audio.channels = 8 audio.position = [ {POSITIONS.replace(',', ' ')} ]
      }}
      playback.props = {{
        node.name = "{name}.output" node.passive = true node.latency = {QUANTUM}/{RATE}
        audio.channels = 2 audio.position = [ FL FR ]
      }}
    }}
  }}
]
"""
    path = os.path.join(tmp, name + ".conf")
    with open(path, "w") as f:
        f.write(conf)
    return path, name, name + ".output", 16 if stock else 14


class Side:
    """One sink under test, started afresh for each run."""

    def __init__(self, key, label, convolutions, sink, output, start):
        self.key, self.label, self.convolutions = key, label, convolutions
        self.sink, self.output, self._start = sink, output, start
        self.proc = None

    def start(self, session, env=None):
        self.proc = self._start(session, env)
        wait_until(f"{self.label}: its output linked to hp", lambda: (self.output, "hp") in session.links(), 30)

    def pids(self):
        return [self.proc.pid] + descendants(self.proc.pid)

    def stop(self, session):
        out, _ = stop(self.proc, timeout=30)
        session.procs.remove(self.proc)
        if not self.key.startswith("rackd"):
            return {}
        try:
            return json.loads((out or "").strip().splitlines()[-1])
        except (IndexError, ValueError):
            return {"error": "no summary"}


def make_sides(a, tmp, hesuvi):
    rackd = os.path.join(a.bin, "rackd")
    sides = []
    for direct in (False, True):
        patch, sink, out = rackd_patch(tmp, hesuvi, direct)
        key = "rackd-direct" if direct else "rackd"

        def start_rackd(session, env, patch=patch, key=key):
            log = os.path.join(session.root, key + ".log")
            p = session.spawn(key, [rackd, "run", patch, "--desktop"], stdout=subprocess.PIPE, text=True,
                              stderr=open(log, "a"))
            wait_until(f"{key}'s sink", lambda: "is up" in open(log).read() or p.poll() is not None, 30)
            if p.poll() is not None:
                raise RuntimeError("rackd --desktop exited: " + open(log).read())
            return p

        label = "rackd, hrir on the device input" if direct else "rackd --desktop, capture -> hrir"
        sides.append(Side(key, label, 14, sink, out, start_rackd))
    for stock in (False, True):
        conf, fsink, fout, nconv = fc_conf(tmp, hesuvi, stock)
        key = "fc16" if stock else "fc"

        def start_fc(session, env, conf=conf, key=key):
            return session.spawn(key, ["pipewire", "-c", conf], env=env or session.env)

        label = "filter-chain, PipeWire's example" if stock else "filter-chain, same job"
        sides.append(Side(key, label, nconv, fsink, fout, start_fc))
    return [s for s in sides if s.key in a.sides.split(",")]


def play(session, side, path):
    p = session.spawn("player", ["pw-cat", "-p", "--target", side.sink, "--channel-map", POSITIONS, path])
    wait_until(f"the player linked to {side.sink}", lambda: any(i == side.sink for _, i in session.links()), 20)
    return p


def measure(session, side, noise, warmup, seconds):
    side.start(session)
    player = None
    try:
        player = play(session, side, noise)
        time.sleep(warmup)
        pids = side.pids()
        names = {p: comm(p) for p in pids}
        c0, d0, t0 = cpu_by_pid(pids), cpu_ns([session.daemon.pid]), time.monotonic()
        time.sleep(seconds)
        c1, d1, t1 = cpu_by_pid(pids), cpu_ns([session.daemon.pid]), time.monotonic()
        if player.poll() is not None:
            raise RuntimeError("the player ended before the window did: noise file too short")
    finally:
        if player:
            stop(player)
            session.procs.remove(player)
        summary = side.stop(session)
    per = {names[p]: (c1[p] - c0.get(p, 0)) / 1e6 / (t1 - t0) for p in c1}
    return {"cpu": sum(per.values()), "daemon": (d1 - d0) / 1e6 / (t1 - t0), "summary": summary, "per": per}


# ---------------------------------------------------------------- same output?


def dot(x, y, off=0):
    return math.fsum(x[off + i] * v for i, v in enumerate(y))


def align(rec, ref):
    """Best lag of rec (L, R) against ref (L, R) near the first onset, and the
    normalised correlation there."""
    def onset(sig):
        peak = max(max(abs(v) for v in ch) for ch in sig)
        return min(next(i for i, v in enumerate(ch) if abs(v) > 0.3 * peak) for ch in sig if max(map(abs, ch)) > 0.3 * peak)
    lag0 = onset(rec) - onset(ref)
    rr = sum(dot(r, r) for r in ref)
    best = None
    for lag in range(lag0 - 32, lag0 + 33):
        if lag < 0 or lag + len(ref[0]) > len(rec[0]):
            continue
        d = sum(dot(x, r, lag) for x, r in zip(rec, ref))
        if best is None or d > best[1]:
            best = (lag, d)
    lag, d = best
    seg = [x[lag:lag + len(ref[0])] for x in rec]
    xx = sum(dot(s, s) for s in seg)
    return seg, d / math.sqrt(xx * rr)


def compare(x, y):
    """Normalised correlation and residual (dB below y) of x against y after a least-squares gain."""
    xy, yy, xx = sum(dot(a, b) for a, b in zip(x, y)), sum(dot(b, b) for b in y), sum(dot(a, a) for a in x)
    g = xy / yy
    resid = max(xx - 2 * g * xy + g * g * yy, 1e-30)
    return xy / math.sqrt(xx * yy), 10 * math.log10(resid / (g * g * yy)), g


def check_same(session, sides, tmp, tracks, taps):
    lead = RATE // 2
    n = lead + 9 * GAP + RATE // 2
    imp = [array.array("f", bytes(4 * n)) for _ in range(8)]
    ref = [array.array("f", bytes(4 * 9 * GAP)) for _ in range(2)]
    for k in range(8):
        imp[k][lead + k * GAP] = IMPULSE
        for ear in (0, 1):
            if k == LFE:
                ref[ear][k * GAP] = IMPULSE
            else:
                h = tracks[HESUVI_TRACKS[k][ear]]
                for i in range(taps):
                    ref[ear][k * GAP + i] = IMPULSE * h[i]
    path = os.path.join(tmp, "check.wav")
    write_wav(path, imp, MASK_71)
    got = {}
    for side in sides:
        env = dict(session.env, PIPEWIRE_DEBUG="3") if side.key == "fc" else None
        side.start(session, env)
        rec_path = os.path.join(tmp, f"rec-{side.key}.wav")
        rec = session.spawn("recorder", ["parecord", "--device=hp.monitor", "--format=float32le", "--channels=2",
                                         f"--rate={RATE}", "--file-format=wav", "--latency-msec=10", rec_path])
        try:
            wait_until("the recorder linked to hp's monitor", lambda: any(o == "hp" for o, _ in session.links()), 20)
            time.sleep(0.5)
            p = play(session, side, path)
            p.wait(timeout=30)
            session.procs.remove(p)
            time.sleep(1.5)
        finally:
            stop(rec, signal.SIGINT)
            session.procs.remove(rec)
            side.stop(session)
        _, chans = read_wav(rec_path)
        got[side.key] = align(chans, ref)
        corr, resid, g = compare(got[side.key][0], ref)
        print(f"  {side.label:<34} vs the HRIRs placed at the impulses: correlation {corr:.6f}, "
              f"residual {resid:6.1f} dB, gain {g:.4f}", flush=True)
    if "rackd" in got and "fc" in got:
        corr, resid, _ = compare(got["rackd"][0], got["fc"][0])
        print(f"  rackd vs filter-chain (same job): correlation {corr:.6f}, residual {resid:.1f} dB", flush=True)
    blocks = set(re.findall(r"using n_samples:(\d+) (\d+):(\d+) blocksize", open(os.path.join(session.root, "fc.log")).read())) \
        if os.path.exists(os.path.join(session.root, "fc.log")) else set()
    return blocks


# ---------------------------------------------------------------- main


def report(sides, runs):
    """The table: per side median [min..max] of its CPU, of the daemon's, of
    both; its ratio to the filter-chain doing the same job, round by round."""
    print(f"\n{'side':<34} | {'conv':>4} | {'CPU ms/s: side':>24} | {'pipewire daemon':>24} | "
          f"{'side + daemon':>24} | side / filter-chain (same job)")
    for side in sides:
        v = [x["cpu"] for x in runs[side.key]]
        d = [x["daemon"] for x in runs[side.key]]
        both = [x["cpu"] + x["daemon"] for x in runs[side.key]]
        ratio = ""
        if side.key != "fc" and "fc" in runs:
            ratio = spread([x["cpu"] / f["cpu"] for x, f in zip(runs[side.key], runs["fc"])]).strip()
            ratio += "; with daemon " + spread([(x["cpu"] + x["daemon"]) / (f["cpu"] + f["daemon"])
                                                for x, f in zip(runs[side.key], runs["fc"])]).strip()
        print(f"{side.label:<34} | {side.convolutions:>4} | {spread(v):>24} | {spread(d):>24} | {spread(both):>24} | "
              f"{ratio}")
    for side in sides:
        if side.key.startswith("rackd"):
            names = runs[side.key][0]["per"].keys()
            print(f"  {side.label}, by process (median ms/s): " +
                  ", ".join(f"{n} {statistics.median(x['per'].get(n, 0) for x in runs[side.key]):.2f}" for n in names))



def spread(v):
    return f"{statistics.median(v):7.2f} [{min(v):6.2f}..{max(v):6.2f}]"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--sides", default="rackd,fc,fc16,rackd-direct")
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "release",
                                                  "bin"))
    ap.add_argument("--keep", help="keep the temporary directory (logs, WAVs, confs) here")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rackd-desktop-cpu-")
    session = Session(os.path.join(tmp, "session"))

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    try:
        hesuvi, taps, tracks = derive_hrir(a.bin, tmp)
        sides = make_sides(a, tmp, hesuvi)
        frames = int((a.warmup + a.seconds + 6) * RATE)
        period = 4 * RATE  # 4 s of noise per channel, looped: its cost is the same
        noise = [pink_noise(period, 10 ** (-26 / 20), seed=k) for k in range(8)]
        noise = [(ch * (frames // period + 1))[:frames] for ch in noise]
        noise_path = os.path.join(tmp, "noise-7.1.wav")
        write_wav(noise_path, noise, MASK_71)
        del noise
        session.start(RATE, QUANTUM)
        version = subprocess.run(["pipewire", "--version"], capture_output=True, text=True).stdout.split()[-1]
        print(f"desktop 7.1 virtual surround: rackd --desktop beside PipeWire {version}'s filter-chain, "
              f"quantum {QUANTUM} @ {RATE} Hz (clock.force-quantum), one HRIR set for both: MIT KEMAR "
              f"(rackd's default SOFA) rendered by rackd, {taps} taps per ear at {RATE} Hz, as a HeSuVi WAV")
        print("same output? an impulse per channel through each side, hp.monitor recorded:", flush=True)
        blocks = check_same(session, [s for s in sides if s.key in ("rackd", "fc")], tmp, tracks, taps)
        if blocks:
            print("  filter-chain convolver: " + ", ".join(f"{n} taps, blocksize {b}, tailsize {t}"
                                                       for n, b, t in sorted(blocks)) + " (its defaults)")
        print(f"\nCPU: {a.rounds} rounds x {a.seconds:.0f} s per side (after {a.warmup:.0f} s of play), in turn, "
              f"the order reversed every round; pink noise, 8 ch, -26 dBFS RMS; load average before: "
              f"{' '.join(open('/proc/loadavg').read().split()[:3])}", flush=True)
        runs = {s.key: [] for s in sides}
        for r in range(a.rounds):
            for side in (sides if r % 2 == 0 else sides[::-1]):
                x = measure(session, side, noise_path, a.warmup, a.seconds)
                runs[side.key].append(x)
                s = x["summary"]
                extra = ""
                if s:
                    late = sum(m.get("late", 0) for m in s.get("modules", {}).values())
                    extra = f", rackd xruns {s.get('xruns')}, late {late}, limited frames {s.get('limited_frames')}"
                print(f"  round {r + 1} {side.label:<34} {x['cpu']:7.2f} ms/s "
                      f"({' + '.join(f'{k} {v:.2f}' for k, v in x['per'].items())}), "
                      f"pipewire daemon {x['daemon']:6.2f} ms/s{extra}", flush=True)
        report(sides, runs)
        print(f"load average after: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    except KeyboardInterrupt as e:
        print(f"interrupted ({e})", file=sys.stderr)
        return 130
    finally:
        session.stop_all()
        if a.keep:
            shutil.copytree(tmp, a.keep, dirs_exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
