#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""uplink_bench: the uplink end to end, against nce-emulator over DTLS, side by side
with the 1NCE documentation's Node.js client. Not a test (ctest does not run it): it
measures this machine and prints what it measured; docs/BENCHMARKS.md has the figures.

    /usr/bin/python3 tests/bench/uplink_bench.py --build build [--duration 30] ...

Both runs send the same readings: a timestamp and three f64 fields (temp, hum,
pressure; the `numbers` test plugin, and the same values in
tests/emulator/node/bench.js). Each run gets its own freshly started emulator (a fresh
registry, no PSK yet), so each includes its bootstrap and DTLS handshake:

  coapgate  coapgated, bound to 127.0.0.2 (the device's SIM address), bootstraps,
            then sends the readings of one `numbers` input (topic "bench") from the
            disk queue: input -> queue -> coaps POST -> 2.04 -> acknowledged.
  node      tests/emulator/node/bench.js as the device 127.0.0.1 (Node cannot choose
            its source address): bootstrap as in the documentation's example, then one
            JSON reading {"timestamp","temp","hum","pressure"} per confirmable POST,
            each awaited before the next, keepAlive as in the example.

What is measured, all on the emulator's side:

  readings/s      readings inside the messages the emulator accepted (2.04), counted by
                  decoding every payload in its sink, whose `received` time falls in the
                  measurement window: `--warmup` seconds after the first delivery, for
                  `--duration` seconds. Per-second counts show whether it was steady.
  wire bytes      the emulator's `datagrams.bytes_in + bytes_out` (every UDP payload byte
  per reading     in both directions: bootstrap, DTLS handshake, requests, answers) from
                  before the client started until after it stopped, divided by the
                  distinct readings delivered in that time.
  CPU             utime + stime from /proc/PID/stat (and per thread for coapgated) over
                  the window, in cores (CPU seconds per second) and microseconds per
                  reading.
  latency         per message: received time minus the timestamp of its oldest reading
                  (coapgate's readings are timestamped when the input makes them).

The input runs in one of two modes:

  --rate 0 (default)  a backlog: the input emits --count readings as fast as it can
                      (by default 350,000 per second of the run) and then idles; the
                      uplink drains the queue as fast as it can. This is the uplink's
                      capacity; latency then only says how old the backlog is.
  --rate R            R readings/s, every stage busy at once: the uplink keeps up when it
                      delivers R/s (within 2 %) and no reading is older than 5 s.

Message IDs: a client has 65,536 and 1NCE OS (like the emulator) drops a confirmable
message whose ID the client used within EXCHANGE_LIFETIME (247 s), answering it as a
duplicate. Both clients send far more than 265 messages/s here. coapgate never reuses
an ID within 247 s (uplink.mid_exhaustion: new_session here, a new source port), so the
emulator's duplicate detection stays on for it. The Node client does reuse them, so for
its run the emulator's clock is moved forward 248 s every second (`clock +248`) to
defeat the detection, in its favour, and the reuses are counted from the sink instead;
--keep-dedup keeps 1NCE's behaviour for it too.

--repeat N runs the pair N times and prints the medians; --perf profiles coapgated with
`perf record --call-graph dwarf` during the window and prints where the time went.
The whole output is meant to be pasted as it is: the command, the machine, the load
average around each run, the configuration, a table per repetition and the verdicts.
"""

import argparse
import base64
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(SOURCE_DIR / "tests" / "integration"))
import nce  # noqa: E402  (the emulator helpers of the integration tests)

GW_ICCID = "8988228066600000001"
NODE_ICCID = "8988228066600000002"
GW_ADDRESS = "127.0.0.2"
NODE_ADDRESS = "127.0.0.1"
TOPIC = "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
BACKLOG_RATE = 350_000   # readings/s the default --count provides for

# RFC 7252 4.4/4.5: a message ID must not be reused within EXCHANGE_LIFETIME; 1NCE OS
# (and the emulator) answer a repeated one as a duplicate without processing it.
EXCHANGE_LIFETIME_MS = 247_000

TARGET_RATE = 100_000
TARGET_RATE_RATIO = 30
TARGET_BYTES_RATIO = 0.25


# --------------------------------------------------------------------------------------
# The machine and processes


def sh(args):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine():
    model = ""
    for line in sh(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    commit = sh(["git", "-C", str(SOURCE_DIR), "rev-parse", "--short", "HEAD"])
    dirty = sh(["git", "-C", str(SOURCE_DIR), "status", "--porcelain", "--untracked-files=no"])
    return {
        "cpu": f"{model}, {os.cpu_count()} CPUs (lscpu)",
        "memory": f"{mem} MiB",
        "kernel": f"{platform.system()} {platform.release()} {platform.machine()}",
        "tree": f"{commit}{' with uncommitted changes' if dirty else ''}",
        "node": sh(["node", "--version"]),
    }


def load():
    return "%.2f %.2f %.2f" % os.getloadavg()


def cpu_seconds(pid):
    """utime + stime of a process (all its threads), in seconds; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu(pid):
    """{tid: cpu seconds} of every thread of pid."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
        except OSError:
            pass
    return out


class Snapshot:
    def __init__(self, emu, pids):
        self.wall_ms = time.time() * 1000
        self.mono = time.monotonic()
        self.cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self.threads = thread_cpu(pids["client"])
        self.stats = emu.stats()
        self.load = load()


def wire_bytes(stats):
    return stats["datagrams"]["bytes_in"] + stats["datagrams"]["bytes_out"]


def wait_sink(emu, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if emu.sink_path.stat().st_size > 0:
                return True
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    return False


# --------------------------------------------------------------------------------------
# Decoding the sink


class Delivery:
    """Everything accepted by an emulator, decoded from its sink."""

    def __init__(self, sink_path, kind, window=None):
        self.messages = 0
        self.readings = 0            # rows, duplicates included
        self.payload_bytes = 0
        self.w_messages = 0
        self.w_readings = 0
        self.w_payload_bytes = 0
        self.before_end = 0          # rows received before the window's end
        self.per_second = {}
        self.latencies = []          # ms, per message in the window
        self.duplicates = 0
        self.max_seq = 0
        self.errors = []
        self.mid_reused = 0          # messages whose (port, MID) was seen < 247 s before
        self.mid_reused_readings = 0
        last_mid = {}
        seen = bytearray()
        t0, t1 = window if window else (0, float("inf"))
        with open(sink_path, "rb") as f:
            for raw in f:
                if not raw.endswith(b"\n"):
                    break
                ev = json.loads(raw)
                payload = base64.b64decode(ev["payload"]["value"])
                received = int(ev["received"])
                rows, oldest = self._decode(kind, payload, seen)
                key = (ev["coap"]["port"], ev["coap"]["mid"])
                if received - last_mid.get(key, -EXCHANGE_LIFETIME_MS) < EXCHANGE_LIFETIME_MS:
                    self.mid_reused += 1
                    self.mid_reused_readings += rows
                last_mid[key] = received
                self.messages += 1
                self.readings += rows
                self.payload_bytes += len(payload)
                if received < t1:
                    self.before_end += rows
                if t0 <= received < t1:
                    self.w_messages += 1
                    self.w_readings += rows
                    self.w_payload_bytes += len(payload)
                    sec = int((received - t0) // 1000)
                    self.per_second[sec] = self.per_second.get(sec, 0) + rows
                    if oldest is not None:
                        self.latencies.append(received - oldest)
        self.distinct = self.readings - self.duplicates

    def _decode(self, kind, payload, seen):
        try:
            doc = json.loads(payload)
        except ValueError:
            self.errors.append(f"payload is not JSON: {payload[:80]!r}")
            return 0, None
        if kind == "node":
            if set(doc) != {"timestamp", "temp", "hum", "pressure"}:
                self.errors.append(f"unexpected reading {doc}")
            return 1, doc.get("timestamp")
        # coapgate: docs/ENCODING.md
        rows = 0
        oldest = None
        with_seq = "s" in doc          # uplink.sequence_numbers: rows [dseq, dt, ...]
        base_seq, base_ts = doc.get("s", 0), doc["t"]
        for group in doc["g"]:
            if group["f"] != ["temp", "hum", "pressure"]:
                self.errors.append(f"unexpected fields {group['f']}")
            for row in group["r"]:
                rows += 1
                ts = base_ts + row[1 if with_seq else 0]
                oldest = ts if oldest is None else min(oldest, ts)
                if not with_seq:
                    continue
                seq = base_seq + row[0]
                if seq >= len(seen):
                    seen.extend(bytes(max(seq + 1 - len(seen), 1 << 20)))
                if seen[seq]:
                    self.duplicates += 1
                seen[seq] = 1
                self.max_seq = max(self.max_seq, seq)
        return rows, oldest


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


# --------------------------------------------------------------------------------------
# The runs


class DedupDefeat:
    """Moves the emulator's clock forward by EXCHANGE_LIFETIME every second (`clock
    +248`), so that its duplicate detection forgets every message ID within a second and
    a client that reuses IDs sooner than RFC 7252 allows is still measured by what it
    sends. The reuse itself is counted from the sink (Delivery.mid_reused). The clock
    also drives the 5-minute PSK rule, which only matters at a bootstrap: each run
    bootstraps once, before the first tick has any effect on it."""

    def __init__(self, emu, enabled):
        import threading

        self.emu = emu
        self.ticks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True) if enabled else None
        if self._thread:
            self._thread.start()

    def _run(self):
        while not self._stop.wait(1.0):
            self.emu.ctl_ok(f"clock +{EXCHANGE_LIFETIME_MS // 1000 + 1}")
            self.ticks += 1

    def stop(self):
        if self._thread:
            self._stop.set()
            self._thread.join(timeout=10)


def start_emulator(workdir, iccid, address):
    return nce.Emulator(workdir, [dict(iccid=iccid, address=address, imsi="901405100000001")],
                        verbose=False)


def perf_start(args, pid, out):
    if not args.perf:
        return None
    return subprocess.Popen(["perf", "record", "--call-graph", args.perf_callgraph,
                             "-F", str(args.perf_freq), "-p", str(pid), "-o", str(out),
                             "--", "sleep", str(args.duration)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def perf_report(proc, data, lines):
    """Two views of the profile: self time by function, and time including callees for
    user-space functions (where the time goes, by caller)."""
    if proc is None:
        return None
    proc.wait(timeout=120)
    out = []
    for title, mode in (("self time by function (dso, symbol)", "--no-children"),
                        ("including callees, user-space functions", "--children")):
        sort = "dso,symbol" if mode == "--no-children" else "symbol"
        r = subprocess.run(["perf", "report", "--stdio", mode, "-g", "none",
                            "--percent-limit", "1", "-i", str(data), "--sort", sort],
                           capture_output=True, text=True, timeout=600)
        body = [l.rstrip() for l in r.stdout.splitlines()
                if l.strip() and not l.startswith("#")]
        if mode == "--children":
            # Kernel entries and frames perf could not name say nothing about our code.
            # So are the frames every sample has (main, the event loop, thread start).
            boring = ("[.] main ", "[.] _start ", "[.] __libc_start", "[.] sd_event_",
                      "[.] service_run ", "[.] clone3 ", "[.] start_thread ")
            body = [l for l in body if "[k]" not in l and "[.] 0x" not in l
                    and "[.] 0000" not in l and not any(b in l for b in boring)]
        out.append(f"  {title}:")
        out += ["  " + l for l in body[:lines]]
    return "\n".join(out)


def measure(args, emu, client_pid, name, rep, is_alive, perf_target=None):
    """Warm up, then measure a window of args.duration seconds; returns (s0, s1)."""
    if not wait_sink(emu, args.start_timeout):
        raise SystemExit(f"{name}: nothing was delivered within {args.start_timeout} s\n"
                         + emu.output())
    first = time.monotonic()
    time.sleep(args.warmup if name == "coapgate" else args.node_warmup)
    pids = {"client": client_pid, "emulator": emu.pid}
    s0 = Snapshot(emu, pids)
    perf = perf_start(args, perf_target, args.workdir / f"perf-{name}-{rep}.data") \
        if perf_target else None
    end = s0.mono + args.duration
    while time.monotonic() < end:
        if not is_alive():
            raise SystemExit(f"{name} exited during the measurement")
        time.sleep(min(0.5, max(0.0, end - time.monotonic())))
    s1 = Snapshot(emu, pids)
    return first, s0, s1, perf


def coapgate_config(args, emu, state_dir):
    uplink = [f'bootstrap_url = "coap://127.0.0.1:{emu.coap_port}/bootstrap";',
              f'bind_address = "{GW_ADDRESS}";']
    for key, value in (("max_in_flight", args.max_in_flight), ("linger", args.linger),
                       ("lookahead", args.lookahead), ("max_payload", args.max_payload),
                       ("mid_exhaustion", args.mid_exhaustion)):
        if value is not None:
            uplink.append(f"{key} = {json.dumps(value)};")
    if args.timestamp_step:
        extra = f' timestamp_step = "{args.timestamp_step}";'
    else:
        extra = ""
    if args.no_seq:
        uplink.append("sequence_numbers = false;")
    count = args.count
    if count is None:
        count = 0 if args.rate else \
            BACKLOG_RATE * int(args.warmup + args.duration + 10)
    return f"""daemon: {{
    state_dir = "{state_dir}";
    log_target = "stderr";
    log_level = "info";
}};
uplink: {{
    {chr(10).join('    ' + l for l in uplink).strip()}
}};
inputs = (
    {{ name = "bench"; plugin = "numbers"; topic = "{TOPIC}";
      rate = {args.rate}; count = {count};{extra} }}
);
""", count


def run_coapgate(args, rep):
    workdir = args.workdir / f"coapgate-{rep}"
    emu = start_emulator(workdir / "emulator", GW_ICCID, GW_ADDRESS)
    daemon = None
    ticker = None
    try:
        emu.ctl_ok("reset-stats")
        # coapgate never reuses a message ID within 247 s (uplink.mid_exhaustion), so the
        # emulator's duplicate detection stays on for it, as 1NCE's does.
        ticker = DedupDefeat(emu, False)
        stats_before = emu.stats()
        text, count = coapgate_config(args, emu, workdir / "state")
        conf = workdir / "coapgate.conf"
        conf.write_text(text)
        cmd = [args.build / "daemon" / "coapgated", "-c", conf, "-P", args.build / "test-plugins"]
        load_before = load()
        started = time.monotonic()
        daemon = nce.Proc(cmd, "coapgated",
                          env={k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"})
        first, s0, s1, perf = measure(args, emu, daemon.pid, "coapgate", rep,
                                      lambda: daemon.proc.poll() is None, daemon.pid)
        profile = perf_report(perf, args.workdir / f"perf-coapgate-{rep}.data", args.perf_lines)
        rc = daemon.stop()
        stats_after = emu.stats()
    finally:
        if ticker:
            ticker.stop()
        if daemon:
            daemon.stop()
        emu.stop()
    log = "\n".join(daemon.stderr)
    if rc != 0:
        print(f"warning: coapgated exited with status {rc}", file=sys.stderr)
    d = Delivery(emu.sink_path, "coapgate", (s0.wall_ms, s1.wall_ms))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return dict(name="coapgate", pid=daemon.pid, config=text,
                command=" ".join(shlex.quote(str(c)) for c in cmd),
                count=count, emu=emu, s0=s0, s1=s1, before=stats_before, after=stats_after,
                delivery=d, first_delivery_s=first - started, profile=profile, log=log,
                load_before=load_before, load_after=load())


def run_node(args, rep):
    workdir = args.workdir / f"node-{rep}"
    modules = args.build / "node" / "node_modules"
    if not (modules / "node-coap-client" / "package.json").is_file():
        raise SystemExit(f"{modules} has no node-coap-client: run "
                         f"scripts/install-node-deps {args.build / 'node'}")
    version = json.loads((modules / "node-coap-client" / "package.json").read_text())["version"]
    emu = start_emulator(workdir / "emulator", NODE_ICCID, NODE_ADDRESS)
    node = None
    ticker = None
    try:
        emu.ctl_ok("reset-stats")
        ticker = DedupDefeat(emu, not args.keep_dedup)
        stats_before = emu.stats()
        # Long enough for node's start-up on a busy machine: the window must end before it.
        total = args.node_warmup + args.duration + 5
        cmd = ["node", SOURCE_DIR / "tests" / "emulator" / "node" / "bench.js", "127.0.0.1",
               emu.coap_port, emu.coaps_port, TOPIC, total]
        env = dict(os.environ, NODE_PATH=str(modules))
        load_before = load()
        started = time.monotonic()
        node = nce.Proc(cmd, "node", env=env, cwd=modules.parent)
        first, s0, s1, _ = measure(args, emu, node.pid, "node", rep,
                                   lambda: node.proc.poll() is None)
        rc = node.proc.wait(timeout=total + 60)
        node.stop()
        stats_after = emu.stats()
    finally:
        if ticker:
            ticker.stop()
        if node:
            node.stop()
        emu.stop()
    if rc != 0:
        raise SystemExit(f"bench.js exited with status {rc}:\n{node.output()}")
    result = json.loads(node.stdout[-1])
    d = Delivery(emu.sink_path, "node", (s0.wall_ms, s1.wall_ms))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return dict(name="node", version=version,
                command=" ".join(shlex.quote(str(c)) for c in cmd), emu=emu, s0=s0, s1=s1,
                before=stats_before, after=stats_after, delivery=d, node=result,
                first_delivery_s=first - started, load_before=load_before, load_after=load())


# --------------------------------------------------------------------------------------
# Figures and report


def figures(r):
    d, s0, s1 = r["delivery"], r["s0"], r["s1"]
    window = (s1.mono - s0.mono)
    wall = (s1.wall_ms - s0.wall_ms) / 1000
    f = {}
    f["window_s"] = wall
    f["rate"] = d.w_readings / wall
    per_sec = [d.per_second.get(i, 0) for i in range(int(wall))]
    f["per_second"] = (min(per_sec), statistics.median(per_sec), max(per_sec)) if per_sec \
        else (0, 0, 0)
    f["per_second_all"] = per_sec
    f["readings_total"] = d.distinct
    f["messages_total"] = d.messages
    f["duplicates"] = d.duplicates
    f["wire_total"] = wire_bytes(r["after"]) - wire_bytes(r["before"])
    f["wire_per_reading"] = f["wire_total"] / d.distinct if d.distinct else float("nan")
    f["wire_window"] = wire_bytes(s1.stats) - wire_bytes(s0.stats)
    f["wire_per_reading_window"] = f["wire_window"] / d.w_readings if d.w_readings \
        else float("nan")
    f["payload_per_reading"] = d.payload_bytes / d.readings if d.readings else float("nan")
    f["readings_per_message"] = d.readings / d.messages if d.messages else float("nan")
    f["wire_per_message"] = f["wire_total"] / d.messages if d.messages else float("nan")
    f["datagrams"] = (r["after"]["datagrams"]["in"] - r["before"]["datagrams"]["in"],
                      r["after"]["datagrams"]["out"] - r["before"]["datagrams"]["out"])
    cpu = {}
    for who in ("client", "emulator"):
        a, b = s0.cpu[who], s1.cpu[who]
        used = (b - a) if a is not None and b is not None else float("nan")
        cpu[who] = (used / window, used / d.w_readings * 1e6 if d.w_readings else float("nan"))
    f["cpu"] = cpu
    threads = []
    for tid, t1 in sorted(s1.threads.items()):
        used = t1 - s0.threads.get(tid, 0.0)
        threads.append((tid, used / window))
    f["threads"] = threads
    f["latency"] = (percentile(d.latencies, 50), percentile(d.latencies, 99),
                    max(d.latencies) if d.latencies else float("nan"))
    f["handshakes"] = r["after"]["handshakes"]["ok"]
    f["bootstraps"] = r["after"]["bootstraps"]["total"]
    f["codes"] = r["after"]["requests"]["by_code"]
    f["errors"] = d.errors[:5]
    f["mid_reused"] = d.mid_reused
    f["mid_reused_readings"] = d.mid_reused_readings
    f["dup_answers"] = r["after"]["duplicates"] - r["before"]["duplicates"]
    return f


def n(v, digits=0):
    if v is None or v != v:
        return "-"
    return f"{v:,.{digits}f}"


def verdict(ok):
    return "met" if ok else "NOT MET"


def header(args, machine_info):
    print()
    print("=" * 100)
    print("uplink_bench: readings end to end, client -> nce-emulator over CoAP/DTLS-PSK, "
          "loopback")
    print("=" * 100)
    print("command:   " + " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))
    for k, v in machine_info.items():
        print(f"{k + ':':10} {v}")
    print(f"{'date:':10} {time.strftime('%Y-%m-%d %H:%M:%S %z')}")
    print("duplicate detection of the emulator: " +
          ("kept (1NCE's rule: a message ID reused within 247 s is answered 2.04 and dropped)"
           if args.keep_dedup else
           "kept for coapgate (it never reuses a message ID within 247 s); defeated for the "
           "Node client (`clock +248` every second), which would otherwise lose every "
           "message after its first 65536; its reuses are counted from the sink instead"))


def kept_up(args, f):
    """With --rate: the uplink delivered what the input made, without a growing backlog."""
    return f["rate"] >= 0.98 * args.rate and f["latency"][2] < 5000


def rate_met(args, f):
    if args.rate:
        # The input caps the rate: the target is met by keeping up with 100,000/s or more.
        return args.rate >= TARGET_RATE and kept_up(args, f)
    return f["rate"] >= TARGET_RATE


def report(args, gw, node, title):
    fg = figures(gw) if gw else None
    fn = figures(node) if node else None
    if fg:
        fg["rate_met"] = rate_met(args, fg)
    print()
    print(f"---- {title} " + "-" * max(0, 94 - len(title)))
    print("load average (1/5/15 min) before the run -> window start -> window end:")
    for r in (gw, node):
        if r:
            print(f"  {r['name']:9} {r['load_before']}  ->  {r['s0'].load}  ->  {r['s1'].load}")
    print(f"  This benchmark alone keeps about 1 to 1.5 of the {os.cpu_count()} CPUs busy; a "
          "higher load means other jobs shared the machine and every rate below is depressed.")

    if gw:
        print()
        print("coapgate run")
        print(f"  {gw['command']}")
        mode = (f"{args.rate:,} readings/s" if args.rate else
                f"backlog: {gw['count']:,} readings as fast as the input can, then idle")
        print(f"  input `numbers`: {mode}")
        print(f"  first delivery {gw['first_delivery_s']:.1f} s after the start; window of "
              f"{fg['window_s']:.1f} s from {args.warmup:g} s after the first delivery")
        print("  configuration (everything else: the daemon's defaults):")
        for line in gw["config"].strip().splitlines():
            print("    " + line)
        problems = [l for l in gw["log"].splitlines()
                    if l.startswith(("warning", "error")) or "uplink: 1NCE" in l]
        for line in problems[:10]:
            print(f"  coapgated said: {line}")
    if node:
        print()
        print(f"Node.js run (node-coap-client {node['version']}, the 1NCE documentation's "
              "client, one reading per confirmable POST)")
        print(f"  {node['command']}")
        print(f"  bench.js printed: {json.dumps(node['node'])}")
        print(f"  window of {fn['window_s']:.1f} s from {args.node_warmup:g} s after the first "
              "delivery")

    rows = []

    def row(label, g="", nd="", ratio="", target="", ok=""):
        rows.append((label, g, nd, ratio, target, ok))

    def col(f, fmt):
        return fmt(f) if f else "-"

    def three(key, digits=0):
        return lambda f: " / ".join(n(x, digits) for x in f[key])

    rate_ratio = fg["rate"] / fn["rate"] if fg and fn and fn["rate"] else None
    bytes_ratio = fg["wire_per_reading"] / fn["wire_per_reading"] if fg and fn else None
    row("readings/s end to end, in the window", col(fg, lambda f: n(f["rate"])),
        col(fn, lambda f: n(f["rate"])), f"x {rate_ratio:,.1f}" if rate_ratio else "",
        f">= {TARGET_RATE:,}", verdict(fg["rate_met"]) if fg else "")
    row("", "", "", "", f">= x {TARGET_RATE_RATIO} Node",
        verdict(rate_ratio >= TARGET_RATE_RATIO) if rate_ratio else "")
    row("  per second: min / median / max", col(fg, three("per_second")),
        col(fn, three("per_second")))
    row("wire bytes/reading, whole run", col(fg, lambda f: n(f["wire_per_reading"], 2)),
        col(fn, lambda f: n(f["wire_per_reading"], 2)),
        f"x {bytes_ratio:.3f}" if bytes_ratio else "", f"<= x {TARGET_BYTES_RATIO} Node",
        verdict(bytes_ratio <= TARGET_BYTES_RATIO) if bytes_ratio else "")
    row("  in the window only", col(fg, lambda f: n(f["wire_per_reading_window"], 2)),
        col(fn, lambda f: n(f["wire_per_reading_window"], 2)))
    row("  wire bytes, whole run", col(fg, lambda f: n(f["wire_total"])),
        col(fn, lambda f: n(f["wire_total"])))
    row("  datagrams in / out, whole run", col(fg, three("datagrams")),
        col(fn, three("datagrams")))
    row("payload bytes/reading", col(fg, lambda f: n(f["payload_per_reading"], 2)),
        col(fn, lambda f: n(f["payload_per_reading"], 2)))
    row("readings/message", col(fg, lambda f: n(f["readings_per_message"], 2)),
        col(fn, lambda f: n(f["readings_per_message"], 2)))
    row("wire bytes/message, whole run", col(fg, lambda f: n(f["wire_per_message"], 1)),
        col(fn, lambda f: n(f["wire_per_message"], 1)))
    row("readings delivered, whole run (distinct)", col(fg, lambda f: n(f["readings_total"])),
        col(fn, lambda f: n(f["readings_total"])))
    row("messages accepted, whole run", col(fg, lambda f: n(f["messages_total"])),
        col(fn, lambda f: n(f["messages_total"])))
    row("bootstraps / DTLS handshakes", col(fg, lambda f: f"{f['bootstraps']} / {f['handshakes']}"),
        col(fn, lambda f: f"{f['bootstraps']} / {f['handshakes']}"))
    row("answers by code", col(fg, lambda f: json.dumps(f["codes"])),
        col(fn, lambda f: json.dumps(f["codes"])))
    row("readings delivered twice (same seq)", col(fg, lambda f: n(f["duplicates"])), "n/a")
    row("msgs reusing a MID within 247 s (readings)",
        col(fg, lambda f: f"{n(f['mid_reused'])} ({n(f['mid_reused_readings'])})"),
        col(fn, lambda f: f"{n(f['mid_reused'])} ({n(f['mid_reused_readings'])})"))
    row("answered as duplicates, not processed", col(fg, lambda f: n(f["dup_answers"])),
        col(fn, lambda f: n(f["dup_answers"])))
    row("CPU of the client, cores", col(fg, lambda f: f"{f['cpu']['client'][0]:.2f}"),
        col(fn, lambda f: f"{f['cpu']['client'][0]:.2f}"))
    row("  us per reading", col(fg, lambda f: f"{f['cpu']['client'][1]:.2f}"),
        col(fn, lambda f: f"{f['cpu']['client'][1]:.1f}"))
    row("CPU of nce-emulator, cores", col(fg, lambda f: f"{f['cpu']['emulator'][0]:.2f}"),
        col(fn, lambda f: f"{f['cpu']['emulator'][0]:.2f}"))
    row("  us per reading", col(fg, lambda f: f"{f['cpu']['emulator'][1]:.2f}"),
        col(fn, lambda f: f"{f['cpu']['emulator'][1]:.1f}"))
    row("latency ms p50 / p99 / max", col(fg, three("latency")), col(fn, three("latency")))

    heads = ("", "coapgate", "Node client", "coapgate/Node", "target", "")
    widths = [max(len(str(r[i])) for r in rows + [heads]) for i in range(6)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(heads, widths)).rstrip())
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    print()
    print("readings/s: readings in the messages the emulator accepted, by the `received` "
          "time of its sink.")
    print("wire bytes: the emulator's datagrams.bytes_in + bytes_out (UDP payloads both "
          "ways, bootstrap and")
    print("  DTLS handshake included) from before the client started until it stopped, "
          "/ distinct readings.")
    print("latency: received time minus the timestamp of the oldest reading of each message "
          "in the window")
    print("  (in backlog mode: the age of the backlog, not a delay of the uplink).")

    for r, f in ((gw, fg), (node, fn)):
        if not r:
            continue
        series = [f["per_second_all"][i] for i in range(len(f["per_second_all"]))]
        print()
        print(f"{r['name']}: readings delivered in each second of the window, in thousands:")
        line = " ".join(f"{x / 1000:.1f}" for x in series)
        print("  " + line)

    if fg:
        print()
        print("coapgated threads over the window, in cores:")
        for tid, cores in fg["threads"]:
            label = ("main thread: event loop, uplink (queue reader, outbox, JSON, libcoap, "
                     "OpenSSL)" if tid == gw["pid"] else "input, queue committer or resolver")
            print(f"  tid {tid:>7}  {cores:5.2f}  {label}")
        for e in fg["errors"]:
            print(f"  decode problem: {e}")
        total_cpu = fg["cpu"]["client"][0] + fg["cpu"]["emulator"][0]
        print(f"  coapgated and nce-emulator together: {total_cpu:.2f} of {os.cpu_count()} CPUs; "
              "a thread near 1.00 is the bottleneck, none near it means the uplink waited "
              "for answers (max_in_flight).")
        if args.rate and not kept_up(args, fg):
            print(f"  The uplink did NOT keep up with the input's {args.rate:,}/s.")
        if not args.rate and gw["delivery"].before_end >= gw["count"]:
            print("  WARNING: the backlog ran out before the window ended, so the rate is too "
                  "low: raise --count.")
        if fg["dup_answers"]:
            lost = fg["dup_answers"] * fg["readings_per_message"]
            print(f"  DATA LOSS: the emulator answered {fg['dup_answers']:,} messages 2.04 as "
                  "duplicates without processing them (their message ID had been used within "
                  "247 s), and coapgate took those answers as delivery: about "
                  f"{lost:,.0f} readings acknowledged in the queue and never delivered.")
        elif fg["mid_reused"]:
            print(f"  NOTE: coapgate reused CoAP message IDs within EXCHANGE_LIFETIME (247 s): "
                  f"{fg['mid_reused']:,} messages here. 1NCE OS answers such a message as a "
                  "duplicate (2.04) without forwarding it, so at this rate against the real "
                  "endpoint those readings would be lost while coapgate counts them as "
                  "delivered. Run with --keep-dedup to see it.")
    if gw and gw.get("profile"):
        print()
        print(f"perf profile of coapgated over the window (self time by function, "
              f"-F {args.perf_freq}, --call-graph {args.perf_callgraph}):")
        print(gw["profile"])
    print()
    print("Targets (the issue): >= 100,000 readings/s end to end, >= 30 x the Node client's "
          "readings/s, <= 1/4 of its wire bytes per reading.")
    if fg:
        how = ""
        if args.rate:
            how = (f" (input at {args.rate:,}/s: "
                   f"{'kept up' if kept_up(args, fg) else 'did NOT keep up'}: within 2 % "
                   "and no reading older than 5 s)")
        print(f"  >= 100,000 readings/s:  {n(fg['rate'])}/s{how}  {verdict(fg['rate_met'])}")
    if rate_ratio:
        print(f"  >= 30 x Node's rate:    {n(fg['rate'])} / {n(fn['rate'])} = x {rate_ratio:.1f}  "
              f"{verdict(rate_ratio >= TARGET_RATE_RATIO)}")
    if bytes_ratio:
        print(f"  <= 1/4 of Node's bytes: {fg['wire_per_reading']:.2f} / "
              f"{fn['wire_per_reading']:.2f} = x {bytes_ratio:.3f}  "
              f"{verdict(bytes_ratio <= TARGET_BYTES_RATIO)}")
    return fg, fn


def summary(args, reps):
    """The repetitions side by side and their medians."""
    print()
    print(f"---- summary of {len(reps)} repetitions " + "-" * 66)
    heads = ("", "coapgate/s", "Node/s", "ratio", "coapgate B/rdg", "Node B/rdg", "ratio",
             "load at start (gw, node)")
    rows = []
    for i, (fg, fn, lg, ln) in enumerate(reps, 1):
        rows.append((f"#{i}", n(fg["rate"]) if fg else "-", n(fn["rate"]) if fn else "-",
                     f"x {fg['rate'] / fn['rate']:.1f}" if fg and fn else "-",
                     n(fg["wire_per_reading"], 2) if fg else "-",
                     n(fn["wire_per_reading"], 2) if fn else "-",
                     f"x {fg['wire_per_reading'] / fn['wire_per_reading']:.3f}" if fg and fn
                     else "-", f"{lg}, {ln}"))

    def med(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    gr = med([fg["rate"] if fg else None for fg, _, _, _ in reps])
    nr = med([fn["rate"] if fn else None for _, fn, _, _ in reps])
    gb = med([fg["wire_per_reading"] if fg else None for fg, _, _, _ in reps])
    nb = med([fn["wire_per_reading"] if fn else None for _, fn, _, _ in reps])
    rr = med([fg["rate"] / fn["rate"] if fg and fn else None for fg, fn, _, _ in reps])
    br = med([fg["wire_per_reading"] / fn["wire_per_reading"] if fg and fn else None
              for fg, fn, _, _ in reps])
    rows.append(("median", n(gr), n(nr), f"x {rr:.1f}" if rr else "-", n(gb, 2), n(nb, 2),
                 f"x {br:.3f}" if br else "-", ""))
    widths = [max(len(str(r[i])) for r in rows + [heads]) for i in range(len(heads))]
    print("  ".join(h.ljust(w) for h, w in zip(heads, widths)).rstrip())
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    print("The ratios are of each repetition's pair of runs (run back to back); the median "
          "ratio is the figure to compare with the targets:")
    if gr is not None:
        met = all(fg["rate_met"] for fg, _, _, _ in reps if fg)
        met = met if args.rate else gr >= TARGET_RATE
        print(f"  >= 100,000 readings/s:  median {n(gr)}/s  {verdict(met)}")
    if rr:
        print(f"  >= 30 x Node's rate:    median x {rr:.1f}  {verdict(rr >= TARGET_RATE_RATIO)}")
    if br:
        print(f"  <= 1/4 of Node's bytes: median x {br:.3f}  {verdict(br <= TARGET_BYTES_RATIO)}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", type=Path, default=SOURCE_DIR / "build",
                   help="the build directory (default: build)")
    p.add_argument("--duration", type=float, default=30,
                   help="seconds of measurement window per run (default 30)")
    p.add_argument("--warmup", type=float, default=5,
                   help="coapgate: seconds after the first delivery before the window (default 5)")
    p.add_argument("--node-warmup", type=float, default=2,
                   help="Node: seconds after the first delivery before the window (default 2)")
    p.add_argument("--rate", type=int, default=0,
                   help="input readings/s; 0 (default): a backlog as fast as possible")
    p.add_argument("--count", type=int, default=None,
                   help="readings the input emits (default: with --rate 0, "
                        f"{BACKLOG_RATE:,}/s for the whole run; else unlimited)")
    p.add_argument("--timestamp-step", default=None,
                   help="coapgate's readings are timestamped start + k x this (e.g. 1s, as "
                        "a logger replaying a backlog) instead of now")
    p.add_argument("--max-in-flight", type=int, default=None,
                   help="uplink.max_in_flight (default: the daemon's)")
    p.add_argument("--linger", default=None, help="uplink.linger, e.g. 100ms")
    p.add_argument("--lookahead", type=int, default=None, help="uplink.lookahead")
    p.add_argument("--max-payload", type=int, default=None, help="uplink.max_payload")
    p.add_argument("--no-seq", action="store_true", help="uplink.sequence_numbers = false")
    p.add_argument("--mid-exhaustion", default="new_session",
                   help="uplink.mid_exhaustion: what coapgate does after 65536 messages in "
                        "247 s (default here: new_session; the daemon's default is wait)")
    p.add_argument("--keep-dedup", action="store_true",
                   help="leave the emulator's duplicate detection as 1NCE documents it: a "
                        "message ID reused within 247 s is answered but not processed "
                        "(default: defeated by moving its clock, reuse only counted)")
    p.add_argument("--repeat", type=int, default=1,
                   help="run the pair (coapgate, then Node) this many times and print the "
                        "medians (default 1)")
    p.add_argument("--skip-node", action="store_true", help="only the coapgate run")
    p.add_argument("--skip-coapgate", action="store_true", help="only the Node run")
    p.add_argument("--perf", action="store_true",
                   help="profile coapgated during the window (perf record -g)")
    p.add_argument("--perf-freq", type=int, default=499, help="perf sampling frequency")
    p.add_argument("--perf-callgraph", default="dwarf",
                   help="perf record --call-graph mode (default dwarf: the build has no "
                        "frame pointers)")
    p.add_argument("--perf-lines", type=int, default=40, help="profile lines to print")
    p.add_argument("--start-timeout", type=float, default=30,
                   help="seconds to wait for the first delivery")
    p.add_argument("--workdir", type=Path, default=None,
                   help="scratch directory (default: a new one under /var/tmp, on the disk)")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = p.parse_args()

    args.build = args.build.resolve()
    nce.EMULATOR = str(args.build / "tests" / "emulator" / "nce-emulator")
    for path in (nce.EMULATOR, args.build / "daemon" / "coapgated",
                 args.build / "test-plugins" / "numbers.so"):
        if not os.access(path, os.R_OK):
            raise SystemExit(f"{path} is missing: build the tree first "
                             f"(cmake --build {args.build})")
    if args.duration < 30:
        print(f"note: --duration {args.duration:g} is shorter than the 30 s the issue asks for",
              file=sys.stderr)
    created = args.workdir is None
    if created:
        args.workdir = Path(tempfile.mkdtemp(prefix="uplink-bench.", dir="/var/tmp"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    info = machine()
    reps = []
    try:
        header(args, info)
        sys.stdout.flush()
        for i in range(1, args.repeat + 1):
            gw = node = None
            if not args.skip_coapgate:
                print(f"[{i}/{args.repeat}] coapgate run: until the first delivery, "
                      f"{args.warmup:g} s warm-up, {args.duration:g} s window ...",
                      file=sys.stderr)
                gw = run_coapgate(args, i)
            if not args.skip_node:
                print(f"[{i}/{args.repeat}] Node.js run: until the first delivery, "
                      f"{args.node_warmup:g} s warm-up, {args.duration:g} s window ...",
                      file=sys.stderr)
                node = run_node(args, i)
            title = "results" if args.repeat == 1 else f"repetition {i} of {args.repeat}"
            fg, fn = report(args, gw, node, title)
            sys.stdout.flush()
            reps.append((fg, fn, gw["s0"].load.split()[0] if gw else "-",
                         node["s0"].load.split()[0] if node else "-"))
        if args.repeat > 1:
            summary(args, reps)
    finally:
        if args.keep:
            print(f"scratch directory kept: {args.workdir}")
        elif created:
            shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
