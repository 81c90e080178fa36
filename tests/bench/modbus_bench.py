#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""modbus_bench: how many points per second the Modbus input (plugins/modbus) polls
from a Modbus TCP server on loopback, with request coalescing on and off, and how many
requests one poll of a realistic 50-point device takes. Not a test (ctest does not run
it): it measures this machine and prints what it measured; docs/BENCHMARKS.md has the
figures and the device.

    /usr/bin/python3 tests/bench/modbus_bench.py --build build [--repeat 3]
        [--duration 5] [--servers pymodbus,libmodbus] [--modes gap0,gap16,single]
        [--pin same,split] [--copies 4]

The device ("the meter", METER below) is an energy meter's map of 50 points: 30
float32 measurements in CDAB order in three blocks of input registers with reserved
registers between them, 10 uint32 energy counters (CDAB, scaled to kWh) in two blocks
of holding registers, a status register read whole and as 6 bits, two identification
registers after a reserved one, and one discrete input. Every register in the gaps
exists on the server (reads as 0), as on most meters, so that gaps may be bridged.

Modes (each with --copies slaves that are the same meter, unit 1, polled with
interval = 1ms: the bus is never idle, so the rate is the bus's capacity):

  gap0    coalescing on, max_gap = 0 (the default): adjacent points share a request
  gap16   coalescing on, max_gap = 16: reserved registers are read too
  single  coalesce = false: one request per point

Servers:

  pymodbus   tests/integration/modbus_server.py (Debian's pymodbus 3.0, Python, what
             the integration tests use), with --log none
  libmodbus  build/tests/bench/modbus_bench_server (C): answers in microseconds, so
             the plugin's own cost shows

Placement (--pin, with taskset): Modbus is one request at a time, so the rate is one
over the round trip, and on loopback the round trip is mostly the two processes waking
each other. On one CPU (`same`) that is a switch between them; on two (`split`:
coapgated on CPU 0, the server on CPU 1) it is a wake-up across CPUs, which costs far
more in a virtual machine; unpinned (`none`) each run lands somewhere in between,
differently every time.

For each run, a fresh server and a fresh `coapgated --test` (readings printed as JSON
lines on stdout, read and counted by this script); after a 2 s warm-up, a window of
--duration seconds: points/s = readings in the window x 50 / window; requests/s from
the plan (requests per poll x polls); CPU seconds of coapgated (all threads) and of
the server per second of the window, from /proc/PID/stat, and coapgated's per poll. The requests per poll
are counted at the server (its total over the readings printed) and checked against
the plan the plugin logs. --repeat K runs every combination K times, interleaved, and
prints the medians.
"""

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parents[2]
PYMODBUS_SERVER = SOURCE_DIR / "tests" / "integration" / "modbus_server.py"
CLK_TCK = os.sysconf("SC_CLK_TCK")
WARMUP = 2.0


def f32_cdab_regs(i):
    return [0x4000 + i, 0x1000 + i]


def meter():
    """(points, spec of the server's unit 1): the 50-point energy meter."""
    points, ir, hr = [], {}, {}
    names = ["u1", "u2", "u3", "u12", "u23", "u31", "i1", "i2", "i3", "p1", "p2", "p3",
             "q1", "q2", "q3", "s1", "s2", "s3",         # input 0-35
             "pf1", "pf2", "pf3", "p", "q", "s",         # input 42-53
             "f", "thd_u1", "thd_u2", "thd_u3", "in", "t"]   # input 70-81
    addresses = list(range(0, 36, 2)) + list(range(42, 54, 2)) + list(range(70, 82, 2))
    for name, a in zip(names, addresses):
        points.append(dict(name=name, kind="input", address=a, type="float32",
                           order="CDAB"))
    for a in range(0, 84):
        ir[str(a)] = [0x4000 + a]
    counters = ["imp", "exp", "imp1", "imp2", "imp3", "exp1", "exp2", "exp3",  # 256-271
                "hours", "starts"]                                            # 280-283
    for name, a in zip(counters, list(range(256, 272, 2)) + [280, 282]):
        points.append(dict(name=name, kind="holding", address=a, type="uint32",
                           order="CDAB", scale=0.001))
    points.append(dict(name="status", kind="holding", address=512, type="uint16"))
    for b, name in enumerate(["run", "alarm", "tamper", "rev1", "rev2", "rev3"]):
        points.append(dict(name=name, kind="holding", address=512, type="bit", bit=b))
    points.append(dict(name="model", kind="holding", address=514, type="uint16"))
    points.append(dict(name="firmware", kind="holding", address=515, type="uint16"))
    points.append(dict(name="door", kind="discrete", address=0, type="bool"))
    for a in range(256, 290):
        hr[str(a)] = [a]
    for a in range(512, 520):
        hr[str(a)] = [0x0005 if a == 512 else a]
    assert len(points) == 50
    return points, {"units": {"1": {"ir": ir, "hr": hr, "di": {"0": [1]}}}}


MODES = {
    "gap0": dict(coalesce=True, max_gap=0),
    "gap16": dict(coalesce=True, max_gap=16),
    "single": dict(coalesce=False, max_gap=0),
}


def lc(v):
    """A Python value as libconfig text."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dict):
        return "{ " + " ".join(f"{k} = {lc(x)};" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "( " + ", ".join(lc(x) for x in v) + " )"
    raise TypeError(v)


def sh(args):
    return subprocess.run(args, capture_output=True, text=True).stdout


def machine():
    model = ""
    for line in sh(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    return {
        "cpu": f"{model}, {os.cpu_count()} CPUs (lscpu)",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "libmodbus": sh(["pkg-config", "--modversion", "libmodbus"]).strip(),
        "pymodbus": sh(["/usr/bin/python3", "-c",
                        "import pymodbus; print(pymodbus.__version__)"]).strip(),
    }


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Lines:
    """A process's stdout lines with their arrival times, read by a thread."""

    def __init__(self, stream):
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream):
        for line in stream:
            t = time.monotonic()
            with self.cond:
                self.lines.append((t, line))
                self.cond.notify_all()

    def wait(self, predicate, timeout=15):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, line in self.lines:
                    if predicate(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("timed out; got: " + "".join(l for _, l in self.lines))
                self.cond.wait(left)


PLACEMENT = {"same": ("0", "0"), "split": ("0", "1"), "none": None}


def pinned(args, cpu):
    return ["taskset", "-c", cpu, *args] if cpu else list(args)


def start_server(kind, build, work, spec, cpu):
    if kind == "libmodbus":
        proc = subprocess.Popen(pinned([str(build / "tests" / "bench" /
                                             "modbus_bench_server")], cpu),
                                stdout=subprocess.PIPE, text=True)
        out = Lines(proc.stdout)
        port = int(out.wait(lambda l: l.startswith("ready")).split()[1])
    else:
        path = work / "spec.json"
        path.write_text(json.dumps(spec))
        proc = subprocess.Popen(pinned(["/usr/bin/python3", str(PYMODBUS_SERVER), "--spec",
                                        str(path), "--log", "none"], cpu),
                                stdout=subprocess.PIPE, text=True)
        out = Lines(proc.stdout)
        port = json.loads(out.wait(lambda l: '"ready"' in l))["ready"]
    return proc, out, port


def server_requests(kind, proc, out):
    proc.terminate()
    proc.wait(timeout=15)
    if kind == "libmodbus":
        return int(out.wait(lambda l: l.startswith("requests")).split()[1])
    return json.loads(out.wait(lambda l: '"requests"' in l))["requests"]


def run_once(build, server, mode, pin, duration, points, spec, copies):
    cpus = PLACEMENT[pin] or (None, None)
    with tempfile.TemporaryDirectory(prefix="modbus-bench.", dir="/var/tmp") as tmp:
        work = Path(tmp)
        sproc, sout, port = start_server(server, build, work, spec, cpus[1])
        try:
            # Copies of the meter (one unit, polled as several slaves) keep the bus
            # busy: one slave alone would wait for its 1 ms interval between polls.
            inst = dict(name="meter", plugin="modbus", host="127.0.0.1", port=port,
                        coalesce=MODES[mode]["coalesce"], summary_interval="0",
                        slaves=[dict(unit=1, name=f"meter{k}", interval="1ms",
                                     max_gap=MODES[mode]["max_gap"], points=points)
                                for k in range(copies)])
            conf = work / "coapgate.conf"
            conf.write_text(f"daemon: {{ state_dir = {lc(str(work / 'state'))}; "
                            f"log_target = \"stderr\"; }};\n"
                            f"uplink: {{ enabled = false; }};\ninputs = ( {lc(inst)} );\n")
            gw = subprocess.Popen(pinned([str(build / "daemon" / "coapgated"), "-c",
                                          str(conf), "-P", str(build / "plugins"), "--test"],
                                         cpus[0]),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            out = Lines(gw.stdout)
            err = Lines(gw.stderr)
            plan = err.wait(lambda l: "points in" in l)
            planned = int(plan.split(" points in ")[1].split()[0])
            out.wait(lambda l: True)
            time.sleep(WARMUP)
            t0, c0, s0 = time.monotonic(), cpu_seconds(gw.pid), cpu_seconds(sproc.pid)
            time.sleep(duration)
            t1, c1, s1 = time.monotonic(), cpu_seconds(gw.pid), cpu_seconds(sproc.pid)
            gw.terminate()
            gw.wait(timeout=15)
            with out.cond:
                window = [l for t, l in out.lines if t0 <= t < t1]
                total = len(out.lines)
            fields = len(json.loads(window[-1])["fields"])
            assert fields == 50, fields
            requests = server_requests(server, sproc, sout)
        finally:
            if sproc.poll() is None:
                sproc.kill()
                sproc.wait()
    span = t1 - t0
    return {
        "points_per_s": len(window) * 50 / span,
        "polls_per_s": len(window) / span,
        "requests_per_poll": requests / total if total else 0,
        "planned": planned,
        "requests_per_s": len(window) * planned / span,
        "gateway_cpu": (c1 - c0) / span,
        "gateway_cpu_per_poll_us": 1e6 * (c1 - c0) / len(window),
        "server_cpu": (s1 - s0) / span,
    }


def main():
    parser = argparse.ArgumentParser(description="Modbus input benchmark")
    parser.add_argument("--build", default="build")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--servers", default="pymodbus,libmodbus")
    parser.add_argument("--modes", default="gap0,gap16,single")
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--pin", default="same,split")
    args = parser.parse_args()
    build = Path(args.build).resolve()
    points, spec = meter()

    print("command: " + " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv))
    for k, v in machine().items():
        print(f"{k}: {v}")
    print("load average before: %.2f %.2f %.2f" % os.getloadavg())
    results = {}
    combos = [(pin, server, mode) for pin in args.pin.split(",")
              for server in args.servers.split(",") for mode in args.modes.split(",")]
    for rep in range(args.repeat):
        for pin, server, mode in combos:
            r = run_once(build, server, mode, pin, args.duration, points, spec, args.copies)
            results.setdefault((pin, server, mode), []).append(r)
            print(f"run {rep + 1} {pin:5} {server:9} {mode:6}: "
                  f"{r['points_per_s']:9.0f} points/s, {r['polls_per_s']:7.1f} polls/s, "
                  f"{r['requests_per_poll']:5.2f} requests/poll (plan {r['planned']}), "
                  f"{r['requests_per_s']:7.0f} requests/s, coapgated CPU "
                  f"{100 * r['gateway_cpu']:5.1f} %, server CPU "
                  f"{100 * r['server_cpu']:5.1f} %  (load {os.getloadavg()[0]:.2f})",
                  flush=True)
    print("load average after: %.2f %.2f %.2f" % os.getloadavg())
    print()
    print(f"medians of {args.repeat} runs of {args.duration:.0f} s (min-max of points/s):")
    print("| CPUs | server | mode | requests per poll | points/s | polls/s | requests/s "
          "| coapgated CPU | coapgated CPU per poll | server CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (pin, server, mode), rs in results.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        lo = min(r["points_per_s"] for r in rs)
        hi = max(r["points_per_s"] for r in rs)
        print(f"| {pin} | {server} | {mode} | {med['planned']:.0f} | "
              f"{med['points_per_s']:,.0f} ({lo:,.0f}-{hi:,.0f}) | "
              f"{med['polls_per_s']:,.1f} | {med['requests_per_s']:,.0f} | "
              f"{100 * med['gateway_cpu']:.1f} % | {med['gateway_cpu_per_poll_us']:.0f} µs | "
              f"{100 * med['server_cpu']:.1f} % |")

if __name__ == "__main__":
    main()
