# SPDX-License-Identifier: MIT
"""The `modbus` input over Modbus TCP, against its README (plugins/modbus/README.md),
with pymodbus as the server (modbus_server.py) and readings read from `coapgated
--test`:

  * values: every numeric type in every byte order with known values (negative
    numbers, the extremes of each type, NaN and infinities), coils and discrete
    inputs, bool and single bits of registers, strings (padding, swapped bytes, bytes
    that are not UTF-8), scale and offset, a uint64 no i64 holds;
  * requests: counted at the server, with coalescing, gap bridging and the 125
    register limit, and with coalescing off;
  * failures: an illegal-address exception (logged by name, that slave down and
    backing off, the others fine), a slave that never answers next to a healthy one
    (the healthy one keeps its interval within one timeout), late answers that must
    not be taken for the next request's, a server restarted mid-run;
  * pacing: the pause between requests, also between slaves and after a timeout;
  * the counters in the summary lines;
  * configuration errors with FILE:LINE, and the README's option table against
    --help-plugin.

The serial line (RTU over a socat pty pair) is in test_modbus_rtu.py."""

import math
import os
import re
import statistics
import struct
import time
from pathlib import Path

import pytest

from conftest import PLUGIN_DIR, SOURCE_DIR, run
from modbus import gate, server  # noqa: F401  (fixtures)
from modbus import gaps, grid_spread
from smallfs import FULL_QUEUE, leave_free, small_fs  # noqa: F401  (fixture)
from unixsock import queue_dump
from uplink import wait_until
from modbus import (json_value, modbus_input, point, registers, slave, text_registers,
                    typed)

pytestmark = pytest.mark.skipif(not (Path(PLUGIN_DIR) / "modbus.so").exists(),
                                reason="modbus.so is not built")

I64_MAX, I64_MIN = 2**63 - 1, -2**63


def by_topic(readings):
    out = {}
    for r in readings:
        out.setdefault(r["topic"], r)
    return out


def f32(x):
    """x rounded to float32, as the slave holds it."""
    return struct.unpack(">f", struct.pack(">f", x))[0]


def f32_sent(x):
    """The float32 x as the input sends it: the shortest decimal (at most 9 significant
    digits) that is the same float32; NaN and infinities as they are."""
    if not math.isfinite(x):
        return x
    for digits in range(1, 10):
        d = float(f"{x:.{digits}g}")
        try:
            if f32(d) == f32(x):
                return d
        except OverflowError:
            # Python refuses to round a double just above FLT_MAX to it (C does):
            # 3.4028235e38 is FLT_MAX to a float32 reader.
            if abs(d) <= 3.4028235677973366e38 and abs(f32(x)) == 3.4028234663852886e38:
                return d
    raise AssertionError(f"no decimal of {x!r} with 9 digits is the same float32")


# --------------------------------------------------------------------------------------
# Values


NUMBERS = {
    "int16": [0, 1, -1, 32767, -32768, -1234],
    "uint16": [0, 65535, 40000],
    "int32": [-1, 2**31 - 1, -2**31, -123456789],
    "uint32": [0, 2**32 - 1, 3000000000],
    "int64": [-1, I64_MAX, I64_MIN, -1234567890123456789],
    "uint64": [0, I64_MAX, 1234567890123456789],
    "float32": [1.5, -2.25, f32(21.47), f32(3.4028234663852886e38), -0.0, 1e-45,
                math.nan, math.inf, -math.inf],
    "float64": [0.1, -1e300, 5e-324, 1.7976931348623157e308, math.nan, math.inf,
                -math.inf],
}
ORDERS_OF = {1: ["AB", "BA"], 2: ["ABCD", "CDAB", "BADC", "DCBA"],
             4: ["ABCDEFGH", "GHEFCDAB", "BADCFEHG", "HGFEDCBA"]}


def test_every_type_in_every_order(server, gate):
    """Each (type, order, value) is a point of its own; the registers come from
    pymodbus's payload builder. Points are spread over slaves of at most 60 points,
    each with its own topic, and read with coalesced requests."""
    cases = []
    for type_, values in NUMBERS.items():
        width = 1 if type_.endswith("16") else (2 if type_.endswith("32") else 4)
        for order in ORDERS_OF[width]:
            for v in values:
                cases.append((type_, order, v))
    # The default order is big-endian at every width.
    cases += [("int16", None, -2), ("float32", None, -0.5), ("uint64", None, 2**40 + 7)]

    units, spec_units = [], {}
    for k in range(0, len(cases), 60):
        unit = len(units) + 1
        hr, points, expected, address = {}, [], {}, 0
        for i, (type_, order, v) in enumerate(cases[k:k + 60]):
            name = f"p{k + i}_{type_}_{order or 'default'}"
            regs = registers(type_, v, order or ("ABCDEFGH" if type_.endswith("64")
                                                 else "ABCD" if type_.endswith("32")
                                                 else "AB"))
            hr[str(address)] = regs
            points.append(point(name, "holding", address, type_, order=order))
            if type_ == "float32":
                v = f32_sent(f32(v))
            expected[name] = json_value(float(v) if type_.startswith("float") else v)
            address += len(regs)
        spec_units[str(unit)] = {"hr": hr}
        units.append((unit, points, expected))
    srv = server({"units": spec_units})
    g = gate([modbus_input([slave(u, pts, topic=f"types/u{u}", interval="500ms")
                            for u, pts, _ in units], host="127.0.0.1", port=srv.port)])
    got = {}
    deadline = time.monotonic() + 20
    while len(got) < len(units) and time.monotonic() < deadline:
        got = by_topic(r for _, r in g.all_readings())
        time.sleep(0.05)
    for unit, _, expected in units:
        r = got.get(f"types/u{unit}")
        assert r is not None, f"no reading from unit {unit}"
        assert r["input"] == "bus"
        assert typed(r["fields"]) == typed(expected)
        # -0.0 keeps its sign.
        for name, v in r["fields"].items():
            if isinstance(v, float) and v == 0:
                assert math.copysign(1, v) == math.copysign(1, expected[name]), name
    assert len(cases) >= 140


def test_bits_bools_strings_scale_and_offset(server, gate):
    spec = {"units": {"1": {
        "co": {"0": [1, 0, 1, 1], "100": [0]},
        "di": {"7": [1, 0]},
        "hr": {"0": [0xA5C3],                                    # bits
               "1": [0, 0x0100],                                 # bool of registers
               "10": text_registers("SDM630-Modbus", 10),        # NUL padded
               "20": text_registers("V2.1", 6, pad=b" "),        # space padded
               "30": text_registers("Grüße ☃", 8, order="BA"),   # swapped bytes
               "40": text_registers(b"ok\xffno\xc3", 4),         # not UTF-8
               "50": text_registers(b"AB\0garbage", 5),          # ends at the NUL
               "60": registers("int16", -5, "AB"),
               "61": registers("uint32", 4000000000, "CDAB"),
               "63": registers("float32", 1.5, "DCBA"),
               "65": registers("int64", -7, "HGFEDCBA"),
               "69": registers("uint64", 2**64 - 1, "ABCDEFGH"),
               "73": registers("uint64", 2**63, "GHEFCDAB"),
               "77": registers("float64", math.nan, "BADCFEHG"),
               "81": registers("int16", 3, "AB"),
               "82": registers("float32", 21.47, "ABCD")},
        "ir": {"5": registers("uint16", 500, "BA")},
    }}}
    bits = [point(f"bit{b}", "holding", 0, "bit", bit=b) for b in range(16)]
    points = bits + [
        point("word", "holding", 0, "uint16"),
        point("coil0", "coil", 0, "bool"), point("coil1", "coil", 1, "bool"),
        point("coil2", "coil", 2, "bool"), point("coil3", "coil", 3, "bool"),
        point("coil100", "coil", 100, "bool"),
        point("di7", "discrete", 7, "bool"), point("di8", "discrete", 8, "bool"),
        point("reg_zero", "holding", 1, "bool"), point("reg_256", "holding", 2, "bool"),
        point("model", "holding", 10, "string", length=10),
        point("version", "holding", 20, "string", length=6),
        point("greeting", "holding", 30, "string", length=8, order="BA"),
        point("broken", "holding", 40, "string", length=4),
        point("cut", "holding", 50, "string", length=5),
        point("temp", "holding", 60, "int16", scale=0.1, offset=-40.0),
        point("energy_kwh", "holding", 61, "uint32", order="CDAB", scale=0.001),
        point("flow", "holding", 63, "float32", order="DCBA", scale=-2.0, offset=1.0),
        point("shifted", "holding", 65, "int64", order="HGFEDCBA", offset=0.5),
        point("big_as_float", "holding", 69, "uint64", scale=1.0, offset=1.0),
        point("too_big", "holding", 73, "uint64", order="GHEFCDAB"),
        point("nan_scaled", "holding", 77, "float64", order="BADCFEHG", scale=10.0),
        point("input_ba", "input", 5, "uint16", order="BA", scale=0.5),
        # What the wire carries: 0.3, not 3 * 0.1; 21.47, not the float32 widened.
        point("tenths", "holding", 81, "int16", scale=0.1),
        point("short_f32", "holding", 82, "float32"),
    ]
    srv = server(spec)
    g = gate([modbus_input([slave(1, points, name="dev", interval="300ms")],
                           host="127.0.0.1", port=srv.port)])
    r = g.readings(1)[0]
    expected = {f"bit{b}": bool(0xA5C3 >> b & 1) for b in range(16)}
    expected.update({
        "word": 0xA5C3, "coil0": True, "coil1": False, "coil2": True, "coil3": True,
        "coil100": False, "di7": True, "di8": False, "reg_zero": False, "reg_256": True,
        "model": "SDM630-Modbus", "version": "V2.1", "greeting": "Grüße ☃",
        "broken": "ok?no?", "cut": "AB",
        "temp": -5 * 0.1 + -40.0, "energy_kwh": 4000000000 * 0.001,
        "flow": 1.5 * -2.0 + 1.0, "shifted": -7 + 0.5,
        "big_as_float": float(2**64 - 1) * 1.0 + 1.0, "nan_scaled": "NaN",
        "input_ba": 250.0, "tenths": 0.3, "short_f32": 21.47,
    })
    # too_big is left out: no i64 holds 2^63.
    assert typed(r["fields"]) == typed(expected)
    assert list(r["fields"]) == [p["name"] for p in points if p["name"] != "too_big"]
    g.wait_log('slave "dev" (unit 1): point "too_big": a uint64 above 2^63-1 does not fit')
    g.wait_log('slave "dev" (unit 1): point "broken": the string has bytes that are not '
               "UTF-8; they are sent as '?' (1 so far)")
    # Logged at the 1st, 2nd, 4th, ... time, not at every poll.
    g.readings(6)
    warnings = [l for l in g.log() if 'point "broken"' in l]
    assert 2 <= len(warnings) <= 4, warnings


# --------------------------------------------------------------------------------------
# Requests


def split_polls(requests, expected):
    """The requests to one unit as repetitions of expected (a list of (fc, address,
    count)); returns how many whole polls they are. The last poll may be cut short by
    the daemon's stop."""
    seen = [(r["fc"], r["address"], r["count"]) for r in requests]
    polls = len(seen) // len(expected)
    assert seen[:polls * len(expected)] == expected * polls, seen
    assert seen[polls * len(expected):] == expected[:len(seen) % len(expected)], seen
    return polls


def test_requests_are_coalesced_and_counted(server, gate):
    """The same map on three units: max_gap 0, max_gap 4 and, on a second instance of
    the same server, coalescing off. The server counts the requests of each poll."""
    # The registers and coils in the gaps exist: bridging them must not fail.
    hr = {"0": [1] * 10 + [2, 3]}
    ir = {"0": text_registers("x" * 240, 120) + registers("float32", 2.5, "ABCD")
          + registers("float64", 1.25, "ABCDEFGH")}
    co = {"0": [1, 0, 0, 0, 0, 1]}
    spec = {"units": {str(u): {"hr": hr, "ir": ir, "co": co} for u in (1, 2, 3)}}
    points = [
        point("a", "holding", 0, "float32"), point("b", "holding", 2, "float32"),
        point("c", "holding", 4, "int16"), point("d", "holding", 5, "int16"),
        point("e", "holding", 10, "int32"),
        point("name", "input", 0, "string", length=120),
        point("f", "input", 120, "float32"), point("g", "input", 122, "float64"),
        point("k0", "coil", 0, "bool"), point("k1", "coil", 1, "bool"),
        point("k5", "coil", 5, "bool"),
    ]
    srv = server(spec)
    common = dict(host="127.0.0.1", port=srv.port)
    g = gate([modbus_input([slave(1, points, interval="200ms", topic="gap0"),
                            slave(2, points, interval="200ms", topic="gap4", max_gap=4)],
                           name="coalesced", **common),
              modbus_input([slave(3, points, interval="200ms", topic="single", max_gap=4)],
                           name="single", coalesce=False, **common)])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        got = [r["topic"] for _, r in g.all_readings()]
        if all(got.count(t) >= 3 for t in ("gap0", "gap4", "single")):
            break
        time.sleep(0.05)
    g.stop()
    readings = [r for _, r in g.all_readings()]
    values = {r["topic"]: r["fields"] for r in readings}
    assert values["gap0"] == values["gap4"] == values["single"]
    assert values["gap0"]["name"] == "x" * 240 and values["gap0"]["g"] == 1.25

    # 3 = holding, 4 = input, 1 = coils; 125 registers at most: the float64 at 122
    # does not fit after 0-121.
    gap0 = [(3, 0, 6), (3, 10, 2), (4, 0, 122), (4, 122, 4), (1, 0, 2), (1, 5, 1)]
    gap4 = [(3, 0, 12), (4, 0, 122), (4, 122, 4), (1, 0, 6)]
    single = [(3, 0, 2), (3, 2, 2), (3, 4, 1), (3, 5, 1), (3, 10, 2), (4, 0, 120),
              (4, 120, 2), (4, 122, 4), (1, 0, 1), (1, 1, 1), (1, 5, 1)]
    for unit, expected, topic in ((1, gap0, "gap0"), (2, gap4, "gap4"), (3, single, "single")):
        polls = split_polls(srv.of(unit), expected)
        n = sum(r["topic"] == topic for r in readings)
        assert polls >= n >= 3, (unit, polls, n)
    log = "\n".join(g.log())
    assert ('slave "unit1" (unit 1): 11 points in 6 requests: holding 0-5, holding 10-11, '
            "input 0-121, input 122-125, coil 0-1, coil 5-5") in log
    assert ('slave "unit2" (unit 2): 11 points in 4 requests: holding 0-11 (4 unused), '
            "input 0-121, input 122-125, coil 0-5 (3 unused)") in log
    assert 'slave "unit3" (unit 3): 11 points in 11 requests' in log


# --------------------------------------------------------------------------------------
# Failures


def test_illegal_address_is_logged_by_name_and_isolated(server, gate):
    """Unit 1 asks for a register the device does not have: exception 2, named in the
    log, the slave down and polled at a doubling interval; unit 2 is not disturbed.
    Unit 3's request bridges a hole the device refuses: the log says max_gap."""
    spec = {"units": {"1": {"hr": {"0": [1, 2]}}, "2": {"hr": {"0": [7]}},
                      "3": {"hr": {"0": [5], "3": [6]}}}}
    srv = server(spec)
    g = gate([modbus_input([
        slave(1, [point("ok", "holding", 0, "uint16"), point("missing", "holding", 50,
                                                             "uint16")],
              name="bad", interval="200ms", topic="bad"),
        slave(2, [point("v", "holding", 0, "uint16")], name="good", interval="200ms",
              topic="good"),
        slave(3, [point("a", "holding", 0, "uint16"), point("b", "holding", 3, "uint16")],
              name="holey", interval="200ms", topic="holey", max_gap=2),
    ], host="127.0.0.1", port=srv.port, backoff_max="800ms")])
    g.wait_log('warning: bus: slave "bad" (unit 1) is down: exception 2 ILLEGAL DATA '
               'ADDRESS (holding 50-50); polling it again in 200 ms')
    g.wait_log('warning: bus: slave "holey" (unit 3) is down: exception 2 ILLEGAL DATA '
               'ADDRESS (holding 0-3); the request also read 2 registers that no point '
               'asks for, to save requests: lower max_gap if the slave refuses them; '
               'polling it again in 200 ms')
    start = time.monotonic()
    srv.wait_requests(1, 12, timeout=30)   # 6 polls: 6 s at most with the backoff
    elapsed = time.monotonic() - start
    g.stop()
    readings = [r for _, r in g.all_readings()]
    assert not [r for r in readings if r["topic"] in ("bad", "holey")]
    good = [r for r in readings if r["topic"] == "good"]
    assert good and all(r["fields"] == {"v": 7} for r in good)
    # The healthy slave keeps its 200 ms.
    good_times = [r["t"] for r in srv.of(2)]
    assert grid_spread(good_times, 0.2) <= 0.1, gaps(good_times)
    # The bad slave: each poll is two requests (the exception comes on the second);
    # polls 200 ms, then 400, then 800 ms (backoff_max) apart.
    polls = [r["t"] for r in srv.of(1) if r["address"] == 0]
    expected = [0.2, 0.4, 0.8, 0.8, 0.8]
    for got, want in zip(gaps(polls), expected):
        assert want - 0.02 <= got <= want + 0.35, (gaps(polls), elapsed)
    assert len(polls) >= 6
    # Logged once, not once per poll; no "up again".
    log = g.log()
    assert sum('slave "bad" (unit 1) is down' in l for l in log) == 1
    assert not [l for l in log if "up again" in l]
    assert not [l for l in log if 'slave "good"' in l and "down" in l]


def test_silent_slave_costs_the_healthy_one_at_most_one_timeout(server, gate):
    """Unit 9 never answers; its poll would be three requests. Each of its polls
    must cost one response timeout (it stops at the first request), its polls back
    off, and unit 1, on the same 500 ms interval, keeps its rhythm: no poll later than
    one timeout, no drift."""
    spec = {"units": {"1": {"hr": {"0": [42]}}}, "silent": [9]}
    srv = server(spec)
    far_apart = [point(f"x{a}", "holding", a, "uint16") for a in (0, 100, 200)]
    g = gate([modbus_input([
        slave(1, [point("v", "holding", 0, "uint16")], name="healthy", interval="500ms",
              topic="healthy"),
        slave(9, far_apart, name="dead", interval="500ms", topic="dead"),
    ], host="127.0.0.1", port=srv.port, response_timeout="400ms", backoff_max="2s",
        summary_interval="2s")])
    start = time.monotonic()
    srv.wait_requests(1, 12, timeout=30)
    g.wait_log("summary: dead unit=9 state=down")
    g.stop()
    healthy = [r["t"] for r in srv.of(1)]
    dead = srv.of(9)
    # One request per poll of the dead slave, never the second or third point.
    assert {r["address"] for r in dead} == {0}
    # Backoff: 500 ms, then 1 s, then 2 s (backoff_max), each after a 400 ms timeout.
    for got, want in zip(gaps([r["t"] for r in dead]), [0.9, 1.4, 2.4, 2.4]):
        assert want - 0.03 <= got <= want + 0.4, gaps([r["t"] for r in dead])
    # The healthy slave: late by one timeout at most (with slack for a loaded
    # machine), and back on its grid: no drift.
    assert max(gaps(healthy)) <= 0.5 + 0.4 + 0.25, gaps(healthy)
    assert grid_spread(healthy, 0.5) <= 0.4 + 0.25, gaps(healthy)
    assert len([r for _, r in g.all_readings() if r["topic"] == "healthy"]) >= 10
    log = g.log()
    assert sum('slave "dead" (unit 9) is down: no answer (holding 0-0)' in l
               for l in log) == 1
    # The counters: a summary line for the bus, one for the slave that failed.
    summary = [l for l in log if "summary of the last 2 s: 2 slaves, 1 up, 1 down" in l]
    assert summary, log
    m = [re.search(r"summary: dead unit=9 state=down polls=(\d+) failures=(\d+) "
                   r"consecutive=(\d+) last_success_ms=0 "
                   r'last_error="no answer \(holding 0-0\)"', l) for l in log]
    m = [x for x in m if x]
    assert m and m[0].group(1) == m[0].group(2) == m[0].group(3), log
    assert not [l for l in log if "summary: healthy" in l]
    assert time.monotonic() - start < 30


def test_late_answers_are_not_taken_for_the_next_request(server, gate):
    """Unit 3 answers 500 ms late, after its 200 ms timeout; unit 1 is polled every
    100 ms meanwhile. A late answer left in the connection would be read as the answer
    to unit 1's next request (libmodbus refuses it for its transaction id, and unit 1
    would fail): the plugin connects anew after a timeout, so unit 1 never fails."""
    spec = {"units": {"1": {"hr": {"0": [11]}}, "3": {"hr": {"0": [33]}}},
            "delay": {"3": 0.5}}
    srv = server(spec)
    g = gate([modbus_input([
        slave(3, [point("v", "holding", 0, "uint16")], name="slow", interval="300ms",
              topic="slow"),
        slave(1, [point("v", "holding", 0, "uint16")], name="quick", interval="100ms",
              topic="quick"),
    ], host="127.0.0.1", port=srv.port, response_timeout="200ms", backoff_max="1s")])
    srv.wait_requests(3, 4, timeout=30)
    srv.wait_requests(1, 20, timeout=30)
    g.stop()
    log = g.log()
    assert not [l for l in log if 'slave "quick"' in l and "down" in l], log
    assert sum('slave "slow" (unit 3) is down: no answer (holding 0-0)' in l
               for l in log) == 1
    quick = [r for _, r in g.all_readings() if r["topic"] == "quick"]
    assert len(quick) >= 15 and all(r["fields"] == {"v": 11} for r in quick)
    assert not [r for _, r in g.all_readings() if r["topic"] == "slow"]


def test_server_restarted_mid_run(server, gate):
    """The server dies (SIGKILL) and comes back on the same port with other values:
    run() fails, the daemon restarts it with the instance's backoff, and polling
    resumes without restarting coapgated."""
    srv = server({"units": {"1": {"hr": {"0": [1]}}}})
    g = gate([modbus_input([slave(1, [point("v", "holding", 0, "uint16")],
                                  interval="200ms")],
                           host="127.0.0.1", port=srv.port, restart_backoff_min="100ms",
                           restart_backoff_max="400ms")])
    g.wait_reading(lambda r: r["fields"] == {"v": 1})
    pid = g.d.proc.pid
    srv.stop(kill=True)
    g.wait_log("run failed")
    # Refused while the server is away: the daemon keeps retrying.
    g.wait_log("cannot connect: Connection refused")
    srv.start({"units": {"1": {"hr": {"0": [2]}}}})
    t, _ = g.wait_reading(lambda r: r["fields"] == {"v": 2}, timeout=15)
    assert g.d.proc.poll() is None and g.d.proc.pid == pid
    # And it goes on polling.
    n = len(g.all_readings())
    g.readings(n + 3)
    # The poll the kill cut short failed, and counts as the slave's. (The log is
    # another pipe than the readings: wait for it, do not assume its order.)
    g.wait_log('slave "unit1" (unit 1) is up again after 1 failed poll (')
    log = g.log()
    assert sum('slave "unit1" (unit 1) is down: ' in l for l in log) == 1, log
    assert sum('slave "unit1" (unit 1) is up again after 1 failed poll (' in l
               for l in log) == 1, log
    assert sum(f"tcp 127.0.0.1:{srv.port}: connected" in l for l in log) >= 2


def test_server_closing_gracefully_mid_run(server, gate):
    """The same with SIGTERM: the connection is closed with a FIN, not reset."""
    srv = server({"units": {"1": {"hr": {"0": [1]}}}})
    g = gate([modbus_input([slave(1, [point("v", "holding", 0, "uint16")],
                                  interval="100ms")],
                           host="127.0.0.1", port=srv.port, restart_backoff_min="100ms",
                           restart_backoff_max="200ms")])
    g.wait_reading(lambda r: r["fields"] == {"v": 1})
    srv.stop()
    g.wait_log("run failed")
    srv.start({"units": {"1": {"hr": {"0": [3]}}}})
    g.wait_reading(lambda r: r["fields"] == {"v": 3}, timeout=15)


def test_slave_whose_requests_drop_the_connection(server, gate):
    """Some gateways close the connection when asked for a unit they cannot reach.
    That slave's poll fails and backs off like any other, so that after each new
    connection the healthy slave gets its turn rather than the same slave again."""
    srv = server({"units": {"1": {"hr": {"0": [1]}}}, "drop": [5]})
    g = gate([modbus_input([
        slave(5, [point("v", "holding", 0, "uint16")], name="dropper", interval="200ms",
              topic="dropper"),
        slave(1, [point("v", "holding", 0, "uint16")], name="healthy", interval="200ms",
              topic="healthy"),
    ], host="127.0.0.1", port=srv.port, backoff_max="1s", restart_backoff_min="50ms",
        restart_backoff_max="200ms")])
    srv.wait_requests(1, 12, timeout=30)
    srv.wait_requests(5, 4, timeout=30)
    g.stop()
    # The dropper is polled at its doubling interval, not at every reconnection.
    dropped = [r["t"] for r in srv.of(5)]
    for got, want in zip(gaps(dropped), [0.2, 0.4, 0.8, 1.0]):
        assert got >= want - 0.02, gaps(dropped)
    healthy = [r for _, r in g.all_readings() if r["topic"] == "healthy"]
    assert len(healthy) >= 12 and all(r["fields"] == {"v": 1} for r in healthy)
    log = g.log()
    assert sum('slave "dropper" (unit 5) is down' in l for l in log) == 1, log
    assert any("run failed" in l for l in log)


# --------------------------------------------------------------------------------------
# Pacing


def test_pause_between_requests(server, gate):
    """pause = 150 ms: between any two requests on the bus, whichever slaves they are
    for, and after a timeout as after an answer."""
    spec = {"units": {"1": {"hr": {"0": [1], "10": [2]}}, "2": {"hr": {"0": [3]}}},
            "silent": [9]}
    srv = server(spec)
    g = gate([modbus_input([
        slave(1, [point("a", "holding", 0, "uint16"), point("b", "holding", 10, "uint16")],
              interval="100ms"),
        slave(2, [point("a", "holding", 0, "uint16")], interval="100ms"),
        slave(9, [point("a", "holding", 0, "uint16")], interval="100ms"),
    ], host="127.0.0.1", port=srv.port, pause="150ms", response_timeout="200ms",
        backoff_max="100ms")])
    srv.wait_requests(9, 3, timeout=30)
    srv.wait_requests(1, 8, timeout=30)
    g.stop()
    reqs = sorted(srv.requests, key=lambda r: r["t"])
    assert len(reqs) >= 12
    for a, b in zip(reqs, reqs[1:]):
        gap = b["t"] - a["t"]
        # After the silent unit, the timeout comes first, then the pause.
        need = 0.2 + 0.15 if a["unit"] == 9 else 0.15
        assert gap >= need - 0.005, (a, b, gap)
    # The bus is busy: the pause, not the interval, sets the pace.
    assert statistics.median(gaps([r["t"] for r in reqs if r["unit"] != 9])) < 0.3


# --------------------------------------------------------------------------------------
# Configuration


HEADER = """\
daemon: { log_target = "stderr"; };
uplink: { enabled = false; };
"""

# The daemon stops at the first instance that refuses its configuration, so each
# instance is a file of its own: (text, [(line, part of the message), ...]).
BAD_CONFIGS = {
    "tcp": (HEADER + """\
inputs = (
  { name = "bus"; plugin = "modbus"; host = "127.0.0.1";
    slaves = (
      { unit = 1; name = "meter"; points = (
          { name = "p"; kind = "coil"; address = 0;
            type = "float32"; },
          { name = "q"; kind = "holding"; address = 65535; type = "int32"; },
          { name = "r"; kind = "holding"; address = 10; type = "int32"; },
          { name = "s"; kind = "holding"; address = 11; type = "int16"; },
          { name = "r"; kind = "input"; address = 0; type = "bit"; },
          { name = "t"; kind = "input"; address = 1; type = "float64";
            order = "CDAB"; },
          { name = "u"; kind = "input"; address = 9; type = "int16"; bit = 3; },
          { name = "v"; kind = "input"; address = 20; type = "string"; },
          { name = "w"; kind = "input"; address = 40; type = "bool"; scale = 2.0; }
      ); },
      { unit = 248; name = "meter"; topic = "a//b";
        points = ( { name = "x"; kind = "discrete"; address = 0; type = "bool"; } ); }
    ); }
);
""", [
        (8, 'input "bus": slave "meter": point "p": type "float32" does not fit kind '
            '"coil": coils and discrete inputs are single bits, use type "bool"'),
        (9, 'point "q": int32 at address 65535 spans 2 registers and ends past address '
            '65535'),
        (11, 'point "s" (holding 11-11) overlaps point "r" (holding 10-11)'),
        (12, 'point name "r" is used twice'),
        (12, 'point "r": type "bit" needs bit = 0 to 15'),
        (14, 'point "t": order "CDAB" is for 32-bit values; the 64-bit analogue for type '
             '"float64" is "GHEFCDAB"'),
        (15, 'point "u": bit only applies to type "bit", not "int16"'),
        (16, 'point "v": type "string" needs length'),
        (17, 'point "w": scale and offset only apply to numbers, not to type "bool"'),
        (19, 'slave "meter": unit 248 is not a Modbus unit id'),
        (19, 'slave "meter": topic "a//b" is not a 1NCE OS topic'),
        (19, 'slave name "meter" is used twice'),
    ]),
    "rtu": (HEADER + """\
inputs = (
  { name = "serial"; plugin = "modbus"; transport = "rtu"; device = "/dev/ttyUSB0";
    baud = 14400; rs485 = true;
    rts = "up";
    slaves = ( { unit = 0; points = ( { name = "x"; kind = "holding"; address = 0;
                                        type = "uint16"; } ); } ); }
);
""", [
        (5, 'input "serial": baud 14400 is not a standard rate'),
        (6, 'input "serial": rts and rs485 = true exclude each other'),
        (7, 'input "serial": slave "unit0": unit 0 cannot be polled on a serial line'),
    ]),
    "nohost": (HEADER + """\
inputs = (
  { name = "nohost"; plugin = "modbus"; device = "/dev/ttyS0";
    slaves = ( { unit = 1; points = ( { name = "x"; kind = "holding"; address = 0;
                                        type = "uint16"; order = "BADC"; } ); } ); }
);
""", [
        (4, 'input "nohost": transport "tcp" needs host'),
        (4, 'input "nohost": device is for transport "rtu"'),
        (6, 'input "nohost": slave "unit1": point "x": order "BADC" does not fit type '
            '"uint16", a single register: use "AB" or "BA"'),
    ]),
    "daemon": (HEADER + """\
inputs = (
  { name = "typo"; plugin = "modbus"; host = "h";
    slaves = ( { unit = 1; points = ( { name = "x"; kind = "holding"; adress = 0;
                                        type = "uint16"; } ); } ); }
);
""", [
        (5, 'unknown option "slaves[0].points[0].adress"'),
        (5, 'missing required option "slaves[0].points[0].address"'),
    ]),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_configuration_errors_with_file_and_line(tmp_path, case):
    text, expected = BAD_CONFIGS[case]
    path = tmp_path / "bad.conf"
    path.write_text(text)
    r = run(["-c", str(path), "-P", PLUGIN_DIR, "-t"])
    assert r.returncode == 78, r.stderr
    lines = r.stderr.splitlines()
    for line, part in expected:
        want = f"{path}:{line}: "
        assert any(want in l and part in l for l in lines), (line, part, r.stderr)
    # Every mistake is reported, each once.
    reported = [l for l in lines if f"{path}:" in l and "refused its configuration" not in l]
    assert len(reported) == len(expected), r.stderr


def test_a_good_configuration_checks(tmp_path):
    path = tmp_path / "good.conf"
    example = (SOURCE_DIR / "etc" / "examples" / "modbus.conf").read_text()
    path.write_text(example)
    r = run(["-c", str(path), "-P", PLUGIN_DIR, "-t"])
    assert r.returncode == 0, r.stderr


def test_readme_lists_every_option():
    """The README's option tables name exactly the keys --help-plugin prints."""
    r = run(["-P", PLUGIN_DIR, "--help-plugin", "modbus"])
    assert r.returncode == 0, r.stderr
    plugin_part = r.stdout.split('Options of plugin "modbus":', 1)[1]
    keys = set(re.findall(r"^\s+(\w+) \(", plugin_part, re.M))
    readme = (SOURCE_DIR / "plugins" / "modbus" / "README.md").read_text()
    options = readme.split("\n## Options\n", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(\w+)` \|", options, re.M))
    assert keys == documented, (keys - documented, documented - keys)


# --------------------------------------------------------------------------------------
# A full queue


def cpu_seconds(pid):
    """User and system time of a process so far (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_full_queue_with_block_holds_the_poll_without_spinning(server, gate, small_fs):
    """when_full = "block" with block_timeout = 0: cg_emit() answers "no room" at
    once, and the input keeps its reading and offers it again after a pause instead
    of spinning on a CPU; once there is room, the polls go on."""
    srv = server({"units": {"1": {"hr": {"0": text_registers("x" * 240, 120)}}}})
    g = gate([modbus_input([slave(1, [point("pad", "holding", 0, "string", length=120)],
                                  interval="2ms")],
                           host="127.0.0.1", port=srv.port)],
             test=False, state_dir=small_fs / "state",
             queue=dict(FULL_QUEUE, when_full="block", block_timeout="0"))
    g.wait_log(": connected")  # the queue is open before any input starts
    wait_until(lambda: queue_dump(g.state_dir), 20, "the first reading")
    ballast = leave_free(small_fs, 1 << 20)

    def stalled():
        before = len(queue_dump(g.state_dir))
        time.sleep(1.0)
        return before if len(queue_dump(g.state_dir)) == before else None

    count = wait_until(stalled, 60, "the queue to be full", interval=0)
    t0, cpu0 = time.monotonic(), cpu_seconds(g.d.proc.pid)
    time.sleep(2.0)
    busy = (cpu_seconds(g.d.proc.pid) - cpu0) / (time.monotonic() - t0)
    assert busy < 0.25, f"coapgated used {busy:.0%} of a CPU while the queue was full"
    assert len(queue_dump(g.state_dir)) == count

    ballast.unlink()
    wait_until(lambda: len(queue_dump(g.state_dir)) > count + 100, 30,
               "polls to go on once there is room", interval=0.3)
    assert g.stop() == 0, "\n".join(g.log()[-30:])
