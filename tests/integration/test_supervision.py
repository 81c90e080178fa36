# SPDX-License-Identifier: MIT
"""Supervision of input instances by the real daemon in --test mode, with the test
plugins of tests/plugins: restarts with exponential backoff and its reset, recovery,
stopping during a backoff, a plugin that ignores the stop request, and readings that
cg_emit() must refuse.

Restart delays are measured with the `failing` plugin's own "run N starting at T" lines,
where T is CLOCK_MONOTONIC (Python's time.monotonic() on Linux): the delay between two
runs is then exact however late the line crosses the pipe, and a loaded machine can only
make it longer. Arrival times of the lines are checked to be consistent with T."""

import json
import re
import signal
import time

from conftest import TEST_PLUGIN_DIR

# Lower bound: the daemon may never restart early (the plugin prints T with 1 us
# resolution). Upper bound: scheduling slack on a loaded 2-core machine under ASan.
EARLY_S = 0.002
LATE_S = 0.3

RUN_STARTING = re.compile(r"^info: (?P<input>[\w.-]+): run (?P<n>\d+) starting at (?P<t>[\d.]+)$")
RUN_FAILED = re.compile(r"^error: (?P<input>[\w.-]+): run failed: (?P<error>.+); "
                        r"restarting in (?P<delay>.+)$")


def config(*inputs, daemon_settings='log_rate_limit_interval = "0";'):
    """A configuration text with one input group per argument (its body)."""
    groups = ",\n".join("\t{\n%s\n\t}" % body for body in inputs)
    return f"daemon: {{\n\t{daemon_settings}\n}};\ninputs = (\n{groups}\n);\n"


def start(daemon, write_config, text, *extra):
    path = write_config(text)
    return daemon(["-c", str(path), "-P", TEST_PLUGIN_DIR, "--test", *extra])


def runs(d, name):
    """[(n, plugin_time, arrival_time)] of the "run N starting" lines of input name."""
    found = []
    for arrived, line in list(d.stderr):
        m = RUN_STARTING.match(line)
        if m and m["input"] == name:
            found.append((int(m["n"]), float(m["t"]), arrived))
    return found


def restart_delays(d, name):
    """The delays named by the "run failed: ...; restarting in X" lines, in order."""
    return [m["delay"] for _, line in list(d.stderr)
            if (m := RUN_FAILED.match(line)) and m["input"] == name]


def nth(predicate, n):
    """A predicate for Daemon.wait_for() that is true at the n-th line matching predicate
    (wait_for() offers each line once)."""
    seen = 0

    def match(line):
        nonlocal seen
        seen += bool(predicate(line))
        return seen >= n

    return match


def wait_run(d, name, n, timeout):
    return d.wait_for(lambda l: (m := RUN_STARTING.match(l)) and m["input"] == name
                      and int(m["n"]) == n, timeout=timeout)


def assert_gaps(d, name, expected):
    """The time from each run's start to the next one's is expected[i] seconds."""
    starts = runs(d, name)
    assert [n for n, _, _ in starts[:len(expected) + 1]] == list(range(1, len(expected) + 2))
    for n, t, arrived in starts:
        # Same clock: a line arrives after the plugin wrote it, and not much later.
        assert t <= arrived < t + 5, f"run {n}: plugin time {t}, arrived {arrived}"
    gaps = [b[1] - a[1] for a, b in zip(starts, starts[1:])][:len(expected)]
    for i, (gap, want) in enumerate(zip(gaps, expected)):
        assert want - EARLY_S <= gap <= want + LATE_S, \
            f"restart {i + 1}: {gap:.3f} s after the previous run started, expected " \
            f"{want} s; all gaps: {[round(g, 3) for g in gaps]}"


FLAKY = """\t\tname = "flaky";
\t\tplugin = "failing";
\t\trestart_backoff_min = "200ms";
\t\trestart_backoff_max = "1s";
"""


def test_failed_runs_restart_with_doubling_backoff_up_to_max(daemon, write_config):
    d = start(daemon, write_config, config(FLAKY + '\t\tfail_count = -1;'))
    wait_run(d, "flaky", 6, timeout=15)

    assert_gaps(d, "flaky", [0.2, 0.4, 0.8, 1.0, 1.0])
    assert restart_delays(d, "flaky")[:5] == ["200ms", "400ms", "800ms", "1s", "1s"]
    # The plugin's EIO is what the daemon reports.
    failed = [l for _, l in d.stderr if RUN_FAILED.match(l)]
    assert all("Input/output error" in l for l in failed), failed


def test_backoff_resets_after_a_run_that_lasted_restart_backoff_reset(daemon, write_config):
    # Runs 1-3 fail at once (200, 400, 800 ms); from run 4 on each run stays up 700 ms,
    # longer than restart_backoff_reset, so the next delay is the minimum again.
    d = start(daemon, write_config, config(
        FLAKY + '\t\trestart_backoff_reset = "500ms";\n\t\thealthy_for = "700ms";\n'
        '\t\thealthy_after = 3;'))
    wait_run(d, "flaky", 6, timeout=15)

    assert restart_delays(d, "flaky")[:5] == ["200ms", "400ms", "800ms", "200ms", "200ms"]
    assert_gaps(d, "flaky", [0.2, 0.4, 0.8, 0.7 + 0.2, 0.7 + 0.2])


def test_backoff_keeps_growing_after_runs_shorter_than_restart_backoff_reset(daemon,
                                                                             write_config):
    # The control of the test above: runs of 300 ms are not healthy enough for a reset.
    d = start(daemon, write_config, config(
        FLAKY + '\t\trestart_backoff_reset = "500ms";\n\t\thealthy_for = "300ms";\n'
        '\t\thealthy_after = 3;'))
    wait_run(d, "flaky", 6, timeout=15)

    assert restart_delays(d, "flaky")[:5] == ["200ms", "400ms", "800ms", "1s", "1s"]
    assert_gaps(d, "flaky", [0.2, 0.4, 0.8, 0.3 + 1.0, 0.3 + 1.0])


def test_recovered_plugin_delivers_readings(daemon, write_config):
    d = start(daemon, write_config, config(
        '\t\tname = "flaky";\n\t\tplugin = "failing";\n\t\trestart_backoff_min = "100ms";\n'
        '\t\tfail_count = 2;\n\t\tinterval = "50ms";'), "--count", "3")
    assert d.wait(timeout=20) == 0, "\n".join(l for _, l in d.stderr)

    readings = [json.loads(l) for _, l in d.stdout]
    assert [r["input"] for r in readings] == ["flaky"] * 3
    assert [r["fields"] for r in readings] == [{"run": 3, "n": n} for n in (1, 2, 3)]
    assert [n for n, _, _ in runs(d, "flaky")] == [1, 2, 3]
    assert restart_delays(d, "flaky") == ["100ms", "200ms"]


def test_sigterm_during_backoff_stops_at_once(daemon, write_config):
    d = start(daemon, write_config, config(
        '\t\tname = "flaky";\n\t\tplugin = "failing";\n\t\trestart_backoff_min = "30s";'))
    d.wait_for(lambda l: RUN_FAILED.match(l) and "restarting in 30s" in l)

    sent = time.monotonic()
    d.signal(signal.SIGTERM)
    rc = d.wait(timeout=10)
    took = time.monotonic() - sent
    assert rc == 0, "\n".join(l for _, l in d.stderr)
    assert took < 1.0, f"the daemon took {took:.2f} s to stop"
    assert [n for n, _, _ in runs(d, "flaky")] == [1]


def test_stuck_plugin_ends_shutdown_after_stop_timeout(daemon, write_config):
    d = start(daemon, write_config, config(
        '\t\tname = "hang";\n\t\tplugin = "stuck";\n\t\tseconds = 60;',
        '\t\tname = "count";\n\t\tplugin = "failing";\n\t\tfail_count = 0;',
        daemon_settings='stop_timeout = "500ms";'))
    d.wait_for(lambda l: l.startswith("info: hang: stuck for 60 s"))
    d.wait_lines(1, stream="stdout")  # the healthy input runs too

    sent = time.monotonic()
    d.signal(signal.SIGTERM)
    rc = d.wait(timeout=10)
    took = time.monotonic() - sent
    stderr = [l for _, l in d.stderr]

    assert rc != 0, "\n".join(stderr)
    assert 0.5 - 0.05 <= took < 0.5 + 3, f"shutdown took {took:.2f} s, stop_timeout is 0.5 s"
    hang = [l for l in stderr if l.startswith("error: hang: ") and "did not stop in time" in l]
    assert hang, "\n".join(stderr)
    assert "error: exiting with inputs still running" in stderr
    # Only the stuck input is blamed: the healthy one stopped when asked.
    assert not [l for l in stderr if l.startswith("error: count: ")]


INVALID_REASONS = {
    "no fields": "a reading has 1 to 64 fields, this one has 0",
    "NULL fields": "a reading has 1 to 64 fields",
    "too many fields": "this one has 65",
    "bad field name": '"bad name!"',
    "empty field name": 'field 0: the name ""',
    "NULL field name": "(null)",
    "duplicate field name": '"x" appears twice',
    "negative timestamp": "negative",
    "bad topic": '"a//b"',
    "invalid UTF-8": "not valid UTF-8",
    "NULL string": "the string is NULL",
    "string too long": "longer than 512 bytes",
    "unknown type": "unknown type 99",
    "NULL reading": "NULL",
}


def test_invalid_readings_are_rejected_with_a_reason_and_valid_ones_printed(daemon,
                                                                            write_config):
    d = start(daemon, write_config, config(
        '\t\tname = "bad";\n\t\tplugin = "invalid";\n\t\tinterval = "100ms";'),
        "--count", "2")
    assert d.wait(timeout=20) == 0, "\n".join(l for _, l in d.stderr)
    stderr = [l for _, l in d.stderr]

    # Only the valid readings reach the output, unchanged.
    readings = [json.loads(l) for _, l in d.stdout]
    assert [r["fields"] for r in readings] == [{"round": 1}, {"round": 2}]
    assert all(r["input"] == "bad" and r["topic"] == "bad" for r in readings)

    # cg_emit() returned what the plugin expected for every case ("expected" marks a
    # wrong return code), and the daemon stayed up: no restarts.
    assert not [l for l in stderr if "expected" in l], "\n".join(stderr)
    assert not [l for l in stderr if RUN_FAILED.match(l)]

    # Each refusal is logged by the daemon, just before the plugin's line about it.
    # Only the input's own lines are in order: the main thread logs concurrently.
    stderr = [l for l in stderr if l.split(": ", 2)[1:2] == ["bad"]]
    case = re.compile(r'^info: bad: case "(?P<label>[^"]+)": cg_emit returned (?P<r>-?\d+)$')
    first_round = []
    for i, line in enumerate(stderr):
        m = case.match(line)
        if not m:
            continue
        if m["label"] == "valid":
            assert m["r"] == "0"
            break
        assert m["r"] == "-22", line
        before = stderr[i - 1]
        assert before.startswith("warning: bad: rejected a reading: "), (m["label"], before)
        assert INVALID_REASONS[m["label"]] in before, (m["label"], before)
        first_round.append(m["label"])
    assert first_round == list(INVALID_REASONS)


def test_run_returning_without_a_stop_request_is_restarted(daemon, write_config):
    # stuck's run() returns 0 after 1 s on its own: the daemon did not ask, so that is a
    # failure too, restarted after the backoff.
    d = start(daemon, write_config, config(
        '\t\tname = "quitter";\n\t\tplugin = "stuck";\n\t\tseconds = 1;\n'
        '\t\trestart_backoff_min = "200ms";',
        daemon_settings='log_rate_limit_interval = "0";\n\tstop_timeout = "5s";'))
    d.wait_for(lambda l: l.startswith("warning: quitter: run returned without being asked to "
                                      "stop; restarting in 200ms"), timeout=10)
    d.wait_for(nth(lambda l: l.startswith("info: quitter: stuck for 1 s"), 2), timeout=10)

    # A run that ends within stop_timeout after the request is a clean shutdown.
    d.signal(signal.SIGTERM)
    assert d.wait(timeout=10) == 0, "\n".join(l for _, l in d.stderr)
    assert not [l for _, l in d.stderr if "did not stop in time" in l]


def test_sleeping_practically_forever_lasts_until_stopped(daemon, write_config):
    # healthy_for goes straight to cg_sleep(): about 584,000 years, which must not wrap
    # around when added to the clock and end the sleep at once.
    d = start(daemon, write_config, config(
        '\t\tname = "sleeper";\n\t\tplugin = "failing";\n'
        '\t\thealthy_for = "18446744073709551609us";'), "--duration", "1s")
    assert d.wait(timeout=10) == 0
    stderr = [l for _, l in d.stderr]
    assert [n for n, _, _ in runs(d, "sleeper")] == [1], "\n".join(stderr)
    assert not [l for l in stderr if RUN_FAILED.match(l)], "\n".join(stderr)


def test_counter_plugin_counts_with_every_field_type(daemon, write_config):
    # Not supervision as such: the counter test plugin that other tests build on emits
    # exactly n = 1..count, each field derived from n, and then idles until stopped.
    d = start(daemon, write_config, config(
        '\t\tname = "fast";\n\t\tplugin = "counter";\n\t\tinterval = "0";\n\t\tcount = 500;',
        '\t\tname = "slow";\n\t\tplugin = "counter";\n\t\tinterval = "50ms";\n\t\tcount = 3;'))
    d.wait_lines(503, stream="stdout", timeout=20)
    d.signal(signal.SIGTERM)
    assert d.wait(timeout=10) == 0, "\n".join(l for _, l in d.stderr)

    readings = [json.loads(l) for _, l in d.stdout]
    for name, count in (("fast", 500), ("slow", 3)):
        fields = [r["fields"] for r in readings if r["input"] == name]
        assert fields == [{"n": n, "half": n / 2, "even": n % 2 == 0, "text": f"n={n}"}
                          for n in range(1, count + 1)]
    # JSON keeps f64 recognisable: 1.0, not 1.
    assert '"half":1.0' in next(l for _, l in d.stdout if '"n":2,' in l)
