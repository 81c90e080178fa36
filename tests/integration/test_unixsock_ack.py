# SPDX-License-Identifier: MIT
"""Ack mode of the `unixsock` input (plugins/unixsock/README.md, "Answers"): with
`ack = true`, a stream client gets `ok <n>` once n more of its readings are durable
(written to the disk queue and fdatasynced), and an `error <reason>` line for each
rejected message, so that the ok counts of a client that sent N messages and saw E
errors add up to N - E.

  * the counts add up, per connection, with skipped and rejected lines mixed in; a
    client that half-closes still hears every answer; the README's socat example;
  * an ok never comes before the commit that makes its readings durable, and what it
    covers is in the queue at once (and after a SIGKILL);
  * in ack mode no answer is ever dropped: parsing pauses while 4 KiB of answers
    wait and resumes when they are out; a client that does not read its answers is
    held back, without holding back the others;
  * the kill -9 loop: coapgated with ack = true and several clients sending readings
    with unique ids is SIGKILLed at random moments and restarted (replacing its own
    stale socket each time); at the end `coapgatectl queue verify` and `dump` must
    show every reading that got an ok, none twice, and none that was never sent.

The kill loop's short mode (CI) runs 10 iterations in 5-10 s. Long mode: set
COAPGATE_UNIXSOCK_KILL_ITERATIONS and run pytest directly (ctest stops a test after
600 s), for example

    COAPGATED=build/daemon/coapgated COAPGATE_PLUGIN_DIR=build/plugins \\
    COAPGATE_UNIXSOCK_KILL_ITERATIONS=500 python3 -m pytest -q -s \\
        tests/integration/test_unixsock_ack.py -k kill

COAPGATE_UNIXSOCK_KILL_SEED repeats a run's random choices (the seed is printed and is
part of every failure message; the moments of the kills still vary with the machine).
COAPGATECTL names the coapgatectl binary (default: ctl/coapgatectl in the daemon's
build directory)."""

import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import PLUGIN_DIR
from unixsock import gate, sockdir  # noqa: F401  (fixtures)
from unixsock import (TOPIC, answer_lines, connect_stream, json_line, queue_dump, queue_verify,
                      typed, wait_until)

pytestmark = pytest.mark.skipif(not (Path(PLUGIN_DIR) / "unixsock.so").exists(),
                                reason="unixsock.so is not built")

ITERATIONS = int(os.environ.get("COAPGATE_UNIXSOCK_KILL_ITERATIONS", "10"))
SEED = int(os.environ.get("COAPGATE_UNIXSOCK_KILL_SEED",
                          str(random.SystemRandom().randrange(2**32))))

OK = re.compile(r"^ok ([1-9][0-9]*)$")


def read_answers(c, until, timeout=30):
    """Read answer lines until until(oks, errors) is true; returns (ok sum, error
    lines). Every line must be `ok <n>` or `error <reason>`."""
    oks, errors = 0, []
    deadline = time.monotonic() + timeout
    while not until(oks, errors):
        line = c.answer(timeout=max(0.1, deadline - time.monotonic()))
        m = OK.match(line)
        if m:
            oks += int(m[1])
        else:
            assert line.startswith("error ") and len(line) > 6, f"not an answer: {line!r}"
            errors.append(line)
    return oks, errors


def ack_gate(gate, **kwargs):
    """Normal mode (the disk queue, no uplink), JSON, ack = true."""
    return gate(test=False, format="json", ack=True, **kwargs)


# --------------------------------------------------------------------------------------
# The counts


def test_ok_counts_add_up_to_messages_minus_errors(gate):
    g = ack_gate(gate, max_message="1K")
    c = g.connect()
    rng = random.Random(1)
    lines, good_ids, bad = [], [], 0
    for i in range(600):
        roll = rng.random()
        if roll < 0.05:
            lines.append(rng.choice(["", "   ", "\t\r"]))  # skipped: no answer
        elif roll < 0.10:
            lines.append(rng.choice(["{", '{"a": null}', "{}", '{"topic": "a//b", "v": 1}',
                                     '{"s": "' + "x" * 2000 + '"}']))  # rejected
            bad += 1
        else:
            lines.append(json_line(id=i))
            good_ids.append(i)
    c.send("".join(line + "\n" for line in lines))
    oks, errors = read_answers(c, lambda o, e: o + len(e) >= len(good_ids) + bad)
    assert (oks, len(errors)) == (len(good_ids), bad), errors
    assert "error message longer than 1024 bytes" in errors
    # Nothing was left unanswered or answered twice: the next reading is alone in its ok.
    c.send_line(json_line(id=10000))
    assert c.answer() == "ok 1"
    assert c.pending() == b""
    ids = [r["fields"]["id"] for r in g.dump()]
    assert ids == good_ids + [10000]


def test_oks_count_per_connection(gate):
    g = ack_gate(gate)
    a, b = g.connect(), g.connect()
    for i in range(30):
        a.send_line(json_line(a=i))
    for i in range(70):
        b.send_line(json_line(b=i))
    a.send_line("not json")
    for i in range(30, 50):
        a.send_line(json_line(a=i))
    oks_a, errors_a = read_answers(a, lambda o, e: o + len(e) >= 51)
    oks_b, errors_b = read_answers(b, lambda o, e: o + len(e) >= 70)
    assert (oks_a, len(errors_a), oks_b, errors_b) == (50, 1, 70, [])
    assert a.pending() == b"" and b.pending() == b""


def test_ack_in_test_mode_follows_the_printed_reading(gate):
    # In --test, a printed reading counts as durable.
    g = gate(test=True, format="influx", ack=True)
    c = g.connect()
    c.send_line("m v=1i")
    assert c.answer() == "ok 1"
    # The daemon flushed the line into its stdout before the ok left; this test's
    # thread that reads that pipe may not have taken it yet, so allow it a moment.
    assert g.readings(1, timeout=2)[0]["fields"] == {"v": 1}, \
        "ok before the reading was printed"


def test_half_closed_client_still_gets_its_oks(gate):
    # A producer that shuts down its sending side when done (socat does) still hears
    # about every message, then the input closes the connection.
    g = ack_gate(gate)
    c = g.connect()
    c.send("".join(json_line(i=i) + "\n" for i in range(100)) + "{\n")
    c.sock.shutdown(socket.SHUT_WR)
    rest = c.wait_eof(timeout=20).decode()
    lines = rest.splitlines()
    oks = sum(int(m[1]) for m in map(OK.match, lines) if m)
    errors = [line for line in lines if not OK.match(line)]
    assert (oks, len(errors)) == (100, 1), rest
    assert errors[0].startswith("error ")


def test_readme_example_with_socat(gate):
    g = ack_gate(gate)
    wait_until(g.path.exists, 10, "the socket")
    r = subprocess.run(f"echo '{{\"temperature\": 21.5, \"door\": true}}' | "
                       f"socat -t 5 - UNIX-CONNECT:{g.path}", shell=True,
                       capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stdout) == (0, "ok 1\n"), r.stderr
    [reading] = g.dump()
    assert reading["topic"] == TOPIC
    assert typed(reading["fields"]) == typed({"temperature": 21.5, "door": True})


# --------------------------------------------------------------------------------------
# Durability


COMMIT_INTERVAL = 1.0


def test_ok_comes_only_after_the_commit(gate):
    # A lone reading waits commit_interval for its batch to fall due (commit_bytes is
    # far away), so an ok that came sooner would not be about durability.
    g = ack_gate(gate, queue=dict(commit_interval=f"{int(COMMIT_INTERVAL * 1000)}ms"))
    c = g.connect()
    for k in range(3):
        t0 = time.monotonic()
        c.send_line(json_line(k=k))
        assert c.answer(timeout=10) == "ok 1"
        waited = time.monotonic() - t0
        assert waited >= 0.95 * COMMIT_INTERVAL, f"ok after {waited:.3f} s"
        # What an ok covers is on disk already: dump reads the files.
        assert [r["fields"]["k"] for r in g.dump()] == list(range(k + 1))
    # And survives a SIGKILL right after its ok.
    c.send_line(json_line(k=3))
    assert c.answer(timeout=10) == "ok 1"
    g.d.signal(signal.SIGKILL)
    g.d.wait(timeout=10)
    assert [r["fields"]["k"] for r in queue_dump(g.state_dir)] == [0, 1, 2, 3]


def test_many_errors_in_one_write_are_all_answered(gate):
    # Answers are read as they come; the input pauses parsing whenever 4 KiB of them
    # wait, and must pick up again when they are out.
    g = ack_gate(gate)
    c = g.connect()
    answers = {"ok": 0, "error": 0}

    def read():
        try:
            while not answers["ok"]:
                line = c.answer(timeout=20)
                answers["ok" if OK.match(line) else "error"] += 1
        except AssertionError:
            pass  # stalled: the counts so far tell

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    n_bad = 1000
    c.send(b"x\n" * n_bad + json_line(last=1).encode() + b"\n")
    reader.join(timeout=30)
    assert answers == {"ok": 1, "error": n_bad}, f"{answers}: the connection stalled"


def test_client_not_reading_its_answers_is_held_back_not_dropped(gate):
    # In ack mode each message is answered exactly once: an answer may wait, never go.
    g = ack_gate(gate)
    deaf = g.connect()
    n_bad = 40000  # some 2 MB of error lines: far beyond the socket buffers and 4 KiB
    wrote = threading.Event()

    def write():
        deaf.sock.sendall(b"x\n" * n_bad + json_line(last=1).encode() + b"\n")
        wrote.set()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    # The others are served meanwhile.
    other = g.connect()
    for i in range(20):
        other.send_line(json_line(other=i))
    oks, errors = read_answers(other, lambda o, e: o + len(e) >= 20)
    assert (oks, errors) == (20, [])
    # Now the deaf client reads: every error is there, then the ok of its last line.
    oks, errors = read_answers(deaf, lambda o, e: o >= 1, timeout=20)
    assert (oks, len(errors)) == (1, n_bad)
    assert wrote.wait(timeout=30)
    assert deaf.pending() == b""


# --------------------------------------------------------------------------------------
# kill -9 in a loop


# Run k's client c sends readings {"k": k, "c": c, "i": 0, 1, ...}: unique ids.
CLIENTS = 3
MAX_RUN_TIME = 1.0


class Producer:
    """One connection of one run: a writer thread sends readings in small batches, a
    reader thread sums the oks. `handed` counts readings passed to send() (some may
    not have reached the daemon), `acked` the readings the oks covered."""

    def __init__(self, path, k, c, rng):
        self.k, self.c = k, c
        self.handed = 0
        self.acked = 0
        self.too_many_acked = None
        self.errors = []
        self.rng = random.Random(rng.random())
        self.stop = threading.Event()
        self.sock = connect_stream(path, timeout=10)
        self.threads = [threading.Thread(target=self._write, daemon=True),
                        threading.Thread(target=self._read, daemon=True)]
        for t in self.threads:
            t.start()

    def reading(self, i):
        return json_line(k=self.k, c=self.c, i=i).encode() + b"\n"

    def _write(self):
        try:
            while not self.stop.is_set():
                n = self.rng.randint(1, 30)
                batch = b"".join(self.reading(self.handed + j) for j in range(n))
                self.handed += n  # before send(): an ok may come before it returns
                self.sock.sendall(batch)
                time.sleep(self.rng.uniform(0, 0.003))
        except OSError:
            pass  # the daemon was killed

    def _read(self):
        try:
            for line in answer_lines(self.sock, 4096):
                m = OK.match(line.decode(errors="replace"))
                if not m:
                    self.errors.append(line)
                    continue
                self.acked += int(m[1])
                if self.acked > self.handed:
                    self.too_many_acked = (self.acked, self.handed)
        except OSError:
            pass

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)
        self.sock.close()


def kill_run(gate, state_dir, path, rng, k):
    early = rng.random() < 0.1
    g = ack_gate(gate, state_dir=state_dir, path=path, name=f"run-{k}", wait=not early)
    producers = []
    if early:
        # Killed while starting: recovering the previous tail or creating the socket.
        time.sleep(rng.uniform(0, 0.05))
    else:
        producers = [Producer(path, k, c, rng) for c in range(CLIENTS)]
        time.sleep(rng.uniform(0.05, MAX_RUN_TIME))
    g.d.signal(signal.SIGKILL)
    assert g.d.wait(timeout=30) == -signal.SIGKILL, f"seed {SEED}: run {k} did not die"
    for p in producers:
        p.finish()
    return g, producers


def test_kill9_loop_keeps_every_acknowledged_reading(gate, tmp_path, sockdir):
    print(f"\nunixsock kill loop: {ITERATIONS} iterations, seed {SEED} "
          f"(COAPGATE_UNIXSOCK_KILL_SEED={SEED} repeats them)")
    rng = random.Random(SEED)
    state_dir = tmp_path / "state"
    path = sockdir / "in.sock"
    t0 = time.monotonic()
    runs = [kill_run(gate, state_dir, path, rng, k) for k in range(1, ITERATIONS + 1)]

    # A last, clean run: its readings are all acknowledged before SIGTERM.
    k_last = ITERATIONS + 1
    g = ack_gate(gate, state_dir=state_dir, path=path, name="clean")
    c = g.connect()
    for i in range(100):
        c.send_line(json_line(k=k_last, c=0, i=i))
    oks, errors = read_answers(c, lambda o, e: o + len(e) >= 100)
    assert (oks, errors) == (100, []), f"seed {SEED}"
    assert g.stop() == 0, f"seed {SEED}:\n{g.log_text()}"
    runs.append((g, []))

    verify = queue_verify(state_dir)
    damage = [l for l in verify.stdout.splitlines() if l.startswith("damage:")]
    assert verify.returncode == 0 and not damage, \
        f"seed {SEED}: {verify.stdout}{verify.stderr}"
    dump = queue_dump(state_dir)

    producers = {(p.k, p.c): p for _, ps in runs for p in ps}
    seen = {}
    for r in dump:
        f = r["fields"]
        key = (f["k"], f["c"])
        where = f"seed {SEED}: seq {r['seq']} {f}"
        assert r["topic"] == TOPIC and set(f) == {"k", "c", "i"} and \
            all(type(v) is int for v in f.values()), where
        assert (key, f["i"]) not in seen, f"{where}: twice in the queue"
        seen[(key, f["i"])] = r["seq"]
        if f["k"] == k_last:
            continue
        assert key in producers, f"{where}: no run made it"
        assert f["i"] < producers[key].handed, f"{where}: never sent"
    assert sum(1 for (key, _) in seen if key[0] == k_last) == 100, f"seed {SEED}"

    total_acked = lost_unacked = 0
    for (k, cl), p in producers.items():
        what = f"seed {SEED}: run {k} client {cl} (handed {p.handed}, acked {p.acked})"
        assert p.too_many_acked is None, f"{what}: ok counts beyond what was sent " \
            f"{p.too_many_acked}"
        assert p.errors == [], f"{what}: answers {p.errors[:5]}"
        missing = [i for i in range(p.acked) if ((k, cl), i) not in seen]
        assert not missing, f"{what}: acknowledged readings missing: {missing[:20]}"
        total_acked += p.acked
        lost_unacked += p.handed - sum(1 for i in range(p.handed) if ((k, cl), i) in seen)

    for g_run, _ in runs:
        errors = [l for l in g_run.log() if l.startswith("error:")]
        assert not errors, f"seed {SEED}: {g_run.conf_path.name} logged:\n" + \
            "\n".join(g_run.log())
    print(f"unixsock kill loop: {len(dump)} readings in the queue, {total_acked} "
          f"acknowledged before a kill, {lost_unacked} sent without an ok and not kept; "
          f"{time.monotonic() - t0:.1f} s")
