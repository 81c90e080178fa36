# SPDX-License-Identifier: MIT
"""Logging to the journal, proven on the wire: coapgated runs in a private mount
namespace where /run/systemd/journal/socket is a socket of journal_capture.py, which
decodes the native protocol. Also where log_target = "auto" sends messages."""

import json
import os
import shutil
import subprocess
import sys

import pytest

import journal_capture
from conftest import COAPGATED, PLUGIN_DIR, SOURCE_DIR

PRIORITY = {"error": 3, "warning": 4, "notice": 5, "info": 6, "debug": 7}


@pytest.fixture(scope="module", autouse=True)
def needs_namespaces():
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs over /run in a private mount namespace")
    if not shutil.which("unshare"):
        pytest.skip("needs unshare(1) from util-linux for a private mount namespace")


@pytest.fixture
def capture(tmp_path, write_config):
    """capture(config_text, *args, **options) -> the helper's JSON result."""

    def run(config_text, *args, timeout=20, **options):
        config = write_config(config_text.replace("@STATE@", str(tmp_path / "state")))
        argv = [COAPGATED, "-c", str(config), "-P", PLUGIN_DIR, *args]
        cmd = journal_capture.command(sys.executable, journal_capture.mount_namespace(),
                                      tmp_path, argv, timeout=timeout, **options)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30)
        if r.returncode == journal_capture.EXIT_SKIP:
            pytest.skip(r.stderr.strip())
        if r.returncode != 0 and "unshare failed" in r.stderr:
            pytest.skip(f"cannot create a mount namespace: {r.stderr.strip()}")
        assert r.returncode == 0, r.stderr
        result = json.loads(r.stdout)
        assert not result["timed_out"], result
        return result

    return run


def config(log_target):
    """One sysinfo instance whose disk_path is missing, so that it warns."""
    return f"""daemon: {{
	log_target = "{log_target}";
	state_dir = "@STATE@";
}};
inputs = (
	{{ name = "health"; plugin = "sysinfo"; interval = "100ms";
	   disk_path = "/nonexistent/coapgate-test"; }}
);
"""


def one(entry, key):
    """The single value of a field; a field may not repeat."""
    values = entry.get(key)
    assert values is not None, f"{key} missing in {entry}"
    assert len(values) == 1, f"{key} repeats in {entry}"
    return values[0]


def find(entries, text):
    found = [e for e in entries if text in one(e, "MESSAGE")]
    assert found, f"no entry with {text!r} in:\n" + "\n".join(map(str, entries))
    return found[0]


def source_line(relpath, text):
    for n, line in enumerate((SOURCE_DIR / relpath).read_text().splitlines(), 1):
        if text in line:
            return n
    raise AssertionError(f"{text!r} not in {relpath}")


def assert_code(entry, relpath, func, text):
    """CODE_FILE/LINE/FUNC name the call in relpath whose line has text (a call may
    continue on the next lines)."""
    assert one(entry, "CODE_FILE").endswith(relpath), entry
    assert one(entry, "CODE_FUNC") == func, entry
    first = source_line(relpath, text)
    assert first <= int(one(entry, "CODE_LINE")) <= first + 2, (entry, first)


def test_journal_fields(capture):
    result = capture(config("journal"), "--log-level", "debug", stop_on="cannot stat",
                     env=["WATCHDOG_USEC=10000000"])
    assert result["rc"] == 0, result
    entries = result["entries"]
    assert entries, result

    for e in entries:
        assert one(e, "SYSLOG_IDENTIFIER") == "coapgated"
        assert one(e, "PRIORITY") in {str(p) for p in PRIORITY.values()}
        for key in ("MESSAGE", "CODE_FILE", "CODE_LINE", "CODE_FUNC"):
            assert one(e, key)

    # Daemon-wide messages carry no COAPGATE_INPUT.
    info = find(entries, "queue: ")
    assert one(info, "MESSAGE").endswith(": 0 segments, readings up to seq 0, "
                                         "acknowledged up to 0")
    assert one(info, "PRIORITY") == "6"
    assert "COAPGATE_INPUT" not in info
    assert_code(info, "daemon/queue_recover.c", "queue_recover", "log_info(\"queue: %s: %zu")

    debug = find(entries, "systemd watchdog enabled")
    assert one(debug, "MESSAGE") == "systemd watchdog enabled, pinging every 5000 ms"
    assert one(debug, "PRIORITY") == "7"
    assert "COAPGATE_INPUT" not in debug
    assert_code(debug, "daemon/service.c", "add_event_sources", "systemd watchdog enabled")

    started = find(entries, "coapgated started with")
    assert one(started, "MESSAGE") == "coapgated started with 1 input"
    assert one(started, "PRIORITY") == "6"
    assert "COAPGATE_INPUT" not in started

    stopping = find(entries, "stopping")
    assert one(stopping, "PRIORITY") == "6"
    assert "COAPGATE_INPUT" not in stopping

    # Instance messages of the daemon name the instance.
    input_started = find(entries, 'started (plugin "sysinfo"')
    assert one(input_started, "COAPGATE_INPUT") == "health"
    assert one(input_started, "PRIORITY") == "6"
    assert one(input_started, "MESSAGE").endswith('started (plugin "sysinfo" 1.0, topic "health")')
    assert_code(input_started, "daemon/input.c", "input_start", '"started (plugin')

    # And a plugin's message names the plugin's own source.
    warning = find(entries, "cannot stat")
    assert one(warning, "COAPGATE_INPUT") == "health"
    assert one(warning, "PRIORITY") == "4"
    assert one(warning, "MESSAGE").endswith(
        'cannot stat "/nonexistent/coapgate-test": No such file or directory')
    assert_code(warning, "plugins/sysinfo/sysinfo.c", "sysinfo_sample", '"cannot stat')

    # Nothing that went to the journal also went to stderr. Only what came before the
    # configuration chose the target may be there.
    for line in result["stderr"].splitlines():
        assert "loaded plugin" in line, result["stderr"]


def test_journal_error_priority(capture):
    result = capture(config("journal"), "--test", "--count", "1", "--input", "nosuch")
    assert result["rc"] == 64, result
    error = find(result["entries"], 'no input named "nosuch"')
    assert one(error, "PRIORITY") == "3"
    assert "COAPGATE_INPUT" not in error
    assert_code(error, "daemon/service.c", "create_inputs", "no input named")
    assert result["stderr"] == ""


def test_auto_uses_journal_when_stderr_is_the_journal_stream(capture):
    result = capture(config("auto"), "--test", "--count", "2", "--log-level", "debug",
                     journal_stream="match")
    assert result["rc"] == 0, result
    assert len(result["stdout"].splitlines()) == 2
    assert result["stderr"] == ""
    entries = result["entries"]
    warning = find(entries, "cannot stat")
    assert one(warning, "COAPGATE_INPUT") == "health"
    assert one(warning, "PRIORITY") == "4"
    # Even what is logged before the configuration is read.
    loaded = find(entries, 'loaded plugin "sysinfo"')
    assert one(loaded, "PRIORITY") == "7"
    printed = find(entries, "printed 2 readings")
    assert "COAPGATE_INPUT" not in printed


@pytest.mark.parametrize("journal_stream", ["none", "mismatch"])
def test_auto_uses_stderr_otherwise(capture, journal_stream):
    result = capture(config("auto"), "--test", "--count", "2", journal_stream=journal_stream)
    assert result["rc"] == 0, result
    assert result["entries"] == []
    lines = result["stderr"].splitlines()
    assert "info: health: started (plugin \"sysinfo\" 1.0, topic \"health\")" in lines
    assert "info: coapgated started with 1 input" in lines
    assert ("warning: health: cannot stat \"/nonexistent/coapgate-test\": "
            "No such file or directory") in lines


def test_stderr_on_the_journal_stream_carries_priorities(capture):
    result = capture(config("stderr"), "--test", "--count", "2", journal_stream="match")
    assert result["rc"] == 0, result
    assert result["entries"] == []
    lines = result["stderr"].splitlines()
    assert "<6>coapgated started with 1 input" in lines
    assert "<4>health: cannot stat \"/nonexistent/coapgate-test\": No such file or directory" \
        in lines


@pytest.mark.parametrize("journal", ["none", "dead"])
def test_journal_gone_falls_back_to_stderr(capture, journal):
    # log.c: "If the journal is gone there is nobody to tell; fall back to stderr".
    # Without a socket at all, libsystemd's sd_journal_sendv() returns 0 for ENOENT.
    result = capture(config("journal"), "--test", "--count", "2", journal=journal)
    assert result["rc"] == 0, result
    lines = result["stderr"].splitlines()
    assert "info: coapgated started with 1 input" in lines
    assert ("warning: health: cannot stat \"/nonexistent/coapgate-test\": "
            "No such file or directory") in lines
