# SPDX-License-Identifier: MIT
"""nce-emulator, the local stand-in for the 1NCE OS CoAP endpoint, against what
tests/emulator/README.md promises: the command line and registry errors, bootstrap and
the 5-minute PSK rule, DTLS-PSK with plain PSK suites and no identity hint, POST rules
(topic, size, paths, methods, Block1), the sink and MQTT output, duplicate detection by
MID, every fault switch of the control socket, and the counters.

Clients are coap-client-openssl, `openssl s_client` (for the handshake itself and as a
long-lived DTLS tunnel) and hand-built datagrams from sockets bound to 127.0.0.x, since
the emulator knows a device by its source address."""

import base64
import functools
import json
import os
import re
import signal
import subprocess
import time

import pytest

import nce
from notify_capture import NotifySocket
from nce import (DELETE, GET, POST, PUT, EX_CONFIG, EX_USAGE, bootstrap_psk, coap_client,
                 registry_text, request, run_emulator)
# The fixtures live in nce.py; importing them here makes pytest use them.
from nce import emulator, mosquitto, mqtt_subscriber, raw, tunnel  # noqa: F401

D1, A1, IMSI1 = "8988228066600000001", "127.0.0.2", "901405100000001"
D2, A2, PSK2 = "8988228066600000002", "127.0.0.3", "user-set-key"
D3, A3 = "8988228066600000003", "127.0.0.4"                      # inactive
D4, A4 = "89882280666000000047", "127.0.0.5"                     # 20 digits, hex PSK
PSK4 = b"hex-key-0123"
UNKNOWN = "127.0.0.9"          # no device has this address
FOREIGN = "127.0.0.6"          # no device either: used with D1's identity

DEVICES = [
    dict(iccid=D1, address=A1, imsi=IMSI1),
    dict(iccid=D2, address=A2, psk=PSK2),
    dict(iccid=D3, address=A3, status="inactive"),
    dict(iccid=D4, address=A4, psk=PSK4.hex(), psk_format="hex"),
]

GENERATED_PSK = re.compile(r"^[A-Za-z0-9]{24}$")
NO_ANSWER = 0.6                # seconds to wait for an answer that must not come


@pytest.fixture
def coap(tmp_path):
    """coap_client with its files in tmp_path."""
    return functools.partial(coap_client, workdir=tmp_path)


def coaps_url(e, topic=None, path="/"):
    return f"coaps://127.0.0.1:{e.coaps_port}{path}" + (f"?t={topic}" if topic else "")


def coap_url(e, topic=None, path="/"):
    return f"coap://127.0.0.1:{e.coap_port}{path}" + (f"?t={topic}" if topic else "")


def check_error_body(m, status_text=None):
    """An error answer's JSON body: {"statusText": ..., "errors": [{"message": ...}]}."""
    body = m.json()
    assert isinstance(body.get("statusText"), str) and body["statusText"], body
    if status_text:
        assert body["statusText"] == status_text, body
    assert isinstance(body.get("errors"), list) and body["errors"], body
    assert all(isinstance(err.get("message"), str) and err["message"] for err in body["errors"]), body
    return body


def barrier(e, client, n_before):
    """Post a marker from client and wait for it in the sink: every answer sent before
    has been processed, so the sink must hold exactly n_before + 1 lines."""
    marker = f"barrier-{time.monotonic_ns()}".encode()
    m = client.post(e.coap_port, marker)
    assert m is not None and m.code_str == "2.04", m
    lines = e.wait_sink(n_before + 1)
    assert len(lines) == n_before + 1, lines
    assert base64.b64decode(lines[-1]["payload"]["value"]) == marker
    return lines


def by_code(stats):
    return {c: n for c, n in stats["requests"]["by_code"].items() if n}


def wait_stats(e, predicate, timeout=10):
    """Poll stats until predicate(stats) holds; returns them."""
    deadline = time.monotonic() + timeout
    while True:
        s = e.stats()
        if predicate(s):
            return s
        if time.monotonic() > deadline:
            raise AssertionError(f"stats never matched: {s}")
        time.sleep(0.05)


# --------------------------------------------------------------------------------------
# Command line and registry


def test_ready_line_and_clean_exit(emulator, raw):
    e = emulator(DEVICES + [dict(iccid="8988228066600000099", address="::1")])
    assert e.coap_host == "127.0.0.1" and e.coaps_host == "127.0.0.1"
    assert e.coap_port > 0 and e.coaps_port > 0 and e.coap_port != e.coaps_port
    assert e.ready_control == str(e.ctl_path), e.ready_line
    m = raw(A1).bootstrap(e.coap_port)
    assert m is not None and m.code_str == "2.05"
    assert e.stop() == 0, e.output()


def test_sigint_exits_0_and_ready_is_notified(emulator, tmp_path):
    with NotifySocket(tmp_path / "notify.sock") as ns:
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        env["NOTIFY_SOCKET"] = ns.address
        e = emulator(DEVICES, env=env)
        ns.wait_for(lambda m: "READY=1" in m.lines)
        assert e.p.stop(signal.SIGINT) == 0, e.output()


def test_usage_errors_exit_64(tmp_path):
    reg = tmp_path / "devices.conf"
    reg.write_text(registry_text(DEVICES))
    missing_registry = run_emulator(["--coap", "127.0.0.1:0", "--coaps", "127.0.0.1:0"])
    assert missing_registry.returncode == EX_USAGE, missing_registry
    unknown_option = run_emulator(["-r", reg, "--no-such-option"])
    assert unknown_option.returncode == EX_USAGE, unknown_option


BAD_REGISTRIES = {
    "iccid too short": dict(iccid="898822806660000000", address="127.0.0.3"),
    "iccid too long": dict(iccid="898822806660000000012", address="127.0.0.3"),
    "iccid not digits": dict(iccid="898822806660000000A", address="127.0.0.3"),
    "iccid missing": dict(address="127.0.0.3"),
    "address missing": dict(iccid=D2),
    "address invalid": dict(iccid=D2, address="127.0.0.300"),
    "address duplicate": dict(iccid=D2, address=A1),
    "status invalid": dict(iccid=D2, address="127.0.0.3", status="dormant"),
    "psk not hex": dict(iccid=D2, address="127.0.0.3", psk="zz11", psk_format="hex"),
    "psk odd hex": dict(iccid=D2, address="127.0.0.3", psk="abc", psk_format="hex"),
    "psk_format invalid": dict(iccid=D2, address="127.0.0.3", psk="k", psk_format="base64"),
}


@pytest.mark.parametrize("bad", BAD_REGISTRIES.values(), ids=BAD_REGISTRIES.keys())
def test_registry_error_exits_78_with_file_and_line(tmp_path, bad):
    # The bad device is the second one, on line 3 of the file.
    reg = tmp_path / "devices.conf"
    reg.write_text(registry_text([DEVICES[0], bad]))
    r = run_emulator(["-r", reg, "--coap", "127.0.0.1:0", "--coaps", "127.0.0.1:0"])
    assert r.returncode == EX_CONFIG, r
    assert f"{reg}:3:" in r.stderr, r.stderr


def test_registry_syntax_error_exits_78_with_file_and_line(tmp_path):
    reg = tmp_path / "devices.conf"
    reg.write_text(f'devices = (\n  {{ iccid = "{D1}"; address = "{A1}"; }},\n'
                   '  { iccid = ; }\n);\n')
    r = run_emulator(["-r", reg, "--coap", "127.0.0.1:0", "--coaps", "127.0.0.1:0"])
    assert r.returncode == EX_CONFIG, r
    assert f"{reg}:3:" in r.stderr, r.stderr


# --------------------------------------------------------------------------------------
# Bootstrap


def test_bootstrap_answers_iccid_psk_and_endpoint(emulator, raw, coap):
    e = emulator(DEVICES)
    c = raw(A1)
    m = c.bootstrap(e.coap_port)
    assert m is not None and m.code_str == "2.05", m
    assert m.option(nce.CONTENT_FORMAT) == [], m       # README: no Content-Format
    iccid, psk, url = m.payload.decode().split(",")
    assert iccid == D1
    assert GENERATED_PSK.match(psk), psk
    assert url == f"coaps://127.0.0.1:{e.coaps_port}"
    # The same PSK again, also for coap-client bound to the device's address.
    again = c.bootstrap(e.coap_port)
    assert again.code_str == "2.05" and again.payload == m.payload
    r = coap(coap_url(e, path="/bootstrap"), bind=A1)
    assert r.code == "2.05", r
    assert r.payload == m.payload, r


def test_bootstrap_of_a_user_set_psk(emulator, raw):
    e = emulator(DEVICES)
    m = raw(A2).bootstrap(e.coap_port)
    assert m.code_str == "2.05", m
    assert m.payload.decode() == f"{D2},{PSK2},coaps://127.0.0.1:{e.coaps_port}"


def test_bootstrap_from_unknown_address_is_unauthorized(emulator, raw):
    e = emulator(DEVICES)
    m = raw(UNKNOWN).bootstrap(e.coap_port)
    assert m is not None and m.code_str == "4.01", m
    check_error_body(m, "Unauthorized")


def test_bootstrap_of_inactive_device_is_unauthorized(emulator, raw):
    e = emulator(DEVICES)
    m = raw(A3).bootstrap(e.coap_port)
    assert m is not None and m.code_str == "4.01", m
    check_error_body(m, "Unauthorized")


def test_bootstrap_over_dtls_is_not_found(emulator, coap):
    e = emulator(DEVICES)
    r = coap(coaps_url(e, path="/bootstrap"), bind=A2, identity=D2, key=PSK2)
    assert r.code == "4.04", r


def test_advertise_sets_the_bootstrapped_endpoint(emulator, raw):
    e = emulator(DEVICES, ["--advertise", "coaps://nce.example.test:15684"])
    m = raw(A2).bootstrap(e.coap_port)
    assert m.payload.decode() == f"{D2},{PSK2},coaps://nce.example.test:15684"


def test_generated_psks_are_not_kept_across_restarts(emulator):
    first = emulator(DEVICES)
    psk1 = bootstrap_psk(first, A1)
    assert first.stop() == 0
    second = emulator(DEVICES)
    psk2 = bootstrap_psk(second, A1)
    assert GENERATED_PSK.match(psk2) and psk2 != psk1


# --------------------------------------------------------------------------------------
# The 5-minute rule


def test_psk_kept_within_5_minutes_and_regenerated_after(emulator):
    e = emulator(DEVICES)
    psk = bootstrap_psk(e, A1)
    e.ctl_ok("clock +299")
    assert bootstrap_psk(e, A1) == psk           # 299 s after the previous
    e.ctl_ok("clock +299")
    assert bootstrap_psk(e, A1) == psk           # 598 s after the first, 299 after the last
    assert "598" in json.dumps(e.ctl_ok("clock"))
    e.ctl_ok("clock +300")
    new = bootstrap_psk(e, A1)                   # 300 s after the previous
    assert GENERATED_PSK.match(new) and new != psk
    assert bootstrap_psk(e, A1) == new


def test_user_set_psk_never_rotates(emulator, coap):
    e = emulator(DEVICES)
    assert bootstrap_psk(e, A2) == PSK2
    e.ctl_ok("clock +1000")
    assert bootstrap_psk(e, A2) == PSK2
    # A PSK set with the control command counts as user-set too.
    generated = bootstrap_psk(e, A1)
    e.ctl_ok(f"psk {D1} string my-own-key-1")
    assert bootstrap_psk(e, A1) == "my-own-key-1" != generated
    e.ctl_ok("clock +1000")
    assert bootstrap_psk(e, A1) == "my-own-key-1"
    r = coap(coaps_url(e, "k"), "post", bind=A1, identity=D1, key="my-own-key-1", data=b"k")
    assert r.code == "2.04", r


def test_psk_command_hex(emulator, coap):
    e = emulator(DEVICES)
    e.ctl_ok(f"psk {D1} hex {b'my-hex-key'.hex()}")
    r = coap(coaps_url(e), "post", bind=A1, identity=D1, key="my-hex-key", data=b"h")
    assert r.code == "2.04", r


# --------------------------------------------------------------------------------------
# DTLS


def test_dtls_post_is_accepted_and_written_to_the_sink(emulator, coap):
    e = emulator(DEVICES)
    psk = bootstrap_psk(e, A1)
    data = bytes(range(256)) + b'{"t":21.5}'
    before_ms = int(time.time() * 1000)
    r = coap(coaps_url(e, "sensors/room1"), "post", bind=A1, identity=D1, key=psk, data=data)
    after_ms = int(time.time() * 1000)
    assert r.code == "2.04", r
    assert r.codes == ["2.04"], r
    lines = e.wait_sink(1)
    assert len(lines) == 1, lines
    ev = lines[0]
    assert isinstance(ev["id"], str) and ev["id"]
    assert ev["type"] == "TELEMETRY_DATA"
    assert ev["version"] == "1.0.0"
    assert ev["source"] == "COAP"
    assert isinstance(ev["received"], str) and ev["received"].isdigit(), ev
    assert before_ms - 1000 <= int(ev["received"]) <= after_ms + 1000, ev
    assert ev["device"]["iccid"] == D1
    assert ev["device"]["ip"] == A1
    assert ev["device"]["imsi"] == IMSI1
    assert ev["payload"]["type"] == "STRING"
    assert ev["payload"]["encoding"] == "base64"
    assert base64.b64decode(ev["payload"]["value"], validate=True) == data
    assert ev["payload"]["topic"] == "sensors/room1"
    assert isinstance(ev["coap"]["mid"], int) and not isinstance(ev["coap"]["mid"], bool)
    assert ev["coap"]["mid"] == r.request_mids[0], (ev, r)
    assert ev["coap"]["dtls"] is True
    assert ev["coap"]["path"] == "/"
    assert isinstance(ev["coap"]["port"], int)
    s = e.stats()
    assert s["handshakes"]["ok"] >= 1 and s["handshakes"]["by_device"].get(D1, 0) >= 1, s
    assert s["accepted"] == 1, s


def test_dtls_with_registry_hex_psk(emulator, coap):
    e = emulator(DEVICES)
    r = coap(coaps_url(e, "hex"), "post", bind=A4, identity=D4, key=PSK4, data=b"hex")
    assert r.code == "2.04", r
    ev = e.wait_sink(1)[0]
    assert ev["device"]["iccid"] == D4 and ev["device"]["ip"] == A4
    assert "imsi" not in ev["device"], ev      # the registry has none


def test_dtls_wrong_key_fails_the_handshake(emulator, coap, raw):
    e = emulator(DEVICES)
    bootstrap_psk(e, A1)
    r = coap(coaps_url(e), "post", bind=A1, identity=D1, key="not-the-right-key", data=b"x",
             wait=3)
    assert "2.04" not in r.codes and r.code is None, r
    # A wrong key gives no alert (DTLS drops what it cannot decrypt): it shows at once
    # as a handshake started and not completed; `failed` follows only when libcoap
    # gives up on the session, about 30 s later, which this test does not wait for.
    s = e.stats()
    assert s["handshakes"]["started"] >= 1 and s["handshakes"]["ok"] == 0, s
    assert s["handshakes"]["by_device"][D1] == 0, s
    barrier(e, raw(A1), 0)


def test_dtls_unknown_identity_fails_the_handshake(emulator, coap, raw):
    e = emulator(DEVICES)
    r = coap(coaps_url(e), "post", bind=A1, identity="8988228066600009999", key="whatever",
             data=b"x", wait=3)
    assert r.code is None, r
    # An unknown identity fails at once, with an alert.
    s = wait_stats(e, lambda s: s["handshakes"]["failed"] >= 1, timeout=2)
    assert s["handshakes"]["ok"] == 0, s
    barrier(e, raw(A1), 0)


def test_dtls_from_a_foreign_address_is_unauthorized(emulator, coap, raw):
    e = emulator(DEVICES)
    r = coap(coaps_url(e), "post", bind=FOREIGN, identity=D2, key=PSK2, data=b"x")
    assert r.code == "4.01", r
    barrier(e, raw(A1), 0)


def test_dtls_inactive_device_is_refused(emulator, coap, raw):
    e = emulator(DEVICES)
    e.ctl_ok(f"psk {D3} string key-of-d3")
    r = coap(coaps_url(e), "post", bind=A3, identity=D3, key="key-of-d3", data=b"x", wait=3)
    assert r.code != "2.04", r             # 4.01, or a refused handshake
    barrier(e, raw(A1), 0)


def test_dtls_payload_of_1024_bytes(emulator, coap):
    e = emulator(DEVICES)
    data = bytes(i % 251 for i in range(1024))
    r = coap(coaps_url(e), "post", bind=A2, identity=D2, key=PSK2, data=data)
    assert r.code == "2.04", r
    assert base64.b64decode(e.wait_sink(1)[0]["payload"]["value"]) == data


@pytest.mark.parametrize("cipher", ["PSK-AES128-CCM8", "PSK-AES128-GCM-SHA256"])
def test_openssl_handshake_with_plain_psk_suite_and_no_identity_hint(emulator, cipher):
    e = emulator(DEVICES)
    r = subprocess.run(
        ["openssl", "s_client", "-dtls1_2", "-connect", f"127.0.0.1:{e.coaps_port}",
         "-bind", f"{A2}:0", "-psk_identity", D2, "-psk", PSK2.encode().hex(),
         "-cipher", cipher, "-msg"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=15)
    out = r.stdout
    assert f"Cipher is {cipher}" in out, out + r.stderr
    assert re.search(r"^\s*Cipher\s*: " + re.escape(cipher) + r"$", out, re.M), out
    assert re.search(r"^\s*PSK identity hint: None$", out, re.M), out
    assert re.search(r"^\s*PSK identity: " + D2 + "$", out, re.M), out
    # The server's handshake messages before its ChangeCipherSpec (from -msg): the
    # first byte of each handshake record body is the message type; 12 would be a
    # ServerKeyExchange, which plain PSK sends only to carry an identity hint, and 11
    # a Certificate.
    server_types = []
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("<<< "):
            continue
        if "content_type=20)" in line:
            break
        if "content_type=22)" in line and i + 1 < len(lines):
            server_types.append(int(lines[i + 1].split()[0], 16))
    assert 2 in server_types and 14 in server_types, (server_types, out)
    assert 12 not in server_types and 11 not in server_types, (server_types, out)
    s = e.stats()
    assert s["handshakes"]["by_device"].get(D2, 0) >= 1, s


# --------------------------------------------------------------------------------------
# Plain CoAP POST


@pytest.mark.parametrize("path", ["/", "/data"])
def test_plain_post_is_accepted(emulator, coap, path):
    e = emulator(DEVICES)
    r = coap(coap_url(e, "plain/x", path), "post", bind=A1, data=b"plain")
    assert r.code == "2.04", r
    # The sink is flushed before the answer goes out: no waiting needed.
    lines = e.sink()
    assert len(lines) == 1, lines
    ev = lines[0]
    assert ev["coap"]["dtls"] is False
    assert ev["coap"]["path"] == path
    assert ev["coap"]["mid"] == r.request_mids[0]
    assert ev["device"] == {"iccid": D1, "ip": A1, "imsi": IMSI1}, ev
    assert ev["payload"]["topic"] == "plain/x"
    assert base64.b64decode(ev["payload"]["value"]) == b"plain"


@pytest.mark.parametrize("address", [UNKNOWN, A3], ids=["unknown", "inactive"])
def test_plain_post_from_unknown_or_inactive_device_is_unauthorized(emulator, raw, address):
    e = emulator(DEVICES)
    m = raw(address).post(e.coap_port, b"x", "a")
    assert m is not None and m.code_str == "4.01", m
    check_error_body(m)
    barrier(e, raw(A1), 0)


VALID_TOPICS = {
    "one char": "a",
    "mixed": "A_b/c",
    "digits": "Z9_0/x1",
    "253 chars": "t" * 253,
    "leading slash": "/a",
    "trailing slash": "a/",
}

INVALID_QUERIES = {
    "double slash": ["t=a//b"],
    "only slashes": ["t=//"],
    "hyphen": ["t=a-b"],
    "space": ["t=a b"],
    "dot": ["t=a.b"],
    "plus": ["t=a+b"],
    "hash": ["t=#"],
    "non-ascii": ["t=ä"],
    "empty": ["t="],
    "two t options": ["t=a", "t=b"],
    "two equal t options": ["t=a", "t=a"],
    "bare t": ["t"],
    "bare t and t=a": ["t", "t=a"],
}


@pytest.mark.parametrize("topic", VALID_TOPICS.values(), ids=VALID_TOPICS.keys())
def test_valid_topic_is_accepted(emulator, raw, topic):
    e = emulator(DEVICES)
    m = raw(A1).post(e.coap_port, b"v", topic)
    assert m is not None and m.code_str == "2.04", m
    lines = e.wait_sink(1)
    assert len(lines) == 1 and lines[0]["payload"]["topic"] == topic, lines


@pytest.mark.parametrize("queries", INVALID_QUERIES.values(), ids=INVALID_QUERIES.keys())
def test_invalid_topic_is_bad_request(emulator, raw, queries):
    e = emulator(DEVICES)
    c = raw(A1)
    m = c.request(e.coap_port, POST, "/", queries, b"bad")
    assert m is not None and m.code_str == "4.00", m
    check_error_body(m)
    barrier(e, c, 0)


def test_topic_of_254_characters_is_reset(emulator, raw):
    """A 254-character topic makes a 256-byte Uri-Query option, which RFC 7252 itself
    forbids: libcoap refuses the datagram with RST before any handler runs (README.md,
    "What it answers"). Nothing is processed."""
    e = emulator(DEVICES)
    c = raw(A1)
    m = c.request(e.coap_port, POST, "/", ["t=" + "t" * 254], b"bad")
    assert m is not None and m.type == nce.RST, m
    m = c.request(e.coap_port, POST, "/", ["t=" + "t" * 253], b"good")
    assert m is not None and m.code_str == "2.04", m
    assert len(e.wait_sink(1)) == 1
    assert e.stats()["accepted"] == 1


def test_no_topic_and_other_query_options(emulator, raw):
    e = emulator(DEVICES)
    c = raw(A1)
    m = c.post(e.coap_port, b"no topic")
    assert m.code_str == "2.04", m
    ev = e.wait_sink(1)[0]
    assert "topic" not in ev["payload"], ev
    m = c.request(e.coap_port, POST, "/", ["x=1", "t=ok", "other"], b"other options")
    assert m.code_str == "2.04", m
    assert e.wait_sink(2)[1]["payload"]["topic"] == "ok"


def test_payload_size_limit(emulator, raw):
    e = emulator(DEVICES)
    c = raw(A1)
    ok = bytes(i % 256 for i in range(1024))
    m = c.post(e.coap_port, ok, "size")
    assert m.code_str == "2.04", m
    assert base64.b64decode(e.wait_sink(1)[0]["payload"]["value"]) == ok
    m = c.post(e.coap_port, ok + b"!", "size")
    assert m.code_str == "4.13", m
    check_error_body(m)
    barrier(e, c, 1)


def test_block1_is_not_offered(emulator, raw):
    e = emulator(DEVICES)
    c = raw(A1)
    # Block1: block 0, more blocks follow, 64-byte blocks.
    m = c.request(e.coap_port, POST, "/", ["t=b"], b"b" * 64, [(nce.BLOCK1, bytes([0x0a]))])
    assert m is not None and m.code_str == "4.02", m
    barrier(e, c, 0)


@pytest.mark.parametrize("method,path,expected", [
    (POST, "/other", "4.04"),
    (POST, "/data/more", "4.04"),
    (GET, "/", "4.05"),
    (PUT, "/", "4.05"),
    (DELETE, "/data", "4.05"),
])
def test_other_paths_and_methods(emulator, raw, method, path, expected):
    e = emulator(DEVICES)
    c = raw(A1)
    m = c.request(e.coap_port, method, path, [], b"p" if method != GET else b"")
    assert m is not None and m.code_str == expected, m
    barrier(e, c, 0)


# --------------------------------------------------------------------------------------
# Duplicates


def test_duplicate_mid_is_answered_again_but_processed_once(emulator, raw):
    e = emulator(DEVICES)
    c = raw(A1)
    e.ctl_ok("reset-stats")
    dgram = request(POST, 0x4711, b"\xde\xad\xbe\xef", "/", ["t=dup"], b"once")
    first = c.exchange(dgram, e.coap_port)
    second = c.exchange(dgram, e.coap_port)
    assert first is not None and first.code_str == "2.04", first
    assert second is not None and second.raw == first.raw, (first, second)
    assert len(e.wait_sink(1)) == 1
    s = e.stats()
    assert s["duplicates"] == 1, s
    assert s["accepted"] == 1, s
    assert by_code(s) == {"2.04": 1}, s
    # A new MID is a new request.
    m = c.exchange(request(POST, 0x4712, b"\xde\xad\xbe\xef", "/", ["t=dup"], b"once"),
                   e.coap_port)
    assert m.code_str == "2.04"
    assert len(e.wait_sink(2)) == 2
    # The same datagram from another port of the same address is another source.
    other = raw(A1)
    m = other.exchange(dgram, e.coap_port)
    assert m.code_str == "2.04"
    assert len(e.wait_sink(3)) == 3
    assert e.stats()["duplicates"] == 1


def test_duplicate_of_a_rejected_request_gets_the_same_answer(emulator, raw):
    e = emulator(DEVICES)
    c = raw(A1)
    dgram = request(POST, 0x0102, b"\x01", "/", ["t=a-b"], b"bad topic")
    first = c.exchange(dgram, e.coap_port)
    second = c.exchange(dgram, e.coap_port)
    assert first.code_str == "4.00" and second.raw == first.raw
    s = e.stats()
    assert s["duplicates"] == 1 and by_code(s) == {"4.00": 1}, s


def test_duplicate_over_dtls(emulator, tunnel):
    e = emulator(DEVICES)
    t = tunnel(e.coaps_port, D2, PSK2, bind=A2)
    dgram = request(POST, 0x0a0b, b"\x42\x43", "/", ["t=d"], b"dtls dup")
    first = t.exchange(dgram)
    assert first is not None and first.code_str == "2.04", t.errors()
    second = t.exchange(dgram)
    assert second is not None and second.raw == first.raw
    assert len(e.wait_sink(1)) == 1
    assert e.stats()["duplicates"] == 1


def test_duplicate_detection_survives_forget(emulator, raw):
    # Duplicates are keyed by the client's source address and port, which `forget`
    # (the NAT mapping towards libcoap) does not change.
    e = emulator(DEVICES)
    c = raw(A1)
    dgram = request(POST, 0x3333, b"\x33", "/", [], b"forget")
    first = c.exchange(dgram, e.coap_port)
    assert first.code_str == "2.04"
    e.ctl_ok("forget")
    second = c.exchange(dgram, e.coap_port)
    assert second is not None and second.raw == first.raw
    assert e.stats()["duplicates"] == 1
    barrier(e, c, 1)


# --------------------------------------------------------------------------------------
# Fault switches


def test_drop_in(emulator, raw):
    e = emulator(DEVICES)
    c = raw(A1)
    e.ctl_ok("drop in 100")
    assert c.post(e.coap_port, b"lost", timeout=NO_ANSWER) is None
    s = e.stats()
    assert s["datagrams"]["dropped_in"] >= 1 and s["datagrams"]["dropped_out"] == 0, s
    assert s["accepted"] == 0, s
    e.ctl_ok("drop in 0")
    barrier(e, c, 0)


def test_drop_out(emulator, raw):
    e = emulator(DEVICES)
    c = raw(A1)
    e.ctl_ok("drop out 100")
    assert c.post(e.coap_port, b"processed", timeout=NO_ANSWER) is None
    lines = e.wait_sink(1)
    assert base64.b64decode(lines[0]["payload"]["value"]) == b"processed"
    s = e.stats()
    assert s["datagrams"]["dropped_out"] >= 1 and s["datagrams"]["dropped_in"] == 0, s
    assert s["accepted"] == 1, s
    e.ctl_ok("drop out 0")
    barrier(e, c, 1)


def test_drop_both_half(emulator, raw):
    # Each datagram is dropped with 50 %: about half the requests arrive, about half
    # of their answers come back. Bounds are wide (5 sigma); the counters must agree
    # exactly with what the client and the sink saw.
    n = 200
    e = emulator(DEVICES, verbose=False)
    c = raw(A1)
    e.ctl_ok("drop both 50")
    e.ctl_ok("reset-stats")
    sent = {}
    answered = set()

    def drain(quiet):
        # Read answers until none has come for quiet seconds.
        while (data := c.recv(quiet)) is not None:
            m = nce.decode(data)
            assert m.mid in sent and m.code_str == "2.04", m
            answered.add(m.mid)

    for i in range(n):
        mid = c.next_mid()
        sent[mid] = True
        c.send(request(POST, mid, c.next_token(), "/", [], f"m{i}".encode()), e.coap_port)
        drain(0)
        time.sleep(0.002)
    drain(0.5)
    s = e.stats()
    d = s["datagrams"]
    accepted = len(e.sink())
    assert d["in"] == n, s                      # dropped ones included
    assert 0.25 * n <= d["dropped_in"] <= 0.75 * n, s
    assert accepted == s["accepted"] == n - d["dropped_in"], (accepted, s)
    assert d["out"] == accepted, s              # one answer each, dropped ones included
    assert len(answered) == accepted - d["dropped_out"], (len(answered), s)
    assert 0.25 * accepted <= d["dropped_out"] <= 0.75 * accepted, s
    assert s["requests"]["total"] == accepted, s
    assert 0.05 * n <= len(answered) <= 0.45 * n, len(answered)
    e.ctl_ok("drop both 0")
    assert c.post(e.coap_port, b"after").code_str == "2.04"


def test_drop_accepts_decimals(emulator, raw):
    e = emulator(DEVICES)
    e.ctl_ok("drop both 0.5")
    e.ctl_ok("drop in 99.9")
    e.ctl_ok("drop in 0")
    e.ctl_ok("drop out 0")
    assert raw(A1).post(e.coap_port, b"x").code_str == "2.04"


def test_delay(emulator, raw):
    e = emulator(DEVICES)
    c = raw(A1)
    e.ctl_ok("delay 300")
    t0 = time.monotonic()
    m = c.post(e.coap_port, b"slow", timeout=5)
    rtt = time.monotonic() - t0
    assert m is not None and m.code_str == "2.04", m
    assert 0.6 <= rtt < 2.0, rtt            # 300 ms each way
    assert e.stats()["datagrams"]["delayed"] >= 2
    e.ctl_ok("delay 0")
    t0 = time.monotonic()
    assert c.post(e.coap_port, b"fast").code_str == "2.04"
    assert time.monotonic() - t0 < 0.3


def test_delay_with_jitter_reorders(emulator, raw):
    e = emulator(DEVICES, verbose=False)
    c = raw(A1)
    e.ctl_ok("delay 50 300")
    sent = {}
    for i in range(20):
        mid = c.next_mid()
        sent[mid] = time.monotonic()
        c.send(request(POST, mid, c.next_token(), "/", [], b"j%d" % i), e.coap_port)
        time.sleep(0.005)
    order, rtts = [], []
    deadline = time.monotonic() + 5
    while len(order) < 20 and time.monotonic() < deadline:
        data = c.recv(deadline - time.monotonic())
        if data is None:
            break
        m = nce.decode(data)
        order.append(m.mid)
        rtts.append(time.monotonic() - sent[m.mid])
    assert sorted(order) == sorted(sent), (order, list(sent))
    assert min(rtts) >= 0.1 and max(rtts) < 0.65 + 0.5, rtts
    assert order != list(sent), "20 answers with up to 300 ms jitter came back in order"


def test_silence(emulator, raw):
    e = emulator(DEVICES)
    c = raw(A1)
    e.ctl_ok("silence 2")
    t0 = time.monotonic()
    first = None
    while time.monotonic() - t0 < 6:
        m = c.post(e.coap_port, b"s", timeout=0.25)
        if m is not None:
            first = time.monotonic() - t0
            break
    assert first is not None, "no answer 6 s after silence 2"
    assert 1.8 <= first <= 3.0, first
    assert e.stats()["datagrams"]["dropped_in"] >= 3
    # silence 0 ends a silence at once.
    e.ctl_ok("silence 60")
    assert c.post(e.coap_port, b"s", timeout=NO_ANSWER) is None
    e.ctl_ok("silence 0")
    assert c.post(e.coap_port, b"s").code_str == "2.04"


def test_respond_any(emulator, raw):
    e = emulator(DEVICES)
    c = raw(A1)
    e.ctl_ok("reset-stats")
    e.ctl_ok("respond 5.03 2")
    assert c.post(e.coap_port, b"1").code_str == "5.03"
    assert c.bootstrap(e.coap_port).code_str == "5.03"
    assert c.post(e.coap_port, b"3").code_str == "2.04"
    lines = e.wait_sink(1)
    assert len(lines) == 1 and base64.b64decode(lines[0]["payload"]["value"]) == b"3"
    s = e.stats()
    assert s["injected"] == 2, s
    assert by_code(s) == {"5.03": 2, "2.04": 1}, s
    assert s["accepted"] == 1 and s["requests"]["total"] == 3, s


def test_respond_bootstrap_only(emulator, raw):
    e = emulator(DEVICES)
    c = raw(A1)
    e.ctl_ok("respond 4.01 1 bootstrap")
    assert c.post(e.coap_port, b"x").code_str == "2.04"
    assert c.bootstrap(e.coap_port).code_str == "4.01"
    assert c.bootstrap(e.coap_port).code_str == "2.05"
    assert e.stats()["injected"] == 1


def test_respond_data_only(emulator, raw):
    e = emulator(DEVICES)
    c = raw(A1)
    e.ctl_ok("respond 5.03 1 data")
    assert c.bootstrap(e.coap_port).code_str == "2.05"
    assert c.post(e.coap_port, b"x").code_str == "5.03"
    assert c.post(e.coap_port, b"y").code_str == "2.04"
    barrier(e, c, 1)


def test_respond_applies_to_dtls(emulator, coap):
    e = emulator(DEVICES)
    e.ctl_ok("respond 5.03 1 data")
    r = coap(coaps_url(e), "post", bind=A2, identity=D2, key=PSK2, data=b"x")
    assert r.code == "5.03", r
    r = coap(coaps_url(e), "post", bind=A2, identity=D2, key=PSK2, data=b"y")
    assert r.code == "2.04", r


def test_rotate(emulator, coap, tunnel):
    e = emulator(DEVICES)
    old = bootstrap_psk(e, A1)
    t = tunnel(e.coaps_port, D1, old, bind=A1)
    m = t.post(b"before")
    assert m is not None and m.code_str == "2.04", t.errors()
    e.ctl_ok(f"rotate {D1}")
    # The session made with the old key gets 4.01 from now on.
    m = t.post(b"stale session")
    assert m is not None and m.code_str == "4.01", m
    new = bootstrap_psk(e, A1)
    assert GENERATED_PSK.match(new) and new != old
    r = coap(coaps_url(e), "post", bind=A1, identity=D1, key=old, data=b"old key", wait=3)
    assert r.code is None, r
    r = coap(coaps_url(e), "post", bind=A1, identity=D1, key=new, data=b"new key")
    assert r.code == "2.04", r
    values = [base64.b64decode(l["payload"]["value"]) for l in e.wait_sink(2)]
    assert values == [b"before", b"new key"], values


def test_deactivate_and_activate(emulator, raw, tunnel):
    e = emulator(DEVICES)
    c = raw(A1)
    psk = bootstrap_psk(e, A1)
    t = tunnel(e.coaps_port, D1, psk, bind=A1)
    assert t.post(b"1").code_str == "2.04"
    e.ctl_ok(f"deactivate {D1}")
    m = c.post(e.coap_port, b"2")
    assert m.code_str == "4.01", m
    check_error_body(m)
    m = c.bootstrap(e.coap_port)
    assert m.code_str == "4.01", m
    assert t.post(b"3").code_str == "4.01"
    e.ctl_ok(f"activate {D1}")
    assert c.post(e.coap_port, b"4").code_str == "2.04"
    assert c.bootstrap(e.coap_port).code_str == "2.05"
    assert t.post(b"5").code_str == "2.04"
    values = [base64.b64decode(l["payload"]["value"]) for l in e.wait_sink(3)]
    assert values == [b"1", b"4", b"5"], values


def test_activate_an_inactive_registry_device(emulator, raw):
    e = emulator(DEVICES)
    c = raw(A3)
    assert c.bootstrap(e.coap_port).code_str == "4.01"
    e.ctl_ok(f"activate {D3}")
    m = c.bootstrap(e.coap_port)
    assert m.code_str == "2.05" and m.payload.decode().startswith(D3 + ","), m


def test_forget_loses_dtls_sessions(emulator, raw, tunnel, coap):
    e = emulator(DEVICES)
    t = tunnel(e.coaps_port, D2, PSK2, bind=A2)
    assert t.post(b"before").code_str == "2.04"
    e.ctl_ok("forget")
    assert t.post(b"after forget", timeout=1.5) is None
    r = coap(coaps_url(e), "post", bind=A2, identity=D2, key=PSK2, data=b"new session")
    assert r.code == "2.04", r
    assert raw(A1).post(e.coap_port, b"plain").code_str == "2.04"
    values = [base64.b64decode(l["payload"]["value"]) for l in e.wait_sink(3)]
    assert values == [b"before", b"new session", b"plain"], values


def test_nat_timeout(emulator, tunnel):
    e = emulator(DEVICES)
    t = tunnel(e.coaps_port, D2, PSK2, bind=A2)
    assert t.post(b"1").code_str == "2.04"
    e.ctl_ok("nat-timeout 1")
    time.sleep(0.3)                          # idle well below the timeout
    assert t.post(b"2").code_str == "2.04"
    time.sleep(2.5)                          # idle well beyond it
    assert t.post(b"3", timeout=1.5) is None
    e.ctl_ok("nat-timeout 0")


# --------------------------------------------------------------------------------------
# Start-time commands


def test_exec_at_start(emulator, raw):
    e = emulator(DEVICES, ["-x", "drop in 100"])
    c = raw(A1)
    assert c.post(e.coap_port, b"x", timeout=NO_ANSWER) is None
    assert e.stats()["datagrams"]["dropped_in"] >= 1
    e.ctl_ok("drop in 0")
    assert c.post(e.coap_port, b"y").code_str == "2.04"


def test_exec_is_repeatable(emulator, raw):
    e = emulator(DEVICES, ["-x", "delay 200", "-x", "respond 5.03 1"])
    c = raw(A1)
    t0 = time.monotonic()
    assert c.post(e.coap_port, b"x", timeout=5).code_str == "5.03"
    assert time.monotonic() - t0 >= 0.4
    assert c.post(e.coap_port, b"y", timeout=5).code_str == "2.04"


def test_drop_and_delay_shorthands(emulator, raw):
    e = emulator(DEVICES, ["--drop", "100"])
    c = raw(A1)
    assert c.post(e.coap_port, b"x", timeout=NO_ANSWER) is None
    e2 = emulator(DEVICES, ["--delay", "300"])
    t0 = time.monotonic()
    assert raw(A1).post(e2.coap_port, b"y", timeout=5).code_str == "2.04"
    assert time.monotonic() - t0 >= 0.6


# --------------------------------------------------------------------------------------
# Control interface and counters


def test_counters(emulator, raw, coap):
    e = emulator(DEVICES)
    e.ctl_ok("reset-stats")
    c1, c2 = raw(A1), raw(A2)
    wire = {"in": 0, "out": 0}

    def ex(c, method, path="/", queries=(), payload=b""):
        data = request(method, c.next_mid(), c.next_token(), path, queries, payload)
        m = c.exchange(data, e.coap_port)
        assert m is not None
        wire["in"] += len(data)
        wire["out"] += len(m.raw)
        return m.code_str

    assert ex(c1, GET, "/bootstrap") == "2.05"
    assert ex(c1, GET, "/bootstrap") == "2.05"
    assert ex(c2, GET, "/bootstrap") == "2.05"
    for i in range(3):
        assert ex(c1, POST, "/", ["t=a"], b"ok") == "2.04"
    assert ex(c1, POST, "/", ["t=a-b"], b"bad") == "4.00"
    assert ex(c1, POST, "/", [], b"x" * 1025) == "4.13"
    assert ex(c2, POST, "/data", ["t=a"], b"x") == "2.04"
    s = e.stats()
    assert s["requests"]["total"] == 9, s
    assert by_code(s) == {"2.05": 3, "2.04": 4, "4.00": 1, "4.13": 1}, s
    assert s["accepted"] == 4 and s["duplicates"] == 0 and s["injected"] == 0, s
    assert s["bootstraps"]["total"] == 3, s
    # by_device lists every registered device, 0 for the others.
    assert s["bootstraps"]["by_device"] == {D1: 2, D2: 1, D3: 0, D4: 0}, s
    assert s["handshakes"]["started"] == 0, s
    assert s["handshakes"]["ok"] == 0 and s["handshakes"]["failed"] == 0, s
    assert s["handshakes"]["by_device"] == {D1: 0, D2: 0, D3: 0, D4: 0}, s
    assert s["datagrams"] == {"in": 9, "out": 9, "bytes_in": wire["in"],
                              "bytes_out": wire["out"], "dropped_in": 0, "dropped_out": 0,
                              "delayed": 0}, (s, wire)
    assert s["mqtt"] == {"published": 0, "failed": 0}, s

    r = coap(coaps_url(e, "a"), "post", bind=A2, identity=D2, key=PSK2, data=b"dtls")
    assert r.code == "2.04", r
    s = e.stats()
    assert s["handshakes"]["started"] == 1 and s["handshakes"]["ok"] == 1, s
    assert s["handshakes"]["failed"] == 0, s
    assert s["handshakes"]["by_device"] == {D1: 0, D2: 1, D3: 0, D4: 0}, s
    assert s["accepted"] == 5 and by_code(s)["2.04"] == 5, s
    # The handshake crossed the network too.
    assert s["datagrams"]["in"] > 9 + 2 and s["datagrams"]["out"] > 9 + 2, s
    assert s["datagrams"]["bytes_in"] > wire["in"] + 100, s

    e.ctl_ok("reset-stats")
    s = e.stats()
    assert s["requests"]["total"] == 0 and by_code(s) == {}, s
    assert s["accepted"] == 0 and s["duplicates"] == 0 and s["injected"] == 0, s
    assert s["bootstraps"]["total"] == 0, s
    assert s["bootstraps"]["by_device"] == {D1: 0, D2: 0, D3: 0, D4: 0}, s
    assert s["handshakes"] == {"started": 0, "ok": 0, "failed": 0,
                               "by_device": {D1: 0, D2: 0, D3: 0, D4: 0}}, s
    assert not any(s["datagrams"].values()), s
    assert s["mqtt"] == {"published": 0, "failed": 0}, s


def test_devices_command(emulator):
    e = emulator(DEVICES)
    psk = bootstrap_psk(e, A1)
    text = json.dumps(e.ctl_ok("devices"))
    for iccid in (D1, D2, D3, D4):
        assert iccid in text, text
    assert psk in text and PSK2 in text, text
    assert "inactive" in text, text


def test_help_lists_the_commands(emulator):
    e = emulator(DEVICES)
    text = json.dumps(e.ctl_ok("help"))
    for command in ("stats", "reset-stats", "devices", "drop", "delay", "silence", "respond",
                    "rotate", "psk", "deactivate", "activate", "clock", "nat-timeout",
                    "forget"):
        assert command in text, (command, text)


@pytest.mark.parametrize("command", [
    "no-such-command",
    "drop in 101",
    "drop in -1",
    "drop sideways 5",
    "drop in",
    "delay soon",
    "silence forever",
    "respond 5.03",
    "respond 5.03 1 elsewhere",
    "rotate 8988228066600009999",
    "deactivate 8988228066600009999",
    "psk 8988228066600009999 string abc",
    f"psk {D1} hex xyz",
    "clock +soon",
])
def test_bad_command_is_an_error(emulator, raw, command):
    e = emulator(DEVICES)
    answer = e.ctl(command)
    assert answer.get("ok") is False, (command, answer)
    assert isinstance(answer.get("error"), str) and answer["error"], answer
    # Nothing changed: the device still works normally.
    assert raw(A1).post(e.coap_port, b"x").code_str == "2.04"


# --------------------------------------------------------------------------------------
# MQTT


def test_mqtt_topics_and_payload(emulator, raw, mosquitto, mqtt_subscriber):
    sub = mqtt_subscriber(mosquitto)
    e = emulator(DEVICES, ["--mqtt", f"127.0.0.1:{mosquitto.port}"])
    mosquitto.wait_client(exclude={nce.SUB_ID, nce.PROBE_ID})
    c = raw(A1)
    assert c.post(e.coap_port, b"with topic", "a/b").code_str == "2.04"
    assert c.post(e.coap_port, b"no topic").code_str == "2.04"
    msgs = sub.wait_messages(2)
    assert len(msgs) == 2, msgs
    sink = {l["payload"]["value"]: l for l in e.wait_sink(2)}
    got = {}
    for topic, payload in msgs:
        ev = json.loads(payload)
        assert ev == sink[ev["payload"]["value"]], (ev, sink)
        got[base64.b64decode(ev["payload"]["value"])] = topic
    assert got == {b"with topic": f"{D1}/a/b", b"no topic": D1}, got
    s = e.stats()
    assert s["mqtt"] == {"published": 2, "failed": 0}, s
