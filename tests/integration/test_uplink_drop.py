# SPDX-License-Identifier: MIT
"""The uplink with 30 % of the datagrams lost in each direction (nce-emulator's relay,
`drop both 30`) while readings flow. Every reading must arrive; duplicates are allowed
(at least once) but counted, bounded and printed (pytest -s shows them).

An attempt gets through with probability 0.7 * 0.7, so a message takes about 4 s on
average, and when all five transmissions of one fail (3.5 % of messages) 93 s
(MAX_TRANSMIT_WAIT) and a new session, whose handshake is lossy too. So the loss lasts
until some datagrams were lost each way (20 to 60 s), the readings made meanwhile must
then all arrive, and this file runs apart from the others under ctest -j. A lost
handshake datagram is tested deterministically in test_uplink_loss.py."""

import time

# The fixtures live in nce.py, uplink.py and conftest.py; importing them makes pytest
# use them.
from nce import emulator  # noqa: F401
from uplink import gateway  # noqa: F401
from uplink import (DEVICES, SinkReader, check_counter_reading, check_duplicates_bound,
                    duplicates, read_progress, wait_until)


def test_drop_30_percent_both_ways(gateway, emulator, tmp_path):
    emu = emulator(DEVICES)
    sink = SinkReader(emu)
    progress = tmp_path / "progress"
    gw = gateway(emu, counter=dict(interval="20ms", progress_file=str(progress)))
    sink.wait_for(range(1, 2), timeout=30)
    emu.ctl_ok("drop both 30")
    t0 = time.monotonic()
    accepted0 = emu.stats()["accepted"]

    def lossy_enough():
        d = emu.stats()["datagrams"]
        elapsed = time.monotonic() - t0
        return elapsed >= 20 and ((d["dropped_in"] >= 2 and d["dropped_out"] >= 2)
                                  or elapsed >= 60)

    wait_until(lossy_enough, 70, "20 s of loss", interval=0.5)
    t_loss = time.monotonic() - t0
    st = emu.stats()
    emu.ctl_ok("drop both 0")
    made = read_progress(progress)
    during = st["accepted"] - accepted0
    assert st["datagrams"]["dropped_in"] + st["datagrams"]["dropped_out"] >= 2, st
    # The message in flight may be in its retransmissions (up to 93 s) or given up;
    # then the backlog goes at full speed.
    counts = sink.wait_for(range(1, made + 1), timeout=110)
    t_done = time.monotonic() - t0
    for r in sink.readings():
        check_counter_reading(r)
    dup = duplicates(counts)
    print(f"\ndrop both 30 % for {t_loss:.1f} s: {during} messages accepted meanwhile; all "
          f"{made} readings delivered {t_done:.1f} s after the loss began; {dup} duplicates; "
          f"datagrams {st['datagrams']}; handshakes {emu.stats()['handshakes']}; emulator "
          f"duplicates {st['duplicates']}")
    check_duplicates_bound(gw, sink, dup)
    assert gw.stop() == 0, gw.log_text()
