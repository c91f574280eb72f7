#!/usr/bin/env python3
"""A private, headless PipeWire session for benchmarks, and the process
accounting they use (bench/desktop_cpu.py). Python 3 stdlib only.

Session(root).start() runs, under root/: a D-Bus session bus (WirePlumber
exits without one), pipewire, wireplumber, pipewire-pulse, all with a private
XDG_RUNTIME_DIR and HOME (WirePlumber's saved defaults stay in there), then
loads a stereo float null sink `hp` (the headphones), makes it the default
and forces the quantum. stop_all() stops every process it started, by pid, in
reverse order; nothing else is signalled.
"""
import os
import signal
import subprocess
import time

def descendants(pid):
    """pid's children, grandchildren, ... from /proc/<pid>/task/*/children."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except FileNotFoundError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    kids = [int(x) for x in f.read().split()]
            except (FileNotFoundError, ProcessLookupError):
                continue
            out += kids
            todo += kids
    return out


def cpu_ns(pids):
    """CPU time of every thread of `pids` (/proc/<pid>/task/*/schedstat), ns."""
    return sum(cpu_by_pid(pids).values())


def cpu_by_pid(pids):
    out = {}
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            continue
        out[pid] = 0
        for t in tasks:
            try:
                with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                    out[pid] += int(f.read().split()[0])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                pass
    return out


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except FileNotFoundError:
        return str(pid)


def stop(proc, sig=signal.SIGTERM, timeout=10):
    """Stop one process we started, by its pid; (stdout, stderr) if piped."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def wait_until(what, test, timeout=20, step=0.1):
    end = time.time() + timeout
    while time.time() < end:
        if test():
            return
        time.sleep(step)
    raise RuntimeError(f"timed out waiting for {what}")


class Session:
    """A private PipeWire session: dbus-daemon, pipewire, wireplumber,
    pipewire-pulse and a null sink `hp`, all under `root`, stopped by pid."""

    def __init__(self, root):
        self.root = root
        run = os.path.join(root, "run")
        home = os.path.join(root, "home")
        for d in (run, home):
            os.makedirs(d, mode=0o700)
        env = {k: v for k, v in os.environ.items()
               if k not in ("PIPEWIRE_REMOTE", "PULSE_SERVER", "PIPEWIRE_RUNTIME_DIR", "DISPLAY",
                            "WAYLAND_DISPLAY", "JACK_DEFAULT_SERVER")}
        env.update(XDG_RUNTIME_DIR=run, HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
                   XDG_STATE_HOME=os.path.join(home, ".local/state"), XDG_DATA_HOME=os.path.join(home, ".local/share"),
                   DBUS_SESSION_BUS_ADDRESS=f"unix:path={run}/bus", RACKD_OSC_PORT="-1")
        self.env, self.run_dir, self.procs = env, run, []

    def spawn(self, name, cmd, **kw):
        log = open(os.path.join(self.root, name + ".log"), "w")
        kw.setdefault("stdout", log)
        kw.setdefault("stderr", log)
        p = subprocess.Popen(cmd, env=kw.pop("env", self.env), **kw)
        self.procs.append(p)
        return p

    def tool(self, *cmd, check=True):
        r = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=20)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip() or r.stdout.strip()}")
        return r.stdout

    def start(self, rate=48000, quantum=128):
        self.spawn("dbus", ["dbus-daemon", "--session", f"--address=unix:path={self.run_dir}/bus", "--nofork",
                            "--nopidfile"])
        wait_until("dbus", lambda: os.path.exists(f"{self.run_dir}/bus"))
        self.daemon = self.spawn("pipewire", ["pipewire"])
        wait_until("pipewire", lambda: os.path.exists(f"{self.run_dir}/pipewire-0"))
        self.spawn("wireplumber", ["wireplumber"])
        self.pulse = self.spawn("pipewire-pulse", ["pipewire-pulse"])
        wait_until("pipewire-pulse", lambda: self.tool("pactl", "info", check=False))
        self.tool("pactl", "load-module", "module-null-sink", "sink_name=hp", "channels=2",
                  "channel_map=front-left,front-right", f"rate={rate}", "format=float32le",
                  "sink_properties=device.description=headphones")
        wait_until("hp sink", lambda: "hp" in self.tool("pactl", "list", "short", "sinks").split())
        self.tool("pactl", "set-default-sink", "hp")
        self.tool("pw-metadata", "-n", "settings", "0", "clock.force-quantum", str(quantum))

    def links(self):
        """Set of (output node, input node) pairs from `pw-link -l`."""
        pairs, cur = set(), None
        for line in self.tool("pw-link", "-l", check=False).splitlines():
            if not line.startswith(" "):
                cur = line.rsplit(":", 1)[0]
            elif "|->" in line and cur:
                pairs.add((cur, line.split("|->", 1)[1].strip().rsplit(":", 1)[0]))
        return pairs

    def stop_all(self):
        for p in reversed(self.procs):
            stop(p, timeout=5)
        self.procs = []
