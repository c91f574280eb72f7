#!/usr/bin/env python3
"""Scale: how rackd's cost grows with the length of a module chain, and the
longest chain that runs a whole window without a single late block.

A chain of N `passthrough` processes (fed by the device input, as in
overhead.py) plays on a dummy JACK device at 48 kHz for --seconds per trial
(60 by default). Per trial: rackd's cycle time (device callback start to graph
done) p50/p99/max, CPU seconds per audio second of rackd and its modules, late
blocks summed over all modules, rackd's xruns and those the dummy driver
reported on its own. The sweep runs N = 1, 2, 4, ... up to --max (how the cost
grows); if some N ran clean, it then bisects between the longest clean one and
the next N that was not.

    python3 bench/scale.py [--period 64] [--seconds 60] [--max 32] [--bin build/release/bin]

A late block is one a module did not deliver by its deadline (its share of
75 % of the period); the scheduler replaced it, so the device kept playing.
On a machine that stalls real-time threads (see docs/realtime.md) even N = 1
can see one; the table shows how often, per N.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from overhead import Jack, chain_patch, children, cpu_seconds  # noqa: E402


def trial(bindir, n, period, seconds):
    jack = Jack(f"bench-scale-{os.getpid()}-{n}", period=period)
    try:
        with tempfile.TemporaryDirectory() as d:
            patch = os.path.join(d, "chain.toml")
            with open(patch, "w") as f:
                f.write(chain_patch(n).replace("[server]\n", f"[server]\nblock = {period}\n", 1))
            env = dict(jack.env, RACKD_OSC_PORT="-1")
            p = subprocess.Popen([os.path.join(bindir, "rackd"), "run", patch, "--block", str(period)], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(2)
            pids = [p.pid] + children(p.pid)
            c0, t0 = cpu_seconds(pids), time.time()
            time.sleep(seconds)
            c1, t1 = cpu_seconds(pids), time.time()
            p.send_signal(signal.SIGTERM)
            out, _ = p.communicate(timeout=60)
    finally:
        err = jack.stop()
    s = json.loads(out.strip().splitlines()[-1])
    late = sum(m.get("late", 0) for m in s["modules"].values())
    return {"n": n, "late": late, "cycles": s.get("cycles", 0), "xruns": s.get("xruns"),
            "driver_xruns": err.count("XRun"), "cycle": s.get("cycle_us", {}),
            "cpu": (c1 - c0) / (t1 - t0)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--period", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--max", type=int, default=32)
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build", "release", "bin"))
    a = ap.parse_args()
    period_us = a.period / 48000 * 1e6
    print(f"scale: chains of N passthrough modules, dummy JACK 48 kHz / {a.period} frames "
          f"({period_us:.0f} us), {a.seconds:.0f} s per trial")
    print(f"{'N':>3} | {'cycle p50 us':>12} {'p99 us':>8} {'max us':>8} | {'us/hop p50':>10} | {'cpu s/s':>8} | "
          f"{'late':>5} | xruns rackd/driver")
    results = {}

    def run(n):
        r = trial(a.bin, n, a.period, a.seconds)
        results[n] = r
        c = r["cycle"]
        print(f"{n:>3} | {c.get('p50', -1):12.0f} {c.get('p99', -1):8.0f} {c.get('max', -1):8.0f} | "
              f"{c.get('p50', 0) / n:10.1f} | {r['cpu']:8.3f} | {r['late']:>5} | {r['xruns']}/{r['driver_xruns']}",
              flush=True)
        return r["late"] == 0

    # The sweep shows how the cost grows; then, if some N ran clean, the
    # longest clean chain is bracketed between it and the next N that did not.
    n = 1
    while n <= a.max:
        run(n)
        n *= 2
    clean = [k for k, r in results.items() if r["late"] == 0]
    if clean:
        good = max(clean)
        late = [k for k in results if k > good]
        bad = min(late) if late else None
        while bad is not None and bad - good > 1:
            mid = (good + bad) // 2
            if run(mid):
                good = mid
            else:
                bad = mid
        print(f"largest N without a late block in {a.seconds:.0f} s at {a.period} frames: {good}"
              + (f" (N = {bad} had {results[bad]['late']})" if bad is not None else " (the most tried)"))
    else:
        worst = max(r["cycle"].get("max", 0) for r in results.values())
        print(f"largest N without a late block in {a.seconds:.0f} s at {a.period} frames: none; every N had "
              f"late blocks (N = 1: {results[1]['late']} of {results[1]['cycles']} cycles; the longest cycle "
              f"seen, {worst:.0f} us against a {period_us:.0f} us period, is a stall of the machine, see "
              f"docs/realtime.md)")


if __name__ == "__main__":
    sys.exit(main())
