# SPDX-License-Identifier: MIT
"""`coapgatectl send` against the real daemon with a `unixsock` input in ack mode: what
it sends lands in the disk queue with the right types (read with `coapgatectl queue
dump` while the daemon still runs: an exit status of 0 promises the readings are on
disk), --topic, --ts, -s, --json with many lines, bad lines, rejections by the daemon,
arguments refused before connecting, a missing socket, permissions, an input without
ack, and a daemon killed mid-way. Answers a daemon cannot be made to give on demand
(a disk failure, garbage) come from a fake server in this file."""

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import COAPGATED, PLUGIN_DIR

COAPGATECTL = os.environ.get("COAPGATECTL") or str(
    Path(COAPGATED).resolve().parents[1] / "ctl" / "coapgatectl")

EX_USAGE, EX_DATAERR, EX_UNAVAILABLE, EX_IOERR = 64, 65, 69, 74
EX_TEMPFAIL, EX_PROTOCOL, EX_NOPERM = 75, 76, 77

TOPIC = "site/ingest"


def config(state, sock, ack=True, extra=""):
    return f"""daemon: {{ state_dir = "{state}"; }};
uplink: {{ enabled = false; }};
inputs = (
	{{
		name = "ingest";
		plugin = "unixsock";
		topic = "{TOPIC}";
		path = "{sock}";
		format = "json";
		ack = {"true" if ack else "false"};
		{extra}
	}}
);
"""


class Gateway:
    def __init__(self, d, sock, state):
        self.daemon, self.sock, self.state = d, sock, state

    def dump(self):
        """The readings in the queue; readable while the daemon runs."""
        r = subprocess.run([COAPGATECTL, "queue", "dump", str(self.state / "queue")],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return [json.loads(line) for line in r.stdout.splitlines()]


@pytest.fixture
def sockdir():
    """A short directory for sockets: sun_path holds 108 bytes, tmp_path can be longer."""
    path = Path(tempfile.mkdtemp(prefix="ctl-send-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def gateway(daemon, write_config, tmp_path, sockdir):
    """gateway(ack=True, extra="") -> a running coapgated with one unixsock input. At
    teardown it must stop cleanly (unless the test killed it) and have reported nothing
    from the sanitizers."""
    started = []

    def start(ack=True, extra=""):
        state = tmp_path / "state"
        sock = sockdir / "ingest.sock"
        path = write_config(config(state, sock, ack, extra))
        d = daemon(["-c", str(path), "-P", PLUGIN_DIR])
        d.wait_for(lambda line: "coapgated started" in line)
        deadline = time.monotonic() + 10
        while not (sock.exists() and stat.S_ISSOCK(sock.stat().st_mode)):
            assert time.monotonic() < deadline, "no socket at " + str(sock)
            time.sleep(0.01)
        gw = Gateway(d, sock, state)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        killed = gw.daemon.proc.poll() == -signal.SIGKILL
        rc = gw.daemon.stop()
        log = "\n".join(line for _, line in gw.daemon.stderr)
        assert killed or rc == 0, f"coapgated exited {rc}:\n{log}"
        assert "runtime error" not in log and "Sanitizer" not in log, log


def send(*args, sock=None, stdin=None, env=None, timeout=60, stdin_closed=False, **kwargs):
    socket_args = ["--socket", str(sock)] if sock else []
    if stdin_closed:
        kwargs["preexec_fn"] = lambda: os.close(0)
    return subprocess.run([COAPGATECTL, "send", *socket_args, *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout, env=env, **kwargs)


# ---- what lands in the queue ----

def test_key_value_types_land_in_the_queue(gateway):
    gw = gateway()
    before = int(time.time() * 1000)
    r = send("int=12", "neg=-3", "zero=-0", "float=21.5", "whole=2.0", "exp=1e3",
             "tenth=0.1", "yes=true", "no=false", "text=idle", "zeros=007", "plus=+5",
             "dot=.5", "null=null", "empty=", "utf8=Grüße", "eq=a=b", "-s", "forced=12",
             "--string", "forced_bool=true", "sp=two words", sock=gw.sock)
    after = int(time.time() * 1000)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""
    [reading] = gw.dump()
    assert reading["topic"] == TOPIC
    assert before - 1000 <= reading["ts"] <= after + 1000
    expected = {"int": 12, "neg": -3, "zero": 0, "float": 21.5, "whole": 2.0, "exp": 1000.0,
                "tenth": 0.1, "yes": True, "no": False, "text": "idle", "zeros": "007",
                "plus": "+5", "dot": ".5", "null": "null", "empty": "", "utf8": "Grüße",
                "eq": "a=b", "forced": "12", "forced_bool": "true", "sp": "two words"}
    fields = reading["fields"]
    assert fields == expected
    for key, value in expected.items():
        assert type(fields[key]) is type(value), (key, fields[key])


def test_the_limits_checked_here_are_the_daemons(gateway):
    # What passes the checks before sending, at each limit, the daemon accepts too.
    gw = gateway()
    longest = "é" * 256  # 512 bytes of UTF-8
    name = "n" * 64
    fields = [f"f{i}={i}" for i in range(62)]
    r = send(*fields, f"{name}={longest}", "min=-9223372036854775808",
             "--topic", "t" * 253, sock=gw.sock)
    assert r.returncode == 0, r.stderr
    r = send("max=9223372036854775807", "tiny=1e-400", "huge=1.7976931348623157e308",
             sock=gw.sock)
    assert r.returncode == 0, r.stderr
    first, second = gw.dump()
    assert len(first["fields"]) == 64 and first["topic"] == "t" * 253
    assert first["fields"][name] == longest
    assert first["fields"]["min"] == -2**63
    assert second["fields"] == {"max": 2**63 - 1, "tiny": 0.0,
                                "huge": 1.7976931348623157e308}


def test_topic_ts_and_the_socket_from_the_environment(gateway):
    gw = gateway()
    env = dict(os.environ, COAPGATE_SOCKET=str(gw.sock))
    r = send("--topic", "boiler/1", "--ts", "1732480000123", "t=1", env=env)
    assert r.returncode == 0, r.stderr
    r = send("--ts", "0", "t=2", env=env)  # 0: the time of arrival
    assert r.returncode == 0, r.stderr
    first, second = gw.dump()
    assert (first["topic"], first["ts"], first["fields"]) == ("boiler/1", 1732480000123,
                                                                {"t": 1})
    assert second["topic"] == TOPIC and second["ts"] > 1732480000123


def test_json_many_lines(gateway):
    gw = gateway()
    n = 20000
    lines = []
    for i in range(n):
        lines.append(json.dumps({"n": i, "v": i / 4, "s": f"line {i}"}))
        if i % 1000 == 0:
            lines.append("   ")  # blank lines are skipped, by the daemon and here
    started = time.monotonic()
    r = send("--json", sock=gw.sock, stdin="\n".join(lines))  # the last without "\n"
    took = time.monotonic() - started
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    got = gw.dump()
    assert [x["fields"]["n"] for x in got] == list(range(n))
    assert got[-1]["fields"] == {"n": n - 1, "v": (n - 1) / 4, "s": f"line {n - 1}"}
    print(f"{n} lines in {took:.2f} s")


def test_json_bad_lines_are_named_and_not_sent(gateway):
    gw = gateway()
    lines = ['{"n": 1}', '{"n": 2}', '{"n": 3,}', "", '{"n": 4}', '{"bad name": 5}',
             '{"n": 6, "n": 7}', "not json", '{"n": 8}']
    r = send("--json", sock=gw.sock, stdin="\n".join(lines) + "\n")
    assert r.returncode == EX_DATAERR, r.stderr
    errors = r.stderr.splitlines()
    assert len(errors) == 4, r.stderr
    assert errors[0].startswith("coapgatectl send: line 3: invalid JSON"), errors
    assert errors[1].startswith("coapgatectl send: line 6: ") and "bad name" in errors[1]
    assert errors[2].startswith("coapgatectl send: line 7: ") and "twice" in errors[2]
    assert errors[3].startswith("coapgatectl send: line 8: invalid JSON"), errors
    assert [x["fields"]["n"] for x in gw.dump()] == [1, 2, 4, 8]


def test_rejections_by_the_daemon_do_not_deadlock(gateway):
    # Lines longer than max_message only the daemon refuses, each with an "error"
    # answer: 20,000 of them are more answers than the socket buffers hold, so the
    # command must read answers while it writes.
    gw = gateway(extra='max_message = "256";')
    long_line = json.dumps({"pad": "x" * 300})
    lines = ['{"n": 0}'] + [long_line] * 20000 + ['{"n": 1}']
    r = send("--json", sock=gw.sock, stdin="\n".join(lines) + "\n", timeout=120)
    assert r.returncode == EX_DATAERR, r.stderr[-2000:]
    errors = r.stderr.splitlines()
    assert len(errors) == 20000, r.stderr[-2000:]
    assert errors[0] == (f"coapgatectl send: {gw.sock} rejected a line: message longer "
                         "than 256 bytes"), errors[0]
    assert [x["fields"]["n"] for x in gw.dump()] == [0, 1]


# ---- refused before connecting ----

@pytest.fixture
def listener(sockdir):
    """A socket that listens and never accepts: a connection would be in its backlog."""
    path = sockdir / "listen.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.listen(16)
    s.setblocking(False)
    yield path, s
    s.close()


@pytest.mark.parametrize("args, message", [
    (["bad name=1"], 'the field name "bad name" is not 1 to 64'),
    (["x" * 65 + "=1"], "is not 1 to 64"),
    (["=1"], 'the field name "" is not'),
    (["novalue"], '"novalue" is not KEY=VALUE'),
    (["topic=a"], "use --topic"),
    (["ts=1"], "use --ts"),
    (["a=1", "a=2"], '"a" is given twice'),
    (["a=99999999999999999999"], "outside the 64-bit integer range"),
    (["a=1e999"], "too large for a double"),
    (["a=" + "x" * 513], "longer than 512 bytes"),
    (["--topic", "a//b", "a=1"], 'the topic "a//b" is not'),
    (["--topic", "a b", "a=1"], 'the topic "a b" is not'),
    (["--ts", "-5", "a=1"], '--ts "-5" is not'),
    (["--ts", "soon", "a=1"], '--ts "soon" is not'),
    (["--timeout", "10", "a=1"], '--timeout "10" is not a duration'),
    ([], "nothing to send"),
    (["--json", "a=1"], "--json takes the readings from stdin only"),
    (["--json", "--topic", "x"], "--json takes the readings from stdin only"),
    (["--bogus", "a=1"], "unrecognized option"),
] + [([f"f{i}=1" for i in range(65)], "at most 64 fields")], ids=lambda x: str(x)[:40])
def test_bad_arguments_exit_64_without_connecting(listener, args, message):
    path, s = listener
    r = send(*args, sock=path)
    assert r.returncode == EX_USAGE, (r.returncode, r.stderr)
    assert message in r.stderr
    with pytest.raises(BlockingIOError):
        s.accept()


def test_invalid_utf8_value_is_refused(listener):
    path, _ = listener
    r = subprocess.run([COAPGATECTL, "send", "--socket", str(path), b"a=\xff\xfe"],
                       capture_output=True, timeout=30)
    assert r.returncode == EX_USAGE
    assert b"is not valid UTF-8" in r.stderr


def test_help():
    r = subprocess.run([COAPGATECTL, "send", "--help"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("Usage: coapgatectl send")
    assert "Exit status" in r.stdout
    r = subprocess.run([COAPGATECTL, "--help"], capture_output=True, text=True, timeout=30)
    assert "  send " in r.stdout


# ---- no daemon, no permission, no ack ----

def test_missing_socket_names_the_path(sockdir):
    path = sockdir / "nowhere" / "ingest.sock"
    r = send("a=1", sock=path)
    assert r.returncode == EX_UNAVAILABLE
    assert f"cannot connect to {path}: No such file or directory" in r.stderr


def test_stale_socket_is_unavailable(sockdir):
    path = sockdir / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))  # bound, never listening: what a killed daemon leaves
    try:
        r = send("a=1", sock=path)
    finally:
        s.close()
    assert r.returncode == EX_UNAVAILABLE
    assert f"cannot connect to {path}: Connection refused" in r.stderr


def test_full_backlog_times_out(sockdir):
    path = sockdir / "busy.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(0)  # never accepts: one connection fills the backlog
    waiting = []
    try:
        while True:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.setblocking(False)
            waiting.append(c)
            try:
                c.connect(str(path))
            except BlockingIOError:
                break
            assert len(waiting) < 100, "the backlog never filled"
        started = time.monotonic()
        r = send("--timeout", "300ms", "a=1", sock=path)
        took = time.monotonic() - started
    finally:
        for c in waiting:
            c.close()
        server.close()
    assert r.returncode == EX_TEMPFAIL, r.stderr
    assert f"{path} did not accept the connection in time" in r.stderr
    assert 0.3 <= took < 5, took


def test_permission_denied(listener):
    path, _ = listener
    os.chmod(path, 0o600)
    # As root, connect as nobody: root would pass any permission check.
    drop = (lambda: (os.setgid(65534), os.setuid(65534))) if os.geteuid() == 0 else None
    if drop is None:
        os.chmod(path, 0)
    r = send("a=1", sock=path, preexec_fn=drop)
    assert r.returncode == EX_NOPERM, r.stderr
    assert f"cannot connect to {path}: Permission denied" in r.stderr


def test_input_without_ack(gateway):
    # Without ack the input closes the connection once it has read everything: at
    # once, with no answer, rather than after the timeout.
    gw = gateway(ack=False)
    started = time.monotonic()
    r = send("a=1", sock=gw.sock)
    took = time.monotonic() - started
    assert r.returncode == EX_UNAVAILABLE, r.stderr
    assert f"{gw.sock} closed the connection without acknowledging any reading" in r.stderr
    assert f"the input at {gw.sock} must have ack = true" in r.stderr
    assert took < 5, took


def test_no_answer_times_out(sockdir):
    # A server that reads and never answers nor closes: the timeout ends the wait.
    path = sockdir / "silent.sock"
    server = FakeServer(path, b"", hold=True)
    try:
        started = time.monotonic()
        r = send("--timeout", "500ms", "a=1", sock=path)
        took = time.monotonic() - started
    finally:
        server.close()
    assert r.returncode == EX_TEMPFAIL, r.stderr
    assert f"no acknowledgement from {path} within 500ms" in r.stderr
    assert f"the input at {path} must have ack = true" in r.stderr
    assert 0.5 <= took < 5, took


def test_daemon_killed_mid_way(gateway):
    gw = gateway()
    proc = subprocess.Popen([COAPGATECTL, "send", "--json", "--socket", str(gw.sock)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        for i in range(10):
            proc.stdin.write(json.dumps({"n": i}) + "\n")
        proc.stdin.flush()
        # Connected and acknowledged: the 10 readings are on disk.
        deadline = time.monotonic() + 10
        while len(gw.dump()) < 10:
            assert time.monotonic() < deadline, "the readings did not reach the queue"
            time.sleep(0.02)
        gw.daemon.signal(signal.SIGKILL)
        gw.daemon.wait()
        try:
            proc.stdin.write(json.dumps({"n": 10}) + "\n")
            proc.stdin.close()
        except BrokenPipeError:
            pass  # it already saw the connection close and exited
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    assert rc == EX_UNAVAILABLE, err
    assert f"{gw.sock} closed the connection" in err


# ---- answers from a fake server ----

class FakeServer:
    """Accepts one connection, reads until the client shuts down its side (or, with
    early=True, until the first line), then writes `answers` and closes (with
    hold=True: only once the test calls close())."""

    def __init__(self, path, answers, early=False, hold=False):
        self.answers, self.early, self.hold = answers, early, hold
        self.released = threading.Event()
        self.received = b""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(1)
        self.sock.settimeout(30)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.sock.accept()
        with conn:
            while chunk := conn.recv(65536):
                self.received += chunk
                if self.early and b"\n" in self.received:
                    break
            conn.sendall(self.answers)
            if self.hold:
                self.released.wait(30)

    def close(self):
        self.released.set()
        self.thread.join(timeout=30)
        self.sock.close()


@pytest.mark.parametrize("answers, status, message", [
    (b"ok 1\n", 0, None),
    (b"ok 2\n", EX_PROTOCOL, 'answered "ok 2" with 1 readings unanswered'),
    (b"hello\n", EX_PROTOCOL, "not a unixsock answer"),
    (b"ok 0\n", EX_PROTOCOL, "not a unixsock answer"),
    (b"error queue full\n", EX_DATAERR, "rejected the reading: queue full"),
    (b"error readings not durable: the queue could not write them\n", EX_IOERR,
     "could not make readings durable (readings not durable: the queue could not write "
     "them): 0 of 1 readings acknowledged"),
    (b"error too many clients\n", EX_UNAVAILABLE, "refused the connection: too many clients"),
    (b"", EX_UNAVAILABLE, "closed the connection without acknowledging any reading"),
    (b"error nope\n", EX_DATAERR, "rejected the reading: nope"),
    (b"x" * 5000, EX_PROTOCOL, "an answer longer than"),
], ids=lambda x: str(x)[:40])
def test_answers(sockdir, answers, status, message):
    path = sockdir / "fake.sock"
    server = FakeServer(path, answers)
    try:
        r = send("a=1", sock=path)
    finally:
        server.close()
    assert server.received == b'{"a":1}\n'
    assert r.returncode == status, r.stderr
    if message:
        assert message in r.stderr


def test_json_counts_answers_over_several_lines(sockdir):
    path = sockdir / "fake.sock"
    server = FakeServer(path, b"ok 2\nerror bad\nok 1\n")
    try:
        r = send("--json", sock=path, stdin='{"a":1}\n{"a":2}\r\n\n{"a":3}\n{"a":4}')
    finally:
        server.close()
    assert server.received == b'{"a":1}\n{"a":2}\r\n{"a":3}\n{"a":4}\n'
    assert r.returncode == EX_DATAERR, r.stderr
    assert r.stderr == f"coapgatectl send: {path} rejected a line: bad\n"


def test_json_line_longer_than_any_input_accepts(sockdir):
    path = sockdir / "fake.sock"
    server = FakeServer(path, b"ok 2\n")
    try:
        r = send("--json", sock=path,
                 stdin='{"a":1}\n{"pad":"' + "x" * (16 << 20) + '"}\n{"a":2}\n')
    finally:
        server.close()
    assert server.received == b'{"a":1}\n{"a":2}\n'
    assert r.returncode == EX_DATAERR, r.stderr
    assert r.stderr == "coapgatectl send: line 2: longer than 16777216 bytes, not sent\n"


def test_closed_stdin(listener):
    path, s = listener
    r = send("--json", sock=path, stdin=None, stdin_closed=True)
    assert r.returncode == EX_IOERR, r.stderr
    assert "stdin, which is closed" in r.stderr
    with pytest.raises(BlockingIOError):
        s.accept()


def test_connection_closed_while_stdin_is_open(sockdir):
    path = sockdir / "fake.sock"
    server = FakeServer(path, b"ok 1\n", early=True)
    proc = subprocess.Popen([COAPGATECTL, "send", "--json", "--socket", str(path)],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        proc.stdin.write('{"a":1}\n')
        proc.stdin.flush()
        rc = proc.wait(timeout=30)  # stdin stays open: the close alone ends it
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdin.close()
        server.close()
    err = proc.stderr.read()
    assert rc == EX_UNAVAILABLE, err
    assert "1 of 1 lines answered; the rest of stdin was not sent" in err
