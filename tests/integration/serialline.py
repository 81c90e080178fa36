# SPDX-License-Identifier: MIT
"""Helpers for the tests of the `serial` input (plugins/serial/README.md, the contract
these tests check):

  * `line`: a socat pseudo-terminal pair (ptypair.PtyPair) in the test's directory,
    stopped at teardown; `line.device` is what the input opens, `Peer` writes to the
    other end;
  * `serial_gate`: coapgated --test with serial inputs, through conftest's `daemon`
    fixture (stopped at teardown); readings are read from its stdout, and
    `wait_reading_ready()` waits for the input's "reading <device>" line, after which
    every byte written is framed (the input is in step with the line);
  * `conf_string()`: any bytes as a libconfig string, with \\xNN escapes;
  * typed(): field values with their JSON types (3 != 3.0 != True).

Every process is started and stopped by its own handle; nothing is signalled by name."""

import json
import os
import re
import time
from pathlib import Path

import pytest

from conftest import PLUGIN_DIR
from ptypair import PtyPair
from unixsock import clean_env, config_text, typed, wait_started  # noqa: F401
from uplink import conf_settings, wait_until

INSTANCE = "line"
TOPIC = "site1/serial"

# "warning: line: bad frame (3 bad so far): <why>; 12 bytes: 24 47 ... |$G...|"
BAD_FRAME = re.compile(r"^warning: (?P<instance>[^:]+): bad frame \((?P<count>\d+) bad so "
                       r"far\): (?P<why>.+); (?P<size>(more than )?\d+ bytes): "
                       r"(?P<preview>.*)$")
SUMMARY = re.compile(r"^warning: (?P<instance>[^:]+): (?P<held>\d+) more bad frames within "
                     r"(?P<interval>[^(]+) \((?P<count>\d+) bad so far\); the latest: "
                     r"(?P<why>.+); (?P<size>(more than )?\d+ bytes): (?P<preview>.*)$")


def conf_string(value):
    """bytes or str as a libconfig string: printable ASCII as it is, the rest as \\xNN
    (libconfig 1.5 knows no \\u)."""
    if isinstance(value, str):
        value = value.encode()
    out = []
    for b in value:
        if b in (0x22, 0x5C):
            out.append("\\" + chr(b))
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return '"' + "".join(out) + '"'


def fields_text(fields):
    """A list of {name, type} groups: [("t", "f64"), (None, "skip")]."""
    groups = []
    for name, type_ in fields:
        body = (f"name = {conf_string(name)}; " if name is not None else "") + \
            f'type = "{type_}";'
        groups.append("{ " + body + " }")
    return "( " + ", ".join(groups) + " )"


def serial_input(device, name=INSTANCE, topic=TOPIC, raw=None, **options):
    """One serial instance as a libconfig group. options are the plugin's or the
    common ones; a None value leaves a key out; bytes values, and strings under the
    keys of RAW_STRING_KEYS, are written with conf_string(); columns and fields take
    [(name, type)]. raw is more text for the group, as it is."""
    s = dict(name=name, plugin="serial", topic=topic, device=str(device))
    extra = []
    for key, value in options.items():
        if value is None:
            continue
        if key in ("columns", "fields"):
            extra.append(f"{key} = {fields_text(value)};")
        elif isinstance(value, bytes) or key in RAW_STRING_KEYS:
            extra.append(f"{key} = {conf_string(value)};")
        else:
            s[key] = value
    text = conf_settings(s) + " " + " ".join(extra) + (" " + raw if raw else "")
    return "{ " + text + " }"


RAW_STRING_KEYS = ("terminator", "pattern", "pair_separators", "key_separators", "delimiter")


class Peer:
    """The test's end of the line: raw bytes in, nothing read back."""

    def __init__(self, line):
        self.fd = line.open_peer()

    def write(self, data):
        if isinstance(data, str):
            data = data.encode()
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def write_line(self, text, end=b"\n"):
        self.write((text.encode() if isinstance(text, str) else text) + end)

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class SerialGate:
    """A coapgated --test (conftest.Daemon) running serial inputs."""

    def __init__(self, d, conf_path):
        self.d = d
        self.conf_path = conf_path

    @property
    def proc(self):
        return self.d.proc

    def log(self):
        return [line for _, line in list(self.d.stderr)]

    def log_text(self):
        return "\n".join(self.log())

    def wait_log(self, predicate, timeout=10, nth=1):
        """The nth log line for which predicate(line) holds (a str: is contained)."""
        if isinstance(predicate, str):
            text = predicate
            predicate = lambda line: text in line  # noqa: E731
        seen = [0]

        def counted(line):
            if predicate(line):
                seen[0] += 1
            return seen[0] >= nth
        return self.d.wait_for(counted, timeout=timeout)[1]

    def count_log(self, predicate):
        if isinstance(predicate, str):
            text = predicate
            predicate = lambda line: text in line  # noqa: E731
        return sum(1 for line in self.log() if predicate(line))

    def wait_reading_ready(self, device, nth=1, timeout=20):
        """Wait for the nth 'reading "<device>"' line: the port is open and set up,
        and the input is in step with the line."""
        return self.wait_log(f'reading "{device}"', timeout=timeout, nth=nth)

    def readings(self, n, timeout=10):
        """The first n readings printed (JSON objects), waiting for them."""
        lines = self.d.wait_lines(n, timeout=timeout)
        return [json.loads(line) for line in lines[:n]]

    def printed(self):
        return [json.loads(line) for _, line in list(self.d.stdout)]

    def bad_frames(self):
        return [m for m in map(BAD_FRAME.match, self.log()) if m]

    def wait_bad_frames(self, n, timeout=10):
        """The BAD_FRAME lines once there are at least n (stderr may lag stdout)."""
        return wait_until(lambda: len(self.bad_frames()) >= n and self.bad_frames(), timeout,
                          lambda: f"{n} bad frame lines:\n{self.log_text()}")

    def summaries(self):
        return [m for m in map(SUMMARY.match, self.log()) if m]

    def stop(self):
        return self.d.stop()


@pytest.fixture
def serial_gate(daemon, tmp_path):
    """serial_gate(inputs=None, device=None, daemon_settings=None, wait=True, test=True,
    queue=None, state_dir=None, **options) -> SerialGate. Without inputs, one serial
    instance on device with options. test: `coapgated --test` (readings on stdout), or
    normal mode with the uplink disabled (readings stay in the queue in state_dir,
    default <tmp_path>/state). Waits for "coapgated started" unless wait is false."""
    count = [0]

    def start(inputs=None, device=None, daemon_settings=None, wait=True, test=True,
              queue=None, state_dir=None, **options):
        count[0] += 1
        if inputs is None:
            inputs = [serial_input(device, **options)]
        state_dir = Path(state_dir or tmp_path / "state")
        conf = tmp_path / f"serial{count[0]}.conf"
        conf.write_text(config_text(inputs, state_dir, queue, daemon_settings))
        args = ["-c", str(conf), "-P", PLUGIN_DIR] + (["--test"] if test else [])
        g = SerialGate(daemon(args, env=clean_env()), conf)
        g.state_dir = state_dir
        if wait:
            wait_started(g)
        return g

    return start


def preview(data, max_bytes=24):
    """The hex preview of a bad frame in the log, as plugins/serial/frame.c makes it."""
    shown = data[:max_bytes]
    text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in shown)
    return " ".join(f"{b:02x}" for b in shown) + f" |{text}|" + \
        ("..." if len(data) > max_bytes else "")


def now_ms():
    return int(time.time() * 1000)


def plugin_built():
    return (Path(PLUGIN_DIR) / "serial.so").exists()
