# SPDX-License-Identifier: MIT
"""Helpers for the tests of nce-emulator (tests/emulator/README.md), the local stand-in
for the 1NCE OS CoAP endpoint: the emulator itself, a Mosquitto broker and subscriber,
coap-client-openssl, `openssl s_client` as a DTLS tunnel, and a small raw CoAP encoder
and decoder for hand-built datagrams sent from a chosen 127.0.0.x address.

Every process started here is tracked and stopped by its own handle; nothing is ever
signalled by name. The fixtures `emulator`, `mosquitto`, `mqtt_subscriber`, `raw` and
`tunnel` are imported by the test modules (`from nce import ...`)."""

import json
import os
import random
import re
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

EMULATOR = os.environ.get("NCE_EMULATOR", "")
COAP_CLIENT = "coap-client-openssl"
MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_SUB = "mosquitto_sub"
MOSQUITTO_PUB = "mosquitto_pub"
OPENSSL = "openssl"

LOCALHOST = "127.0.0.1"

EX_USAGE = 64
EX_CONFIG = 78


def require_emulator():
    if not EMULATOR or not os.access(EMULATOR, os.X_OK):
        pytest.fail("NCE_EMULATOR must name the built nce-emulator "
                    f"(build/tests/emulator/nce-emulator); got {EMULATOR!r}")
    return EMULATOR


def free_port(kind=socket.SOCK_STREAM, host=LOCALHOST):
    """A port that was free on host a moment ago (TCP by default)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------
# Processes with collected output


class Proc:
    """A child process whose stdout and stderr are collected line by line in threads."""

    def __init__(self, args, name, stdin=subprocess.DEVNULL, env=None, cwd=None):
        self.args = [str(a) for a in args]
        self.name = name
        self.proc = subprocess.Popen(self.args, stdin=stdin, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
                                     errors="replace")
        self.stdout = []
        self.stderr = []
        self._cond = threading.Condition()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @property
    def pid(self):
        return self.proc.pid

    def _pump(self, stream, lines):
        for line in stream:
            with self._cond:
                lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def output(self):
        with self._cond:
            return ("\n".join(f"[{self.name} stdout] {l}" for l in self.stdout) + "\n"
                    + "\n".join(f"[{self.name} stderr] {l}" for l in self.stderr))

    def wait_line(self, predicate, stream="stderr", timeout=10, start=0):
        """Wait for a line of stream with predicate(line) true; returns the line. Fails
        at once if the process exits first."""
        lines = self.stderr if stream == "stderr" else self.stdout
        deadline = time.monotonic() + timeout
        seen = start
        with self._cond:
            while True:
                for line in lines[seen:]:
                    if predicate(line):
                        return line
                seen = len(lines)
                if self.proc.poll() is not None and all(not t.is_alive() for t in self._threads):
                    raise AssertionError(f"{self.name} exited with status {self.proc.returncode} "
                                         f"before the expected line:\n{self.output()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for a line of {self.name}'s "
                                         f"{stream}:\n{self.output()}")
                self._cond.wait(min(left, 0.1))

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signal (SIGTERM), then SIGKILL if it does not exit; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        rc = self.proc.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout=5)
        return rc


# --------------------------------------------------------------------------------------
# The emulator


def registry_text(devices):
    """A libconfig registry with one device per line: device i (0-based) is on line
    i + 2. Each device is a dict of its keys (iccid, address, status, imsi, psk,
    psk_format); values are written as strings."""
    entries = []
    for d in devices:
        fields = " ".join(f"{k} = {json.dumps(v)};" for k, v in d.items())
        entries.append(f"  {{ {fields} }}")
    return "devices = (\n" + ",\n".join(entries) + "\n);\n"


def _short_dir(path):
    """path, or a fresh short directory if a socket in path would be too long."""
    if len(str(path)) < 80:
        return Path(path), None
    d = tempfile.mkdtemp(prefix="nce-")
    return Path(d), d


READY = re.compile(r"^nce-emulator: ready coap=(?P<coap>\S+) coaps=(?P<coaps>\S+)"
                   r"(?: control=(?P<control>\S+))?")


def _split_hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


class Emulator:
    """A running nce-emulator on ephemeral ports with a registry, sink and control
    socket in workdir. Attributes: coap_port, coaps_port, sink_path, ctl_path,
    registry, ready_line."""

    def __init__(self, workdir, devices=(), extra_args=(), verbose=True, ready_timeout=10,
                 env=None):
        require_emulator()
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.registry = self.dir / "devices.conf"
        self.registry.write_text(registry_text(devices))
        self.sink_path = self.dir / "sink.jsonl"
        sockdir, self._tmpdir = _short_dir(self.dir)
        self.ctl_path = sockdir / "ctl.sock"
        args = [EMULATOR, "-r", self.registry, "--coap", f"{LOCALHOST}:0",
                "--coaps", f"{LOCALHOST}:0", "--control", self.ctl_path,
                "--sink", self.sink_path]
        if verbose:
            args.append("-v")
        args += list(extra_args)
        if env is None:     # never notify a systemd the tests may run under
            env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        self.p = Proc(args, "nce-emulator", env=env)
        self.ready_line = self.p.wait_line(lambda l: l.startswith("nce-emulator: ready"),
                                           timeout=ready_timeout)
        m = READY.match(self.ready_line)
        assert m, f"cannot parse the ready line {self.ready_line!r}"
        self.coap_host, self.coap_port = _split_hostport(m["coap"])
        self.coaps_host, self.coaps_port = _split_hostport(m["coaps"])
        self.ready_control = m["control"]

    @property
    def pid(self):
        return self.p.pid

    @property
    def stderr(self):
        return list(self.p.stderr)

    def output(self):
        return self.p.output()

    # control socket

    def ctl(self, command, timeout=5):
        """Send one control command; returns the parsed JSON answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.ctl_path))
            s.sendall(command.encode() + b"\n")
            buf = b""
            while b"\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        line = buf.split(b"\n", 1)[0]
        try:
            return json.loads(line)
        except ValueError:
            raise AssertionError(f"control answer to {command!r} is not JSON: {buf!r}")

    def ctl_ok(self, command):
        answer = self.ctl(command)
        assert answer.get("ok") is True, f"{command!r} -> {answer}"
        return answer

    def stats(self):
        return self.ctl_ok("stats")

    # sink

    def sink(self):
        """The sink's complete lines, parsed."""
        try:
            text = self.sink_path.read_text()
        except FileNotFoundError:
            return []
        lines = text.split("\n")
        return [json.loads(l) for l in lines[:-1] if l.strip()]

    def wait_sink(self, n, timeout=5):
        """Wait until the sink has at least n lines; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.sink()
            if len(lines) >= n:
                return lines
            if time.monotonic() > deadline:
                raise AssertionError(f"sink has {len(lines)} lines, expected {n}")
            time.sleep(0.02)

    def stop(self):
        rc = self.p.stop()
        if self._tmpdir:
            try:
                os.unlink(self.ctl_path)
            except FileNotFoundError:
                pass
            os.rmdir(self._tmpdir)
            self._tmpdir = None
        return rc


def run_emulator(args, timeout=15):
    """Run nce-emulator to completion (for usage and registry errors)."""
    return subprocess.run([require_emulator(), *[str(a) for a in args]], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def emulator(tmp_path):
    """emulator(devices=[...], extra_args=[...], verbose=True, env=None) -> Emulator; every one
    started is stopped at teardown (its output is printed, so a failure shows it)."""
    started = []

    def start(devices=(), extra_args=(), **kwargs):
        e = Emulator(tmp_path / f"emu{len(started)}", devices, extra_args, **kwargs)
        started.append(e)
        return e

    yield start
    for e in started:
        rc = e.stop()
        print(f"--- nce-emulator pid {e.pid} exited with {rc}\n{e.output()}")


# --------------------------------------------------------------------------------------
# Mosquitto


class Mosquitto:
    """/usr/sbin/mosquitto on a free loopback port with a generated configuration that
    logs connections to stderr."""

    def __init__(self, workdir):
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):
            self.port = free_port()
            conf = workdir / "mosquitto.conf"
            conf.write_text(f"listener {self.port} {LOCALHOST}\nallow_anonymous true\n"
                            "persistence false\nlog_dest stderr\nlog_type all\n"
                            "connection_messages true\n")
            self.p = Proc([MOSQUITTO, "-c", conf], "mosquitto")
            if self._wait_port():
                return
            self.p.stop()
        raise AssertionError(f"mosquitto did not start:\n{self.p.output()}")

    def _wait_port(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.p.proc.poll() is not None:
                return False
            try:
                with socket.create_connection((LOCALHOST, self.port), timeout=1):
                    return True
            except OSError:
                time.sleep(0.02)
        return False

    def connected_clients(self):
        """Client ids from 'New client connected from ... as ID' log lines."""
        out = []
        for l in list(self.p.stderr):
            m = re.search(r"New client connected from \S+ as (\S+)", l)
            if m:
                out.append(m.group(1))
        return out

    def wait_client(self, exclude=(), timeout=10):
        """Wait until a client whose id is not in exclude has connected; returns its id."""
        line = self.p.wait_line(
            lambda l: (m := re.search(r"New client connected from \S+ as (\S+)", l))
            is not None and m.group(1) not in exclude, timeout=timeout)
        return re.search(r" as (\S+)", line).group(1)

    def stop(self):
        return self.p.stop()


SUB_ID = "nce-test-sub"
PROBE_ID = "nce-test-probe"
PROBE_TOPIC = "nce-test-probe/ready"


class Subscriber:
    """mosquitto_sub -v -t '#' in the background; ready once it has seen a probe."""

    def __init__(self, broker):
        self.broker = broker
        self.p = Proc([MOSQUITTO_SUB, "-h", LOCALHOST, "-p", broker.port, "-v", "-t", "#",
                       "-q", "1", "-i", SUB_ID], "mosquitto_sub")
        deadline = time.monotonic() + 10
        while True:
            subprocess.run([MOSQUITTO_PUB, "-h", LOCALHOST, "-p", str(broker.port),
                            "-i", PROBE_ID, "-t", PROBE_TOPIC, "-m", "ready"],
                           check=True, timeout=10, capture_output=True)
            try:
                self.p.wait_line(lambda l: l.startswith(PROBE_TOPIC + " "), stream="stdout",
                                 timeout=0.3)
                return
            except AssertionError:
                if time.monotonic() > deadline or self.p.proc.poll() is not None:
                    raise

    def messages(self):
        """[(topic, payload)] received, without the probes."""
        out = []
        for l in list(self.p.stdout):
            topic, _, payload = l.partition(" ")
            if topic != PROBE_TOPIC:
                out.append((topic, payload))
        return out

    def wait_messages(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.messages()
            if len(msgs) >= n:
                return msgs
            if time.monotonic() > deadline:
                raise AssertionError(f"got {len(msgs)} MQTT messages, expected {n}:\n"
                                     + self.p.output())
            time.sleep(0.02)

    def stop(self):
        return self.p.stop()


@pytest.fixture
def mosquitto(tmp_path):
    """A started Mosquitto broker (.port), stopped at teardown."""
    m = Mosquitto(tmp_path / "mosquitto")
    yield m
    rc = m.stop()
    print(f"--- mosquitto exited with {rc}\n{m.p.output()}")


@pytest.fixture
def mqtt_subscriber():
    """mqtt_subscriber(broker) -> Subscriber that is already subscribed to '#'."""
    started = []

    def start(broker):
        s = Subscriber(broker)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


# --------------------------------------------------------------------------------------
# coap-client-openssl

PDU_LINE = re.compile(r"^v:1 t:(?P<type>CON|NON|ACK|RST) c:(?P<code>\S+) i:(?P<mid>[0-9a-f]+) "
                      r"\{(?P<token>[0-9a-f]*)\} \[(?P<options>.*?)\](?: :: (?P<payload>.*))?$")
CODE = re.compile(r"^\d\.\d\d$")


@dataclass
class ClientResult:
    rc: int
    stdout: str
    stderr: str
    payload: bytes = b""
    pdus: list = field(default_factory=list)   # [dict of PDU_LINE groups] in order
    elapsed: float = 0.0

    @property
    def codes(self):
        """Response codes received, in order (e.g. ['2.04'])."""
        return [p["code"] for p in self.pdus if CODE.match(p["code"])]

    @property
    def code(self):
        codes = self.codes
        return codes[0] if codes else None

    @property
    def request_mids(self):
        return [int(p["mid"], 16) for p in self.pdus
                if p["type"] in ("CON", "NON") and not CODE.match(p["code"])]

    def __str__(self):
        return (f"coap-client exit {self.rc} codes {self.codes}\n--- stdout\n{self.stdout}\n"
                f"--- stderr\n{self.stderr}")


def coap_client(url, method="get", bind=None, identity=None, key=None, data=None,
                wait=5, extra=(), workdir=None):
    """Run coap-client-openssl with -v 6 (so every PDU is shown); data (bytes) is sent
    from a file (-f), the answer's payload is written with -o. key may be str or bytes
    (bytes must be printable for the command line)."""
    workdir = Path(workdir or tempfile.mkdtemp(prefix="nce-client-"))
    out = workdir / f"out-{random.getrandbits(32):08x}"
    args = [COAP_CLIENT, "-m", method, "-B", str(wait), "-v", "6", "-o", str(out)]
    if bind:
        args += ["-a", bind]
    if identity is not None:
        args += ["-u", identity]
    if key is not None:
        args += ["-k", key.decode() if isinstance(key, bytes) else key]
    if data is not None:
        infile = workdir / f"in-{random.getrandbits(32):08x}"
        infile.write_bytes(data)
        args += ["-f", str(infile)]
    args += list(extra) + [url]
    t0 = time.monotonic()
    cp = subprocess.run(args, capture_output=True, timeout=wait + 20, stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - t0
    stdout = cp.stdout.decode(errors="replace")
    stderr = cp.stderr.decode(errors="replace")
    pdus = []
    for line in stdout.splitlines():
        m = PDU_LINE.search(line)
        if m:
            pdus.append(m.groupdict())
    payload = out.read_bytes() if out.exists() else b""
    return ClientResult(cp.returncode, stdout, stderr, payload, pdus, elapsed)


# --------------------------------------------------------------------------------------
# Raw CoAP (RFC 7252 §3)

CON, NON, ACK, RST = 0, 1, 2, 3
TYPE_NAMES = {CON: "CON", NON: "NON", ACK: "ACK", RST: "RST"}
GET, POST, PUT, DELETE = 1, 2, 3, 4

URI_PATH = 11
CONTENT_FORMAT = 12
URI_QUERY = 15
BLOCK1 = 27

CF_TEXT_CSV = 110
CF_JSON = 50


def code(s):
    """'2.04' -> 0x44."""
    c, _, d = s.partition(".")
    return (int(c) << 5) | int(d)


def code_str(n):
    return f"{n >> 5}.{n & 31:02d}"


def uint_bytes(v):
    """CoAP uint option value: shortest big-endian form, 0 as empty."""
    return v.to_bytes((v.bit_length() + 7) // 8, "big") if v else b""


def _ext(n):
    """(nibble, extension bytes) for an option delta or length."""
    if n < 13:
        return n, b""
    if n < 269:
        return 13, bytes([n - 13])
    return 14, (n - 269).to_bytes(2, "big")


def encode(mtype, mcode, mid, token=b"", options=(), payload=b""):
    """A CoAP message. mcode is an int or 'c.dd'; options are (number, bytes) pairs in
    any order (the encoder sorts them, keeping repeated options in order)."""
    if isinstance(mcode, str):
        mcode = code(mcode)
    assert len(token) <= 8
    out = bytearray([0x40 | (mtype << 4) | len(token), mcode, mid >> 8 & 0xff, mid & 0xff])
    out += token
    last = 0
    for num, value in sorted(options, key=lambda o: o[0]):
        if isinstance(value, str):
            value = value.encode()
        dn, dx = _ext(num - last)
        ln, lx = _ext(len(value))
        out.append(dn << 4 | ln)
        out += dx + lx + value
        last = num
    if payload:
        out.append(0xff)
        out += payload
    return bytes(out)


@dataclass
class Msg:
    type: int
    code: int
    mid: int
    token: bytes
    options: list
    payload: bytes
    raw: bytes = b""

    @property
    def code_str(self):
        return code_str(self.code)

    def option(self, num):
        return [v for n, v in self.options if n == num]

    def uint_option(self, num):
        vals = self.option(num)
        return int.from_bytes(vals[0], "big") if vals else None

    def json(self):
        return json.loads(self.payload.decode())

    def __str__(self):
        return (f"{TYPE_NAMES.get(self.type)} {self.code_str} mid={self.mid} "
                f"token={self.token.hex()} options={self.options} payload={self.payload!r}")


def decode(data):
    """Parse a CoAP message; raises ValueError if it is malformed."""
    if len(data) < 4 or data[0] >> 6 != 1:
        raise ValueError(f"not a CoAP message: {data!r}")
    tkl = data[0] & 0x0f
    if tkl > 8 or len(data) < 4 + tkl:
        raise ValueError(f"bad token length: {data!r}")
    msg = Msg(data[0] >> 4 & 3, data[1], data[2] << 8 | data[3], bytes(data[4:4 + tkl]), [],
              b"", bytes(data))
    i = 4 + tkl
    num = 0
    while i < len(data):
        if data[i] == 0xff:
            if i + 1 >= len(data):
                raise ValueError("payload marker without payload")
            msg.payload = bytes(data[i + 1:])
            break
        dn, ln = data[i] >> 4, data[i] & 0x0f
        i += 1
        vals = []
        for n in (dn, ln):
            if n == 13:
                vals.append(data[i] + 13)
                i += 1
            elif n == 14:
                vals.append((data[i] << 8 | data[i + 1]) + 269)
                i += 2
            elif n == 15:
                raise ValueError("reserved option nibble 15")
            else:
                vals.append(n)
        num += vals[0]
        if i + vals[1] > len(data):
            raise ValueError("option runs past the end")
        msg.options.append((num, bytes(data[i:i + vals[1]])))
        i += vals[1]
    return msg


def path_options(path):
    return [(URI_PATH, seg.encode()) for seg in path.split("/") if seg]


def request(method, mid, token, path="/", queries=(), payload=b"", options=(), mtype=CON):
    """A request message; queries are Uri-Query values (str or bytes), e.g. 't=a'."""
    opts = path_options(path)
    opts += [(URI_QUERY, q.encode() if isinstance(q, str) else q) for q in queries]
    opts += list(options)
    return encode(mtype, method, mid, token, opts, payload)


class RawClient:
    """A UDP socket bound to (bind, 0) that sends hand-built CoAP datagrams to the
    emulator on 127.0.0.1."""

    def __init__(self, bind="127.0.0.2", port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((bind, port))
        self.address = self.sock.getsockname()
        self._mid = random.randrange(0x10000)

    def next_mid(self):
        self._mid = (self._mid + 1) & 0xffff
        return self._mid

    @staticmethod
    def next_token():
        return random.getrandbits(32).to_bytes(4, "big")

    def send(self, data, port):
        self.sock.sendto(data, (LOCALHOST, port))

    def recv(self, timeout):
        """One datagram or None after timeout seconds."""
        r, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        if not r:
            return None
        data, _ = self.sock.recvfrom(65536)
        return data

    def exchange(self, data, port, timeout=2.0):
        """Send one request and return its answer (a Msg, with .raw), or None if none
        came within timeout. A separate response (empty ACK, then CON/NON) is followed
        and acknowledged; unrelated datagrams (late answers) are skipped."""
        req = decode(data)
        self.send(data, port)
        deadline = time.monotonic() + timeout
        while True:
            raw = self.recv(deadline - time.monotonic())
            if raw is None:
                return None
            msg = decode(raw)
            if msg.type == ACK and msg.mid == req.mid and msg.code == 0:
                continue                    # empty ACK: the response comes separately
            if msg.type == ACK and msg.mid == req.mid and msg.token == req.token:
                return msg
            if msg.type in (CON, NON) and msg.token == req.token and msg.code >= 64:
                if msg.type == CON:
                    self.send(encode(ACK, 0, msg.mid), port)
                return msg
            if msg.type == RST and msg.mid == req.mid:
                return msg

    def request(self, port, method=POST, path="/", queries=(), payload=b"", options=(),
                timeout=2.0, mtype=CON):
        data = request(method, self.next_mid(), self.next_token(), path, queries, payload,
                       options, mtype)
        return self.exchange(data, port, timeout)

    def post(self, port, payload=b"x", topic=None, path="/", timeout=2.0, queries=None):
        if queries is None:
            queries = [] if topic is None else [f"t={topic}"]
        return self.request(port, POST, path, queries, payload, timeout=timeout)

    def bootstrap(self, port, timeout=2.0):
        return self.request(port, GET, "/bootstrap", timeout=timeout)

    def close(self):
        self.sock.close()


@pytest.fixture
def raw():
    """raw(bind='127.0.0.2') -> RawClient; all closed at teardown."""
    made = []

    def make(bind="127.0.0.2", port=0):
        c = RawClient(bind, port)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def bootstrap(e, bind="127.0.0.2"):
    """Bootstrap as the device at bind (raw GET); returns (code, payload str)."""
    c = RawClient(bind)
    try:
        m = c.bootstrap(e.coap_port)
        assert m is not None, f"no answer to a bootstrap from {bind}"
        return m.code_str, m.payload.decode(errors="replace")
    finally:
        c.close()


def bootstrap_psk(e, bind="127.0.0.2"):
    c, payload = bootstrap(e, bind)
    assert c == "2.05", f"bootstrap from {bind}: {c} {payload}"
    return payload.split(",")[1]


# --------------------------------------------------------------------------------------
# openssl s_client as a DTLS tunnel: raw CoAP over one long-lived DTLS session


class DtlsTunnel:
    """`openssl s_client -dtls1_2 -quiet` bound to bind: each write to its stdin is one
    DTLS record, i.e. one CoAP message; each answer record comes back on stdout."""

    def __init__(self, port, identity, key, bind="127.0.0.2", cipher="PSK", workdir=None):
        key = key.encode() if isinstance(key, str) else key
        workdir = Path(workdir or tempfile.mkdtemp(prefix="nce-tunnel-"))
        self.errpath = workdir / f"s_client-{random.getrandbits(32):08x}.err"
        self._err = open(self.errpath, "wb")
        self.proc = subprocess.Popen(
            [OPENSSL, "s_client", "-dtls1_2", "-connect", f"{LOCALHOST}:{port}",
             "-bind", f"{bind}:0", "-psk_identity", identity, "-psk", key.hex(),
             "-cipher", cipher, "-quiet", "-nocommands"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err)
        self._mid = random.randrange(0x10000)
        self._pending = b""

    @property
    def pid(self):
        return self.proc.pid

    def next_mid(self):
        self._mid = (self._mid + 1) & 0xffff
        return self._mid

    def errors(self):
        self._err.flush()
        return self.errpath.read_text(errors="replace")

    def exchange(self, data, timeout=5.0):
        """Send one CoAP message; returns the answer Msg with the same MID or token, or
        None after timeout (or if s_client has exited)."""
        req = decode(data)
        try:
            os.write(self.proc.stdin.fileno(), data)
        except BrokenPipeError:
            return None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if not r:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return None
            try:
                msg = decode(chunk)
            except ValueError:
                continue
            if msg.mid == req.mid or (msg.token == req.token and msg.code >= 64):
                return msg

    def post(self, payload=b"x", topic=None, timeout=5.0):
        queries = [] if topic is None else [f"t={topic}"]
        return self.exchange(request(POST, self.next_mid(), RawClient.next_token(), "/",
                                     queries, payload), timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        rc = self.proc.wait(timeout=5)
        self._err.close()
        return rc


@pytest.fixture
def tunnel(tmp_path):
    """tunnel(port, identity, key, bind='127.0.0.2') -> DtlsTunnel; stopped at teardown."""
    made = []

    def make(port, identity, key, bind="127.0.0.2", cipher="PSK"):
        t = DtlsTunnel(port, identity, key, bind, cipher, workdir=tmp_path)
        made.append(t)
        return t

    yield make
    for t in made:
        t.stop()
