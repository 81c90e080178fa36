# SPDX-License-Identifier: MIT
"""The per-input log rate limit of the real daemon, driven by the `logspam` test plugin:
each input may log daemon.log_rate_limit_burst messages per log_rate_limit_interval
window; the rest are counted and reported as "suppressed N messages" once the window
has ended, either before the input's next message or by the status timer.

logspam logs "spam round R message M of B" B times back to back, once per interval, so
the messages that got through can be named exactly."""

import re
import signal

from conftest import TEST_PLUGIN_DIR

SPAM = re.compile(r"^warning: (?P<input>[\w.-]+): spam round (?P<round>\d+) message "
                  r"(?P<m>\d+) of (?P<burst>\d+)$")
SUPPRESSED = re.compile(r"^warning: (?P<input>[\w.-]+): suppressed (?P<n>\d+) messages$")


def start(daemon, write_config, settings, *inputs):
    groups = ",\n".join(
        f'\t{{ name = "{name}"; plugin = "logspam"; burst = {burst}; interval = "{interval}"; }}'
        for name, burst, interval in inputs)
    path = write_config(f"daemon: {{\n{settings}\n}};\ninputs = (\n{groups}\n);\n")
    return daemon(["-c", str(path), "-P", TEST_PLUGIN_DIR, "--test"])


def spam(d, name, round_=None):
    """[(arrival, message number)] of input name's spam lines (of one round)."""
    out = []
    for t, line in list(d.stderr):
        m = SPAM.match(line)
        if m and m["input"] == name and (round_ is None or int(m["round"]) == round_):
            out.append((t, int(m["m"])))
    return out


def suppressed(d, name):
    """[(arrival, N)] of input name's "suppressed N messages" lines."""
    return [(t, int(m["n"])) for t, line in list(d.stderr)
            if (m := SUPPRESSED.match(line)) and m["input"] == name]


def is_suppressed(name):
    return lambda l: (m := SUPPRESSED.match(l)) is not None and m["input"] == name


def index_of(d, predicate):
    lines = [l for _, l in d.stderr]
    return next(i for i, l in enumerate(lines) if predicate(l))


LIMITED = ('\tlog_rate_limit_burst = 5;\n\tlog_rate_limit_interval = "1s";\n'
           '\tstatus_interval = "1s";')


def test_burst_is_logged_then_the_status_timer_reports_the_rest(daemon, write_config):
    # One burst of 20 in the test's time (the next is an hour away): 5 are logged, and
    # the other 15 are reported by the status timer once the 1 s window has ended.
    d = start(daemon, write_config, LIMITED, ("spam", 20, "1h"))
    t_report, _ = d.wait_for(is_suppressed("spam"), timeout=10)

    logged = spam(d, "spam")
    assert [m for _, m in logged] == [1, 2, 3, 4, 5]
    assert [n for _, n in suppressed(d, "spam")] == [15]
    # Not before the window ends, and at most one status interval after it.
    window_start = logged[0][0]
    assert window_start + 1.0 - 0.1 <= t_report <= window_start + 1.0 + 1.0 + 1.5, \
        f"reported {t_report - window_start:.2f} s after the first message"

    # The report comes once: a later status tick has nothing to add.
    assert d.stop() == 0
    assert [n for _, n in suppressed(d, "spam")] == [15]


def test_next_message_after_the_window_reports_the_suppressed_count_first(daemon,
                                                                          write_config):
    # The status timer is an hour away: the first message of round 2 (1.5 s later, in a
    # new window) must carry the count of round 1, before that message itself.
    settings = ('\tlog_rate_limit_burst = 5;\n\tlog_rate_limit_interval = "1s";\n'
                '\tstatus_interval = "1h";')
    d = start(daemon, write_config, settings, ("spam", 20, "1500ms"))
    d.wait_for(lambda l: (m := SPAM.match(l)) is not None and m["round"] == "2"
               and m["m"] == "5", timeout=10)

    assert [m for _, m in spam(d, "spam", 1)] == [1, 2, 3, 4, 5]
    assert [m for _, m in spam(d, "spam", 2)] == [1, 2, 3, 4, 5]
    assert [n for _, n in suppressed(d, "spam")] == [15]
    report = index_of(d, is_suppressed("spam"))
    assert index_of(d, lambda l: l.endswith("spam round 1 message 5 of 20")) < report
    assert report < index_of(d, lambda l: l.endswith("spam round 2 message 1 of 20"))

    # Round 2's 15 are still owed: they are reported at shutdown rather than lost.
    assert d.stop() == 0
    assert [n for _, n in suppressed(d, "spam")] == [15, 15]


def test_zero_interval_disables_the_limit(daemon, write_config):
    settings = ('\tlog_rate_limit_burst = 5;\n\tlog_rate_limit_interval = "0";\n'
                '\tstatus_interval = "1s";')
    d = start(daemon, write_config, settings, ("spam", 50, "1h"))
    d.wait_for(lambda l: l.endswith("spam round 1 message 50 of 50"), timeout=10)

    # Stopping flushes whatever a limiter still counts, so nothing can hide.
    assert d.stop() == 0
    assert [m for _, m in spam(d, "spam")] == list(range(1, 51))
    assert suppressed(d, "spam") == []


def test_each_input_has_its_own_budget(daemon, write_config):
    d = start(daemon, write_config, LIMITED, ("spam_a", 20, "1h"), ("spam_b", 8, "1h"),
              ("quiet", 2, "1h"))
    d.wait_for(is_suppressed("spam_a"), timeout=10)
    d.wait_for(is_suppressed("spam_b"), timeout=10)
    d.signal(signal.SIGTERM)
    assert d.wait() == 0

    assert [m for _, m in spam(d, "spam_a")] == [1, 2, 3, 4, 5]
    assert [m for _, m in spam(d, "spam_b")] == [1, 2, 3, 4, 5]
    assert [n for _, n in suppressed(d, "spam_a")] == [15]
    assert [n for _, n in suppressed(d, "spam_b")] == [3]
    # Below its burst, an input next to noisy ones loses nothing.
    assert [m for _, m in spam(d, "quiet")] == [1, 2]
    assert suppressed(d, "quiet") == []
