# SPDX-License-Identifier: MIT
"""The uplink across a crash and with bad stored credentials:

  * coapgated is SIGKILLed while it sends, then started again on the same state_dir:
    every reading the daemon had made durable arrives, duplicates stay within what one
    checkpoint interval can resend, and sequence numbers never repeat;
  * the stored credentials hold a wrong PSK: after handshake_failures failed DTLS
    handshakes (about 30 s each: libcoap gives up after 1 + 2 + 4 + 8 + 16 s) the uplink
    bootstraps again and delivers;
  * stored credentials that others may read are not used.

The second takes 30 to 60 s, so these have their own file and ctest runs it in
parallel with the others."""

import json
import os
import random
import time

import nce
# The fixtures live in nce.py, uplink.py and conftest.py; importing them makes pytest
# use them.
from nce import emulator  # noqa: F401
from uplink import gateway  # noqa: F401
from uplink import (DEVICE, DEVICES, SinkReader, check_counter_reading, duplicates,
                    emulator_psk, file_mode, read_progress, wait_until)

RUN2 = 1_000_000           # n of the second run's first reading
COMMIT_INTERVAL = 0.1      # queue.commit_interval (the default)
CHECKPOINT_INTERVAL = 1.0  # queue.checkpoint_interval (the default)
# A reading accepted this long before the SIGKILL is on disk (test_queue_torture.py).
DURABLE_AFTER = 2 * COMMIT_INTERVAL + 0.3


def test_kill9_mid_stream_then_restart(gateway, emulator, tmp_path):
    emu = emulator(DEVICES)
    sink = SinkReader(emu)
    progress1, progress2 = tmp_path / "progress-1", tmp_path / "progress-2"
    queue = dict(commit_interval=f"{int(COMMIT_INTERVAL * 1000)}ms",
                 checkpoint_interval=f"{CHECKPOINT_INTERVAL:.0f}s")
    gw = gateway(emu, name="run1", queue=queue,
                 counter=dict(interval="2ms", progress_file=str(progress1)))
    sink.wait_for(range(1, 301), timeout=30)

    # Sample the counter's progress until a random moment, then SIGKILL.
    samples = []
    kill_at = time.monotonic() + random.uniform(1.0, 2.5)
    while time.monotonic() < kill_at:
        v = read_progress(progress1)
        if v is not None:
            samples.append((time.monotonic(), v))
        time.sleep(0.005)
    t_kill, wall_kill_ms = time.monotonic(), time.time() * 1000
    assert gw.kill() == -9
    accepted1 = read_progress(progress1)
    durable1 = max((v for t, v in samples if t <= t_kill - DURABLE_AFTER), default=0)
    delivered_at_kill = len(sink.counts())
    assert delivered_at_kill < accepted1, "the kill came after everything was delivered"

    gw2 = gateway(emu, name="run2", queue=queue,
                  counter=dict(interval="1ms", count=1000, start=RUN2,
                               progress_file=str(progress2)))
    counts = sink.wait_for(set(range(1, durable1 + 1)) | set(range(RUN2, RUN2 + 1000)),
                           timeout=60)
    # Whatever of run 1's tail was on disk is sent too; give it a moment to drain.
    time.sleep(1.5)
    counts = sink.counts()

    run1 = sorted(n for n in counts if n < RUN2)
    m1 = run1[-1]
    assert run1 == list(range(1, m1 + 1)), "run 1's delivered readings have a gap"
    assert durable1 <= m1 <= accepted1 + 1, \
        f"run 1: delivered up to {m1}, accepted {accepted1}, durable {durable1}"
    assert sorted(n for n in counts if n >= RUN2) == list(range(RUN2, RUN2 + 1000))
    assert read_progress(progress2) == RUN2 + 999

    # Seqs: one per reading, never reused, rising with n, across the restart.
    seq_of = {}
    for r in sink.readings():
        check_counter_reading(r)
        n = r.fields["n"]
        assert seq_of.setdefault(n, r.seq) == r.seq, f"n {n} sent with seqs {seq_of[n]}, {r.seq}"
    by_seq = {}
    for n, s in seq_of.items():
        assert by_seq.setdefault(s, n) == n, f"seq {s} used for n {by_seq[s]} and {n}"
    ordered = sorted(seq_of.items())
    assert all(a[1] < b[1] for a, b in zip(ordered, ordered[1:])), "seqs do not rise with n"

    # Duplicates: only what was delivered since the last saved acknowledgement (one
    # checkpoint interval), and the messages in flight at the kill.
    dup = duplicates(counts)
    first_seen = {}
    for d in sink.poll():
        for n in d.ns:
            first_seen.setdefault(n, d.received_ms)
    recent = sum(1 for n, t in first_seen.items()
                 if n < RUN2 and t >= wall_kill_ms - (CHECKPOINT_INTERVAL + 0.5) * 1000)
    per_message = max(len(d.readings) for d in sink.poll())
    bound = recent + per_message
    print(f"\nkill -9: run 1 accepted {accepted1}, durable {durable1}, delivered up to {m1} "
          f"(the queue lost the last {accepted1 - m1}, not yet committed) "
          f"({delivered_at_kill} before the kill); {dup} duplicates (bound {bound}: {recent} "
          f"delivered in the last {CHECKPOINT_INTERVAL + 0.5:.1f} s + {per_message})")
    assert dup <= bound, f"{dup} duplicates, more than {bound}"
    assert not [n for n, c in counts.items() if n >= RUN2 and c > 1], "run 2 sent duplicates"

    # The stored credentials survived the crash: no second bootstrap.
    st = emu.stats()
    assert st["bootstraps"]["by_device"][DEVICE] == 1, st
    assert st["handshakes"]["ok"] == 2, st
    assert not gw2.lines("bootstrapping"), gw2.log_text()
    assert gw2.stop() == 0, gw2.log_text()


def test_wrong_stored_psk_bootstraps_after_handshake_failures(gateway, emulator, tmp_path):
    emu = emulator(DEVICES)
    sink = SinkReader(emu)
    # The emulator holds a PSK for the device (as after an earlier bootstrap) ...
    right = nce.bootstrap_psk(emu, bind="127.0.0.2")
    # ... and the gateway a different one.
    wrong = "X" + right[1:] if right[0] != "X" else "Y" + right[1:]
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    cred = state / "credentials"
    cred.write_text(json.dumps({"identity": DEVICE, "psk": wrong, "psk_format": "string",
                                "endpoint": f"coaps://127.0.0.1:{emu.coaps_port}",
                                "obtained_ms": 0, "origin": "bootstrap"}) + "\n")
    os.chmod(cred, 0o600)
    count = 200
    t0 = time.monotonic()
    gw = gateway(emu, state_dir=state, counter=dict(interval="1ms", count=count),
                 uplink=dict(handshake_failures=1))
    gw.wait_log(f'uplink: using the stored credentials of identity "{DEVICE}"')
    # One failed handshake, then a bootstrap, then the readings. libcoap gives up on a
    # handshake after its fifth timeout: 31 s, or 63 s when the server's retransmitted
    # flight restarted the client's timer.
    counts = sink.wait_for(range(1, count + 1), timeout=85)
    t_done = time.monotonic()
    st = emu.stats()
    print(f"\nwrong PSK: delivered {t_done - t0:.1f} s after the start; handshakes "
          f"{st['handshakes']}")
    assert duplicates(counts) == 0
    for r in sink.readings():
        check_counter_reading(r)
    assert st["handshakes"]["started"] >= 2 and st["handshakes"]["ok"] == 1, st
    # The raw bootstrap above and the daemon's one: no more.
    assert st["bootstraps"]["by_device"][DEVICE] == 2, st
    gw.wait_log("DTLS handshakes failed in a row")
    assert len(gw.lines("uplink: bootstrapping from")) == 1, gw.log_text()
    saved = json.loads(cred.read_text())
    assert saved["psk"] == right == emulator_psk(emu, DEVICE), saved
    assert file_mode(cred) == 0o600
    assert wrong not in gw.log_text() and right not in gw.log_text(), "a PSK was logged"
    assert gw.stop() == 0, gw.log_text()


def test_unreadable_stored_credentials_are_replaced_by_a_bootstrap(gateway, emulator, tmp_path):
    # A credentials file that others may read (0644) is not trusted: the uplink
    # bootstraps and writes a 0600 one.
    emu = emulator(DEVICES)
    sink = SinkReader(emu)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    cred = state / "credentials"
    cred.write_text(json.dumps({"identity": DEVICE, "psk": "not-the-key-at-all",
                                "psk_format": "string",
                                "endpoint": f"coaps://127.0.0.1:{emu.coaps_port}",
                                "obtained_ms": 0, "origin": "bootstrap"}) + "\n")
    os.chmod(cred, 0o644)
    gw = gateway(emu, state_dir=state, counter=dict(interval="1ms", count=100))
    sink.wait_for(range(1, 101), timeout=30)
    gw.wait_log("stored credentials")
    assert gw.lines("unusable"), gw.log_text()
    assert emu.stats()["bootstraps"]["by_device"][DEVICE] == 1
    wait_until(lambda: file_mode(cred) == 0o600, 5, "a 0600 credentials file")
    assert json.loads(cred.read_text())["psk"] == emulator_psk(emu, DEVICE)
    assert gw.stop() == 0, gw.log_text()
