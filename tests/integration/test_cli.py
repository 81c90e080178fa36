# SPDX-License-Identifier: MIT
"""The command line: help and version, usage errors (exit 64), and `-t` checking
configurations (exit 0 or 78) with every error reported as FILE:LINE."""

import re

from conftest import PLUGIN_DIR, SOURCE_DIR, run

EX_USAGE = 64
EX_CONFIG = 78

SYSINFO_INPUT = """inputs = (
	{
		name = "a";
		plugin = "sysinfo";
		interval = "1s";
		disk_path = "";
	}
);
"""


def check(path, *extra):
    return run(["-t", "-c", str(path), "-P", PLUGIN_DIR, *extra])


def error_lines(stderr, path, line, text):
    """The stderr lines that point at path:line and contain text."""
    where = f"{path}:{line}: "
    return [l for l in stderr.splitlines() if where in l and text in l]


def assert_error_at(result, path, line, text):
    assert result.returncode == EX_CONFIG, result.stderr
    found = error_lines(result.stderr, path, line, text)
    assert found, f"no error at {path}:{line} mentioning {text!r}; stderr:\n{result.stderr}"
    return found


# ---- help, version, usage errors ----

def test_version_prints_version_and_plugin_abi():
    project = (SOURCE_DIR / "CMakeLists.txt").read_text()
    version = re.search(r"project\(coapgate\s+VERSION\s+(\S+)", project).group(1)
    header = (SOURCE_DIR / "daemon/include/coapgate/plugin.h").read_text()
    major = re.search(r"#define CG_ABI_MAJOR (\d+)", header).group(1)
    minor = re.search(r"#define CG_ABI_MINOR (\d+)", header).group(1)

    r = run(["--version"])
    assert r.returncode == 0
    assert r.stdout == f"coapgated {version} (plugin ABI {major}.{minor})\n"


def test_help_exits_0_and_lists_options():
    for flag in ("--help", "-h"):
        r = run([flag])
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("Usage: coapgated")
        for option in ("--config", "--check-config", "--test", "--count", "--duration",
                       "--input", "--plugin-dir", "--log-level", "--help-plugin",
                       "--help-config", "--version"):
            assert option in r.stdout


def test_unknown_option_is_a_usage_error():
    r = run(["--no-such-option"])
    assert r.returncode == EX_USAGE
    assert "no-such-option" in r.stderr
    assert "Usage: coapgated" in r.stderr
    assert r.stdout == ""


def test_stray_argument_is_a_usage_error():
    r = run(["-t", "stray"])
    assert r.returncode == EX_USAGE
    assert 'unexpected argument "stray"' in r.stderr


def test_count_and_duration_need_test():
    for args in (["--count", "3"], ["--duration", "1s"]):
        r = run(args)
        assert r.returncode == EX_USAGE, args
        assert "go with --test" in r.stderr


def test_bad_values_of_options_are_usage_errors():
    for args in (["--test", "--count", "0"], ["--test", "--count", "many"],
                 ["--test", "--duration", "soon"], ["--log-level", "loud"]):
        r = run(args)
        assert r.returncode == EX_USAGE, (args, r.stderr)
        assert args[-1] in r.stderr


def test_help_config_lists_daemon_settings():
    r = run(["--help-config"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("daemon (group)")
    for key in ("plugin_dir", "state_dir", "log_target", "log_level",
                "log_rate_limit_interval", "log_rate_limit_burst", "stop_timeout",
                "status_interval"):
        assert re.search(rf"^\s+{key} \(", r.stdout, re.M), key
    assert 'log_target (enum), default auto, one of "auto", "journal", "stderr"' in r.stdout
    assert "status_interval (duration), default 10s, 1s to 1h" in r.stdout


def test_help_plugin_describes_sysinfo():
    r = run(["--help-plugin", "sysinfo", "-P", PLUGIN_DIR])
    assert r.returncode == 0, r.stderr
    out = r.stdout
    header = (SOURCE_DIR / "daemon/include/coapgate/plugin.h").read_text()
    abi = ".".join(re.search(rf"#define CG_ABI_{part} (\d+)", header).group(1)
                   for part in ("MAJOR", "MINOR"))
    assert out.startswith(f"sysinfo 1.0 (ABI {abi}, {PLUGIN_DIR}/sysinfo.so)\n")

    common, _, own = out.partition('Options of plugin "sysinfo":')
    assert own, out
    # The plugin's own options: type, default, range and help text.
    assert "interval (duration), default 60s, 100ms to 1d" in own
    assert "How often to take a reading." in own
    assert 'disk_path (string), default "/var/lib/coapgate"' in own
    assert "Report the free space of the file system holding this path" in own
    # The options every instance has.
    assert "Options of every input instance:" in common
    for line in ("name (string, required)", "plugin (string, required)", "topic (string)",
                 "enabled (boolean), default true",
                 "restart_backoff_min (duration), default 1s",
                 "restart_backoff_max (duration), default 5min",
                 "restart_backoff_reset (duration), default 1min"):
        assert line in common, line


def test_help_plugin_missing_names_the_path(tmp_path):
    r = run(["--help-plugin", "nosuch", "-P", str(tmp_path)])
    assert r.returncode != 0
    assert f"{tmp_path}/nosuch.so" in r.stderr
    assert r.stdout == ""


def test_input_with_unknown_name_is_a_usage_error(write_config):
    path = write_config(SYSINFO_INPUT)
    r = run(["-c", str(path), "-P", PLUGIN_DIR, "--test", "--count", "1", "--input", "zz"])
    assert r.returncode == EX_USAGE
    assert 'no input named "zz"' in r.stderr
    assert r.stdout == ""


# ---- -t: good configurations ----

def test_check_shipped_config_is_valid():
    path = SOURCE_DIR / "etc/coapgate.conf"
    r = check(path)
    assert r.returncode == 0, r.stderr
    assert f"{path}: configuration is valid (2 inputs)" in r.stdout


def test_check_shipped_config_with_its_commented_examples(write_config):
    """The commented instances in etc/coapgate.conf (a serial GPS, a Modbus meter),
    uncommented as the file says: removing the "# " from ",{" to "}"."""
    lines, inside, examples = [], False, 0
    for text in (SOURCE_DIR / "etc/coapgate.conf").read_text().splitlines():
        if text == "\t# ,{":
            inside = True
            examples += 1
        if inside:
            assert text.startswith("\t# "), text
            inside = text != "\t# }"
            text = "\t" + text[len("\t# "):]
        lines.append(text)
    assert examples == 2
    r = check(write_config("\n".join(lines) + "\n"))
    assert r.returncode == 0 and "(4 inputs)" in r.stdout, r.stderr


def test_check_counts_inputs_including_disabled(write_config):
    path = write_config(SYSINFO_INPUT.replace(
        ");", '\t,{ name = "b"; plugin = "sysinfo"; enabled = false; disk_path = ""; }\n);'))
    r = check(path)
    assert r.returncode == 0, r.stderr
    assert "configuration is valid (2 inputs)" in r.stdout


def test_check_missing_file_exits_78(tmp_path):
    path = tmp_path / "missing.conf"
    r = check(path)
    assert r.returncode == EX_CONFIG
    assert str(path) in r.stderr


# ---- -t: each kind of error points at its line ----

def test_syntax_error(write_config):
    path = write_config('daemon: {\n\tlog_level = "info";\n\tbroken = ;\n};\n')
    assert_error_at(check(path), path, 3, "syntax error")


def test_unknown_key(write_config):
    path = write_config('daemon: {\n\tlog_level = "info";\n\tbogus = 1;\n};\n')
    assert_error_at(check(path), path, 3, 'unknown option "daemon.bogus"')


def test_wrong_type(write_config):
    path = write_config('daemon: {\n\tstop_timeout = 5;\n};\n')
    assert_error_at(check(path), path, 2, "expected a duration")


def test_out_of_range(write_config):
    path = write_config(SYSINFO_INPUT.replace('"1s"', '"10ms"'))
    assert_error_at(check(path), path, 5, "10ms is out of range, allowed 100ms to 1d")


def test_unknown_plugin(write_config):
    path = write_config(SYSINFO_INPUT.replace('"sysinfo"', '"nosuch"'))
    found = assert_error_at(check(path), path, 4, 'cannot use plugin "nosuch"')
    assert f"{PLUGIN_DIR}/nosuch.so" in found[0]


def test_unknown_plugin_option(write_config):
    path = write_config(SYSINFO_INPUT.replace('disk_path = "";',
                                              'disk_path = "";\n\t\tcolour = "red";'))
    r = check(path)
    found = assert_error_at(r, path, 7, 'unknown option "colour"')
    # One mistake, one message.
    assert len(found) == 1, r.stderr


def test_several_errors_in_inputs_are_all_reported(write_config):
    path = write_config("""inputs = (
	{
		name = "a";
		plugin = "sysinfo";
		interval = "10ms";
		colour = "red";
	},
	{
		name = "b";
		plugin = "nosuch";
	},
	{
		name = "c";
		plugin = "sysinfo";
		interval = 5;
		enabled = "yes";
	}
);
""")
    r = check(path)
    assert_error_at(r, path, 5, "out of range")
    assert_error_at(r, path, 6, 'unknown option "colour"')
    assert_error_at(r, path, 10, 'cannot use plugin "nosuch"')
    assert_error_at(r, path, 15, "expected a duration")
    assert_error_at(r, path, 16, "expected a boolean")


def test_errors_in_settings_and_inputs_are_reported_together(write_config):
    # Nothing about plugin_dir is wrong, so the inputs can and should be checked too:
    # one run of -t should show every mistake.
    path = write_config("""daemon: {
	status_interval = "1ms";
	bogus = true;
};
inputs = (
	{
		name = "a";
		plugin = "sysinfo";
		interval = "10ms";
	}
);
""")
    r = check(path)
    assert_error_at(r, path, 2, "out of range")
    assert_error_at(r, path, 3, 'unknown option "daemon.bogus"')
    assert_error_at(r, path, 9, "out of range")


def test_duplicate_names_point_at_both(write_config):
    path = write_config("""inputs = (
	{ name = "a"; plugin = "sysinfo"; disk_path = ""; },
	{ name = "a"; plugin = "sysinfo"; disk_path = ""; }
);
""")
    found = assert_error_at(check(path), path, 3, 'input "a": the name is already used')
    assert f"{path}:2" in found[0]


# ---- conf.d ----

def test_conf_d_is_read(write_config):
    path = write_config(SYSINFO_INPUT)
    write_config('inputs = ({ name = "b"; plugin = "sysinfo"; disk_path = ""; });\n',
                 "conf.d/10-b.conf")
    write_config('inputs = ({ name = "x"; plugin = "nosuch"; });\n', "conf.d/10-b.conf.disabled")
    write_config('inputs = ({ name = "y"; plugin = "nosuch"; });\n', "conf.d/.hidden.conf")
    r = check(path)
    assert r.returncode == 0, r.stderr
    assert "configuration is valid (2 inputs)" in r.stdout


def test_conf_d_error_is_reported_with_its_path(write_config):
    path = write_config(SYSINFO_INPUT)
    conf_d = write_config('\n\ninputs = ({ name = "x"; plugin = "sysinfo"; bogus = 1; });\n',
                          "conf.d/20-x.conf")
    r = check(path)
    assert_error_at(r, conf_d, 3, 'unknown option "bogus"')
    assert f"{path}:" not in r.stderr


def test_conf_d_syntax_error_is_reported_with_its_path(write_config):
    path = write_config(SYSINFO_INPUT)
    conf_d = write_config('\n\ninputs = ({ name = ; plugin = "sysinfo"; });\n', "conf.d/20-x.conf")
    assert_error_at(check(path), conf_d, 3, "syntax error")


# ---- a plugin's init() refusing its configuration ----

RELATIVE_DISK_PATH = """inputs = (
	{
		name = "a";
		plugin = "sysinfo";
		disk_path = "relative/path";
	}
);
"""


def test_plugin_init_refusal_exits_78_with_file_and_line(write_config):
    path = write_config(RELATIVE_DISK_PATH)
    r = check(path)
    assert_error_at(r, path, 2, 'plugin "sysinfo" refused its configuration')
    # cg_conf_error(): the plugin's own judgement, at the line of the value.
    assert_error_at(r, path, 5,
                    'input "a": disk_path "relative/path" must be an absolute path')
    assert r.stdout == ""


def test_plugin_init_refusal_in_conf_d_names_that_file(write_config):
    path = write_config(SYSINFO_INPUT)
    conf_d = write_config(RELATIVE_DISK_PATH.replace('"a"', '"x"'), "conf.d/20-x.conf")
    r = check(path)
    assert_error_at(r, conf_d, 2, 'plugin "sysinfo" refused its configuration')
    assert_error_at(r, conf_d, 5, 'input "x": disk_path "relative/path" must be')


def test_every_instance_that_refuses_is_reported(write_config):
    """One -t reports the refusals of every instance, not only the first one's."""
    text = RELATIVE_DISK_PATH.replace("\n);\n", "\n") + """,
	{
		name = "b";
		plugin = "sysinfo";
		disk_path = "";
	},
	{
		name = "c";
		plugin = "sysinfo";
		disk_path = "also/relative";
	}
);
"""
    path = write_config(text)
    r = check(path)
    assert_error_at(r, path, 5, 'input "a": disk_path "relative/path" must be')
    assert_error_at(r, path, 16, 'input "c": disk_path "also/relative" must be')
    assert r.stderr.count("refused its configuration") == 2, r.stderr


def test_plugin_init_refusal_stops_a_normal_start(write_config):
    path = write_config(RELATIVE_DISK_PATH)
    r = run(["-c", str(path), "-P", PLUGIN_DIR, "--test", "--count", "1"])
    assert r.returncode == EX_CONFIG
    assert r.stdout == ""
    assert "refused its configuration" in r.stderr
