#!/usr/bin/env python3
"""Where rackd's audio threads run, measured beside a JACK2 client.

One `jackd -R -P 70 -d dummy -r 48000 -p 128` and one `jack_thru` client
(system:capture -> thru -> system:playback) stay up for the whole script;
`rackd run PATCH --duration S` runs again and again beside them, the
`--audio-cpu` variants alternating (the first of each round alternates too), so
every variant sees the same machine noise. Per run:

* JACK's blames from jackd's log ("client = X was not finished"): rackd's
  client (PortAudio or rackd) and the jack_thru beside it, same window;
* rackd's exit summary: overruns, cycle_us p99 and max;
* per CPU: steal, irq+softirq, busy time (/proc/stat), and the CPU rackd
  pinned its audio threads to (its log line), if any;
* the load average when the run started.

    python3 bench/placement.py [--runs 10] [--seconds 8] [--variants auto,auto-noloss,auto-nowatch,none]
                               [--patch patches/tone.toml] [--bin build/release/bin]
                               [--perf DIR]  # perf sched record -a for every run

Prints one line per run and, per variant, median [min..max] of each figure.
A run is "bad" when rackd is blamed more than 30 times in it.
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

BAD_BLAMES = 30


def cpu_times():
    """Per CPU: (busy, steal, irq) in clock ticks."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            m = re.match(r"cpu(\d+) (.*)", line)
            if not m:
                continue
            v = [int(x) for x in m.group(2).split()]
            user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
            out[int(m.group(1))] = (user + nice + system + irq + softirq, steal, irq + softirq)
    return out


class Jack:
    def __init__(self, name, log_path):
        self.env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(["jackd", "-R", "-P", "70", "-n", name, "-d", "dummy", "-r", "48000",
                                      "-p", "128"], stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(100):
            if subprocess.run(["jack_lsp"], env=self.env, capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("jackd did not start")
        self.thru = subprocess.Popen(["jack_thru", "thru"], env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        time.sleep(1)
        for a, b in (("system:capture_1", "thru:input_1"), ("system:capture_2", "thru:input_2"),
                     ("thru:output_1", "system:playback_1"), ("thru:output_2", "system:playback_2")):
            subprocess.run(["jack_connect", a, b], env=self.env, capture_output=True)

    def text(self):
        self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        for p in (self.thru, self.proc):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def blames(text):
    rackd = len(re.findall(r"client = (PortAudio|rackd) was not finished", text))
    thru = len(re.findall(r"client = thru was not finished", text))
    return rackd, thru


def one_run(a, jack, variant, index):
    before = len(jack.text())
    t0 = cpu_times()
    load = os.getloadavg()[0]
    perf = None
    if a.perf:
        os.makedirs(a.perf, exist_ok=True)
        path = os.path.join(a.perf, f"run{index:03d}-{variant}.data")
        perf = subprocess.Popen(["perf", "sched", "record", "-a", "-o", path, "--", "sleep", str(a.seconds + 2)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    # "auto-nowatch": --audio-cpu auto without the watcher that moves a held-up
    # chain; "auto-noloss": with it, but without its move after lost cycles.
    env = dict(jack.env, RACKD_OSC_PORT="-1")
    if variant.endswith("-nowatch"):
        env["RACKD_AUDIO_CPU_WATCH"] = "0"
    if variant.endswith("-noloss"):
        env["RACKD_AUDIO_CPU_ON_LOSS"] = "0"
    p = subprocess.run([os.path.join(a.bin, "rackd"), "run", a.patch, "--duration", str(a.seconds),
                        "--audio-cpu", variant.split("-")[0]], env=env,
                       capture_output=True, text=True, timeout=a.seconds + 60)
    if perf:
        perf.wait()
    t1 = cpu_times()
    rb, tb = blames(jack.text()[before:])
    try:
        s = json.loads(p.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        print(p.stderr, file=sys.stderr)
        raise
    m = re.search(r"modules on CPU (\d+)", p.stderr)
    pinned = int(m.group(1)) if m else -1
    moved = len(re.findall(r"audio threads moved", p.stderr))  # AudioCpuWatch's log lines
    loss_moves = len(re.findall(r"cycles lost on CPU", p.stderr))  # of them, after lost cycles
    ticks = os.sysconf("SC_CLK_TCK")
    per_cpu = {c: tuple((t1[c][k] - t0[c][k]) / ticks for k in range(3)) for c in t1}
    return {"variant": variant, "rackd_blames": rb, "thru_blames": tb, "overruns": s.get("overruns", -1),
            "p99_us": s.get("cycle_us", {}).get("p99", -1), "max_us": s.get("cycle_us", {}).get("max", -1),
            "pinned": pinned, "moved": moved, "loss_moves": loss_moves, "load": load, "cpu": per_cpu}


def summary(values):
    if not values:
        return "-"
    return f"{statistics.median(values):g} [{min(values):g}..{max(values):g}]"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10, help="runs per variant")
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--variants", default="auto,auto-noloss,auto-nowatch,none")
    ap.add_argument("--patch", default=os.path.join(here, "..", "patches", "tone.toml"))
    ap.add_argument("--bin", default=os.path.join(here, "..", "build", "release", "bin"))
    ap.add_argument("--perf", help="directory for one `perf sched record -a` file per run")
    ap.add_argument("--json", help="write every run's figures here")
    a = ap.parse_args()
    variants = a.variants.split(",")
    log = f"/tmp/placement-jackd-{os.getpid()}.log"
    jack = Jack(f"placement-{os.getpid()}", log)
    runs = []
    try:
        for r in range(a.runs):
            order = variants if r % 2 == 0 else variants[::-1]
            for v in order:
                x = one_run(a, jack, v, len(runs))
                runs.append(x)
                steal = " ".join(f"cpu{c} steal {s:.2f}s irq {i:.2f}s busy {b:.1f}s" for c, (b, s, i) in
                                 sorted(x["cpu"].items()))
                print(f"run {len(runs):3d} {v:>5}: blames rackd {x['rackd_blames']:3d} thru {x['thru_blames']:3d}"
                      f" | overruns {x['overruns']:3d} p99 {x['p99_us']:6.0f} us max {x['max_us']:8.1f} us"
                      f" | pinned {x['pinned']:2d} moved {x['moved']} (lost cycles {x['loss_moves']}) | load {x['load']:.2f} | {steal}", flush=True)
    finally:
        jack.stop()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(runs, f, indent=1)
    print(f"\n{a.runs} runs per variant of {a.seconds:g} s beside one jack_thru; median [min..max]")
    for v in variants:
        rs = [x for x in runs if x["variant"] == v]
        bad = sum(1 for x in rs if x["rackd_blames"] > BAD_BLAMES)
        print(f"{v:>5}: blames rackd {summary([x['rackd_blames'] for x in rs])}, "
              f"jack_thru {summary([x['thru_blames'] for x in rs])}; overruns {summary([x['overruns'] for x in rs])};"
              f" cycle p99 {summary([x['p99_us'] for x in rs])} us, max {summary([x['max_us'] for x in rs])} us;"
              f" bad runs (> {BAD_BLAMES} blames) {bad}/{len(rs)};"
              f" runs with a move {sum(1 for x in rs if x['moved'])}, after lost cycles {sum(1 for x in rs if x['loss_moves'])}")


if __name__ == "__main__":
    main()
