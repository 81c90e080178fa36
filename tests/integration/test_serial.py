# SPDX-License-Identifier: MIT
"""The `serial` input against its README (plugins/serial/README.md), on socat
pseudo-terminal pairs, with readings read back from `coapgated --test`:

  * every format end to end (kv, csv, regex, json, nmea) with exact values and types,
    and the timestamp of each frame's first byte, also for a frame written in pieces
    with pauses between them;
  * framing: "\\r\\n" with "\\r\\r\\n", a multi-byte terminator, an ETX byte, a NUL
    terminator (terminator_hex), idle-gap framing, max_frame exactly and past it;
  * termios on the pty, checked with `stty -F` while the input holds it; TIOCEXCL
    against an unprivileged opener; RS-485 on a driver without it;
  * bad input: garbage, binary bytes and overlong lines between good lines (the good
    ones all arrive, in order), the first bad frame logged with its hex preview and a
    flood summed up once per log_interval; NMEA with good and bad checksums;
  * a device that talks before it is opened: no cut frame becomes a reading;
  * a burst of 10,000 lines, none lost and in order, once as fast as the pty takes
    them and once paced like a 115200 baud line, with rising first-byte stamps;
  * configuration errors at FILE:LINE, and `coapgated -t` with the device absent.

Unplugging and re-plugging are in test_serial_replug.py."""

import functools
import os
import subprocess
import sys
import threading
import time

import pytest

from conftest import PLUGIN_DIR, SOURCE_DIR, run
from ptypair import line  # noqa: F401  (fixture)
from serialline import serial_gate  # noqa: F401  (fixture)
from serialline import (INSTANCE, TOPIC, Peer, config_text, now_ms, plugin_built, preview,
                        serial_input, typed)

pytestmark = pytest.mark.skipif(not plugin_built(), reason="serial.so is not built")


def nmea(body):
    """"$" body "*" checksum, as a receiver sends it, with CR LF."""
    checksum = functools.reduce(lambda a, c: a ^ ord(c), body, 0)
    return f"${body}*{checksum:02X}\r\n"


def start(serial_gate, line, **options):
    """A gate with one serial input on line, in step and ready for bytes."""
    g = serial_gate(device=line.device, **options)
    g.wait_reading_ready(line.device)
    return g, Peer(line)


def check_reading(got, fields, topic=TOPIC):
    assert got["input"] == INSTANCE, got
    assert got["topic"] == topic, got
    assert typed(got["fields"]) == typed(fields), got


# --------------------------------------------------------------------------------------
# Formats


def test_kv_end_to_end_with_first_byte_timestamps(serial_gate, line):
    g, peer = start(serial_gate, line, format="kv", baud=115200)
    before = now_ms()
    peer.write_line("temperature=21.5 humidity=40 door=true state=open")
    got = g.readings(1)[0]
    after = now_ms()
    check_reading(got, {"temperature": 21.5, "humidity": 40, "door": True, "state": "open"})
    assert before - 1 <= got["ts"] <= after + 1, (before, got, after)

    # A frame in three pieces, 1.5 s apart: one reading, stamped with the time of its
    # first byte, read before the second piece was even written.
    before = now_ms()
    peer.write("a=1 ")
    time.sleep(1.5)
    second = now_ms()
    peer.write("b=2")
    time.sleep(1.5)
    peer.write(" c=3\n")
    got = g.readings(2)[1]
    check_reading(got, {"a": 1, "b": 2, "c": 3})
    assert before - 1 <= got["ts"] <= second, (before, got, second)


def test_kv_separators_and_types(serial_gate, line):
    g, peer = start(serial_gate, line, format="kv", pair_separators="|", key_separators=":",
                    fields=[("t", "f64"), ("flag", "bool"), ("secret", "skip")])
    peer.write_line('t:21|flag:on|secret:x|name:"a b"|n:7')
    check_reading(g.readings(1)[0], {"t": 21.0, "flag": True, "name": "a b", "n": 7})


def test_csv_end_to_end(serial_gate, line):
    g, peer = start(serial_gate, line, format="csv", delimiter=";",
                    columns=[("t", "f64"), (None, "skip"), ("h", "i64"), ("ok", "bool"),
                             ("s", "string")])
    # The skipped column holds a Latin-1 degree sign, which no field could.
    peer.write_line(b'21.5;\xb0C;40;true;"idle; waiting"', end=b"\r\n")
    peer.write_line("-3;x;;0;", end=b"\r\n")
    got = g.readings(2)
    check_reading(got[0], {"t": 21.5, "h": 40, "ok": True, "s": "idle; waiting"})
    # Empty values leave their fields out.
    check_reading(got[1], {"t": -3.0, "ok": False})


def test_regex_end_to_end(serial_gate, line):
    g, peer = start(serial_gate, line, format="regex", terminator="\r\n",
                    pattern=r"^ST,GS,(?<weight>[-+][0-9.]+) *(?<unit>[a-z]+)$",
                    fields=[("unit", "string")])
    # A scale's print-out: "ST,GS,+0001.23 kg".
    peer.write_line("ST,GS,+0001.23 kg", end=b"\r\n")
    peer.write_line("US,GS,+0001.99 kg", end=b"\r\n")  # unstable: no match
    peer.write_line("ST,GS,-0000.50  g", end=b"\r\n")
    got = g.readings(2)
    check_reading(got[0], {"weight": 1.23, "unit": "kg"})
    check_reading(got[1], {"weight": -0.5, "unit": "g"})
    m = g.wait_bad_frames(1)
    assert len(m) == 1 and "does not match" in m[0]["why"], g.log_text()


def test_json_end_to_end(serial_gate, line):
    g, peer = start(serial_gate, line, format="json")
    peer.write_line('{"t": 21.5, "n": 3, "ok": true, "s": "x"}')
    peer.write_line('{"ts": 1732480000123, "topic": "other/t", "v": 1}')
    got = g.readings(2)
    check_reading(got[0], {"t": 21.5, "n": 3, "ok": True, "s": "x"})
    check_reading(got[1], {"v": 1}, topic="other/t")
    assert got[1]["ts"] == 1732480000123


GGA = "GPGGA,123519.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"
RMC = "GNRMC,123519.00,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W,A"


def test_nmea_good_and_bad_checksums(serial_gate, line):
    g, peer = start(serial_gate, line, format="nmea", baud=4800)
    good_gga, good_rmc = nmea(GGA), nmea(RMC)
    bad_gga = good_gga.replace("545.4", "545.5")  # one flipped bit: the checksum fails
    peer.write(good_gga + nmea("GPGSV,3,1,11,03,03,111,00,04,15,270,00") + bad_gga +
               nmea("GPGGA,,,,,,0,00,99.99,,,,,,") + good_rmc)
    got = g.readings(3)
    check_reading(got[0], {"sentence": "GPGGA", "latitude": 48.1173,
                           "longitude": 11.51667, "altitude": 545.4,
                           "geoid_separation": 46.9, "hdop": 0.9, "fix_quality": 1,
                           "satellites": 8})
    check_reading(got[1], {"sentence": "GPGGA", "fix_quality": 0, "satellites": 0})
    check_reading(got[2], {"sentence": "GNRMC", "valid": True, "latitude": 48.1173,
                           "longitude": 11.51667, "speed_knots": 22.4,
                           "course": 84.4,
                           "gps_time_ms": 764426119000, "mode": "A"})
    m = g.wait_bad_frames(1)
    assert len(m) == 1, g.log_text()
    assert "checksum" in m[0]["why"] and m[0]["count"] == "1", m[0].group(0)
    assert m[0]["preview"] == preview(bad_gga.encode()), m[0].group(0)
    # The frame is the sentence and its CR: the terminator, LF, is not part of it.
    assert m[0]["size"] == f"{len(bad_gga) - 1} bytes"
    g.stop()
    # The GSV sentence is counted as ignored, not as bad.
    assert g.count_log("4 frames: 3 readings, 1 bad, 1 ignored") == 0
    assert g.count_log("5 frames: 3 readings, 1 bad, 1 ignored") == 1, g.log_text()


# --------------------------------------------------------------------------------------
# Framing


def test_crlf_terminator_with_stray_cr(serial_gate, line):
    g, peer = start(serial_gate, line, format="regex", terminator="\r\n",
                    pattern=r"^(?<a>[0-9]+)$")
    peer.write(b"1\r\r\n2\r\n\n3\r\n")
    got = g.readings(3)
    # "1\r" is the frame before "\r\n", "\n3" the one after a stray LF; CR and LF at
    # the ends of a frame are removed before parsing, so the pattern sees neither.
    assert [r["fields"] for r in got] == [{"a": 1.0}, {"a": 2.0}, {"a": 3.0}]
    g.stop()
    assert not g.bad_frames(), g.log_text()


@pytest.mark.parametrize("terminator,options", [
    (b"<END>", dict(terminator="<END>")),
    (b"\x03", dict(terminator=b"\x03")),
    (b"\x00", dict(terminator_hex="00")),
    (b"\r\n\x00\xff", dict(terminator_hex="0d0A00ff")),
], ids=["text", "etx", "nul", "hex"])
def test_any_terminator(serial_gate, line, terminator, options):
    g, peer = start(serial_gate, line, format="kv", **options)
    peer.write(b"a=1" + terminator + b"b=2" + terminator[:1])
    # A terminator split across two writes.
    time.sleep(0.2)
    peer.write(terminator[1:] + b"c=3" + terminator)
    got = g.readings(3)
    assert [r["fields"] for r in got] == [{"a": 1}, {"b": 2}, {"c": 3}]


def test_idle_gap_framing(serial_gate, line):
    """Frames without terminators. Each write waits for the reading of the one before
    it, which the input prints only once the gap has passed; the pauses inside a frame
    are 50 ms against a gap of 1 s, and the one wait for a gap without a reading is
    3 s, so that a loaded machine has room."""
    g, peer = start(serial_gate, line, format="kv", framing="idle", idle_gap="1s",
                    max_frame=64)
    t0 = time.monotonic()
    peer.write("a=1 b=2")
    check_reading(g.readings(1)[0], {"a": 1, "b": 2})
    assert time.monotonic() - t0 >= 0.9
    # One frame in pieces, lines included: a frame is all the bytes between gaps.
    for piece in ("c=3", " d=", "4", "\r\ne=5"):
        peer.write(piece)
        time.sleep(0.05)
    check_reading(g.readings(2)[1], {"c": 3, "d": 4, "e": 5})
    # 64 bytes are a frame; 65 are too long and dropped up to the next gap.
    frame64 = "x=" + "y" * 62
    peer.write(frame64)
    check_reading(g.readings(3)[2], {"x": "y" * 62})
    peer.write(frame64 + "z")
    g.wait_log("longer than max_frame, discarded up to the next gap")
    peer.write("still the same frame")
    time.sleep(3)
    peer.write("f=6")
    check_reading(g.readings(4)[3], {"f": 6})
    assert len(g.printed()) == 4 and len(g.bad_frames()) == 1, g.log_text()


def test_max_frame_exactly_and_overlong(serial_gate, line):
    g, peer = start(serial_gate, line, format="kv", max_frame=64, terminator="\r\n")
    exact = "x=" + "y" * 62
    peer.write_line(exact, end=b"\r\n")
    peer.write_line(exact + "z", end=b"\r\n")
    peer.write_line("k=" + "v" * 100000, end=b"\r\n")
    peer.write_line("after=1", end=b"\r\n")
    got = g.readings(2)
    check_reading(got[0], {"x": "y" * 62})
    check_reading(got[1], {"after": 1})
    m = g.wait_bad_frames(1)
    assert len(m) == 1, g.log_text()
    assert m[0]["why"] == "longer than max_frame, discarded up to the next terminator"
    assert m[0]["size"] == "more than 64 bytes", m[0].group(0)
    assert m[0]["preview"].endswith("|x=yyyyyyyyyyyyyyyyyyyyyy|..."), m[0].group(0)


# --------------------------------------------------------------------------------------
# Bad input


def test_garbage_and_binary_between_good_lines(serial_gate, line):
    g, peer = start(serial_gate, line, format="kv", max_frame=256,
                    daemon_settings={"log_rate_limit_interval": "0"})
    junk = [
        b"garbage without pairs",
        bytes(range(1, 10)) + bytes(range(14, 256)),  # every byte but NUL, LF, CR...
        b"a=1\x00b=2",                                 # a NUL: a parity error's mark
        b"\xff\xfe\xfd=1",
        b"s=\xc3\x28",                                 # invalid UTF-8 in a string
        os.urandom(200).replace(b"\n", b""),
    ]
    for i, j in enumerate(junk):
        peer.write_line(f"n={i}")
        peer.write_line(j)
    peer.write_line("n=last")
    got = g.readings(len(junk) + 1)
    assert [r["fields"]["n"] for r in got] == list(range(len(junk))) + ["last"]
    g.stop()
    assert g.count_log(f"{len(junk) * 2 + 1} frames: {len(junk) + 1} readings") == 1, \
        g.log_text()
    m = g.bad_frames()
    assert m and m[0]["why"].startswith("invalid key=value pairs at byte 0"), g.log_text()
    assert m[0]["preview"] == ("67 61 72 62 61 67 65 20 77 69 74 68 6f 75 74 20 70 61 69 72 "
                               "73 |garbage without pairs|"), m[0].group(0)
    assert m[0]["preview"] == preview(junk[0])
    # Within log_interval the rest is summed up once, at the latest when the port
    # closes; each log line is printable whatever the frame held.
    s = g.summaries()
    assert len(m) == 1 and len(s) == 1, g.log_text()
    assert int(s[0]["held"]) == len(junk) - 1 and int(s[0]["count"]) == len(junk)
    for text in g.log():
        assert all(0x20 <= ord(c) < 0x7F for c in text), repr(text)


def test_bad_frame_flood_is_summed_up(serial_gate, line):
    g, peer = start(serial_gate, line, format="nmea", log_interval="2s")
    t0 = time.monotonic()
    peer.write(("$GPGGA,bad*00\r\n" * 500).encode())
    peer.write(nmea(GGA))
    assert g.readings(1)[0]["fields"]["sentence"] == "GPGGA"
    first = g.wait_bad_frames(1)
    assert len(first) == 1 and first[0]["count"] == "1", g.log_text()
    summary = g.wait_log(lambda text: "more bad frames within 2 s" in text, timeout=15)
    assert time.monotonic() - t0 >= 1.9
    assert "499 more bad frames within 2 s (500 bad so far)" in summary, summary
    # No more lines than these two: the daemon's limit never had to step in.
    assert len(g.bad_frames()) == 1 and len(g.summaries()) == 1
    assert g.count_log("suppressed") == 0


def test_a_frame_cut_by_opening_is_no_reading(serial_gate, line):
    """The input opens the port in the middle of "temperature=21.5": what arrives up
    to the first terminator, "rature=21.5", must not become {"rature": 21.5}. (A line
    that stays quiet for idle_gap after opening is in step at once: the gap is long
    here, so that the test decides when the cut frame arrives.)"""
    g = serial_gate(device=line.device, format="kv", idle_gap="30s",
                    daemon_settings={"log_level": "debug"})
    g.wait_log(f'opened "{line.device}"')
    peer = Peer(line)
    peer.write("rature=21.5\ntemperature=22.5 count=4\n")
    g.wait_reading_ready(line.device)
    assert g.readings(1)[0]["fields"] == {"temperature": 22.5, "count": 4}
    g.wait_log("discarded 11 bytes of a frame cut short by opening or closing")
    g.stop()
    assert len(g.printed()) == 1 and not g.bad_frames(), g.log_text()


def test_device_talking_before_it_is_opened(serial_gate, line):
    """A device that prints all the time, in pieces that do not follow its lines: the
    input opens somewhere in the stream. Every reading must be a whole line."""
    peer = Peer(line)
    stop = threading.Event()

    def talk():
        n = 0
        pending = b""
        while not stop.is_set():
            while len(pending) < 13:
                pending += f"temperature_{n % 10}=1{n}.5 count={n}\n".encode()
                n += 1
            peer.write(pending[:13])
            pending = pending[13:]
            time.sleep(0.001)
    talker = threading.Thread(target=talk, daemon=True)
    talker.start()
    try:
        time.sleep(0.3)
        g = serial_gate(device=line.device, format="kv")
        got = g.readings(200, timeout=30)
    finally:
        stop.set()
        talker.join(timeout=10)
    counts = [r["fields"]["count"] for r in got]
    assert counts == list(range(counts[0], counts[0] + len(counts))), counts
    for r in got:
        n = r["fields"]["count"]
        assert r["fields"] == {f"temperature_{n % 10}": float(f"1{n}.5"), "count": n}, r
    g.stop()
    assert not g.bad_frames(), g.log_text()


def test_burst_of_10000_lines(serial_gate, line):
    """10,000 lines written as fast as the pty takes them (a 115200 baud line carries
    11,520 bytes/s; this is faster): every one arrives, once, in order."""
    g, peer = start(serial_gate, line, format="kv", baud=115200)
    n = 10000
    data = "".join(f"seq={i} v={i * 0.25} name=line{i}\n" for i in range(n)).encode()
    t0 = time.monotonic()
    peer.write(data)
    got = g.readings(n, timeout=120)
    elapsed = time.monotonic() - t0
    assert [r["fields"]["seq"] for r in got] == list(range(n))
    for r in got[::997]:
        i = r["fields"]["seq"]
        assert r["fields"] == {"seq": i, "v": i * 0.25, "name": f"line{i}"}, r
    print(f"{n} lines, {len(data)} bytes in {elapsed:.2f} s "
          f"({len(data) / elapsed:.0f} bytes/s, 115200 baud is 11520)")
    g.stop()
    assert not g.bad_frames(), g.log_text()
    assert g.count_log(f"after {n} frames: {n} readings, 0 bad") == 1, g.log_text()


def test_10000_lines_paced_at_115200_baud(serial_gate, line):
    """10,000 short lines at the pace of a 115200 baud line (11,520 bytes/s, written in
    10 ms slices as a UART delivers them): every one arrives, once, in order, and each
    is stamped with its own arrival: the stamps rise with the writes and span the
    stream's duration."""
    g, peer = start(serial_gate, line, format="kv", baud=115200)
    n = 10000
    data = "".join(f"n={i}\n" for i in range(n)).encode()
    per_slice = 115200 // 10 // 100  # bytes in 10 ms
    t0 = time.monotonic()
    start_ms = now_ms()
    for k, offset in enumerate(range(0, len(data), per_slice)):
        peer.write(data[offset:offset + per_slice])
        pause = t0 + (k + 1) * 0.01 - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    end_ms = now_ms()
    got = g.readings(n, timeout=60)
    assert [r["fields"]["n"] for r in got] == list(range(n))
    stamps = [r["ts"] for r in got]
    assert stamps == sorted(stamps)
    # The writes took len(data) / 11520 s (6 s); the stamps follow them, not the reads
    # of a backlog after the fact.
    assert start_ms - 1 <= stamps[0] <= start_ms + 1000, (start_ms, stamps[0])
    assert end_ms - 1000 <= stamps[-1] <= end_ms + 1, (end_ms, stamps[-1])
    assert stamps[-1] - stamps[0] >= 0.8 * len(data) / 11520 * 1000, (stamps[0], stamps[-1])
    g.stop()
    assert not g.bad_frames(), g.log_text()


# --------------------------------------------------------------------------------------
# The port


def stty(device):
    r = subprocess.run(["stty", "-F", str(device), "-a"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


@pytest.mark.parametrize("options,expect", [
    (dict(baud=57600, stop_bits=2, flow_control="rtscts", parity="odd", data_bits=7),
     ["57600", "cstopb", "crtscts", "parodd", "-cmspar", "inpck", "-ixon", "-ixoff"]),
    (dict(baud=50, flow_control="xonxoff", parity="mark"),
     ["50", "-cstopb", "-crtscts", "parodd", "cmspar", "inpck", "ixon", "ixoff"]),
    (dict(baud=4000000, parity="space"),
     ["4000000", "-parodd", "cmspar", "inpck", "-ixon"]),
    (dict(baud=9600),
     ["9600", "-cstopb", "-crtscts", "-parenb", "cs8", "-inpck", "-ixon", "-ixoff"]),
], ids=["57600-7O2-rtscts", "50-mark-xonxoff", "4000000-space", "9600-8N1"])
def test_termios_settings_on_the_pty(serial_gate, line, options, expect):
    g, peer = start(serial_gate, line, format="kv", **options)
    words = stty(line.device)
    assert words[words.index("speed") + 1] == expect[0], words
    for flag in expect[1:]:
        assert flag in words, (flag, words)
    # Raw: no echo, no line editing, no signals, no CR/LF translation.
    for flag in ("-icanon", "-echo", "-isig", "-iexten", "-icrnl", "-inlcr", "-igncr",
                 "-opost", "-istrip", "-parmrk", "-ignpar", "clocal", "cread"):
        assert flag in words, (flag, words)
    assert words[words.index("min") + 2].rstrip(";") == "1", words
    # A pty keeps no data bits or parity (Linux clears PARENB and CSIZE): said, and
    # reading goes on.
    if options.get("parity", "none") != "none" or options.get("data_bits", 8) != 8:
        g.wait_log('did not take')
    peer.write_line("ok=1")
    assert g.readings(1)[0]["fields"] == {"ok": 1}


def exclusive_open_as_nobody(device):
    """Open device as nobody; returns the errno name, or "ok"."""
    script = ("import errno, os, sys\n"
              "try:\n"
              "    os.close(os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK))\n"
              "    print('ok')\n"
              "except OSError as e:\n"
              "    print(errno.errorcode[e.errno])\n")
    r = subprocess.run([sys.executable, "-c", script, os.path.realpath(device)],
                       capture_output=True, text=True, timeout=10, user=65534, group=65534,
                       extra_groups=[], cwd="/")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to open the pty as another user")
@pytest.mark.parametrize("exclusive", [True, False])
def test_exclusive_access(serial_gate, line, exclusive):
    os.chmod(os.path.realpath(line.device), 0o666)
    # Root passes TIOCEXCL (CAP_SYS_ADMIN); nobody must not.
    assert exclusive_open_as_nobody(line.device) == "ok"
    g, peer = start(serial_gate, line, format="kv", exclusive=exclusive)
    assert exclusive_open_as_nobody(line.device) == ("EBUSY" if exclusive else "ok")
    g.stop()
    assert exclusive_open_as_nobody(line.device) == "ok"


def test_rs485_without_driver_support_fails_the_run_clearly(serial_gate, line):
    g = serial_gate(device=line.device, format="kv", rs485=True,
                    restart_backoff_min="100ms", restart_backoff_max="200ms")
    error = g.wait_log("has no RS-485 mode (TIOCSRS485)")
    assert f'the driver of "{line.device}"' in error, error
    assert "set rs485 = false" in error
    # The daemon retries, and nothing is read meanwhile.
    g.wait_log("has no RS-485 mode", nth=2)
    Peer(line).write_line("a=1")
    time.sleep(0.5)
    assert g.printed() == [] and g.count_log(f'reading "{line.device}"') == 0


# --------------------------------------------------------------------------------------
# Configuration


def check(write_config, *inputs):
    conf = write_config(config_text(list(inputs), "/nonexistent/state"))
    return conf, run(["-t", "-c", str(conf), "-P", PLUGIN_DIR])


def line_of(conf, text, nth=1):
    """The 1-based line of conf where text appears for the nth time."""
    for i, line_text in enumerate(conf.read_text().splitlines(), 1):
        if text in line_text:
            nth -= 1
            if nth == 0:
                return i
    raise AssertionError(f"{text!r} not in {conf}")


def test_check_config_passes_with_the_device_absent(write_config, tmp_path):
    conf, r = check(write_config, serial_input(tmp_path / "no-such-tty", format="nmea"))
    assert r.returncode == 0, r.stderr


def test_shipped_examples_are_valid(write_config):
    r = run(["-t", "-c", str(SOURCE_DIR / "etc/examples/serial.conf"), "-P", PLUGIN_DIR])
    assert r.returncode == 0 and "(6 inputs)" in r.stdout, r.stderr


def test_every_standard_rate_is_taken(write_config, tmp_path):
    rates = [50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200,
             38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000,
             1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000]
    inputs = [serial_input(tmp_path / "tty", name=f"r{b}", format="kv", baud=b, enabled=False)
              for b in rates]
    conf, r = check(write_config, *inputs)
    assert r.returncode == 0, r.stderr


# Each case: options, then the text that must sit on the line the error names (the
# value's own line, or the instance's for a missing one; (text, n): its nth line), and
# part of the message.
CONF_ERRORS = {
    "baud-nonstandard": (dict(format="kv", baud=12345), "12345", "is not a standard rate"),
    "baud-off-by-one": (dict(format="kv", baud=9601), "9601", "one of 50, 75, 110"),
    "regex-does-not-compile": (dict(format="regex", pattern="(?<a>[0-9]"), "pattern",
                               "does not compile"),
    "regex-no-named-group": (dict(format="regex", pattern="([0-9]+)"), "pattern",
                             "no named group"),
    "regex-other-group-syntax": (dict(format="regex", pattern="(?:x)(?<a>1)"), "pattern",
                                 "(?<name>...)"),
    "regex-field-without-group": (dict(format="regex", pattern="(?<a>1)",
                                       fields=[("b", "i64")]), '"b"', "has no group"),
    "regex-without-pattern": (dict(format="regex"), "{ name", "needs a pattern"),
    "csv-without-columns": (dict(format="csv"), "{ name", "needs columns"),
    "csv-column-name-twice": (dict(format="csv", columns=[("a", "f64"), ("a", "i64")]),
                              ('"a"', 2), "appears twice"),
    "csv-column-bad-name": (dict(format="csv", columns=[("a b", "f64")]), '"a b"',
                            "is not 1 to 64"),
    "csv-column-without-name": (dict(format="csv", columns=[(None, "f64")]), 'type = "f64"',
                                "needs a name"),
    "csv-delimiter-long": (dict(format="csv", columns=[("a", "f64")], delimiter=", "),
                           "delimiter", "one character"),
    "columns-with-kv": (dict(format="kv", columns=[("a", "f64")]), "columns",
                        "only used with format"),
    "pattern-with-nmea": (dict(format="nmea", pattern="(?<a>x)"), "pattern",
                          "only used with format"),
    "terminator-with-idle": (dict(format="kv", framing="idle", terminator="\r\n"),
                             "terminator", "not used with framing"),
    "terminator-empty": (dict(format="kv", terminator=""), "terminator", "1 to 16 bytes"),
    "terminator-17-bytes": (dict(format="kv", terminator="x" * 17), "terminator",
                            "1 to 16 bytes"),
    "terminator-hex-odd": (dict(format="kv", terminator_hex="0d0"), "terminator_hex",
                           "hex"),
    "terminator-hex-not-hex": (dict(format="kv", terminator_hex="zz"), "terminator_hex",
                               "hex"),
    "terminator-both": (dict(format="kv", terminator="\n", terminator_hex="0a"),
                        "terminator_hex", "not both"),
    "kv-separators-overlap": (dict(format="kv", pair_separators=" =", key_separators="="),
                              "pair_separators", "key separator"),
    "device-relative": (dict(format="kv", device="ttyUSB0"), "device", "absolute path"),
}


@pytest.mark.parametrize("options,where,message", CONF_ERRORS.values(),
                         ids=CONF_ERRORS.keys())
def test_configuration_errors(write_config, tmp_path, options, where, message):
    options = dict(options)
    device = options.pop("device", tmp_path / "tty")
    # One option per line, so that the line tells which option is meant.
    text = serial_input(device, **options).replace("; ", ";\n\t")
    conf, r = check(write_config, text)
    assert r.returncode == 78, r.stderr
    where = where if isinstance(where, tuple) else (where, 1)
    at = f"{conf}:{line_of(conf, *where)}: input \"{INSTANCE}\": "
    assert any(l.startswith(f"error: {at}") and message in l for l in r.stderr.splitlines()), \
        f"no error at {at} saying {message!r}:\n{r.stderr}\n{conf.read_text()}"


def test_option_table_errors(write_config, tmp_path):
    for options, message in [
        (dict(format="kv", baud=49), "baud"),
        (dict(format="kv", data_bits=9), "data_bits"),
        (dict(format="kv", stop_bits=3), "stop_bits"),
        (dict(format="kv", parity="weird"), "parity"),
        (dict(format="yaml"), "format"),
        (dict(), "format"),
        (dict(format="kv", idle_gap="0s"), "idle_gap"),
        (dict(format="kv", max_frame=8), "max_frame"),
    ]:
        conf, r = check(write_config, serial_input(tmp_path / "tty", **options))
        assert r.returncode == 78 and message in r.stderr, (options, r.stderr)
