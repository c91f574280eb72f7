#!/usr/bin/env python3
"""Per-module overhead: a chain of N rackd `passthrough` processes beside the
same chain of N JACK2 clients (`jack_thru`, chained with `jack_connect`), on
the same dummy JACK device (48 kHz / 128 frames), measured the same way in the
same run:

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


class Jack:
    def __init__(self, name):
        self.name = name
        self.env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
        self.proc = subprocess.Popen(["jackd", "-n", name, "-d", "dummy", "-r", "48000", "-p", "128"],
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
    lines = ['[[module]]\nname = "src"\ntype = "capture"\nsource = "tone"\n']
    prev = "src"
    for k in range(1, n + 1):
        lines.append(f'[[module]]\nname = "p{k}"\ntype = "passthrough"\ninput = "{prev}"\n')
        prev = f"p{k}"
    lines.append(f'[output]\nfrom = "{prev}"\n')
    return "\n".join(lines)


def run_rackd(bindir, n, seconds):
    jack = Jack(f"bench-rackd-{os.getpid()}-{n}")
    with tempfile.TemporaryDirectory() as d:
        patch = os.path.join(d, "chain.toml")
        with open(patch, "w") as f:
            f.write(chain_patch(n))
        env = dict(jack.env, RACKD_OSC_PORT="-1")
        p = subprocess.Popen([os.path.join(bindir, "rackd"), "run", patch], env=env,
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


def run_jack2(n, seconds):
    jack = Jack(f"bench-jack2-{os.getpid()}-{n}")
    clients = [subprocess.Popen(["jack_thru", f"thru{k}"], env=jack.env, stdout=subprocess.DEVNULL,
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
        c.wait()
    err = jack.stop()
    return {"load": loads, "cpu_per_s": (c1 - c0) / (t1 - t0), "xruns": err.count("XRun")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--chains", default="1,8,32")
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build", "release", "bin"))
    a = ap.parse_args()
    print(f"per-module overhead, dummy JACK 48 kHz / 128 frames, {a.seconds:.0f} s per run")
    print(f"{'N':>3} | {'rackd load %':>12} {'JACK2 load %':>12} {'ratio':>6} | {'rackd us/hop':>12} "
          f"{'JACK2 us/hop':>12} | {'rackd cycle p50/p99 us':>22} | {'rackd cpu s/s':>13} {'JACK2 cpu s/s':>13} "
          f"{'ratio':>6} | xruns rackd/jack2-driver")
    for n in [int(x) for x in a.chains.split(",")]:
        r = run_rackd(a.bin, n, a.seconds)
        j = run_jack2(n, a.seconds)
        rl = statistics.median(r["load"]) if r["load"] else float("nan")
        jl = statistics.median(j["load"]) if j["load"] else float("nan")
        cyc = r["summary"].get("cycle_us", {})
        print(f"{n:>3} | {rl:12.2f} {jl:12.2f} {rl / jl if jl else float('nan'):6.2f} | "
              f"{rl / 100 * PERIOD_US / n:12.1f} {jl / 100 * PERIOD_US / n:12.1f} | "
              f"{cyc.get('p50', -1):10.0f} /{cyc.get('p99', -1):10.0f} | "
              f"{r['cpu_per_s']:13.3f} {j['cpu_per_s']:13.3f} {r['cpu_per_s'] / j['cpu_per_s'] if j['cpu_per_s'] else float('nan'):6.2f} | "
              f"{r['summary'].get('xruns')}/{j['xruns']}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
