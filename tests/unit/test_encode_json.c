// SPDX-License-Identifier: MIT
/*
 * Unit tests of encode_json.c: the values of one reading (every field type, NaN and
 * infinities as null) and the packer (exact sizes, the budget, greedy filling, the
 * sequence numbers on and off, negative time offsets, groups in first-seen order, the
 * group limit). A property test packs random readings into random budgets and parses
 * every message back with jansson; COAPGATE_TEST_SEED=<n> replays it with another seed.
 */
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
#include <jansson.h>

#include <coapgate/plugin.h>

#include "encode_json.h"
#include "textbuf.h"

#define F64(n, v)                                                   \
	{                                                           \
		.name = (n), .type = CG_FIELD_F64, .value.f64 = (v) \
	}
#define I64(n, v)                                                   \
	{                                                           \
		.name = (n), .type = CG_FIELD_I64, .value.i64 = (v) \
	}
#define BOOL(n, v)                                                 \
	{                                                          \
		.name = (n), .type = CG_FIELD_BOOL, .value.b = (v) \
	}
#define STR(n, v)                                                      \
	{                                                              \
		.name = (n), .type = CG_FIELD_STRING, .value.str = (v) \
	}

#define DEFAULT_SEED	  0x5eed0001c0a9ULL
#define PROPERTY_ROUNDS	  400
#define PROPERTY_READINGS 120

/* ---- encode_json_reading() ---- */

/* Render fields and compare the names and values lists. */
static void expect_reading(const struct cg_field *f, size_t n, const char *want_names,
			   const char *want_values)
{
	struct cg_reading r = { .timestamp_ms = 1, .topic = "t", .fields = f, .n_fields = n };
	struct textbuf names = { 0 }, values = { 0 };

	encode_json_reading(&r, &names, &values);
	assert_string_equal(names.data ? names.data : "", want_names);
	assert_string_equal(values.data ? values.data : "", want_values);
	assert_int_equal(values.len, strlen(want_values));
	textbuf_free(&names);
	textbuf_free(&values);
}

static void expect_one(struct cg_field f, const char *want)
{
	char names[80];

	snprintf(names, sizeof(names), "\"%s\"", f.name);
	expect_reading(&f, 1, names, want);
}

static void test_reading_f64(void **state)
{
	expect_one((struct cg_field)F64("x", 0.1), "0.1");
	expect_one((struct cg_field)F64("x", 1500), "1500");
	expect_one((struct cg_field)F64("x", 21.5), "21.5");
	expect_one((struct cg_field)F64("x", -0.25), "-0.25");
	expect_one((struct cg_field)F64("x", 0), "0");
	expect_one((struct cg_field)F64("x", -3), "-3");
	expect_one((struct cg_field)F64("x", 671.43), "671.43");
	expect_one((struct cg_field)F64("x", 0.1 + 0.2), "0.30000000000000004");
	expect_one((struct cg_field)F64("x", 1.0 / 3), "0.3333333333333333");
	expect_one((struct cg_field)F64("x", 1e300), "1e+300");
	expect_one((struct cg_field)F64("x", -1.5e-300), "-1.5e-300");
	expect_one((struct cg_field)F64("x", 9007199254740991.0), "9007199254740991");
}

static void test_reading_f64_round_trip(void **state)
{
	static const double v[] = { 0.1,     0.7,	    1e-7,    123.456, 2.5e-308, 5e-324,
				    1.7e308, 6.02214076e23, 3.14159, -2.718,  1e21,	12345.678 };

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct cg_field f = F64("x", v[i]);
		struct cg_reading r = { .fields = &f, .n_fields = 1 };
		struct textbuf names = { 0 }, values = { 0 };
		json_t *j;

		encode_json_reading(&r, &names, &values);
		if (strtod(values.data, NULL) != v[i])
			fail_msg("%.17g renders as \"%s\", which reads back differently", v[i],
				 values.data);
		j = json_loads(values.data, JSON_DECODE_ANY, NULL);
		if (!j || !json_is_number(j) || json_number_value(j) != v[i])
			fail_msg("%.17g renders as \"%s\", which is not that JSON number", v[i],
				 values.data);
		json_decref(j);
		textbuf_free(&names);
		textbuf_free(&values);
	}
}

static void test_reading_i64(void **state)
{
	expect_one((struct cg_field)I64("n", 0), "0");
	expect_one((struct cg_field)I64("n", 40), "40");
	expect_one((struct cg_field)I64("n", -1), "-1");
	expect_one((struct cg_field)I64("n", -1234567), "-1234567");
	expect_one((struct cg_field)I64("n", INT64_MAX), "9223372036854775807");
	expect_one((struct cg_field)I64("n", INT64_MIN), "-9223372036854775808");
}

static void test_reading_bool(void **state)
{
	expect_one((struct cg_field)BOOL("ok", true), "true");
	expect_one((struct cg_field)BOOL("ok", false), "false");
}

static void test_reading_string(void **state)
{
	expect_one((struct cg_field)STR("s", ""), "\"\"");
	expect_one((struct cg_field)STR("s", "open"), "\"open\"");
	expect_one((struct cg_field)STR("s", "say \"hi\""), "\"say \\\"hi\\\"\"");
	expect_one((struct cg_field)STR("s", "C:\\dir\\"), "\"C:\\\\dir\\\\\"");
	expect_one((struct cg_field)STR("s", "a\nb\tc\r"), "\"a\\nb\\tc\\r\"");
	expect_one((struct cg_field)STR("s", "\x01\x1f"), "\"\\u0001\\u001F\"");
	/* UTF-8 is valid in JSON text and cheaper unescaped. */
	expect_one((struct cg_field)STR("s", "gr\xc3\xbc\xc3\x9f"
					     "e \xe2\x82\xac \xf0\x9f\x98\x80"),
		   "\"gr\xc3\xbc\xc3\x9f"
		   "e \xe2\x82\xac \xf0\x9f\x98\x80\"");
}

/* Whatever the escaping, jansson reads the exact string back. */
static void test_reading_string_round_trip(void **state)
{
	static const char *const s[] = {
		"",	      "\"",	  "\\",		 "\\\"",	 "a\"b\\c/d",
		"\n\r\t\b\f", "\x01\x7f", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
		"</script>",
	};

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		struct cg_field f = STR("s", s[i]);
		struct cg_reading r = { .fields = &f, .n_fields = 1 };
		struct textbuf names = { 0 }, values = { 0 };
		json_t *j;

		encode_json_reading(&r, &names, &values);
		j = json_loads(values.data, JSON_DECODE_ANY, NULL);
		if (!j || !json_is_string(j) || strcmp(json_string_value(j), s[i]) != 0)
			fail_msg("string %zu renders as <%s>, which does not read back", i,
				 values.data);
		json_decref(j);
		textbuf_free(&names);
		textbuf_free(&values);
	}
}

static void test_reading_nonfinite(void **state)
{
	expect_one((struct cg_field)F64("x", NAN), "null");
	expect_one((struct cg_field)F64("x", -NAN), "null");
	expect_one((struct cg_field)F64("x", INFINITY), "null");
	expect_one((struct cg_field)F64("x", -INFINITY), "null");
}

static void test_reading_fields(void **state)
{
	const struct cg_field f[] = {
		F64("temp", 21.5),   I64("hum", 40),	  BOOL("ok", true),
		STR("door", "open"), F64("A.b-c_9", NAN), I64("min", INT64_MIN),
	};

	expect_reading(f, 6, "\"temp\",\"hum\",\"ok\",\"door\",\"A.b-c_9\",\"min\"",
		       "21.5,40,true,\"open\",null,-9223372036854775808");
	expect_reading(f, 0, "", "");
}

/* The lists are appended, not written over. */
static void test_reading_appends(void **state)
{
	const struct cg_field f[] = { I64("a", 1), I64("b", 2) };
	struct cg_reading r = { .fields = f, .n_fields = 2 };
	struct textbuf names = { 0 }, values = { 0 };

	textbuf_puts(&names, "<");
	textbuf_puts(&values, "<");
	encode_json_reading(&r, &names, &values);
	assert_string_equal(names.data, "<\"a\",\"b\"");
	assert_string_equal(values.data, "<1,2");
	textbuf_free(&names);
	textbuf_free(&values);
}

/* ---- the packer ---- */

static struct encode_item item(uint64_t seq, int64_t ts, const char *names, const char *values)
{
	return (struct encode_item){ .seq = seq,
				     .timestamp_ms = ts,
				     .names = names,
				     .values = values,
				     .values_len = strlen(values) };
}

/* Offer every item (all must be taken), render, compare the text and the size. */
static void expect_message(size_t budget, bool with_seq, const struct encode_item *items, size_t n,
			   const char *want)
{
	struct encode_packer p;
	struct textbuf out = { 0 };

	encode_packer_init(&p, budget, with_seq);
	for (size_t i = 0; i < n; i++)
		if (!encode_packer_add(&p, &items[i]))
			fail_msg("item %zu was refused (size %zu, budget %zu)", i, p.size, budget);
	assert_int_equal(p.n_items, n);
	encode_packer_render(&p, items, n, &out);
	assert_string_equal(out.data, want);
	assert_int_equal(out.len, p.size);
	assert_true(p.size <= budget);
	textbuf_free(&out);
}

static const char TEMP_HUM[] = "\"temp\",\"hum\"";
static const char TEMP_HUM_OK[] = "\"temp\",\"hum\",\"ok\"";
static const char DOOR[] = "\"door\"";

/* The example of encode_json.h. */
static void test_packer_header_example(void **state)
{
	const struct encode_item items[] = {
		item(1200, 1732480000000, TEMP_HUM, "21.5,40"),
		item(1201, 1732480001000, TEMP_HUM, "21.6,41"),
	};

	expect_message(1024, true, items, 2,
		       "{\"v\":1,\"s\":1200,\"t\":1732480000000,\"g\":[{\"f\":[\"temp\",\"hum\"],"
		       "\"r\":[[0,0,21.5,40],[1,1000,21.6,41]]}]}");
}

/* The example of docs/ENCODING.md: two groups. */
static void test_packer_doc_example(void **state)
{
	const struct encode_item items[] = {
		item(1200, 1732480000000, TEMP_HUM_OK, "21.5,40,true"),
		item(1201, 1732480001000, TEMP_HUM_OK, "21.6,41,true"),
		item(1202, 1732480001500, DOOR, "\"open\""),
	};

	expect_message(1024, true, items, 3,
		       "{\"v\":1,\"s\":1200,\"t\":1732480000000,\"g\":[{\"f\":[\"temp\",\"hum\","
		       "\"ok\"],\"r\":[[0,0,21.5,40,true],[1,1000,21.6,41,true]]},{\"f\":"
		       "[\"door\"],\"r\":[[2,1500,\"open\"]]}]}");
}

static void test_packer_without_seq(void **state)
{
	const struct encode_item items[] = {
		item(1200, 1732480000000, TEMP_HUM, "21.5,40"),
		item(1207, 1732480001000, TEMP_HUM, "21.6,41"),
	};

	expect_message(1024, false, items, 2,
		       "{\"v\":1,\"t\":1732480000000,\"g\":[{\"f\":[\"temp\",\"hum\"],"
		       "\"r\":[[0,21.5,40],[1000,21.6,41]]}]}");
}

/* Gaps in the sequence numbers, a timestamp older than the first one. */
static void test_packer_gaps_negative_dt(void **state)
{
	const struct encode_item items[] = {
		item(99, 5000, DOOR, "\"open\""),
		item(105, 4500, DOOR, "\"shut\""),
		item(1000000, 0, DOOR, "\"x\""),
	};

	expect_message(1024, true, items, 3,
		       "{\"v\":1,\"s\":99,\"t\":5000,\"g\":[{\"f\":[\"door\"],"
		       "\"r\":[[0,0,\"open\"],[6,-500,\"shut\"],[999901,-5000,\"x\"]]}]}");
	expect_message(1024, false, items, 3,
		       "{\"v\":1,\"t\":5000,\"g\":[{\"f\":[\"door\"],"
		       "\"r\":[[0,\"open\"],[-500,\"shut\"],[-5000,\"x\"]]}]}");
}

/* Groups in the order their names were first seen, each group's rows in order. */
static void test_packer_group_order(void **state)
{
	static const char A[] = "\"a\"", B[] = "\"b\"", C[] = "\"c\",\"d\"";
	const struct encode_item items[] = {
		item(10, 100, B, "1"),	 item(11, 101, A, "2"), item(12, 102, B, "3"),
		item(13, 103, C, "4,5"), item(14, 104, A, "6"), item(15, 105, B, "7"),
		item(16, 99, C, "8,9"),
	};

	expect_message(1024, true, items, 7,
		       "{\"v\":1,\"s\":10,\"t\":100,\"g\":["
		       "{\"f\":[\"b\"],\"r\":[[0,0,1],[2,2,3],[5,5,7]]},"
		       "{\"f\":[\"a\"],\"r\":[[1,1,2],[4,4,6]]},"
		       "{\"f\":[\"c\",\"d\"],\"r\":[[3,3,4,5],[6,-1,8,9]]}]}");
}

/* Names are compared by pointer: an equal list elsewhere is another group. */
static void test_packer_groups_by_pointer(void **state)
{
	static const char A1[] = "\"a\"", A2[] = "\"a\"";
	const struct encode_item items[] = { item(1, 0, A1, "1"), item(2, 0, A2, "2") };

	expect_message(1024, true, items, 2,
		       "{\"v\":1,\"s\":1,\"t\":0,\"g\":[{\"f\":[\"a\"],\"r\":[[0,0,1]]},"
		       "{\"f\":[\"a\"],\"r\":[[1,0,2]]}]}");
}

/* A reading without fields is a row of its offsets alone. */
static void test_packer_no_fields(void **state)
{
	const struct encode_item items[] = { item(7, 10, "", ""), item(8, 20, "", "") };

	expect_message(1024, true, items, 2,
		       "{\"v\":1,\"s\":7,\"t\":10,\"g\":[{\"f\":[],\"r\":[[0,0],[1,10]]}]}");
}

static void test_packer_extreme_numbers(void **state)
{
	const struct encode_item items[] = {
		item(UINT64_MAX - 1, INT64_MAX, DOOR, "1"),
		item(UINT64_MAX, 0, DOOR, "2"),
	};

	expect_message(1024, true, items, 2,
		       "{\"v\":1,\"s\":18446744073709551614,\"t\":9223372036854775807,"
		       "\"g\":[{\"f\":[\"door\"],\"r\":[[0,0,1],[1,-9223372036854775807,2]]}]}");
}

/* The budget holds to the byte: exactly the size fits, one byte less does not. */
static void test_packer_budget_exact(void **state)
{
	const struct encode_item items[] = {
		item(1, 1000, TEMP_HUM, "21.5,40"),
		item(2, 2000, TEMP_HUM, "21.6,41"),
		item(3, 3000, DOOR, "\"open\""),
	};
	size_t size[4];
	struct encode_packer p;

	/* The sizes of 1, 2 and 3 items with an unlimited budget. */
	encode_packer_init(&p, SIZE_MAX, true);
	size[0] = 0;
	for (size_t i = 0; i < 3; i++) {
		assert_true(encode_packer_add(&p, &items[i]));
		size[i + 1] = p.size;
		assert_true(size[i + 1] > size[i]);
	}
	for (size_t n = 1; n <= 3; n++) {
		struct encode_packer before;

		encode_packer_init(&p, size[n], true);
		for (size_t i = 0; i < n; i++)
			assert_true(encode_packer_add(&p, &items[i]));
		assert_int_equal(p.size, size[n]);

		encode_packer_init(&p, size[n] - 1, true);
		for (size_t i = 0; i + 1 < n; i++)
			assert_true(encode_packer_add(&p, &items[i]));
		before = p;
		assert_false(encode_packer_add(&p, &items[n - 1]));
		/* A refused item leaves the packer as it was. */
		assert_memory_equal(&p, &before, sizeof(p));
	}
	/* A budget smaller than the envelope takes nothing. */
	encode_packer_init(&p, 10, true);
	assert_false(encode_packer_add(&p, &items[0]));
	assert_int_equal(p.n_items, 0);
	assert_int_equal(p.size, 0);
}

static void test_packer_max_groups(void **state)
{
	static char names[ENCODE_JSON_MAX_GROUPS + 1][16];
	struct encode_item items[ENCODE_JSON_MAX_GROUPS + 2];
	struct encode_packer p, before;
	struct textbuf out = { 0 };
	json_t *j;

	for (size_t i = 0; i <= ENCODE_JSON_MAX_GROUPS; i++) {
		snprintf(names[i], sizeof(names[i]), "\"f%zu\"", i);
		items[i] = item(i, (int64_t)i, names[i], "1");
	}
	encode_packer_init(&p, SIZE_MAX, true);
	for (size_t i = 0; i < ENCODE_JSON_MAX_GROUPS; i++)
		assert_true(encode_packer_add(&p, &items[i]));
	assert_int_equal(p.n_groups, ENCODE_JSON_MAX_GROUPS);
	before = p;
	assert_false(encode_packer_add(&p, &items[ENCODE_JSON_MAX_GROUPS]));
	assert_memory_equal(&p, &before, sizeof(p));
	/* A reading of a group already there still fits. */
	items[ENCODE_JSON_MAX_GROUPS] = item(100, 100, names[3], "2");
	assert_true(encode_packer_add(&p, &items[ENCODE_JSON_MAX_GROUPS]));
	assert_int_equal(p.n_groups, ENCODE_JSON_MAX_GROUPS);

	encode_packer_render(&p, items, ENCODE_JSON_MAX_GROUPS + 1, &out);
	assert_int_equal(out.len, p.size);
	j = json_loads(out.data, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "g")), ENCODE_JSON_MAX_GROUPS);
	json_decref(j);
	textbuf_free(&out);
}

/* ---- the property test ---- */

struct rng {
	uint64_t state;
};

static uint64_t rnd(struct rng *g)
{
	/* splitmix64, as test_queue_model.c */
	uint64_t z = (g->state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd_below(struct rng *g, uint64_t n)
{
	return rnd(g) % n;
}

/* More lists than ENCODE_JSON_MAX_GROUPS, so that the limit is met too. */
#define N_SCHEMAS  20
#define MAX_FIELDS 4

struct schema {
	size_t n;
	const char *name[MAX_FIELDS];
	enum cg_field_type type[MAX_FIELDS];
	char *names; /* the rendered list, the interned pointer */
};

struct sample {
	struct cg_field f[MAX_FIELDS];
	const struct schema *schema;
	struct encode_item item;
	char *values;
};

static const char *const strings[] = {
	"",
	"open",
	"say \"hi\"",
	"C:\\dir",
	"line\nbreak",
	"\x01\x02",
	"/x/y",
	"caf\xc3\xa9",
	"\xe2\x82\xac",
	"\xf0\x9f\x98\x80",
	("a much longer string value "
	 "that takes many bytes of the budget"),
};

static double random_f64(struct rng *g)
{
	uint64_t bits;
	double d;

	switch (rnd_below(g, 8)) {
	case 0:
		return (double)(int64_t)rnd_below(g, 200001) / 10.0 - 10000.0;
	case 1:
		return (double)((int64_t)rnd_below(g, 1ULL << 54) - (1LL << 53));
	case 2:
		return NAN;
	case 3:
		return rnd_below(g, 2) ? INFINITY : -INFINITY;
	case 4:
		return rnd_below(g, 2) ? 5e-324 : -0.0;
	default:
		bits = rnd(g);
		memcpy(&d, &bits, sizeof(d));
		return d; /* sometimes NaN or infinite too */
	}
}

static int64_t random_i64(struct rng *g)
{
	switch (rnd_below(g, 4)) {
	case 0:
		return INT64_MIN;
	case 1:
		return INT64_MAX;
	case 2:
		return (int64_t)rnd_below(g, 2001) - 1000;
	default:
		return (int64_t)rnd(g);
	}
}

static void make_schemas(struct rng *g, struct schema *s)
{
	static const char *const field_names[] = { "temp",    "hum", "ok",    "door",
						   "A.b-c_9", "x",   "load1", "mem_available" };

	for (size_t i = 0; i < N_SCHEMAS; i++) {
		struct textbuf b = { 0 };

		s[i].n = rnd_below(g, MAX_FIELDS + 1);
		for (size_t k = 0; k < s[i].n; k++) {
			s[i].name[k] = field_names[rnd_below(g, 8)];
			s[i].type[k] = (enum cg_field_type)(CG_FIELD_F64 + rnd_below(g, 4));
			textbuf_printf(&b, "%s\"%s\"", k ? "," : "", s[i].name[k]);
		}
		/* Two schemas may render the same text: they stay separate groups. */
		s[i].names = textbuf_steal(&b);
	}
}

static void make_sample(struct rng *g, const struct schema *schemas, size_t n_schemas, uint64_t seq,
			int64_t ts, struct sample *ret)
{
	const struct schema *s = &schemas[rnd_below(g, n_schemas)];
	struct textbuf names = { 0 }, values = { 0 };
	struct cg_reading r = { .timestamp_ms = ts, .topic = "t", .fields = ret->f };

	ret->schema = s;
	r.n_fields = s->n;
	for (size_t k = 0; k < s->n; k++) {
		struct cg_field *f = &ret->f[k];

		f->name = s->name[k];
		f->type = s->type[k];
		switch (f->type) {
		case CG_FIELD_F64:
			f->value.f64 = random_f64(g);
			break;
		case CG_FIELD_I64:
			f->value.i64 = random_i64(g);
			break;
		case CG_FIELD_BOOL:
			f->value.b = rnd_below(g, 2);
			break;
		case CG_FIELD_STRING:
			f->value.str = strings[rnd_below(g, sizeof(strings) / sizeof(strings[0]))];
			break;
		}
	}
	encode_json_reading(&r, &names, &values);
	/* The names of a reading are its schema's list. */
	assert_string_equal(names.data ? names.data : "", s->names);
	ret->values = textbuf_steal(&values);
	ret->item = item(seq, ts, s->names, ret->values);
	textbuf_free(&names);
}

static void check_value(const struct cg_field *f, json_t *v, uint64_t seed, const char *text)
{
	bool ok = false;

	switch (f->type) {
	case CG_FIELD_F64:
		if (!isfinite(f->value.f64))
			ok = json_is_null(v);
		else
			ok = json_is_number(v) && json_number_value(v) == f->value.f64;
		break;
	case CG_FIELD_I64:
		ok = json_is_integer(v) && json_integer_value(v) == f->value.i64;
		break;
	case CG_FIELD_BOOL:
		ok = json_is_boolean(v) && json_boolean_value(v) == f->value.b;
		break;
	case CG_FIELD_STRING:
		ok = json_is_string(v) && strcmp(json_string_value(v), f->value.str) == 0;
		break;
	}
	if (!ok)
		fail_msg("field \"%s\" does not read back (COAPGATE_TEST_SEED=%" PRIu64 "): %s",
			 f->name, seed, text);
}

/*
 * Parse a message and check that it says exactly the samples: seq, timestamp and every
 * field, groups in first-seen order, rows in order.
 */
static void check_parse(const struct encode_packer *p, const struct sample *samples, size_t n,
			const char *text, uint64_t seed)
{
	const char *group_names[ENCODE_JSON_MAX_GROUPS];
	size_t n_groups = 0, rows_seen = 0;
	json_error_t err;
	json_t *j = json_loads(text, 0, &err), *g;
	json_int_t s = 0, t;

	if (!j)
		fail_msg("not JSON (%s at %d, COAPGATE_TEST_SEED=%" PRIu64 "): %s", err.text,
			 err.position, seed, text);
	assert_int_equal(json_integer_value(json_object_get(j, "v")), 1);
	assert_true(json_is_integer(json_object_get(j, "t")));
	t = json_integer_value(json_object_get(j, "t"));
	assert_int_equal(t, samples[0].item.timestamp_ms);
	if (p->with_seq) {
		assert_true(json_is_integer(json_object_get(j, "s")));
		s = json_integer_value(json_object_get(j, "s"));
		assert_int_equal((uint64_t)s, samples[0].item.seq);
	} else {
		assert_null(json_object_get(j, "s"));
	}
	assert_int_equal(json_object_size(j), p->with_seq ? 4 : 3);

	for (size_t i = 0; i < n; i++) {
		size_t k = 0;

		while (k < n_groups && group_names[k] != samples[i].item.names)
			k++;
		if (k == n_groups)
			group_names[n_groups++] = samples[i].item.names;
	}
	g = json_object_get(j, "g");
	assert_int_equal(json_array_size(g), n_groups);
	for (size_t k = 0; k < n_groups; k++) {
		json_t *group = json_array_get(g, k), *f = json_object_get(group, "f"),
		       *rows = json_object_get(group, "r");
		size_t row = 0;

		assert_int_equal(json_object_size(group), 2);
		for (size_t i = 0; i < n; i++) {
			const struct sample *sm = &samples[i];
			json_t *r;
			size_t off = p->with_seq ? 2 : 1;

			if (sm->item.names != group_names[k])
				continue;
			assert_int_equal(json_array_size(f), sm->schema->n);
			for (size_t q = 0; q < sm->schema->n; q++)
				assert_string_equal(json_string_value(json_array_get(f, q)),
						    sm->schema->name[q]);
			r = json_array_get(rows, row++);
			if (json_array_size(r) != off + sm->schema->n)
				fail_msg("row %zu of group %zu has %zu items, expected %zu "
					 "(COAPGATE_TEST_SEED=%" PRIu64 "): %s",
					 row - 1, k, json_array_size(r), off + sm->schema->n, seed,
					 text);
			if (p->with_seq)
				assert_int_equal((uint64_t)s + (uint64_t)json_integer_value(
								   json_array_get(r, 0)),
						 sm->item.seq);
			assert_int_equal(t + json_integer_value(json_array_get(r, off - 1)),
					 sm->item.timestamp_ms);
			for (size_t q = 0; q < sm->schema->n; q++)
				check_value(&sm->f[q], json_array_get(r, off + q), seed, text);
			rows_seen++;
		}
		assert_int_equal(json_array_size(rows), row);
	}
	assert_int_equal(rows_seen, n);
	json_decref(j);
}

/* Would the packer have taken next after samples, had the budget allowed it? */
static bool fits_otherwise(const struct encode_packer *p, const struct sample *samples, size_t n,
			   const struct encode_item *next)
{
	struct encode_packer q;

	encode_packer_init(&q, SIZE_MAX, p->with_seq);
	for (size_t i = 0; i < n; i++)
		assert_true(encode_packer_add(&q, &samples[i].item));
	assert_int_equal(q.size, p->size);
	if (!encode_packer_add(&q, next)) {
		/* Only the group limit refuses with an unlimited budget. */
		assert_int_equal(q.n_groups, ENCODE_JSON_MAX_GROUPS);
		return false;
	}
	return q.size <= p->budget;
}

static void test_packer_property(void **state)
{
	const char *env = getenv("COAPGATE_TEST_SEED");
	uint64_t seed = env && *env ? strtoull(env, NULL, 0) : DEFAULT_SEED;
	struct rng g = { seed };
	size_t messages = 0, readings = 0, by_budget = 0, by_groups = 0;

	printf("test_encode_json: COAPGATE_TEST_SEED=%" PRIu64 "\n", seed);
	for (int round = 0; round < PROPERTY_ROUNDS; round++) {
		struct schema schemas[N_SCHEMAS];
		struct sample samples[PROPERTY_READINGS];
		struct encode_item items[PROPERTY_READINGS];
		size_t n_schemas = 1 + rnd_below(&g, N_SCHEMAS);
		size_t budget = rnd_below(&g, 4) ? 40 + rnd_below(&g, 1500) : rnd_below(&g, 200);
		bool many_groups = round % 8 == 0;
		bool with_seq = rnd_below(&g, 2);
		uint64_t seq = rnd_below(&g, 3) ? rnd_below(&g, 1ULL << 40) : (1ULL << 62);
		int64_t ts = rnd_below(&g, 3) ? 1732480000000 + (int64_t)rnd_below(&g, 1000000)
					      : (int64_t)rnd_below(&g, INT64_MAX);
		size_t start = 0;

		make_schemas(&g, schemas);
		/* Every eighth round: room for more groups than a message may have. */
		if (many_groups) {
			n_schemas = N_SCHEMAS;
			budget = 2000 + rnd_below(&g, 3000);
		}
		for (size_t i = 0; i < PROPERTY_READINGS; i++) {
			int64_t dt = (int64_t)rnd_below(&g, 20001) - 5000;

			seq += 1 + (rnd_below(&g, 4) == 0 ? rnd_below(&g, 1000) : 0);
			if (dt < 0)
				ts = ts < -dt ? 0 : ts + dt;
			else
				ts = ts > INT64_MAX - dt ? INT64_MAX : ts + dt;
			make_sample(&g, schemas, n_schemas, seq, ts, &samples[i]);
			items[i] = samples[i].item;
		}

		/* Fill messages one after another, as the outbox does. */
		while (start < PROPERTY_READINGS) {
			struct encode_packer p;
			struct textbuf out = { 0 };
			size_t n = 0;

			encode_packer_init(&p, budget, with_seq);
			while (start + n < PROPERTY_READINGS &&
			       encode_packer_add(&p, &items[start + n])) {
				n++;
				assert_int_equal(p.n_items, n);
				if (p.size > budget)
					fail_msg("size %zu over the budget %zu "
						 "(COAPGATE_TEST_SEED=%" PRIu64 ")",
						 p.size, budget, seed);
			}
			if (n == 0) {
				/* Nothing fits, not even alone: the first item is skipped. */
				assert_false(fits_otherwise(&p, &samples[start], 0, &items[start]));
				start++;
				continue;
			}
			encode_packer_render(&p, &items[start], n, &out);
			if (out.len != p.size)
				fail_msg("rendered %zu bytes, the packer said %zu "
					 "(COAPGATE_TEST_SEED=%" PRIu64 "): %s",
					 out.len, p.size, seed, out.data);
			assert_int_equal(strlen(out.data), out.len);
			check_parse(&p, &samples[start], n, out.data, seed);
			/* Greedy: the item that ended the message would not fit. */
			if (start + n < PROPERTY_READINGS) {
				if (fits_otherwise(&p, &samples[start], n, &items[start + n]))
					fail_msg("item %zu was refused but fits "
						 "(COAPGATE_TEST_SEED=%" PRIu64 ")",
						 start + n, seed);
				if (p.n_groups == ENCODE_JSON_MAX_GROUPS)
					by_groups++;
				else
					by_budget++;
			}
			textbuf_free(&out);
			messages++;
			readings += n;
			start += n;
		}
		for (size_t i = 0; i < PROPERTY_READINGS; i++)
			free(samples[i].values);
		for (size_t i = 0; i < N_SCHEMAS; i++)
			free(schemas[i].names);
	}
	printf("test_encode_json: %zu messages of %zu readings; %zu ended by the budget, %zu "
	       "at the group limit\n",
	       messages, readings, by_budget, by_groups);
	/* The generator reaches every way a message can end. */
	assert_true(by_budget > 100);
	assert_true(by_groups > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reading_f64),
		cmocka_unit_test(test_reading_f64_round_trip),
		cmocka_unit_test(test_reading_i64),
		cmocka_unit_test(test_reading_bool),
		cmocka_unit_test(test_reading_string),
		cmocka_unit_test(test_reading_string_round_trip),
		cmocka_unit_test(test_reading_nonfinite),
		cmocka_unit_test(test_reading_fields),
		cmocka_unit_test(test_reading_appends),
		cmocka_unit_test(test_packer_header_example),
		cmocka_unit_test(test_packer_doc_example),
		cmocka_unit_test(test_packer_without_seq),
		cmocka_unit_test(test_packer_gaps_negative_dt),
		cmocka_unit_test(test_packer_group_order),
		cmocka_unit_test(test_packer_groups_by_pointer),
		cmocka_unit_test(test_packer_no_fields),
		cmocka_unit_test(test_packer_extreme_numbers),
		cmocka_unit_test(test_packer_budget_exact),
		cmocka_unit_test(test_packer_max_groups),
		cmocka_unit_test(test_packer_property),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
