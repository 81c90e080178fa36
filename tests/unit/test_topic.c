// SPDX-License-Identifier: MIT
/*
 * Unit tests of topic.c: the 1NCE OS topic rules (1 to 253 bytes of [A-Za-z0-9_/],
 * no "//").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <coapgate/plugin.h>

#include "topic.h"

static void test_valid(void **state)
{
	static const char *const good[] = {
		"a",
		"Z",
		"0",
		"_",
		"boiler",
		"boiler_1",
		"gateway/health",
		"a/b/c/d",
		"ABCxyz019_",
		"site7/hall_2/boiler",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!topic_is_valid(good[i]))
			fail_msg("\"%s\" should be a valid topic", good[i]);
}

static void test_every_byte(void **state)
{
	char t[2] = { 0, 0 };

	for (int c = 1; c < 256; c++) {
		bool want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '_' || c == '/';

		t[0] = (char)c;
		if (topic_is_valid(t) != want)
			fail_msg("topic_is_valid(\"\\x%02x\") != %d", c, want);
	}
}

static void test_invalid(void **state)
{
	static const char *const bad[] = {
		"",    "boiler-1", "a b",      "a.b",	      "a//b", "//",   "a///b",
		"x//", "//x",	   "\xc3\xa4", "caf\xc3\xa9", "a\tb", "a+b",  "a#b",
		"a?b", "t=1",	   "a\nb",     " a",	      "a ",   "\x7f",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (topic_is_valid(bad[i]))
			fail_msg("\"%s\" should not be a valid topic", bad[i]);
	assert_false(topic_is_valid(NULL));
}

/* The rules say nothing about slashes at the ends, and the code allows them. */
static void test_leading_trailing_slash(void **state)
{
	assert_true(topic_is_valid("/"));
	assert_true(topic_is_valid("/a"));
	assert_true(topic_is_valid("a/"));
	assert_true(topic_is_valid("/a/b/"));
	assert_false(topic_is_valid("//a"));
	assert_false(topic_is_valid("a//"));
}

static void test_length(void **state)
{
	char t[CG_TOPIC_MAX + 3];

	assert_int_equal(CG_TOPIC_MAX, 253);
	memset(t, 'a', sizeof(t));
	t[CG_TOPIC_MAX] = 0;
	assert_true(topic_is_valid(t));
	t[CG_TOPIC_MAX] = 'a';
	t[CG_TOPIC_MAX + 1] = 0;
	assert_false(topic_is_valid(t));
	t[CG_TOPIC_MAX + 2] = 0;
	t[CG_TOPIC_MAX + 1] = 'a';
	assert_false(topic_is_valid(t));

	/* Slashes count like any byte, and "//" at the very end is still seen. */
	memset(t, 'a', sizeof(t));
	t[CG_TOPIC_MAX] = 0;
	t[CG_TOPIC_MAX - 1] = '/';
	t[CG_TOPIC_MAX - 2] = '/';
	assert_false(topic_is_valid(t));
	t[CG_TOPIC_MAX - 2] = 'b';
	assert_true(topic_is_valid(t));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),	cmocka_unit_test(test_every_byte),
		cmocka_unit_test(test_invalid), cmocka_unit_test(test_leading_trailing_slash),
		cmocka_unit_test(test_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
