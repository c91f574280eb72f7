#!/usr/bin/env python3
"""Live graph changes: how long each takes, beside JACK2's jack_connect.

One `jackd -d dummy -r 48000 -p 128`; rackd plays a tone patch on it (JACK
host API) with OSC on; a jack_thru client sits on the same jackd. Measured,
each --reps times (p50, p99, spread):

* add: /rackd/module/add of a passthrough fed by the tone, from the request
  to /rackd/done (its first block is out of the module and in the graph);
* connect: /rackd/connect of that passthrough to the output, request to
  /rackd/done (the cycle that first mixes it, fading in), also in cycles;
* load: /rackd/patch/load of a 10-module patch that changes 3 of them (a new
  process each, crossfaded with the old), request to /rackd/done (after the
  fade and the old processes' exit);
* swap: the audio thread's adoption of each new schedule, in microseconds
  (from rackd's exit JSON, every swap of the run);
* baseline: `jack_connect thru:output_1 system:playback_1` (and disconnect) on
  the same jackd, request until it returns (the connection is made), beside
  `rackctl connect` / `rackctl disconnect` timed the same way (process start
  included on both sides).

Requests go over raw UDP from this script (no liblo needed).

    bench/graph_edit.py [--bin build/release/bin] [--reps 30]
"""
import argparse
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from overhead import Jack  # noqa: E402  (jackd -d dummy, stopped by its pid)

PERIOD_MS = 128 / 48000 * 1e3


def osc_string(s):
    b = s.encode() + b"\0"
    return b + b"\0" * ((4 - len(b) % 4) % 4)


def osc_message(address, *args):
    tags, data = ",", b""
    for a in args:
        if isinstance(a, str):
            tags += "s"
            data += osc_string(a)
        elif isinstance(a, int):
            tags += "i"
            data += struct.pack(">i", a)
        else:
            tags += "f"
            data += struct.pack(">f", a)
    return osc_string(address) + osc_string(tags) + data


def osc_first_string(packet):
    """Address and the first string argument of a reply."""
    end = packet.index(b"\0")
    address = packet[:end].decode()
    pos = (end + 4) & ~3
    tend = packet.index(b"\0", pos)
    tags = packet[pos:tend].decode()
    pos = (tend + 4) & ~3
    first = ""
    if len(tags) > 1 and tags[1] == "s":
        send = packet.index(b"\0", pos)
        first = packet[pos:send].decode()
    return address, first


class Rackd:
    def __init__(self, bindir, patch, env, port):
        self.port = port
        self.proc = subprocess.Popen([os.path.join(bindir, "rackd"), "run", patch, "--osc-port", str(port)],
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(20)
        for _ in range(200):
            try:
                self.request("/rackd/graph", timeout=0.1, want="/rackd/graph.reply")
                return
            except (socket.timeout, ConnectionRefusedError, OSError):
                time.sleep(0.05)
        raise RuntimeError("rackd did not answer: " + (self.proc.stderr.read() if self.proc.poll() else ""))

    def request(self, address, *args, timeout=20, want="/rackd/done"):
        """Seconds from sending to the answer; raises on /rackd/error."""
        self.sock.settimeout(timeout)
        t0 = time.perf_counter()
        self.sock.sendto(osc_message(address, *args), ("127.0.0.1", self.port))
        while True:
            data, _ = self.sock.recvfrom(65536)
            t1 = time.perf_counter()
            addr, first = osc_first_string(data)
            if addr == "/rackd/error":
                raise RuntimeError(f"{address}: {data!r}")
            if addr == want:
                return t1 - t0

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=30)
        return json.loads(out.strip().splitlines()[-1]), err


def tone_patch(d):
    p = os.path.join(d, "tone.toml")
    with open(p, "w") as f:
        f.write('[server]\nrate = 48000\nblock = 128\n\n[[module]]\nname = "keep"\ntype = "capture"\n'
                'source = "tone"\n\n[[module]]\nname = "src"\ntype = "capture"\nsource = "noise"\n'
                'gain_db = -30.0\n\n[output]\nfrom = ["keep", "src"]\n')
    return p


def ten_module_patch(d, name, variant):
    """keep (untouched) + src + 9 modules in a chain: 10 edited modules; variant B turns 3 of them into
    eq (a new process each)."""
    lines = ['[server]\nrate = 48000\nblock = 128\n',
             '[[module]]\nname = "keep"\ntype = "capture"\nsource = "tone"\n',
             '[[module]]\nname = "src"\ntype = "capture"\nsource = "noise"\ngain_db = -30.0\n']
    prev = "src"
    for k in range(1, 10):
        kind = "eq" if variant == "B" and k in (2, 5, 8) else "passthrough"
        lines.append(f'[[module]]\nname = "m{k}"\ntype = "{kind}"\ninput = "{prev}"\n')
        prev = f"m{k}"
    lines.append(f'[output]\nfrom = ["keep", "{prev}"]\n')
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write("\n".join(lines))
    return p


def stats(xs, scale=1e3):
    v = sorted(x * scale for x in xs)
    p = lambda q: v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]
    return {"n": len(v), "p50": p(0.5), "p99": p(0.99), "min": v[0], "max": v[-1],
            "stdev": statistics.pstdev(v) if len(v) > 1 else 0.0}


def fmt(name, s, unit="ms", extra=""):
    print(f"  {name:<44} p50 {s['p50']:8.2f} {unit}  p99 {s['p99']:8.2f} {unit}  "
          f"(min {s['min']:.2f}, max {s['max']:.2f}, sd {s['stdev']:.2f}, n {s['n']}){extra}")


def timed_run(argv, env):
    t0 = time.perf_counter()
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    t1 = time.perf_counter()
    if r.returncode != 0:
        raise RuntimeError(f"{argv}: {r.stderr}")
    return t1 - t0


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "build", "release", "bin"))
    ap.add_argument("--reps", type=int, default=30)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="rackd-graph-bench-")
    jack = Jack(f"bench-graph-{os.getpid()}")
    thru = None
    rackd = None
    try:
        port = free_port()
        env = dict(jack.env, RACKD_OSC_PORT=str(port))
        thru = subprocess.Popen(["jack_thru", "thru"], env=jack.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        rackd = Rackd(a.bin, tone_patch(d), env, port)
        rackctl = os.path.join(a.bin, "rackctl")

        def keep_late():
            r = subprocess.run([rackctl, "status", "--json"], env=env, capture_output=True, text=True, timeout=10)
            try:
                return json.loads(r.stdout)["modules"]["keep"]["late"]
            except (ValueError, KeyError, TypeError):
                return -1

        late = {"start": keep_late()}
        adds, connects, disconnects = [], [], []
        for k in range(a.reps):
            name = f"p{k}"
            adds.append(rackd.request("/rackd/module/add", name, "passthrough", 'input = "src"\ngain_db = -20.0'))
            time.sleep(0.02)  # the add's own tail (its final schedule) is not the connect's
            connects.append(rackd.request("/rackd/connect", name, "output"))
            time.sleep(0.08)  # the fade
            disconnects.append(rackd.request("/rackd/disconnect", name, "output"))
            rackd.request("/rackd/module/remove", name)
        late["add/connect/disconnect/remove"] = keep_late()
        # Same footing as jack_connect: a process per request.
        rackd.request("/rackd/module/add", "q", "passthrough", 'input = "src"\ngain_db = -20.0')
        rackctl_times, jack_times = [], []
        # jack_thru connects itself to the playback ports when it starts.
        subprocess.run(["jack_disconnect", "thru:output_1", "system:playback_1"], env=jack.env, capture_output=True)
        for _ in range(a.reps):
            rackctl_times.append(timed_run([rackctl, "connect", "q", "output"], env))
            time.sleep(0.06)
            timed_run([rackctl, "disconnect", "q", "output"], env)
            time.sleep(0.06)
            jack_times.append(timed_run(["jack_connect", "thru:output_1", "system:playback_1"], jack.env))
            timed_run(["jack_disconnect", "thru:output_1", "system:playback_1"], jack.env)
        rackd.request("/rackd/module/remove", "q")
        late["rackctl and jack_connect"] = keep_late()
        pa = ten_module_patch(d, "ten-a.toml", "A")
        pb = ten_module_patch(d, "ten-b.toml", "B")
        rackd.request("/rackd/patch/load", pa)
        loads = []
        for k in range(max(4, a.reps // 2)):
            loads.append(rackd.request("/rackd/patch/load", pb if k % 2 == 0 else pa))
        late["loads"] = keep_late()
        summary, err = rackd.stop()
        rackd = None
    finally:
        if rackd:
            rackd.proc.kill()
        if thru:
            thru.terminate()
            thru.wait()
        jack_log = jack.stop()
    print(f"live graph changes on jackd -d dummy -r 48000 -p 128 ({PERIOD_MS:.2f} ms cycles), {a.reps} reps")
    s_add, s_con = stats(adds), stats(connects)
    fmt("add passthrough: request -> first block", s_add)
    fmt("connect to output: request -> in effect", s_con,
        extra=f"  = {s_con['p50'] / PERIOD_MS:.2f} / {s_con['p99'] / PERIOD_MS:.2f} cycles")
    fmt("disconnect: request -> faded out", stats(disconnects))
    fmt("load 10 modules, 3 replaced: request -> done", stats(loads))
    sw = summary.get("swap_us", {})
    print(f"  {'schedule swap on the audio thread':<44} p50 {sw.get('p50', 0):8.2f} us  p99 {sw.get('p99', 0):8.2f} us"
          f"  (max {sw.get('max', 0):.2f}, n {summary.get('graph_swaps')})")
    s_rc, s_jc = stats(rackctl_times), stats(jack_times)
    fmt("rackctl connect (a process per request)", s_rc)
    fmt("baseline: jack_connect (a process per request)", s_jc)
    print(f"  ratio rackctl connect / jack_connect: p50 {s_rc['p50'] / s_jc['p50']:.2f}, "
          f"p99 {s_rc['p99'] / s_jc['p99']:.2f}")
    keep = summary['modules']['keep']
    print(f"  rackd: xruns {summary.get('xruns')}; keep (the branch no edit touched): late {keep['late']}, "
          f"replaced {keep['replaced']}; src (fed the edits): late {summary['modules']['src']['late']}")
    print(f"  late blocks of keep (cumulative) after each phase: {late}")
    blamed = jack_log.count("was not finished")
    print(f"  jackd log: {blamed} 'not finished' lines")


if __name__ == "__main__":
    main()
