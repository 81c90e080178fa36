// SPDX-License-Identifier: MIT
/*
 * Unit tests of the Modbus input's configuration checks (plugins/modbus/points.c):
 * each rule of plugins/modbus/README.md refused with the address of the value at
 * fault (which the daemon turns into FILE:LINE; tests/integration/test_modbus.py
 * checks those), every mistake reported rather than the first, and what a checked
 * point becomes: its width, byte permutation and field type.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "points.h"

#define MAX_REPORTS 16

static struct {
	const void *where;
	char message[512];
} reports[MAX_REPORTS];
static size_t n_reports;

static void collect(void *userdata, const void *where, const char *message)
{
	(void)userdata;
	assert_true(n_reports < MAX_REPORTS);
	reports[n_reports].where = where;
	snprintf(reports[n_reports].message, sizeof(reports[0].message), "%s", message);
	n_reports++;
}

static const struct points_reporter reporter = { .report = collect };

#define MAX_SLAVE_POINTS 70

static struct modbus_point_conf points[3][MAX_SLAVE_POINTS];
static struct modbus_slave_conf slaves[3];
static struct modbus_conf conf;

static struct modbus_point_conf *point(size_t slave, size_t i, const char *name, int kind,
				       int64_t address, int type)
{
	struct modbus_point_conf *p = &points[slave][i];

	*p = (struct modbus_point_conf){ .name = name,
					 .kind = kind,
					 .address = address,
					 .type = type,
					 .order = ORDER_ABCD,
					 .bit = POINT_NO_BIT,
					 .length = POINT_NO_LENGTH,
					 .scale = 1.0,
					 .offset = 0.0 };
	if (i + 1 > slaves[slave].points.count)
		slaves[slave].points.count = i + 1;
	return p;
}

/* A valid TCP bus: slave 0 "meter" (unit 1) with a float32 at holding 0, slave 1
 * unnamed (unit 2) with a coil. Tests change what they check. */
static int setup(void **state)
{
	(void)state;
	n_reports = 0;
	memset(points, 0, sizeof(points));
	memset(slaves, 0, sizeof(slaves));
	for (size_t s = 0; s < 3; s++)
		slaves[s] = (struct modbus_slave_conf){ .unit = (int64_t)s + 1,
							.interval_usec = 1000000,
							.points = { .items = points[s] } };
	slaves[0].name = "meter";
	point(0, 0, "power", KIND_HOLDING, 0, TYPE_FLOAT32);
	point(1, 0, "relay", KIND_COIL, 0, TYPE_BOOL);
	conf = (struct modbus_conf){ .transport = TRANSPORT_TCP,
				     .host = "192.0.2.7",
				     .port = 502,
				     .baud = 9600,
				     .parity = PARITY_EVEN,
				     .data_bits = 8,
				     .stop_bits = 1,
				     .coalesce = true,
				     .slaves = { .items = slaves, .count = 2 } };
	return 0;
}

/* Exactly the given reports, in order: each (where, part of its message). */
static void expect(int r, size_t n, ...)
{
	va_list ap;

	if (n == 0 && n_reports > 0)
		fail_msg("unexpected report: %s", reports[0].message);
	assert_int_equal(r, n ? -EINVAL : 0);
	if (n_reports != n) {
		for (size_t i = 0; i < n_reports; i++)
			print_message("report: %s\n", reports[i].message);
		fail_msg("%zu reports, expected %zu", n_reports, n);
	}
	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		const void *where = va_arg(ap, const void *);
		const char *part = va_arg(ap, const char *);

		if (!strstr(reports[i].message, part))
			fail_msg("report \"%s\" lacks \"%s\"", reports[i].message, part);
		assert_ptr_equal(reports[i].where, where);
	}
	va_end(ap);
	n_reports = 0;
}

static int check(void)
{
	n_reports = 0;
	return points_check_conf(&conf, &reporter);
}

static void test_valid_configuration(void **state)
{
	(void)state;
	expect(check(), 0);
	conf.transport = TRANSPORT_RTU;
	conf.host = NULL;
	conf.device = "/dev/ttyUSB0";
	expect(check(), 0);
}

static void test_bus_options(void **state)
{
	(void)state;
	conf.host = NULL;
	expect(check(), 1, &conf.host, "transport \"tcp\" needs host");
	conf.host = "";
	expect(check(), 1, &conf.host, "needs host");
	{
		static char long_host[300];

		memset(long_host, 'a', 254);
		conf.host = long_host;
		expect(check(), 1, &conf.host, "longer than a DNS name");
		long_host[253] = '\0';
		expect(check(), 0);
	}
	conf.host = "h";
	conf.device = "/dev/ttyS0";
	expect(check(), 1, &conf.device, "device is for transport \"rtu\"");

	conf.transport = TRANSPORT_RTU;
	conf.device = NULL;
	expect(check(), 2, &conf.host, "host is for transport \"tcp\"", &conf.device,
	       "needs device");
	conf.host = NULL;
	conf.device = "ttyUSB0";
	expect(check(), 1, &conf.device, "must be an absolute path");
	conf.device = "/dev/ttyUSB0";
	conf.baud = 14400;
	expect(check(), 1, &conf.baud, "baud 14400 is not a standard rate");
	conf.baud = 115200;
	conf.rs485 = true;
	conf.rts = RTS_UP;
	expect(check(), 1, &conf.rts, "exclude each other");
	conf.rts = RTS_NONE;
	expect(check(), 0);

	conf.slaves.count = 0;
	expect(check(), 1, &conf.slaves, "1 to 256 slaves, not 0");
}

static void test_unit_ids(void **state)
{
	(void)state;
	slaves[0].unit = 0;
	expect(check(), 0);
	slaves[0].unit = 255;
	expect(check(), 0);
	slaves[0].unit = 248;
	expect(check(), 1, &slaves[0].unit, "unit 248 is not a Modbus unit id");

	conf.transport = TRANSPORT_RTU;
	conf.host = NULL;
	conf.device = "/dev/ttyS1";
	slaves[0].unit = 0;
	expect(check(), 1, &slaves[0].unit, "broadcast");
	slaves[0].unit = 255;
	expect(check(), 1, &slaves[0].unit, "1 to 247");
	slaves[0].unit = 247;
	expect(check(), 0);
}

static void test_slave_names_and_topics(void **state)
{
	(void)state;
	slaves[1].name = "meter";
	expect(check(), 1, &slaves[1].name, "slave name \"meter\" is used twice");
	/* Two unnamed slaves of one unit (a fast and a slow group) need names. */
	slaves[1].name = NULL;
	slaves[0].name = NULL;
	slaves[1].unit = 1;
	expect(check(), 1, &slaves[1], "slave name \"unit1\" is used twice: give slaves");
	slaves[0].name = "fast";
	expect(check(), 0);
	slaves[0].name = "no spaces";
	expect(check(), 1, &slaves[0].name, "slave name \"no spaces\" must be");

	slaves[0].name = "m";
	slaves[0].topic = "site/meter_1";
	expect(check(), 0);
	slaves[0].topic = "site//meter";
	expect(check(), 1, &slaves[0].topic, "is not a 1NCE OS topic");
	slaves[0].topic = "site/meter-1";
	expect(check(), 1, &slaves[0].topic, "is not a 1NCE OS topic");
}

static void test_number_of_points(void **state)
{
	char names[70][8];

	(void)state;
	slaves[0].points.count = 0;
	expect(check(), 1, &slaves[0].points, "has 0 points");
	for (size_t i = 0; i < 65; i++) {
		snprintf(names[i], sizeof(names[i]), "p%zu", i);
		point(0, i, names[i], KIND_HOLDING, (int64_t)i, TYPE_UINT16);
	}
	slaves[0].points.count = 64;
	expect(check(), 0);
	slaves[0].points.count = 65;
	expect(check(), 1, &slaves[0].points, "has 65 points");
}

static void test_type_fits_kind(void **state)
{
	struct modbus_point_conf *p = &points[1][0];

	(void)state;
	for (int type = TYPE_INT16; type <= TYPE_STRING; type++) {
		p->type = type;
		p->length = type == TYPE_STRING ? 2 : POINT_NO_LENGTH;
		p->bit = type == TYPE_BIT ? 0 : POINT_NO_BIT;
		for (int kind = KIND_HOLDING; kind <= KIND_DISCRETE; kind++) {
			bool bits = kind == KIND_COIL || kind == KIND_DISCRETE;

			p->kind = kind;
			if (!bits || type == TYPE_BOOL)
				expect(check(), 0);
			else
				expect(check(), 1, &p->type,
				       "coils and discrete inputs are "
				       "single bits, use type \"bool\"");
		}
	}
}

static void test_bit_and_length_apply_to_their_types(void **state)
{
	struct modbus_point_conf *p = point(0, 1, "alarm", KIND_INPUT, 10, TYPE_BIT);

	(void)state;
	expect(check(), 1, &p->bit, "type \"bit\" needs bit = 0 to 15");
	p->bit = 16;
	expect(check(), 1, &p->bit, "bit 16 is not in a register");
	p->bit = 15;
	expect(check(), 0);
	p->type = TYPE_UINT16;
	expect(check(), 1, &p->bit, "bit only applies to type \"bit\", not \"uint16\"");
	p->bit = 0;
	expect(check(), 1, &p->bit, "bit only applies");
	p->bit = POINT_NO_BIT;
	p->kind = KIND_COIL;
	p->type = TYPE_BOOL;
	p->bit = 3;
	expect(check(), 1, &p->bit, "bit only applies to type \"bit\", not \"bool\"");

	p->kind = KIND_HOLDING;
	p->bit = POINT_NO_BIT;
	p->type = TYPE_STRING;
	expect(check(), 1, &p->length, "type \"string\" needs length");
	p->length = 8;
	expect(check(), 0);
	p->type = TYPE_INT32;
	expect(check(), 1, &p->length, "length only applies to type \"string\"");
}

static void test_orders(void **state)
{
	struct modbus_point_conf *p = &points[0][0];
	static const struct {
		int type;
		int order;
		const char *error; /* NULL: accepted */
	} cases[] = {
		{ TYPE_INT16, ORDER_ABCD, NULL },
		{ TYPE_INT16, ORDER_AB, NULL },
		{ TYPE_UINT16, ORDER_BA, NULL },
		{ TYPE_INT16, ORDER_CDAB, "does not fit type \"int16\", a single register" },
		{ TYPE_UINT16, ORDER_ABCDEFGH, "use \"AB\" or \"BA\"" },
		{ TYPE_INT32, ORDER_CDAB, NULL },
		{ TYPE_UINT32, ORDER_BADC, NULL },
		{ TYPE_FLOAT32, ORDER_DCBA, NULL },
		{ TYPE_FLOAT32, ORDER_BA, "of 2 registers: use \"ABCD\", \"CDAB\"" },
		{ TYPE_INT32, ORDER_GHEFCDAB, "of 2 registers" },
		{ TYPE_INT64, ORDER_ABCD, NULL },
		{ TYPE_UINT64, ORDER_GHEFCDAB, NULL },
		{ TYPE_FLOAT64, ORDER_HGFEDCBA, NULL },
		{ TYPE_INT64, ORDER_BADCFEHG, NULL },
		{ TYPE_FLOAT64, ORDER_CDAB,
		  "the 64-bit analogue for type \"float64\" is "
		  "\"GHEFCDAB\"" },
		{ TYPE_INT64, ORDER_BADC, "is \"BADCFEHG\"" },
		{ TYPE_UINT64, ORDER_DCBA, "is \"HGFEDCBA\"" },
		{ TYPE_INT64, ORDER_AB, "of 4 registers: use \"ABCDEFGH\"" },
		{ TYPE_STRING, ORDER_BA, NULL },
		{ TYPE_STRING, ORDER_CDAB, "whose registers each hold two characters" },
		{ TYPE_BOOL, ORDER_ABCD, NULL },
		{ TYPE_BOOL, ORDER_BA, "order does not apply to type \"bool\"" },
		{ TYPE_BIT, ORDER_AB, "order does not apply to type \"bit\"" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p->type = cases[i].type;
		p->order = cases[i].order;
		p->length = p->type == TYPE_STRING ? 4 : POINT_NO_LENGTH;
		p->bit = p->type == TYPE_BIT ? 1 : POINT_NO_BIT;
		if (cases[i].error)
			expect(check(), 1, &p->order, cases[i].error);
		else
			expect(check(), 0);
	}
}

static void test_scale_and_offset(void **state)
{
	struct modbus_point_conf *p = &points[0][0];

	(void)state;
	p->scale = 0.0;
	expect(check(), 1, &p->scale, "scale must be a finite number other than 0");
	p->scale = INFINITY;
	expect(check(), 1, &p->scale, "finite");
	p->scale = -0.5;
	p->offset = NAN;
	expect(check(), 1, &p->offset, "offset must be a finite number");
	p->offset = 3;
	expect(check(), 0);

	p = &points[1][0];
	p->scale = 2;
	expect(check(), 1, &p->scale, "only apply to numbers, not to type \"bool\"");
	p->scale = 1;
	p->offset = 1;
	expect(check(), 1, &p->offset, "only apply to numbers");
}

/* Which scales divide instead of multiplying (struct point's divisor). */
static void test_scale_divisors(void **state)
{
	static const struct {
		double scale, divisor;
	} cases[] = {
		{ 0.1, 10 },   { 0.01, 100 }, { 0.001, 1000 }, { 0.5, 2 },	 { 0.25, 4 },
		{ -0.1, -10 }, { 1e-6, 1e6 }, { 0.3, 0 },      { 0.125 * 3, 0 }, { 2, 0 },
		{ 1, 0 },      { -1, 0 },     { 1.5, 0 },
	};
	struct modbus_point_conf *p = &points[0][0];
	struct point *built;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p->scale = cases[i].scale;
		expect(check(), 0);
		assert_int_equal(points_build(&slaves[0], &built), 0);
		if (built[0].divisor != cases[i].divisor)
			fail_msg("scale %g: divisor %g, expected %g", cases[i].scale,
				 built[0].divisor, cases[i].divisor);
		free(built);
	}
}

static void test_address_range(void **state)
{
	struct modbus_point_conf *p = &points[0][0];

	(void)state;
	p->address = 65534;
	expect(check(), 0);
	p->address = 65535;
	expect(check(), 1, &p->address,
	       "float32 at address 65535 spans 2 registers and ends "
	       "past address 65535");
	p->type = TYPE_STRING;
	p->length = 10;
	p->address = 65526;
	expect(check(), 0);
	p->address = 65527;
	expect(check(), 1, &p->address, "spans 10 registers");
	p->address = 0;
	p = &points[1][0];
	p->address = 65535;
	expect(check(), 0);
}

static void test_overlaps_and_names(void **state)
{
	struct modbus_point_conf *a = &points[0][0], *b;

	(void)state;
	a->type = TYPE_INT32;
	a->address = 10;
	b = point(0, 1, "b", KIND_HOLDING, 11, TYPE_INT16);
	expect(check(), 1, &b->address,
	       "point \"b\" (holding 11-11) overlaps point \"power\" "
	       "(holding 10-11)");
	b->type = TYPE_INT32;
	b->address = 10;
	expect(check(), 1, &b->address,
	       "reads the same holding registers 10-11 as point "
	       "\"power\"");
	/* Another table is no overlap. */
	b->kind = KIND_INPUT;
	expect(check(), 0);
	/* Bits of a register read whole, several bits of one register. */
	b->kind = KIND_HOLDING;
	b->type = TYPE_BIT;
	b->bit = 3;
	point(0, 2, "c", KIND_HOLDING, 11, TYPE_BIT)->bit = 4;
	point(0, 3, "d", KIND_HOLDING, 11, TYPE_BIT)->bit = 3;
	expect(check(), 0);
	points[0][3].address = 10;
	expect(check(), 1, &points[0][3].bit,
	       "point \"d\" reads bit 3 of holding register "
	       "10, as point \"b\" does");
	/* Coils: one address, one point. */
	point(1, 1, "relay2", KIND_COIL, 0, TYPE_BOOL);
	expect(check(), 2, &points[0][3].bit, "bit 3", &points[1][1].address,
	       "point \"relay2\" reads the same coil bits 0-0 as point \"relay\"");

	/* Field names: valid, unique within a slave, free across slaves. */
	points[0][3].address = 11;
	points[0][3].bit = 5;
	points[1][1].address = 1;
	expect(check(), 0);
	points[1][1].name = "power";
	expect(check(), 0);
	points[0][2].name = "b";
	expect(check(), 1, &points[0][2].name, "point name \"b\" is used twice");
	points[0][2].name = "a/b";
	expect(check(), 1, &points[0][2].name, "point name \"a/b\" is not a field name");
}

static void test_every_mistake_is_reported(void **state)
{
	struct modbus_point_conf *p = &points[0][0];

	(void)state;
	conf.host = NULL;
	p->type = TYPE_STRING;
	p->order = ORDER_CDAB;
	p->scale = 3;
	slaves[1].unit = 300;
	points[1][0].type = TYPE_INT16;
	expect(check(), 6, &conf.host, "needs host", &p->length, "needs length", &p->order,
	       "does not fit type \"string\"", &p->scale, "only apply to numbers", &slaves[1].unit,
	       "unit 300", &points[1][0].type, "does not fit kind \"coil\"");
}

static void test_built_points(void **state)
{
	struct point *built;

	(void)state;
	point(0, 1, "i", KIND_INPUT, 5, TYPE_INT64)->order = ORDER_GHEFCDAB;
	point(0, 2, "u", KIND_INPUT, 9, TYPE_UINT32)->scale = 0.1;
	point(0, 3, "s", KIND_HOLDING, 20, TYPE_STRING)->length = 6;
	point(0, 4, "w", KIND_HOLDING, 30, TYPE_INT16)->offset = -1;
	point(0, 5, "f", KIND_HOLDING, 31, TYPE_FLOAT64);
	point(0, 6, "b", KIND_HOLDING, 35, TYPE_BIT)->bit = 9;
	point(0, 7, "x", KIND_HOLDING, 36, TYPE_UINT16)->order = ORDER_BA;
	expect(check(), 0);
	assert_int_equal(points_build(&slaves[0], &built), 0);
	assert_string_equal(built[0].order, "ABCD");
	assert_int_equal(built[0].count, 2);
	assert_int_equal(built[0].field_type, CG_FIELD_F64);
	assert_false(built[0].scaled);
	assert_string_equal(built[1].order, "GHEFCDAB");
	assert_int_equal(built[1].count, 4);
	assert_int_equal(built[1].field_type, CG_FIELD_I64);
	assert_int_equal(built[1].kind, KIND_INPUT);
	assert_int_equal(built[1].address, 5);
	assert_true(built[2].scaled);
	assert_int_equal(built[2].field_type, CG_FIELD_F64);
	assert_true(built[2].divisor == 10.0); /* scale 0.1: divide by 10 */
	assert_string_equal(built[3].order, "AB");
	assert_int_equal(built[3].count, 6);
	assert_int_equal(built[3].field_type, CG_FIELD_STRING);
	assert_true(built[4].scaled);
	assert_int_equal(built[4].field_type, CG_FIELD_F64);
	assert_true(built[4].divisor == 0.0); /* scale 1 */
	assert_string_equal(built[5].order, "ABCDEFGH");
	assert_int_equal(built[6].bit, 9);
	assert_null(built[6].order);
	assert_int_equal(built[6].field_type, CG_FIELD_BOOL);
	assert_string_equal(built[7].order, "BA");
	assert_int_equal(built[7].field_type, CG_FIELD_I64);
	free(built);

	assert_int_equal(points_build(&slaves[1], &built), 0);
	assert_int_equal(built[0].count, 1);
	assert_null(built[0].order);
	assert_int_equal(built[0].field_type, CG_FIELD_BOOL);
	free(built);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_valid_configuration, setup),
		cmocka_unit_test_setup(test_bus_options, setup),
		cmocka_unit_test_setup(test_unit_ids, setup),
		cmocka_unit_test_setup(test_slave_names_and_topics, setup),
		cmocka_unit_test_setup(test_number_of_points, setup),
		cmocka_unit_test_setup(test_type_fits_kind, setup),
		cmocka_unit_test_setup(test_bit_and_length_apply_to_their_types, setup),
		cmocka_unit_test_setup(test_orders, setup),
		cmocka_unit_test_setup(test_scale_divisors, setup),
		cmocka_unit_test_setup(test_scale_and_offset, setup),
		cmocka_unit_test_setup(test_address_range, setup),
		cmocka_unit_test_setup(test_overlaps_and_names, setup),
		cmocka_unit_test_setup(test_every_mistake_is_reported, setup),
		cmocka_unit_test_setup(test_built_points, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
