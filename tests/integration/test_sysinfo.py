# SPDX-License-Identifier: MIT
"""The sysinfo plugin run by `coapgated --test`: the JSON lines it prints, the values
in them checked against /proc and statvfs, its timing, and the instance selection."""

import json
import os
import statistics
import time

from conftest import PLUGIN_DIR, run

INTERVAL_MS = 100


def sysinfo(name, disk_path="", **extra):
    """One input group of a configuration file."""
    options = {"name": name, "plugin": "sysinfo", "interval": f"{INTERVAL_MS}ms",
               "disk_path": disk_path, **extra}
    body = " ".join(f"{k} = {json.dumps(v)};" for k, v in options.items())
    return "{ " + body + " }"


def config(*inputs):
    return "inputs = (\n\t" + ",\n\t".join(inputs) + "\n);\n"


def run_test(path, *args, timeout=30):
    return run(["-c", str(path), "-P", PLUGIN_DIR, "--test", *args], timeout=timeout)


def readings(stdout):
    """Each line must be one JSON object on its own."""
    lines = stdout.splitlines()
    assert stdout.endswith("\n") or not stdout
    return [json.loads(line) for line in lines]


def meminfo(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def proc_uptime():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def test_count_prints_exactly_n_lines(write_config):
    path = write_config(config(sysinfo("health")))
    r = run_test(path, "--count", "5")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 5
    assert len(readings(r.stdout)) == 5
    assert "printed 5 readings" in r.stderr


def test_reading_format_and_values(write_config, tmp_path):
    path = write_config(config(sysinfo("health", disk_path=str(tmp_path))))
    before_ms = time.time() * 1000
    r = run_test(path, "--count", "3")
    after_ms = time.time() * 1000
    uptime_after = proc_uptime()
    vfs = os.statvfs(tmp_path)
    assert r.returncode == 0, r.stderr

    for reading in readings(r.stdout):
        assert set(reading) == {"input", "topic", "ts", "fields"}
        assert reading["input"] == "health"
        assert reading["topic"] == "health"  # the default topic is the name
        assert type(reading["ts"]) is int
        assert before_ms - 2000 <= reading["ts"] <= after_ms + 2000

        fields = reading["fields"]
        assert set(fields) == {"load1", "load5", "load15", "mem_available", "uptime",
                               "disk_free"}
        for key in ("load1", "load5", "load15", "uptime"):
            assert type(fields[key]) is float, (key, fields[key])
        for key in ("mem_available", "disk_free"):
            assert type(fields[key]) is int, (key, fields[key])

        loads = os.getloadavg()
        for key, now in zip(("load1", "load5", "load15"), loads):
            assert fields[key] >= 0
            assert abs(fields[key] - now) < max(2.0, now), (key, fields[key], now)
        assert 0 < fields["mem_available"] <= meminfo("MemTotal")
        assert uptime_after - 10 <= fields["uptime"] <= uptime_after
        free = vfs.f_bavail * vfs.f_frsize
        slack = max(256 << 20, vfs.f_blocks * vfs.f_frsize // 100)
        assert abs(fields["disk_free"] - free) <= slack, (fields["disk_free"], free)


def test_configured_topic(write_config):
    path = write_config(config(sysinfo("gw", topic="gateway/health")))
    r = run_test(path, "--count", "2")
    assert r.returncode == 0, r.stderr
    for reading in readings(r.stdout):
        assert reading["input"] == "gw"
        assert reading["topic"] == "gateway/health"


def test_interval_is_kept_without_drift(write_config):
    n = 20
    path = write_config(config(sysinfo("health")))
    r = run_test(path, "--count", str(n))
    assert r.returncode == 0, r.stderr
    ts = [reading["ts"] for reading in readings(r.stdout)]
    assert len(ts) == n
    gaps = [b - a for a, b in zip(ts, ts[1:])]
    assert all(0 < g < 3 * INTERVAL_MS for g in gaps), gaps
    assert 0.8 * INTERVAL_MS <= statistics.median(gaps) <= 1.2 * INTERVAL_MS, gaps
    # Deadlines follow from the first one, so late wake-ups do not add up.
    span = ts[-1] - ts[0]
    assert abs(span - (n - 1) * INTERVAL_MS) <= 150, (span, gaps)


def test_duration_stops_the_run(write_config):
    duration_s = 1.5
    path = write_config(config(sysinfo("health")))
    started = time.monotonic()
    r = run_test(path, "--duration", f"{int(duration_s * 1000)}ms")
    elapsed = time.monotonic() - started
    assert r.returncode == 0, r.stderr
    assert duration_s <= elapsed < duration_s + 3, elapsed
    got = readings(r.stdout)
    expected = duration_s * 1000 / INTERVAL_MS
    assert 0.6 * expected <= len(got) <= expected + 5, len(got)
    assert f"printed {len(got)} readings" in r.stderr


def test_two_instances_with_their_topics(write_config):
    path = write_config(config(sysinfo("one", topic="site/one"),
                               sysinfo("two", topic="site/two")))
    r = run_test(path, "--count", "8")
    assert r.returncode == 0, r.stderr
    got = readings(r.stdout)
    assert len(got) == 8
    topics = {(x["input"], x["topic"]) for x in got}
    assert topics == {("one", "site/one"), ("two", "site/two")}
    assert "coapgated started with 2 inputs" in r.stderr


def test_input_option_selects_one(write_config):
    path = write_config(config(sysinfo("one"), sysinfo("two"), sysinfo("three")))
    r = run_test(path, "--count", "4", "--input", "two")
    assert r.returncode == 0, r.stderr
    assert {x["input"] for x in readings(r.stdout)} == {"two"}
    assert "coapgated started with 1 input\n" in r.stderr + "\n"

    r = run_test(path, "--count", "6", "--input", "one", "--input", "three")
    assert r.returncode == 0, r.stderr
    assert {x["input"] for x in readings(r.stdout)} == {"one", "three"}


def test_missing_disk_path_warns_and_omits_disk_free(write_config, tmp_path):
    missing = tmp_path / "no" / "such" / "dir"
    path = write_config(config(sysinfo("health", disk_path=str(missing))))
    r = run_test(path, "--count", "2")
    assert r.returncode == 0, r.stderr
    got = readings(r.stdout)
    assert len(got) == 2
    for reading in got:
        assert set(reading["fields"]) == {"load1", "load5", "load15", "mem_available",
                                          "uptime"}
    warnings = [l for l in r.stderr.splitlines() if l.startswith("warning: health: ")]
    assert warnings, r.stderr
    assert f'cannot stat "{missing}": No such file or directory' in warnings[0]


def test_empty_disk_path_means_no_disk_free_and_no_warning(write_config):
    path = write_config(config(sysinfo("health", disk_path="")))
    r = run_test(path, "--count", "2")
    assert r.returncode == 0, r.stderr
    assert all("disk_free" not in x["fields"] for x in readings(r.stdout))
    assert "warning" not in r.stderr


def test_disabled_instance_is_not_started(write_config):
    path = write_config(config(sysinfo("on"), sysinfo("off", enabled=False)))
    r = run_test(path, "--count", "4")
    assert r.returncode == 0, r.stderr
    assert {x["input"] for x in readings(r.stdout)} == {"on"}
    assert "info: off: disabled in the configuration, not started" in r.stderr
    assert "coapgated started with 1 input\n" in r.stderr + "\n"
