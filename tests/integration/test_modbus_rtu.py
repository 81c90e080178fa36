# SPDX-License-Identifier: MIT
"""The `modbus` input over Modbus RTU (plugins/modbus/README.md): pymodbus as an RTU
slave on one end of a socat pty pair (ptypair.py), coapgated on the other, readings
read from `coapgated --test`:

  * values of several types and byte orders, coils and discrete inputs, read with
    coalesced requests, the serial settings and `rts` accepted;
  * a slave that never answers next to a healthy one on the same line;
  * the pause between requests;
  * the adapter unplugged and plugged in again: run() fails, the daemon reopens the
    port with its backoff, polling resumes without restarting coapgated;
  * `rs485 = true` on a port whose driver has no RS-485 mode: a clear message.

A pty applies no baud rate, so timings here are the plugin's, not the line's."""

import time
from pathlib import Path

import pytest

from conftest import PLUGIN_DIR
from modbus import gate, server  # noqa: F401  (fixtures)
from modbus import gaps, grid_spread
from modbus import modbus_input, point, registers, slave, text_registers, typed
from ptypair import line  # noqa: F401  (fixture)

pytestmark = pytest.mark.skipif(not (Path(PLUGIN_DIR) / "modbus.so").exists(),
                                reason="modbus.so is not built")


def rtu_input(pair, slaves, **options):
    settings = dict(transport="rtu", device=str(pair.device), baud=19200, parity="none",
                    stop_bits=2)
    settings.update(options)
    return modbus_input(slaves, **settings)


SPEC = {"units": {
    "1": {"hr": {"0": registers("float32", -21.5, "CDAB") + registers("int64", -2, "HGFEDCBA")
                 + text_registers("RTU ok", 4, order="BA") + [0x8001]},
          "ir": {"100": registers("uint32", 4000000000, "BADC")},
          "co": {"0": [1, 0, 1]}, "di": {"10": [0, 1]}},
    "2": {"hr": {"0": [7]}},
}, "silent": [9]}

POINTS = [
    point("temp", "holding", 0, "float32", order="CDAB"),
    point("count", "holding", 2, "int64", order="HGFEDCBA"),
    point("name", "holding", 6, "string", length=4, order="BA"),
    point("status", "holding", 10, "uint16"),
    point("alarm", "holding", 10, "bit", bit=15),
    point("energy", "input", 100, "uint32", order="BADC", scale=0.01),
    point("k0", "coil", 0, "bool"), point("k1", "coil", 1, "bool"),
    point("k2", "coil", 2, "bool"),
    point("d10", "discrete", 10, "bool"), point("d11", "discrete", 11, "bool"),
]
EXPECTED = {"temp": -21.5, "count": -2, "name": "RTU ok", "status": 0x8001, "alarm": True,
            "energy": 4000000000 * 0.01, "k0": True, "k1": False, "k2": True,
            "d10": False, "d11": True}


def test_rtu_values_next_to_a_silent_slave(line, server, gate):
    srv = server(SPEC, serial=line.peer)
    g = gate([rtu_input(line, [
        slave(1, POINTS, name="meter", interval="400ms", topic="meter"),
        slave(9, [point("x", "holding", 0, "uint16"), point("y", "holding", 50, "uint16")],
              name="dead", interval="400ms", topic="dead"),
        slave(2, [point("v", "holding", 0, "uint16")], name="other", interval="400ms",
              topic="other"),
    ], response_timeout="300ms", backoff_max="1s")])
    srv.wait_requests(1, 4 * 10, timeout=30)   # 4 requests per poll, 10 polls
    g.stop()
    readings = [r for _, r in g.all_readings()]
    meter = [r for r in readings if r["topic"] == "meter"]
    assert meter and all(typed(r["fields"]) == typed(EXPECTED) for r in meter)
    assert [r["fields"] for r in readings if r["topic"] == "other"][-1] == {"v": 7}
    assert not [r for r in readings if r["topic"] == "dead"]
    # Coalesced: holding 0-10, input 100-101, coils 0-2, discrete 10-11 per poll.
    per_poll = [(3, 0, 11), (4, 100, 2), (1, 0, 3), (2, 10, 2)]
    seen = [(r["fc"], r["address"], r["count"]) for r in srv.of(1)]
    assert seen[:len(seen) // 4 * 4] == per_poll * (len(seen) // 4)
    # The dead slave: one request per poll (never address 50), backing off.
    dead = srv.of(9)
    assert {r["address"] for r in dead} == {0}
    assert len(dead) <= 6
    # The healthy slaves: late by one timeout at most, and back on their grid.
    for unit in (1, 2):
        starts = [r["t"] for r in srv.of(unit) if (r["fc"], r["address"]) == (3, 0)]
        assert grid_spread(starts, 0.4) <= 0.3 + 0.25, gaps(starts)
    assert sum('slave "dead" (unit 9) is down: no answer (holding 0-0)' in l
               for l in g.log()) == 1
    assert any("rtu " + str(line.device) + " 19200 8N2: opened" in l for l in g.log())


def test_rtu_pause_between_requests(line, server, gate):
    srv = server(SPEC, serial=line.peer)
    g = gate([rtu_input(line, [slave(1, POINTS, interval="100ms"),
                               slave(2, [point("v", "holding", 0, "uint16")],
                                     interval="100ms")],
                        pause="120ms", rts="up", parity="even", stop_bits=1)])
    srv.wait_requests(1, 12, timeout=30)
    g.stop()
    reqs = sorted(srv.requests, key=lambda r: r["t"])
    assert len(reqs) >= 14
    assert min(gaps([r["t"] for r in reqs])) >= 0.12 - 0.005
    assert [r["fields"] for _, r in g.all_readings()][0] == EXPECTED


def test_rtu_adapter_unplugged_and_plugged_in_again(line, server, gate):
    srv = server(SPEC, serial=line.peer)
    g = gate([rtu_input(line, [slave(2, [point("v", "holding", 0, "uint16")],
                                     interval="100ms")],
                        restart_backoff_min="100ms", restart_backoff_max="400ms")])
    g.wait_reading(lambda r: r["fields"] == {"v": 7})
    pid = g.d.proc.pid
    srv.stop()
    line.unplug()
    g.wait_log("run failed")
    g.wait_log(f"rtu {line.device} 19200 8N2: cannot open: No such file or directory")
    line.start()
    srv2 = server({"units": {"2": {"hr": {"0": [8]}}}}, serial=line.peer)
    g.wait_reading(lambda r: r["fields"] == {"v": 8}, timeout=15)
    assert g.d.proc.poll() is None and g.d.proc.pid == pid
    # The new server answered it; its request log is another pipe, so wait for it.
    srv2.wait_requests(2, 1, timeout=10)
    # The poll the unplugging cut short failed, and counts as the slave's. (The log
    # is another pipe than the readings: wait for it, do not assume its order.)
    g.wait_log('slave "unit2" (unit 2) is up again after 1 failed poll (')
    assert sum('slave "unit2" (unit 2) is down' in l for l in g.log()) == 1, g.log()


def test_rtu_rs485_mode_on_a_port_without_it(line, gate):
    g = gate([rtu_input(line, [slave(2, [point("v", "holding", 0, "uint16")])],
                        rs485=True, restart_backoff_min="5s")])
    t, msg = g.wait_log("cannot switch to RS-485 mode")
    assert "the driver of this port has no RS-485 mode" in msg
    assert "rs485 = false" in msg
    g.wait_log("run failed")
