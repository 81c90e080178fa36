# SPDX-License-Identifier: MIT
"""kill -9 torture of the disk queue (queue design 7.4), against the real daemon.

The daemon runs in normal mode (every reading goes to <state_dir>/queue) with the
`counter` test plugin at a high rate and a small queue (1 MiB segments, so a segment
rolls every few tens of milliseconds at full speed), and is SIGKILLed again and again
at random moments. Run k's counter starts at n = k * 10^9, so every reading names the
run that made it, and writes the highest n the daemon accepted to its progress file
(no fsync needed: a SIGKILL does not lose the page cache). While a run lasts, the test
samples that file, which tells how many readings were handed over by when.

Each iteration picks one of these at random:
  paced  interval "100us" (about 8,000 readings/s): commits driven by commit_interval;
  burst  interval "0" with a count of up to 100,000: commits driven by commit_bytes,
         segment rolls, then idle;
  flood  interval "0" without a limit (about 500,000/s when the machine is idle);
  early  like paced, but killed 0-50 ms after the process starts, before or during
         recovery of the previous run's tail, without waiting for readiness.
All but `early` wait for the "coapgated started" line and are killed 0-1.5 s later.
At the end the daemon runs once more, cleanly, and is stopped with SIGTERM; then
`coapgatectl queue verify DIR` and `coapgatectl queue dump DIR` read the queue.

What is asserted:
  * verify exits 0 and reports no damage; no run logged an error or a warning (no
    readings lost, nothing quarantined, the queue never full);
  * seqs strictly increase over the whole dump, and the runs appear in order;
  * every reading's fields are the counter's (half = n/2, even, text = "n=<n>", topic);
  * for each run k, the n present are exactly start_k..m_k (a gap-free prefix: nothing
    duplicated, reordered, or never emitted), with m_k <= progress_k + 1 (the kill may
    fall between cg_emit() returning and the progress write);
  * the lost tail is bounded: every reading accepted at least
    W = 2 * commit_interval + 300 ms before the SIGKILL is on disk. The bound is the
    rate measured in that run, as the progress samples saw it, times W: m_k must reach
    the last sample taken W or more before the kill. A reading waits at most one
    commit_interval for its batch to fall due, then for the commit in progress (a
    write, an fdatasync and sometimes a segment roll: a preallocation, two fdatasyncs
    and a directory fsync) and its own write and fdatasync; the second commit_interval
    covers those, and the 300 ms are for a loaded two-core machine, where ctest -j2
    runs other daemons and the virtio disk's flushes can take tens of milliseconds;
  * the clean final run loses nothing: m = progress.

Short mode (CI): 20 iterations, 15-30 s. Long mode: set COAPGATE_TORTURE_ITERATIONS
(for example 1000) and run pytest directly, since ctest stops a test after 600 s:

    COAPGATED=build/daemon/coapgated COAPGATE_TEST_PLUGIN_DIR=build/test-plugins \\
    COAPGATE_TORTURE_ITERATIONS=1000 python3 -m pytest -q -s \\
        tests/integration/test_queue_torture.py

COAPGATE_TORTURE_SEED repeats the random choices of a run (the seed is printed and is
part of every failure message); COAPGATECTL names the coapgatectl binary (default:
ctl/coapgatectl next to the daemon's build directory). See docs/TESTING.md."""

import functools
import os
import random
import re
import resource
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import COAPGATED, TEST_PLUGIN_DIR

COAPGATECTL = os.environ.get("COAPGATECTL") or str(
    Path(COAPGATED).resolve().parents[1] / "ctl" / "coapgatectl")
ITERATIONS = int(os.environ.get("COAPGATE_TORTURE_ITERATIONS", "20"))
SEED = int(os.environ.get("COAPGATE_TORTURE_SEED", str(random.SystemRandom().randrange(2**32))))

RUN_BASE = 10**9  # run k's first n
COMMIT_INTERVAL = 0.1
ALLOWANCE = 0.3
WINDOW = 2 * COMMIT_INTERVAL + ALLOWANCE
MAX_RUN_TIME = 1.5
SAMPLE_PERIOD = 0.005

# The uplink would acknowledge (and so delete) what this test counts on disk.
NO_UPLINK = "uplink: { enabled = false; };\n"

QUEUE = f"""queue: {{
	segment_size = "1M";
	commit_bytes = "64K";
	commit_interval = "{int(COMMIT_INTERVAL * 1000)}ms";
	max_size = "1T";
	min_free = 0;
	when_full = "drop_newest";
	block_timeout = "60s";
}};
"""

# One line of `coapgatectl queue dump` for a counter reading.
DUMP_LINE = re.compile(r'\{"seq":(\d+),"topic":"([^"]*)","ts":(\d+),"fields":\{"n":(\d+),'
                       r'"half":([-+0-9.eE]+),"even":(true|false),"text":"n=(\d+)"\}\}\n')
# A daemon log line that means the queue lost, refused or distrusted something.
BAD_LOG = re.compile(r"^(error|warning|crit|alert|emerg):")


def read_progress(path):
    """The highest n the counter's daemon accepted, or None when it accepted none."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return int(text) if text.strip() else None


class Run:
    def __init__(self, k, mode):
        self.k = k
        self.mode = mode
        self.start = k * RUN_BASE
        self.samples = []  # (monotonic time the read had returned by, value)
        self.t_ready = self.t_kill = None
        self.progress = None  # last accepted n, start - 1 when none
        self.guaranteed = None  # every n <= this was accepted >= WINDOW before the kill
        self.wall = None  # (time.time() before the start, after the end), for timestamps
        self.log = []

    def sample(self, path):
        # Two reads in a row, kept only when they agree in order: a read that raced the
        # plugin's pwrite() could see a torn number.
        a = read_progress(path)
        t = time.monotonic()
        b = read_progress(path)
        if a is not None and b is not None and a <= b:
            self.samples.append((t, a))

    def describe(self, m=None):
        rate = 0.0
        if self.t_ready and self.t_kill and self.t_kill > self.t_ready:
            rate = (self.progress - self.start + 1) / (self.t_kill - self.t_ready)
        lost = "" if m is None else f", m {m}, lost {self.progress - m}"
        return (f"run {self.k} ({self.mode}): progress {self.progress}, guaranteed "
                f"{self.guaranteed}{lost}, {rate:.0f} readings/s")


def config(tmp_path, run, interval, count):
    return (f'daemon: {{ state_dir = "{tmp_path / "state"}"; log_level = "info"; }};\n'
            + NO_UPLINK + QUEUE
            + f'inputs = ( {{ name = "c"; plugin = "counter"; interval = "{interval}"; '
              f'count = {count}; start = {run.start}L; '
              f'progress_file = "{tmp_path / f"progress-{run.k}"}"; }} );\n')


def wait_started(d):
    """The time the "coapgated started" line arrived; fails at once if d exits."""
    deadline = time.monotonic() + 30
    while True:
        try:
            t, _ = d.wait_for(lambda line: "coapgated started" in line, timeout=0.2)
            return t
        except AssertionError:
            if d.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"seed {SEED}: the daemon did not start (exit status "
                                     f"{d.proc.poll()}):\n"
                                     + "\n".join(line for _, line in d.stderr)) from None


def killed_run(daemon, write_config, tmp_path, rng, k):
    mode = rng.choices(["paced", "burst", "flood", "early"], weights=[45, 35, 10, 10])[0]
    interval, count = {"paced": ("100us", 0), "early": ("100us", 0), "flood": ("0", 0),
                       "burst": ("0", rng.randint(1, 100_000))}[mode]
    run = Run(k, mode)
    progress = tmp_path / f"progress-{k}"
    path = write_config(config(tmp_path, run, interval, count), name=f"run-{k}.conf")
    wall_start = time.time()
    d = daemon(["-c", str(path), "-P", TEST_PLUGIN_DIR])
    if mode == "early":
        time.sleep(rng.uniform(0, 0.05))
    else:
        run.t_ready = wait_started(d)
        kill_at = time.monotonic() + rng.uniform(0, MAX_RUN_TIME)
        while True:
            run.sample(progress)
            left = kill_at - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(SAMPLE_PERIOD, left))
    run.t_kill = time.monotonic()
    d.signal(signal.SIGKILL)
    assert d.wait(timeout=30) == -signal.SIGKILL, f"seed {SEED}: run {k} did not die by SIGKILL"
    run.wall = (wall_start, time.time())
    run.log = [line for _, line in d.stderr]
    accepted = read_progress(progress)
    run.progress = run.start - 1 if accepted is None else accepted
    run.guaranteed = max([v for t, v in run.samples if t <= run.t_kill - WINDOW],
                         default=run.start - 1)
    return run


def clean_run(daemon, write_config, tmp_path, k):
    run = Run(k, "clean")
    path = write_config(config(tmp_path, run, "100us", 0), name=f"run-{k}.conf")
    wall_start = time.time()
    d = daemon(["-c", str(path), "-P", TEST_PLUGIN_DIR])
    run.t_ready = wait_started(d)
    time.sleep(0.3)
    run.t_kill = time.monotonic()
    d.signal(signal.SIGTERM)
    assert d.wait(timeout=30) == 0, f"seed {SEED}: the clean run did not exit 0:\n" + \
        "\n".join(l for _, l in d.stderr)
    run.wall = (wall_start, time.time())
    run.log = [line for _, line in d.stderr]
    accepted = read_progress(tmp_path / f"progress-{k}")
    run.progress = run.start - 1 if accepted is None else accepted
    run.guaranteed = run.progress  # a clean stop commits everything
    assert run.progress >= run.start, f"seed {SEED}: the clean run emitted nothing"
    return run


def read_dump(queue_dir, runs):
    """Stream `coapgatectl queue dump`; returns {k: (first n, last n, count)} after
    checking order, seqs and fields line by line."""
    by_k = {r.k: r for r in runs}
    found = {}
    prev_seq = 0
    prev_k = 0
    lines = 0
    proc = subprocess.Popen([COAPGATECTL, "queue", "dump", str(queue_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            bufsize=1 << 20)
    try:
        for line in proc.stdout:
            lines += 1
            m = DUMP_LINE.fullmatch(line)
            assert m, f"seed {SEED}: dump line {lines} is not a counter reading: {line!r}"
            seq, topic, ts, n = int(m[1]), m[2], int(m[3]), int(m[4])
            k = n // RUN_BASE
            where = f"seed {SEED}: dump line {lines} (seq {seq}, n {n})"
            assert seq > prev_seq, f"{where}: seq not above the previous {prev_seq}"
            assert k in by_k, f"{where}: no run made this n"
            assert k >= prev_k, f"{where}: run {k} after run {prev_k}"
            assert topic == "c" and float(m[5]) == n / 2 and \
                (m[6] == "true") == (n % 2 == 0) and int(m[7]) == n, f"{where}: {line!r}"
            wall = by_k[k].wall
            assert wall[0] * 1000 - 1000 <= ts <= wall[1] * 1000 + 1000, \
                f"{where}: timestamp {ts} outside its run {wall}"
            if k in found:
                first, last, count = found[k]
                assert n == last + 1, f"{where}: run {k} jumps from n {last} to {n}"
                found[k] = (first, n, count + 1)
            else:
                assert n == by_k[k].start, \
                    f"{where}: run {k} starts at n {n}, not {by_k[k].start}"
                found[k] = (n, n, 1)
            prev_seq, prev_k = seq, k
        err = proc.stderr.read()
    finally:
        proc.stdout.close()
        rc = proc.wait(timeout=600)
    assert rc == 0, f"seed {SEED}: coapgatectl queue dump exited {rc}: {err}"
    return found, lines


def test_kill9_torture(daemon, write_config, tmp_path):
    print(f"\nqueue torture: {ITERATIONS} iterations, seed {SEED} "
          f"(COAPGATE_TORTURE_SEED={SEED} repeats them)")
    assert os.access(COAPGATECTL, os.X_OK), f"no coapgatectl at {COAPGATECTL}"
    rng = random.Random(SEED)
    t0 = time.monotonic()
    runs = [killed_run(daemon, write_config, tmp_path, rng, k)
            for k in range(1, ITERATIONS + 1)]
    runs.append(clean_run(daemon, write_config, tmp_path, ITERATIONS + 1))
    t_runs = time.monotonic() - t0

    # What is on disk first: a wrong log line is easier to judge knowing that.
    queue_dir = tmp_path / "state" / "queue"
    found, lines = read_dump(queue_dir, runs)
    worst = 0.0
    for run in runs:
        first, m, count = found.get(run.k, (run.start, run.start - 1, 0))
        assert count == m - first + 1  # read_dump checked the run is contiguous
        what = f"seed {SEED}: {run.describe(m)}"
        assert m <= run.progress + 1, f"{what}: readings on disk that were never accepted"
        assert m >= run.guaranteed, \
            f"{what}: lost readings accepted more than {WINDOW:.1f} s before the kill"
        if run.mode == "clean":
            assert m == run.progress, f"{what}: a clean stop lost readings"
        if run.progress > m and run.t_ready:
            rate = (run.progress - run.start + 1) / (run.t_kill - run.t_ready)
            worst = max(worst, (run.progress - m) / rate)

    verify = subprocess.run([COAPGATECTL, "queue", "verify", str(queue_dir)],
                            capture_output=True, text=True, timeout=600)
    damage = [line for line in verify.stdout.splitlines() if line.startswith("damage:")]
    assert verify.returncode == 0 and not damage, \
        f"seed {SEED}: verify exited {verify.returncode}:\n{verify.stdout}{verify.stderr}"

    for run in runs:
        bad = [line for line in run.log if BAD_LOG.match(line)]
        assert not bad, f"seed {SEED}: {run.describe()} logged:\n" + "\n".join(run.log)

    print(f"queue torture: {lines} readings in {len(runs)} runs checked; runs took "
          f"{t_runs:.1f} s, all {time.monotonic() - t0:.1f} s; largest lost tail "
          f"{worst * 1000:.0f} ms of readings at the run's average rate (bound: "
          f"{WINDOW * 1000:.0f} ms)")


def test_restarts_without_readings_lose_nothing(daemon, write_config, tmp_path):
    # Found by the torture: a run that ends (killed or stopped) before its first commit
    # leaves its new, empty tail segment behind. Each restart jumps seqs past the
    # checkpoint's reservation (2^20 ahead), and seqs skipped that way were never issued.
    # Deterministic here: one run with 5 readings, then runs with the input disabled.
    state = tmp_path / "state"
    head = f'daemon: {{ state_dir = "{state}"; }};\n' + NO_UPLINK
    progress = tmp_path / "progress"
    with_input = write_config(head + 'inputs = ( { name = "c"; plugin = "counter"; '
                              f'interval = "0"; count = 5; progress_file = "{progress}"; }} );\n',
                              name="with.conf")
    without = write_config(head + 'inputs = ( { name = "c"; plugin = "counter"; '
                           'enabled = false; } );\n', name="without.conf")
    logs = []
    for path in (with_input, without, without, without):
        d = daemon(["-c", str(path), "-P", TEST_PLUGIN_DIR])
        wait_started(d)
        deadline = time.monotonic() + 10
        while path == with_input and read_progress(progress) != 5:
            assert time.monotonic() < deadline, "the counter did not emit 5 readings"
            time.sleep(0.01)
        assert d.stop() == 0  # a clean stop commits the 5 readings
        logs += [line for _, line in d.stderr]
    bad = [line for line in logs if BAD_LOG.match(line)]
    assert not bad, "\n".join(logs)
    verify = subprocess.run([COAPGATECTL, "queue", "verify", str(state / "queue")],
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    dump = subprocess.run([COAPGATECTL, "queue", "dump", str(state / "queue")],
                          capture_output=True, text=True, timeout=60)
    assert [int(m[4]) for m in map(DUMP_LINE.fullmatch, dump.stdout.splitlines(True))] == \
        [1, 2, 3, 4, 5]


def test_more_segments_than_open_files(daemon, write_config, tmp_path):
    # Every start leaves one more small sealed segment (the previous tail, truncated at
    # its end), and until readings are acknowledged nothing deletes them: max_size does
    # not bound their number. The queue holds an fd per segment, so past the soft
    # RLIMIT_NOFILE (1024 under systemd) the daemon could not start at all. Here: 24
    # starts with one reading each, then a start with a soft limit of 32 (the daemon
    # itself needs about 14). The hard limit stays, so raising the soft one is fair.
    state = tmp_path / "state"
    progress = tmp_path / "progress"
    runs = 24
    for k in range(1, runs + 1):
        path = write_config(f'daemon: {{ state_dir = "{state}"; }};\n' + NO_UPLINK +
                            f'inputs = ( {{ name = "c"; plugin = "counter"; interval = "0"; '
                            f'count = 1; start = {k}; progress_file = "{progress}"; }} );\n',
                            name=f"run-{k}.conf")
        d = daemon(["-c", str(path), "-P", TEST_PLUGIN_DIR])
        wait_started(d)
        deadline = time.monotonic() + 10
        while read_progress(progress) != k:
            assert time.monotonic() < deadline, f"run {k} emitted nothing"
            time.sleep(0.01)
        assert d.stop() == 0
    segments = len(list((state / "queue").glob("seg-*.q")))
    assert segments >= runs, segments
    idle = write_config(f'daemon: {{ state_dir = "{state}"; }};\n' + NO_UPLINK +
                        'inputs = ( { name = "c"; plugin = "counter"; enabled = false; } );\n',
                        name="idle.conf")

    def limit():  # in the child, before exec
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (32, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    # The daemon fixture still tracks and stops the process; only its Popen gets the
    # limit.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(subprocess, "Popen", functools.partial(subprocess.Popen, preexec_fn=limit))
        d = daemon(["-c", str(idle), "-P", TEST_PLUGIN_DIR])
    wait_started(d)
    assert d.stop() == 0
    logs = [line for _, line in d.stderr]
    assert not [line for line in logs if BAD_LOG.match(line)], "\n".join(logs)
    dump = subprocess.run([COAPGATECTL, "queue", "dump", str(state / "queue")],
                          capture_output=True, text=True, timeout=60)
    assert [int(m[4]) for m in map(DUMP_LINE.fullmatch, dump.stdout.splitlines(True))] == \
        list(range(1, runs + 1))
