// SPDX-License-Identifier: MIT
/*
 * Unit tests of parse.c: the duration, size, boolean, integer and number syntaxes of
 * the configuration, and the formatting of durations and sizes back to text.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parse.h"

#define SENTINEL 0x5a5a5a5a5a5a5a5aULL
#define SEC	 1000000ULL
#define MIN	 (60 * SEC)
#define HOUR	 (3600 * SEC)
#define DAY	 (86400 * SEC)

static void expect_duration(const char *s, uint64_t want)
{
	uint64_t v = SENTINEL;
	int r = parse_duration(s, &v);

	if (r != 0 || v != want)
		fail_msg("parse_duration(\"%s\") = %d, %" PRIu64 "; expected 0, %" PRIu64, s, r, v,
			 want);
}

/* A refused duration returns error and leaves the output alone. */
static void expect_duration_error(const char *s, int error)
{
	uint64_t v = SENTINEL;
	int r = parse_duration(s, &v);

	if (r != error || v != SENTINEL)
		fail_msg("parse_duration(\"%s\") = %d, %" PRIu64 "; expected %d, untouched", s, r,
			 v, error);
}

static void expect_size(const char *s, uint64_t want)
{
	uint64_t v = SENTINEL;
	int r = parse_size(s, &v);

	if (r != 0 || v != want)
		fail_msg("parse_size(\"%s\") = %d, %" PRIu64 "; expected 0, %" PRIu64, s, r, v,
			 want);
}

static void expect_size_error(const char *s, int error)
{
	uint64_t v = SENTINEL;
	int r = parse_size(s, &v);

	if (r != error || v != SENTINEL)
		fail_msg("parse_size(\"%s\") = %d, %" PRIu64 "; expected %d, untouched", s, r, v,
			 error);
}

static void expect_int64(const char *s, int64_t want)
{
	int64_t v = 0x5a5a;
	int r = parse_int64(s, &v);

	if (r != 0 || v != want)
		fail_msg("parse_int64(\"%s\") = %d, %" PRId64 "; expected 0, %" PRId64, s, r, v,
			 want);
}

static void expect_int64_error(const char *s, int error)
{
	int64_t v = 0x5a5a;
	int r = parse_int64(s, &v);

	if (r != error || v != 0x5a5a)
		fail_msg("parse_int64(\"%s\") = %d, %" PRId64 "; expected %d, untouched", s, r, v,
			 error);
}

static void expect_double(const char *s, double want)
{
	double v = -12345.0;
	int r = parse_double(s, &v);

	if (r != 0 || v != want)
		fail_msg("parse_double(\"%s\") = %d, %.17g; expected 0, %.17g", s, r, v, want);
}

static void expect_double_error(const char *s, int error)
{
	double v = -12345.0;
	int r = parse_double(s, &v);

	if (r != error || v != -12345.0)
		fail_msg("parse_double(\"%s\") = %d, %.17g; expected %d, untouched", s, r, v,
			 error);
}

static void expect_bool(const char *s, int want)
{
	bool v = !want;
	int r = parse_bool(s, &v);

	if (r != 0 || v != (bool)want)
		fail_msg("parse_bool(\"%s\") = %d, %d; expected 0, %d", s, r, v, want);
}

static void expect_bool_error(const char *s)
{
	bool a = true, b = false;
	int r1 = parse_bool(s, &a), r2 = parse_bool(s, &b);

	if (r1 != -EINVAL || r2 != -EINVAL || !a || b)
		fail_msg("parse_bool(\"%s\") = %d; expected -EINVAL, untouched", s, r1);
}

static void test_duration_units(void **state)
{
	expect_duration("1us", 1);
	expect_duration("1usec", 1);
	expect_duration("1ms", 1000);
	expect_duration("1msec", 1000);
	expect_duration("1s", SEC);
	expect_duration("1sec", SEC);
	expect_duration("1m", MIN);
	expect_duration("1min", MIN);
	expect_duration("1h", HOUR);
	expect_duration("1d", DAY);
	expect_duration("500ms", 500 * 1000);
	expect_duration("10s", 10 * SEC);
	expect_duration("250us", 250);
	expect_duration("90min", 90 * MIN);
	expect_duration("7d", 7 * DAY);
}

static void test_duration_decimals(void **state)
{
	/* Exact: no binary rounding of the fraction. */
	expect_duration("1.5s", 1500000);
	expect_duration("0.001s", 1000);
	expect_duration("0.1s", 100000);
	expect_duration("0.3s", 300000);
	expect_duration("0.5ms", 500);
	expect_duration("1.25h", 4500 * SEC);
	expect_duration("1.5d", 36 * HOUR);
	expect_duration("0.000001s", 1);
	expect_duration("1.000001s", 1000001);
	expect_duration("2.5min", 150 * SEC);
	expect_duration(".5s", 500000);
	expect_duration("5.s", 5 * SEC);
	/* Digits finer than the factor allows are dropped, the rest stays exact. */
	expect_duration("1.123456789123456789s", 1123456);
}

static void test_duration_sums_and_blanks(void **state)
{
	expect_duration("1h 30min", 90 * MIN);
	expect_duration("1h30min", 90 * MIN);
	expect_duration("1h\t30min", 90 * MIN);
	expect_duration("1d 2h 3min 4s 5ms 6us", DAY + 2 * HOUR + 3 * MIN + 4 * SEC + 5006);
	expect_duration("1s 1s", 2 * SEC);
	expect_duration("1.5s 500ms", 2 * SEC);
	expect_duration("  10s", 10 * SEC);
	expect_duration("10s  ", 10 * SEC);
	expect_duration(" \t1m\t ", MIN);
	expect_duration("1m 1ms", MIN + 1000);
	expect_duration("1s5ms", SEC + 5000);
}

static void test_duration_zero(void **state)
{
	expect_duration("0", 0);
	expect_duration("  0", 0);
	expect_duration("0s", 0);
	expect_duration("0ms 0us", 0);
	expect_duration("0.0h", 0);
	/* Only "0" itself may be bare. */
	expect_duration_error("00", -EINVAL);
	expect_duration_error("0.0", -EINVAL);
}

static void test_duration_invalid(void **state)
{
	static const char *const bad[] = {
		"",	 "   ",	   "10",  "1.5",      "-1s",	 "-0",	   "+1s",	 "1x",
		"10 s",	 "s",	   "ms",  ".s",	      "1mins",	 "1secs",  "1msecs",	 "1S",
		"1H",	 "1Min",   "1D",  "10s junk", "10s,5ms", "1.2.3s", "1e3s",	 "0x10s",
		"1h 30", "1h 30x", "1 h", "1ss",      "1usecs",	 "1m s",   "one second",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_duration_error(bad[i], -EINVAL);
}

static void test_duration_overflow(void **state)
{
	/* UINT64_MAX us is 213503982d 8h 1min 49.551615s. */
	expect_duration("213503982d", 213503982ULL * DAY);
	expect_duration_error("213503983d", -ERANGE);
	expect_duration_error("213503982d 1d", -ERANGE);
	expect_duration_error("213503982d 9h", -ERANGE);
	expect_duration_error("99999999999999999999s", -ERANGE);
	expect_duration_error("18446744073709551616us", -ERANGE);
	expect_duration_error("999999999999999999999999999999us", -ERANGE);
	expect_duration_error("18446744073709551.616s", -ERANGE);
	expect_duration("213503982d 8h 1min 49s 551ms 615us", UINT64_MAX);
	expect_duration_error("213503982d 8h 1min 49s 551ms 616us", -ERANGE);
}

static void test_size_plain(void **state)
{
	expect_size("0", 0);
	expect_size("1", 1);
	expect_size("4096", 4096);
	expect_size("007", 7);
	expect_size("100B", 100);
	expect_size(" 64 ", 64);
	expect_size("18446744073709551609", 18446744073709551609ULL);
}

static void test_size_suffixes(void **state)
{
	expect_size("1K", 1024);
	expect_size("64K", 65536);
	expect_size("16M", 16ULL << 20);
	expect_size("1G", 1ULL << 30);
	expect_size("1T", 1ULL << 40);
	expect_size("1KiB", 1024);
	expect_size("16MiB", 16ULL << 20);
	expect_size("2GiB", 2ULL << 30);
	expect_size("3TiB", 3ULL << 40);
	expect_size("1KB", 1024);
	expect_size("16MB", 16ULL << 20);
	expect_size("0K", 0);
	expect_size("64 K", 65536);
	expect_size("  64K  ", 65536);
	expect_size("1KiB ", 1024);
	/* As implemented: a lowercase multiplier is accepted, a lowercase b or ib is not. */
	expect_size("1k", 1024);
	expect_size("1m", 1ULL << 20);
	expect_size("1g", 1ULL << 30);
	expect_size("1t", 1ULL << 40);
	expect_size("1kB", 1024);
	expect_size("1kiB", 1024);
	expect_size("16777215T", 16777215ULL << 40);
}

static void test_size_invalid(void **state)
{
	static const char *const bad[] = {
		"",    "  ",	"K",	 "B",	  "-1",	      "+1",   "1.5K", "1X",	 "1KK",
		"1BB", "1KiBB", "1 K B", "1Ki",	  "1kib",     "1KIB", "1b",   "1iB",	 "1P",
		"1 2", "0x10",	"1e3",	 "1K 1K", "64K junk", "K1",   "1,5M", "1 MiB x",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_size_error(bad[i], -EINVAL);
}

static void test_size_overflow(void **state)
{
	expect_size_error("18446744073709551616", -ERANGE);
	expect_size_error("99999999999999999999999", -ERANGE);
	expect_size_error("16777216T", -ERANGE);
	expect_size_error("17179869184G", -ERANGE);
	expect_size_error("17592186044416M", -ERANGE);
	expect_size_error("18014398509481984K", -ERANGE);
}

/*
 * BUG (parse.c, scale_decimal()): the overflow check before each digit is
 * "whole > (UINT64_MAX - 9) / 10", which refuses every number from
 * 18446744073709551610 to 18446744073709551615 with -ERANGE although they fit in a
 * uint64_t. parse_size() of format_size(UINT64_MAX) therefore fails.
 */
static void test_size_max_value(void **state)
{
	char buf[64];

	expect_size("18446744073709551615", UINT64_MAX);
	expect_size("18446744073709551610", 18446744073709551610ULL);
	format_size(buf, sizeof(buf), UINT64_MAX);
	assert_string_equal(buf, "18446744073709551615");
	expect_size(buf, UINT64_MAX);
}

static void test_bool(void **state)
{
	static const char *const yes[] = { "true", "yes", "on", "1", "TRUE", "Yes", "oN" };
	static const char *const no[] = { "false", "no", "off", "0", "FALSE", "No", "OFF" };
	static const char *const bad[] = { "",	    "2",       "y",  "n",	  "tru", "true ",
					   " true", "enabled", "01", "truefalse", "nope" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		expect_bool(yes[i], 1);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		expect_bool(no[i], 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bool_error(bad[i]);
}

static void test_int64(void **state)
{
	expect_int64("0", 0);
	expect_int64("42", 42);
	expect_int64("-42", -42);
	expect_int64("+42", 42);
	expect_int64("0x10", 16);
	expect_int64("0XfF", 255);
	expect_int64("-0x10", -16);
	expect_int64("9223372036854775807", INT64_MAX);
	expect_int64("-9223372036854775808", INT64_MIN);
	expect_int64("0x7fffffffffffffff", INT64_MAX);
}

static void test_int64_invalid(void **state)
{
	static const char *const bad[] = { "",	 " 1", "1 ", "1.5", "abc", "12abc",
					   "0x", "-",  "+",  "1e3", "0xg", "- 1" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_int64_error(bad[i], -EINVAL);
	expect_int64_error("9223372036854775808", -ERANGE);
	expect_int64_error("-9223372036854775809", -ERANGE);
	expect_int64_error("0x8000000000000000", -ERANGE);
	expect_int64_error("99999999999999999999", -ERANGE);
}

/*
 * BUG (parse.c, parse_int64()): strtoll(s, &end, 0) reads a leading 0 as octal, so
 * "010" is 8 and "08" is refused, although parse.h promises "a whole decimal (or 0x
 * hex) int64". coapgated --count 010 stops after 8 readings.
 */
static void test_int64_leading_zero_is_decimal(void **state)
{
	expect_int64("010", 10);
	expect_int64("08", 8);
	expect_int64("-0042", -42);
}

static void test_double(void **state)
{
	expect_double("0", 0.0);
	expect_double("1.5", 1.5);
	expect_double("-2.5e3", -2500.0);
	expect_double("0.1", 0.1);
	expect_double("1e300", 1e300);
	expect_double("-0", -0.0);
	expect_double("42", 42.0);
	expect_double("1.7976931348623157e308", 1.7976931348623157e308);
}

static void test_double_invalid(void **state)
{
	static const char *const bad[] = { "", " 1", "1 ", "abc", "1.5x", "1,5", "--1", "e5" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_double_error(bad[i], -EINVAL);
	/* Not finite: refused with -ERANGE. */
	expect_double_error("inf", -ERANGE);
	expect_double_error("-inf", -ERANGE);
	expect_double_error("infinity", -ERANGE);
	expect_double_error("INF", -ERANGE);
	expect_double_error("nan", -ERANGE);
	expect_double_error("NaN", -ERANGE);
	expect_double_error("-nan", -ERANGE);
	expect_double_error("1e400", -ERANGE);
	expect_double_error("-1e400", -ERANGE);
}

static void test_format_duration(void **state)
{
	static const struct {
		uint64_t usec;
		const char *text;
	} cases[] = {
		{ 0, "0" },
		{ 1, "1us" },
		{ 999, "999us" },
		{ 1000, "1ms" },
		{ 250000, "250ms" },
		{ 1500000, "1s 500ms" },
		{ SEC, "1s" },
		{ MIN, "1min" },
		{ 90 * MIN, "1h 30min" },
		{ HOUR, "1h" },
		{ DAY, "1d" },
		{ 7 * DAY, "7d" },
		{ DAY + HOUR + MIN + SEC + 1000 + 1, "1d 1h 1min 1s 1ms 1us" },
		{ DAY + 1, "1d 1us" },
		{ UINT64_MAX, "213503982d 8h 1min 49s 551ms 615us" },
	};
	char buf[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		format_duration(buf, sizeof(buf), cases[i].usec);
		assert_string_equal(buf, cases[i].text);
	}
	/* A short buffer never overflows and stays terminated. */
	memset(buf, 'x', sizeof(buf));
	format_duration(buf, 4, DAY + HOUR);
	assert_true(strlen(buf) < 4);
	assert_int_equal(buf[4], 'x');
}

static void test_format_size(void **state)
{
	static const struct {
		uint64_t bytes;
		const char *text;
	} cases[] = {
		{ 0, "0" },
		{ 1, "1" },
		{ 100, "100" },
		{ 1023, "1023" },
		{ 1024, "1K" },
		{ 1536, "1536" },
		{ 1536 * 1024, "1536K" },
		{ 65536, "64K" },
		{ 16ULL << 20, "16M" },
		{ 1ULL << 30, "1G" },
		{ 1ULL << 40, "1T" },
		{ 1ULL << 50, "1024T" },
		{ 3ULL << 62, "12582912T" },
		{ UINT64_MAX, "18446744073709551615" },
	};
	char buf[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		format_size(buf, sizeof(buf), cases[i].bytes);
		assert_string_equal(buf, cases[i].text);
	}
}

static uint64_t random_u64(void)
{
	return (uint64_t)random() << 42 ^ (uint64_t)random() << 21 ^ (uint64_t)random();
}

static void test_format_round_trip(void **state)
{
	char buf[128];
	uint64_t v;

	srandom(42);
	for (int i = 0; i < 20000; i++) {
		uint64_t x = random_u64() >> (random() % 64);
		/* Sizes with a power-of-1024 factor exercise the suffixes. */
		uint64_t y = (random_u64() >> 40) << (10 * (random() % 5));

		v = SENTINEL;
		format_duration(buf, sizeof(buf), x);
		if (parse_duration(buf, &v) != 0 || v != x)
			fail_msg("duration %" PRIu64 " -> \"%s\" -> %" PRIu64, x, buf, v);

		/* Stay below 18446744073709551610; see test_size_max_value. */
		x %= 18446744073709551610ULL;
		v = SENTINEL;
		format_size(buf, sizeof(buf), x);
		if (parse_size(buf, &v) != 0 || v != x)
			fail_msg("size %" PRIu64 " -> \"%s\" -> %" PRIu64, x, buf, v);
		v = SENTINEL;
		format_size(buf, sizeof(buf), y);
		if (parse_size(buf, &v) != 0 || v != y)
			fail_msg("size %" PRIu64 " -> \"%s\" -> %" PRIu64, y, buf, v);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_units),
		cmocka_unit_test(test_duration_decimals),
		cmocka_unit_test(test_duration_sums_and_blanks),
		cmocka_unit_test(test_duration_zero),
		cmocka_unit_test(test_duration_invalid),
		cmocka_unit_test(test_duration_overflow),
		cmocka_unit_test(test_size_plain),
		cmocka_unit_test(test_size_suffixes),
		cmocka_unit_test(test_size_invalid),
		cmocka_unit_test(test_size_overflow),
		cmocka_unit_test(test_size_max_value),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_int64),
		cmocka_unit_test(test_int64_invalid),
		cmocka_unit_test(test_int64_leading_zero_is_decimal),
		cmocka_unit_test(test_double),
		cmocka_unit_test(test_double_invalid),
		cmocka_unit_test(test_format_duration),
		cmocka_unit_test(test_format_size),
		cmocka_unit_test(test_format_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
