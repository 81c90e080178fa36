# SPDX-License-Identifier: MIT
"""Shared fixtures of the integration tests: where the built daemon and plugins are,
configuration files in a temporary directory, and daemons that are always stopped.

Every process a test starts goes through `Daemon` (or `run`), so a test never leaves
one behind and never signals a process it did not start."""

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

COAPGATED = os.environ.get("COAPGATED", "")
PLUGIN_DIR = os.environ.get("COAPGATE_PLUGIN_DIR", "")
TEST_PLUGIN_DIR = os.environ.get("COAPGATE_TEST_PLUGIN_DIR", "")
SOURCE_DIR = Path(os.environ.get("COAPGATE_SOURCE_DIR", Path(__file__).resolve().parents[2]))


def pytest_configure(config):
    if not COAPGATED or not os.access(COAPGATED, os.X_OK):
        raise pytest.UsageError("run through ctest, or set COAPGATED and COAPGATE_PLUGIN_DIR")


def typed(fields):
    """{name: (type name, value)}: compares 3 != 3.0 != True, which == does not."""
    return {k: (type(v).__name__, v) for k, v in fields.items()}


@pytest.fixture
def write_config(tmp_path):
    """write_config(text, name="coapgate.conf") -> Path of the written file."""

    def write(text, name="coapgate.conf"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return write


def run(args, timeout=30, env=None, **kwargs):
    """Run coapgated to completion; returns CompletedProcess with text output."""
    return subprocess.run([COAPGATED, *args], capture_output=True, text=True,
                          timeout=timeout, env=env, **kwargs)


class Daemon:
    """A coapgated process with its stdout and stderr collected line by line, each
    line with the monotonic time it arrived."""

    def __init__(self, args, env=None):
        self.proc = subprocess.Popen([COAPGATED, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.stdout = []
        self.stderr = []
        self._cond = threading.Condition()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _pump(self, stream, lines):
        for line in stream:
            with self._cond:
                lines.append((time.monotonic(), line.rstrip("\n")))
                self._cond.notify_all()

    def wait_for(self, predicate, stream="stderr", timeout=10):
        """Wait until predicate(line) is true for a line of stream; returns (t, line)."""
        lines = self.stderr if stream == "stderr" else self.stdout
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for t, line in lines[seen:]:
                    if predicate(line):
                        return t, line
                seen = len(lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting in {stream}; got:\n"
                                         + "\n".join(l for _, l in lines))
                self._cond.wait(left)

    def wait_lines(self, n, stream="stdout", timeout=10):
        """Wait until stream has at least n lines; returns the lines (without times)."""
        lines = self.stderr if stream == "stderr" else self.stdout
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(lines) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {n} lines of {stream}, got "
                                         f"{len(lines)}:\n" + "\n".join(l for _, l in lines))
                self._cond.wait(left)
            return [l for _, l in lines]

    def signal(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout=15):
        rc = self.proc.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout=5)
        return rc

    def stop(self):
        """SIGTERM, then SIGKILL if it does not exit; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.wait(timeout=15)


@pytest.fixture
def daemon():
    """daemon(args, env=None) -> Daemon; every daemon started is stopped at teardown."""
    started = []

    def start(args, env=None):
        d = Daemon(args, env=env)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()
