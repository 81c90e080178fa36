# SPDX-License-Identifier: MIT
"""The uplink's retransmissions on the wire, with 30 % of the emulator's answers lost
(`drop out 30`) and tshark capturing the emulator's DTLS port on loopback.

DTLS hides the CoAP messages from the capture, so the CoAP side is checked in the
emulator: a retransmission must carry the message ID of the original, so the emulator
recognises it as a duplicate (counted in stats, not processed again) and no payload
reaches the sink twice from one session (a message whose every retransmission lost
its answer is sent again in the next session, after a logged give-up: at least once);
distinct messages carry distinct message IDs. The capture is
the evidence that retransmissions happened at all: the gateway sent more DTLS
application-data datagrams than the emulator accepted messages.

The loss is in the answers only (`drop out`): a lost request is simply retransmitted
and never seen twice, so only a lost answer makes a duplicate the emulator can count."""

import shutil
import subprocess
import time

# The fixtures live in nce.py, uplink.py and conftest.py; importing them makes pytest
# use them.
from nce import Proc, emulator  # noqa: F401
from uplink import gateway  # noqa: F401
from uplink import (DEVICE_ADDR, DEVICES, SinkReader, check_counter_reading,
                    check_duplicates_bound, duplicates)

TSHARK = "tshark"


def test_retransmissions_reuse_their_message_id(gateway, emulator, tmp_path):
    assert shutil.which(TSHARK), "tshark is not installed"
    emu = emulator(DEVICES)
    pcap = tmp_path / "coaps.pcapng"
    capture = Proc([TSHARK, "-i", "lo", "-f", f"udp port {emu.coaps_port}", "-w", pcap],
                   "tshark")
    try:
        capture.wait_line(lambda l: "Capturing on" in l, timeout=30)
        sink = SinkReader(emu)
        # Small messages (about 5 readings each), so that there are many of them and
        # some answers are certainly lost: 0.7^30 that none is.
        count = 150
        gw = gateway(emu, counter=dict(interval="2ms", count=count),
                     uplink=dict(max_payload=256))
        sink.wait_for(range(1, 2), timeout=30)
        emu.ctl_ok("drop out 30")
        t0 = time.monotonic()
        counts = sink.wait_for(range(1, count + 1), timeout=120)
        elapsed = time.monotonic() - t0
        emu.ctl_ok("drop out 0")
        assert gw.stop() == 0, gw.log_text()
        # Let tshark write what it has seen.
        time.sleep(0.5)
    finally:
        capture.stop(timeout=10)

    st = emu.stats()
    deliveries = sink.poll()
    for r in sink.readings():
        check_counter_reading(r)
    assert set(counts) == set(range(1, count + 1))

    # Distinct messages, distinct MIDs (per source port, which is the MID's scope).
    seen = {}
    for d in deliveries:
        key = (d.port, d.mid)
        assert key not in seen, (f"MID {d.mid} from port {d.port} used for two messages:\n"
                                 f"{seen[key].payload!r}\n{d.payload!r}")
        seen[key] = d
    # Within a session a payload is processed once: its retransmissions are recognised.
    # Only a message whose every retransmission lost its answer comes again, in the
    # next session (from another port), once the gateway has given that session up.
    ports_of = {}
    for d in deliveries:
        ports_of.setdefault(d.payload, []).append(d.port)
    for payload, ports in ports_of.items():
        assert len(set(ports)) == len(ports), \
            f"a message was processed twice in one session (port {ports}):\n{payload!r}"
    check_duplicates_bound(gw, sink, duplicates(counts))

    # The emulator saw retransmissions with the original MID and answered them again.
    assert st["datagrams"]["dropped_out"] > 0, st
    assert st["duplicates"] > 0, st
    assert st["accepted"] == len(deliveries), st

    # On the wire: every datagram the gateway sent to the DTLS port, and those of them
    # that carry application data (content type 23), i.e. CoAP messages.
    fields = subprocess.run([TSHARK, "-r", pcap, "-T", "fields", "-e", "ip.src",
                             "-e", "udp.dstport", "-e", "dtls.record.content_type"],
                            capture_output=True, text=True, timeout=60)
    assert fields.returncode == 0, fields.stderr
    from_gateway = [l.split("\t") for l in fields.stdout.splitlines()
                    if l.split("\t")[:2] == [DEVICE_ADDR, str(emu.coaps_port)]]
    app_data = [f for f in from_gateway if "23" in f[2].split(",")]
    print(f"\ndrop out 30 %: {count} readings in {len(deliveries)} messages, delivered in "
          f"{elapsed:.1f} s; emulator duplicates {st['duplicates']}, dropped answers "
          f"{st['datagrams']['dropped_out']}; captured {len(from_gateway)} datagrams from "
          f"the gateway, {len(app_data)} with application data")
    assert len(app_data) >= st["accepted"] + st["duplicates"], \
        f"{len(app_data)} application-data datagrams, but {st['accepted']} messages " \
        f"accepted and {st['duplicates']} duplicates"
    assert len(app_data) > st["accepted"]
