# SPDX-License-Identifier: MIT
"""The uplink's message IDs on the wire, captured with tshark on loopback.

RFC 7252 and 1NCE OS: a retransmission carries the MID of the message it repeats (so
the server answers it again instead of processing it twice), and no MID is reused for
a different message within EXCHANGE_LIFETIME (247 s). DTLS hides the MIDs, so this
test runs the uplink against the emulator's plain CoAP endpoint (`endpoint =
"coap://…"`, which 1NCE also offers); the sending code is the same. The emulator drops
20 % of the datagrams in each direction, so there are retransmissions to look at; small
messages (max_payload 128) make about 40 of them."""

import json
import shutil
import socket
import subprocess
import time

import pytest

from conftest import TEST_PLUGIN_DIR
from nce import emulator  # noqa: F401  (fixture)

ICCID = "8988228066600000001"
GATEWAY_ADDRESS = "127.0.0.2"
READINGS = 100
EXCHANGE_LIFETIME = 247


def decoded_readings(sink_lines):
    """Every (seq) the emulator accepted, decoded from the payloads (docs/ENCODING.md)."""
    import base64
    seqs = []
    for line in sink_lines:
        message = json.loads(base64.b64decode(line["payload"]["value"]))
        for group in message["g"]:
            seqs += [message["s"] + row[0] for row in group["r"]]
    return seqs


class Capture:
    """tshark on lo for one UDP port, started and stopped by the test."""

    def __init__(self, port, path):
        self.port = port
        self.path = path
        self.proc = subprocess.Popen(
            ["tshark", "-i", "lo", "-f", f"udp port {port}", "-w", str(path), "-q"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # tshark says "Capturing on 'Loopback: lo'" a moment before it captures: probe
        # datagrams from an address no test uses go out until one is in the file.
        for line in self.proc.stderr:
            if "Capturing on" in line:
                break
        else:
            raise AssertionError(f"tshark did not start: exit {self.proc.wait()}")
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.9", 0))
        deadline = time.monotonic() + 15
        while not path.exists() or path.stat().st_size <= self._header_size():
            assert time.monotonic() < deadline, "tshark captured nothing"
            probe.sendto(b"probe", ("127.0.0.1", port))
            time.sleep(0.1)
        probe.close()

    def _header_size(self):
        """The size of the file before its first packet (its pcapng header blocks)."""
        if not hasattr(self, "_header"):
            deadline = time.monotonic() + 15
            while not self.path.exists() or self.path.stat().st_size == 0:
                assert time.monotonic() < deadline, "tshark wrote no file"
                time.sleep(0.05)
            time.sleep(0.1)
            self._header = self.path.stat().st_size
        return self._header

    def _probes_in_file(self):
        out = subprocess.run(["tshark", "-r", str(self.path), "-Y", "ip.src == 127.0.0.9"],
                             capture_output=True, text=True, timeout=60).stdout
        return len(out.splitlines())

    def sync(self):
        """Return once everything sent before the call is in the file: dumpcap writes
        in order, so a probe sent now and found in the file is the barrier."""
        before = self._probes_in_file()
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.9", 0))
        deadline = time.monotonic() + 30
        while self._probes_in_file() <= before:
            assert time.monotonic() < deadline, "tshark stopped writing"
            probe.sendto(b"probe", ("127.0.0.1", self.port))
            time.sleep(0.2)
        probe.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)

    def coap_rows(self):
        """(time, source address, source port, type, mid, token, code, datagram) of every
        CoAP datagram."""
        out = subprocess.run(
            # The emulator's port is not 5683: tell tshark it is CoAP.
            ["tshark", "-r", str(self.path), "-d", f"udp.port=={self.port},coap",
             "-Y", "coap", "-T", "fields", "-E",
             "separator=\t", "-e", "frame.time_relative", "-e", "ip.src", "-e", "udp.srcport",
             "-e", "coap.type",
             "-e", "coap.mid", "-e", "coap.token", "-e", "coap.code", "-e", "udp.payload"],
            capture_output=True, text=True, timeout=120, check=True).stdout
        rows = []
        for line in out.splitlines():
            f = line.split("\t")
            f += [""] * (8 - len(f))
            rows.append((float(f[0]), f[1], int(f[2]), int(f[3]), int(f[4]), f[5], int(f[6]),
                         f[7]))
        return rows


@pytest.fixture
def capture():
    started = []

    def start(port, path):
        c = Capture(port, path)
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


def test_retransmissions_reuse_their_mid_and_new_messages_never_do(
        emulator, capture, daemon, write_config, tmp_path):
    assert shutil.which("tshark"), "tshark is needed (scripts/install-deps --test)"
    e = emulator([{"iccid": ICCID, "address": GATEWAY_ADDRESS}],
                 extra_args=["-x", "drop both 20"])
    cap = capture(e.coap_port, tmp_path / "uplink.pcapng")

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    conf = write_config(
        f'daemon: {{ state_dir = "{state}"; log_target = "stderr"; }};\n'
        f'uplink: {{ endpoint = "coap://127.0.0.1:{e.coap_port}/"; '
        f'bind_address = "{GATEWAY_ADDRESS}"; max_payload = 128; linger = "50ms"; '
        f'backoff_min = "100ms"; backoff_max = "1s"; ack_timeout = "1s"; }};\n'
        f'inputs = ( {{ name = "c"; plugin = "counter"; topic = "capture"; '
        f'interval = "2ms"; count = {READINGS}; }} );\n')
    gw = daemon(["-c", str(conf), "-P", TEST_PLUGIN_DIR])

    deadline = time.monotonic() + 240
    while True:
        seqs = decoded_readings(e.sink())
        if len(set(seqs)) == READINGS:
            break
        assert time.monotonic() < deadline, \
            f"{len(set(seqs))} of {READINGS} readings arrived:\n" + "\n".join(
                l for _, l in gw.stderr[-20:])
        time.sleep(0.2)
    assert gw.stop() == 0
    cap.sync()
    cap.stop()

    rows = cap.coap_rows()
    requests = [r for r in rows if r[1] == GATEWAY_ADDRESS and r[3] == 0 and r[6] == 2]
    assert len(requests) >= 10, f"too few POSTs captured: {len(requests)}"

    # Message IDs are per endpoint (RFC 7252 §4.4): a new session after a failure is a
    # new source port with IDs of its own.
    by_mid = {}
    for t, _, port, _, mid, token, _, payload in requests:
        by_mid.setdefault((port, mid), []).append((t, token, payload))
    repeated = {mid: sends for mid, sends in by_mid.items() if len(sends) > 1}
    # 20 % loss each way: some message needed more than one try.
    assert repeated, "no retransmission was captured despite 20 % loss"
    for mid, sends in by_mid.items():
        first = sends[0][0]
        # Same MID within the exchange lifetime: the same message (token and payload).
        same_window = [s for s in sends if s[0] - first < EXCHANGE_LIFETIME]
        assert len({(tok, pl) for _, tok, pl in same_window}) == 1, \
            f"MID {mid} (port, id) was used for different messages: {same_window}"

    # A retransmission that reached the emulator after the original had (its answer was
    # lost) was recognised by its MID and not processed again: each (port, MID) the
    # emulator accepted, it accepted once, and each was one the gateway sent. With about
    # 40 messages and 20 % loss each way, some retransmissions arrived (the chance that
    # none did is below 1 %).
    stats = e.stats()
    assert stats["duplicates"] >= 1, stats
    accepted = [(line["coap"]["port"], line["coap"]["mid"]) for line in e.sink()]
    twice = {k for k in accepted if accepted.count(k) > 1}
    assert not twice, f"processed more than once: {sorted(twice)}"
    unknown = set(accepted) - set(by_mid)
    assert not unknown, f"accepted but never captured from the gateway: {sorted(unknown)}"
