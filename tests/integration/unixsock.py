# SPDX-License-Identifier: MIT
"""Helpers for the tests of the `unixsock` input (plugins/unixsock/README.md, the
contract these tests check):

  * `sockdir`: a short directory under /tmp for socket paths (sun_path holds 108
    bytes, and pytest's tmp_path can be longer than that), removed at teardown;
  * `gate`: starts coapgated with a unixsock input, in `--test` mode (readings are
    printed on stdout) or in normal mode with the uplink disabled (readings stay in
    the disk queue, read back with `coapgatectl queue dump`), through conftest's
    `daemon` fixture, which stops it at teardown;
  * Client / DatagramClient: the two kinds of producers, with line-oriented answers;
  * typed(): field values with their JSON types, so that 3 (i64) never equals 3.0
    (f64) or True (bool) in an assertion;
  * REJECTED: the log line of a rejected message, with the peer's pid and uid.

Every process is started and stopped by its own handle; nothing is signalled by name."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import COAPGATED, PLUGIN_DIR, Daemon, typed  # noqa: F401  (typed: re-exported)
from uplink import conf_group, conf_settings
from uplink import wait_until  # noqa: F401 (the tests import it from here)

COAPGATECTL = os.environ.get("COAPGATECTL") or str(
    Path(COAPGATED).resolve().parents[1] / "ctl" / "coapgatectl")

INSTANCE = "ingest"
TOPIC = "site1/ingest"
SOCKET_NAME = "in.sock"

# Counting what is in the queue only works while nothing acknowledges (deletes) it.
NO_UPLINK = {"enabled": False}

# "<level>: <instance>: rejected a message from pid P uid U (K rejected so far): why"
REJECTED = re.compile(r"^(?P<level>\w+): (?P<instance>[^:]+): rejected a message from "
                      r"pid (?P<pid>\d+) uid (?P<uid>\d+) \((?P<count>\d+) rejected so "
                      r"far\): (?P<reason>.+)$")


# --------------------------------------------------------------------------------------
# Configuration


def unixsock_input(path, name=INSTANCE, topic=TOPIC, **options):
    """One unixsock instance as a libconfig group; options are the plugin's (mode,
    format, ack, socket_mode, group, max_message, max_clients, precision) or the
    common ones (restart_backoff_min, ...). A None value leaves a key out."""
    s = dict(name=name, plugin="unixsock", topic=topic, path=str(path))
    s.update(options)
    return "{ " + conf_settings(s) + " }"


def config_text(inputs, state_dir, queue=None, daemon=None, uplink=None):
    """A whole configuration: logs on stderr at info, no uplink unless told."""
    d = dict(state_dir=str(state_dir), log_target="stderr", log_level="info")
    d.update(daemon or {})
    text = conf_group("daemon", d)
    if queue:
        text += conf_group("queue", queue)
    text += conf_group("uplink", uplink or NO_UPLINK)
    return text + "inputs = (\n  " + ",\n  ".join(inputs) + "\n);\n"


# --------------------------------------------------------------------------------------
# Socket paths


@pytest.fixture
def sockdir():
    """A fresh, short directory for socket paths, removed at teardown."""
    d = tempfile.mkdtemp(prefix="ux-", dir="/tmp")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------------------
# Clients


class Client:
    """A stream client: sends bytes, reads answer lines. connect() retries while the
    socket is not there yet or refuses (the input creates it after "started")."""

    def __init__(self, path, timeout=10):
        self.path = str(path)
        self.buf = b""
        self.sock = connect_stream(path, timeout)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def send_line(self, text):
        self.send((text.encode() if isinstance(text, str) else text) + b"\n")

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        finally:
            self.sock.settimeout(None)
        if not chunk:
            raise EOFError(f"{self.path}: connection closed; unread {self.buf!r}")
        self.buf += chunk

    def answer(self, timeout=10):
        """The next answer line, without its newline (str)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no answer within {timeout} s; got {self.buf!r}")
            try:
                self._fill(left)
            except socket.timeout:
                pass
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def pending(self):
        """Everything the input has written that was not read yet, without waiting."""
        self.sock.setblocking(False)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)
        data, self.buf = self.buf, b""
        return data

    def wait_eof(self, timeout=10):
        """Read until the input closes the connection; returns what came before."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"the connection stayed open; got {self.buf!r}")
            try:
                self._fill(left)
            except EOFError:
                data, self.buf = self.buf, b""
                return data
            except socket.timeout:
                pass
            except ConnectionResetError:
                data, self.buf = self.buf, b""
                return data

    def close(self):
        self.sock.close()


def answer_lines(sock, bufsize=65536):
    """Yield each answer line of a connection, without its newline, until it closes.
    A reader thread's loop; socket errors are the caller's."""
    buf = b""
    while True:
        data = sock.recv(bufsize)
        if not data:
            return
        buf += data
        *lines, buf = buf.split(b"\n")
        yield from lines


def connect_stream(path, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            s.connect(str(path))
            return s
        except (FileNotFoundError, ConnectionRefusedError) as e:
            s.close()
            if time.monotonic() > deadline:
                raise AssertionError(f"cannot connect to {path}: {e}") from None
            time.sleep(0.02)


class DatagramClient:
    """A datagram client bound to its own address, so that anything the input might
    write back would be seen."""

    def __init__(self, path, own_path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        self.sock.bind(str(own_path))

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        deadline = time.monotonic() + 10
        while True:
            try:
                return self.sock.sendto(data, self.path)
            except (FileNotFoundError, ConnectionRefusedError):
                # The input has not bound the socket yet.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def pending(self):
        self.sock.setblocking(False)
        got = []
        try:
            while True:
                got.append(self.sock.recv(1 << 20))
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)
        return got

    def close(self):
        self.sock.close()


# A client run as another user in its own process, so that the pid and uid the input
# logs can be told from the test's. argv: kind, path, how many answer lines to read
# (stream), then one hex-encoded message per argument. It prints the answers, then
# "done", and stays alive (the same pid) until its stdin closes. Its socket timeout
# bounds every wait, so the test's reads of its stdout are bounded too.
PEER_SCRIPT = r"""
import socket, sys
kind, path, n_answers = sys.argv[1], sys.argv[2], int(sys.argv[3])
msgs = [bytes.fromhex(m) for m in sys.argv[4:]]
if kind == "stream":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    for m in msgs:
        s.sendall(m + b"\n")
    f = s.makefile("rb")
    for _ in range(n_answers):
        print(f.readline().decode().rstrip("\n"), flush=True)
else:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    for m in msgs:
        s.sendto(m, path)
print("done", flush=True)
sys.stdin.read()
"""


class Peer:
    """PEER_SCRIPT as uid and gid `user` (nobody); .pid and .uid are what the input
    must log for it."""

    def __init__(self, kind, path, messages, n_answers=0, user=65534):
        args = [sys.executable, "-c", PEER_SCRIPT, kind, str(path), str(n_answers),
                *[(m.encode() if isinstance(m, str) else m).hex() for m in messages]]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, user=user,
                                     group=user, extra_groups=[], cwd="/")
        self.pid = self.proc.pid
        self.uid = user

    def answers(self):
        """The answer lines, up to "done"."""
        lines = []
        for line in self.proc.stdout:
            if line == "done\n":
                return lines
            lines.append(line.rstrip("\n"))
        raise AssertionError(f"the peer failed: {self.proc.stderr.read()}")

    def finish(self):
        self.proc.stdin.close()
        return self.proc.wait(timeout=10)


# --------------------------------------------------------------------------------------
# The daemon


class Gate:
    """A coapgated (conftest.Daemon) running unixsock inputs."""

    def __init__(self, d, conf_path, state_dir, socket_path, test_mode):
        self.d = d
        self.conf_path = conf_path
        self.state_dir = Path(state_dir)
        self.path = Path(socket_path)
        self.test_mode = test_mode

    @property
    def proc(self):
        return self.d.proc

    def log(self):
        return [line for _, line in self.d.stderr]

    def log_text(self):
        return "\n".join(self.log())

    def wait_log(self, predicate, timeout=10):
        """The first log line with predicate(line) true (a str: contained in it)."""
        if isinstance(predicate, str):
            text = predicate
            predicate = lambda line: text in line  # noqa: E731
        return self.d.wait_for(predicate, timeout=timeout)[1]

    def rejections(self):
        """The REJECTED matches of the log so far."""
        return [m for m in map(REJECTED.match, self.log()) if m]

    def wait_rejections(self, n, timeout=10):
        return wait_until(lambda: len(self.rejections()) >= n and self.rejections(), timeout,
                          lambda: f"{n} rejection log lines:\n{self.log_text()}")

    def connect(self, path=None, timeout=10):
        return Client(path or self.path, timeout)

    # --test mode: readings on stdout

    def readings(self, n, timeout=10):
        """The first n readings printed (JSON objects)."""
        lines = self.d.wait_lines(n, timeout=timeout)
        return [json.loads(line) for line in lines[:n]]

    def printed(self):
        return [json.loads(line) for _, line in list(self.d.stdout)]

    def printed_times(self):
        """(monotonic arrival time, reading) of every printed reading."""
        return [(t, json.loads(line)) for t, line in list(self.d.stdout)]

    # normal mode: readings in the queue

    def dump(self):
        return queue_dump(self.state_dir)

    def stop(self):
        return self.d.stop()


def queue_dump(state_dir):
    """`coapgatectl queue dump`: every reading on disk, as dicts with a "seq"."""
    r = subprocess.run([COAPGATECTL, "queue", "dump", str(Path(state_dir) / "queue")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"queue dump exited {r.returncode}: {r.stderr}"
    return [json.loads(line) for line in r.stdout.splitlines()]


def queue_verify(state_dir):
    return subprocess.run([COAPGATECTL, "queue", "verify", str(Path(state_dir) / "queue")],
                          capture_output=True, text=True, timeout=120)


def clean_env():
    """The test's environment without NOTIFY_SOCKET: never notify a systemd we run
    under."""
    return {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}


class QuietDaemon(Daemon):
    """conftest.Daemon with stdout thrown away: for floods in --test mode, where
    collecting every printed reading would cost the test more than the daemon."""

    def __init__(self, args, env=None):
        self.proc = subprocess.Popen([COAPGATED, *args], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.stdout = []
        self.stderr = []
        self._cond = threading.Condition()
        self._threads = [threading.Thread(target=self._pump,
                                          args=(self.proc.stderr, self.stderr), daemon=True)]
        for t in self._threads:
            t.start()


@pytest.fixture
def gate(daemon, tmp_path, sockdir):
    """gate(test=True, inputs=None, queue=None, daemon_settings=None, wait=True,
    state_dir=None, name=None, path=None, discard_stdout=False, **options) -> Gate.

    test: `coapgated --test` (readings on stdout) or normal mode (the disk queue in
    state_dir, default <tmp_path>/state, with the uplink disabled). Without inputs, one
    unixsock instance at path (default <sockdir>/in.sock) with options. Waits for
    "coapgated started" unless wait is false; the input creates its socket in its own
    thread after that, so clients connect with retries."""
    count = [0]
    quiet = []

    def start(test=True, inputs=None, queue=None, daemon_settings=None, wait=True,
              state_dir=None, name=None, path=None, discard_stdout=False, **options):
        count[0] += 1
        name = name or f"gate{count[0]}"
        path = Path(path or sockdir / SOCKET_NAME)
        state_dir = Path(state_dir or tmp_path / "state")
        if inputs is None:
            inputs = [unixsock_input(path, **options)]
        conf = tmp_path / f"{name}.conf"
        conf.write_text(config_text(inputs, state_dir, queue, daemon_settings))
        args = ["-c", str(conf), "-P", PLUGIN_DIR] + (["--test"] if test else [])
        if discard_stdout:
            d = QuietDaemon(args, env=clean_env())
            quiet.append(d)
        else:
            d = daemon(args, env=clean_env())
        g = Gate(d, conf, state_dir, path, test)
        if wait:
            wait_started(g)
        return g

    yield start
    for d in quiet:
        d.stop()


def wait_started(g, timeout=30):
    """Wait for "coapgated started"; fails at once, with the log, if the daemon exits."""
    def started():
        if any("coapgated started" in line for line in g.log()):
            return True
        if g.proc.poll() is not None:
            raise AssertionError(f"coapgated exited with {g.proc.returncode}:\n"
                                 + g.log_text())
        return False
    wait_until(started, timeout, lambda: "coapgated started:\n" + g.log_text())


# --------------------------------------------------------------------------------------
# Values


def json_line(**fields):
    return json.dumps(fields, separators=(",", ":"))


def padded_json(length, **fields):
    """A JSON object of exactly length bytes: fields plus up to eight "padN" strings of
    x (each at most 500 bytes, under the 512-byte limit), then white space before the
    closing brace for the rest (a reading has at most 64 fields)."""
    pads = {}
    while True:
        line = json_line(**fields, **pads)
        extra = length - len(line)
        assert extra >= 0, (length, line)
        key = f"pad{len(pads)}"
        overhead = len(key) + 6  # ,"padN":""
        if extra < overhead or len(pads) == 8:
            return line[:-1] + " " * extra + "}"
        pads[key] = "x" * min(500, extra - overhead)
