#!/usr/bin/env python3
"""Per-module overhead: a chain of N rackd `passthrough` processes beside the
same chain of N JACK2 clients (`jack_thru`, chained with `jack_connect`), on
the same dummy JACK device (48 kHz / 128 frames), measured the same way in the
same run. Both chains start at the device's capture ports and end at its
playback ports: rackd's first passthrough reads the device input itself.

Two pairs per N: rackd and JACK2 as a user gets them (rackd's default
`--audio-cpu auto` puts a chain's device thread and modules on the CPU its
device thread runs on; jackd floats), and both with everything on one CPU
(jackd and JACK2's clients by taskset, rackd by `--audio-cpu`), so the gain of
the placement and the cost of the process structure can be told apart. rackd
always has one process more than JACK2 in the relay (the server between the
device and the first module, and again at the end). Measured for each:

* JACK's DSP load (jack_cpu_load), the share of the period the graph takes,
  sampled for both setups; per hop = load x period / N;
* CPU seconds per audio second of every process of the setup (jackd included);
* for rackd also its own cycle time (device callback start to graph done) from
  the exit summary: median and 99th percentile, per hop.

    python3 bench/overhead.py [--seconds 20] [--chains 1,8,32] [--bin build/release/bin]

Prints a table and ratios (rackd / JACK2); lower is better. The dummy device
xruns on machines that stall real-time threads (see docs/realtime.md); the
xrun counts are printed for both setups.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

PERIOD_US = 128 / 48000 * 1e6
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return total / TICKS


def children(pid):
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(p))
        except (FileNotFoundError, IndexError, ValueError):
            pass
    return out


def pinned(cmd, cpu):
    return cmd if cpu is None else ["taskset", "-c", str(cpu)] + cmd


class Jack:
    def __init__(self, name, cpu=None, period=128):
        self.name = name
        self.env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
        self.proc = subprocess.Popen(pinned(["jackd", "-n", name, "-d", "dummy", "-r", "48000", "-p", str(period)], cpu),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(100):
            if subprocess.run(["jack_lsp"], env=self.env, capture_output=True).returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("jackd did not start")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err or ""


def sample_load(env, seconds):
    """JACK's DSP load (percent), as jack_cpu_load prints it over `seconds`."""
    p = subprocess.Popen(["jack_cpu_load"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(seconds)
    p.send_signal(signal.SIGINT)
    try:
        out, _ = p.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    return [float(line.split()[-1]) for line in out.splitlines() if line.startswith("jack DSP load")]


def chain_patch(n):
    lines = ['[server]\ninput_channels = 2\n']
    prev = "device"
    for k in range(1, n + 1):
        lines.append(f'[[module]]\nname = "p{k}"\ntype = "passthrough"\ninput = "{prev}"\n')
        prev = f"p{k}"
    lines.append(f'[output]\nfrom = "{prev}"\n')
    return "\n".join(lines)


def run_rackd(bindir, n, seconds, cpu=None):
    jack = Jack(f"bench-rackd-{os.getpid()}-{n}-{cpu}", cpu)
    with tempfile.TemporaryDirectory() as d:
        patch = os.path.join(d, "chain.toml")
        with open(patch, "w") as f:
            f.write(chain_patch(n))
        env = dict(jack.env, RACKD_OSC_PORT="-1")
        extra = [] if cpu is None else ["--audio-cpu", str(cpu)]
        p = subprocess.Popen([os.path.join(bindir, "rackd"), "run", patch] + extra, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        pids = [p.pid, jack.proc.pid] + children(p.pid)
        c0, t0 = cpu_seconds(pids), time.time()
        loads = sample_load(jack.env, seconds)
        c1, t1 = cpu_seconds(pids), time.time()
        p.send_signal(signal.SIGTERM)
        try:
            out, err = p.communicate(timeout=30)
        finally:
            jack.stop()
    summary = json.loads(out.strip().splitlines()[-1])
    return {"load": loads, "cpu_per_s": (c1 - c0) / (t1 - t0), "summary": summary}


def run_jack2(n, seconds, cpu=None):
    jack = Jack(f"bench-jack2-{os.getpid()}-{n}-{cpu}", cpu)
    clients = [subprocess.Popen(pinned(["jack_thru", f"thru{k}"], cpu), env=jack.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for k in range(1, n + 1)]
    time.sleep(1 + n * 0.05)
    src = "system:capture_"
    for k in range(1, n + 1):
        for ch in (1, 2):
            subprocess.run(["jack_connect", f"{src}{ch}", f"thru{k}:input_{ch}"], env=jack.env,
                           capture_output=True)
        src = f"thru{k}:output_"
    for ch in (1, 2):
        subprocess.run(["jack_connect", f"{src}{ch}", f"system:playback_{ch}"], env=jack.env, capture_output=True)
    time.sleep(1)
    pids = [jack.proc.pid] + [c.pid for c in clients]
    c0, t0 = cpu_seconds(pids), time.time()
    loads = sample_load(jack.env, seconds)
    c1, t1 = cpu_seconds(pids), time.time()
    for c in clients:
        c.send_signal(signal.SIGTERM)
    for c in clients:
        try:
            c.wait(timeout=5)
        except subprocess.TimeoutExpired:  # a jack_thru stuck in its shutdown (seen once with 32)
            c.kill()
            c.wait()
    err = jack.stop()
    return {"load": loads, "cpu_per_s": (c1 - c0) / (t1 - t0), "xruns": err.count("XRun")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--chains", default="1,8,32")
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build", "release", "bin"))
    a = ap.parse_args()
    cpu = max(os.sched_getaffinity(0))
    print(f"per-module overhead, dummy JACK 48 kHz / 128 frames, {a.seconds:.0f} s per run; "
          f"load = JACK DSP load (cycle start to graph done / period), median [min..max] of 1 s samples")
    print(f"{'N':>3} | {'setup':<22} | {'load %':>22} | {'us/hop':>7} | {'cpu s/s':>8} | "
          f"{'rackd/JACK2 load':>16} {'cpu':>5} | {'xruns':>5} | rackd cycle p50/p99 us")
    for n in [int(x) for x in a.chains.split(",")]:
        pairs = [(("rackd", run_rackd(a.bin, n, a.seconds)), ("JACK2", run_jack2(n, a.seconds))),
                 ((f"rackd, jackd on CPU {cpu}", run_rackd(a.bin, n, a.seconds, cpu)),
                  (f"JACK2, all on CPU {cpu}", run_jack2(n, a.seconds, cpu)))]
        for pair in pairs:
            med = {}
            for name, x in pair:
                load = x["load"] or [float("nan")]
                med[name] = statistics.median(load)
            (rn, r), (jn, j) = pair
            for name, x in pair:
                load = x["load"] or [float("nan")]
                ratio = ""
                extra = ""
                xr = x.get("xruns")
                if name == rn:
                    ratio = (f"{med[rn] / med[jn] if med[jn] else float('nan'):16.2f} "
                             f"{r['cpu_per_s'] / j['cpu_per_s'] if j['cpu_per_s'] else float('nan'):5.2f}")
                    cyc = x["summary"].get("cycle_us", {})
                    extra = f"{cyc.get('p50', -1):.0f} / {cyc.get('p99', -1):.0f}"
                    xr = x["summary"].get("xruns")
                print(f"{n:>3} | {name:<22} | {med[name]:7.2f} [{min(load):6.2f}..{max(load):6.2f}] | "
                      f"{med[name] / 100 * PERIOD_US / n:7.1f} | {x['cpu_per_s']:8.3f} | {ratio:>22} | "
                      f"{xr:>5} | {extra}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
