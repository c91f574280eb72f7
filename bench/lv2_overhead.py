#!/usr/bin/env python3
"""LV2 hosting overhead: a chain of N (default 8) instances of one light LV2
plugin, hosted by rackd (N `lv2` module processes) beside JACK2 (N `jalv`
clients chained with `jack_connect`), on the same dummy JACK device (48 kHz /
128 frames), measured the same way in the same run, as bench/overhead.py does
with passthrough / jack_thru (its Jack, sample_load and CPU helpers are used
as they are). Both chains start at the device's capture ports and end at its
playback ports: rackd's first lv2 module reads the device input itself
(`input = "device"`, no capture process), as in bench/overhead.py.

Live, per side, in --reps runs that alternate between the sides (and swap
which goes first) so both see the same noise:
* CPU seconds per audio second of every process of the setup (rackd + its
  modules + jackd; jackd + the jalv clients), from schedstat;
* JACK's DSP load (jack_cpu_load, 1 s samples) over the same window.
Printed: median [min..max] over the runs (the load: of each run's median) and
the ratio rackd / JACK2 of the medians; lower is better.

Offline, "the price of isolation": the same chain rendered from a stereo
noise file, `rackd render` (N module processes, shared-memory rings) beside
the same chain in one process (bench/lv2_chain_render: lilv, block 128), wall
seconds, median [min..max] of alternating runs, the ratio, and the largest
sample difference of the two outputs. `lv2apply` (lilv-utils) is shown too,
but is no baseline: it runs one plugin per call and processes frame by frame
(a read and a write system call per frame), so its chain is N calls through
WAV files on /dev/shm.

    python3 bench/lv2_overhead.py [--plugin URI] [--n 8] [--seconds 20] [--reps 3]
                                  [--render-seconds 60] [--lv2apply-runs 1] [--only live|render]
                                  [--bin build/release/bin]

Every instance runs with the plugin's default control values on both sides.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from overhead import Jack, children, cpu_seconds_ns, jack_connect, load_average, sample_load  # noqa: E402

DEFAULT_PLUGIN = "http://drobilla.net/plugins/mda/Limiter"  # mda-lv2: stereo in/out, a few multiplies per sample


class BenchJack(Jack):
    """bench/overhead.py's dummy jackd, started again (up to 3 times, the
    failed one killed) when it does not answer in time on a loaded machine."""

    def __init__(self, name):
        for attempt in range(3):
            try:
                super().__init__(f"{name}-{attempt}")
                return
            except RuntimeError:
                self.proc.kill()
                _, err = self.proc.communicate()
                print(f"  (jackd {name}-{attempt} did not start: {err.strip()[-200:]!r}; again)", flush=True)
                time.sleep(1)
        raise RuntimeError("jackd did not start three times")


def lv2_patch(uri, n):
    lines = ['[server]\nrate = 48000\nblock = 128\ninput_channels = 2\noutput_channels = 2\n']
    prev = "device"
    for k in range(1, n + 1):
        lines.append(f'[[module]]\nname = "l{k}"\ntype = "lv2"\nplugin = "{uri}"\ninput = "{prev}"\n')
        prev = f"l{k}"
    lines.append(f'[output]\nfrom = "{prev}"\n')
    return "\n".join(lines)


def stop(p, timeout=30):
    p.send_signal(signal.SIGTERM)
    try:
        return p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.communicate()


def run_rackd(a, patch, tag):
    jack = BenchJack(f"bench-lv2-rackd-{os.getpid()}-{tag}")
    try:
        env = dict(jack.env, RACKD_OSC_PORT="-1")
        p = subprocess.Popen([os.path.join(a.bin, "rackd"), "run", patch], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        if p.poll() is not None:
            raise RuntimeError("rackd run exited: " + p.stderr.read())
        pids = [p.pid, jack.proc.pid] + children(p.pid)
        c0, t0 = cpu_seconds_ns(pids), time.time()
        loads = sample_load(jack.env, a.seconds)
        c1, t1 = cpu_seconds_ns(pids), time.time()
        out, err = stop(p)
    finally:
        jack_err = jack.stop()
    summary = {}
    try:
        summary = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        pass
    return {"load": loads, "cpu_per_s": (c1 - c0) / (t1 - t0), "xruns": summary.get("xruns", "?"),
            "jack_xruns": jack_err.count("XRun"), "procs": len(pids)}


def client_ports(env, client):
    """Audio input and output ports of one JACK client, in jack_lsp order."""
    out = subprocess.run(["jack_lsp", "-p", "-t"], env=env, capture_output=True, text=True).stdout.splitlines()
    ins, outs = [], []
    for i, line in enumerate(out):
        if not line.startswith(client + ":"):
            continue
        props = out[i + 1] if i + 1 < len(out) else ""
        kind = out[i + 2] if i + 2 < len(out) else ""
        if "audio" not in kind:
            continue
        (ins if "input" in props else outs).append(line)
    return ins, outs


def run_jalv(a, tag):
    jack = BenchJack(f"bench-lv2-jack2-{os.getpid()}-{tag}")
    clients = []
    try:
        for k in range(1, a.n + 1):
            # jalv quits at the end of its standard input: keep a pipe open.
            clients.append(subprocess.Popen(["jalv", "-x", "-n", f"jalv{k}", a.plugin], env=jack.env,
                                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL))
        names = [f"jalv{k}" for k in range(1, a.n + 1)]
        end = time.time() + 30
        ports = {}
        while time.time() < end and len(ports) < a.n:
            for name in names:
                if name not in ports:
                    ins, outs = client_ports(jack.env, name)
                    if len(ins) == 2 and len(outs) == 2:
                        ports[name] = (ins, outs)
            time.sleep(0.2)
        if len(ports) < a.n:
            raise RuntimeError(f"only {len(ports)} of {a.n} jalv clients registered stereo ports")
        src = ["system:capture_1", "system:capture_2"]
        for name in names:
            ins, outs = ports[name]
            for s, d in zip(src, ins):
                jack_connect(jack.env, s, d)
            src = outs
        for s, d in zip(src, ["system:playback_1", "system:playback_2"]):
            jack_connect(jack.env, s, d)
        time.sleep(1)
        pids = [jack.proc.pid] + [c.pid for c in clients]
        c0, t0 = cpu_seconds_ns(pids), time.time()
        loads = sample_load(jack.env, a.seconds)
        c1, t1 = cpu_seconds_ns(pids), time.time()
    finally:
        for c in clients:
            c.stdin.close()
            c.send_signal(signal.SIGTERM)
        for c in clients:
            try:
                c.wait(timeout=5)
            except subprocess.TimeoutExpired:
                c.kill()
                c.wait()
        jack_err = jack.stop()
    return {"load": loads, "cpu_per_s": (c1 - c0) / (t1 - t0), "xruns": jack_err.count("XRun"),
            "jack_xruns": jack_err.count("XRun"), "procs": len(pids)}


def spread(xs, fmt="{:.4f}"):
    return f"{fmt.format(statistics.median(xs))} [{fmt.format(min(xs))}..{fmt.format(max(xs))}]"


def live(a, patch):
    print(f"LV2 chain, live: {a.n} x {a.plugin} on dummy JACK 48 kHz / 128 frames, {a.reps} alternating runs of "
          f"{a.seconds:.0f} s; cpu s/s = CPU seconds per audio second of every process of the setup (schedstat); "
          f"load = JACK DSP load, median of each run's 1 s samples; median [min..max] over runs; "
          f"load average before: {load_average()}", flush=True)
    sides = {"rackd": [], "JACK2 + jalv": []}
    order = list(sides)
    for rep in range(a.reps):
        for side in (order if rep % 2 == 0 else order[::-1]):
            r = run_rackd(a, patch, rep) if side == "rackd" else run_jalv(a, rep)
            sides[side].append(r)
            load = statistics.median(r["load"]) if r["load"] else float("nan")
            print(f"  run {rep + 1} {side:<13} cpu {r['cpu_per_s']:.4f} s/s, load {load:.2f} %, "
                  f"xruns {r['xruns']} (jackd {r['jack_xruns']}), {r['procs']} processes", flush=True)
    med = {}
    print(f"{'setup':<14} | {'cpu s/s':>26} | {'JACK DSP load %':>26} | xruns per run")
    for side, runs in sides.items():
        cpus = [r["cpu_per_s"] for r in runs]
        loads = [statistics.median(r["load"]) if r["load"] else float("nan") for r in runs]
        med[side] = (statistics.median(cpus), statistics.median(loads))
        print(f"{side:<14} | {spread(cpus):>26} | {spread(loads, '{:.2f}'):>26} | "
              f"{','.join(str(r['xruns']) for r in runs)}")
    (rc, rl), (jc, jl) = med["rackd"], med["JACK2 + jalv"]
    print(f"rackd / (JACK2 + jalv): cpu {rc / jc if jc else float('nan'):.2f}, "
          f"load {rl / jl if jl else float('nan'):.2f}; load average after: {load_average()}", flush=True)


def timed(cmd, **kw):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr[-2000:]}")
    return time.perf_counter() - t0, r.stdout


def last_json(text, key):
    try:
        return float(json.loads(text.strip().splitlines()[-1])[key])
    except (ValueError, IndexError, KeyError):
        return float("nan")


def max_difference(x, y):
    """Largest sample difference of two WAV files (sox), or None if sox cannot tell."""
    r = subprocess.run(["sox", "-m", "-v", "1", x, "-v", "-1", y, "-n", "stat"], capture_output=True, text=True)
    vals = [abs(float(line.split(":")[1])) for line in r.stderr.splitlines()
            if line.startswith(("Maximum amplitude", "Minimum amplitude"))]
    return max(vals) if vals else None


def render(a, patch):
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=base) as d:
        src = os.path.join(d, "in.wav")
        subprocess.run(["sox", "-n", "-r", "48000", "-c", "2", "-b", "32", "-e", "floating-point", src, "synth",
                        str(a.render_seconds), "whitenoise", "vol", "0.5"], check=True)
        outs = {"rackd render": os.path.join(d, "r.wav"), "in-process": os.path.join(d, "p.wav")}

        def lv2apply_chain():
            t = 0.0
            cur = src
            for k in range(a.n):
                nxt = os.path.join(d, f"a{k % 2}.wav")
                t += timed(["lv2apply", "-i", cur, "-o", nxt, a.plugin])[0]
                cur = nxt
            return t, float("nan")

        # (wall seconds of the command, seconds of the processing alone)
        def in_process():
            wall, out = timed([os.path.join(a.bin, "lv2_chain_render"), a.plugin, str(a.n), src, outs["in-process"]])
            return wall, last_json(out, "loop_seconds")

        def rackd_render():
            wall, out = timed([os.path.join(a.bin, "rackd"), "render", patch, "--in", src, "--out",
                               outs["rackd render"]], env=dict(os.environ, RACKD_OSC_PORT="-1"))
            return wall, last_json(out, "seconds")

        print(f"\nLV2 chain, offline (the price of isolation): {a.n} x {a.plugin}, {a.render_seconds:.0f} s stereo "
              f"noise at 48 kHz, files on {base or 'the temp dir'}; wall seconds of the whole command, median "
              f"[min..max] of {a.reps} alternating runs. Baseline: the same chain in one process "
              f"(bench/lv2_chain_render: lilv, block 128, the same host features). lv2apply (lilv-utils) runs one "
              f"plugin per call and processes frame by frame (one read and one write system call per frame), so "
              f"its chain is {a.n} calls through WAV files, {a.lv2apply_runs} run(s): shown, not the baseline.",
              flush=True)
        sides = {"rackd render": (rackd_render, []), "in-process": (in_process, [])}
        for rep in range(a.reps):
            for side in (list(sides) if rep % 2 == 0 else list(sides)[::-1]):
                fn, times = sides[side]
                times.append(fn())
        if a.lv2apply_runs:
            sides[f"lv2apply x {a.n}"] = (None, [lv2apply_chain() for _ in range(a.lv2apply_runs)])
        med = {k: statistics.median(x[0] for x in v) for k, (_, v) in sides.items()}
        proc = {k: statistics.median(x[1] for x in v) for k, (_, v) in sides.items()}
        print(f"{'setup':<16} | {'wall s, whole command':>24} | {'x real time':>11} | {'vs in-process':>13} | "
              f"{'processing s (no startup)':>26} | {'vs in-process':>13}")
        for k, (_, v) in sides.items():
            walls, procs = [x[0] for x in v], [x[1] for x in v]
            print(f"{k:<16} | {spread(walls, '{:.3f}'):>24} | {a.render_seconds / med[k]:11.1f} | "
                  f"{med[k] / med['in-process']:13.2f} | {spread(procs, '{:.3f}'):>26} | "
                  f"{proc[k] / proc['in-process']:13.2f}")
        diff = max_difference(outs["rackd render"], outs["in-process"])
        print(f"rackd render / in-process: {med['rackd render'] / med['in-process']:.2f} whole command, "
              f"{proc['rackd render'] / proc['in-process']:.2f} processing alone (rackd: its exit summary's seconds; "
              f"in-process: the block loop); largest sample difference of the two outputs: "
              f"{diff if diff is not None else 'n/a'}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plugin", default=DEFAULT_PLUGIN)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20, help="live: seconds per run")
    ap.add_argument("--reps", type=int, default=3, help="runs per side (live and render)")
    ap.add_argument("--render-seconds", type=float, default=60)
    ap.add_argument("--lv2apply-runs", type=int, default=1, help="offline: lv2apply chain runs (slow: frame by frame)")
    ap.add_argument("--only", choices=["live", "render"])
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build", "release", "bin"))
    a = ap.parse_args()
    for tool in ("jackd", "jalv", "lv2apply", "jack_cpu_load", "sox"):
        if not shutil.which(tool):
            sys.exit(f"lv2_overhead: {tool} not found (scripts/setup installs it)")
    with tempfile.TemporaryDirectory() as d:
        patch = os.path.join(d, "lv2-chain.toml")
        with open(patch, "w") as f:
            f.write(lv2_patch(a.plugin, a.n))
        if a.only != "render":
            live(a, patch)
        if a.only != "live":
            render(a, patch)


if __name__ == "__main__":
    sys.exit(main())
