// SPDX-License-Identifier: MIT
/*
 * Unit tests of util.c (UTF-8 validation) and textbuf.c (the growable buffer, JSON
 * strings and the shortest round-trip formatting of doubles).
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "textbuf.h"
#include "utf8.h"
#include "util.h"

static void expect_utf8(const char *s, size_t len, bool want)
{
	if (utf8_is_valid(s, len) != want) {
		char hex[256] = "";

		for (size_t i = 0; i < len && i < 60; i++)
			snprintf(hex + strlen(hex), sizeof(hex) - strlen(hex), "%02x ",
				 (unsigned char)s[i]);
		fail_msg("utf8_is_valid(%s) should be %d", hex, want);
	}
}

#define VALID(s)   expect_utf8((s), sizeof(s) - 1, true)
#define INVALID(s) expect_utf8((s), sizeof(s) - 1, false)

static void test_utf8_valid(void **state)
{
	expect_utf8("", 0, true);
	VALID("plain ASCII ~!@#");
	VALID("\x01\x7f");
	VALID("\xc2\x80");	   /* U+0080, the smallest 2-byte form */
	VALID("\xdf\xbf");	   /* U+07FF */
	VALID("\xe0\xa0\x80");	   /* U+0800, the smallest 3-byte form */
	VALID("\xed\x9f\xbf");	   /* U+D7FF, below the surrogates */
	VALID("\xee\x80\x80");	   /* U+E000, above them */
	VALID("\xef\xbf\xbf");	   /* U+FFFF */
	VALID("\xf0\x90\x80\x80"); /* U+10000, the smallest 4-byte form */
	VALID("\xf4\x8f\xbf\xbf"); /* U+10FFFF, the largest code point */
	VALID("gr\xc3\xbc\xc3\x9f"
	      "e \xe2\x82\xac \xf0\x9f\x98\x80"); /* grüße € 😀 */
	/* The length rules, not a NUL: an embedded NUL is a valid character. */
	expect_utf8("a\0b", 3, true);
	expect_utf8("ab\xff", 2, true);
}

static void test_utf8_invalid(void **state)
{
	INVALID("\x80"); /* a lone continuation byte */
	INVALID("a\xbf"
		"b");
	INVALID("\xc0\x80");		     /* overlong NUL */
	INVALID("\xc0\xaf");		     /* overlong '/' */
	INVALID("\xc1\xbf");		     /* overlong U+007F */
	INVALID("\xe0\x80\xaf");	     /* overlong '/' in 3 bytes */
	INVALID("\xe0\x9f\xbf");	     /* overlong U+07FF */
	INVALID("\xf0\x80\x80\xaf");	     /* overlong '/' in 4 bytes */
	INVALID("\xf0\x8f\xbf\xbf");	     /* overlong U+FFFF */
	INVALID("\xed\xa0\x80");	     /* U+D800, a surrogate */
	INVALID("\xed\xbf\xbf");	     /* U+DFFF */
	INVALID("\xed\xa0\xbd\xed\xb8\x80"); /* a CESU-8 surrogate pair */
	INVALID("\xf4\x90\x80\x80");	     /* U+110000 */
	INVALID("\xf5\x80\x80\x80");
	INVALID("\xf7\xbf\xbf\xbf");
	INVALID("\xf8\x88\x80\x80\x80"); /* 5-byte forms */
	INVALID("\xfc\x84\x80\x80\x80\x80");
	INVALID("\xfe");
	INVALID("\xff");
	INVALID("\xc2"); /* truncated at the end */
	INVALID("\xe2\x82");
	INVALID("\xf0\x9f\x98");
	INVALID("\xe2\x82 "); /* truncated inside */
	INVALID("\xc2\x41");  /* continuation expected */
	INVALID("\xe2\x28\xa1");
	INVALID("\xf0\x9f\x98\x28");
	INVALID("ok\xc3");
	/* The length given is the end, even inside a character. */
	expect_utf8("\xc3\xbc", 1, false);
	expect_utf8("\xe2\x82\xac", 2, false);
}

static void test_format_double_examples(void **state)
{
	static const struct {
		double v;
		const char *text;
	} cases[] = {
		{ 0.0, "0" },
		{ -0.0, "-0" },
		{ 0.1, "0.1" },
		{ 0.2, "0.2" },
		{ 0.3, "0.3" },
		{ 1.0, "1" },
		{ -1.5, "-1.5" },
		{ 0.25, "0.25" },
		{ 671.43, "671.43" },
		{ 3.14159, "3.14159" },
		{ 1e300, "1e+300" },
		{ 1e-300, "1e-300" },
		{ 5e-324, "5e-324" },
		{ 2.2250738585072014e-308, "2.2250738585072014e-308" },
		{ DBL_MAX, "1.7976931348623157e+308" },
		{ 0.1 + 0.2, "0.30000000000000004" },
		{ 123456.0, "123456" },
		{ 1.0 / 3.0, "0.3333333333333333" },
		{ 2.0 / 3.0, "0.6666666666666666" },
	};
	char buf[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		format_double(buf, sizeof(buf), cases[i].v);
		assert_string_equal(buf, cases[i].text);
	}
	format_double(buf, sizeof(buf), NAN);
	assert_string_equal(buf, "nan");
	format_double(buf, sizeof(buf), INFINITY);
	assert_string_equal(buf, "inf");
	format_double(buf, sizeof(buf), -INFINITY);
	assert_string_equal(buf, "-inf");
}

/*
 * BUG (textbuf.c, format_double()): the first precision tried is "%.1g", which
 * writes 20.0 as "2e+01", 100.0 as "1e+02" and 1500.0 as "1.5e+03": texts that read
 * back exactly but are not the shortest ("20", "100", "1500") that textbuf.h
 * promises. coapgated --test then prints a temperature of 20.0 as 2e+01.
 */
static void test_format_double_integers(void **state)
{
	char buf[64];

	format_double(buf, sizeof(buf), 20.0);
	assert_string_equal(buf, "20");
	format_double(buf, sizeof(buf), 100.0);
	assert_string_equal(buf, "100");
	format_double(buf, sizeof(buf), 1500.0);
	assert_string_equal(buf, "1500");
	format_double(buf, sizeof(buf), -40.0);
	assert_string_equal(buf, "-40");
}

static double random_double(void)
{
	uint64_t bits;
	double d;

	do {
		bits = (uint64_t)random() << 42 ^ (uint64_t)random() << 21 ^ (uint64_t)random() ^
		       (uint64_t)(random() & 1) << 63;
		memcpy(&d, &bits, sizeof(d));
	} while (!isfinite(d));
	return d;
}

/* strtod(format_double(v)) == v, with nothing left over. */
static void check_round_trip(double v)
{
	char buf[64], *end;
	double back;

	format_double(buf, sizeof(buf), v);
	back = strtod(buf, &end);
	if (*end || back != v || signbit(back) != signbit(v))
		fail_msg("format_double(%.17g) = \"%s\" does not read back", v, buf);
}

static void test_format_double_round_trip(void **state)
{
	srandom(7);
	for (int i = 0; i < 200000; i++)
		check_round_trip(random_double());
	/* Values people actually measure: a few decimals in a sensible range. */
	for (int i = 0; i < 100000; i++)
		check_round_trip((double)(random() % 2000001 - 1000000) / 100.0);
	for (int i = 0; i < 100000; i++)
		check_round_trip((double)random() / (double)RAND_MAX);
}

static void test_textbuf_append(void **state)
{
	struct textbuf b = { 0 };
	char *s;

	textbuf_append(&b, "abc", 3);
	assert_string_equal(b.data, "abc");
	assert_int_equal(b.len, 3);
	textbuf_append(&b, "defXYZ", 3);
	assert_string_equal(b.data, "abcdef");
	textbuf_append(&b, "", 0);
	assert_int_equal(b.len, 6);
	/* Bytes, not C strings: an embedded NUL is kept and the text stays terminated. */
	textbuf_append(&b, "g\0h", 3);
	assert_int_equal(b.len, 9);
	assert_memory_equal(b.data, "abcdefg\0h", 10);
	assert_true(b.size > b.len);
	textbuf_puts(&b, "!");
	assert_int_equal(b.len, 10);
	assert_memory_equal(b.data, "abcdefg\0h!", 11);
	s = textbuf_steal(&b);
	assert_memory_equal(s, "abcdefg\0h!", 11);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.size, 0);
	free(s);
}

static void test_textbuf_grows(void **state)
{
	struct textbuf b = { 0 };
	char expect[20001];

	for (int i = 0; i < 20000; i++) {
		expect[i] = (char)('a' + i % 26);
		textbuf_append(&b, &expect[i], 1);
	}
	expect[20000] = 0;
	assert_int_equal(b.len, 20000);
	assert_string_equal(b.data, expect);
	textbuf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	/* A freed buffer is reusable. */
	textbuf_puts(&b, "again");
	assert_string_equal(b.data, "again");
	textbuf_free(&b);
}

static void test_textbuf_printf(void **state)
{
	struct textbuf b = { 0 };
	char big[5000];
	char *s;

	textbuf_printf(&b, "%d-%s", 42, "x");
	assert_string_equal(b.data, "42-x");
	textbuf_printf(&b, "%s", "");
	assert_string_equal(b.data, "42-x");
	assert_int_equal(b.len, 4);
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	textbuf_printf(&b, "[%s]%lld", big, -9223372036854775807LL - 1);
	assert_int_equal(b.len, 4 + 1 + 4999 + 1 + 20);
	assert_int_equal(strncmp(b.data, "42-x[qqq", 8), 0);
	assert_string_equal(b.data + 4 + 1 + 4999, "]-9223372036854775808");
	assert_int_equal(strlen(b.data), b.len);
	s = textbuf_steal(&b);
	free(s);

	/* printf into an empty buffer yields a terminated empty text. */
	textbuf_printf(&b, "%s", "");
	assert_non_null(b.data);
	assert_string_equal(b.data, "");
	textbuf_free(&b);
}

static void expect_json_string(const char *s, const char *want)
{
	struct textbuf b = { 0 };

	textbuf_puts(&b, "<");
	textbuf_json_string(&b, s);
	textbuf_puts(&b, ">");
	assert_string_equal(b.data, want);
	assert_int_equal(strlen(b.data), b.len);
	textbuf_free(&b);
}

static void test_textbuf_json_string(void **state)
{
	expect_json_string("", "<\"\">");
	expect_json_string("plain", "<\"plain\">");
	expect_json_string("a\"b", "<\"a\\\"b\">");
	expect_json_string("back\\slash", "<\"back\\\\slash\">");
	expect_json_string("a/b", "<\"a/b\">");
	expect_json_string("\n\r\t\b\f", "<\"\\n\\r\\t\\b\\f\">");
	expect_json_string("\x01\x1f", "<\"\\u0001\\u001F\">");
	expect_json_string("\x7f", "<\"\x7f\">");
	/* UTF-8 passes through unescaped. */
	expect_json_string("gr\xc3\xbc\xc3\x9f"
			   "e \xe2\x82\xac \xf0\x9f\x98\x80",
			   "<\"gr\xc3\xbc\xc3\x9f"
			   "e \xe2\x82\xac \xf0\x9f\x98\x80\">");
	/* Invalid UTF-8 cannot be a JSON string: null, never broken JSON. */
	expect_json_string("bad\xff", "<null>");
}

static void test_textbuf_steal_empty(void **state)
{
	struct textbuf b = { 0 };
	char *s = textbuf_steal(&b);

	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);
	textbuf_free(&b);
	textbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_valid),
		cmocka_unit_test(test_utf8_invalid),
		cmocka_unit_test(test_format_double_examples),
		cmocka_unit_test(test_format_double_integers),
		cmocka_unit_test(test_format_double_round_trip),
		cmocka_unit_test(test_textbuf_append),
		cmocka_unit_test(test_textbuf_grows),
		cmocka_unit_test(test_textbuf_printf),
		cmocka_unit_test(test_textbuf_json_string),
		cmocka_unit_test(test_textbuf_steal_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
