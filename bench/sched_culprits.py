#!/usr/bin/env python3
"""From `perf script` of a `perf sched record`: every wake-up of a real-time
thread (prio < 100) of jackd/jack_thru/rackd that waited more than LIMIT ms
for its CPU, and the task that held that CPU until it switched in."""
import re, sys, collections
limit = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
woken = {}
rows = []
pat_wake = re.compile(r"\[(\d+)\]\s+([\d.]+):\s+sched:sched_waking: comm=(.*) pid=(\d+) prio=(\d+) target_cpu=(\d+)")
pat_sw = re.compile(r"\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch: prev_comm=(.*) prev_pid=(\d+) prev_prio=(\d+) prev_state=(\S+) ==> next_comm=(.*) next_pid=(\d+) next_prio=(\d+)")
for line in open(sys.argv[1], errors="replace"):
    m = pat_wake.search(line)
    if m:
        cpu, t, comm, pid, prio, tcpu = m.groups()
        if int(prio) < 100 and pid not in woken:
            woken[pid] = (float(t), comm)
        continue
    m = pat_sw.search(line)
    if m:
        cpu, t, pc, pp, ppr, pst, nc, np, npr = m.groups()
        if np in woken:
            t0, comm = woken.pop(np)
            d = (float(t) - t0) * 1e3
            if d > limit and re.match(r"(jackd|jack_thru|rackd)", nc):
                rows.append((d, float(t), int(cpu), nc, np, int(npr), pc, int(ppr)))
by = collections.Counter()
for d, t, cpu, nc, np, npr, pc, ppr in rows:
    by[(pc if ppr >= 100 else pc + " (RT)")] += 1
print(f"{len(rows)} wake-ups of audio RT threads waited > {limit} ms; max {max([r[0] for r in rows] or [0]):.1f} ms")
print("held by:", ", ".join(f"{k} {v}" for k, v in by.most_common(8)))
for r in sorted(rows, reverse=True)[:6]:
    print(f"  {r[0]:7.2f} ms at {r[1]:.4f} cpu{r[2]} {r[3]}[{r[4]}] prio {r[5]} after {r[6]} prio {r[7]}")
