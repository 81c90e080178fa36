# SPDX-License-Identifier: MIT
"""The `unixsock` input against its README (plugins/unixsock/README.md): real clients
on a real socket, readings read back from `coapgated --test` (stdout) or from the
disk queue (`coapgatectl queue dump`, with the uplink disabled so nothing is deleted).

  * formats: JSON lines and line protocol, every field type with exact values and
    types, the topic override, timestamps given and absent, line protocol precision;
  * bad input: every rejected kind gets one `error <reason>` line, is logged with the
    client's pid and uid, and the connection and the input go on; empty lines are
    skipped; a line cut by a disconnect is discarded; 1 MiB lines, the max_message
    boundary (also for a CRLF line split before its \n), memory bounded under an
    endless line;
  * datagram mode, including creds in the log (SCM_CREDENTIALS);
  * many clients: 100 at once with every reading exactly once in the queue, a flood
    next to a slow client, a client that never reads its answers, max_clients;
  * the socket file: socket_mode, group, stale sockets replaced, anything else at the
    path (a file, a directory, a symlink, a FIFO, a live socket of either kind, a
    busy one) refused and left alone, removal on stop;
  * configuration errors;
  * a full queue on a small tmpfs: `block` stops reading and loses nothing,
    `drop_newest` answers `error queue full`.

Ack mode and the kill -9 loop are in test_unixsock_ack.py."""

import array
import fcntl
import grp
import json
import os
import socket
import stat
import statistics
import termios
import threading
import time
from pathlib import Path

import pytest

from conftest import PLUGIN_DIR, run
from smallfs import FULL_QUEUE, leave_free, small_fs  # noqa: F401  (fixture)
from unixsock import gate, sockdir  # noqa: F401  (fixtures)
from unixsock import (INSTANCE, TOPIC, DatagramClient, Peer, answer_lines, config_text,
                      connect_stream, json_line, padded_json, queue_dump, typed,
                      unixsock_input, wait_until)

pytestmark = pytest.mark.skipif(not (Path(PLUGIN_DIR) / "unixsock.so").exists(),
                                reason="unixsock.so is not built")

I64_MAX = 2**63 - 1
I64_MIN = -2**63
TS = 1732480000123  # a timestamp in ms, as in the README


def now_ms():
    return int(time.time() * 1000)


def check_reading(got, topic, fields, ts=None):
    """One --test reading against what it must be: input, topic, ts (None: not
    checked here) and every field with its type."""
    assert got["input"] == INSTANCE, got
    assert got["topic"] == topic, got
    if ts is not None:
        assert got["ts"] == ts, got
    assert typed(got["fields"]) == typed(fields), got


def send_and_read(g, lines, timeout=10):
    """Send lines over one connection; returns the readings they printed, in order.
    Fails if any line got an answer (nothing is written back without errors)."""
    c = g.connect()
    for line in lines:
        c.send_line(line)
    got = g.readings(len(lines), timeout=timeout)
    assert c.pending() == b""
    c.close()
    return got


# --------------------------------------------------------------------------------------
# JSON lines


def test_json_every_field_type(gate):
    g = gate(format="json")
    lines = [
        # The README's example, with a topic and a timestamp of its own.
        '{"topic": "boiler/1", "ts": 1732480000123, "temperature": 21.5, "count": 3, '
        '"ok": true, "state": "idle"}',
        # Integers: no fraction, no exponent, the whole 64-bit range.
        f'{{"zero": 0, "neg": -12, "max": {I64_MAX}, "min": {I64_MIN}, "negzero": -0}}',
        # Floats: anything with a fraction or an exponent, exactly rounded.
        '{"a": 21.5, "b": 1e3, "c": 2.0, "d": -0.5, "e": 1E-2, "f": 0.1, '
        '"g": 1.7976931348623157e308, "h": 3.14159265358979323846264338, "i": 5e-324, '
        '"j": -1.5e+7, "k": 100000000000000000000.0}',
        # Booleans.
        '{"t": true, "f": false}',
        # Strings: escapes decoded, UTF-8 kept, empty allowed.
        r'{"esc": "a\"b\\c\/d\b\f\n\r\t", "u": "\u00e9\ud83d\ude00", "raw": "grüße ☃", '
        r'"empty": ""}',
        # Names: every allowed character, 64 bytes long.
        '{"Az09_.-": 1, "' + "n" * 64 + '": 2}',
        # White space around and inside.
        ' \t{ "spaced" : 1 ,\t"x":2 } \t',
    ]
    got = send_and_read(g, lines)
    check_reading(got[0], "boiler/1", {"temperature": 21.5, "count": 3, "ok": True,
                                       "state": "idle"}, ts=TS)
    check_reading(got[1], TOPIC, {"zero": 0, "neg": -12, "max": I64_MAX, "min": I64_MIN,
                                  "negzero": 0})
    check_reading(got[2], TOPIC, {"a": 21.5, "b": 1000.0, "c": 2.0, "d": -0.5, "e": 0.01,
                                  "f": 0.1, "g": 1.7976931348623157e308,
                                  "h": 3.14159265358979323846264338, "i": 5e-324,
                                  "j": -15000000.0, "k": 1e20})
    check_reading(got[3], TOPIC, {"t": True, "f": False})
    check_reading(got[4], TOPIC, {"esc": 'a"b\\c/d\b\f\n\r\t', "u": "\u00e9\U0001F600",
                                  "raw": "grüße ☃", "empty": ""})
    check_reading(got[5], TOPIC, {"Az09_.-": 1, "n" * 64: 2})
    check_reading(got[6], TOPIC, {"spaced": 1, "x": 2})


def test_json_limits_are_inclusive(gate):
    g = gate(format="json")
    fields64 = {f"f{i:02d}": i for i in range(64)}
    topic253 = "/".join(["t" * 50] * 5)[:253]
    lines = [
        # 64 fields; topic and ts are not fields.
        json.dumps({"topic": "a/b", "ts": TS, **fields64}),
        # A topic of 253 bytes.
        json.dumps({"topic": topic253, "v": 1}),
        # 512 bytes of string, also when counted in UTF-8 bytes after escapes.
        json.dumps({"s": "x" * 512}),
        json.dumps({"s": "é" * 256}, ensure_ascii=False),
        '{"s": "' + r"\u00e9" * 256 + '"}',
    ]
    got = send_and_read(g, lines)
    check_reading(got[0], "a/b", fields64, ts=TS)
    check_reading(got[1], topic253, {"v": 1})
    check_reading(got[2], TOPIC, {"s": "x" * 512})
    check_reading(got[3], TOPIC, {"s": "é" * 256})
    check_reading(got[4], TOPIC, {"s": "é" * 256})


def test_json_timestamp_absent_or_zero_is_arrival_time(gate):
    g = gate(format="json")
    c = g.connect()
    before = now_ms()
    c.send_line('{"v": 1}')
    c.send_line('{"ts": 0, "v": 2}')
    got = g.readings(2)
    after = now_ms()
    for r in got:
        assert before - 1 <= r["ts"] <= after + 1, (before, r, after)
        assert r["topic"] == TOPIC
    # A given timestamp is kept exactly, even one long ago.
    c.send_line('{"ts": 1, "v": 3}')
    assert g.readings(3)[2]["ts"] == 1


def test_json_topic_default_is_the_instance_topic(gate):
    g = gate(format="json", topic="plant/line_7")
    got = send_and_read(g, ['{"v": 1}', '{"topic": "other/t", "v": 2}', '{"v": 3}'])
    assert [r["topic"] for r in got] == ["plant/line_7", "other/t", "plant/line_7"]


# Every kind of JSON message the README rejects. Each one is sent on its own to a fresh
# daemon, so the first rejection is logged whatever the rate limit.
FIELDS65 = json.dumps({f"f{i:02d}": i for i in range(65)}).encode()
NO_NEWLINE_JUNK = bytes(b for b in range(256) if b != 0x0A)
JSON_REJECTED = {
    "truncated": b'{"a": 1',
    "no-colon": b'{"a" 1}',
    "unquoted-name": b'{a: 1}',
    "trailing-comma": b'{"a": 1,}',
    "array": b'[1, 2]',
    "string": b'"text"',
    "number": b'42',
    "null": b'null',
    "null-value": b'{"a": null}',
    "object-value": b'{"a": {"b": 1}}',
    "array-value": b'{"a": [1]}',
    "member-twice": b'{"a": 1, "a": 2}',
    "name-with-space": b'{"bad name": 1}',
    "name-empty": b'{"": 1}',
    "name-65-bytes": b'{"' + b"n" * 65 + b'": 1}',
    "name-with-slash": b'{"a/b": 1}',
    "65-fields": FIELDS65,
    "empty-object": b'{}',
    "topic-only": b'{"topic": "x"}',
    "ts-only": b'{"ts": 1732480000123}',
    "topic-and-ts-only": b'{"topic": "x", "ts": 1732480000123}',
    "two-objects": b'{"a": 1}{"b": 2}',
    "trailing-garbage": b'{"a": 1} x',
    "i64-above": b'{"a": 9223372036854775808}',
    "i64-below": b'{"a": -9223372036854775809}',
    "huge-integer": b'{"a": 123456789012345678901234567890}',
    "leading-zero": b'{"a": 01}',
    "lone-minus": b'{"a": -}',
    "dot-without-digits": b'{"a": 1.}',
    "no-digit-before-dot": b'{"a": .5}',
    "bad-literal": b'{"a": tru}',
    "unterminated-string": b'{"a": "abc}',
    "bad-escape": b'{"a": "\\q"}',
    "escaped-nul": b'{"a": "x\\u0000y"}',
    "raw-nul-in-string": b'{"a": "x\x00y"}',
    "raw-control-in-string": b'{"a": "x\x01y"}',
    "nul-after-object": b'{"a": 1}\x00{"b": 2}',
    "string-513-bytes": b'{"s": "' + b"x" * 513 + b'"}',
    "string-513-utf8-bytes": ('{"s": "' + "é" * 256 + 'x"}').encode(),
    "lone-surrogate-escape": b'{"a": "\\ud800"}',
    "utf8-invalid-byte": b'{"a": "\xff"}',
    "utf8-in-name": b'{"\xc3\x28": 1}',
    "utf8-overlong": b'{"a": "\xc0\xaf"}',
    "utf8-surrogate": b'{"a": "\xed\xa0\x80"}',
    "utf8-cut-short": b'{"a": "\xe2\x82"}',
    "binary-junk": NO_NEWLINE_JUNK,
    "topic-double-slash": b'{"topic": "a//b", "v": 1}',
    "topic-empty": b'{"topic": "", "v": 1}',
    "topic-bad-character": b'{"topic": "a-b", "v": 1}',
    "topic-254-bytes": b'{"topic": "' + b"t" * 254 + b'", "v": 1}',
    "topic-not-a-string": b'{"topic": 5, "v": 1}',
    "ts-a-string": b'{"ts": "soon", "v": 1}',
    "ts-with-fraction": b'{"ts": 1.5, "v": 1}',
}


def check_rejected(g, c, message, good, good_fields):
    """message gets exactly one `error <reason>` answer and one log line with this
    process's pid and uid; then `good` on the same connection becomes a reading."""
    c.send_line(message)
    answer = c.answer()
    assert answer.startswith("error ") and answer[6:].strip(), answer
    reason = answer[len("error "):]
    rejections = g.wait_rejections(1)
    m = rejections[0]
    assert (m["instance"], int(m["pid"]), int(m["uid"]), int(m["count"])) == \
        (INSTANCE, os.getpid(), os.getuid(), 1), m.group(0)
    assert reason in m["reason"], (answer, m.group(0))
    # The connection stays usable and the input goes on.
    c.send_line(good)
    got = g.readings(1)
    assert typed(got[0]["fields"]) == typed(good_fields), got
    assert c.pending() == b"", "an answer besides the one error"
    return reason


@pytest.mark.parametrize("message", JSON_REJECTED.values(), ids=JSON_REJECTED.keys())
def test_json_rejected(gate, message):
    g = gate(format="json")
    c = g.connect()
    check_rejected(g, c, message, '{"after": 1}', {"after": 1})
    assert g.printed()[0]["fields"] == {"after": 1}  # nothing of the bad message


# --------------------------------------------------------------------------------------
# InfluxDB line protocol


def test_influx_every_field_type(gate):
    g = gate(format="influx")
    lines = [
        # The README's example: tags are strings, the timestamp is in ns by default.
        'boiler,site=north temperature=21.5,count=3i,ok=true,state="idle" '
        '1732480000123000000',
        # Every boolean spelling.
        'm a=t,b=T,c=true,d=True,e=TRUE,f=f,g=F,h=false,i=False,j=FALSE',
        # Floats: a number without suffix.
        'm a=21.5,b=-3,c=1e3,d=0,e=-0.5,f=1.5E-3,g=0.1',
        # Integers and unsigned integers, to the ends of the i64 range.
        f'm a=3i,b=-12i,c={I64_MAX}i,d={I64_MIN}i,e=0i',
        f'm a=3u,b={I64_MAX}u,c=0u',
        # Strings with their two escapes; anything else inside quotes is literal.
        'm s="idle",e="",q="say \\"hi\\"",b="back\\\\slash",c="a b,c=d",u="grüße ☃"',
        # Tag value escapes: comma, equals sign, space.
        'm,loc=a\\ b\\,c\\=d,site=north v=1',
        # A measurement that is a topic with levels.
        'site1/boiler v=1i',
    ]
    got = send_and_read(g, lines)
    check_reading(got[0], "boiler", {"site": "north", "temperature": 21.5, "count": 3,
                                     "ok": True, "state": "idle"}, ts=TS)
    check_reading(got[1], "m", dict(a=True, b=True, c=True, d=True, e=True, f=False,
                                    g=False, h=False, i=False, j=False))
    check_reading(got[2], "m", dict(a=21.5, b=-3.0, c=1000.0, d=0.0, e=-0.5, f=0.0015,
                                    g=0.1))
    check_reading(got[3], "m", dict(a=3, b=-12, c=I64_MAX, d=I64_MIN, e=0))
    check_reading(got[4], "m", dict(a=3, b=I64_MAX, c=0))
    check_reading(got[5], "m", dict(s="idle", e="", q='say "hi"', b="back\\slash",
                                    c="a b,c=d", u="grüße ☃"))
    check_reading(got[6], "m", dict(loc="a b,c=d", site="north", v=1.0))
    check_reading(got[7], "site1/boiler", dict(v=1))


def test_influx_limits_are_inclusive(gate):
    g = gate(format="influx")
    tags = ",".join(f"t{i:02d}=x" for i in range(32))
    fields = ",".join(f"f{i:02d}={i}i" for i in range(32))
    lines = [
        f"m,{tags} {fields}",                    # 64 tags and fields together
        f'm s="{"x" * 512}"',                   # a string of 512 bytes
        f'm s="{"é" * 256}"',
    ]
    got = send_and_read(g, lines)
    expected = {f"t{i:02d}": "x" for i in range(32)}
    expected.update({f"f{i:02d}": i for i in range(32)})
    check_reading(got[0], "m", expected)
    check_reading(got[1], "m", {"s": "x" * 512})
    check_reading(got[2], "m", {"s": "é" * 256})


@pytest.mark.parametrize("precision,stamp,ms", [
    (None, 1732480000123999999, TS),      # ns by default; truncated, not rounded
    ("ns", 1732480000123999999, TS),
    ("us", 1732480000123999, TS),
    ("ms", 1732480000123, TS),
    ("s", 1732480000, 1732480000000),
])
def test_influx_timestamp_precision(gate, precision, stamp, ms):
    g = gate(format="influx", precision=precision)
    got = send_and_read(g, [f"m v=1i {stamp}"])
    check_reading(got[0], "m", {"v": 1}, ts=ms)


def test_influx_timestamp_absent_is_arrival_time(gate):
    g = gate(format="influx")
    c = g.connect()
    before = now_ms()
    c.send_line("m v=1i")
    r = g.readings(1)[0]
    assert before - 1 <= r["ts"] <= now_ms() + 1, (before, r)


INFLUX_REJECTED = {
    "measurement-only": b"m",
    "tags-only": b"m,t=1",
    "empty-value": b"m v=",
    "no-equals": b"m v",
    "empty-field-key": b"m =1",
    "trailing-comma": b"m v=1,",
    "bad-timestamp": b"m v=1 soon",
    "negative-timestamp": b"m v=1 -5",
    "extra-part": b"m v=1 1 2",
    "bare-word": b"m v=abc",
    "unterminated-string": b'm v="abc',
    "bad-number": b"m v=1.2.3",
    "field-twice": b"m a=1,a=2",
    "tag-twice": b"m,t=1,t=2 v=1",
    "tag-and-field-same-name": b"m,a=x a=1",
    "int-above": b"m v=9223372036854775808i",
    "int-below": b"m v=-9223372036854775809i",
    "uint-above": b"m v=9223372036854775808u",
    "uint-negative": b"m v=-1u",
    "topic-double-slash": b"a//b v=1",
    "topic-bad-character": b"a-b v=1",
    "topic-escaped-space": b"my\\ m v=1",
    "topic-254-bytes": b"t" * 254 + b" v=1",
    "empty-measurement": b",t=1 v=1",
    "field-name-bad": b"m b@d=1",
    "tag-key-with-escaped-space": b"m,b\\ ad=x v=1",
    "65-tags-and-fields": ("m," + ",".join(f"t{i:02d}=x" for i in range(33)) + " "
                           + ",".join(f"f{i:02d}=1" for i in range(32))).encode(),
    "string-513-bytes": b'm s="' + b"x" * 513 + b'"',
    "utf8-in-tag": b"m,t=\xff v=1",
    "utf8-in-string": b'm v="\xc0\xaf"',
    "utf8-in-measurement": b"m\xe2\x82 v=1",
    "nul": b"m v=1\x00",
    "binary-junk": NO_NEWLINE_JUNK,
}


@pytest.mark.parametrize("message", INFLUX_REJECTED.values(), ids=INFLUX_REJECTED.keys())
def test_influx_rejected(gate, message):
    g = gate(format="influx")
    c = g.connect()
    check_rejected(g, c, message, "after v=1i", {"v": 1})
    assert g.printed()[0]["topic"] == "after"


# --------------------------------------------------------------------------------------
# Lines on a stream


@pytest.mark.parametrize("fmt,good,comment", [
    ("json", '{"v": 1}', None),
    ("influx", "m v=1i", "# a comment, v=2i"),
])
def test_blank_lines_and_comments_are_skipped(gate, fmt, good, comment):
    g = gate(format=fmt)
    c = g.connect()
    skipped = ["", "   ", "\t", " \t \r"] + ([comment] if comment else [])
    for line in skipped:
        c.send_line(line)
    c.send_line(good)
    # CRLF: the \r before the newline is removed.
    c.send(good.encode() + b"\r\n")
    got = g.readings(2)
    assert [typed(r["fields"]) for r in got] == [typed({"v": 1})] * 2
    # No answer to the skipped lines: the first answer is the error for this one.
    c.send_line("{")
    assert c.answer().startswith("error ")
    assert len(g.printed()) == 2
    assert len(g.wait_rejections(1)) == 1
    assert int(g.rejections()[0]["count"]) == 1, "a skipped line was counted as rejected"


def test_without_ack_nothing_but_errors_is_written_back(gate):
    g = gate(format="json")
    c = g.connect()
    for i in range(50):
        c.send_line(json_line(i=i))
    c.send_line("not json")
    # Had a reading been answered, its answer would come before this error.
    first = c.answer()
    assert first.startswith("error "), first
    assert len(g.readings(50)) == 50
    assert c.pending() == b""


def test_disconnect_mid_line_discards_the_partial_line(gate):
    g = gate(format="influx")
    c = g.connect()
    # "m v=12" of "m v=1234": cut short, must not become a reading.
    c.send(b"m v=1i\nm v=12")
    g.readings(1)
    c.close()
    m = g.wait_rejections(1)[0]
    assert (int(m["pid"]), int(m["uid"]), int(m["count"])) == (os.getpid(), os.getuid(), 1)
    d = g.connect()
    d.send_line("m v=3i")
    got = g.readings(2)
    assert [r["fields"]["v"] for r in got] == [1, 3]
    d.send_line("m v=4i")
    assert [r["fields"]["v"] for r in g.readings(3)] == [1, 3, 4]


def test_one_mib_line_is_rejected_and_the_connection_goes_on(gate):
    g = gate(format="json")  # max_message 64K by default
    c = g.connect()
    c.send_line(json_line(before=1))
    # A well-formed JSON line, so that only its length can be wrong.
    c.send_line(padded_json(1 << 20, big=1))
    c.send_line(json_line(after=2))
    assert c.answer() == "error message longer than 65536 bytes"
    got = g.readings(2)
    assert [r["fields"] for r in got] == [{"before": 1}, {"after": 2}]
    assert c.pending() == b"", "more than one answer for the long line"
    m = g.wait_rejections(1)[0]
    assert (int(m["pid"]), int(m["uid"])) == (os.getpid(), os.getuid())
    assert "message longer than 65536 bytes" in m["reason"]


@pytest.mark.parametrize("max_message,size", [(None, 65536), ("1K", 1024), (256, 256)])
def test_max_message_boundary_on_a_stream(gate, max_message, size):
    g = gate(format="json", max_message=max_message)
    c = g.connect()
    c.send_line(padded_json(size, n=1))
    c.send_line(padded_json(size + 1, n=2))
    c.send_line(padded_json(size, n=3))
    assert c.answer() == f"error message longer than {size} bytes"
    got = g.readings(2)
    assert [r["fields"]["n"] for r in got] == [1, 3]
    assert c.pending() == b""


def test_crlf_line_of_max_message_is_accepted_however_it_is_split(gate):
    # The \r before the newline is not part of the message: a CRLF line of exactly
    # max_message bytes is accepted in one write, and so when the \n comes later.
    g = gate(format="json", max_message=256)
    c = g.connect()
    line = padded_json(256, n=1).encode()
    c.send(line + b"\r\n")
    assert g.readings(1)[0]["fields"]["n"] == 1
    c.send(padded_json(256, n=2).encode() + b"\r")
    time.sleep(0.2)  # not a synchronisation: lets the input read the \r on its own
    c.send(b"\n")
    c.send_line(json_line(n=3))
    g.readings(2)
    assert c.pending() == b"", "a CRLF line of max_message bytes was refused"
    assert [r["fields"]["n"] for r in g.readings(3)] == [1, 2, 3]


def test_endless_line_does_not_grow_memory(gate):
    g = gate(format="json")
    c = g.connect()
    c.send_line('{"v": 1}')
    g.readings(1)
    base = rss_bytes(g.proc.pid)
    # 64 MiB without a newline: everything past max_message is discarded unread.
    chunk = b"x" * (1 << 20)
    for _ in range(64):
        c.send(chunk)
    c.send(b"\n" + b'{"v": 2}\n')
    assert c.answer() == "error message longer than 65536 bytes"
    assert [r["fields"]["v"] for r in g.readings(2)] == [1, 2]
    grown = rss_bytes(g.proc.pid) - base
    assert grown < 8 << 20, f"RSS grew by {grown} bytes while a 64 MiB line was discarded"
    assert c.pending() == b""


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_rejections_are_counted_and_rate_limited(gate):
    g = gate(format="json")
    c = g.connect()
    n = 300
    for i in range(n):
        # Answers are read as they come: answers a client leaves unread may be dropped.
        c.send_line(f"junk {i}")
        assert c.answer().startswith("error "), i
    c.send_line('{"v": 1}')
    g.readings(1)
    logged = g.rejections()
    # The counts name how many were rejected so far; not every one is logged.
    counts = [int(m["count"]) for m in logged]
    assert counts and counts[0] == 1 and counts == sorted(counts) and counts[-1] <= n, counts
    assert len(logged) <= 25, f"{len(logged)} of {n} rejections logged: not rate-limited"


def test_peer_credentials_of_another_user_are_logged(gate, sockdir):
    # A client in its own process, as nobody: the log must name its pid and uid, not
    # the daemon's or the test's.
    need_root()
    os.chmod(sockdir, 0o755)
    g = gate(format="json", socket_mode="0666")
    wait_until(g.path.exists, 10, "the socket")
    peer = Peer("stream", g.path, [b"{oops", b'{"v": 7}'], n_answers=1)
    try:
        answers = peer.answers()
        assert answers[0].startswith("error ")
        m = g.wait_rejections(1)[0]
        assert (int(m["pid"]), int(m["uid"])) == (peer.pid, peer.uid), m.group(0)
        assert g.readings(1)[0]["fields"] == {"v": 7}
    finally:
        peer.finish()


def need_root():
    if os.geteuid() != 0:
        pytest.skip("a client as another user needs root")


# --------------------------------------------------------------------------------------
# Datagram mode


def test_datagram_messages(gate, sockdir):
    g = gate(mode="datagram", format="json")
    c = DatagramClient(g.path, sockdir / "client.sock")
    c.send('{"v": 1}')
    c.send('{"v": 2}\n')      # a trailing newline is removed
    c.send(b"")               # empty: skipped
    c.send("  \n")            # white space: skipped
    c.send('{"topic": "dg/t", "ts": 1732480000123, "s": "x"}')
    got = g.readings(3)
    check_reading(got[0], TOPIC, {"v": 1})
    check_reading(got[1], TOPIC, {"v": 2})
    check_reading(got[2], "dg/t", {"s": "x"}, ts=TS)
    # Two lines in one datagram are one message, and not one JSON object.
    c.send('{"v": 3}\n{"v": 4}')
    m = g.wait_rejections(1)[0]
    assert (int(m["pid"]), int(m["uid"]), int(m["count"])) == (os.getpid(), os.getuid(), 1)
    c.send('{"v": 5}')
    assert g.readings(4)[3]["fields"] == {"v": 5}
    assert c.pending() == [], "the input wrote back in datagram mode"


def test_datagram_influx(gate, sockdir):
    g = gate(mode="datagram", format="influx", precision="ms")
    c = DatagramClient(g.path, sockdir / "client.sock")
    c.send("boiler,site=north temperature=21.5,count=3i,ok=true,state=\"idle\" "
           "1732480000123\n")
    check_reading(g.readings(1)[0], "boiler", {"site": "north", "temperature": 21.5,
                                               "count": 3, "ok": True, "state": "idle"},
                  ts=TS)


@pytest.mark.parametrize("max_message,size", [("1K", 1024), (None, 65536)])
def test_datagram_max_message_boundary(gate, sockdir, max_message, size):
    g = gate(mode="datagram", format="json", max_message=max_message)
    c = DatagramClient(g.path, sockdir / "client.sock")
    c.send(padded_json(size, n=1))
    c.send(padded_json(size + 1, n=2))
    c.send(padded_json(size, n=3))
    got = g.readings(2)
    assert [r["fields"]["n"] for r in got] == [1, 3]
    m = g.wait_rejections(1)[0]
    assert f"message longer than {size} bytes" in m["reason"], m.group(0)
    assert (int(m["pid"]), int(m["uid"])) == (os.getpid(), os.getuid())
    assert c.pending() == []


def test_datagram_credentials_of_another_user_are_logged(gate, sockdir):
    need_root()
    os.chmod(sockdir, 0o755)
    g = gate(mode="datagram", format="influx", socket_mode="0666")
    wait_until(g.path.exists, 10, "the socket")
    peer = Peer("datagram", g.path, [NO_NEWLINE_JUNK, b"m v=1i"])
    try:
        assert peer.answers() == []
        m = g.wait_rejections(1)[0]
        assert (int(m["pid"]), int(m["uid"])) == (peer.pid, peer.uid), m.group(0)
        assert g.readings(1)[0]["fields"] == {"v": 1}
    finally:
        peer.finish()


# --------------------------------------------------------------------------------------
# Many clients


def test_100_concurrent_clients_every_reading_exactly_once(gate):
    clients, per_client = 100, 100
    g = gate(test=False, format="json", max_clients=128)
    socks = [connect_stream(g.path) for _ in range(clients)]
    start = threading.Barrier(clients)
    errors = []

    def produce(c, s):
        try:
            start.wait(timeout=30)
            for i in range(per_client):
                # One send per line, so that the lines of all clients interleave.
                s.sendall(json_line(id=c * 1000 + i, c=c, i=i).encode() + b"\n")
            s.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append((c, e))

    threads = [threading.Thread(target=produce, args=(c, s)) for c, s in enumerate(socks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    total = clients * per_client
    wait_until(lambda: len(g.dump()) >= total, 60,
               lambda: f"{total} readings in the queue, got {len(g.dump())}", interval=0.3)
    assert g.stop() == 0, g.log_text()
    dump = queue_dump(g.state_dir)
    ids = [r["fields"]["id"] for r in dump]
    assert len(ids) == total and set(ids) == {c * 1000 + i for c in range(clients)
                                              for i in range(per_client)}, \
        f"{len(ids)} readings, {len(set(ids))} distinct"
    for r in dump:
        f = r["fields"]
        assert r["topic"] == TOPIC and f["id"] == f["c"] * 1000 + f["i"], r
    # A stream is read in order: each client's readings keep theirs.
    by_client = {}
    for r in dump:
        by_client.setdefault(r["fields"]["c"], []).append(r["fields"]["i"])
    assert all(v == list(range(per_client)) for v in by_client.values())
    assert not g.rejections()


def test_flooding_client_does_not_starve_a_slow_one(gate):
    # Ack mode in --test: an `ok` is written as soon as the reading is printed, so the
    # slow client's round trip is how long its line waited to be read. A flooder that
    # writes far faster than the input parses always has data; an input that read it
    # until EAGAIN would not come back to the slow client while the flood lasts.
    g = gate(format="json", ack=True, discard_stdout=True)
    flood_line = json_line(flood=1, v=12345, s="padding to make the line longer").encode()
    chunk = (flood_line + b"\n") * 20000
    stop = threading.Event()
    flooder = g.connect()
    acked = [0]
    flood_bytes = [0]

    def flood():
        try:
            while not stop.is_set():
                flooder.sock.sendall(chunk)
                flood_bytes[0] += len(chunk)
        except OSError:
            pass

    def drain():  # the flooder reads its answers, so it is never held back for them
        try:
            for line in answer_lines(flooder.sock):
                assert line.startswith(b"ok "), line
                acked[0] += int(line[3:])
        except OSError:
            pass

    threads = [threading.Thread(target=flood, daemon=True),
               threading.Thread(target=drain, daemon=True)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: acked[0] >= 20000, 30, "the flood to be served")
        slow = g.connect()
        latencies = []
        acked_during = []
        for k in range(15):
            before_acked = acked[0]
            t0 = time.monotonic()
            slow.send_line(json_line(slow=k))
            assert slow.answer(timeout=10) == "ok 1", f"slow reading {k}"
            latencies.append(time.monotonic() - t0)
            acked_during.append(acked[0] - before_acked)
            time.sleep(0.1)  # a slow producer: one reading now and then
        flood_acked = acked[0]
    finally:
        stop.set()
        flooder.sock.shutdown(socket.SHUT_RDWR)
        flooder.close()
    print(f"\nflood: {flood_bytes[0] >> 20} MiB written, {flood_acked} readings acked; "
          f"slow client round trips: median {statistics.median(latencies) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms")
    assert max(latencies) < 2.0, latencies
    assert statistics.median(latencies) < 0.5, latencies
    # The flood went on meanwhile: the slow client was not served by pausing it.
    assert sum(1 for n in acked_during if n > 0) >= 10, acked_during


def test_client_that_never_reads_its_errors_does_not_block_others(gate):
    g = gate(format="json")
    deaf = g.connect()
    deaf.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    junk = b"junk\n" * 40000  # about 40000 error lines: far more than any buffer
    done = threading.Event()

    def write_junk():
        try:
            deaf.sock.sendall(junk)
        except OSError:
            pass
        done.set()

    threading.Thread(target=write_junk, daemon=True).start()
    # Wait until the deaf client's answers back up (or all its junk was taken).
    wait_until(lambda: done.is_set() or inq(deaf.sock) > 8192, 30,
               "the deaf client's answers to back up")
    other = g.connect()
    for i in range(20):
        other.send_line(json_line(i=i))
    got = g.readings(20, timeout=15)
    assert [r["fields"]["i"] for r in got] == list(range(20))
    assert other.pending() == b""
    deaf.sock.shutdown(socket.SHUT_RDWR)
    deaf.close()
    third = g.connect()
    third.send_line(json_line(i=99))
    assert g.readings(21)[20]["fields"] == {"i": 99}
    assert g.proc.poll() is None


def inq(sock):
    """Bytes waiting in sock's receive queue (FIONREAD)."""
    buf = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.FIONREAD, buf)
    return buf[0]


def test_max_clients(gate):
    g = gate(format="json", max_clients=2)
    a, b = g.connect(), g.connect()
    a.send_line('{"c": 1}')
    b.send_line('{"c": 2}')
    g.readings(2)
    # One more is answered and closed.
    extra = g.connect()
    assert extra.wait_eof() == b"error too many clients\n"
    # The two served ones still are.
    a.send_line('{"c": 3}')
    assert g.readings(3)[2]["fields"] == {"c": 3}
    # A place that frees up is taken again (after the input has seen the close).
    a.close()

    def served():
        c = g.connect()
        c.send_line('{"c": 4}')
        try:
            g.readings(4, timeout=1)
            return c
        except AssertionError:
            assert c.wait_eof() == b"error too many clients\n"
            return None
    wait_until(served, 10, "a freed place to be served")
    assert [r["fields"]["c"] for r in g.printed()] == [1, 2, 3, 4]


# --------------------------------------------------------------------------------------
# The socket file


@pytest.mark.parametrize("socket_mode,expected", [(None, 0o660), ("0600", 0o600),
                                                  ("0666", 0o666), ("0640", 0o640)])
def test_socket_mode(gate, socket_mode, expected):
    g = gate(format="json", socket_mode=socket_mode)
    g.connect().close()
    st = os.lstat(g.path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == expected, oct(st.st_mode)
    assert st.st_uid == os.geteuid()


def some_group():
    for name in ("dialout", "nogroup", "daemon", "users"):
        try:
            return grp.getgrnam(name)
        except KeyError:
            pass
    pytest.skip("no group to test with")


@pytest.mark.parametrize("by", ["name", "number"])
def test_socket_group(gate, by):
    group = some_group()
    g = gate(format="json", group=group.gr_name if by == "name" else str(group.gr_gid))
    g.connect().close()
    st = os.lstat(g.path)
    assert st.st_gid == group.gr_gid
    assert stat.S_IMODE(st.st_mode) == 0o660


def test_default_group_is_the_daemons(gate):
    g = gate(format="json")
    g.connect().close()
    assert os.lstat(g.path).st_gid == os.getegid()


def test_socket_file_only_thing_created_and_removed_on_stop(gate, sockdir):
    g = gate(format="json")
    c = g.connect()
    c.send_line('{"v": 1}')
    g.readings(1)
    # Bound under a temporary name, then renamed: nothing else stays behind.
    assert sorted(os.listdir(sockdir)) == ["in.sock"]
    c.close()
    assert g.stop() == 0, g.log_text()
    assert os.listdir(sockdir) == []


def make_stale_socket(path, kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_UNIX, kind)
    s.bind(str(path))
    s.close()  # the file stays, nobody listens: what a killed daemon leaves
    return os.lstat(path)


@pytest.mark.parametrize("mode", ["stream", "datagram"])
def test_stale_socket_is_replaced(gate, sockdir, mode):
    path = sockdir / "in.sock"
    old = make_stale_socket(path, socket.SOCK_STREAM if mode == "stream" else socket.SOCK_DGRAM)
    g = gate(format="json", mode=mode)

    def replaced():
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        return st.st_ino != old.st_ino and stat.S_ISSOCK(st.st_mode)
    wait_until(replaced, 10, "the stale socket to be replaced")
    if mode == "stream":
        g.connect().send_line('{"v": 1}')
    else:
        DatagramClient(path, sockdir / "c.sock").send('{"v": 1}')
    assert g.readings(1)[0]["fields"] == {"v": 1}
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o660


def snapshot(path):
    """What must not change about something the input has to leave alone."""
    st = os.lstat(path)
    content = None
    if stat.S_ISREG(st.st_mode):
        content = Path(path).read_bytes()
    elif stat.S_ISLNK(st.st_mode):
        content = os.readlink(path)
    elif stat.S_ISDIR(st.st_mode):
        content = sorted(os.listdir(path))
    return (st.st_ino, st.st_mode, st.st_mtime_ns, st.st_size, content)


def refused(g, path, timeout=5):
    """The input refused path: an error line naming it (the daemon may go on, the
    input being restarted with backoff, or exit non-zero). Returns the line."""
    line = g.wait_log(lambda l: l.startswith("error:") and str(path) in l, timeout=timeout)
    return line


@pytest.mark.parametrize("kind", ["file", "directory", "symlink-to-file",
                                  "dangling-symlink", "symlink-to-stale-socket", "fifo"])
def test_path_that_is_not_a_socket_is_refused_and_left_alone(gate, sockdir, kind):
    path = sockdir / "in.sock"
    other = sockdir / "other"
    if kind == "file":
        path.write_bytes(b"precious\n")
    elif kind == "directory":
        path.mkdir()
        (path / "inside").write_text("x")
    elif kind == "symlink-to-file":
        other.write_text("target\n")
        path.symlink_to(other)
    elif kind == "dangling-symlink":
        path.symlink_to(sockdir / "nowhere")
    elif kind == "symlink-to-stale-socket":
        make_stale_socket(other)
        path.symlink_to(other)
    elif kind == "fifo":
        os.mkfifo(path)
    before = snapshot(path)
    before_other = snapshot(other) if os.path.lexists(other) else None
    g = gate(format="json", restart_backoff_min="50ms", restart_backoff_max="200ms")
    refused(g, path)
    # Let a few restarts of the input try again: each must leave it alone too.
    time.sleep(0.6)
    assert snapshot(path) == before
    if before_other:
        assert snapshot(other) == before_other
    assert sorted(os.listdir(sockdir)) == sorted(["in.sock"] + (["other"] if before_other
                                                                 else [])), \
        "a temporary socket was left behind"
    if g.proc.poll() is not None:
        assert g.proc.returncode != 0
        return
    # Once the obstacle is gone, the restarted input comes up.
    if kind == "directory":
        (path / "inside").unlink()
        path.rmdir()
    else:
        path.unlink()
    g.connect().send_line('{"v": 1}')
    assert g.readings(1)[0]["fields"] == {"v": 1}


@pytest.mark.parametrize("mode", ["stream", "datagram"])
@pytest.mark.parametrize("owner", ["stream", "datagram"])
def test_socket_in_use_is_refused(gate, sockdir, mode, owner):
    # Whatever kind of socket another process listens on, it is not stale.
    path = sockdir / "in.sock"
    kind = socket.SOCK_STREAM if owner == "stream" else socket.SOCK_DGRAM
    owner = socket.socket(socket.AF_UNIX, kind)
    owner.bind(str(path))
    if kind == socket.SOCK_STREAM:
        owner.listen(8)
    before = snapshot(path)
    g = gate(format="json", mode=mode, restart_backoff_min="50ms",
             restart_backoff_max="200ms")
    refused(g, path)
    time.sleep(0.6)
    assert snapshot(path) == before
    # The other process still owns its socket. (Its backlog also holds the input's
    # probing connections, already closed.)
    if kind == socket.SOCK_STREAM:
        c = connect_stream(path, timeout=2)
        c.sendall(b"hello")
        c.shutdown(socket.SHUT_WR)
        owner.settimeout(5)
        for _ in range(100):
            conn, _ = owner.accept()
            got = conn.recv(5)
            conn.close()
            if got:
                break
        assert got == b"hello"
        c.close()
    else:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        c.sendto(b"hello", str(path))
        owner.settimeout(5)
        assert owner.recv(5) == b"hello"
        c.close()
    owner.close()


def test_busy_socket_in_use_is_refused_without_hanging(gate, sockdir):
    # A live server whose backlog is full (busy, or hung) is in use too; probing it
    # must neither block the input for good nor take it for stale.
    path = sockdir / "in.sock"
    owner = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    owner.bind(str(path))
    owner.listen(0)
    waiting = []
    while True:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect(str(path))
        except BlockingIOError:
            c.close()
            break
        waiting.append(c)
        assert len(waiting) < 100
    before = snapshot(path)
    g = gate(format="json", restart_backoff_min="50ms", restart_backoff_max="200ms",
             daemon_settings=dict(stop_timeout="2s"))
    try:
        refused(g, path, timeout=5)
        assert snapshot(path) == before
    finally:
        rc = g.stop()
    assert rc == 0, "the input did not stop:\n" + g.log_text()
    for c in waiting:
        c.close()
    owner.close()


def test_missing_directory_is_an_error_naming_the_path(gate, sockdir):
    path = sockdir / "nodir" / "in.sock"
    g = gate(format="json", path=path)
    refused(g, path)
    assert not (sockdir / "nodir").exists()


def test_path_too_long_for_a_socket_is_refused(gate, sockdir, write_config):
    # sun_path holds 107 bytes and a NUL: a longer path must not be cut short into
    # another file's name.
    path = sockdir / ("p" * (120 - len(str(sockdir))))
    assert len(str(path)) >= 110
    conf = write_config(config_text([unixsock_input(path)], sockdir / "state"))
    r = run(["-t", "-c", str(conf), "-P", PLUGIN_DIR])
    if r.returncode == 0:
        g = gate(format="json", path=path)
        refused(g, path)
    else:
        assert r.returncode == 78 and "path" in r.stderr, r.stderr
    assert [p for p in os.listdir(sockdir) if p != "state"] == []


# --------------------------------------------------------------------------------------
# Configuration


@pytest.mark.parametrize("options,good", [
    (dict(max_message=255), False),
    (dict(max_message=256), True),
    (dict(max_message="16M"), True),
    (dict(max_message=16 * 1024 * 1024 + 1), False),
    (dict(max_clients=0), False),
    (dict(max_clients=1), True),
    (dict(max_clients=4096), True),
    (dict(max_clients=4097), False),
    (dict(mode="seqpacket"), False),
    (dict(format="csv"), False),
    (dict(precision="m"), False),
    (dict(path="relative/in.sock"), False),
    (dict(socket_mode="abc"), False),
    (dict(socket_mode="0999"), False),
    (dict(socket_mode="0640"), True),
])
def test_options_are_checked(write_config, sockdir, options, good):
    options = dict(options)
    path = options.pop("path", sockdir / "in.sock")
    key = next(iter(options), "path")
    conf = write_config(config_text([unixsock_input(path, **options)], sockdir / "state"))
    r = run(["-t", "-c", str(conf), "-P", PLUGIN_DIR])
    if good:
        assert r.returncode == 0, r.stderr
    else:
        assert r.returncode == 78, r.stderr
        assert key in r.stderr, r.stderr


def test_help_plugin_lists_every_option():
    r = run(["--help-plugin", "unixsock", "-P", PLUGIN_DIR])
    assert r.returncode == 0, r.stderr
    for key in ("path", "mode", "format", "ack", "socket_mode", "group", "max_message",
                "max_clients", "precision"):
        assert key in r.stdout, key


# --------------------------------------------------------------------------------------
# A full queue (a private tmpfs whose room the test controls with a ballast file)


PAD = "p" * 200


def test_block_stops_reading_and_loses_nothing(gate, small_fs):
    g = gate(test=False, state_dir=small_fs / "state", format="json",
             queue=dict(FULL_QUEUE, when_full="block"))
    producer = g.connect()
    producer.send_line(json_line(id=0, pad=PAD))
    wait_until(lambda: len(g.dump()) == 1, 10, "the first reading")
    # Room for the open segment and about two more: some 3 MiB of readings.
    ballast = leave_free(small_fs, 2560 << 10)

    # Write readings until the writes block: the input stopped reading.
    producer.sock.setblocking(False)
    sent = 1
    pending = b""
    last_progress = time.monotonic()
    while time.monotonic() - last_progress < 3.0:
        if not pending:
            pending = json_line(id=sent, pad=PAD).encode() + b"\n"
            sent += 1
        try:
            n = producer.sock.send(pending)
            pending = pending[n:]
            last_progress = time.monotonic()
        except BlockingIOError:
            time.sleep(0.01)
        assert sent < 200000, "the writes never blocked"
    g.wait_log("queue full")
    stalled = len(g.dump())
    assert 5000 < stalled < sent, (stalled, sent)
    # Every client is held back, not only the flooding one.
    other = g.connect()
    other.send_line(json_line(id=-1, pad="other"))
    time.sleep(1.0)  # a negative check: nothing may arrive while the queue is full
    assert len(g.dump()) == stalled
    assert not [l for l in g.log() if "dropped" in l], g.log_text()

    # Room again: everything that waited in the socket buffers arrives.
    ballast.unlink()
    producer.sock.setblocking(True)
    producer.send(pending)
    total = sent + 2000
    for i in range(sent, total):
        producer.send_line(json_line(id=i, pad=PAD))
    wait_until(lambda: len(g.dump()) >= total + 1, 60,
               lambda: f"{total + 1} readings in the queue", interval=0.3)
    assert producer.pending() == b"" and other.pending() == b"", "answers without errors"
    assert g.stop() == 0, g.log_text()
    ids = [r["fields"]["id"] for r in queue_dump(g.state_dir)]
    assert sorted(ids) == [-1] + list(range(total)), "lost or duplicated readings"
    assert [i for i in ids if i >= 0] == list(range(total)), "readings out of order"
    assert not [l for l in g.log() if "dropped" in l or "rejected" in l], g.log_text()


def test_drop_newest_answers_queue_full(gate, small_fs):
    # In ack mode every message is answered: counted in an `ok` or by its own error.
    g = gate(test=False, state_dir=small_fs / "state", format="json", ack=True,
             queue=dict(FULL_QUEUE, when_full="drop_newest"))
    c = g.connect()
    c.send_line(json_line(id=0, pad=PAD))
    assert c.answer() == "ok 1"
    leave_free(small_fs, 2560 << 10)
    total = 20000
    answers = {"ok": 0, "error queue full": 0}

    def read_answers():
        while answers["ok"] + answers["error queue full"] < total - 1:
            line = c.answer(timeout=60)
            if line.startswith("ok "):
                answers["ok"] += int(line[3:])
            else:
                answers[line] = answers.get(line, 0) + 1
                if line != "error queue full":
                    break

    reader = threading.Thread(target=read_answers, daemon=True)
    reader.start()
    c.send(b"".join(json_line(id=i, pad=PAD).encode() + b"\n" for i in range(1, total)))
    reader.join(timeout=90)
    assert not reader.is_alive(), answers
    assert set(answers) == {"ok", "error queue full"}, answers
    assert answers["error queue full"] > 0, "the queue never filled up"
    ids = [r["fields"]["id"] for r in g.dump()]
    assert len(ids) == len(set(ids)) == 1 + answers["ok"], (len(ids), answers)
    assert set(ids) <= set(range(total))
