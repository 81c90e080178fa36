// SPDX-License-Identifier: MIT
/*
 * Unit tests of the Modbus input's request planning (plugins/modbus/plan.c): the
 * protocol's limits hit exactly (125 registers, 2000 bits per request), gaps bridged
 * up to max_gap and not one more, coalescing off, the kinds kept apart and in order,
 * bit points inside a register read whole, and where each point's data lands in the
 * poll's buffers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "plan.h"
#include "points.h"

#define MAX_POINTS 2100

static struct point pts[MAX_POINTS];
static size_t n_pts;
static struct plan plan;

static const struct plan_limits protocol = {
	.max_registers = MODBUS_REQUEST_MAX_REGISTERS,
	.max_bits = MODBUS_REQUEST_MAX_BITS,
	.max_gap = 0,
	.coalesce = true,
};

static int setup(void **state)
{
	(void)state;
	n_pts = 0;
	memset(&plan, 0, sizeof(plan));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	plan_free(&plan);
	return 0;
}

/* Add a point; count is its width in registers or bits. */
static struct point *add(enum point_kind kind, unsigned address, unsigned count)
{
	struct point *p = &pts[n_pts++];

	assert_true(n_pts <= MAX_POINTS);
	*p = (struct point){ .name = "p",
			     .kind = kind,
			     .type = TYPE_UINT16,
			     .address = (uint16_t)address,
			     .count = (uint16_t)count };
	return p;
}

static struct point *add_bit(unsigned address, unsigned bit)
{
	struct point *p = add(KIND_HOLDING, address, 1);

	p->type = TYPE_BIT;
	p->bit = (uint8_t)bit;
	return p;
}

static void build(const struct plan_limits *limits)
{
	assert_int_equal(plan_build(pts, n_pts, limits, &plan), 0);
}

static void expect_request(size_t i, enum point_kind kind, unsigned address, unsigned count,
			   unsigned unused, size_t n_points)
{
	const struct plan_request *r;

	assert_true(i < plan.n_requests);
	r = &plan.requests[i];
	assert_int_equal(r->kind, kind);
	assert_int_equal(r->address, address);
	assert_int_equal(r->count, count);
	assert_int_equal(r->unused, unused);
	assert_int_equal(r->n_points, n_points);
}

static void test_one_point(void **state)
{
	(void)state;
	add(KIND_HOLDING, 40, 2);
	build(&protocol);
	assert_int_equal(plan.n_requests, 1);
	expect_request(0, KIND_HOLDING, 40, 2, 0, 1);
	assert_int_equal(plan.n_registers, 2);
	assert_int_equal(plan.n_bits, 0);
	assert_int_equal(plan_point_offset(&plan, pts, 0), 0);
}

static void test_registers_limit_is_exactly_125(void **state)
{
	(void)state;
	/* 125 single registers from 1000: one request. */
	for (unsigned a = 1000; a < 1125; a++)
		add(KIND_INPUT, a, 1);
	build(&protocol);
	assert_int_equal(plan.n_requests, 1);
	expect_request(0, KIND_INPUT, 1000, 125, 0, 125);
	plan_free(&plan);

	/* One more: a second request of one register. */
	add(KIND_INPUT, 1125, 1);
	build(&protocol);
	assert_int_equal(plan.n_requests, 2);
	expect_request(0, KIND_INPUT, 1000, 125, 0, 125);
	expect_request(1, KIND_INPUT, 1125, 1, 0, 1);
	assert_int_equal(plan.n_registers, 126);
	assert_int_equal(plan_point_offset(&plan, pts, 125), 125);
}

static void test_value_is_never_split(void **state)
{
	(void)state;
	/* 124 registers, then a float64 at 124..127: it does not fit in the first
	 * request (128 > 125) and goes whole into the second. */
	for (unsigned a = 0; a < 124; a++)
		add(KIND_HOLDING, a, 1);
	add(KIND_HOLDING, 124, 4);
	build(&protocol);
	assert_int_equal(plan.n_requests, 2);
	expect_request(0, KIND_HOLDING, 0, 124, 0, 124);
	expect_request(1, KIND_HOLDING, 124, 4, 0, 1);
	assert_int_equal(plan_point_offset(&plan, pts, 124), 124);

	plan_free(&plan);
	/* A string of 125 registers is one request of its own, next to anything. */
	n_pts = 0;
	add(KIND_HOLDING, 0, 1);
	add(KIND_HOLDING, 1, 125);
	build(&protocol);
	assert_int_equal(plan.n_requests, 2);
	expect_request(0, KIND_HOLDING, 0, 1, 0, 1);
	expect_request(1, KIND_HOLDING, 1, 125, 0, 1);
}

static void test_bits_limit_is_exactly_2000(void **state)
{
	(void)state;
	for (unsigned a = 0; a < 2000; a++)
		add(KIND_COIL, a, 1);
	build(&protocol);
	assert_int_equal(plan.n_requests, 1);
	expect_request(0, KIND_COIL, 0, 2000, 0, 2000);
	assert_int_equal(plan.n_bits, 2000);
	assert_int_equal(plan.n_registers, 0);
	plan_free(&plan);

	add(KIND_COIL, 2000, 1);
	build(&protocol);
	assert_int_equal(plan.n_requests, 2);
	expect_request(1, KIND_COIL, 2000, 1, 0, 1);
	assert_int_equal(plan_point_offset(&plan, pts, 2000), 2000);
}

static void test_gap_bridged_up_to_max_gap(void **state)
{
	struct plan_limits limits = protocol;

	(void)state;
	/* int16 at 0, float32 at 5: registers 1 to 4 are a gap of 4. */
	add(KIND_HOLDING, 0, 1);
	add(KIND_HOLDING, 5, 2);

	limits.max_gap = 4;
	build(&limits);
	assert_int_equal(plan.n_requests, 1);
	expect_request(0, KIND_HOLDING, 0, 7, 4, 2);
	assert_int_equal(plan_point_offset(&plan, pts, 1), 5);
	plan_free(&plan);

	limits.max_gap = 3;
	build(&limits);
	assert_int_equal(plan.n_requests, 2);
	expect_request(0, KIND_HOLDING, 0, 1, 0, 1);
	expect_request(1, KIND_HOLDING, 5, 2, 0, 1);
	assert_int_equal(plan_point_offset(&plan, pts, 1), 1);
	plan_free(&plan);

	/* Default 0: only adjacent points share a request. */
	build(&protocol);
	assert_int_equal(plan.n_requests, 2);
}

static void test_gap_never_exceeds_the_limit(void **state)
{
	struct plan_limits limits = protocol;

	(void)state;
	/* Bridging 0 and a float32 at 122 makes 124 registers: fits. A float32 at 124
	 * would end 126 registers from 0: it must not be bridged. */
	add(KIND_HOLDING, 0, 1);
	add(KIND_HOLDING, 122, 2);
	limits.max_gap = 200;
	build(&limits);
	assert_int_equal(plan.n_requests, 1);
	expect_request(0, KIND_HOLDING, 0, 124, 121, 2);
	plan_free(&plan);

	pts[1].address = 124;
	build(&limits);
	assert_int_equal(plan.n_requests, 2);
	expect_request(0, KIND_HOLDING, 0, 1, 0, 1);
	expect_request(1, KIND_HOLDING, 124, 2, 0, 1);
	plan_free(&plan);

	/* Bits: a gap of 1998 bridged (2000 in all), one more not. */
	n_pts = 0;
	add(KIND_DISCRETE, 0, 1);
	add(KIND_DISCRETE, 1999, 1);
	limits.max_gap = 1999;
	build(&limits);
	assert_int_equal(plan.n_requests, 1);
	expect_request(0, KIND_DISCRETE, 0, 2000, 1998, 2);
	plan_free(&plan);
	pts[1].address = 2000;
	build(&limits);
	assert_int_equal(plan.n_requests, 2);
}

static void test_coalescing_off_is_one_request_per_point(void **state)
{
	struct plan_limits limits = protocol;

	(void)state;
	limits.coalesce = false;
	limits.max_gap = 100;
	add(KIND_HOLDING, 2, 2);
	add(KIND_HOLDING, 0, 2);
	add_bit(0, 3);
	add_bit(0, 4);
	add(KIND_COIL, 0, 1);
	add(KIND_COIL, 1, 1);
	build(&limits);
	assert_int_equal(plan.n_requests, 6);
	/* Still in kind and address order; the wider of two at one address first, then
	 * the configuration's order. */
	expect_request(0, KIND_HOLDING, 0, 2, 0, 1);
	expect_request(1, KIND_HOLDING, 0, 1, 0, 1);
	expect_request(2, KIND_HOLDING, 0, 1, 0, 1);
	expect_request(3, KIND_HOLDING, 2, 2, 0, 1);
	expect_request(4, KIND_COIL, 0, 1, 0, 1);
	expect_request(5, KIND_COIL, 1, 1, 0, 1);
	assert_int_equal(plan.point_request[0], 3);
	assert_int_equal(plan.point_request[1], 0);
	assert_int_equal(plan.point_request[2], 1);
	assert_int_equal(plan.point_request[3], 2);
	assert_int_equal(plan.point_request[4], 4);
	assert_int_equal(plan.point_request[5], 5);
	/* Each request has buffer space of its own. */
	assert_int_equal(plan.n_registers, 6);
	assert_int_equal(plan.n_bits, 2);
	assert_int_equal(plan_point_offset(&plan, pts, 0), 4);
	assert_int_equal(plan_point_offset(&plan, pts, 3), 3);
	assert_int_equal(plan_point_offset(&plan, pts, 5), 1);
}

static void test_kinds_apart_and_in_order(void **state)
{
	(void)state;
	/* The same addresses in all four tables, given in reverse order. */
	add(KIND_DISCRETE, 0, 1);
	add(KIND_DISCRETE, 1, 1);
	add(KIND_COIL, 0, 1);
	add(KIND_INPUT, 0, 2);
	add(KIND_HOLDING, 1, 1);
	add(KIND_HOLDING, 0, 1);
	build(&protocol);
	assert_int_equal(plan.n_requests, 4);
	expect_request(0, KIND_HOLDING, 0, 2, 0, 2);
	expect_request(1, KIND_INPUT, 0, 2, 0, 1);
	expect_request(2, KIND_COIL, 0, 1, 0, 1);
	expect_request(3, KIND_DISCRETE, 0, 2, 0, 2);
	assert_int_equal(plan.n_registers, 4);
	assert_int_equal(plan.n_bits, 3);
	/* Registers: holding 0-1 at 0, input 0-1 at 2; bits: coil at 0, discrete at 1. */
	assert_int_equal(plan_point_offset(&plan, pts, 5), 0);
	assert_int_equal(plan_point_offset(&plan, pts, 4), 1);
	assert_int_equal(plan_point_offset(&plan, pts, 3), 2);
	assert_int_equal(plan_point_offset(&plan, pts, 2), 0);
	assert_int_equal(plan_point_offset(&plan, pts, 0), 1);
	assert_int_equal(plan_point_offset(&plan, pts, 1), 2);
}

static void test_bits_of_a_register_read_whole(void **state)
{
	(void)state;
	/* A status word at 10, three of its bits, and a bit of 11 next to it. */
	add_bit(10, 0);
	add(KIND_HOLDING, 10, 1);
	add_bit(10, 15);
	add_bit(11, 7);
	add_bit(10, 3);
	build(&protocol);
	assert_int_equal(plan.n_requests, 1);
	expect_request(0, KIND_HOLDING, 10, 2, 0, 5);
	for (size_t i = 0; i < n_pts; i++)
		assert_int_equal(plan_point_offset(&plan, pts, i), pts[i].address - 10);
}

static void test_unsorted_points(void **state)
{
	struct plan_limits limits = protocol;

	(void)state;
	limits.max_gap = 1;
	add(KIND_HOLDING, 30, 2);
	add(KIND_HOLDING, 10, 4);
	add(KIND_HOLDING, 21, 1);
	add(KIND_HOLDING, 14, 2);
	add(KIND_HOLDING, 17, 2); /* a gap of 1 after 14-15: bridged */
	add(KIND_HOLDING, 22, 1); /* a gap of 2 after 17-18: a new request */
	build(&limits);
	assert_int_equal(plan.n_requests, 3);
	expect_request(0, KIND_HOLDING, 10, 9, 1, 3);
	expect_request(1, KIND_HOLDING, 21, 2, 0, 2);
	expect_request(2, KIND_HOLDING, 30, 2, 0, 1);
	assert_int_equal(plan_point_offset(&plan, pts, 0), 11);
	assert_int_equal(plan_point_offset(&plan, pts, 4), 7);
	assert_int_equal(plan_point_offset(&plan, pts, 5), 10);
}

static void test_top_of_the_address_space(void **state)
{
	(void)state;
	add(KIND_HOLDING, 65531, 4);
	add(KIND_HOLDING, 65535, 1);
	build(&protocol);
	assert_int_equal(plan.n_requests, 1);
	expect_request(0, KIND_HOLDING, 65531, 5, 0, 2);
}

static void test_points_the_limits_cannot_serve(void **state)
{
	struct plan_limits limits = protocol;

	(void)state;
	assert_int_equal(plan_build(pts, 0, &protocol, &plan), -EINVAL);
	add(KIND_HOLDING, 0, 126);
	assert_int_equal(plan_build(pts, n_pts, &protocol, &plan), -EINVAL);
	pts[0].count = 0;
	assert_int_equal(plan_build(pts, n_pts, &protocol, &plan), -EINVAL);
	limits.max_registers = 10;
	pts[0].count = 11;
	assert_int_equal(plan_build(pts, n_pts, &limits, &plan), -EINVAL);
	assert_null(plan.requests);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_point, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registers_limit_is_exactly_125, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_value_is_never_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bits_limit_is_exactly_2000, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gap_bridged_up_to_max_gap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gap_never_exceeds_the_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_coalescing_off_is_one_request_per_point, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kinds_apart_and_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bits_of_a_register_read_whole, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unsorted_points, setup, teardown),
		cmocka_unit_test_setup_teardown(test_top_of_the_address_space, setup, teardown),
		cmocka_unit_test_setup_teardown(test_points_the_limits_cannot_serve, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
