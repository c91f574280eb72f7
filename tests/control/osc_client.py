#!/usr/bin/python3
# A real OSC client (python3-liblo, Debian package python3-liblo) talking to a
# rackd control socket: status, set/get round trip, errors, timed bundles,
# notifications. Expects the test patch of tests/control/fixture.hpp (modules
# "src" capture and "p" passthrough). Usage: osc_client.py PORT
# Exit 0 and "ok" on success; exit 1 with the first failed check otherwise.
import sys
import time

import liblo

port = int(sys.argv[1])
target = liblo.Address("127.0.0.1", port, liblo.UDP)
srv = liblo.Server()
got = []
srv.add_method(None, None, lambda path, args, types, src: got.append((path, args, types)))


def fail(why):
    print("FAIL: " + why)
    sys.exit(1)


def wait_for(want, timeout=2.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for g in got:
            if g[0] == want:
                return g
        srv.recv(20)
    fail("no %s (got %r)" % (want, got))


def request(path, *args, want):
    got.clear()
    srv.send(target, path, *args)
    return wait_for(want)


def get(addr):
    return request(addr + "/get", want=addr)


# status
r = request("/rackd/status", want="/rackd/status.reply")
if r[1][0] != 48000 or r[1][1] != 128 or r[1][5] != 2:
    fail("status header %r" % (r[1][:6],))
if r[1][6] != "src" or r[1][16] != "p" or r[1][8] != "running":
    fail("status modules %r" % (r[1],))

# set + sync + get
got.clear()
srv.send(target, "/p/gain_db", -4.5)
srv.send(target, "/rackd/sync", 7)
s = wait_for("/rackd/synced")
if any(g[0] == "/rackd/error" for g in got):
    fail("set refused: %r" % got)
if s[1] != [7]:
    fail("sync id %r" % (s[1],))
if abs(get("/p/gain_db")[1][0] + 4.5) > 1e-6:
    fail("get after set")

srv.send(target, "/p/gain_db", ("i", 3))
if get("/p/gain_db")[1][0] != 3.0:
    fail("int to float param")

srv.send(target, "/p/bypass", True)
b = get("/p/bypass")
if b[2] != "T":
    fail("bool get types %r" % (b[2],))

# errors change nothing
e = request("/p/gain_db", 99.0, want="/rackd/error")
if e[1][0] != "/p/gain_db" or "out of range" not in e[1][1]:
    fail("range error %r" % (e[1],))
e = request("/nope/gain_db", 1.0, want="/rackd/error")
if "unknown module" not in e[1][1]:
    fail("unknown module error %r" % (e[1],))
e = request("/p/gain_db", "loud", want="/rackd/error")
if get("/p/gain_db")[1][0] != 3.0:
    fail("an error changed the value")

# a bundle stamped 0.4 s ahead is held, then applied
srv.send(target, liblo.Bundle(liblo.time() + 0.4, liblo.Message("/p/gain_db", -10.0)))
if get("/p/gain_db")[1][0] != 3.0:
    fail("future bundle applied early")
time.sleep(0.6)
if get("/p/gain_db")[1][0] != -10.0:
    fail("future bundle not applied")
srv.send(target, liblo.Bundle(liblo.Message("/p/gain_db", -11.0), liblo.Message("/p/bypass", False)))
if get("/p/gain_db")[1][0] != -11.0 or get("/p/bypass")[2] != "F":
    fail("immediate bundle")

# notifications
request("/rackd/notify", 1, want="/rackd/notify.reply")
got.clear()
wait_for("/rackd/meters", 1.0)
other = liblo.Server()
other.send(target, "/p/gain_db", -1.0)
deadline = time.time() + 1.0
while not any(g[0] == "/p/gain_db" and g[1] == [-1.0] for g in got):
    if time.time() > deadline:
        fail("no parameter notification (got %r)" % got)
    srv.recv(20)
request("/rackd/notify", 0, want="/rackd/notify.reply")
print("ok")
