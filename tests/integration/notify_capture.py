# SPDX-License-Identifier: MIT
"""A stand-in for systemd's notification socket: a Unix datagram socket that records
every sd_notify() message, each with the monotonic time it arrived.

    with NotifySocket(tmp_path / "notify.sock") as ns:
        env = {**os.environ, "NOTIFY_SOCKET": ns.address}
        ...
        ns.wait_for(lambda m: "READY=1" in m.lines)
"""

import socket
import threading
import time
import uuid
from dataclasses import dataclass

SUN_PATH_MAX = 107


@dataclass
class Message:
    time: float   # time.monotonic() on arrival
    text: str     # the datagram, "KEY=value" lines

    @property
    def lines(self):
        return self.text.split("\n")

    def value(self, key):
        """The value of KEY= in this message, or None."""
        for line in self.lines:
            if line.startswith(key + "="):
                return line[len(key) + 1:]
        return None


class NotifySocket:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        path = str(path)
        if len(path.encode()) <= SUN_PATH_MAX:
            self.sock.bind(path)
            self.address = path
        else:
            # Too long for sun_path: an abstract address needs no file at all.
            name = f"coapgate-test-{uuid.uuid4().hex}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        self.sock.settimeout(0.1)  # so that the receiver notices close()
        self.messages = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self):
        while not self._closed:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self._cond:
                self.messages.append(Message(time.monotonic(), data.decode(errors="replace")))
                self._cond.notify_all()

    def wait_for(self, predicate, timeout=10, after=0):
        """Wait for a message (from index `after` on) for which predicate(message) is
        true; returns (index, message)."""
        deadline = time.monotonic() + timeout
        seen = after
        with self._cond:
            while True:
                for i in range(seen, len(self.messages)):
                    if predicate(self.messages[i]):
                        return i, self.messages[i]
                seen = max(seen, len(self.messages))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for a notification; got:\n"
                                         + "\n".join(repr(m.text) for m in self.messages))
                self._cond.wait(left)

    def snapshot(self):
        with self._cond:
            return list(self.messages)

    def close(self):
        self._closed = True
        self._thread.join(timeout=5)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
