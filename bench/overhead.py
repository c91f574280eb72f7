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

Then the hop comparison, where both sides have the same number of process
hops per cycle (N + 1): rackd on its own null device (`--device null`, its
device thread paced like jackd's dummy driver, no sound server in between)
beside jackd -d dummy with the same chain of N jack_thru clients. Measured:
CPU seconds per audio second of every process of the setup (rackd and its
modules; jackd and its clients; nothing else connected), in --reps runs that
alternate between the two sides (and swap which goes first) so both see the
same noise: median [min..max] and the ratio of the medians. As shipped (rackd's
`--audio-cpu auto`, jackd floating) and both on one CPU. JACK2 runs twice:
as shipped (asynchronous: the driver does not wait for the graph, whose
output is played a period later) and with -S (synchronous, like rackd: the
driver waits for the graph within the cycle, one more wake-up per cycle).

    python3 bench/overhead.py [--seconds 20] [--chains 1,8,32] [--bin build/release/bin]
                              [--reps 3] [--hop-seconds 10] [--only jack|hops]

Prints tables and ratios (rackd / JACK2); lower is better. The dummy device
xruns on machines that stall real-time threads (see docs/realtime.md); the
xrun counts are printed for both setups (rackd's null device: its late and
missed cycles).
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


def cpu_seconds_ns(pids):
    """CPU time of every thread of `pids` from /proc/<pid>/task/*/schedstat
    (nanoseconds, where /proc/<pid>/stat counts clock ticks)."""
    total = 0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                pass
    return total / 1e9


class Jack:
    def __init__(self, name, cpu=None, period=128, sync=False):
        self.name = name
        self.env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
        server = ["jackd", "-n", name] + (["-S"] if sync else [])
        self.proc = subprocess.Popen(pinned(server + ["-d", "dummy", "-r", "48000", "-p", str(period)], cpu),
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


def wait_for(path, text, timeout):
    end = time.time() + timeout
    while time.time() < end:
        with open(path) as f:
            if text in f.read():
                return True
        time.sleep(0.05)
    return False


def run_rackd_null(bindir, n, seconds, cpu=None):
    """rackd on its null device: no sound server; CPU of rackd and its modules."""
    with tempfile.TemporaryDirectory() as d:
        patch = os.path.join(d, "chain.toml")
        with open(patch, "w") as f:
            f.write(chain_patch(n))
        err_path = os.path.join(d, "err")
        env = dict(os.environ, RACKD_OSC_PORT="-1")
        extra = [] if cpu is None else ["--audio-cpu", str(cpu)]
        with open(err_path, "w") as err:
            p = subprocess.Popen([os.path.join(bindir, "rackd"), "run", patch, "--device", "null"] + extra, env=env,
                                 stdout=subprocess.PIPE, stderr=err, text=True)
        if not wait_for(err_path, "playing", 30):
            p.kill()
            raise RuntimeError("rackd --device null did not start: " + open(err_path).read())
        time.sleep(1)
        pids = [p.pid] + children(p.pid)
        c0, t0 = cpu_seconds_ns(pids), time.time()
        time.sleep(seconds)
        c1, t1 = cpu_seconds_ns(pids), time.time()
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=30)
    summary = json.loads(out.strip().splitlines()[-1])
    return {"cpu_per_s": (c1 - c0) / (t1 - t0), "xruns": summary.get("xruns"), "summary": summary}


def jack_connect(env, a, b):
    # A jack_connect was once seen hanging for minutes in its reply read with
    # 32 clients on a loaded machine: bounded, and tried again.
    for _ in range(3):
        try:
            subprocess.run(["jack_connect", a, b], env=env, capture_output=True, timeout=20)
            return
        except subprocess.TimeoutExpired:
            pass


def run_jack2(n, seconds, cpu=None, jack_load=True, sync=False):
    jack = Jack(f"bench-jack2-{os.getpid()}-{n}-{cpu}", cpu, sync=sync)
    clients = [subprocess.Popen(pinned(["jack_thru", f"thru{k}"], cpu), env=jack.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for k in range(1, n + 1)]
    time.sleep(1 + n * 0.05)
    src = "system:capture_"
    for k in range(1, n + 1):
        for ch in (1, 2):
            jack_connect(jack.env, f"{src}{ch}", f"thru{k}:input_{ch}")
        src = f"thru{k}:output_"
    for ch in (1, 2):
        jack_connect(jack.env, f"{src}{ch}", f"system:playback_{ch}")
    time.sleep(1)
    pids = [jack.proc.pid] + [c.pid for c in clients]
    # Without jack_load: nothing but the chain connected (jack_cpu_load is a
    # client too), CPU time in nanoseconds.
    cpu_time = cpu_seconds if jack_load else cpu_seconds_ns
    c0, t0 = cpu_time(pids), time.time()
    if jack_load:
        loads = sample_load(jack.env, seconds)
    else:
        loads = []
        time.sleep(seconds)
    c1, t1 = cpu_time(pids), time.time()
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


def jack_pairs(a, cpu):
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


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


HOP_SIDES = {
    "rackd": "rackd null",
    "JACK2": "JACK2 dummy",
    "JACK2 -S": "JACK2 dummy -S",
}


def run_side(side, a, n, where):
    if side == "rackd":
        return run_rackd_null(a.bin, n, a.hop_seconds, where)
    return run_jack2(n, a.hop_seconds, where, jack_load=False, sync=side == "JACK2 -S")


def hops(a, cpu):
    """rackd --device null beside jackd -d dummy + N jack_thru: same hop count."""
    print(f"\nsame hops: rackd --device null beside jackd -d dummy + N jack_thru (and jackd -S: synchronous, "
          f"no extra period of latency, as rackd), 48 kHz / 128, {a.reps} alternating runs of {a.hop_seconds:.0f} s "
          f"each; cpu s/s = CPU seconds per audio second of rackd + modules / jackd + clients (schedstat), "
          f"median [min..max]; load average before: {load_average()}")
    print(f"{'N':>3} | {'setup':<28} | {'cpu s/s':>23} | {'ms/s per N':>10} | {'rackd/this':>10} | xruns per run")
    for n in [int(x) for x in a.chains.split(",")]:
        for where in (None, cpu):
            sides = {k: [] for k in HOP_SIDES}
            order = list(HOP_SIDES)
            for rep in range(a.reps):
                for side in (order if rep % 2 == 0 else order[::-1]):
                    sides[side].append(run_side(side, a, n, where))
            med = {k: statistics.median(x["cpu_per_s"] for x in v) for k, v in sides.items()}
            suffix = "as shipped" if where is None else f"on CPU {where}"
            for k, v in sides.items():
                cpus = [x["cpu_per_s"] for x in v]
                ratio = f"{med['rackd'] / med[k] if med[k] else float('nan'):10.2f}" if k != "rackd" else ""
                print(f"{n:>3} | {HOP_SIDES[k] + ', ' + suffix:<28} | {med[k]:7.4f} [{min(cpus):6.4f}..{max(cpus):6.4f}] "
                      f"| {med[k] / n * 1e3:10.2f} | {ratio:>10} | {','.join(str(x['xruns']) for x in v)}",
                      flush=True)
    print(f"load average after: {load_average()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--chains", default="1,8,32")
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build", "release", "bin"))
    ap.add_argument("--reps", type=int, default=3, help="hop comparison: runs per side")
    ap.add_argument("--hop-seconds", type=float, default=10, help="hop comparison: seconds per run")
    ap.add_argument("--only", choices=["jack", "hops"], help="run one comparison only")
    a = ap.parse_args()
    cpu = max(os.sched_getaffinity(0))
    if a.only != "hops":
        jack_pairs(a, cpu)
    if a.only != "jack":
        hops(a, cpu)


if __name__ == "__main__":
    sys.exit(main())
