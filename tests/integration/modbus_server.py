#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A Modbus server for the tests of the `modbus` input: pymodbus (Debian's
python3-pymodbus 3.0) serving known values over TCP or as an RTU slave on a serial
port (one end of a socat pty pair), and telling the test about every request it sees.

    modbus_server.py --spec SPEC.json (--port N | --serial DEVICE) [--log requests|none]

SPEC is JSON:

    {"units": {"1": {"hr": {"0": [1, 2, 3], "100": 7}, "ir": {...},
                     "co": {"0": [1, 0, 1]}, "di": {...}}},
     "silent": [9],           unit ids that exist but never answer
     "delay": {"3": 0.7},     seconds before a unit's answers are sent
     "drop": [5]}             unit ids whose requests make it close the connection
                              (as some gateways do for a unit they cannot reach)

Each table is sparse: only the addresses listed exist ({"start": [values...]} or
{"address": value}), so a request that touches any other address gets exception 2,
ILLEGAL DATA ADDRESS, as from a real device. A unit that is neither in "units" nor in
"silent" does not exist: over TCP it gets exception 11 (gateway target failed to
respond), on a serial line no answer.

On stdout, one JSON object per line, flushed at once:

    {"ready": PORT}                        once it serves (PORT null on a serial line)
    {"t": MONOTONIC, "unit": U, "fc": F, "address": A, "count": N}
                                           for each request, when it arrives
    {"requests": N}                        when it is stopped with SIGTERM

t is time.monotonic() of this process, the same clock (CLOCK_MONOTONIC) as the
test's. `--log none` leaves out the request lines (the benchmark only counts)."""

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time

from pymodbus.datastore import ModbusServerContext, ModbusSlaveContext
from pymodbus.datastore import ModbusSparseDataBlock
from pymodbus.framer.rtu_framer import ModbusRtuFramer
from pymodbus.server.async_io import (ModbusConnectedRequestHandler, ModbusSerialServer,
                                      ModbusSingleRequestHandler, ModbusTcpServer)

REQUESTS = 0


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class LoggingSlaveContext(ModbusSlaveContext):
    """A unit's tables; every request is validated first, so it is seen here, also
    one that will get an exception."""

    def __init__(self, unit, log, **kwargs):
        super().__init__(zero_mode=True, **kwargs)
        self.unit = unit
        self.log = log

    def validate(self, fc_as_hex, address, count=1):
        global REQUESTS
        REQUESTS += 1
        if self.log:
            say({"t": time.monotonic(), "unit": self.unit, "fc": fc_as_hex,
                 "address": address, "count": count})
        return super().validate(fc_as_hex, address, count)


def block(table):
    """A sparse block from {"start": [values] or value}; an empty one when absent."""
    values = {}
    for start, v in (table or {}).items():
        for i, x in enumerate(v if isinstance(v, list) else [v]):
            values[int(start) + i] = int(x)
    b = ModbusSparseDataBlock()
    b.values = values
    b.default_value = dict(values)
    return b


class SilentContext:
    """A unit that exists but never answers: the request is seen (logged) and dropped."""

    def __init__(self, unit, log):
        self.unit = unit
        self.log = log


def make_handler(base, delays, silent, drop):
    """The request handler class: pymodbus's, with silent units, late answers and
    dropped connections."""

    class Handler(base):
        def execute(self, request, *addr):
            unit = request.unit_id
            if unit in drop:
                global REQUESTS
                REQUESTS += 1
                if drop[unit]:
                    say({"t": time.monotonic(), "unit": unit, "fc": request.function_code,
                         "address": getattr(request, "address", None),
                         "count": getattr(request, "count", None)})
                self.transport.close()
                return
            if unit in silent:
                REQUESTS += 1
                if silent[unit]:
                    say({"t": time.monotonic(), "unit": unit, "fc": request.function_code,
                         "address": getattr(request, "address", None),
                         "count": getattr(request, "count", None)})
                return
            delay = delays.get(unit)
            if delay:
                asyncio.get_event_loop().call_later(delay, base.execute, self, request, *addr)
                return
            base.execute(self, request, *addr)

    return Handler


async def serve(args, spec):
    log = args.log == "requests"
    units = {}
    for unit, tables in spec.get("units", {}).items():
        units[int(unit)] = LoggingSlaveContext(
            int(unit), log, hr=block(tables.get("hr")), ir=block(tables.get("ir")),
            co=block(tables.get("co")), di=block(tables.get("di")))
    silent = {int(u): log for u in spec.get("silent", [])}
    delays = {int(u): float(d) for u, d in spec.get("delay", {}).items()}
    drop = {int(u): log for u in spec.get("drop", [])}
    # Silent units must pass the RTU framer's unit filter to be seen at all.
    context = ModbusServerContext(slaves=dict(units), single=False)
    for u in list(silent) + list(drop):
        context._slaves[u] = SilentContext(u, log)  # noqa: SLF001 - see make_handler

    if args.serial:
        handler = make_handler(ModbusSingleRequestHandler, delays, silent, drop)
        server = ModbusSerialServer(context, framer=ModbusRtuFramer, port=args.serial,
                                    baudrate=args.baud, handler=handler,
                                    ignore_missing_slaves=True)
        await server.start()
        say({"ready": None})
        await asyncio.Event().wait()
    else:
        handler = make_handler(ModbusConnectedRequestHandler, delays, silent, drop)
        server = ModbusTcpServer(context, address=("127.0.0.1", args.port), handler=handler,
                                 allow_reuse_address=True)
        task = asyncio.create_task(server.serve_forever())
        await server.serving
        say({"ready": server.server.sockets[0].getsockname()[1]})
        await task


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--serial")
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--log", choices=("requests", "none"), default="requests")
    args = parser.parse_args()
    with open(args.spec) as f:
        spec = json.load(f)
    # pymodbus logs a closed connection as an error; the tests close many.
    logging.basicConfig(level=logging.CRITICAL)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

    def stop(*_):
        say({"requests": REQUESTS})
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        asyncio.run(serve(args, spec))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
