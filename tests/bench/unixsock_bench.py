#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""unixsock_bench: readings per second into the durable queue through the Unix socket
input (plugins/unixsock), from one client and from eight, JSON lines and line protocol,
with and without ack mode. Not a test (ctest does not run it): it measures this machine
and prints what it measured; docs/BENCHMARKS.md has the figures.

    /usr/bin/python3 tests/bench/unixsock_bench.py --build build [--repeat 3]
        [--readings 5000000] [--formats json,influx] [--clients 1,8] [--modes noack,ack]
        [--perf] [--keep]
    /usr/bin/python3 tests/bench/unixsock_bench.py --build build --check-acks 300000

Each run starts its own coapgated (build/daemon/coapgated, plugins from build/plugins)
with an empty state directory on the disk (under /var/tmp), the daemon's defaults for
the queue, the uplink disabled, and two unixsock inputs:

  bench   the input under test: `format` json or influx, `ack` true or false
  marker  JSON lines, ack = true: used only without ack mode (below)

The client is build/tests/bench/unixsock_load (one thread and one connection per
client, readings formatted before the clock starts, written with 1 MiB write()s). The
clock runs from just before the first byte is sent until every reading is durable:

  ack mode   the client's `ok <n>` answers add up to the readings: each `ok` comes
             after the queue's fdatasync of those readings.
  no ack     each client shuts down its sending side after its last byte and waits for
             the input to close the connection, which it does once every line before
             the end of file is parsed and queued; then one more reading goes through
             `marker` and the clock stops at its `ok 1`. The queue gives seqs in the
             order readings are appended and makes them durable in that order (a
             commit writes and fdatasyncs every reading appended before it), and the
             marker was appended after the last reading of `bench`: its answer says
             they are all durable. Polling the queue directory could not say so (its
             files hold written, not yet flushed, frames), and STATUS= comes every
             second at most.

Measured for each run: readings/s; the daemon's CPU time (utime + stime from
/proc/PID/stat, all threads) per reading, and per thread (labelled by their I/O in
/proc/PID/task/TID/io: the input reads the socket, the committer writes the segments);
the client's CPU time per reading; VmHWM of the daemon at the end (peak RSS); then
`coapgatectl queue verify` on the queue, with the daemon still running and before it
stops (so before any commit at shutdown), must count exactly the readings sent (plus
the marker). A run that loses or duplicates readings is reported as a bug.

--repeat K repeats every combination K times, interleaved (each repetition runs every
combination once), and prints the medians. --perf also profiles the daemon during
extra one-client JSON runs (perf record; those runs are not in the table).

--check-acks READINGS measures nothing: it runs one one-client JSON ack-mode run with
coapgated under strace and replays its system calls, to check that every `ok` was
written after the fdatasync of the frames holding the readings it counts.
"""

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(SOURCE_DIR / "tests" / "integration"))
from notify_capture import NotifySocket  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGET_RATE = 1_000_000        # readings/s from one client with JSON lines
TARGET_HWM_KIB = 16 * 1024     # peak RSS under 16 MiB
# The figures for Fluent Bit 5.1 (in_unix_socket, filesystem storage), not ours.
FLUENT_BIT_RATE = 950_000
FLUENT_BIT_RSS = "95-135 MB"


def sh(args):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def build_source(build):
    """The source tree the build directory was configured from."""
    try:
        for line in (build / "CMakeCache.txt").read_text().splitlines():
            if line.startswith("CMAKE_HOME_DIRECTORY:INTERNAL="):
                return Path(line.split("=", 1)[1])
    except OSError:
        pass
    return SOURCE_DIR


def machine(state_parent, source):
    model = ""
    for line in sh(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    with open("/proc/meminfo") as f:
        mem = next(int(l.split()[1]) for l in f if l.startswith("MemTotal:")) // 1024
    fs = sh(["df", "--output=source,fstype", str(state_parent)]).splitlines()[-1:]
    commit = sh(["git", "-C", str(source), "rev-parse", "--short", "HEAD"]) or "?"
    dirty = sh(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"])
    return {
        "cpu": f"{model}, {os.cpu_count()} CPUs (lscpu)",
        "memory": f"{mem} MiB",
        "kernel": f"{platform.system()} {platform.release()} {platform.machine()}",
        "state dir": f"{state_parent} on {' '.join(fs[0].split()) if fs else '?'}",
        "tree": f"{commit}{' with uncommitted changes' if dirty else ''} ({source}, "
                f"the build's source)",
    }


def load():
    return "%.2f %.2f %.2f" % os.getloadavg()


def proc_stat_cpu(path):
    """utime + stime in seconds from a /proc/.../stat file; None if it is gone."""
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy():
    """CPU seconds the whole machine spent busy (every CPU, /proc/stat), and the time."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK, time.monotonic()


def wait_quiet(args):
    """Wait until the machine was almost idle for a whole second (other jobs share it);
    returns the seconds waited, or None when --quiet-wait ran out."""
    if args.quiet is None:
        return 0.0
    start = time.monotonic()
    last = machine_busy()
    while time.monotonic() - start < args.quiet_wait:
        time.sleep(1.0)
        now = machine_busy()
        if (now[0] - last[0]) / (now[1] - last[1]) < args.quiet:
            return time.monotonic() - start
        last = now
    return None


def threads(pid):
    """{tid: (cpu seconds, rchar, wchar)} for every thread of pid."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        cpu = proc_stat_cpu(f"/proc/{pid}/task/{tid}/stat")
        io = {}
        try:
            with open(f"/proc/{pid}/task/{tid}/io") as f:
                io = {k: int(v) for k, v in (l.split(": ") for l in f)}
        except OSError:
            pass
        if cpu is not None:
            out[int(tid)] = (cpu, io.get("rchar", 0), io.get("wchar", 0))
    return out


def vm_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmHWM:", "VmRSS:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def config_text(state_dir, path, marker_path, fmt, ack):
    return f"""daemon: {{ state_dir = "{state_dir}"; log_target = "stderr"; log_level = "info"; }};
uplink: {{ enabled = false; }};
inputs = (
  {{ name = "bench"; plugin = "unixsock"; topic = "bench"; path = "{path}";
    format = "{fmt}"; ack = {"true" if ack else "false"}; }},
  {{ name = "marker"; plugin = "unixsock"; topic = "marker"; path = "{marker_path}";
    format = "json"; ack = true; }}
);
"""


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def perf_start(args, pid, out):
    cmd = ["perf", "record", "-F", str(args.perf_freq), "-p", str(pid), "-o", str(out)]
    if args.perf_callgraph != "none":
        cmd += ["--call-graph", args.perf_callgraph]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)  # perf attaches to every thread before it samples
    return p


def perf_stop(proc, data, lines):
    """Three views of the profile: self time by function, time including callees for
    user-space functions (where the time goes, by stage), and time by thread."""
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    out = []
    views = [("self time by function (dso, symbol)", "--no-children", "dso,symbol"),
             ("including callees, user-space functions", "--children", "dso,symbol"),
             ("by thread", "--no-children", "pid")]
    for title, mode, sort in views:
        r = subprocess.run(["perf", "report", "--stdio", mode, "-g", "none",
                            "--percent-limit", "1", "-i", str(data), "--sort", sort],
                           capture_output=True, text=True, timeout=900)
        body = [l.rstrip() for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")]
        if mode == "--children":
            # Kernel frames, unnamed frames and the frames every sample of a thread has
            # say nothing about where the input's time goes.
            boring = ("[.] clone3 ", "[.] start_thread ", "[.] supervise ", "[.] 0x")
            body = [l for l in body if "[k]" not in l and not any(b in l for b in boring)]
        out.append(f"  {title}:")
        out += ["  " + l for l in body[:lines]]
        if mode == "--no-children" and sort == "dso,symbol":
            out += perf_callers(data, body)
    return "\n".join(out)


def perf_callers(data, self_lines, top=4, depth=5):
    """Where the top user-space functions by self time are called from: their call
    chains (innermost first, cut to depth frames), as shares of all samples."""
    names = []
    for line in self_lines:
        m = re.search(r"\[\.\] (\S+)", line)
        if m and not m.group(1).startswith("0x") and len(names) < top:
            names.append(m.group(1))
    if not names:
        return []
    r = subprocess.run(["perf", "report", "--stdio", "--no-children", "-i", str(data),
                        "--sort", "symbol", "--symbols", ",".join(names),
                        "-g", "folded,0,callee,function,percent"],
                       capture_output=True, text=True, timeout=900)
    out = [f"  callers of the top {len(names)} user-space functions by self time "
           "(innermost first):"]
    for line in r.stdout.splitlines():
        m = re.match(r"^\s*(\d+\.\d+%) (.+;.+)$", line)
        if m and float(m.group(1)[:-1]) >= 0.5:
            out.append(f"    {m.group(1):>7}  {' < '.join(m.group(2).split(';')[:depth])}")
    return out


def run_one(args, fmt, n_clients, ack, perf=False, readings=None, strace_to=None):
    """One daemon, one load, the figures. strace_to: run the daemon under strace,
    recording its writes and flushes there (check_acks())."""
    readings = readings or args.readings
    run_dir = Path(tempfile.mkdtemp(prefix="run.", dir=args.workdir))
    sock_dir = Path(tempfile.mkdtemp(prefix="uxb-", dir="/tmp"))  # sun_path is short
    path, marker_path = sock_dir / "bench.sock", sock_dir / "marker.sock"
    state = run_dir / "state"
    conf = run_dir / "coapgate.conf"
    conf.write_text(config_text(state, path, marker_path, fmt, ack))
    log_path = run_dir / "coapgated.log"
    daemon = load_proc = perf_proc = None
    notify = NotifySocket(sock_dir / "notify.sock")
    try:
        env = dict(os.environ, NOTIFY_SOCKET=notify.address)
        cmd = [args.coapgated, "-c", conf, "-P", args.plugin_dir]
        if strace_to:
            # Every thread's pwrite64 (queue frames), fdatasync, and write or sendto
            # (send(): answers), with 64 bytes of data in hex; the daemon is strace's
            # child.
            cmd = ["strace", "-f", "-tt", "-xx", "-s", "64", "-o", strace_to,
                   "-e", "trace=pwrite64,fdatasync,write,sendto", *cmd]
        with open(log_path, "w") as log:
            daemon = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                      env=env)
        notify.wait_for(lambda m: "READY=1" in m.lines, timeout=30)
        dpid = daemon.pid
        if strace_to:
            with open(f"/proc/{daemon.pid}/task/{daemon.pid}/children") as f:
                dpid = int(f.read().split()[0])
        wait_for(lambda: path.exists() and marker_path.exists(), 30, "the input sockets")
        waited = wait_quiet(args)
        cmd = [args.load, "-s", path, "-f", fmt, "-n", str(readings),
               "-c", str(n_clients), "-w", str(args.write_bytes), "-g"]
        cmd += ["-a"] if ack else ["-m", marker_path]
        load_before = load()
        load_proc = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        if load_proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"{args.load} did not start: status {load_proc.wait()}")
        if perf:
            perf_proc = perf_start(args, dpid, run_dir / "perf.data")
        cpu0 = proc_stat_cpu(f"/proc/{dpid}/stat")
        threads0 = threads(dpid)
        busy0 = machine_busy()
        load_proc.stdin.write("go\n")
        load_proc.stdin.flush()
        result = json.loads(load_proc.stdout.readline())
        busy1 = machine_busy()
        load_rc = load_proc.wait(timeout=60)
        cpu1 = proc_stat_cpu(f"/proc/{dpid}/stat")
        threads1 = threads(dpid)
        vm = vm_status(dpid)
        load_after = load()
        profile = perf_stop(perf_proc, run_dir / "perf.data", args.perf_lines) \
            if perf_proc else None
        perf_proc = None
        # Before the daemon stops, so before the commit and checkpoint of its shutdown.
        verify = subprocess.run([args.coapgatectl, "queue", "verify", "-q", state / "queue"],
                                capture_output=True, text=True, timeout=600)
        os.kill(dpid, signal.SIGTERM)
        daemon_rc = daemon.wait(timeout=60)
    finally:
        for p in (perf_proc, load_proc, daemon):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        notify.close()
        shutil.rmtree(sock_dir, ignore_errors=True)
    log_text = log_path.read_text(errors="replace")
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)

    m = re.match(r"(\d+) readings on disk, (\d+) unacknowledged, (\d+) lost", verify.stdout)
    on_disk = int(m.group(1)) if m else None
    expected = readings + (0 if ack else 1)
    problems = []
    if load_rc != 0 or not result["ok"]:
        problems.append(f"client: {result['why'] or f'exit status {load_rc}'}")
    if on_disk != expected or verify.returncode != 0:
        problems.append(f"queue verify: expected {expected:,} readings, got: "
                        f"{verify.stdout.strip()} {verify.stderr.strip()} "
                        f"(exit status {verify.returncode})")
    if daemon_rc != 0:
        problems.append(f"coapgated exited with status {daemon_rc}")
    problems += [f"coapgated said: {l}" for l in log_text.splitlines()
                 if l.startswith(("warning", "error", "critical"))][:5]

    n = readings
    thread_rows = []
    for tid, (c1, r1, w1) in threads1.items():
        c0, r0, w0 = threads0.get(tid, (0.0, 0, 0))
        thread_rows.append((tid, c1 - c0, r1 - r0, w1 - w0))
    thread_rows.sort(key=lambda t: -t[1])
    return dict(fmt=fmt, clients=n_clients, ack=ack, result=result,
                rate=n / result["end_s"] if result["end_s"] else 0.0,
                ingest_rate=n / result["done_s"] if result["done_s"] else 0.0,
                daemon_ns=(cpu1 - cpu0) / n * 1e9, client_ns=result["cpu_s"] / n * 1e9,
                daemon_cores=(cpu1 - cpu0) / result["end_s"] if result["end_s"] else 0.0,
                # Everything else the machine did meanwhile: other jobs (and perf).
                others_cores=((busy1[0] - busy0[0]) - (cpu1 - cpu0) - result["cpu_s"])
                / (busy1[1] - busy0[1]),
                hwm_kib=vm.get("VmHWM", 0), rss_kib=vm.get("VmRSS", 0), on_disk=on_disk,
                expected=expected, threads=thread_rows, problems=problems,
                load_before=load_before, load_after=load_after, profile=profile, waited=waited,
                command=" ".join(shlex.quote(str(c)) for c in cmd))


# "TID TIME call(fd, "\xNN...", ...) = ret", or its "<unfinished ...>" and "<... call
# resumed>" halves; data in hex (strace -xx), "..." after it when cut short.
STRACE_LINE = re.compile(r'^(?P<tid>\d+) +(?P<time>\S+) (?:<\.\.\. )?(?P<call>\w+)'
                         r'(?:\((?P<fd>\d+)'
                         r'(?:, "(?P<data>(?:\\x[0-9a-f]{2})*)"(?P<cut>\.\.\.)?)?)?')


def replay_trace(path):
    """Replay an strace of coapgated (see check_acks()); returns (frames, fdatasyncs,
    oks, sum of the oks, violations)."""
    written = {}      # fd -> highest seq in the frames written to it
    pending = {}      # tid -> (fd, last seq) of a pwrite64 not yet returned
    syncing = {}      # tid -> highest seq of the fd when its fdatasync began
    durable = acked = oks = frames = syncs = 0
    violations = []
    for line in Path(path).read_text().splitlines():
        m = STRACE_LINE.match(line)
        if not m:
            continue
        tid, call = m["tid"], m["call"]
        resumed = "resumed>" in line
        returned = re.search(r"\) += (-?\d+)", line)
        ret = int(returned.group(1)) if returned else None
        payload = bytes.fromhex(m["data"].replace("\\x", "")) if m["data"] else b""
        if call == "pwrite64":
            if not resumed and payload[:4] == b"CGQF":
                first = int.from_bytes(payload[8:16], "little")
                count = int.from_bytes(payload[16:20], "little")
                pending[tid] = (int(m["fd"]), first + count - 1)
            if ret is not None and ret > 0 and tid in pending:
                fd, last = pending.pop(tid)
                written[fd] = max(written.get(fd, 0), last)
                frames += 1
        elif call == "fdatasync":
            if not resumed:
                syncing[tid] = written.get(int(m["fd"]), 0)
            if ret == 0 and tid in syncing:
                durable = max(durable, syncing.pop(tid))
                syncs += 1
        elif call in ("write", "sendto") and not resumed and \
                payload.startswith((b"ok ", b"error ")):
            if m["cut"]:
                violations.append(f"{m['time']}: an answer too long to check: {payload!r}")
            for answer in payload.split(b"\n"):
                if answer.startswith(b"ok "):
                    acked += int(answer[3:])
                    oks += 1
            if acked > durable:
                violations.append(f"{m['time']}: `ok`s for {acked:,} readings, "
                                  f"{durable:,} durable")
    return frames, syncs, oks, acked, violations


def check_acks(args):
    """Every `ok <n>` covers only readings whose frames were flushed before it was
    written: the daemon is run under strace in a one-client JSON ack-mode run, and its
    system calls are replayed. A frame (a pwrite64 of "CGQF": first seq, count) is
    durable once an fdatasync of its file, begun after the frame was written, has
    returned 0; the sum of the `ok`s written so far must never exceed the readings of
    durable frames (seqs start at 1, and all readings come from that one client)."""
    trace = args.workdir / "strace.txt"
    r = run_one(args, "json", 1, True, readings=args.check_acks, strace_to=trace)
    frames, syncs, oks, acked, violations = replay_trace(trace)
    print(f"  {args.check_acks:,} readings, one client, JSON, ack mode, coapgated under strace: "
          f"{frames} frames, {syncs} fdatasyncs, {oks} `ok` answers adding up to {acked:,}; "
          f"queue verify {fmt_n(r['on_disk'])}")
    for p in r["problems"]:
        print(f"  PROBLEM: {p}")
    if acked != args.check_acks:
        print(f"  PROBLEM: the strace shows `ok`s for {acked:,} readings, not {args.check_acks:,}")
    for v in violations[:10]:
        print(f"  VIOLATION: {v}")
    print("  every `ok` came after the fdatasync of the readings it counts: "
          f"{'yes' if not violations else f'NO ({len(violations)} times)'}")
    if not args.keep:
        trace.unlink()


def label(run, tid, rchar, wchar):
    """What a daemon thread is, from what it read and wrote in the run."""
    if rchar >= run["result"]["bytes"] * 0.9:
        return "input `bench` (reads the socket, parses, appends)"
    if wchar >= run["result"]["readings"] * 20:
        return "queue committer (writes, fdatasync)"
    return "other (main loop, marker input, ack tracker)"


def fmt_n(v, digits=0):
    return "-" if v is None else f"{v:,.{digits}f}"


def name_of(r):
    return f"{r['fmt']:6} {r['clients']} client{'s' if r['clients'] > 1 else ' '} " \
           f"{'ack' if r['ack'] else 'no ack'}"


def print_run(r):
    res = r["result"]
    print(f"  {name_of(r):24} {fmt_n(r['rate']):>11}/s  in {res['end_s']:.3f} s "
          f"(written {res['written_s']:.3f} s, queued {res['done_s']:.3f} s)  "
          f"daemon {r['daemon_ns']:.0f} ns/rdg ({r['daemon_cores']:.2f} cores)  "
          f"client {r['client_ns']:.0f} ns/rdg  VmHWM {r['hwm_kib']:,} KiB  "
          f"verify {fmt_n(r['on_disk'])}  load {r['load_before'].split()[0]}, "
          f"others {r['others_cores']:.2f} cores"
          + ("" if r["waited"] is not None else ", NOT QUIET before"))
    busy = [(tid, c, rc, wc) for tid, c, rc, wc in r["threads"] if c >= 0.01]
    for tid, c, rc, wc in busy:
        print(f"      thread {tid}: {c:.2f} s CPU, {c / r['result']['readings'] * 1e9:.0f} "
              f"ns/rdg  {label(r, tid, rc, wc)}")
    for p in r["problems"]:
        print(f"      PROBLEM: {p}")


def summary(args, runs):
    combos = []
    for r in runs:
        key = (r["fmt"], r["clients"], r["ack"])
        if key not in combos:
            combos.append(key)
    heads = ("format", "clients", "ack", "readings/s median", "min - max", "daemon ns/rdg",
             "client ns/rdg", "VmHWM KiB (max)", "queue verify", "others, cores")
    rows = []
    for key in combos:
        rs = [r for r in runs if (r["fmt"], r["clients"], r["ack"]) == key]
        rates = [r["rate"] for r in rs]
        ok = all(not r["problems"] for r in rs)
        rows.append((key[0], str(key[1]), "yes" if key[2] else "no",
                     fmt_n(statistics.median(rates)),
                     f"{fmt_n(min(rates))} - {fmt_n(max(rates))}",
                     fmt_n(statistics.median(r["daemon_ns"] for r in rs)),
                     fmt_n(statistics.median(r["client_ns"] for r in rs)),
                     fmt_n(max(r["hwm_kib"] for r in rs)),
                     f"exact x {len(rs)}" if ok else "PROBLEMS",
                     f"{statistics.median(r['others_cores'] for r in rs):.2f}"))
    widths = [max(len(x[i]) for x in rows + [heads]) for i in range(len(heads))]
    print("  " + "  ".join(h.ljust(w) for h, w in zip(heads, widths)))
    print("  " + "  ".join("-" * w for w in widths))
    for row in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)))

    print()
    print(f"Targets (the issue): >= {TARGET_RATE:,} readings/s from one client with JSON "
          f"lines, every acknowledged reading durable, peak RSS < 16 MiB.")
    one = [r for r in runs if r["fmt"] == "json" and r["clients"] == 1]
    for ack in (False, True):
        rs = [r for r in one if r["ack"] == ack]
        if rs:
            med = statistics.median(r["rate"] for r in rs)
            print(f"  one client, JSON, {'ack' if ack else 'no ack'}: median {fmt_n(med)}/s  "
                  f"{'met' if med >= TARGET_RATE else 'NOT MET'}"
                  f" (Fluent Bit 5.1, the issue's figure, not measured here: about "
                  f"{FLUENT_BIT_RATE:,} JSON records/s)")
    bad = [r for r in runs if r["problems"]]
    print(f"  every run's queue held exactly the readings sent: "
          f"{'yes' if not bad else f'NO, {len(bad)} runs had problems (above)'}")
    hwm = max(r["hwm_kib"] for r in runs)
    print(f"  peak RSS (VmHWM), largest of all runs: {hwm:,} KiB = {hwm / 1024:.1f} MiB  "
          f"{'met' if hwm < TARGET_HWM_KIB else 'NOT MET'} (Fluent Bit: {FLUENT_BIT_RSS})")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", type=Path, default=SOURCE_DIR / "build",
                   help="the build directory, built with the tests (default: build)")
    p.add_argument("--readings", type=int, default=5_000_000,
                   help="readings per run, shared among the clients (default 5,000,000)")
    p.add_argument("--repeat", type=int, default=3, help="runs per combination (default 3)")
    p.add_argument("--formats", default="json,influx", help="json,influx (default both)")
    p.add_argument("--clients", default="1,8", help="client counts (default 1,8)")
    p.add_argument("--modes", default="noack,ack", help="noack,ack (default both)")
    p.add_argument("--write-bytes", type=int, default=1 << 20,
                   help="bytes per write() of the client (default 1 MiB)")
    p.add_argument("--perf", action="store_true",
                   help="also profile coapgated in one-client JSON runs (not in the table)")
    p.add_argument("--perf-freq", type=int, default=999, help="perf sampling frequency")
    p.add_argument("--perf-callgraph", default="dwarf,16384",
                   help="perf record --call-graph mode (default dwarf,16384: the build has "
                        "no frame pointers; none: self time only)")
    p.add_argument("--perf-lines", type=int, default=30, help="profile lines to print")
    p.add_argument("--quiet", type=float, default=None, metavar="CORES",
                   help="start each run only after a second in which the whole machine "
                        "used less than CORES CPUs (other jobs share it), e.g. 0.3")
    p.add_argument("--quiet-wait", type=float, default=600,
                   help="with --quiet: wait at most this many seconds, then run anyway "
                        "(default 600)")
    p.add_argument("--check-acks", type=int, default=0, metavar="READINGS",
                   help="instead of measuring: run READINGS readings (e.g. 300000) in ack "
                        "mode with coapgated under strace and check that every `ok` "
                        "follows the fdatasync of the readings it counts")
    p.add_argument("--workdir", type=Path, default=None,
                   help="scratch directory for the state directories (default: a new one "
                        "under /var/tmp, on the disk; /tmp may be tmpfs)")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = p.parse_args()

    build = args.build.resolve()
    args.coapgated = build / "daemon" / "coapgated"
    args.coapgatectl = build / "ctl" / "coapgatectl"
    args.plugin_dir = build / "plugins"
    args.load = build / "tests" / "bench" / "unixsock_load"
    for path in (args.coapgated, args.coapgatectl, args.plugin_dir / "unixsock.so", args.load):
        if not os.access(path, os.R_OK):
            raise SystemExit(f"{path} is missing: build the tree with the tests first "
                             f"(cmake --build {args.build})")
    created = args.workdir is None
    if created:
        args.workdir = Path(tempfile.mkdtemp(prefix="unixsock-bench.", dir="/var/tmp"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    combos = [(f, int(c), m == "ack") for m in args.modes.split(",")
              for f in args.formats.split(",") for c in args.clients.split(",")]

    print("unixsock_bench: readings/s into the durable queue through the Unix socket input")
    print("command:   " + " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))
    for k, v in machine(args.workdir, build_source(build)).items():
        print(f"{k + ':':10} {v}")
    print(f"{'date:':10} {time.strftime('%Y-%m-%d %H:%M:%S %z')}")
    print(f"readings per run: {args.readings:,} (3 f64 fields each), shared among the "
          f"clients; queue: the daemon's defaults; uplink disabled")
    print("rate: readings / time from the first byte sent until all are durable (ack mode: "
          "the `ok`s; otherwise the marker's `ok`, see --help)")
    if args.quiet is not None:
        print(f"each run starts after a second in which the machine used < {args.quiet:g} "
              f"CPUs (waiting at most {args.quiet_wait:g} s)")
    print("per run: daemon and client CPU time per reading, the daemon's busy threads, "
          "VmHWM, `coapgatectl queue verify` (readings + 1 marker without ack), load "
          "average at the start, and the CPU the rest of the machine used during the run "
          "(/proc/stat busy time minus daemon and client, in cores of the "
          f"{os.cpu_count()})")
    sys.stdout.flush()
    runs = []
    try:
        if args.check_acks:
            print("\n---- every `ok` after the fdatasync of its readings (strace)")
            check_acks(args)
            return
        for i in range(1, args.repeat + 1):
            print(f"\n---- repetition {i} of {args.repeat}, load {load()}")
            for fmt, clients, ack in combos:
                r = run_one(args, fmt, clients, ack)
                runs.append(r)
                print_run(r)
                sys.stdout.flush()
        print()
        print(f"client command (last run): {runs[-1]['command']}")
        print(f"\n---- summary: medians of {args.repeat} runs per combination, load "
              f"now {load()}")
        summary(args, runs)
        if args.perf:
            for ack in (False, True):
                print(f"\n---- profile: one client, JSON, {'ack' if ack else 'no ack'} "
                      f"(perf record -F {args.perf_freq} --call-graph "
                      f"{args.perf_callgraph}, a run of its own)")
                r = run_one(args, "json", 1, ack, perf=True)
                print_run(r)
                print(r["profile"])
                sys.stdout.flush()
    finally:
        if args.keep:
            print(f"scratch directory kept: {args.workdir}")
        elif created:
            shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
