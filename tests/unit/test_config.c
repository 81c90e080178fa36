// SPDX-License-Identifier: MIT
/*
 * Unit tests of config.c: config_load() on files written to a fresh mkdtemp()
 * directory per test, with the real sysinfo plugin from $COAPGATE_PLUGIN_DIR. Every
 * error class is checked with the exact message the daemon logs, "FILE:LINE: ...";
 * the success cases check defaults, conf.d ordering and overriding, and @include.
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "capture.h"
#include "config.h"
#include "log.h"
#include "plugin.h"

#define SEC 1000000ULL

/* The conf struct of plugins/sysinfo/sysinfo.c, to read what its options became. */
struct sysinfo_conf {
	uint64_t interval_usec;
	const char *disk_path;
};

static const char *plugin_dir;
static char dir[64];	   /* this test's directory */
static char main_path[96]; /* dir/coapgate.conf */

static int setup_suite(void **state)
{
	plugin_dir = getenv("COAPGATE_PLUGIN_DIR");
#ifdef COAPGATE_TEST_DEFAULT_PLUGIN_DIR
	if (!plugin_dir)
		plugin_dir = COAPGATE_TEST_DEFAULT_PLUGIN_DIR;
#endif
	if (!plugin_dir) {
		fprintf(stderr, "COAPGATE_PLUGIN_DIR is not set\n");
		return -1;
	}
	unsetenv("JOURNAL_STREAM");
	log_setup(LOG_TARGET_STDERR);
	log_set_max_level(LOG_INFO);
	return 0;
}

static int setup_dir(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/coapgate-test-config-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(main_path, sizeof(main_path), "%s/coapgate.conf", dir);
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int teardown_dir(void **state)
{
	return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* dir/rel, in a static buffer that the next call reuses. */
static const char *in_dir(const char *rel)
{
	static char buf[2][192];
	static int which;

	which = !which;
	snprintf(buf[which], sizeof(buf[which]), "%s/%s", dir, rel);
	return buf[which];
}

static void make_dir(const char *rel)
{
	assert_int_equal(mkdir(in_dir(rel), 0700), 0);
}

static void write_file(const char *rel, const char *text)
{
	FILE *f = fopen(in_dir(rel), "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* config_load() of the main file with text; returns its result, the log in *ret_log. */
static int load(const char *text, struct config **ret, char **ret_log)
{
	struct capture cap;
	int r;

	if (text)
		write_file("coapgate.conf", text);
	capture_start(&cap);
	r = config_load(main_path, plugin_dir, ret);
	*ret_log = capture_stop(&cap);
	return r;
}

/* Loading must succeed without a message. */
static struct config *load_ok(const char *text)
{
	struct config *c = NULL;
	char *log;
	int r = load(text, &c, &log);

	if (r != 0 || *log)
		fail_msg("config_load() = %d, log: %s", r, log);
	free(log);
	assert_non_null(c);
	return c;
}

/* Loading must fail with -EINVAL and exactly want_log, and leave *ret alone. */
static void expect_failure(const char *text, const char *want_log)
{
	struct config *c = (struct config *)&c;
	char *log;
	int r = load(text, &c, &log);

	if (r != -EINVAL)
		fail_msg("config_load() = %d, expected -EINVAL; log: %s", r, log);
	assert_string_equal(log, want_log);
	assert_ptr_equal(c, &c);
	free(log);
}

/* Loading text must fail with one message at main_path:line. */
static void expect_error(const char *text, unsigned line, const char *message)
{
	char want[4096];

	snprintf(want, sizeof(want), "error: %s:%u: %s\n", main_path, line, message);
	expect_failure(text, want);
}

/* Settings of the main file name it (libconfig knows the name only from
 * config_read_file()). */
static void test_error_names_the_file(void **state)
{
	char want[1024];

	snprintf(want, sizeof(want), "error: %s:1: unknown option \"bogus\"\n", main_path);
	expect_failure("bogus = 1;\n", want);
}

static void test_syntax_error(void **state)
{
	char want[1024];

	expect_error("daemon = {\n  log_level = ;\n};\n", 2, "syntax error");
	expect_error("inputs = (\n  { name = \"a\"; plugin = \"sysinfo\"; }\n\n", 4,
		     "syntax error");

	/* In a conf.d file, that file is named. */
	make_dir("conf.d");
	write_file("conf.d/10-a.conf", "\n\nx = [1, \"a\"];\n");
	snprintf(want, sizeof(want), "error: %s:3: mismatched element type in array\n",
		 in_dir("conf.d/10-a.conf"));
	expect_failure("", want);
}

static void test_unknown_keys(void **state)
{
	expect_error("\nbogus = 1;\n", 2, "unknown option \"bogus\"");
	expect_error("daemon = {\n  log_level = \"info\";\n  bogus = 1;\n};\n", 3,
		     "unknown option \"daemon.bogus\"");
	/* Keys of an input belong in the inputs list only. */
	expect_error("name = \"x\";\n", 1, "unknown option \"name\"");
}

static void test_wrong_type(void **state)
{
	expect_error("daemon = {\n  log_rate_limit_burst = \"x\";\n};\n", 2,
		     "option \"daemon.log_rate_limit_burst\": expected an integer");
	expect_error("daemon = 5;\n", 1, "option \"daemon\": expected a group { ... }");
	expect_error("daemon = {\n\n  stop_timeout = 10;\n};\n", 3,
		     "option \"daemon.stop_timeout\": expected a duration string such as "
		     "\"500ms\", \"10s\" or \"5min\"");
	expect_error("daemon = { state_dir = true; };\n", 1,
		     "option \"daemon.state_dir\": expected a string");
	expect_error(
	    "inputs = (\n  { name = \"a\"; plugin = \"sysinfo\";\n    enabled = \"no\"; }\n);\n", 3,
	    "input \"a\": option \"enabled\": expected a boolean (true or false)");
	expect_error(
	    "inputs = (\n  { name = \"a\"; plugin = \"sysinfo\";\n    interval = 10; }\n);\n", 3,
	    "input \"a\": option \"interval\": expected a duration string such as "
	    "\"500ms\", \"10s\" or \"5min\"");
}

static void test_out_of_range(void **state)
{
	expect_error("daemon = {\n  stop_timeout = \"2h\";\n};\n", 2,
		     "option \"daemon.stop_timeout\": 2h is out of range, allowed 100ms to 1h");
	expect_error("daemon = {\n  log_rate_limit_burst = 100001;\n};\n", 2,
		     "option \"daemon.log_rate_limit_burst\": 100001 is out of range, allowed 0 "
		     "to 100000");
	expect_error("daemon = { status_interval = \"999ms\"; };\n", 1,
		     "option \"daemon.status_interval\": 999ms is out of range, allowed 1s to 1h");
	/* A plugin's own range, from its option table. */
	expect_error(
	    "inputs = (\n  { name = \"a\"; plugin = \"sysinfo\";\n    interval = \"50ms\"; }\n);\n",
	    3, "input \"a\": option \"interval\": 50ms is out of range, allowed 100ms to 1d");
	expect_error("inputs = (\n  { name = \"a\"; plugin = \"sysinfo\";\n"
		     "    restart_backoff_min = \"5ms\"; }\n);\n",
		     3,
		     "input \"a\": option \"restart_backoff_min\": 5ms is out of range, allowed "
		     "10ms to 1h");
}

static void test_bad_enum(void **state)
{
	expect_error("daemon = {\n  log_level = \"loud\";\n};\n", 2,
		     "option \"daemon.log_level\": \"loud\" is not one of \"error\", \"warning\", "
		     "\"notice\", \"info\", \"debug\"");
	expect_error("daemon = {\n  log_target = \"file\";\n};\n", 2,
		     "option \"daemon.log_target\": \"file\" is not one of \"auto\", \"journal\", "
		     "\"stderr\"");
}

static void test_bad_duration(void **state)
{
	expect_error("daemon = {\n  status_interval = \"10\";\n};\n", 2,
		     "option \"daemon.status_interval\": expected a duration string such as "
		     "\"500ms\", \"10s\" or \"5min\", got \"10\"");
	expect_error(
	    "inputs = (\n  { name = \"a\"; plugin = \"sysinfo\";\n    interval = \"1 minute\"; }\n);\n",
	    3,
	    "input \"a\": option \"interval\": expected a duration string such as "
	    "\"500ms\", \"10s\" or \"5min\", got \"1 minute\"");
}

static void test_missing_required(void **state)
{
	expect_error("inputs = (\n  { plugin = \"sysinfo\"; }\n);\n", 2,
		     "input: missing required option \"name\" (string)");
	expect_error("inputs = (\n  { name = \"a\"; }\n);\n", 2,
		     "input \"a\": missing required option \"plugin\" (string)");
}

static void test_missing_both(void **state)
{
	char want[2048];

	snprintf(want, sizeof(want),
		 "error: %s:3: input: missing required option \"name\" (string)\n"
		 "error: %s:3: input: missing required option \"plugin\" (string)\n",
		 main_path, main_path);
	expect_failure("inputs = (\n\n  { }\n);\n", want);
}

static void test_unknown_plugin(void **state)
{
	char message[2048];

	/* The plugin's keys are unknown without it: only the plugin is reported. */
	snprintf(message, sizeof(message),
		 "input \"a\": cannot use plugin \"nosuch\": %s/nosuch.so: No such file or "
		 "directory",
		 plugin_dir);
	expect_error("inputs = (\n  { name = \"a\";\n    plugin = \"nosuch\";\n"
		     "    interval = \"junk\"; }\n);\n",
		     3, message);
	expect_error("inputs = (\n  { name = \"a\";\n    plugin = \"../x\"; }\n);\n", 3,
		     "input \"a\": cannot use plugin \"../x\": \"../x\" is not a plugin name (1 to "
		     "64 of a-z, 0-9, _)");
	expect_error("inputs = (\n  { name = \"a\";\n    plugin = \"SysInfo\"; }\n);\n", 3,
		     "input \"a\": cannot use plugin \"SysInfo\": \"SysInfo\" is not a plugin name "
		     "(1 to 64 of a-z, 0-9, _)");
	expect_error("inputs = (\n  { name = \"a\";\n    plugin = 5; }\n);\n", 3,
		     "input \"a\": option \"plugin\": expected a string");
}

static void test_unknown_plugin_option(void **state)
{
	expect_error("inputs = (\n  { name = \"a\"; plugin = \"sysinfo\";\n    bogus = 1; }\n);\n",
		     3, "input \"a\": unknown option \"bogus\"");
}

/* Each pass over an instance's keys (the plugin's table, the common table) must
 * leave the other's keys alone, so an unknown key is reported once. */
static void test_unknown_plugin_option_reported_once(void **state)
{
	struct config *c = NULL;
	char *log;

	assert_int_equal(load("inputs = (\n  { name = \"a\"; plugin = \"sysinfo\";\n"
			      "    bogus = 1; }\n);\n",
			      &c, &log),
			 -EINVAL);
	assert_int_equal(capture_count(log, "unknown option \"bogus\""), 1);
	assert_int_equal(capture_lines(log), 1);
	free(log);
}

static void test_invalid_name(void **state)
{
	char long_name[66], text[512], message[512];

	expect_error(
	    "inputs = (\n  { plugin = \"sysinfo\"; topic = \"t\";\n    name = \"a b\"; }\n);\n", 3,
	    "input \"a b\": the name must be 1 to 64 of A-Z a-z 0-9 _ . -");
	expect_error(
	    "inputs = (\n  { plugin = \"sysinfo\"; topic = \"t\";\n    name = \"\"; }\n);\n", 3,
	    "input \"\": the name must be 1 to 64 of A-Z a-z 0-9 _ . -");
	expect_error(
	    "inputs = (\n  { plugin = \"sysinfo\"; topic = \"t\";\n    name = \"gr\xc3\xbc\xc3\x9f"
	    "e\"; }\n);\n",
	    3,
	    "input \"gr\xc3\xbc\xc3\x9f"
	    "e\": the name must be 1 to 64 of A-Z a-z 0-9 _ . -");

	memset(long_name, 'n', sizeof(long_name));
	long_name[65] = 0;
	snprintf(text, sizeof(text),
		 "inputs = (\n  { plugin = \"sysinfo\";\n    name = \"%s\"; }\n);\n", long_name);
	snprintf(message, sizeof(message),
		 "input \"%s\": the name must be 1 to 64 of A-Z a-z 0-9 _ . -", long_name);
	expect_error(text, 3, message);
}

static void test_invalid_topic(void **state)
{
	expect_error(
	    "inputs = (\n  { name = \"a\"; plugin = \"sysinfo\";\n    topic = \"a//b\"; }\n);\n", 3,
	    "input \"a\": option \"topic\": \"a//b\" is not a valid 1NCE OS topic (A-Z "
	    "a-z 0-9 _ / without \"//\", at most 253 bytes)");
	expect_error(
	    "inputs = (\n  { name = \"a\"; plugin = \"sysinfo\";\n    topic = \"\"; }\n);\n", 3,
	    "input \"a\": option \"topic\": \"\" is not a valid 1NCE OS topic (A-Z "
	    "a-z 0-9 _ / without \"//\", at most 253 bytes)");
	expect_error("inputs = (\n  { name = \"a\"; plugin = \"sysinfo\";\n    topic = 7; }\n);\n",
		     3, "input \"a\": option \"topic\": expected a string");
}

static void test_name_not_a_topic(void **state)
{
	struct config *c;

	expect_error("inputs = (\n  { name = \"boiler-1\";\n    plugin = \"sysinfo\"; }\n);\n", 2,
		     "input \"boiler-1\": the name is not a valid topic, so set \"topic\" (A-Z "
		     "a-z 0-9 _ / without \"//\", at most 253 bytes)");
	expect_error("inputs = (\n  { name = \"a.b\";\n    plugin = \"sysinfo\"; }\n);\n", 2,
		     "input \"a.b\": the name is not a valid topic, so set \"topic\" (A-Z "
		     "a-z 0-9 _ / without \"//\", at most 253 bytes)");
	/* With a topic the name is fine. */
	c = load_ok(
	    "inputs = (\n  { name = \"boiler-1\"; plugin = \"sysinfo\"; topic = \"boiler_1\"; }\n);\n");
	assert_int_equal(c->n_inputs, 1);
	assert_string_equal(c->inputs[0].name, "boiler-1");
	assert_string_equal(c->inputs[0].topic, "boiler_1");
	config_free(c);
}

static void test_duplicate_names(void **state)
{
	char message[2048];

	snprintf(message, sizeof(message), "input \"a\": the name is already used at %s:2",
		 main_path);
	expect_error("inputs = (\n"
		     "  { name = \"a\"; plugin = \"sysinfo\"; },\n"
		     "  { name = \"b\"; plugin = \"sysinfo\"; },\n"
		     "  { name = \"a\"; plugin = \"sysinfo\"; topic = \"other\"; }\n"
		     ");\n",
		     4, message);
}

static void test_duplicate_names_across_files(void **state)
{
	char want[2048];

	make_dir("conf.d");
	write_file("conf.d/10-a.conf",
		   "inputs = (\n  { name = \"dup\"; plugin = \"sysinfo\"; }\n);\n");
	write_file("conf.d/20-b.conf", "inputs = (\n  { name = \"x\"; plugin = \"sysinfo\"; },\n"
				       "  { name = \"dup\"; plugin = \"sysinfo\"; }\n);\n");
	snprintf(want, sizeof(want),
		 "error: %s:3: input \"dup\": the name is already used at %s:2\n",
		 in_dir("conf.d/20-b.conf"), in_dir("conf.d/10-a.conf"));
	expect_failure("", want);
}

static void test_inputs_not_a_list(void **state)
{
	expect_error("\ninputs = { name = \"a\"; plugin = \"sysinfo\"; };\n", 2,
		     "\"inputs\" must be a list of groups: ( { ... }, ... )");
	expect_error("inputs = \"sysinfo\";\n", 1,
		     "\"inputs\" must be a list of groups: ( { ... }, ... )");
	expect_error("inputs = [1, 2];\n", 1,
		     "\"inputs\" must be a list of groups: ( { ... }, ... )");
	expect_error("inputs = (\n  { name = \"a\"; plugin = \"sysinfo\"; },\n  5,\n"
		     "  { name = \"b\"; plugin = \"sysinfo\"; }\n);\n",
		     3, "inputs[1]: expected a group { ... }");
}

static void test_backoff_order(void **state)
{
	struct config *c;

	expect_error("inputs = (\n  { name = \"a\"; plugin = \"sysinfo\";\n"
		     "    restart_backoff_min = \"10s\"; restart_backoff_max = \"5s\"; }\n);\n",
		     2, "input \"a\": restart_backoff_max is smaller than restart_backoff_min");
	/* The default maximum is 5min. */
	expect_error("inputs = (\n  { name = \"a\"; plugin = \"sysinfo\";\n"
		     "    restart_backoff_min = \"10min\"; }\n);\n",
		     2, "input \"a\": restart_backoff_max is smaller than restart_backoff_min");
	/* Equal is fine. */
	c = load_ok("inputs = (\n  { name = \"a\"; plugin = \"sysinfo\";\n"
		    "    restart_backoff_min = \"5s\"; restart_backoff_max = \"5s\"; }\n);\n");
	assert_int_equal(c->inputs[0].restart_backoff_min_usec, 5 * SEC);
	assert_int_equal(c->inputs[0].restart_backoff_max_usec, 5 * SEC);
	config_free(c);
}

static void test_all_problems_reported(void **state)
{
	char want[4096];

	snprintf(want, sizeof(want),
		 "error: %s:3: input \"a\": option \"interval\": 1ms is out of range, allowed "
		 "100ms to 1d\n"
		 "error: %s:4: input \"b\": option \"enabled\": expected a boolean (true or "
		 "false)\n",
		 main_path, main_path);
	expect_failure("inputs = (\n"
		       "  { name = \"a\"; plugin = \"sysinfo\";\n"
		       "    interval = \"1ms\"; },\n"
		       "  { name = \"b\"; plugin = \"sysinfo\"; enabled = 1; }\n"
		       ");\n",
		       want);
}

/* Problems in the daemon settings do not hide those of the inputs. */
static void test_settings_and_input_problems(void **state)
{
	char want[2048];

	snprintf(want, sizeof(want),
		 "error: %s:1: option \"daemon.log_level\": \"loud\" is not one of \"error\", "
		 "\"warning\", \"notice\", \"info\", \"debug\"\n"
		 "error: %s:3: input \"a\": option \"interval\": expected a duration string "
		 "such as \"500ms\", \"10s\" or \"5min\"\n",
		 main_path, main_path);
	expect_failure("daemon = { log_level = \"loud\"; };\n"
		       "inputs = (\n"
		       "  { name = \"a\"; plugin = \"sysinfo\"; interval = 5; }\n"
		       ");\n",
		       want);
}

/*
 * When a file cannot be parsed, or daemon.plugin_dir is not even a string, the plugins
 * cannot be found: the inputs are not looked at, so that only the real error shows.
 */
static void test_plugin_dir_in_doubt(void **state)
{
	char want[1024];

	expect_error("daemon = { plugin_dir = 5; };\n"
		     "inputs = ( { name = \"a\"; plugin = \"sysinfo\"; interval = 5; } );\n",
		     1, "option \"daemon.plugin_dir\": expected a string");

	make_dir("conf.d");
	write_file("conf.d/10-a.conf", "daemon = {\n  log_level = \"loud\"\n  x = ;\n};\n");
	snprintf(want, sizeof(want), "error: %s:3: syntax error\n", in_dir("conf.d/10-a.conf"));
	expect_failure("inputs = ( { name = \"a\"; plugin = \"sysinfo\"; interval = 5; } );\n",
		       want);
}

/*
 * BUG (config.c, config_load()): a main file that cannot be read is reported as
 * -EINVAL, although config.h promises "another negative errno (logged) when a file
 * cannot be read": read_file() returns -ENOENT and config_load() replaces it.
 */
static void test_missing_file(void **state)
{
	struct config *c = NULL;
	char want[1024];
	char *log;
	int r;

	snprintf(want, sizeof(want),
		 "error: cannot read configuration \"%s\": No such file or directory\n", main_path);
	r = load(NULL, &c, &log);
	assert_string_equal(log, want);
	assert_null(c);
	free(log);
	assert_int_equal(r, -ENOENT);
}

static void test_defaults(void **state)
{
	struct config *c = load_ok("");

	assert_string_equal(c->path, main_path);
	assert_string_equal(c->settings.daemon.plugin_dir, plugin_dir);
	assert_string_equal(c->settings.daemon.state_dir, "/var/lib/coapgate");
	assert_int_equal(c->settings.daemon.log_target, LOG_TARGET_AUTO);
	assert_int_equal(c->settings.daemon.log_level, 3);
	assert_int_equal(config_log_level(c), LOG_INFO);
	assert_int_equal(c->settings.daemon.log_rate_limit_interval_usec, 30 * SEC);
	assert_int_equal(c->settings.daemon.log_rate_limit_burst, 20);
	assert_int_equal(c->settings.daemon.stop_timeout_usec, 10 * SEC);
	assert_int_equal(c->settings.daemon.status_interval_usec, 10 * SEC);
	assert_int_equal(c->n_inputs, 0);
	assert_null(c->inputs);
	config_free(c);
	config_free(NULL);

	c = load_ok("inputs = [];\ndaemon = { };\n");
	assert_int_equal(c->n_inputs, 0);
	config_free(c);
}

static void test_all_daemon_settings(void **state)
{
	struct config *c = load_ok("daemon = {\n"
				   "  state_dir = \"/srv/state\";\n"
				   "  log_target = \"stderr\";\n"
				   "  log_level = \"debug\";\n"
				   "  log_rate_limit_interval = \"0\";\n"
				   "  log_rate_limit_burst = 0;\n"
				   "  stop_timeout = \"1.5s\";\n"
				   "  status_interval = \"1h\";\n"
				   "};\n");

	assert_string_equal(c->settings.daemon.state_dir, "/srv/state");
	assert_int_equal(c->settings.daemon.log_target, LOG_TARGET_STDERR);
	assert_int_equal(c->settings.daemon.log_level, 4);
	assert_int_equal(config_log_level(c), LOG_DEBUG);
	assert_int_equal(c->settings.daemon.log_rate_limit_interval_usec, 0);
	assert_int_equal(c->settings.daemon.log_rate_limit_burst, 0);
	assert_int_equal(c->settings.daemon.stop_timeout_usec, 1500000);
	assert_int_equal(c->settings.daemon.status_interval_usec, 3600 * SEC);
	config_free(c);
}

static void test_input_defaults(void **state)
{
	const struct sysinfo_conf *sc;
	struct config *c =
	    load_ok("\ninputs = (\n  { name = \"gw\"; plugin = \"sysinfo\"; }\n);\n");
	const struct input_config *in;

	assert_int_equal(c->n_inputs, 1);
	in = &c->inputs[0];
	assert_string_equal(in->name, "gw");
	assert_string_equal(in->plugin_name, "sysinfo");
	assert_string_equal(in->topic, "gw");
	assert_true(in->enabled);
	assert_int_equal(in->restart_backoff_min_usec, 1 * SEC);
	assert_int_equal(in->restart_backoff_max_usec, 300 * SEC);
	assert_int_equal(in->restart_backoff_reset_usec, 60 * SEC);
	assert_non_null(in->plugin);
	assert_string_equal(in->plugin->name, "sysinfo");
	assert_string_equal(in->plugin->desc.name, "sysinfo");
	assert_non_null(in->plugin_conf);
	sc = in->plugin_conf;
	assert_int_equal(sc->interval_usec, 60 * SEC);
	assert_string_equal(sc->disk_path, "/var/lib/coapgate");
	assert_string_equal(in->file, main_path);
	assert_int_equal(in->line, 3);
	config_free(c);
}

static void test_input_values(void **state)
{
	struct config *c =
	    load_ok("inputs = (\n"
		    "  { name = \"gw\"; plugin = \"sysinfo\"; topic = \"gateway/health\";\n"
		    "    enabled = false; interval = \"5min\"; disk_path = \"\";\n"
		    "    restart_backoff_min = \"2s\"; restart_backoff_max = \"1h\";\n"
		    "    restart_backoff_reset = \"90s\"; },\n"
		    "  { name = \"second\"; plugin = \"sysinfo\"; interval = \"1.5s\"; }\n"
		    ");\n");
	const struct sysinfo_conf *sc;
	const struct input_config *in;

	assert_int_equal(c->n_inputs, 2);
	in = &c->inputs[0];
	assert_string_equal(in->topic, "gateway/health");
	assert_false(in->enabled);
	assert_int_equal(in->restart_backoff_min_usec, 2 * SEC);
	assert_int_equal(in->restart_backoff_max_usec, 3600 * SEC);
	assert_int_equal(in->restart_backoff_reset_usec, 90 * SEC);
	sc = in->plugin_conf;
	assert_int_equal(sc->interval_usec, 300 * SEC);
	assert_string_equal(sc->disk_path, "");
	assert_int_equal(in->line, 2);

	in = &c->inputs[1];
	assert_string_equal(in->name, "second");
	assert_string_equal(in->topic, "second");
	sc = in->plugin_conf;
	assert_int_equal(sc->interval_usec, 1500000);
	assert_string_equal(sc->disk_path, "/var/lib/coapgate");
	assert_int_equal(in->line, 6);
	/* One plugin, however many instances. */
	assert_ptr_equal(c->inputs[0].plugin, c->inputs[1].plugin);
	config_free(c);
}

static void test_plugin_dir_from_file(void **state)
{
	struct config *c = NULL;
	char text[PATH_MAX + 256];
	struct capture cap;
	char *log;
	int r;

	snprintf(text, sizeof(text),
		 "daemon = { plugin_dir = \"%s\"; };\n"
		 "inputs = ( { name = \"gw\"; plugin = \"sysinfo\"; } );\n",
		 plugin_dir);
	write_file("coapgate.conf", text);
	capture_start(&cap);
	r = config_load(main_path, NULL, &c);
	log = capture_stop(&cap);
	assert_int_equal(r, 0);
	assert_string_equal(log, "");
	free(log);
	assert_string_equal(c->settings.daemon.plugin_dir, plugin_dir);
	assert_non_null(c->inputs[0].plugin);
	config_free(c);

	/* The argument wins over the file. */
	c = load_ok("daemon = { plugin_dir = \"/nonexistent\"; };\n"
		    "inputs = ( { name = \"gw\"; plugin = \"sysinfo\"; } );\n");
	assert_string_equal(c->settings.daemon.plugin_dir, plugin_dir);
	config_free(c);
}

static void test_conf_d(void **state)
{
	const char *const names[] = { "m", "a1", "a2", "b" };
	struct config *c;

	make_dir("conf.d");
	/* Written in an order that is neither the name order nor its reverse. */
	write_file("conf.d/20-b.conf", "daemon = { stop_timeout = \"40s\"; };\n"
				       "inputs = ( { name = \"b\"; plugin = \"sysinfo\"; } );\n");
	write_file("conf.d/10-a.conf", "daemon = {\n  stop_timeout = \"30s\";\n"
				       "  log_level = \"warning\";\n  state_dir = \"/a\";\n};\n"
				       "inputs = (\n  { name = \"a1\"; plugin = \"sysinfo\"; },\n"
				       "  { name = \"a2\"; plugin = \"sysinfo\"; }\n);\n");
	/* Ignored: not *.conf, or hidden. Each would be an error if read. */
	write_file("conf.d/README", "this is not libconfig\n");
	write_file("conf.d/30-c.conf~", "broken = ;\n");
	write_file("conf.d/30-c.conf.bak", "broken = ;\n");
	write_file("conf.d/.hidden.conf", "broken = ;\n");
	write_file("conf.d/.conf", "broken = ;\n");
	write_file("conf.d/conf", "broken = ;\n");

	c = load_ok("daemon = {\n  stop_timeout = \"20s\";\n  status_interval = \"5s\";\n"
		    "  log_level = \"debug\";\n  state_dir = \"/main\";\n};\n"
		    "inputs = ( { name = \"m\"; plugin = \"sysinfo\"; } );\n");
	/* Later files win, key by key. */
	assert_int_equal(c->settings.daemon.stop_timeout_usec, 40 * SEC);
	assert_int_equal(c->settings.daemon.log_level, 1);
	assert_string_equal(c->settings.daemon.state_dir, "/a");
	assert_int_equal(c->settings.daemon.status_interval_usec, 5 * SEC);
	/* Inputs are concatenated in file order. */
	assert_int_equal(c->n_inputs, 4);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(c->inputs[i].name, names[i]);
	config_free(c);
}

/* An input remembers the file and line where it is defined, for later messages. */
static void test_conf_d_input_location(void **state)
{
	struct config *c;

	make_dir("conf.d");
	write_file("conf.d/10-a.conf",
		   "\ninputs = (\n\n  { name = \"a\"; plugin = \"sysinfo\"; }\n);\n");
	c = load_ok("");
	assert_int_equal(c->n_inputs, 1);
	assert_string_equal(c->inputs[0].file, in_dir("conf.d/10-a.conf"));
	assert_int_equal(c->inputs[0].line, 4);
	config_free(c);
}

static void test_conf_d_many_files_sorted(void **state)
{
	struct config *c;
	char rel[64], text[256];

	make_dir("conf.d");
	/* 26 files written backwards; names sort as strings. */
	for (int i = 25; i >= 0; i--) {
		snprintf(rel, sizeof(rel), "conf.d/%c.conf", 'a' + i);
		snprintf(text, sizeof(text),
			 "inputs = ( { name = \"%c\"; plugin = \"sysinfo\"; } );\n", 'a' + i);
		write_file(rel, text);
	}
	write_file("conf.d/B.conf", "inputs = ( { name = \"B\"; plugin = \"sysinfo\"; } );\n");
	c = load_ok("");
	assert_int_equal(c->n_inputs, 27);
	assert_string_equal(c->inputs[0].name, "B");
	for (int i = 0; i < 26; i++) {
		char name[2] = { (char)('a' + i), 0 };

		assert_string_equal(c->inputs[i + 1].name, name);
	}
	config_free(c);
}

static void test_include(void **state)
{
	char cwd[PATH_MAX];
	struct config *c;

	make_dir("inc");
	write_file("inc/extra.conf", "daemon = {\n  log_level = \"error\";\n};\n");
	write_file("inc/inputs.conf", "  { name = \"included\"; plugin = \"sysinfo\"; },\n");
	/* The test runs elsewhere: relative paths must be relative to the including file. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_not_equal(strcmp(cwd, dir), 0);
	c = load_ok("@include \"inc/extra.conf\"\n"
		    "inputs = (\n"
		    "@include \"inc/inputs.conf\"\n"
		    "  { name = \"main\"; plugin = \"sysinfo\"; }\n"
		    ");\n");
	assert_int_equal(c->settings.daemon.log_level, 0);
	assert_int_equal(config_log_level(c), LOG_ERR);
	assert_int_equal(c->n_inputs, 2);
	assert_string_equal(c->inputs[0].name, "included");
	assert_string_equal(c->inputs[1].name, "main");
	config_free(c);
}

/*
 * An error in an included file names that file. libconfig 1.5 records the path as
 * written in @include ("inc/extra.conf", relative to the including file), so only
 * that much is required here.
 */
static void test_include_error_location(void **state)
{
	struct config *c = NULL;
	char *log;

	make_dir("inc");
	write_file("inc/extra.conf", "\ndaemon = {\n  log_level = \"loud\";\n};\n");
	assert_int_equal(load("\n@include \"inc/extra.conf\"\n", &c, &log), -EINVAL);
	assert_int_equal(capture_lines(log), 1);
	if (!strstr(log, "inc/extra.conf:3: option \"daemon.log_level\": \"loud\" is not one of"))
		fail_msg("unexpected log: %s", log);
	free(log);

	/* A syntax error in an included file. */
	write_file("inc/extra.conf", "\n\ndaemon = {\n  log_level = ;\n};\n");
	assert_int_equal(load("\n@include \"inc/extra.conf\"\n", &c, &log), -EINVAL);
	assert_int_equal(capture_lines(log), 1);
	if (!strstr(log, "inc/extra.conf:4: syntax error\n"))
		fail_msg("unexpected log: %s", log);
	free(log);
	assert_null(c);
}

static void test_print_help(void **state)
{
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	assert_non_null(f);
	config_print_help(f);
	config_print_input_help(f);
	fclose(f);
	assert_non_null(strstr(text, "daemon (group)\n"));
	assert_non_null(strstr(text, "    log_level (enum), default info, one of \"error\", "
				     "\"warning\", \"notice\", \"info\", \"debug\"\n"));
	assert_non_null(strstr(text, "    stop_timeout (duration), default 10s, 100ms to 1h\n"));
	assert_non_null(
	    strstr(text, "    log_rate_limit_burst (integer), default 20, 0 to 100000\n"));
	assert_non_null(strstr(text, "    name (string, required)\n"));
	assert_non_null(
	    strstr(text, "    restart_backoff_max (duration), default 5min, 10ms to 1d\n"));
	free(text);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_error_names_the_file),
		T(test_syntax_error),
		T(test_unknown_keys),
		T(test_wrong_type),
		T(test_out_of_range),
		T(test_bad_enum),
		T(test_bad_duration),
		T(test_missing_required),
		T(test_missing_both),
		T(test_unknown_plugin),
		T(test_unknown_plugin_option),
		T(test_unknown_plugin_option_reported_once),
		T(test_invalid_name),
		T(test_invalid_topic),
		T(test_name_not_a_topic),
		T(test_duplicate_names),
		T(test_duplicate_names_across_files),
		T(test_inputs_not_a_list),
		T(test_backoff_order),
		T(test_all_problems_reported),
		T(test_settings_and_input_problems),
		T(test_plugin_dir_in_doubt),
		T(test_missing_file),
		T(test_defaults),
		T(test_all_daemon_settings),
		T(test_input_defaults),
		T(test_input_values),
		T(test_plugin_dir_from_file),
		T(test_conf_d),
		T(test_conf_d_input_location),
		T(test_conf_d_many_files_sorted),
		T(test_include),
		T(test_include_error_location),
		T(test_print_help),
	};

	return cmocka_run_group_tests(tests, setup_suite, NULL);
}
