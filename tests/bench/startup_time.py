#!/usr/bin/env python3
"""How long mendd takes to start: exec -> READY=1 on its NOTIFY_SOCKET (sensors attached, policies
loaded, control socket listening), over N runs, against a baseline in the same run: the same
binary validating the same configuration (`mendd --check-config`, exec -> exit), i.e. process
start plus configuration parsing without the kernel and systemd side. Then SIGTERM -> exit.

    sudo tests/bench/startup_time.py BUILD_DIR [RUNS]

Needs root (BPF). Uses --bus none: the system manager is not reachable on every machine this runs
on; connecting to it is one more D-Bus round trip.
"""
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

build = sys.argv[1] if len(sys.argv) > 1 else "build"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
mendd = os.path.join(build, "mendd")
policies = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "policies")
if os.geteuid() != 0:
    sys.exit("startup_time.py: needs root (mendd loads BPF programs)")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


ready, stop, check = [], [], []
with tempfile.TemporaryDirectory(prefix="mend-startup.") as tmp:
    notify = os.path.join(tmp, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify)
    sock.settimeout(30)
    for i in range(runs):
        # Baseline: the same binary and configuration, no sensors.
        t0 = time.monotonic()
        subprocess.run([mendd, "--check-config", "--policies", policies], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        check.append(time.monotonic() - t0)

        state = os.path.join(tmp, f"state{i}")
        env = dict(os.environ, NOTIFY_SOCKET=notify)
        t0 = time.monotonic()
        p = subprocess.Popen([mendd, "--bus", "none", "--policies", policies, "--state-dir", state,
                              "--control-socket", os.path.join(tmp, f"c{i}.sock")],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:
            msg = sock.recv(4096).decode()
            if "READY=1" in msg:
                ready.append(time.monotonic() - t0)
                break
        t1 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
        stop.append(time.monotonic() - t1)


def row(name, xs):
    ms = [x * 1000 for x in xs]
    return f"| {name} | {runs} | {statistics.median(ms):.0f} ms | {pct(ms, 90):.0f} ms | {max(ms):.0f} ms |"


print("| phase | runs | median | p90 | max |")
print("|---|---|---|---|---|")
print(row("baseline: `mendd --check-config` (exec -> exit)", check))
print(row("`mendd` exec -> READY=1 (5 sensors attached, 6 policies)", ready))
print(row("`mendd` SIGTERM -> exit", stop))
