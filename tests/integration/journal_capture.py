# SPDX-License-Identifier: MIT
"""A stand-in for journald, for proving what coapgated sends over the journal's
native protocol.

Run as a script inside a private mount namespace (`unshare --mount --propagation
private`): it mounts a tmpfs over /run/systemd (or /run), binds a datagram socket at
/run/systemd/journal/socket (or leaves none, or a dead one), runs coapgated, collects
every datagram until the daemon exits and prints one JSON object:

    {"rc": 0, "timed_out": false, "entries": [{"MESSAGE": ["..."], ...}, ...],
     "stdout": "...", "stderr": "..."}

Each entry maps a field name to the list of its values (a field may repeat). Exits
with status 77 and the reason on stderr when the namespace or the mount is not there,
so the test can skip. The real /run is never touched: the helper refuses to mount
when its mount namespace is the one it was told the caller has.

As a module it offers parse_native() and command() for the test."""

import argparse
import array
import ctypes
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

JOURNAL_DIR = "/run/systemd/journal"
JOURNAL_SOCKET = JOURNAL_DIR + "/socket"
EXIT_SKIP = 77

MS_NOSUID = 2
MS_NODEV = 4
PR_SET_PDEATHSIG = 1


def parse_native(data):
    """Fields of one native-protocol datagram: "KEY=value\\n", or for values that may
    hold newlines "KEY\\n" + 64-bit little-endian length + value + "\\n"."""
    fields = {}
    i = 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            key, _, value = line.partition(b"=")
            i = nl + 1
        else:
            key = line
            size = int.from_bytes(data[nl + 1:nl + 9], "little")
            value = data[nl + 9:nl + 9 + size]
            if data[nl + 9 + size:nl + 10 + size] != b"\n":
                raise ValueError(f"binary field {key!r} is not followed by a newline")
            i = nl + 10 + size
        fields.setdefault(key.decode(), []).append(value.decode(errors="replace"))
    return fields


def mount_namespace():
    return os.readlink("/proc/self/ns/mnt")


def command(python, parent_ns, workdir, daemon_argv, *, journal="listen", journal_stream="none",
            stop_on=None, timeout=20, env=()):
    """The argv that runs this helper in a private mount namespace."""
    argv = ["unshare", "--mount", "--propagation", "private", python, os.path.abspath(__file__),
            "--parent-ns", parent_ns, "--workdir", str(workdir), "--journal", journal,
            "--journal-stream", journal_stream, "--timeout", str(timeout)]
    if stop_on:
        argv += ["--stop-on", stop_on]
    for item in env:
        argv += ["--env", item]
    return argv + ["--", *daemon_argv]


def skip(reason):
    print(reason, file=sys.stderr)
    sys.exit(EXIT_SKIP)


def setup_run(parent_ns):
    if mount_namespace() == parent_ns:
        skip("not in a private mount namespace, refusing to mount over /run")
    libc = ctypes.CDLL(None, use_errno=True)
    target = "/run/systemd" if os.path.isdir("/run/systemd") else "/run"
    if libc.mount(b"tmpfs", target.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755") != 0:
        skip(f"cannot mount a tmpfs on {target}: {os.strerror(ctypes.get_errno())}")
    os.makedirs(JOURNAL_DIR, exist_ok=True)
    return libc


def receive(sock, entries):
    """Read every datagram waiting; large ones come as a memfd (SCM_RIGHTS)."""
    while True:
        try:
            data, ancdata, _, _ = sock.recvmsg(1 << 20, socket.CMSG_SPACE(16 * 4))
        except BlockingIOError:
            return
        for level, kind, cdata in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(cdata[:len(cdata) - len(cdata) % fds.itemsize])
                for fd in fds:
                    os.lseek(fd, 0, os.SEEK_SET)
                    chunks = []
                    while chunk := os.read(fd, 1 << 16):
                        chunks.append(chunk)
                    os.close(fd)
                    data += b"".join(chunks)
        entries.append(parse_native(data))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--parent-ns", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--journal", choices=["listen", "none", "dead"], default="listen",
                    help="a socket that is read, no socket, or a socket file nobody reads")
    ap.add_argument("--journal-stream", choices=["none", "match", "mismatch"], default="none")
    ap.add_argument("--stop-on", help="SIGTERM the daemon once a MESSAGE or stderr has this")
    ap.add_argument("--timeout", type=float, default=20)
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for the daemon")
    ap.add_argument("argv", nargs="+")
    a = ap.parse_args()

    libc = setup_run(a.parent_ns)
    sock = None
    if a.journal != "none":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        sock.bind(JOURNAL_SOCKET)
        sock.setblocking(False)
    if a.journal == "dead":
        sock.close()  # the file stays: sending to it is refused
        sock = None

    out_path = os.path.join(a.workdir, "daemon.stdout")
    err_path = os.path.join(a.workdir, "daemon.stderr")
    out = open(out_path, "w")
    err = open(err_path, "w")
    env = {k: v for k, v in os.environ.items()
           if k not in ("JOURNAL_STREAM", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    st = os.fstat(err.fileno())
    if a.journal_stream == "match":
        env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    elif a.journal_stream == "mismatch":
        env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino + 1}"
    for item in a.env:
        key, _, value = item.partition("=")
        env[key] = value

    # Should this helper die, the daemon dies with it.
    proc = subprocess.Popen(a.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                            preexec_fn=lambda: libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL))
    entries = []
    deadline = time.monotonic() + a.timeout
    signalled = timed_out = False
    while True:
        rc = proc.poll()
        if sock:
            select.select([sock], [], [], 0.05)
            receive(sock, entries)
        elif rc is None:
            time.sleep(0.05)
        if rc is not None:
            break
        if a.stop_on and not signalled:
            with open(err_path) as f:
                seen = a.stop_on in f.read()
            seen |= any(a.stop_on in m for e in entries for m in e.get("MESSAGE", []))
            if seen:
                proc.send_signal(signal.SIGTERM)
                signalled = True
        if time.monotonic() > deadline:
            proc.kill()
            rc = proc.wait()
            timed_out = True
            break
    if sock:
        receive(sock, entries)
    out.close()
    err.close()
    with open(out_path) as f:
        stdout = f.read()
    with open(err_path) as f:
        stderr = f.read()
    json.dump({"rc": rc, "timed_out": timed_out, "entries": entries, "stdout": stdout,
               "stderr": stderr}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
