// SPDX-License-Identifier: MIT
/*
 * Unit tests of ratelimit.c, driven with explicit monotonic times: burst, suppression,
 * the suppressed count reported once when the next window starts, and flushing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ratelimit.h"

#define SEC 1000000ULL

/* One ratelimit_test() call and what it must answer. */
static void expect_test(struct ratelimit *rl, uint64_t now, bool allowed, unsigned long suppressed)
{
	unsigned long n = 12345;
	bool ok = ratelimit_test(rl, now, &n);

	if (ok != allowed || n != suppressed)
		fail_msg("ratelimit_test(%llu) = %d, suppressed %lu; expected %d, %lu",
			 (unsigned long long)now, ok, n, allowed, suppressed);
}

static void test_burst_then_suppress(void **state)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 10 * SEC, 3);
	expect_test(&rl, 100 * SEC, true, 0);
	expect_test(&rl, 101 * SEC, true, 0);
	expect_test(&rl, 102 * SEC, true, 0);
	expect_test(&rl, 103 * SEC, false, 0);
	expect_test(&rl, 104 * SEC, false, 0);
	expect_test(&rl, 110 * SEC - 1, false, 0);
	assert_int_equal(rl.suppressed, 3);
	/* The next window starts at the first message 10 s after the window began. */
	expect_test(&rl, 110 * SEC, true, 3);
	/* Reported once only. */
	expect_test(&rl, 111 * SEC, true, 0);
	expect_test(&rl, 112 * SEC, true, 0);
	expect_test(&rl, 113 * SEC, false, 0);
	expect_test(&rl, 200 * SEC, true, 1);
	expect_test(&rl, 300 * SEC, true, 0);
	ratelimit_done(&rl);
}

static void test_window_starts_at_first_message(void **state)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 1000, 1);
	expect_test(&rl, 0, true, 0);
	expect_test(&rl, 999, false, 0);
	expect_test(&rl, 1000, true, 1);
	/* This window began at 1000, so 1999 is still inside it. */
	expect_test(&rl, 1999, false, 0);
	expect_test(&rl, 1999, false, 0);
	expect_test(&rl, 2000, true, 2);
	ratelimit_done(&rl);
}

static void test_flush_after_window(void **state)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 10 * SEC, 2);
	/* Nothing suppressed: nothing to flush, whenever. */
	assert_int_equal(ratelimit_flush(&rl, 0), 0);
	expect_test(&rl, 50 * SEC, true, 0);
	expect_test(&rl, 51 * SEC, true, 0);
	assert_int_equal(ratelimit_flush(&rl, 100 * SEC), 0);
	expect_test(&rl, 52 * SEC, false, 0);
	expect_test(&rl, 53 * SEC, false, 0);
	/* Not before the window has ended. */
	assert_int_equal(ratelimit_flush(&rl, 52 * SEC), 0);
	assert_int_equal(ratelimit_flush(&rl, 60 * SEC - 1), 0);
	assert_int_equal(ratelimit_flush(&rl, 60 * SEC), 2);
	/* Flushed counts are neither flushed again nor reported by the next test. */
	assert_int_equal(ratelimit_flush(&rl, 61 * SEC), 0);
	expect_test(&rl, 61 * SEC, true, 0);
	expect_test(&rl, 62 * SEC, true, 0);
	expect_test(&rl, 63 * SEC, false, 0);
	assert_int_equal(ratelimit_flush(&rl, 70 * SEC), 0);
	assert_int_equal(ratelimit_flush(&rl, 71 * SEC), 1);
	ratelimit_done(&rl);
}

static void test_flush_unconditionally(void **state)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 3600 * SEC, 1);
	expect_test(&rl, 5, true, 0);
	expect_test(&rl, 6, false, 0);
	expect_test(&rl, 7, false, 0);
	assert_int_equal(ratelimit_flush(&rl, 8), 0);
	assert_int_equal(ratelimit_flush(&rl, UINT64_MAX), 2);
	assert_int_equal(ratelimit_flush(&rl, UINT64_MAX), 0);
	ratelimit_done(&rl);
}

static void test_interval_zero_disables(void **state)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 0, 1);
	for (uint64_t t = 0; t < 1000; t++)
		expect_test(&rl, 42, true, 0);
	assert_int_equal(ratelimit_flush(&rl, UINT64_MAX), 0);
	ratelimit_done(&rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_suppress),
		cmocka_unit_test(test_window_starts_at_first_message),
		cmocka_unit_test(test_flush_after_window),
		cmocka_unit_test(test_flush_unconditionally),
		cmocka_unit_test(test_interval_zero_disables),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
