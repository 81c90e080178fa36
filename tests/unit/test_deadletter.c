// SPDX-License-Identifier: MIT
/*
 * Unit tests of deadletter.c: each entry is one JSON line with every field, the file
 * is 0600, and past max_size it becomes dead-letter.1.jsonl (replacing the previous
 * one) while a new file starts. Each test runs in its own mkdtemp() directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "deadletter.h"

#define FILE_NAME "dead-letter.jsonl"
#define OLD_NAME  "dead-letter.1.jsonl"
#define BIG	  (1ULL << 30)

static char dir[PATH_MAX];

/* ---- helpers ---- */

static const char *in_dir(const char *name)
{
	static char buf[4][PATH_MAX + 64];
	static int which;

	which = (which + 1) % 4;
	snprintf(buf[which], sizeof(buf[which]), "%s/%s", dir, name);
	return buf[which];
}

/* The whole file (malloc'd), or NULL if there is none. */
static char *slurp(const char *name)
{
	FILE *f = fopen(in_dir(name), "re");
	char *text = NULL;
	size_t size = 0;
	FILE *out;
	int c;

	if (!f)
		return NULL;
	out = open_memstream(&text, &size);
	assert_non_null(out);
	while ((c = getc(f)) != EOF)
		putc(c, out);
	fclose(out);
	fclose(f);
	return text;
}

static size_t file_size(const char *name)
{
	struct stat st;

	assert_int_equal(stat(in_dir(name), &st), 0);
	return (size_t)st.st_size;
}

static size_t count_lines(const char *text)
{
	size_t n = 0;

	for (; *text; text++)
		n += *text == '\n';
	return n;
}

/* Line i (from 0) of text, parsed; every line must be one JSON object. */
static json_t *line_json(const char *text, size_t i)
{
	const char *start = text, *end;
	json_error_t err;
	json_t *j;

	for (; i > 0; i--) {
		start = strchr(start, '\n');
		assert_non_null(start);
		start++;
	}
	end = strchr(start, '\n');
	assert_non_null(end);
	j = json_loadb(start, (size_t)(end - start), 0, &err);
	if (!j)
		fail_msg("not a JSON line (%s): %.*s", err.text, (int)(end - start), start);
	assert_true(json_is_object(j));
	return j;
}

static struct deadletter_entry entry(uint64_t first_seq, const char *payload)
{
	return (struct deadletter_entry){ .topic = "site/boiler",
					  .code = "4.00",
					  .reason = "bad topic",
					  .payload = payload,
					  .payload_len = strlen(payload),
					  .first_seq = first_seq,
					  .last_seq = first_seq + 2,
					  .n_readings = 3 };
}

static void append(uint64_t max_size, const struct deadletter_entry *e)
{
	int r = deadletter_append(dir, max_size, e);

	if (r != 0)
		fail_msg("deadletter_append() = %d (%s)", r, strerror(-r));
}

/* The first_seq of every line of a file, as "a b c". */
static const char *seqs_of(const char *name)
{
	static char out[512];
	char *text = slurp(name);
	size_t n;

	out[0] = '\0';
	if (!text)
		return "none";
	n = count_lines(text);
	for (size_t i = 0; i < n; i++) {
		json_t *j = line_json(text, i);

		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%lld", i ? " " : "",
			 (long long)json_integer_value(json_object_get(j, "first_seq")));
		json_decref(j);
	}
	free(text);
	return out;
}

static void expect_mode_0600(const char *name)
{
	struct stat st;

	assert_int_equal(lstat(in_dir(name), &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
}

static int setup_dir(void **state)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/coapgate-test-deadletter-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	return mkdtemp(dir) ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int teardown_dir(void **state)
{
	return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- tests ---- */

static void test_one_entry(void **state)
{
	static const char payload[] =
	    "{\"v\":1,\"s\":1200,\"t\":1732480000000,\"g\":[{\"f\":"
	    "[\"temp\"],\"r\":[[0,0,21.5],[1,1000,21.6],[2,2000,\"x\"]]}]}";
	struct deadletter_entry e = entry(1200, payload);
	int64_t before = wall_ms(), after;
	char *text;
	json_t *j;

	append(BIG, &e);
	after = wall_ms();
	text = slurp(FILE_NAME);
	assert_non_null(text);
	assert_int_equal(count_lines(text), 1);
	assert_int_equal(text[strlen(text) - 1], '\n');
	assert_int_equal(strlen(text), file_size(FILE_NAME));
	j = line_json(text, 0);
	assert_true(json_integer_value(json_object_get(j, "time_ms")) >= before);
	assert_true(json_integer_value(json_object_get(j, "time_ms")) <= after);
	assert_string_equal(json_string_value(json_object_get(j, "topic")), "site/boiler");
	assert_string_equal(json_string_value(json_object_get(j, "code")), "4.00");
	assert_string_equal(json_string_value(json_object_get(j, "reason")), "bad topic");
	assert_int_equal(json_integer_value(json_object_get(j, "first_seq")), 1200);
	assert_int_equal(json_integer_value(json_object_get(j, "last_seq")), 1202);
	assert_int_equal(json_integer_value(json_object_get(j, "readings")), 3);
	/* The payload as it was, to the byte. */
	assert_string_equal(json_string_value(json_object_get(j, "payload")), payload);
	assert_int_equal(json_object_size(j), 8);
	json_decref(j);
	free(text);
	expect_mode_0600(FILE_NAME);
	assert_null(slurp(OLD_NAME));
}

static void test_no_reason(void **state)
{
	struct deadletter_entry e = entry(1, "{}");
	char *text;
	json_t *j;

	e.reason = NULL;
	append(BIG, &e);
	text = slurp(FILE_NAME);
	j = line_json(text, 0);
	assert_string_equal(json_string_value(json_object_get(j, "reason")), "");
	assert_string_equal(json_string_value(json_object_get(j, "payload")), "{}");
	json_decref(j);
	free(text);
}

/* Only payload_len bytes of the payload; quotes and line ends stay inside one line. */
static void test_payload_escaping(void **state)
{
	static const char payload[] = "{\"s\":\"a\\\"b\"}\nsecond line\r\tgr\xc3\xbc\xc3\x9f"
				      "e \xe2\x82\xac-NOT-THIS";
	struct deadletter_entry e = entry(7, payload);
	size_t len = strlen(payload) - strlen("-NOT-THIS");
	char *text;
	json_t *j;

	e.payload_len = len;
	e.reason = "bad \"request\"\n(see log)";
	append(BIG, &e);
	text = slurp(FILE_NAME);
	assert_int_equal(count_lines(text), 1);
	j = line_json(text, 0);
	assert_int_equal(json_string_length(json_object_get(j, "payload")), len);
	assert_memory_equal(json_string_value(json_object_get(j, "payload")), payload, len);
	assert_string_equal(json_string_value(json_object_get(j, "reason")),
			    "bad \"request\"\n(see log)");
	json_decref(j);
	free(text);
}

/* Big numbers are kept exactly. */
static void test_large_numbers(void **state)
{
	struct deadletter_entry e = entry(0, "{}");
	char *text;
	json_t *j;

	e.first_seq = (1ULL << 53) + 1;
	e.last_seq = INT64_MAX;
	e.n_readings = 100000;
	e.code = "too-large";
	append(BIG, &e);
	text = slurp(FILE_NAME);
	j = line_json(text, 0);
	assert_int_equal(json_integer_value(json_object_get(j, "first_seq")), (1LL << 53) + 1);
	assert_int_equal(json_integer_value(json_object_get(j, "last_seq")), INT64_MAX);
	assert_int_equal(json_integer_value(json_object_get(j, "readings")), 100000);
	assert_string_equal(json_string_value(json_object_get(j, "code")), "too-large");
	json_decref(j);
	free(text);
}

static void test_appends(void **state)
{
	char *text;

	for (uint64_t i = 1; i <= 20; i++) {
		struct deadletter_entry e = entry(i * 10, "{\"v\":1}");

		append(BIG, &e);
	}
	text = slurp(FILE_NAME);
	assert_int_equal(count_lines(text), 20);
	free(text);
	assert_string_equal(
	    seqs_of(FILE_NAME),
	    "10 20 30 40 50 60 70 80 90 100 110 120 130 140 150 160 170 180 190 200");
	assert_string_equal(seqs_of(OLD_NAME), "none");
	expect_mode_0600(FILE_NAME);
}

/*
 * Lines of the same length L; max_size 3L holds three. The fourth would pass it: the
 * three go to dead-letter.1.jsonl as they were and the fourth starts a new file.
 */
static void test_rotation(void **state)
{
	struct deadletter_entry e = entry(100, "{\"v\":1}");
	char *old, *moved;
	size_t line;

	append(BIG, &e);
	line = file_size(FILE_NAME);
	/* Equal lines, as long as time_ms keeps its 13 digits. */
	for (uint64_t seq = 101; seq <= 102; seq++) {
		e = entry(seq, "{\"v\":1}");
		append(3 * line, &e);
	}
	assert_int_equal(file_size(FILE_NAME), 3 * line); /* exactly max_size: no rotation */
	assert_string_equal(seqs_of(OLD_NAME), "none");
	old = slurp(FILE_NAME);

	e = entry(103, "{\"v\":1}");
	append(3 * line, &e);
	moved = slurp(OLD_NAME);
	assert_non_null(moved);
	assert_string_equal(moved, old); /* the old content, untouched */
	assert_string_equal(seqs_of(FILE_NAME), "103");
	assert_int_equal(file_size(FILE_NAME), line);
	expect_mode_0600(FILE_NAME);
	expect_mode_0600(OLD_NAME);
	free(old);
	free(moved);

	/* The next rotation replaces dead-letter.1.jsonl: one old file only. */
	for (uint64_t seq = 104; seq <= 106; seq++) {
		e = entry(seq, "{\"v\":1}");
		append(3 * line, &e);
	}
	assert_string_equal(seqs_of(OLD_NAME), "103 104 105");
	assert_string_equal(seqs_of(FILE_NAME), "106");
}

/* The first_seq of every line of a file into seqs; returns how many. */
static size_t seq_list(const char *name, int64_t *seqs, size_t max)
{
	char *text = slurp(name);
	size_t n;

	if (!text)
		return 0;
	n = count_lines(text);
	assert_true(n <= max);
	for (size_t i = 0; i < n; i++) {
		json_t *j = line_json(text, i);

		seqs[i] = json_integer_value(json_object_get(j, "first_seq"));
		json_decref(j);
	}
	free(text);
	return n;
}

/*
 * Entries of many sizes: neither file passes max_size, the old one followed by the
 * current one is every latest entry without a gap, and a rotation happens only when
 * the entry would not have fitted.
 */
static void test_rotation_bound(void **state)
{
	const uint64_t max_size = 4096;
	char payload[700];
	size_t rotations = 0, cur_size = 0;

	for (int64_t i = 0; i < 300; i++) {
		size_t len = 1 + (size_t)(i * 37 % (int64_t)(sizeof(payload) - 1));
		int64_t old[64], cur[64];
		size_t n_old, n_cur;
		struct deadletter_entry e;

		memset(payload, 'p', len);
		payload[len] = '\0';
		e = entry((uint64_t)i, payload);
		append(max_size, &e);
		assert_true(file_size(FILE_NAME) <= max_size);
		n_cur = seq_list(FILE_NAME, cur, 64);
		n_old = seq_list(OLD_NAME, old, 64);
		assert_true(n_cur > 0);
		assert_int_equal(cur[n_cur - 1], i);
		for (size_t k = 1; k < n_cur; k++)
			assert_int_equal(cur[k], cur[k - 1] + 1);
		if (n_cur == 1 && i > 0) {
			/* Rotated: the previous file would have passed max_size. */
			rotations++;
			assert_true(cur_size + file_size(FILE_NAME) > max_size);
			assert_true(n_old > 0);
		}
		if (n_old) {
			assert_true(file_size(OLD_NAME) <= max_size);
			assert_int_equal(old[n_old - 1] + 1, cur[0]);
			for (size_t k = 1; k < n_old; k++)
				assert_int_equal(old[k], old[k - 1] + 1);
		}
		cur_size = file_size(FILE_NAME);
	}
	assert_true(rotations > 10);
}

/* An entry bigger than max_size alone still gets written, in a file of its own. */
static void test_entry_bigger_than_max(void **state)
{
	char payload[600];
	struct deadletter_entry e;

	memset(payload, 'q', sizeof(payload) - 1);
	payload[sizeof(payload) - 1] = '\0';
	e = entry(1, "{}");
	append(100, &e);
	e = entry(2, payload);
	append(100, &e);
	assert_string_equal(seqs_of(OLD_NAME), "1");
	assert_string_equal(seqs_of(FILE_NAME), "2");
	assert_true(file_size(FILE_NAME) > 100);
}

/* A dead-letter.jsonl that is a symlink is not written through. */
static void test_symlink_refused(void **state)
{
	struct deadletter_entry e = entry(1, "{}");
	int fd = open(in_dir("victim"), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	char *victim;

	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(symlink("victim", in_dir(FILE_NAME)), 0);
	assert_int_equal(deadletter_append(dir, BIG, &e), -ELOOP);
	victim = slurp("victim");
	assert_string_equal(victim, "");
	free(victim);
}

static void test_no_dir(void **state)
{
	struct deadletter_entry e = entry(1, "{}");
	char missing[PATH_MAX + 16];

	snprintf(missing, sizeof(missing), "%s/missing", dir);
	assert_int_equal(deadletter_append(missing, BIG, &e), -ENOENT);
}

/*
 * The reason is the server's answer, cut by the uplink to 255 bytes: it may not be valid
 * UTF-8 (any bytes, or a character cut in half). The entry, and above all its payload,
 * must still be kept, not replaced by an empty object.
 */
static void test_reason_not_utf8(void **state)
{
	struct deadletter_entry e = entry(42, "{\"v\":1}");
	char reason[] = "r\xc3\xbc"
			"ckweg \xe2\x82"; /* a euro sign cut after two of its three bytes */
	char *text, line[256];
	bool kept;
	json_t *j;

	e.reason = reason;
	append(BIG, &e);
	text = slurp(FILE_NAME);
	assert_int_equal(count_lines(text), 1);
	j = line_json(text, 0);
	kept = json_object_get(j, "payload") != NULL;
	snprintf(line, sizeof(line), "%s", text);
	free(text);
	if (!kept) {
		json_decref(j);
		fail_msg("the entry was lost: the line is %s", line);
	}
	assert_string_equal(json_string_value(json_object_get(j, "payload")), "{\"v\":1}");
	assert_int_equal(json_integer_value(json_object_get(j, "first_seq")), 42);
	assert_string_equal(json_string_value(json_object_get(j, "topic")), "site/boiler");
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_entry, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_no_reason, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_payload_escaping, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_large_numbers, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_appends, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_rotation, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_rotation_bound, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_entry_bigger_than_max, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_symlink_refused, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_no_dir, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_reason_not_utf8, setup_dir, teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
