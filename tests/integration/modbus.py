# SPDX-License-Identifier: MIT
"""Helpers for the tests of the `modbus` input (plugins/modbus/README.md, the contract
these tests check):

  * Server: modbus_server.py (pymodbus) as a subprocess, over TCP on a free port or
    as an RTU slave on a serial port; every request it sees, with its time, in
    Server.requests; stop() and a restart on the same port;
  * registers(): the registers a device sends for a value of a type in a byte order,
    built with pymodbus's BinaryPayloadBuilder, independently of the plugin;
  * modbus_input() and config_text(): an instance and a whole configuration in
    libconfig syntax, nested slaves and points included;
  * Gate: coapgated --test with that configuration, through conftest's `daemon`
    fixture (stopped at teardown), its readings parsed from stdout.

Every process is started and stopped by its own handle; nothing is signalled by name."""

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pymodbus.constants import Endian
from pymodbus.payload import BinaryPayloadBuilder

from conftest import PLUGIN_DIR, typed  # noqa: F401  (typed: for the tests)

SERVER = Path(__file__).resolve().parent / "modbus_server.py"
PYTHON = "/usr/bin/python3"

# Byte orders (README: "Byte and word order") as pymodbus names them: the byte order
# within a register, and the order of the registers.
ORDERS = {
    "AB": (Endian.Big, Endian.Big), "BA": (Endian.Little, Endian.Big),
    "ABCD": (Endian.Big, Endian.Big), "CDAB": (Endian.Big, Endian.Little),
    "BADC": (Endian.Little, Endian.Big), "DCBA": (Endian.Little, Endian.Little),
    "ABCDEFGH": (Endian.Big, Endian.Big), "GHEFCDAB": (Endian.Big, Endian.Little),
    "BADCFEHG": (Endian.Little, Endian.Big), "HGFEDCBA": (Endian.Little, Endian.Little),
}
WIDTH = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "int64": 4, "uint64": 4,
         "float32": 2, "float64": 4}
ADD = {"int16": "add_16bit_int", "uint16": "add_16bit_uint", "int32": "add_32bit_int",
       "uint32": "add_32bit_uint", "int64": "add_64bit_int", "uint64": "add_64bit_uint",
       "float32": "add_32bit_float", "float64": "add_64bit_float"}


def registers(type_, value, order):
    """The registers of value as type_ in order, as a slave sends them."""
    byteorder, wordorder = ORDERS[order]
    b = BinaryPayloadBuilder(byteorder=byteorder, wordorder=wordorder)
    getattr(b, ADD[type_])(value)
    regs = b.to_registers()
    assert len(regs) == WIDTH[type_]
    return regs


def text_registers(text, length, order="AB", pad=b"\0"):
    """A string as length registers, two bytes each, padded."""
    data = text.encode() if isinstance(text, str) else text
    data = data.ljust(2 * length, pad)
    assert len(data) == 2 * length
    pairs = [(data[i], data[i + 1]) for i in range(0, len(data), 2)]
    if order == "BA":
        return [lo << 8 | hi for hi, lo in pairs]
    return [hi << 8 | lo for hi, lo in pairs]


def json_value(v):
    """A float as `coapgated --test` prints it: NaN and infinities as strings."""
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, float) and math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


# --------------------------------------------------------------------------------------
# The server


class Server:
    """modbus_server.py with spec (a dict, see its docstring), over TCP (port 0: a free
    one) or on the serial port `serial`."""

    def __init__(self, directory, spec, port=0, serial=None, log="requests"):
        self.directory = Path(directory)
        self.spec = spec
        self.port = port
        self.serial = serial
        self.log = log
        self.proc = None
        self.requests = []       # dicts: t, unit, fc, address, count
        self.total = None        # the count it reported when stopped
        self._cond = threading.Condition()
        self._generation = 0

    def start(self, spec=None, timeout=15):
        """Start (again, on the same port); returns self once it serves."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if spec is not None:
            self.spec = spec
        self._generation += 1
        path = self.directory / f"modbus-spec-{self._generation}.json"
        path.write_text(json.dumps(self.spec))
        args = [PYTHON, str(SERVER), "--spec", str(path), "--log", self.log]
        args += ["--serial", str(self.serial)] if self.serial else ["--port", str(self.port)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self._ready = None
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True).start()
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._ready is None:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"modbus_server.py did not start: {self.proc.poll()}")
                self._cond.wait(min(left, 0.2))
        if not self.serial:
            self.port = self._ready
        return self

    @staticmethod
    def _drain(stream):
        for _ in stream:
            pass

    def _pump(self, proc):
        for line in proc.stdout:
            msg = json.loads(line)
            with self._cond:
                if "ready" in msg:
                    self._ready = msg["ready"] if msg["ready"] is not None else True
                elif "requests" in msg:
                    self.total = msg["requests"]
                else:
                    self.requests.append(msg)
                self._cond.notify_all()

    def of(self, unit, since=0.0):
        """The requests to unit that arrived at or after since (monotonic)."""
        with self._cond:
            return [r for r in self.requests if r["unit"] == unit and r["t"] >= since]

    def wait_requests(self, unit, n, timeout=15, since=0.0):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self.requests if r["unit"] == unit and r["t"] >= since]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(got)} requests to unit {unit}, not {n}")
                self._cond.wait(left)

    def stop(self, kill=False):
        """SIGTERM (it reports its count), or SIGKILL as for a crash."""
        if self.proc and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


# --------------------------------------------------------------------------------------
# Configuration


def lc(v, indent=""):
    """A Python value as libconfig text: dicts are groups, lists of dicts are lists."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v}L" if not -2**31 <= v < 2**31 else str(v)
    if isinstance(v, float):
        assert math.isfinite(v)
        text = repr(v)
        return text if any(c in text for c in ".e") else text + ".0"
    if isinstance(v, (str, Path)):
        return json.dumps(str(v))
    if isinstance(v, dict):
        return "{ " + " ".join(f"{k} = {lc(x, indent)};" for k, x in v.items()
                               if x is not None) + " }"
    if isinstance(v, list):
        inner = indent + "  "
        return "(\n" + ",\n".join(inner + lc(x, inner) for x in v) + "\n" + indent + ")"
    raise TypeError(v)


def point(name, kind, address, type_, **options):
    return dict(name=name, kind=kind, address=address, type=type_, **options)


def slave(unit, points, **options):
    return dict(unit=unit, **options, points=points)


def modbus_input(slaves, name="bus", topic="plant/bus", **options):
    """One modbus instance; options are the plugin's or the common ones."""
    s = dict(name=name, plugin="modbus", topic=topic)
    s.update(options)
    s["slaves"] = slaves
    return s


def config_text(inputs, state_dir, daemon=None, queue=None):
    d = dict(state_dir=str(state_dir), log_target="stderr", log_level="info")
    d.update(daemon or {})
    text = f"daemon: {lc(d)};\nuplink: {{ enabled = false; }};\n"
    if queue:
        text += f"queue: {lc(queue)};\n"
    return text + f"inputs = {lc(inputs)};\n"


# --------------------------------------------------------------------------------------
# The gateway


class Gate:
    """coapgated --test with the given inputs; readings parsed from its stdout. With
    test=False the readings go into the queue in state_dir instead."""

    def __init__(self, daemon, tmp_path, inputs, log_level="info", args=(), test=True,
                 state_dir=None, queue=None):
        self.path = tmp_path / "coapgate.conf"
        self.state_dir = state_dir or tmp_path / "state"
        self.path.write_text(config_text(inputs, self.state_dir,
                                         daemon=dict(log_level=log_level), queue=queue))
        self.d = daemon(["-c", str(self.path), "-P", PLUGIN_DIR,
                         *(["--test"] if test else []), *args])

    def readings(self, n, timeout=20):
        return [json.loads(l) for l in self.d.wait_lines(n, "stdout", timeout=timeout)]

    def all_readings(self):
        with self.d._cond:
            return [(t, json.loads(l)) for t, l in self.d.stdout]

    def wait_reading(self, predicate, timeout=20):
        """The first reading (time, reading) for which predicate(reading) holds."""
        t, line = self.d.wait_for(lambda l: predicate(json.loads(l)), "stdout",
                                  timeout=timeout)
        return t, json.loads(line)

    def log(self):
        with self.d._cond:
            return [l for _, l in self.d.stderr]

    def wait_log(self, text, timeout=20):
        return self.d.wait_for(lambda l: text in l, "stderr", timeout=timeout)

    def stop(self):
        return self.d.stop()


# --------------------------------------------------------------------------------------
# Timing


def gaps(times):
    return [b - a for a, b in zip(times, times[1:])]


def grid_spread(times, interval):
    """How far polls k = 0, 1, ... stray from one grid t0 + k * interval: the latest
    minus the earliest. Polls scheduled from their previous deadline stay within the
    longest delay any of them had; polls scheduled from "now" drift away."""
    phases = [t - k * interval for k, t in enumerate(times)]
    return max(phases) - min(phases)


# --------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture
def server(tmp_path):
    """server(spec, **kwargs) -> a started Server; every one is stopped at teardown."""
    started = []

    def start(spec, **kwargs):
        s = Server(tmp_path, spec, **kwargs).start()
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def gate(daemon, tmp_path):
    """gate(inputs, ...) -> a started Gate. At teardown each one must stop cleanly:
    exit status 0, which under ASan and UBSan also means no leak and no error."""
    started = []

    def start(inputs, **kwargs):
        g = Gate(daemon, tmp_path, inputs, **kwargs)
        started.append(g)
        return g

    yield start
    for g in started:
        rc = g.stop()
        assert rc == 0, "\n".join(g.log()[-30:])
