# SPDX-License-Identifier: MIT
"""Helpers for the uplink's integration tests: coapgated with the `counter` test input
sends to nce-emulator (tests/emulator/README.md), the local stand-in for 1NCE OS, and
the tests read back what arrived in the emulator's sink.

  * decode_message() turns one CoAP payload, in the format of docs/ENCODING.md, back
    into readings (seq, ts, topic, fields); SinkReader does that for every line of the
    emulator's sink as it grows;
  * start_gateway() writes a configuration (state_dir in the test's tmp_path, logs on
    stderr, the uplink bootstrapping from the emulator as the registry device at
    127.0.0.2, short backoffs, one counter input) and starts coapgated through the
    `daemon` fixture of conftest.py, which stops it at teardown;
  * wait_until() polls a condition with a deadline instead of sleeping.

Every process is started and stopped by its own handle (conftest.Daemon, nce.Emulator,
nce.Proc); nothing is signalled by name."""

import base64
import collections
import json
import os
import signal
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import COAPGATED, TEST_PLUGIN_DIR

# The registry: DEVICE bootstraps (generated PSK), USER_DEVICE has a user-set PSK,
# HEX_DEVICE a user-set PSK given in hex.
DEVICE, DEVICE_ADDR, DEVICE_IMSI = "8988228066600000001", "127.0.0.2", "901405100000001"
USER_DEVICE, USER_ADDR, USER_PSK = "8988228066600000002", "127.0.0.3", "user-set-key-0042"
HEX_DEVICE, HEX_ADDR = "89882280666000000039", "127.0.0.4"
HEX_PSK = bytes(range(0x30, 0x30 + 20)).hex() + "00ff7f80"   # not printable as a string

DEVICES = [
    dict(iccid=DEVICE, address=DEVICE_ADDR, imsi=DEVICE_IMSI),
    dict(iccid=USER_DEVICE, address=USER_ADDR, psk=USER_PSK),
    dict(iccid=HEX_DEVICE, address=HEX_ADDR, psk=HEX_PSK, psk_format="hex"),
]

TOPIC = "sensors/counter"
MAX_PAYLOAD = 1024
COUNTER_FIELDS = ["n", "half", "even", "text"]

# Short enough that a test sees several retries, long enough not to hammer.
TEST_BACKOFF_MIN = "200ms"
TEST_BACKOFF_MAX = "2s"


# --------------------------------------------------------------------------------------
# Waiting


def wait_until(condition, timeout, what, interval=0.05):
    """Poll condition() until it returns something true; returns that. what is a string
    or a function giving one, for the failure message."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            text = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {text}")
        time.sleep(interval)


# --------------------------------------------------------------------------------------
# docs/ENCODING.md


@dataclass(frozen=True)
class Reading:
    seq: object          # int, or None without sequence numbers
    ts: int              # ms since the epoch
    topic: str
    fields: dict = field(hash=False)


def decode_message(payload, topic, with_seq=True):
    """The readings of one message (bytes or str, a JSON object as in docs/ENCODING.md).
    Checks the format as it goes: version 1, `s` present exactly when with_seq, every
    row as long as its group's field names plus the prefix, and seqs ascending inside
    each group. Raises AssertionError when the payload breaks the format."""
    text = payload.decode() if isinstance(payload, (bytes, bytearray)) else payload
    msg = json.loads(text)
    assert isinstance(msg, dict) and msg.get("v") == 1, f"not a version 1 message: {text}"
    assert ("s" in msg) == with_seq, f"'s' present: {'s' in msg}, expected {with_seq}: {text}"
    assert isinstance(msg.get("t"), int), f"no integer 't': {text}"
    assert isinstance(msg.get("g"), list) and msg["g"], f"no groups: {text}"
    base_seq = msg.get("s")
    readings = []
    for g in msg["g"]:
        names = g["f"]
        assert isinstance(names, list) and all(isinstance(n, str) for n in names), text
        prefix = 2 if with_seq else 1
        last = None
        for row in g["r"]:
            assert isinstance(row, list) and len(row) == prefix + len(names), \
                f"row {row} does not match the fields {names}: {text}"
            if with_seq:
                dseq, dt, values = row[0], row[1], row[2:]
                assert isinstance(dseq, int) and dseq >= 0, f"bad dseq in {row}: {text}"
                seq = base_seq + dseq
                assert last is None or seq > last, f"seqs not ascending in a group: {text}"
                last = seq
            else:
                dt, values, seq = row[0], row[1:], None
            assert isinstance(dt, int), f"bad dt in {row}: {text}"
            readings.append(Reading(seq, msg["t"] + dt, topic, dict(zip(names, values))))
    return readings


def check_counter_reading(r, topic=TOPIC):
    """A reading of the counter input: n, half = n / 2, even, text = "n=<n>"."""
    f = r.fields
    assert list(f) == COUNTER_FIELDS, f"fields {list(f)} of {r}"
    n = f["n"]
    assert isinstance(n, int) and not isinstance(n, bool), r
    assert f["half"] == n / 2 and f["even"] is (n % 2 == 0) and f["text"] == f"n={n}", r
    assert r.topic == topic, r


@dataclass
class Delivery:
    """One sink line: the emulator's JSON, the raw payload and its readings."""
    line: dict
    payload: bytes
    readings: list

    @property
    def iccid(self):
        return self.line["device"]["iccid"]

    @property
    def topic(self):
        return self.line["payload"].get("topic")

    @property
    def mid(self):
        return self.line["coap"]["mid"]

    @property
    def port(self):
        return self.line["coap"]["port"]

    @property
    def received_ms(self):
        return int(self.line["received"])

    @property
    def ns(self):
        return [r.fields["n"] for r in self.readings]


def decode_sink_line(line, with_seq=True):
    p = line["payload"]
    assert p["type"] == "STRING" and p["encoding"] == "base64", line
    payload = base64.b64decode(p["value"], validate=True)
    return Delivery(line, payload, decode_message(payload, p.get("topic"), with_seq))


class SinkReader:
    """The emulator's sink, decoded incrementally: .deliveries grows with poll()."""

    def __init__(self, emu, with_seq=True):
        self.path = Path(emu.sink_path)
        self.with_seq = with_seq
        self.offset = 0
        self.deliveries = []

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return self.deliveries
        end = data.rfind(b"\n")
        if end < 0:
            return self.deliveries
        for raw in data[:end].split(b"\n"):
            if raw.strip():
                self.deliveries.append(decode_sink_line(json.loads(raw), self.with_seq))
        self.offset += end + 1
        return self.deliveries

    def counts(self):
        """collections.Counter of every n delivered (a duplicate counts twice)."""
        c = collections.Counter()
        for d in self.poll():
            c.update(d.ns)
        return c

    def readings(self):
        return [r for d in self.poll() for r in d.readings]

    def wait_for(self, expected, timeout, what=None):
        """Wait until every n of expected (a set) has been delivered; returns counts()."""
        expected = set(expected)
        state = {}

        def done():
            state["c"] = self.counts()
            return expected <= state["c"].keys()

        def describe():
            missing = sorted(expected - state["c"].keys())
            return ((what + ": " if what else "")
                    + f"{len(missing)} of {len(expected)} readings not delivered "
                      f"(first missing: {missing[:10]}; {len(self.deliveries)} messages)")

        wait_until(done, timeout, describe, interval=0.1)
        return state["c"]


def duplicates(counts):
    """How many deliveries beyond the first, over all n."""
    return sum(v - 1 for v in counts.values() if v > 1)


def check_duplicates_bound(gw, sink, dup):
    """A retransmission the emulator recognises is never processed twice, so a
    duplicate needs a message whose every retransmission went unanswered although the
    emulator had processed it: the session is then given up (a warning "...; retrying
    in N s") and the message's readings are sent again on the next one. So at most one
    message's readings per session given up."""
    given_up = len(gw.lines("retrying in"))
    per_message = max(len(d.readings) for d in sink.poll())
    assert dup <= given_up * per_message, \
        f"{dup} duplicates, but only {given_up} sessions given up:\n{gw.log_text()}"


# --------------------------------------------------------------------------------------
# coapgated


def conf_value(v):
    """A Python value as a libconfig scalar."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v}L" if not -2**31 <= v < 2**31 else str(v)
    if isinstance(v, (str, Path)):
        return json.dumps(str(v))
    raise TypeError(v)


def conf_settings(settings):
    """A dict as the body of a libconfig group; a None value leaves a key out."""
    return " ".join(f"{k} = {conf_value(v)};" for k, v in settings.items() if v is not None)


def conf_group(name, settings):
    return f"{name}: {{ {conf_settings(settings)} }};\n"


def uplink_settings(emu, **overrides):
    """The uplink group for a test: bootstrap from the emulator as DEVICE, short
    backoffs. A None value leaves a key out."""
    s = dict(bootstrap_url=f"coap://127.0.0.1:{emu.coap_port}/bootstrap",
             bind_address=DEVICE_ADDR, backoff_min=TEST_BACKOFF_MIN,
             backoff_max=TEST_BACKOFF_MAX)
    s.update(overrides)
    return s


def counter_input(name="c", topic=TOPIC, **options):
    """One counter instance; options are the plugin's (interval, count, start,
    progress_file)."""
    s = dict(name=name, plugin="counter", topic=topic)
    s.update(options)
    return "{ " + conf_settings(s) + " }"


def gateway_config(state_dir, uplink, inputs, daemon=None, queue=None):
    """The text of a coapgated configuration."""
    d = dict(state_dir=str(state_dir), log_target="stderr", log_level="info")
    d.update(daemon or {})
    q = dict(segment_size="1M", commit_bytes="64K", max_size="64M", min_free=0)
    q.update(queue or {})
    return (conf_group("daemon", d) + conf_group("queue", q) + conf_group("uplink", uplink)
            + "inputs = (\n  " + ",\n  ".join(inputs) + "\n);\n")


class Gateway:
    """A started coapgated (conftest.Daemon) with its configuration and state_dir."""

    def __init__(self, d, conf_path, state_dir):
        self.d = d
        self.conf_path = conf_path
        self.state_dir = Path(state_dir)
        self.started_at = None  # monotonic time of "coapgated started"

    @property
    def proc(self):
        return self.d.proc

    def log(self):
        return [line for _, line in self.d.stderr]

    def log_text(self):
        return "\n".join(self.log())

    def timed_log(self):
        return list(self.d.stderr)

    def lines(self, text):
        """(monotonic time, line) of the log lines that contain text."""
        return [(t, l) for t, l in list(self.d.stderr) if text in l]

    def wait_log(self, text, timeout=10):
        """Wait for a log line containing text; returns (time, line). Fails at once if
        the daemon exits."""
        def found():
            hits = self.lines(text)
            if hits:
                return hits[0]
            if self.d.proc.poll() is not None:
                raise AssertionError(f"coapgated exited with {self.d.proc.returncode} "
                                     f"before logging {text!r}:\n{self.log_text()}")
            return None
        return wait_until(found, timeout, lambda: f"{text!r} in the log:\n{self.log_text()}")

    @property
    def credentials_path(self):
        return self.state_dir / "credentials"

    def credentials(self):
        return json.loads(self.credentials_path.read_text())

    @property
    def dead_letter_path(self):
        return self.state_dir / "dead-letter.jsonl"

    def dead_letters(self):
        try:
            text = self.dead_letter_path.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(l) for l in text.splitlines() if l.strip()]

    def stop(self):
        """SIGTERM; returns the exit status."""
        return self.d.stop()

    def kill(self):
        self.d.signal(signal.SIGKILL)
        return self.d.wait(timeout=30)


def start_gateway(daemon, tmp_path, emu, name="gw", uplink=None, inputs=None, counter=None,
                  state_dir=None, daemon_settings=None, queue=None, env=None, wait=True):
    """Write <tmp_path>/<name>.conf and start coapgated with it (the test plugins'
    directory as plugin_dir). uplink: overrides of uplink_settings(); counter: the
    options of one counter input (ignored when inputs, a list of input groups, is
    given). Waits for "coapgated started" unless wait is false."""
    state_dir = Path(state_dir or tmp_path / "state")
    if inputs is None:
        inputs = [counter_input(**(counter or {}))]
    text = gateway_config(state_dir, uplink_settings(emu, **(uplink or {})), inputs,
                          daemon_settings, queue)
    path = Path(tmp_path) / f"{name}.conf"
    path.write_text(text)
    if env is None:  # never notify a systemd the tests may run under
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    gw = Gateway(daemon(["-c", str(path), "-P", TEST_PLUGIN_DIR], env=env), path, state_dir)
    if wait:
        t, _ = gw.wait_log("coapgated started", timeout=30)
        gw.started_at = t
    return gw


@pytest.fixture
def gateway(daemon, tmp_path):
    """gateway(emu, **start_gateway keywords) -> Gateway, through conftest's `daemon`
    fixture (which stops it); each one's log is printed at teardown, so a failure shows
    it."""
    started = []

    def start(emu, **kwargs):
        gw = start_gateway(daemon, tmp_path, emu, **kwargs)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        print(f"--- coapgated pid {gw.proc.pid} ({gw.conf_path.name}), exit status "
              f"{gw.proc.poll()}\n{gw.log_text()}")


def check_config(path, plugin_dir=TEST_PLUGIN_DIR):
    """coapgated -t: check a configuration; returns CompletedProcess."""
    return subprocess.run([COAPGATED, "-t", "-c", str(path), "-P", plugin_dir],
                          capture_output=True, text=True, timeout=30)


def file_mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def read_progress(path):
    """The counter's progress file: the highest n the daemon accepted, or None."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None
    return int(text) if text.strip() else None


def emulator_psk(emu, iccid):
    """The PSK the emulator holds for a device (from the `devices` command)."""
    answer = emu.ctl_ok("devices")
    for d in answer["devices"]:
        if d["iccid"] == iccid:
            return d.get("psk")
    raise AssertionError(f"no device {iccid} in {answer}")
