# SPDX-License-Identifier: MIT
"""The daemon as a systemd Type=notify service: READY=1, STATUS=, WATCHDOG=1 and
STOPPING=1 sent to $NOTIFY_SOCKET (a socket of the test's own), and the signals."""

import os
import signal
import statistics
import subprocess

import pytest

from conftest import COAPGATED, PLUGIN_DIR
from notify_capture import NotifySocket

CONFIG = """daemon: {
	status_interval = "1s";
	state_dir = "@STATE@";
};
inputs = (
	{ name = "health"; plugin = "sysinfo"; interval = "100ms"; disk_path = ""; }
);
"""

WATCHDOG_USEC = 200000


@pytest.fixture
def notify(tmp_path):
    with NotifySocket(tmp_path / "notify.sock") as ns:
        yield ns


def service_env(notify, **extra):
    """The environment systemd would give us, and nothing inherited that could leak in."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM",
                        "LISTEN_FDS", "LISTEN_PID")}
    env["NOTIFY_SOCKET"] = notify.address
    env.update({k: str(v) for k, v in extra.items()})
    return env


def has(line):
    return lambda m: line in m.lines


def is_watchdog(m):
    return "WATCHDOG=1" in m.lines


def watchdog_gaps_ms(messages):
    times = [m.time for m in messages if is_watchdog(m)]
    return [(b - a) * 1000 for a, b in zip(times, times[1:])]


def start(daemon, write_config, notify, *args, **env):
    path = write_config("")
    path = write_config(CONFIG.replace("@STATE@", str(path.parent / "state")))
    d = daemon(["-c", str(path), "-P", PLUGIN_DIR, *args], env=service_env(notify, **env))
    ready, _ = notify.wait_for(has("READY=1"), timeout=15)
    return d, ready


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_ready_status_and_stopping(daemon, write_config, notify, sig):
    d, ready = start(daemon, write_config, notify)

    # A STATUS= line came with the start, and the periodic one counts the input.
    first = notify.snapshot()[:ready + 1]
    assert any("inputs:" in (m.value("STATUS") or "") for m in first), first
    _, status = notify.wait_for(lambda m: "inputs: 1 running" in (m.value("STATUS") or ""),
                                after=ready, timeout=10)
    assert status.value("STATUS").startswith("running; ")
    d.wait_for(lambda l: l.startswith("info: queue: ") and "0 segments" in l)
    d.wait_for(lambda l: l == "info: coapgated started with 1 input")

    d.signal(sig)
    assert d.wait() == 0
    stopping, message = notify.wait_for(has("STOPPING=1"), after=ready, timeout=5)
    assert message.value("STATUS") == "stopping"
    assert any("stopping" in l and "received" in l for _, l in d.stderr), d.stderr
    # No watchdog was asked for, so none was sent.
    assert not any(is_watchdog(m) for m in notify.snapshot())


def test_status_counts_readings(daemon, write_config, notify):
    _, ready = start(daemon, write_config, notify)

    def readings(m):
        status = m.value("STATUS") or ""
        if "readings: " not in status:
            return 0
        return int(status.split("readings: ")[1].split(";")[0])

    # At 100 ms, a 1 s status interval sees several readings per update.
    notify.wait_for(lambda m: readings(m) >= 5, after=ready, timeout=10)


def test_watchdog_pings_every_half_period(daemon, write_config, notify):
    d, ready = start(daemon, write_config, notify, "--log-level", "debug",
                     WATCHDOG_USEC=WATCHDOG_USEC)
    d.wait_for(lambda l: "systemd watchdog enabled, pinging every 100 ms" in l)

    count = 0

    def twelfth_ping(m):
        nonlocal count
        count += is_watchdog(m)
        return count == 12

    notify.wait_for(twelfth_ping, after=ready, timeout=10)
    gaps = watchdog_gaps_ms(notify.snapshot()[ready:])
    assert 70 <= statistics.median(gaps) <= 150, gaps
    # A gap as long as WATCHDOG_USEC is what makes systemd kill the service.
    assert max(gaps) < WATCHDOG_USEC / 1000, gaps
    assert d.proc.poll() is None
    d.signal()
    assert d.wait() == 0


def test_watchdog_pid_of_another_process_is_ignored(daemon, write_config, notify):
    _, ready = start(daemon, write_config, notify, WATCHDOG_USEC=WATCHDOG_USEC,
                     WATCHDOG_PID=1)
    # The periodic STATUS= comes a second later: time enough for ten pings.
    notify.wait_for(lambda m: "inputs: 1 running" in (m.value("STATUS") or ""), after=ready)
    assert not any(is_watchdog(m) for m in notify.snapshot())


@pytest.fixture
def wrapped(tmp_path):
    """wrapped(args, env) -> Popen of coapgated started through `sh -c 'exec'`, so that
    $$ is the daemon's PID before it runs; every one is stopped at teardown."""
    started = []

    def start(args, env):
        stderr = open(tmp_path / f"stderr{len(started)}", "w+")
        p = subprocess.Popen(["/bin/sh", "-c", 'WATCHDOG_PID=$$ exec "$0" "$@"', COAPGATED,
                              *args], env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        started.append((p, stderr))
        return p

    yield start
    for p, stderr in started:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        stderr.close()


def test_watchdog_pid_of_the_daemon_is_honoured(wrapped, write_config, notify):
    path = write_config(CONFIG)
    p = wrapped(["-c", str(path), "-P", PLUGIN_DIR],
                service_env(notify, WATCHDOG_USEC=WATCHDOG_USEC))
    ready, _ = notify.wait_for(has("READY=1"), timeout=15)
    notify.wait_for(is_watchdog, after=ready, timeout=5)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=15) == 0
    notify.wait_for(has("STOPPING=1"), after=ready, timeout=5)


def test_sighup_does_not_stop(daemon, write_config, notify):
    d, ready = start(daemon, write_config, notify, WATCHDOG_USEC=WATCHDOG_USEC)
    notify.wait_for(is_watchdog, after=ready)

    d.signal(signal.SIGHUP)
    d.wait_for(lambda l: l.startswith("notice: SIGHUP: reloading is not supported"))
    after_hup = len(notify.snapshot())
    # Still alive and still serving its loop.
    notify.wait_for(is_watchdog, after=after_hup, timeout=5)
    assert d.proc.poll() is None
    assert not any("STOPPING=1" in m.lines for m in notify.snapshot())

    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    notify.wait_for(has("STOPPING=1"), after=after_hup, timeout=5)
