# SPDX-License-Identifier: MIT
"""A serial line for tests: two pseudo-terminals joined by socat, each reachable under a
fixed name (a symlink, like /dev/serial/by-id/...).

The gateway opens `device`; the test talks to it through `peer`. Killing socat makes
the gateway's side fail as an unplugged USB adapter does (read returns EIO or EOF);
start() again recreates the link under the same names, as a re-plugged adapter that
udev gives the same by-id name.

socat applies no baud rate: a pty passes bytes as fast as they are written, so tests
that care about timing pace their writes themselves. The process is tracked by its
Popen handle and stopped by it; nothing is signalled by name."""

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

SOCAT = shutil.which("socat") or "/usr/bin/socat"


class PtyPair:
    """PtyPair(directory, name="ttyUSB-test") -> device and peer paths in directory;
    start() brings the pair up, unplug() takes it down."""

    def __init__(self, directory, name="ttyUSB-test"):
        self.device = Path(directory) / name
        self.peer = Path(directory) / f"{name}.peer"
        self.proc = None

    def start(self, timeout=10):
        """Start socat and wait until both names lead to ptys; returns self."""
        assert self.proc is None or self.proc.poll() is not None, "already started"
        # raw,echo=0 on both sides: bytes pass unchanged and nothing is echoed back.
        # The gateway's side is opened by the plugin with its own termios settings.
        self.proc = subprocess.Popen(
            [SOCAT, "-d", "-d",
             f"pty,raw,echo=0,link={self.device}",
             f"pty,raw,echo=0,link={self.peer}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # socat logs "starting data transfer loop" once both ptys and links exist.
        # A readline() cannot time out, so a watchdog ends a socat that hangs.
        watchdog = threading.Timer(timeout, self.proc.kill)
        watchdog.start()
        try:
            for line in self.proc.stderr:
                if "starting data transfer loop" in line:
                    break
            else:
                raise AssertionError(f"socat did not create the ptys: exit {self.proc.wait()}")
        finally:
            watchdog.cancel()
        assert self.device.exists() and self.peer.exists()
        # Keep draining socat's stderr so that it can never block on a full pipe.
        threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True).start()
        return self

    @staticmethod
    def _drain(stream):
        for _ in stream:
            pass

    def open_peer(self):
        """The test's end, opened for reading and writing without becoming its
        controlling terminal; returns a raw file descriptor."""
        return os.open(self.peer, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)

    def unplug(self):
        """Take the line away: socat ends, both ptys and their names vanish."""
        self.stop()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        # socat removes its links on a clean exit; after a kill they may stay.
        for p in (self.device, self.peer):
            if p.is_symlink():
                p.unlink()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@pytest.fixture
def line(tmp_path):
    """A started PtyPair in the test's directory; stopped at teardown."""
    pair = PtyPair(tmp_path).start()
    yield pair
    pair.stop()
