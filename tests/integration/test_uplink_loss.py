# SPDX-License-Identifier: MIT
"""The uplink on a bad network, simulated by nce-emulator's relay: a 30-second silence
(every datagram dropped both ways) while readings flow must end with every reading
delivered; duplicates are allowed (at least once) but counted and printed (pytest -s
shows them). A lost first datagram of the DTLS handshake (the ClientHello, or the
server's HelloVerifyRequest) must be retransmitted, as DTLS does after 1, 2, 4, 8 and
16 s, rather than leave the uplink connecting forever.

The silence takes about 40 s (CoAP retransmits after 2-3, 6-9, 14-21 and 30-45 s), so
this file runs apart from the others under ctest -j; 30 % loss is in
test_uplink_drop.py."""

import time

import pytest

# The fixtures live in nce.py, uplink.py and conftest.py; importing them makes pytest
# use them.
from nce import emulator  # noqa: F401
from uplink import gateway  # noqa: F401
from uplink import (DEVICES, USER_ADDR, USER_DEVICE, USER_PSK, SinkReader,
                    check_counter_reading, check_duplicates_bound, duplicates, wait_until)


def test_silence_30s_then_backlog_drains(gateway, emulator, tmp_path):
    emu = emulator(DEVICES)
    sink = SinkReader(emu)
    # 1200 readings over 24 s: most of them are made during the silence.
    count = 1200
    gw = gateway(emu, counter=dict(interval="20ms", count=count))
    sink.wait_for(range(1, 101), timeout=30)
    emu.ctl_ok("silence 30")
    t_silence = time.monotonic()
    delivered_before = len(sink.counts())
    time.sleep(1)
    # The silence holds: nothing is accepted while it lasts.
    mid = emu.stats()["accepted"]
    time.sleep(25)
    assert emu.stats()["accepted"] == mid, "messages accepted during the silence"
    # The message in flight when the silence began is retransmitted after it at the
    # latest 93 s (MAX_TRANSMIT_WAIT) after it was first sent, or given up and its
    # readings sent on a new session; then the backlog drains at full speed.
    counts = sink.wait_for(range(1, count + 1), timeout=110)
    t_done = time.monotonic()
    for r in sink.readings():
        check_counter_reading(r)
    dup = duplicates(counts)
    st = emu.stats()
    print(f"\nsilence 30 s: {delivered_before} readings before, all {count} delivered "
          f"{t_done - t_silence:.1f} s after the silence began; {dup} duplicates; "
          f"{len(sink.deliveries)} messages; handshakes {st['handshakes']}; "
          f"emulator duplicates {st['duplicates']}")
    assert set(counts) == set(range(1, count + 1))
    check_duplicates_bound(gw, sink, dup)
    assert gw.stop() == 0, gw.log_text()


@pytest.mark.parametrize("direction", ["in", "out"])
def test_lost_first_handshake_flight_is_retransmitted(gateway, emulator, tmp_path, direction):
    # User-set credentials, so that the first datagram to the DTLS port is the
    # ClientHello. direction "in" loses the ClientHello, "out" the HelloVerifyRequest;
    # the loss ends as soon as one datagram was dropped.
    emu = emulator(DEVICES, extra_args=["-x", f"drop {direction} 100"])
    sink = SinkReader(emu)
    count = 100
    gw = gateway(emu, counter=dict(interval="1ms", count=count),
                 uplink=dict(identity=USER_DEVICE, psk=USER_PSK, bind_address=USER_ADDR,
                             endpoint=f"coaps://127.0.0.1:{emu.coaps_port}"))
    wait_until(lambda: emu.stats()["datagrams"][f"dropped_{direction}"] >= 1, 15,
               "the first handshake datagram to be dropped")
    emu.ctl_ok(f"drop {direction} 0")
    t0 = time.monotonic()
    # The ClientHello is sent again after at most 16 s (or the uplink gives up on the
    # handshake and starts a new one); everything else is loss-free.
    counts = sink.wait_for(range(1, count + 1), timeout=40)
    st = emu.stats()
    print(f"\nfirst handshake datagram lost ({direction}): delivered "
          f"{time.monotonic() - t0:.1f} s later; datagrams {st['datagrams']}")
    assert duplicates(counts) == 0
    assert st["handshakes"]["ok"] >= 1, st
    assert gw.stop() == 0, gw.log_text()
