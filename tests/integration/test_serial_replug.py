# SPDX-License-Identifier: MIT
"""The `serial` input when the device goes away and comes back
(plugins/serial/README.md, "Unplugging"): a USB adapter pulled out and put back is
simulated by killing socat and starting it again under the same names, as udev gives a
re-plugged adapter the same /dev/serial/by-id name.

  * unplug and replug three times: each time the run ends with an error, the daemon
    reopens the device with its restart backoff, and lines sent after the replug
    arrive, with no restart of coapgated;
  * a device absent at start: `coapgated -t` passes, the input says once that it waits
    for the device (not at every retry), and reads it when it appears;
  * a line cut by the unplug is not a reading;
  * stopping coapgated while the device is absent or idle is prompt;
  * a full queue with `when_full = "block"` (a private tmpfs, as in test_unixsock.py):
    the input stops reading the line, the writer is held back by the pty, and once
    there is room again every line arrives, in order."""

import os
import time

import pytest

from ptypair import PtyPair
from ptypair import line  # noqa: F401  (fixture)
from serialline import serial_gate  # noqa: F401  (fixture)
from serialline import Peer, plugin_built, wait_until
from smallfs import FULL_QUEUE, leave_free, small_fs  # noqa: F401  (fixture)
from unixsock import queue_dump

pytestmark = pytest.mark.skipif(not plugin_built(), reason="serial.so is not built")

# Short restart delays: the test waits for the reopen, and the default grows to 5 min.
BACKOFF = dict(restart_backoff_min="50ms", restart_backoff_max="400ms")


def test_unplug_and_replug_resume_without_restarting_the_daemon(serial_gate, line):
    g = serial_gate(device=line.device, format="kv", **BACKOFF,
                    daemon_settings={"log_rate_limit_interval": "0"})
    pid = g.proc.pid
    for cycle in range(3):
        g.wait_reading_ready(line.device, nth=cycle + 1)
        peer = Peer(line)
        peer.write_line(f"cycle={cycle} before=1")
        # Half a line that the unplug cuts: never a reading.
        peer.write(f"cycle={cycle} cut=")
        assert g.readings(2 * cycle + 1)[-1]["fields"] == {"cycle": cycle, "before": 1}
        peer.close()
        line.unplug()
        g.wait_log(lambda text: ("hung up" in text or "cannot read" in text)
                   and str(line.device) in text, nth=cycle + 1)
        g.wait_log("run failed", nth=cycle + 1)
        # The device is gone while the daemon retries: said once per absence.
        g.wait_log(f'"{line.device}" is absent', nth=cycle + 1)
        line.start()
        g.wait_log(f'"{line.device}" is back', nth=cycle + 1)
        g.wait_reading_ready(line.device, nth=cycle + 2)
        Peer(line).write_line(f"cycle={cycle} after=1")
        assert g.readings(2 * cycle + 2)[-1]["fields"] == {"cycle": cycle, "after": 1}
    assert g.proc.poll() is None and g.proc.pid == pid
    assert g.stop() == 0
    assert len(g.printed()) == 6
    assert not g.bad_frames(), g.log_text()


def test_device_absent_at_start(serial_gate, tmp_path, write_config):
    pair = PtyPair(tmp_path, "ttyACM-late")
    g = serial_gate(device=pair.device, format="kv", **BACKOFF)
    try:
        warning = g.wait_log(f'"{pair.device}" is absent (not plugged in?)')
        assert warning.startswith("warning: "), warning
        assert "waiting for it" in warning
        # Retries go on without repeating the warning; the daemon logs each failure.
        g.wait_log("run failed: No such file or directory", nth=4)
        assert g.count_log("is absent") == 1, g.log_text()
        pair.start()
        g.wait_reading_ready(pair.device)
        Peer(pair).write_line("late=true")
        assert g.readings(1)[0]["fields"] == {"late": True}
    finally:
        pair.stop()


def test_stop_is_prompt_while_absent_or_idle(serial_gate, line, tmp_path):
    for device in (line.device, tmp_path / "never-there"):
        g = serial_gate(device=device, format="kv", restart_backoff_min="10min",
                        restart_backoff_max="10min")
        if device == line.device:
            g.wait_reading_ready(device)
        else:
            g.wait_log("is absent")
        t0 = time.monotonic()
        assert g.stop() == 0
        assert time.monotonic() - t0 < 5, g.log_text()


def test_full_queue_with_block_holds_the_line_back(serial_gate, line, small_fs):
    g = serial_gate(device=line.device, format="kv", test=False,
                    state_dir=small_fs / "state", queue=dict(FULL_QUEUE, when_full="block"))
    g.wait_reading_ready(line.device)
    peer = Peer(line)
    pad = "p" * 200
    peer.write_line(f"id=0 pad={pad}")
    wait_until(lambda: len(queue_dump(g.state_dir)) == 1, 10, "the first reading")
    # Room for the open segment and about two more: some 3 MiB of readings.
    ballast = leave_free(small_fs, 2560 << 10)

    # Write until the writes block for 3 s: the input stopped reading the pty.
    os.set_blocking(peer.fd, False)
    sent, pending, last_progress = 1, b"", time.monotonic()
    while time.monotonic() - last_progress < 3.0:
        if not pending:
            pending = f"id={sent} pad={pad}\n".encode()
            sent += 1
        try:
            pending = pending[os.write(peer.fd, pending):]
            last_progress = time.monotonic()
        except BlockingIOError:
            time.sleep(0.01)
        assert sent < 200000, "the writes never blocked"
    g.wait_log("the queue is full: not reading")
    stalled = len(queue_dump(g.state_dir))
    assert 5000 < stalled < sent, (stalled, sent)
    time.sleep(1.0)  # a negative check: nothing may arrive while the queue is full
    assert len(queue_dump(g.state_dir)) == stalled

    # Room again: everything that waited in the pty arrives, and what follows.
    ballast.unlink()
    os.set_blocking(peer.fd, True)
    peer.write(pending)
    total = sent + 2000
    peer.write("".join(f"id={i} pad={pad}\n" for i in range(sent, total)))
    g.wait_log("the queue has room again", timeout=30)
    wait_until(lambda: len(queue_dump(g.state_dir)) >= total, 60,
               lambda: f"{total} readings in the queue", interval=0.3)
    assert g.stop() == 0, g.log_text()
    ids = [r["fields"]["id"] for r in queue_dump(g.state_dir)]
    assert ids == list(range(total)), "lost, duplicated or reordered readings"
    assert not g.bad_frames() and g.count_log("dropped") == 0, g.log_text()
