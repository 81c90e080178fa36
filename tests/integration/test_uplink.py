# SPDX-License-Identifier: MIT
"""The uplink against nce-emulator (the local 1NCE OS): delivery end to end, stored and
user-set credentials, the answers that change its course (4.01 after a PSK rotation, a
deactivated SIM, 4.00 into the dead-letter file), STATUS= and its log lines, and the
configuration errors of the `uplink` group.

Readings come from the `counter` test input (reading k has n = k, half, even, text),
so the tests decode every message in the emulator's sink (docs/ENCODING.md) and check
each n arrived. Loss and silence are in test_uplink_loss.py, crashes and bad stored
credentials in test_uplink_restart.py, retransmissions on the wire in
test_uplink_wire.py, so that ctest -j runs them apart."""

import json
import os
import time

import pytest

# The fixtures live in nce.py, uplink.py and conftest.py; importing them makes pytest
# use them.
from nce import EX_CONFIG, emulator  # noqa: F401
from uplink import gateway  # noqa: F401
from notify_capture import NotifySocket
from uplink import (DEVICE, DEVICE_ADDR, DEVICES, HEX_ADDR, HEX_DEVICE, HEX_PSK,
                    MAX_PAYLOAD, TOPIC, USER_ADDR, USER_DEVICE, USER_PSK, SinkReader,
                    check_config, check_counter_reading, counter_input, decode_message,
                    duplicates, emulator_psk, file_mode, gateway_config, uplink_settings,
                    wait_until)


def check_deliveries(sink, iccid=DEVICE, address=DEVICE_ADDR, topic=TOPIC, t_range=None):
    """What every sink line must be: the device, the topic, a payload within 1NCE's
    1024 bytes, counter readings whose seqs rise with n (one gateway, one input)."""
    by_n = {}
    for d in sink.poll():
        assert d.iccid == iccid and d.line["device"]["ip"] == address, d.line
        assert d.topic == topic, d.line
        assert d.line["coap"]["dtls"] is True and d.line["coap"]["path"] == "/", d.line
        assert len(d.payload) <= MAX_PAYLOAD, f"{len(d.payload)} bytes: {d.payload[:100]}"
        for r in d.readings:
            check_counter_reading(r, topic)
            if t_range:
                assert t_range[0] - 1000 <= r.ts <= t_range[1] + 1000, \
                    f"timestamp {r.ts} outside the run {t_range}: {r}"
            n = r.fields["n"]
            assert by_n.setdefault(n, r.seq) == r.seq, \
                f"n {n} delivered with seqs {by_n[n]} and {r.seq}"
    ordered = sorted(by_n.items())
    for (n1, s1), (n2, s2) in zip(ordered, ordered[1:]):
        assert s2 > s1, f"n {n1} has seq {s1} but n {n2} has seq {s2}"
    return by_n


# ---- 1. end to end ----------------------------------------------------------------------

def test_end_to_end_bootstrap_packing_credentials_and_restart(gateway, emulator, tmp_path):
    emu = emulator(DEVICES)
    sink = SinkReader(emu)
    count = 500
    t0 = time.time() * 1000
    gw = gateway(emu, counter=dict(interval="1ms", count=count))
    counts = sink.wait_for(range(1, count + 1), timeout=30, what="first run")
    t1 = time.time() * 1000

    # Exactly once, each reading intact, from the device, on its topic.
    assert set(counts) == set(range(1, count + 1)), sorted(set(counts) - set(range(1, count + 1)))
    assert duplicates(counts) == 0, {n: c for n, c in counts.items() if c > 1}
    check_deliveries(sink, t_range=(t0, t1))

    # Packed: a message carries many readings; at 1 ms per reading and a 1 s linger only
    # the last message may be short. With 4 fields, a full message holds about 30.
    messages = sink.poll()
    per_message = [len(d.readings) for d in messages]
    assert len(messages) <= count // 20, f"{len(messages)} messages: {per_message}"
    assert sum(1 for k in per_message if k < 20) <= 1, per_message
    full = [len(d.payload) for d in messages[:-1]]
    assert min(full) >= MAX_PAYLOAD - 60, f"messages are not filled to the budget: {full}"

    st = emu.stats()
    assert st["bootstraps"]["total"] == 1 and st["bootstraps"]["by_device"][DEVICE] == 1, st
    assert st["handshakes"]["started"] == 1 and st["handshakes"]["ok"] == 1, st
    assert st["handshakes"]["by_device"][DEVICE] == 1, st
    assert st["requests"]["by_code"] == {"2.05": 1, "2.04": len(messages)}, st
    assert st["duplicates"] == 0, st

    # The stored credentials: 0600, what the bootstrap answered.
    cred = gw.credentials()
    assert file_mode(gw.credentials_path) == 0o600, oct(file_mode(gw.credentials_path))
    assert cred["identity"] == DEVICE, cred
    assert cred["psk"] == emulator_psk(emu, DEVICE), cred
    assert cred["psk_format"] == "string", cred
    assert cred["endpoint"] == f"coaps://127.0.0.1:{emu.coaps_port}", cred
    assert cred["origin"] == "bootstrap", cred
    assert t0 - 1000 <= cred["obtained_ms"] <= t1 + 1000, cred

    # Give the last answer's acknowledgement a moment to reach the queue; a clean stop
    # then saves it, and the next run sends nothing twice.
    time.sleep(0.5)
    assert gw.stop() == 0, gw.log_text()
    log1 = gw.log_text()
    assert "uplink: bootstrapping from" in log1, log1

    # A restart uses the stored credentials: no second bootstrap, one more handshake.
    gw2 = gateway(emu, name="gw2", counter=dict(interval="1ms", count=200, start=1001))
    counts = sink.wait_for(range(1001, 1201), timeout=30, what="second run")
    assert set(counts) == set(range(1, count + 1)) | set(range(1001, 1201))
    assert duplicates(counts) == 0, {n: c for n, c in counts.items() if c > 1}
    check_deliveries(sink)
    st = emu.stats()
    assert st["bootstraps"]["by_device"][DEVICE] == 1, st
    assert st["handshakes"]["ok"] == 2, st
    gw2.wait_log(f'uplink: using the stored credentials of identity "{DEVICE}"')
    assert not gw2.lines("bootstrapping"), gw2.log_text()
    assert gw2.stop() == 0, gw2.log_text()


# ---- 2. user-set credentials -------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["string", "hex"])
def test_user_set_credentials_never_bootstrap(gateway, emulator, tmp_path, fmt):
    emu = emulator(DEVICES)
    sink = SinkReader(emu)
    iccid, address, psk = ((USER_DEVICE, USER_ADDR, USER_PSK) if fmt == "string"
                           else (HEX_DEVICE, HEX_ADDR, HEX_PSK))
    gw = gateway(emu, counter=dict(interval="1ms", count=300),
                 uplink=dict(identity=iccid, psk=psk, psk_format=fmt,
                             bind_address=address,
                             endpoint=f"coaps://127.0.0.1:{emu.coaps_port}"))
    counts = sink.wait_for(range(1, 301), timeout=30)
    assert duplicates(counts) == 0
    check_deliveries(sink, iccid=iccid, address=address)
    st = emu.stats()
    assert st["bootstraps"]["total"] == 0, st
    assert st["requests"]["by_code"].get("2.05") is None, st
    assert st["handshakes"]["by_device"][iccid] == 1 and st["handshakes"]["failed"] == 0, st
    assert not gw.lines("bootstrapping"), gw.log_text()
    # The PSK is a secret: never in the log.
    assert psk not in gw.log_text()
    assert gw.stop() == 0, gw.log_text()


# ---- 5. PSK rotated under a live session -------------------------------------------------

def test_rotated_psk_gets_401_then_one_bootstrap(gateway, emulator, tmp_path):
    emu = emulator(DEVICES)
    sink = SinkReader(emu)
    count = 2000
    gw = gateway(emu, counter=dict(interval="2ms", count=count),
                 uplink=dict(bootstrap_interval="1s"))
    # Mid-stream, and more than bootstrap_interval after the first bootstrap.
    sink.wait_for(range(1, 401), timeout=30)
    old_psk = gw.credentials()["psk"]
    emu.ctl_ok(f"rotate {DEVICE}")
    new_psk = emulator_psk(emu, DEVICE)
    assert new_psk != old_psk
    counts = sink.wait_for(range(1, count + 1), timeout=60)

    st = emu.stats()
    assert st["bootstraps"]["by_device"][DEVICE] == 2, st
    assert st["requests"]["by_code"].get("4.01") == 1, st
    assert st["handshakes"]["ok"] == 2, st
    assert len(gw.lines("answered 4.01")) == 1, gw.log_text()
    assert len(gw.lines("uplink: bootstrapping from")) == 2, gw.log_text()
    # The refused message was not processed, so it is sent again, once.
    assert duplicates(counts) == 0, {n: c for n, c in counts.items() if c > 1}
    check_deliveries(sink)
    assert gw.credentials()["psk"] == new_psk
    assert gw.stop() == 0, gw.log_text()


# ---- 6. a deactivated SIM ----------------------------------------------------------------

def test_deactivated_sim_bootstraps_with_bounded_retries(gateway, emulator, tmp_path):
    emu = emulator(DEVICES)
    sink = SinkReader(emu)
    count = 1500
    denied_backoff = 5.0
    gw = gateway(emu, counter=dict(interval="10ms", count=count),
                 uplink=dict(bootstrap_interval="1s",
                             bootstrap_denied_backoff=f"{denied_backoff:.0f}s"))
    sink.wait_for(range(1, 151), timeout=30)
    time.sleep(1.0)  # more than bootstrap_interval since the first bootstrap
    t_off = time.monotonic()
    emu.ctl_ok(f"deactivate {DEVICE}")
    window = 15.0
    time.sleep(window)
    t_on = time.monotonic()

    attempts = [t for t, _ in gw.lines("uplink: bootstrapping from") if t_off <= t <= t_on]
    refused = [t for t, _ in gw.lines("refused the bootstrap (4.01") if t_off <= t <= t_on]
    st = emu.stats()
    print(f"deactivated for {window:.0f} s: {len(attempts)} bootstrap attempts, "
          f"{len(refused)} refused; emulator {st['requests']['by_code']}")
    # The data message got 4.01, then each bootstrap 4.01, bootstrap_denied_backoff
    # apart: about window / backoff + 1 attempts, never a tight loop.
    assert 2 <= len(attempts) <= 4, gw.log_text()
    assert len(refused) == len(attempts), gw.log_text()
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert all(g >= denied_backoff - 0.5 for g in gaps), gaps
    assert st["requests"]["by_code"].get("4.01", 0) == 1 + len(refused), st
    assert st["bootstraps"]["by_device"][DEVICE] == 1, st

    emu.ctl_ok(f"activate {DEVICE}")
    # The next attempt comes at most bootstrap_denied_backoff later and succeeds.
    counts = sink.wait_for(range(1, count + 1), timeout=denied_backoff + 30)
    st = emu.stats()
    assert st["bootstraps"]["by_device"][DEVICE] == 2, st
    assert duplicates(counts) == 0, {n: c for n, c in counts.items() if c > 1}
    check_deliveries(sink)
    assert gw.stop() == 0, gw.log_text()


# ---- 7. dead letters ---------------------------------------------------------------------

def test_400_goes_to_the_dead_letter_file_and_later_batches_flow(gateway, emulator, tmp_path):
    emu = emulator(DEVICES)
    sink = SinkReader(emu)
    count = 600
    gw = gateway(emu, counter=dict(interval="2ms", count=count))
    sink.wait_for(range(1, 61), timeout=30)
    emu.ctl_ok("respond 4.00 1 data")
    dead = wait_until(gw.dead_letters, 30, "a dead-letter line")
    assert len(dead) == 1, dead
    entry = dead[0]
    dead_readings = decode_message(entry["payload"], TOPIC)
    dead_ns = {r.fields["n"] for r in dead_readings}
    expected = set(range(1, count + 1)) - dead_ns
    counts = sink.wait_for(expected, timeout=30)

    assert entry["code"] == "4.00" and entry["topic"] == TOPIC, entry
    assert entry["readings"] == len(dead_readings) > 0, entry
    assert entry["first_seq"] == dead_readings[0].seq, entry
    assert entry["last_seq"] == max(r.seq for r in dead_readings), entry
    assert all(entry["first_seq"] <= r.seq <= entry["last_seq"] for r in dead_readings)
    assert isinstance(entry["time_ms"], int), entry
    for r in dead_readings:
        check_counter_reading(r)
    assert file_mode(gw.dead_letter_path) == 0o600, oct(file_mode(gw.dead_letter_path))

    # Refused readings are not sent again; everything else arrived once.
    assert not dead_ns & set(counts), sorted(dead_ns & set(counts))
    assert set(counts) == expected
    assert duplicates(counts) == 0, {n: c for n, c in counts.items() if c > 1}
    # ... and readings after the refused batch were delivered too.
    assert max(counts) > max(dead_ns)
    check_deliveries(sink)
    st = emu.stats()
    assert st["injected"] == 1 and st["requests"]["by_code"].get("4.00") == 1, st
    assert len(gw.lines("kept in dead-letter.jsonl")) == 1, gw.log_text()
    assert gw.stop() == 0, gw.log_text()


# ---- max_in_flight ------------------------------------------------------------------------

def test_max_in_flight_messages_are_sent_at_once(gateway, emulator, tmp_path):
    # With 200 ms added in each direction, one message at a time makes at most
    # 1 / 0.4 s = 2.5 messages per second; max_in_flight = 4 must do better than twice
    # that on a backlog of small messages.
    emu = emulator(DEVICES)
    sink = SinkReader(emu)
    gw = gateway(emu, counter=dict(interval="0", count=5000),
                 uplink=dict(max_in_flight=4, max_payload=256))
    sink.wait_for(range(1, 51), timeout=30)
    emu.ctl_ok("delay 200")
    time.sleep(1)  # the messages sent before the delay are answered
    n0, t0 = len(sink.poll()), time.monotonic()
    time.sleep(4)
    rate = (len(sink.poll()) - n0) / (time.monotonic() - t0)
    emu.ctl_ok("delay 0")
    print(f"\nmax_in_flight 4, 400 ms round trip: {rate:.2f} messages/s")
    assert rate > 2 * 2.5, f"{rate:.2f} messages/s: no more than one message at a time"
    assert gw.stop() == 0, gw.log_text()


# ---- 10. STATUS= and the log -------------------------------------------------------------

def test_status_line_and_log_lines(gateway, emulator, tmp_path):
    emu = emulator(DEVICES)
    sink = SinkReader(emu)
    count = 300
    with NotifySocket(tmp_path / "notify.sock") as ns:
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        env["NOTIFY_SOCKET"] = ns.address
        gw = gateway(emu, counter=dict(interval="1ms", count=count),
                     daemon_settings=dict(status_interval="1s"), env=env)
        ns.wait_for(lambda m: "READY=1" in m.lines, timeout=15)
        sink.wait_for(range(1, count + 1), timeout=30)

        def status(m):
            return m.value("STATUS") or ""

        first = next(status(m) for m in ns.snapshot() if status(m))
        assert "; uplink: " in first, first
        state = first.split("; uplink: ")[1].split(",")[0]
        assert state in ("credentials", "resolving", "bootstrapping", "connecting", "ready",
                         "backoff"), first
        _, m = ns.wait_for(lambda m: f"uplink: ready, last answer 2.04, delivered {count}"
                           in status(m), timeout=10)
        assert "oldest unsent" not in status(m), status(m)
        assert gw.stop() == 0

    log = gw.log_text()
    psk = gw.credentials()["psk"]
    assert "info: uplink: no credentials yet: bootstrapping" in log, log
    assert (f'info: uplink: bootstrapping from "coap://127.0.0.1:{emu.coap_port}/bootstrap"'
            in log), log
    assert (f'notice: uplink: bootstrapped: identity "{DEVICE}", endpoint '
            f'"coaps://127.0.0.1:{emu.coaps_port}"' in log), log
    assert f'uplink: DTLS session to "coaps://127.0.0.1:{emu.coaps_port}" established' in log
    assert psk not in log, "the PSK was logged"
    assert not [l for l in gw.log() if l.startswith(("error:", "warning:"))], log


# ---- 11. configuration errors ------------------------------------------------------------

# The uplink group is on line 3 of every configuration below.
BAD_UPLINK = [
    ("identity-without-psk", dict(identity=USER_DEVICE), "identity and psk go together"),
    ("psk-without-identity", dict(psk=USER_PSK), "identity and psk go together"),
    ("bootstrap-url-http", dict(bootstrap_url="http://127.0.0.1:5683/bootstrap"),
     "bootstrap_url must be a coap://"),
    ("bootstrap-url-coaps", dict(bootstrap_url="coaps://127.0.0.1:5684/bootstrap"),
     "bootstrap_url must be a coap://"),
    ("bootstrap-url-empty-host", dict(bootstrap_url="coap://"),
     "bootstrap_url must be a coap://"),
    ("bootstrap-url-bad-port", dict(bootstrap_url="coap://127.0.0.1:99999/bootstrap"),
     "bootstrap_url"),
    ("bind-and-interface", dict(bind_address="127.0.0.2", interface="lo"),
     "bind_address and interface are alternatives"),
    ("bind-not-an-address", dict(bind_address="gateway.local"),
     "bind_address is not an IP address"),
    ("hex-psk-not-hex", dict(identity=USER_DEVICE, psk="zz11223344556677", psk_format="hex"),
     "hex PSK has only the digits"),
    ("hex-psk-odd", dict(identity=USER_DEVICE, psk="0011223344556", psk_format="hex"),
     "even number of digits"),
    ("psk-too-short", dict(identity=USER_DEVICE, psk="short"), "8 to 256 characters"),
    ("endpoint-not-coap", dict(endpoint="https://127.0.0.1:5684"),
     "endpoint must be a coaps://"),
    ("endpoint-bad-port", dict(endpoint="coaps://127.0.0.1:99999"), "endpoint"),
]


@pytest.mark.parametrize("settings,message", [b[1:] for b in BAD_UPLINK],
                         ids=[b[0] for b in BAD_UPLINK])
def test_config_errors_point_at_the_uplink_group(tmp_path, settings, message):
    body = " ".join(f"{k} = {json.dumps(v)};" for k, v in settings.items())
    path = tmp_path / "coapgate.conf"
    path.write_text(f'daemon: {{ state_dir = "{tmp_path / "state"}"; }};\n'
                    "# the uplink group follows\n"
                    f"uplink: {{ {body} }};\n"
                    "inputs = ( " + counter_input() + " );\n")
    r = check_config(path)
    assert r.returncode == EX_CONFIG, f"exit {r.returncode}:\n{r.stderr}"
    hits = [l for l in r.stderr.splitlines() if f"{path}:3: " in l and message in l]
    assert hits, f"no error at {path}:3 mentioning {message!r}:\n{r.stderr}"
    assert not (tmp_path / "state").exists()


def test_config_error_in_a_dropin_points_at_the_dropin(tmp_path):
    main = tmp_path / "coapgate.conf"
    main.write_text(f'daemon: {{ state_dir = "{tmp_path / "state"}"; }};\n'
                    "inputs = ( " + counter_input() + " );\n")
    (tmp_path / "conf.d").mkdir()
    dropin = tmp_path / "conf.d" / "50-uplink.conf"
    dropin.write_text("\n\nuplink:\n{\n  identity = \"8988228066600000002\";\n};\n")
    r = check_config(main)
    assert r.returncode == EX_CONFIG, r.stderr
    assert f"{dropin}:3: uplink: identity and psk go together" in r.stderr, r.stderr


def test_valid_uplink_settings_pass_the_check(tmp_path):
    path = tmp_path / "coapgate.conf"
    uplink = dict(uplink_settings(type("E", (), dict(coap_port=5683))(), identity=HEX_DEVICE,
                                  psk=HEX_PSK, psk_format="hex",
                                  endpoint="coaps://127.0.0.1:5684", linger="200ms",
                                  max_in_flight=4, lookahead=1000, sequence_numbers=False,
                                  idle_timeout="0", handshake_failures=1,
                                  bootstrap_interval="0", bootstrap_denied_backoff="5s",
                                  dead_letter_max_size="8K", max_payload="512",
                                  mid_exhaustion="new_session"))
    path.write_text(gateway_config(tmp_path / "state", uplink, [counter_input()]))
    r = check_config(path)
    assert r.returncode == 0, r.stderr
