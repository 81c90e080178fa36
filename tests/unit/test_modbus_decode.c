// SPDX-License-Identifier: MIT
/*
 * Unit tests of the Modbus input's decoding (plugins/modbus/decode.c) against the
 * rules in plugins/modbus/README.md: every numeric type in every byte order, with
 * the extremes of each type, negative numbers, NaN and infinities; scale and offset
 * and the field types they imply; bool from bits and registers; single bits; strings
 * with padding, swapped bytes and bytes that are not UTF-8. And the naming of failed
 * requests (fault.c).
 *
 * The orders are checked twice: by hand-written registers of one value per order
 * (the README's table), and for many values through encode() below, which builds the
 * registers the way a slave would, from the order's definition, independently of
 * decode_raw()'s permutation.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <modbus.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "decode.h"
#include "fault.h"
#include "points.h"

static char text[DECODE_TEXT_MAX];

/*
 * The registers a slave sends for value (n_regs registers) in order: the value's bytes
 * from the most significant (A) on; the wire carries them in the order the name lists
 * them, two per register, high byte first.
 */
static void encode(uint64_t value, unsigned n_regs, const char *order, uint16_t *regs)
{
	uint8_t wire[8];
	unsigned n = 2 * n_regs;

	assert_int_equal(strlen(order), n);
	for (unsigned i = 0; i < n; i++) {
		unsigned significance = (unsigned)(order[i] - 'A'); /* 0: most significant */

		wire[i] = (uint8_t)(value >> (8 * (n - 1 - significance)));
	}
	for (unsigned i = 0; i < n_regs; i++)
		regs[i] = (uint16_t)(wire[2 * i] << 8 | wire[2 * i + 1]);
}

static struct point number(enum point_type type, const char *order)
{
	static const unsigned widths[] = {
		[TYPE_INT16] = 1, [TYPE_UINT16] = 1, [TYPE_INT32] = 2,	 [TYPE_UINT32] = 2,
		[TYPE_INT64] = 4, [TYPE_UINT64] = 4, [TYPE_FLOAT32] = 2, [TYPE_FLOAT64] = 4
	};
	bool is_float = type == TYPE_FLOAT32 || type == TYPE_FLOAT64;

	return (struct point){ .name = "v",
			       .kind = KIND_HOLDING,
			       .type = type,
			       .count = (uint16_t)widths[type],
			       .order = order,
			       .scale = 1.0,
			       .field_type = is_float ? CG_FIELD_F64 : CG_FIELD_I64 };
}

static struct cg_field decode_ok(const struct point *p, const uint16_t *regs)
{
	struct cg_field f;

	memset(&f, 0xa5, sizeof(f));
	assert_int_equal(decode_point(p, regs, NULL, &f, text), DECODE_OK);
	assert_string_equal(f.name, p->name);
	assert_int_equal(f.type, p->field_type);
	return f;
}

static const char *const orders16[] = { "AB", "BA" };
static const char *const orders32[] = { "ABCD", "CDAB", "BADC", "DCBA" };
static const char *const orders64[] = { "ABCDEFGH", "GHEFCDAB", "BADCFEHG", "HGFEDCBA" };

/* The README's table: 0x01020304 (and 0x0102030405060708) in each order. */
static void test_orders_by_hand(void **state)
{
	static const struct {
		const char *order;
		uint16_t regs[4];
		unsigned n;
		uint64_t value;
	} cases[] = {
		{ "AB", { 0x0102 }, 1, 0x0102 },
		{ "BA", { 0x0201 }, 1, 0x0102 },
		{ "ABCD", { 0x0102, 0x0304 }, 2, 0x01020304 },
		{ "CDAB", { 0x0304, 0x0102 }, 2, 0x01020304 },
		{ "BADC", { 0x0201, 0x0403 }, 2, 0x01020304 },
		{ "DCBA", { 0x0403, 0x0201 }, 2, 0x01020304 },
		{ "ABCDEFGH", { 0x0102, 0x0304, 0x0506, 0x0708 }, 4, 0x0102030405060708 },
		{ "GHEFCDAB", { 0x0708, 0x0506, 0x0304, 0x0102 }, 4, 0x0102030405060708 },
		{ "BADCFEHG", { 0x0201, 0x0403, 0x0605, 0x0807 }, 4, 0x0102030405060708 },
		{ "HGFEDCBA", { 0x0807, 0x0605, 0x0403, 0x0201 }, 4, 0x0102030405060708 },
	};
	uint16_t regs[4];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(decode_raw(cases[i].regs, cases[i].n, cases[i].order),
				 cases[i].value);
		encode(cases[i].value, cases[i].n, cases[i].order, regs);
		assert_memory_equal(regs, cases[i].regs, cases[i].n * sizeof(uint16_t));
	}
}

static void check_int(enum point_type type, const char *const *orders, size_t n_orders,
		      const int64_t *values, size_t n_values)
{
	uint16_t regs[4];

	for (size_t o = 0; o < n_orders; o++) {
		struct point p = number(type, orders[o]);

		for (size_t v = 0; v < n_values; v++) {
			encode((uint64_t)values[v], p.count, orders[o], regs);
			assert_int_equal(decode_ok(&p, regs).value.i64, values[v]);
		}
	}
}

static void test_signed_integers_every_order(void **state)
{
	static const int64_t v16[] = { 0, 1, -1, 258, -258, INT16_MAX, INT16_MIN, -12345 };
	static const int64_t v32[] = { 0,	  1,	     -1,    16909060, -16909060,
				       INT32_MAX, INT32_MIN, 65536, -65536 };
	static const int64_t v64[] = { 0,
				       1,
				       -1,
				       INT64_MAX,
				       INT64_MIN,
				       4294967296,
				       -4294967296,
				       72623859790382856,
				       -123456789012345678 };

	(void)state;
	check_int(TYPE_INT16, orders16, 2, v16, sizeof(v16) / sizeof(v16[0]));
	check_int(TYPE_INT32, orders32, 4, v32, sizeof(v32) / sizeof(v32[0]));
	check_int(TYPE_INT64, orders64, 4, v64, sizeof(v64) / sizeof(v64[0]));
}

static void test_unsigned_integers_every_order(void **state)
{
	static const int64_t v16[] = { 0, 1, 258, 32768, 65535 };
	static const int64_t v32[] = { 0, 1, 16909060, 2147483648LL, 4294967295LL };
	static const int64_t v64[] = { 0, 1, 4294967296LL, 72623859790382856, INT64_MAX };

	(void)state;
	check_int(TYPE_UINT16, orders16, 2, v16, sizeof(v16) / sizeof(v16[0]));
	check_int(TYPE_UINT32, orders32, 4, v32, sizeof(v32) / sizeof(v32[0]));
	check_int(TYPE_UINT64, orders64, 4, v64, sizeof(v64) / sizeof(v64[0]));
}

static void test_uint64_above_int64_max(void **state)
{
	static const uint64_t values[] = { (uint64_t)INT64_MAX + 1, UINT64_MAX,
					   0xfedcba9876543210 };
	uint16_t regs[4];
	struct cg_field f;

	(void)state;
	for (size_t o = 0; o < 4; o++) {
		struct point p = number(TYPE_UINT64, orders64[o]);
		struct point scaled = p;

		scaled.scaled = true;
		scaled.scale = 1.0;
		scaled.offset = 0.5;
		scaled.field_type = CG_FIELD_F64;
		for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
			encode(values[v], 4, orders64[o], regs);
			/* No i64 holds it: the field is left out ... */
			assert_int_equal(decode_point(&p, regs, NULL, &f, text),
					 DECODE_OUT_OF_RANGE);
			/* ... unless a scale or an offset makes it a float. */
			assert_true(decode_ok(&scaled, regs).value.f64 ==
				    (double)values[v] * 1.0 + 0.5);
		}
	}
}

static uint64_t bits_of_float(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static uint64_t bits_of_double(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

static void test_floats_every_order(void **state)
{
	static const float f32[] = { 0.0f,     -0.0f,	  1.5f,	     -1.5f,  21.47f,
				     FLT_MAX,  -FLT_MAX,  FLT_MIN,   1e-45f, 230.1f,
				     INFINITY, -INFINITY, 12345.678f };
	/* The shortest decimals of f32[], as the input sends them. */
	static const double f32_shortest[] = { 0.0,	 -0.0,	       1.5,	      -1.5,
					       21.47,	 3.4028235e38, -3.4028235e38, 1.1754944e-38,
					       1e-45,	 230.1,	       INFINITY,      -INFINITY,
					       12345.678 };
	static const double f64[] = { 0.0,
				      -0.0,
				      1.5,
				      -1.5,
				      0.1,
				      DBL_MAX,
				      -DBL_MAX,
				      DBL_MIN,
				      5e-324,
				      INFINITY,
				      -INFINITY,
				      1e300,
				      123456789.123456789 };
	uint16_t regs[4];

	(void)state;
	for (size_t o = 0; o < 4; o++) {
		struct point p32 = number(TYPE_FLOAT32, orders32[o]);
		struct point p64 = number(TYPE_FLOAT64, orders64[o]);

		for (size_t v = 0; v < sizeof(f32) / sizeof(f32[0]); v++) {
			double got;

			encode(bits_of_float(f32[v]), 2, orders32[o], regs);
			got = decode_ok(&p32, regs).value.f64;
			/* The device's float32 exactly, to a float32 reader... */
			assert_true((float)got == f32[v]);
			assert_int_equal(signbit(got) != 0, signbit(f32[v]) != 0);
			/* ... as the shortest decimal that is one: 21.47, not
			 * 21.469999313354492. */
			assert_true(got == f32_shortest[v]);
		}
		for (size_t v = 0; v < sizeof(f64) / sizeof(f64[0]); v++) {
			double got;

			encode(bits_of_double(f64[v]), 4, orders64[o], regs);
			got = decode_ok(&p64, regs).value.f64;
			assert_memory_equal(&got, &f64[v], sizeof(got));
		}
		/* NaN passes through, quiet or signalling, either sign. */
		encode(0x7fc00000, 2, orders32[o], regs);
		assert_true(isnan(decode_ok(&p32, regs).value.f64));
		encode(0xff800001, 2, orders32[o], regs);
		assert_true(isnan(decode_ok(&p32, regs).value.f64));
		encode(0x7ff8000000000000, 4, orders64[o], regs);
		assert_true(isnan(decode_ok(&p64, regs).value.f64));
		encode(0xfff0000000000001, 4, orders64[o], regs);
		assert_true(isnan(decode_ok(&p64, regs).value.f64));
	}
}

static void test_scale_and_offset(void **state)
{
	uint16_t regs[4];
	struct point p;
	struct cg_field f;
	volatile double scale = 0.1, offset = -40.0; /* as a user writes them */

	(void)state;
	/* int16 -5 * 0.1 - 40 */
	p = number(TYPE_INT16, "AB");
	p.scaled = true;
	p.scale = scale;
	p.offset = offset;
	p.field_type = CG_FIELD_F64;
	encode((uint64_t)(int64_t)-5, 1, "AB", regs);
	f = decode_ok(&p, regs);
	assert_true(f.value.f64 == -5.0 * scale + offset);

	/* uint32 in CDAB: an energy counter in Wh as kWh */
	p = number(TYPE_UINT32, "CDAB");
	p.scaled = true;
	p.scale = 0.001;
	p.offset = 0.0;
	p.field_type = CG_FIELD_F64;
	encode(4000000000u, 2, "CDAB", regs);
	assert_true(decode_ok(&p, regs).value.f64 == 4000000000.0 * 0.001);

	/* A scale that is the reciprocal of a whole number divides: 3 * 0.1 would be
	 * 0.30000000000000004, 3 / 10 is the double nearest to 0.3. */
	p = number(TYPE_INT16, "AB");
	p.scaled = true;
	p.scale = 0.1;
	p.divisor = 10.0;
	p.offset = 0.0;
	p.field_type = CG_FIELD_F64;
	encode(3, 1, "AB", regs);
	assert_true(decode_ok(&p, regs).value.f64 == 0.3);
	encode((uint64_t)(int64_t)-2153, 1, "AB", regs);
	assert_true(decode_ok(&p, regs).value.f64 == -215.3);

	/* An offset alone makes a float too. */
	p = number(TYPE_INT64, "ABCDEFGH");
	p.scaled = true;
	p.offset = 0.25;
	p.field_type = CG_FIELD_F64;
	encode((uint64_t)INT64_MIN, 4, "ABCDEFGH", regs);
	assert_true(decode_ok(&p, regs).value.f64 == (double)INT64_MIN + 0.25);

	/* Floats are scaled; NaN stays NaN and infinity infinity. */
	p = number(TYPE_FLOAT32, "DCBA");
	p.scaled = true;
	p.scale = -2.0;
	p.offset = 1.0;
	encode(bits_of_float(1.5f), 2, "DCBA", regs);
	assert_true(decode_ok(&p, regs).value.f64 == -2.0);
	encode(bits_of_float(NAN), 2, "DCBA", regs);
	assert_true(isnan(decode_ok(&p, regs).value.f64));
	encode(bits_of_float(INFINITY), 2, "DCBA", regs);
	f = decode_ok(&p, regs);
	assert_true(isinf(f.value.f64) && f.value.f64 < 0);
}

static void test_bool_and_bits(void **state)
{
	struct point coil = { .name = "c",
			      .kind = KIND_COIL,
			      .type = TYPE_BOOL,
			      .count = 1,
			      .field_type = CG_FIELD_BOOL };
	struct point reg = { .name = "r",
			     .kind = KIND_INPUT,
			     .type = TYPE_BOOL,
			     .count = 1,
			     .field_type = CG_FIELD_BOOL };
	struct point bit = { .name = "b",
			     .kind = KIND_HOLDING,
			     .type = TYPE_BIT,
			     .count = 1,
			     .field_type = CG_FIELD_BOOL };
	uint8_t bits[1];
	uint16_t regs[1];
	struct cg_field f;

	(void)state;
	bits[0] = 1;
	assert_int_equal(decode_point(&coil, NULL, bits, &f, text), DECODE_OK);
	assert_true(f.type == CG_FIELD_BOOL && f.value.b);
	bits[0] = 0;
	decode_point(&coil, NULL, bits, &f, text);
	assert_false(f.value.b);
	coil.kind = KIND_DISCRETE;
	bits[0] = 1;
	decode_point(&coil, NULL, bits, &f, text);
	assert_true(f.value.b);

	regs[0] = 0;
	decode_point(&reg, regs, NULL, &f, text);
	assert_false(f.value.b);
	for (unsigned b = 0; b < 16; b++) {
		regs[0] = (uint16_t)(1u << b);
		decode_point(&reg, regs, NULL, &f, text);
		assert_true(f.value.b);
	}

	/* Bit b of 0xA5C3 = 1010 0101 1100 0011. */
	regs[0] = 0xa5c3;
	for (unsigned b = 0; b < 16; b++) {
		bit.bit = (uint8_t)b;
		assert_int_equal(decode_point(&bit, regs, NULL, &f, text), DECODE_OK);
		assert_int_equal(f.type, CG_FIELD_BOOL);
		assert_int_equal(f.value.b, (0xa5c3 >> b) & 1);
	}
}

/* A string point of n registers holding the bytes of s (padded with pad). */
static enum decode_status decode_text(const char *order, const char *s, size_t len, unsigned n,
				      char pad, struct cg_field *f)
{
	struct point p = { .name = "s",
			   .kind = KIND_HOLDING,
			   .type = TYPE_STRING,
			   .count = (uint16_t)n,
			   .order = order,
			   .field_type = CG_FIELD_STRING };
	uint8_t bytes[2 * MODBUS_REQUEST_MAX_REGISTERS];
	uint16_t regs[MODBUS_REQUEST_MAX_REGISTERS];
	bool swap = order[0] == 'B';

	assert_true(len <= 2 * n && n <= MODBUS_REQUEST_MAX_REGISTERS);
	memset(bytes, pad, sizeof(bytes));
	memcpy(bytes, s, len);
	for (unsigned i = 0; i < n; i++)
		regs[i] = swap ? (uint16_t)(bytes[2 * i + 1] << 8 | bytes[2 * i])
			       : (uint16_t)(bytes[2 * i] << 8 | bytes[2 * i + 1]);
	memset(text, 0x5a, sizeof(text));
	return decode_point(&p, regs, NULL, f, text);
}

static void test_strings(void **state)
{
	char full[2 * MODBUS_REQUEST_MAX_REGISTERS + 1];
	struct cg_field f;

	(void)state;
	assert_int_equal(decode_text("AB", "Hello", 5, 3, 0, &f), DECODE_OK);
	assert_int_equal(f.type, CG_FIELD_STRING);
	assert_string_equal(f.value.str, "Hello");
	assert_ptr_equal(f.value.str, text);
	/* "BA": the first character in the low byte of each register. */
	assert_int_equal(decode_text("BA", "Hello", 5, 3, 0, &f), DECODE_OK);
	assert_string_equal(f.value.str, "Hello");
	/* Padding with spaces is trimmed, leading and inner spaces are kept. */
	decode_text("AB", " SDM 630", 8, 10, ' ', &f);
	assert_string_equal(f.value.str, " SDM 630");
	decode_text("AB", "a b  ", 5, 4, 0, &f);
	assert_string_equal(f.value.str, "a b");
	/* The value ends at the first NUL; what follows is garbage. */
	decode_text("AB", "AB\0CD", 5, 3, 'x', &f);
	assert_string_equal(f.value.str, "AB");
	/* All NULs, all spaces: an empty string. */
	decode_text("AB", "", 0, 4, 0, &f);
	assert_string_equal(f.value.str, "");
	decode_text("AB", "", 0, 4, ' ', &f);
	assert_string_equal(f.value.str, "");
	/* UTF-8 is kept. */
	assert_int_equal(decode_text("AB",
				     "Gr\xc3\xbc\xc3\x9f"
				     "e",
				     7, 4, 0, &f),
			 DECODE_OK);
	assert_string_equal(f.value.str, "Gr\xc3\xbc\xc3\x9f"
					 "e");
	assert_int_equal(decode_text("BA", "\xe2\x98\x83\xf0\x9f\x98\x80", 7, 4, 0, &f), DECODE_OK);
	assert_string_equal(f.value.str, "\xe2\x98\x83\xf0\x9f\x98\x80");
	/* Bytes that are not UTF-8 become '?', one each; the rest stays. */
	assert_int_equal(decode_text("AB",
				     "A\xff"
				     "B\xc3",
				     4, 2, 0, &f),
			 DECODE_REPLACED);
	assert_string_equal(f.value.str, "A?B?");
	assert_int_equal(decode_text("AB", "\xc0\xaf\xed\xa0\x80x", 6, 3, 0, &f), DECODE_REPLACED);
	assert_string_equal(f.value.str, "?????x");
	assert_int_equal(decode_text("AB", "\xe2\x98", 2, 1, 0, &f), DECODE_REPLACED);
	assert_string_equal(f.value.str, "??");
	/* 125 registers without a NUL: 250 characters. */
	memset(full, 'z', sizeof(full) - 1);
	full[sizeof(full) - 1] = '\0';
	assert_int_equal(decode_text("AB", full, 250, 125, 0, &f), DECODE_OK);
	assert_string_equal(f.value.str, full);
}

static void test_fault_names(void **state)
{
	char buf[128];

	(void)state;
	assert_int_equal(fault_classify(-EMBXILADD), FAULT_EXCEPTION);
	assert_string_equal(fault_describe(-EMBXILADD, buf, sizeof(buf)),
			    "exception 2 ILLEGAL DATA ADDRESS");
	assert_string_equal(fault_describe(-EMBXILFUN, buf, sizeof(buf)),
			    "exception 1 ILLEGAL FUNCTION");
	assert_string_equal(fault_describe(-EMBXSBUSY, buf, sizeof(buf)),
			    "exception 6 SERVER DEVICE BUSY");
	assert_string_equal(fault_describe(-EMBXGTAR, buf, sizeof(buf)),
			    "exception 11 GATEWAY TARGET DEVICE FAILED TO RESPOND");
	assert_string_equal(fault_describe(-(MODBUS_ENOBASE + 9), buf, sizeof(buf)),
			    "exception 9 (undefined)");
	assert_null(fault_exception_name(0));
	assert_null(fault_exception_name(9));
	assert_null(fault_exception_name(12));
	for (int code = 1; code <= 11; code++)
		assert_int_equal(fault_classify(-(MODBUS_ENOBASE + code)), FAULT_EXCEPTION);

	assert_int_equal(fault_classify(-ETIMEDOUT), FAULT_NO_ANSWER);
	assert_string_equal(fault_describe(-ETIMEDOUT, buf, sizeof(buf)), "no answer");

	assert_int_equal(fault_classify(-EMBBADCRC), FAULT_GARBLED);
	assert_string_equal(fault_describe(-EMBBADCRC, buf, sizeof(buf)), "bad CRC");
	assert_int_equal(fault_classify(-EMBBADDATA), FAULT_GARBLED);
	assert_int_equal(fault_classify(-EMBBADEXC), FAULT_GARBLED);
	assert_int_equal(fault_classify(-EMBUNKEXC), FAULT_GARBLED);
	assert_int_equal(fault_classify(-EMBMDATA), FAULT_GARBLED);
	assert_int_equal(fault_classify(-EMBBADSLAVE), FAULT_GARBLED);

	assert_int_equal(fault_classify(-ECONNRESET), FAULT_LINK);
	assert_int_equal(fault_classify(-EPIPE), FAULT_LINK);
	assert_int_equal(fault_classify(-EIO), FAULT_LINK);
	assert_int_equal(fault_classify(-ECONNREFUSED), FAULT_LINK);
	assert_string_equal(fault_describe(-ECONNRESET, buf, sizeof(buf)),
			    "Connection reset by peer");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_orders_by_hand),
		cmocka_unit_test(test_signed_integers_every_order),
		cmocka_unit_test(test_unsigned_integers_every_order),
		cmocka_unit_test(test_uint64_above_int64_max),
		cmocka_unit_test(test_floats_every_order),
		cmocka_unit_test(test_scale_and_offset),
		cmocka_unit_test(test_bool_and_bits),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_fault_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
