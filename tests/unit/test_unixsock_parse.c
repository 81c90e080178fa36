// SPDX-License-Identifier: MIT
/*
 * Unit tests of the Unix socket input's parsers (plugins/unixsock: parse_json.c,
 * parse_influx.c, number.c) against the mapping in plugins/unixsock/README.md,
 * "Messages". Not a test of the socket itself (tests/integration does that).
 *
 * Every line is parsed from a heap buffer of exactly len + 1 bytes whose last byte is
 * chosen by the test, so ASan sees any access past the one writable byte and a parser
 * that reads that byte as text gets it wrong. The message is on the heap too, exactly
 * sizeof(struct message), so a 65th field written past fields[] is seen as well.
 * Floats are compared bit for bit with glibc's strtod(), which rounds correctly.
 */
#include <errno.h>
#include <float.h>
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

#include "message.h"
#include "reading.h"

enum format { JSON, INFLUX };

/* The line being parsed (len + 1 bytes), the message and the reason. */
static char *line;
static size_t line_len;
static struct message *msg;
static char why[MESSAGE_WHY_MAX];
static char shown[400];

/* The line for failure messages: printable, escapes for the rest, cut short. */
static const char *show(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 8 < sizeof(shown); i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			shown[n++] = (char)ch;
		else
			n += (size_t)snprintf(shown + n, sizeof(shown) - n, "\\x%02x", ch);
	}
	if (n + 8 >= sizeof(shown))
		memcpy(shown + n, "...", 4);
	else
		shown[n] = '\0';
	return shown;
}

static int run(enum format fmt, enum influx_precision precision, const char *s, size_t len,
	       char after)
{
	free(line);
	line = malloc(len + 1);
	assert_non_null(line);
	memcpy(line, s, len);
	line[len] = after;
	line_len = len;
	show(s, len);
	memset(why, 0, sizeof(why));
	/* Garbage: the parser must set up everything it returns. */
	memset(msg, 0xa5, sizeof(*msg));
	if (fmt == JSON)
		return parse_json(line, len, msg, why, sizeof(why));
	return parse_influx(line, len, precision, msg, why, sizeof(why));
}

static bool points_into_line(const char *p)
{
	return p >= line && p <= line + line_len;
}

static const struct cg_reading *check_accepted(int ret)
{
	const struct cg_reading *r = &msg->reading;
	char vwhy[256];

	if (ret != PARSE_READING)
		fail_msg("%s: returned %d (%s), expected a reading", shown, ret, why);
	assert_ptr_equal(r->fields, msg->fields);
	if (reading_validate(r, vwhy, sizeof(vwhy)) != 0)
		fail_msg("%s: accepted a reading that reading_validate() refuses: %s", shown, vwhy);
	/* Decoded in place: names and strings live in the line. */
	if (r->topic && !points_into_line(r->topic))
		fail_msg("%s: the topic does not point into the line", shown);
	for (size_t i = 0; i < r->n_fields; i++) {
		if (!points_into_line(r->fields[i].name))
			fail_msg("%s: field %zu's name does not point into the line", shown, i);
		if (r->fields[i].type == CG_FIELD_STRING &&
		    !points_into_line(r->fields[i].value.str))
			fail_msg("%s: field %zu's string does not point into the line", shown, i);
	}
	return r;
}

/* alternatives: "a|b|c", one of them must appear in why (any case); NULL: any reason. */
static void check_rejected(int ret, const char *alternatives)
{
	char copy[128], *save = NULL;

	if (ret != -EINVAL)
		fail_msg("%s: returned %d, expected -EINVAL", shown, ret);
	if (!memchr(why, '\0', sizeof(why)))
		fail_msg("%s: the reason is not terminated", shown);
	if (strlen(why) < 5)
		fail_msg("%s: the reason \"%s\" says nothing", shown, why);
	if (!alternatives)
		return;
	snprintf(copy, sizeof(copy), "%s", alternatives);
	for (char *word = strtok_r(copy, "|", &save); word; word = strtok_r(NULL, "|", &save))
		if (strcasestr(why, word))
			return;
	fail_msg("%s: the reason \"%s\" mentions none of \"%s\"", shown, why, alternatives);
}

static const struct cg_reading *json_ok_n(const char *s, size_t len, char after)
{
	return check_accepted(run(JSON, INFLUX_NS, s, len, after));
}

static const struct cg_reading *json_ok(const char *s)
{
	return json_ok_n(s, strlen(s), '\n');
}

static void json_bad_n(const char *s, size_t len, char after, const char *alternatives)
{
	check_rejected(run(JSON, INFLUX_NS, s, len, after), alternatives);
}

static void json_bad(const char *s, const char *alternatives)
{
	json_bad_n(s, strlen(s), '\n', alternatives);
}

static void json_skip(const char *s)
{
	int ret = run(JSON, INFLUX_NS, s, strlen(s), '\n');

	if (ret != PARSE_SKIP)
		fail_msg("%s: returned %d (%s), expected PARSE_SKIP", shown, ret, why);
}

static const struct cg_reading *influx_ok_n(enum influx_precision p, const char *s, size_t len,
					    char after)
{
	return check_accepted(run(INFLUX, p, s, len, after));
}

static const struct cg_reading *influx_ok(const char *s)
{
	return influx_ok_n(INFLUX_NS, s, strlen(s), '\n');
}

static void influx_bad_n(enum influx_precision p, const char *s, size_t len, char after,
			 const char *alternatives)
{
	check_rejected(run(INFLUX, p, s, len, after), alternatives);
}

static void influx_bad(const char *s, const char *alternatives)
{
	influx_bad_n(INFLUX_NS, s, strlen(s), '\n', alternatives);
}

static void influx_skip(const char *s)
{
	int ret = run(INFLUX, INFLUX_NS, s, strlen(s), '\n');

	if (ret != PARSE_SKIP)
		fail_msg("%s: returned %d (%s), expected PARSE_SKIP", shown, ret, why);
}

/* ---------------------------------------------------------------------------------- */
/* Fields of an accepted reading                                                        */
/* ---------------------------------------------------------------------------------- */

static const struct cg_field *get(const struct cg_reading *r, const char *name,
				  enum cg_field_type type)
{
	for (size_t i = 0; i < r->n_fields; i++) {
		if (strcmp(r->fields[i].name, name) != 0)
			continue;
		if (r->fields[i].type != type)
			fail_msg("%s: field \"%s\" has type %d, expected %d", shown, name,
				 (int)r->fields[i].type, (int)type);
		return &r->fields[i];
	}
	fail_msg("%s: no field \"%s\"", shown, name);
	return NULL;
}

static void expect_i64(const struct cg_reading *r, const char *name, int64_t v)
{
	const struct cg_field *f = get(r, name, CG_FIELD_I64);

	if (f->value.i64 != v)
		fail_msg("%s: field \"%s\" is %" PRId64 ", expected %" PRId64, shown, name,
			 f->value.i64, v);
}

static void expect_f64(const struct cg_reading *r, const char *name, double v)
{
	const struct cg_field *f = get(r, name, CG_FIELD_F64);

	if (memcmp(&f->value.f64, &v, sizeof(v)) != 0)
		fail_msg("%s: field \"%s\" is %a (%.17g), expected %a (%.17g)", shown, name,
			 f->value.f64, f->value.f64, v, v);
}

static void expect_bool(const struct cg_reading *r, const char *name, bool v)
{
	const struct cg_field *f = get(r, name, CG_FIELD_BOOL);

	if (f->value.b != v)
		fail_msg("%s: field \"%s\" is %d, expected %d", shown, name, f->value.b, v);
}

static void expect_str(const struct cg_reading *r, const char *name, const char *v)
{
	const struct cg_field *f = get(r, name, CG_FIELD_STRING);

	if (strcmp(f->value.str, v) != 0) {
		char got[sizeof(shown)];

		snprintf(got, sizeof(got), "%s", show(f->value.str, strlen(f->value.str)));
		fail_msg("field \"%s\" is \"%s\", expected \"%s\"", name, got, show(v, strlen(v)));
	}
}

static void expect_n_fields(const struct cg_reading *r, size_t n)
{
	if (r->n_fields != n)
		fail_msg("%s: %zu fields, expected %zu", shown, r->n_fields, n);
}

static void expect_topic(const struct cg_reading *r, const char *topic)
{
	if (!topic) {
		if (r->topic)
			fail_msg("%s: topic \"%s\", expected none", shown, r->topic);
		return;
	}
	if (!r->topic || strcmp(r->topic, topic) != 0)
		fail_msg("%s: topic \"%s\", expected \"%s\"", shown, r->topic ? r->topic : "(null)",
			 topic);
}

static void expect_ts(const struct cg_reading *r, int64_t ts)
{
	if (r->timestamp_ms != ts)
		fail_msg("%s: timestamp %" PRId64 ", expected %" PRId64, shown, r->timestamp_ms,
			 ts);
}

/* {"v":<value>} */
static const struct cg_reading *json_value_ok(const char *value)
{
	char text[70000];

	snprintf(text, sizeof(text), "{\"v\":%s}", value);
	return json_ok(text);
}

static void json_value_bad(const char *value, const char *alternatives)
{
	char text[70000];

	snprintf(text, sizeof(text), "{\"v\":%s}", value);
	json_bad(text, alternatives);
}

/* m v=<value> */
static const struct cg_reading *influx_value_ok(const char *value)
{
	char text[70000];

	snprintf(text, sizeof(text), "m v=%s", value);
	return influx_ok(text);
}

static void influx_value_bad(const char *value, const char *alternatives)
{
	char text[70000];

	snprintf(text, sizeof(text), "m v=%s", value);
	influx_bad(text, alternatives);
}

/*
 * A float as both parsers must read it: what strtod() makes of it, bit for bit, or a
 * rejection when strtod() overflows. text has the JSON number syntax (which the line
 * protocol accepts too). Underflow is not an error: jansson takes strtod()'s result.
 */
static void expect_float_like_strtod(const char *text)
{
	double want;
	bool overflow;
	char *end;

	errno = 0;
	want = strtod(text, &end);
	overflow = errno == ERANGE && isinf(want);
	if (*end)
		fail_msg("test bug: strtod() stops early in \"%s\"", text);
	if (overflow) {
		json_value_bad(text, "large|range|overflow|double");
		influx_value_bad(text, "large|range|overflow|double");
		return;
	}
	expect_f64(json_value_ok(text), "v", want);
	expect_f64(influx_value_ok(text), "v", want);
}

/* ---------------------------------------------------------------------------------- */
/* A small deterministic random generator for the number tests                           */
/* ---------------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static unsigned rng_below(unsigned n)
{
	return (unsigned)(rng() % n);
}

/* n random decimal digits at p, the first one not 0 when nonzero_first. */
static char *put_digits(char *p, unsigned n, bool nonzero_first)
{
	for (unsigned i = 0; i < n; i++)
		*p++ = (char)('0' + (i == 0 && nonzero_first ? 1 + rng_below(9) : rng_below(10)));
	return p;
}

enum float_form {
	FLOAT_SHORT,  /* up to 15 digits, within 10^±22: the parsers' fast path */
	FLOAT_MEDIUM, /* 16 to 19 digits, small exponents: just past the fast path */
	FLOAT_LONG,   /* up to 70 digits, any exponent */
};

/* A random JSON number with a fraction or an exponent. */
static void random_float_text(char *text, size_t size, enum float_form form)
{
	char *p = text;
	unsigned int_digits, frac_digits;
	bool exponent;

	switch (form) {
	case FLOAT_SHORT:
		int_digits = rng_below(9);
		frac_digits = rng_below(8);
		break;
	case FLOAT_MEDIUM:
		int_digits = 1 + rng_below(19);
		frac_digits = 16 + rng_below(4);
		frac_digits = frac_digits > int_digits ? frac_digits - int_digits : 0;
		break;
	default:
		int_digits = rng_below(30);
		frac_digits = rng_below(40);
		break;
	}
	exponent = rng_below(2) || frac_digits == 0;

	assert_true(size > 200);
	if (rng_below(2))
		*p++ = '-';
	if (int_digits == 0)
		*p++ = '0';
	else
		p = put_digits(p, int_digits, true);
	if (frac_digits) {
		*p++ = '.';
		p = put_digits(p, frac_digits, false);
	}
	if (exponent) {
		int e = form == FLOAT_LONG ? (int)rng_below(700) - 350 : (int)rng_below(45) - 22;

		*p++ = rng_below(2) ? 'e' : 'E';
		if (e >= 0 && rng_below(2))
			*p++ = '+';
		p += sprintf(p, "%d", e);
	}
	*p = '\0';
}

/* ---------------------------------------------------------------------------------- */
/* JSON                                                                                  */
/* ---------------------------------------------------------------------------------- */

static void test_json_readme_example(void **state)
{
	const struct cg_reading *r =
	    json_ok("{\"topic\": \"boiler/1\", \"ts\": 1732480000123, \"temperature\": 21.5, "
		    "\"count\": 3, \"ok\": true, \"state\": \"idle\"}");

	expect_topic(r, "boiler/1");
	expect_ts(r, 1732480000123);
	expect_n_fields(r, 4);
	expect_f64(r, "temperature", 21.5);
	expect_i64(r, "count", 3);
	expect_bool(r, "ok", true);
	expect_str(r, "state", "idle");

	/* The example of the socket input's README, without topic and ts. */
	r = json_ok("{\"temperature\": 21.5, \"door\": true}");
	expect_topic(r, NULL);
	expect_ts(r, 0);
	expect_n_fields(r, 2);
	expect_f64(r, "temperature", 21.5);
	expect_bool(r, "door", true);
}

/* Fields keep the order of the message. */
static void test_json_field_order(void **state)
{
	const struct cg_reading *r =
	    json_ok("{\"z\":1,\"topic\":\"t\",\"a\":2.5,\"ts\":7,\"m\":false,\"b\":\"x\"}");
	static const char *const names[] = { "z", "a", "m", "b" };

	expect_n_fields(r, 4);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(r->fields[i].name, names[i]);
}

static void test_json_integers(void **state)
{
	static const struct {
		const char *text;
		int64_t v;
	} cases[] = {
		{ "0", 0 },
		{ "-0", 0 },
		{ "1", 1 },
		{ "-1", -1 },
		{ "3", 3 },
		{ "-12", -12 },
		{ "123456789", 123456789 },
		{ "9007199254740993", 9007199254740993LL }, /* not a double */
		{ "9223372036854775807", INT64_MAX },
		{ "-9223372036854775808", INT64_MIN },
		{ "-9223372036854775807", -INT64_MAX },
		{ "9223372036854775806", INT64_MAX - 1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_i64(json_value_ok(cases[i].text), "v", cases[i].v);

	/* Random values in every magnitude, against strtoll(). */
	for (int i = 0; i < 5000; i++) {
		int64_t v = (int64_t)(rng() >> rng_below(64));
		char text[32];

		if (rng_below(2))
			v = (int64_t)(0 - (uint64_t)v);
		snprintf(text, sizeof(text), "%" PRId64, v);
		expect_i64(json_value_ok(text), "v", strtoll(text, NULL, 10));
	}
}

static void test_json_integer_range(void **state)
{
	static const char *const out_of_range[] = {
		"9223372036854775808",
		"-9223372036854775809",
		"18446744073709551615",
		"18446744073709551616",
		"-18446744073709551616",
		"99999999999999999999",
		"100000000000000000000000000000000000000000000000000",
		"-100000000000000000000000000000000000000000000000000",
	};

	for (size_t i = 0; i < sizeof(out_of_range) / sizeof(out_of_range[0]); i++)
		json_value_bad(out_of_range[i], "64|range|large|fit|big");
}

static void test_json_number_syntax(void **state)
{
	static const char *const bad[] = {
		"01",	    "-01",	 "00",	"+1",	".5",	"5.",	 "-",	  "--1",
		"-.5",	    "1e",	 "1e+", "1E-",	"1.e5", "0x10",	 "1.5.2", "1e5.5",
		"- 1",	    "1_000",	 "1,5", "0.-1", "1ee5", "1e5e5", "-e5",	  "e5",
		"Infinity", "-Infinity", "NaN", "inf",	"nan",	"1f",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		json_value_bad(bad[i], NULL);
}

static void test_json_floats(void **state)
{
	static const char *const texts[] = {
		"0.0",
		"-0.0",
		"0e0",
		"0E+0",
		"-0e-0",
		"0.000",
		"1.0",
		"2.0",
		"21.5",
		"-3.25",
		"0.1",
		"0.2",
		"0.3",
		"1e3",
		"1E3",
		"1e+3",
		"1e-3",
		"1.5e300",
		"1e308",
		"1.7976931348623157e308",
		"1.7976931348623158e308", /* rounds down to DBL_MAX */
		"-1.7976931348623157e308",
		"2.2250738585072014e-308", /* DBL_MIN */
		"2.2250738585072011e-308", /* the largest subnormal, a famous hang */
		"2.2250738585072012e-308",
		"4.9406564584124654e-324", /* the smallest subnormal */
		"5e-324",
		"3e-324",
		"2.4703282292062328e-324", /* just above half of it: rounds up */
		"2.4703282292062327e-324", /* just below: rounds to zero */
		"1e-323",
		"1e-400", /* underflows to zero */
		"-1e-400",
		"1e-99999999999999999999",
		"0e99999999999999999999",
		"0.0e999",
		"1e23",
		"8.98846567431158e307",
		"9007199254740993.0",
		"9007199254740992.5",
		"9007199254740993.5",
		"123456789012345.6",
		"1234567890123456.7",
		"12345678901234567890.5",
		"0.000001",
		"1e22",
		"1e-22",
		"1e-23",
		"123456789012345e22",
		"123456789012345e-22",
		"999999999999999e22",
		"9999999999999999e22",
		"999999999999999.9e-7",
		"100000000000000000000000e-10",
		"0.00000000000000000000000000000000000001e38",
		"1e0000000000000000000000000005",
		"1.00000000000000011102230246251565404236316680908203125", /* 1 + 2^-53 */
		"1.00000000000000011102230246251565404236316680908203125000000000000001",
		"1.00000000000000011102230246251565404236316680908203124999999999999999",
		"3.141592653589793238462643383279502884197169399375105820974944592307816",
		"7.2057594037927933e16",
		"0.1e-0",
		"1E-0",
		/* Overflow: rejected. */
		"1e309",
		"-1e309",
		"1.8e308",
		"1.7976931348623159e308",
		"1e400",
		"123e99999",
		"1e99999999999999999999",
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		expect_float_like_strtod(texts[i]);

	/* Some of the above spelled out, so that the test does not only trust strtod(). */
	expect_f64(json_value_ok("2.0"), "v", 2.0);
	expect_f64(json_value_ok("1e3"), "v", 1000.0);
	expect_f64(json_value_ok("-0.0"), "v", -0.0);
	expect_f64(json_value_ok("0.1"), "v", 0.1);
	expect_f64(json_value_ok("1e308"), "v", 1e308);
	expect_f64(json_value_ok("1.7976931348623157e308"), "v", DBL_MAX);
	expect_f64(json_value_ok("4.9406564584124654e-324"), "v", 0x1p-1074);
	expect_f64(json_value_ok("2.4703282292062328e-324"), "v", 0x1p-1074);
	expect_f64(json_value_ok("2.4703282292062327e-324"), "v", 0.0);
	expect_f64(json_value_ok("-1e-400"), "v", -0.0);
	expect_f64(json_value_ok("9007199254740993.0"), "v", 0x1p53);
	expect_f64(json_value_ok("9007199254740993.5"), "v", 0x1p53 + 2);
	expect_f64(json_value_ok("1.00000000000000011102230246251565404236316680908203125"), "v",
		   1.0);
	expect_f64(
	    json_value_ok("1.00000000000000011102230246251565404236316680908203125000000000000001"),
	    "v", 1.0 + 0x1p-52);
	json_value_bad("1e309", "large|range|overflow|double");
}

static void test_json_floats_random(void **state)
{
	char text[256];

	for (int i = 0; i < 30000; i++) {
		random_float_text(text, sizeof(text), (enum float_form)(i % 3));
		expect_float_like_strtod(text);
	}
	/* Random doubles, printed the ways programs print them. */
	for (int i = 0; i < 10000; i++) {
		uint64_t bits = rng();
		static char big[400];
		double d;
		int n;

		memcpy(&d, &bits, sizeof(d));
		if (!isfinite(d))
			continue;
		switch (i % 6) {
		case 0:
			n = snprintf(big, sizeof(big), "%.17g", d);
			break;
		case 1:
			n = snprintf(big, sizeof(big), "%.16g", d);
			break;
		case 2:
			n = snprintf(big, sizeof(big), "%.15g", d);
			break;
		case 3:
			n = snprintf(big, sizeof(big), "%.17e", d);
			break;
		case 4:
			n = snprintf(big, sizeof(big), "%.6e", d);
			break;
		default:
			n = snprintf(big, sizeof(big), "%.3f", d);
			break;
		}
		assert_true(n > 0 && (size_t)n + 3 < sizeof(big));
		/* %g may print an integer: give it a fraction so it is a float. */
		if (!strpbrk(big, ".eE"))
			strcat(big, ".0");
		expect_float_like_strtod(big);
	}
}

/*
 * The hardest inputs for a float parser: the exact decimal value of the midpoint
 * between two neighbouring doubles (ties to even), and the same nudged up or down by
 * a digit far beyond the 17th. They are exact in x86-64's long double, whose printf()
 * writes every digit.
 */
static void test_json_floats_halfway(void **state)
{
#if LDBL_MANT_DIG >= 64
	static char text[1400], nudged[1500];
	double base[2000];
	size_t n = 0;

	base[n++] = 1.0;
	base[n++] = 0.0; /* halfway to the smallest subnormal */
	base[n++] = 0x1p-1074;
	base[n++] = DBL_MIN;
	base[n++] = nextafter(DBL_MIN, 0.0);
	base[n++] = 0x1p53;
	base[n++] = 1e23;
	base[n++] = 0.1;
	base[n++] = nextafter(DBL_MAX, 0.0);
	base[n++] = DBL_MAX; /* halfway to 2^1024 rounds to infinity: rejected */
	while (n < sizeof(base) / sizeof(base[0])) {
		uint64_t bits = rng() >> 1;
		double d;

		memcpy(&d, &bits, sizeof(d));
		if (isfinite(d) && d < DBL_MAX)
			base[n++] = d;
	}
	for (size_t i = 0; i < n; i++) {
		long double lo = base[i];
		long double hi =
		    base[i] == DBL_MAX ? ldexpl(1.0L, 1024) : nextafter(base[i], INFINITY);
		long double mid = lo + (hi - lo) / 2;
		char *e, *last;

		/* Every digit, then the zeros after the last significant one removed. */
		snprintf(text, sizeof(text), "%.1200Le", mid);
		e = strchr(text, 'e');
		assert_non_null(e);
		last = e - 1;
		while (*last == '0')
			last--;
		if (*last == '.')
			last++;
		memmove(last + 1, e, strlen(e) + 1);
		expect_float_like_strtod(text);

		/* A hair above: ...5 becomes ...50000000001. */
		e = strchr(text, 'e');
		snprintf(nudged, sizeof(nudged), "%.*s00000000001%s", (int)(e - text), text, e);
		expect_float_like_strtod(nudged);

		/* A hair below: ...5 becomes ...49999999999. */
		if (e[-1] == '5') {
			snprintf(nudged, sizeof(nudged), "%.*s499999999999%s", (int)(e - 1 - text),
				 text, e);
			expect_float_like_strtod(nudged);
		}
	}
#else
	skip();
#endif
}

/* Mantissas of hundreds of digits. */
static void test_json_floats_long(void **state)
{
	static char text[3000];
	char *p;

	/* 1.000...0001: rounds to 1. */
	p = text;
	p += sprintf(p, "1.");
	memset(p, '0', 760);
	p += 760;
	strcpy(p, "1");
	expect_float_like_strtod(text);
	expect_f64(json_value_ok(text), "v", 1.0);

	/* 0.000...0001e+770 */
	p = text;
	p += sprintf(p, "0.");
	memset(p, '0', 768);
	p += 768;
	strcpy(p, "1e770");
	expect_float_like_strtod(text);

	/* 800 integer digits then an exponent that brings them back into range. */
	for (int i = 0; i < 200; i++) {
		int digits = 100 + (int)rng_below(1000);

		p = text;
		if (rng_below(2))
			*p++ = '-';
		p = put_digits(p, (unsigned)digits, true);
		if (rng_below(2)) {
			*p++ = '.';
			p = put_digits(p, 1 + rng_below(500), false);
		}
		sprintf(p, "e%d", -digits - (int)rng_below(300) + 150);
		expect_float_like_strtod(text);
	}
}

static void test_json_bools(void **state)
{
	const struct cg_reading *r = json_ok("{\"t\":true,\"f\":false}");

	expect_n_fields(r, 2);
	expect_bool(r, "t", true);
	expect_bool(r, "f", false);

	static const char *const bad[] = {
		"True", "TRUE", "False", "tru", "fals", "truex", "falsee",
		"t",	"f",	"1b",	 "yes", "on",	"tRue",	 "\"true\"x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		json_value_bad(bad[i], NULL);
	/* A quoted true is a string. */
	expect_str(json_value_ok("\"true\""), "v", "true");
}

static void test_json_string_escapes(void **state)
{
	static const struct {
		const char *json, *bytes;
	} cases[] = {
		{ "\"\"", "" },
		{ "\"idle\"", "idle" },
		{ "\"a\\\"b\"", "a\"b" },
		{ "\"a\\\\b\"", "a\\b" },
		{ "\"a\\/b\"", "a/b" },
		{ "\"a\\bb\"", "a\bb" },
		{ "\"a\\fb\"", "a\fb" },
		{ "\"a\\nb\"", "a\nb" },
		{ "\"a\\rb\"", "a\rb" },
		{ "\"a\\tb\"", "a\tb" },
		{ "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t" },
		{ "\"\\u0041\"", "A" },
		{ "\"\\u0001\"", "\x01" },
		{ "\"\\u001f\"", "\x1f" },
		{ "\"\\u001F\"", "\x1f" },
		{ "\"\\u007f\"", "\x7f" },
		{ "\"\\u0080\"", "\xc2\x80" },
		{ "\"\\u00e4\"", "\xc3\xa4" },
		{ "\"\\u00E4\"", "\xc3\xa4" },
		{ "\"\\u07ff\"", "\xdf\xbf" },
		{ "\"\\u0800\"", "\xe0\xa0\x80" },
		{ "\"\\u20ac\"", "\xe2\x82\xac" },
		{ "\"\\u20AC\"", "\xe2\x82\xac" },
		{ "\"\\ud7ff\"", "\xed\x9f\xbf" },
		{ "\"\\ue000\"", "\xee\x80\x80" },
		{ "\"\\uffff\"", "\xef\xbf\xbf" },
		{ "\"\\ud800\\udc00\"", "\xf0\x90\x80\x80" },
		{ "\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80" },
		{ "\"\\uD83D\\uDE00\"", "\xf0\x9f\x98\x80" },
		{ "\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf" },
		{ "\"gr\\u00fc\\u00dfe \\ud83d\\ude00!\"", "gr\xc3\xbc\xc3\x9f"
							   "e \xf0\x9f\x98\x80!" },
		{ "\"x\\\\u0041\"", "x\\u0041" },
		{ "\"\\\\\\\\\"", "\\\\" },
		{ "\"a\\u0022b\"", "a\"b" },
		{ "\"a\\u005cb\"", "a\\b" },
		{ "\"\x7f\"", "\x7f" },
		{ "\"gr\xc3\xbc\xc3\x9f"
		  "e \xe2\x82\xac \xf0\x9f\x98\x80\"",
		  "gr\xc3\xbc\xc3\x9f"
		  "e \xe2\x82\xac \xf0\x9f\x98\x80" },
		{ "\"a,b:c}{]\"", "a,b:c}{]" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_str(json_value_ok(cases[i].json), "v", cases[i].bytes);
}

static void test_json_string_bad_escapes(void **state)
{
	static const char *const bad[] = {
		"\"\\a\"",     "\"\\x41\"",   "\"\\U0041\"", "\"\\'\"",	    "\"\\ \"",
		"\"\\0\"",     "\"\\u\"",     "\"\\u1\"",    "\"\\u12\"",   "\"\\u123\"",
		"\"\\u123g\"", "\"\\uGGGG\"", "\"\\u-123\"", "\"\\u 123\"", "\"\\",
		"\"\\\"",      "\"abc\\\"",   "\"\\u00e\"",  "\"\\e\"",	    "\"\\N\"",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		json_value_bad(bad[i], NULL);
}

static void test_json_surrogates(void **state)
{
	static const char *const bad[] = {
		"\"\\ud800\"",		"\"\\udc00\"",	      "\"\\udfff\"",
		"\"\\ud83d\"",		"\"\\ude00\"",	      "\"\\ud83dx\"",
		"\"\\ud83d\\u0041\"",	"\"\\ud83d\\ud83d\"", "\"\\ude00\\ud83d\"",
		"\"\\ud83d\\n\"",	"\"\\ud83d\\u\"",     "\"\\ud83d\\ude0\"",
		"\"\\ud83d\\\\ude00\"", "\"a\\udbffb\"",      "\"\\ud83d \\ude00\"",
		"\"\\ud83d\\uE000\"",	"\"\\ud83d\\uFFFF\"",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		json_value_bad(bad[i], "surrogate|\\u|escape|unicode");
	/* Raw (CESU-8) surrogates are invalid UTF-8. */
	json_value_bad("\"\xed\xa0\xbd\xed\xb8\x80\"", "utf-8");
}

static void test_json_nul(void **state)
{
	static const char with_nul[] = "{\"s\":\"a\0b\"}";
	static const char nul_after[] = "{\"s\":1}\0";
	static const char nul_before[] = "\0{\"s\":1}";
	static const char nul_in_name[] = "{\"a\0b\":1}";

	json_value_bad("\"\\u0000\"", "\\u0000|nul");
	json_value_bad("\"a\\u0000b\"", "\\u0000|nul");
	json_bad("{\"a\\u0000b\":1}", "\\u0000|nul");
	json_bad("{\"topic\":\"a\\u0000\",\"x\":1}", "\\u0000|nul");
	/* Raw NUL bytes are not text: not in a string, not around the object. */
	json_bad_n(with_nul, sizeof(with_nul) - 1, '\n', NULL);
	json_bad_n(nul_after, sizeof(nul_after) - 1, '\n', NULL);
	json_bad_n(nul_before, sizeof(nul_before) - 1, '\n', NULL);
	json_bad_n(nul_in_name, sizeof(nul_in_name) - 1, '\n', NULL);
	json_bad_n("\0", 1, '\n', NULL);
}

/* Control characters must be escaped in JSON strings; DEL need not. */
static void test_json_control_characters(void **state)
{
	for (int ch = 1; ch < 0x20; ch++) {
		char text[32];

		snprintf(text, sizeof(text), "{\"s\":\"a%cb\"}", ch);
		json_bad(text, NULL);
		snprintf(text, sizeof(text), "{\"a%cb\":1}", ch);
		json_bad(text, NULL);
	}
	expect_str(json_value_ok("\"a\x7f\""), "v", "a\x7f");
}

static void test_json_string_length(void **state)
{
	static char text[8000], want[1100];
	char *p;

	assert_int_equal(CG_STRING_MAX, 512);
	/* 512 plain bytes, then 513. */
	memset(want, 'x', 513);
	want[512] = '\0';
	snprintf(text, sizeof(text), "{\"s\":\"%s\"}", want);
	expect_str(json_ok(text), "s", want);
	want[512] = 'x';
	want[513] = '\0';
	snprintf(text, sizeof(text), "{\"s\":\"%s\"}", want);
	json_bad(text, "512|long");

	/* The limit counts decoded bytes: 512 \n escapes are 512 bytes, 1024 of text. */
	p = text + sprintf(text, "{\"s\":\"");
	for (int i = 0; i < 512; i++)
		p += sprintf(p, "\\n");
	strcpy(p, "\"}");
	memset(want, '\n', 512);
	want[512] = '\0';
	expect_str(json_ok(text), "s", want);
	strcpy(p, "\\n\"}");
	json_bad(text, "512|long");

	/* 256 two-byte characters from \u escapes: 512 bytes, 1536 of text. */
	p = text + sprintf(text, "{\"s\":\"");
	for (int i = 0; i < 256; i++)
		p += sprintf(p, "\\u00e4");
	strcpy(p, "\"}");
	for (int i = 0; i < 512; i += 2)
		memcpy(want + i, "\xc3\xa4", 2);
	want[512] = '\0';
	expect_str(json_ok(text), "s", want);
	strcpy(p, "x\"}");
	json_bad(text, "512|long");

	/* 128 surrogate pairs: 512 bytes. */
	p = text + sprintf(text, "{\"s\":\"");
	for (int i = 0; i < 128; i++)
		p += sprintf(p, "\\ud83d\\ude00");
	strcpy(p, "\"}");
	for (int i = 0; i < 512; i += 4)
		memcpy(want + i, "\xf0\x9f\x98\x80", 4);
	want[512] = '\0';
	expect_str(json_ok(text), "s", want);
	strcpy(p, "\\u0041\"}");
	json_bad(text, "512|long");

	/* 511 bytes and a two-byte character: 512 characters but 513 bytes. */
	memset(want, 'x', 511);
	strcpy(want + 511, "\xc3\xa4");
	snprintf(text, sizeof(text), "{\"s\":\"%s\"}", want);
	json_bad(text, "512|long");
}

static void test_json_invalid_utf8(void **state)
{
	static const char *const bad[] = {
		"\xc0\xaf",
		"a\xe0\x80\xafz",
		"\xed\xa0\x80",
		"x\xed\xbf\xbf",
		"\xe2\x82",
		"\xf0\x9f\x98",
		"\xc3",
		"\x80",
		"\xff",
		"\xfe",
		"\xf4\x90\x80\x80",
		"\xf8\x88\x80\x80\x80",
		"\xc3\x28",
		"\xe2\x28\xa1",
		"\xc1\xbf",
		"\xf0\x80\x80\x80",
	};
	char text[64];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "{\"s\":\"%s\"}", bad[i]);
		json_bad(text, "utf-8|utf8");
		snprintf(text, sizeof(text), "{\"%s\":1}", bad[i]);
		json_bad(text, NULL);
		snprintf(text, sizeof(text), "{\"topic\":\"%s\",\"a\":1}", bad[i]);
		json_bad(text, NULL);
		snprintf(text, sizeof(text), "{\"a\":1}%s", bad[i]);
		json_bad(text, NULL);
		snprintf(text, sizeof(text), "%s{\"a\":1}", bad[i]);
		json_bad(text, NULL);
		/* Not white space either. */
		json_bad(bad[i], NULL);
	}
}

static void test_json_topic(void **state)
{
	static char text[600], topic[300];
	const struct cg_reading *r;

	r = json_ok("{\"topic\":\"boiler/1\",\"a\":1}");
	expect_topic(r, "boiler/1");
	expect_n_fields(r, 1);
	/* Anywhere in the object. */
	expect_topic(json_ok("{\"a\":1,\"topic\":\"x_Y/9\",\"b\":2}"), "x_Y/9");
	/* Escapes are decoded first. */
	expect_topic(json_ok("{\"topic\":\"\\u0062oiler\\/1\",\"a\":1}"), "boiler/1");
	expect_topic(json_ok("{\"a\":1}"), NULL);

	/* 1 to 253 bytes. */
	memset(topic, 'a', 254);
	topic[253] = '\0';
	snprintf(text, sizeof(text), "{\"topic\":\"%s\",\"a\":1}", topic);
	expect_topic(json_ok(text), topic);
	topic[253] = 'a';
	topic[254] = '\0';
	snprintf(text, sizeof(text), "{\"topic\":\"%s\",\"a\":1}", topic);
	json_bad(text, "topic");

	static const char *const bad_topics[] = {
		"\"\"",	   "\"a//b\"", "\"a-b\"",   "\"a b\"", "\"a.b\"", "\"\xc3\xa4\"",
		"\"a+b\"", "\"//\"",   "\"a\\nb\"", "\"#\"",   "\"a,b\"",
	};
	for (size_t i = 0; i < sizeof(bad_topics) / sizeof(bad_topics[0]); i++) {
		snprintf(text, sizeof(text), "{\"topic\":%s,\"a\":1}", bad_topics[i]);
		json_bad(text, "topic");
	}
	/* Not a string. */
	static const char *const bad_types[] = { "1",  "1.5", "true",	 "false",    "null",
						 "{}", "[]",  "[\"a\"]", "{\"a\":1}" };
	for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++) {
		snprintf(text, sizeof(text), "{\"topic\":%s,\"a\":1}", bad_types[i]);
		json_bad(text, NULL);
	}
	/* Member names are exact: "Topic" is a field. */
	r = json_ok("{\"Topic\":\"x\"}");
	expect_topic(r, NULL);
	expect_str(r, "Topic", "x");
}

static void test_json_timestamp(void **state)
{
	static const struct {
		const char *text;
		int64_t ts;
	} good[] = {
		{ "0", 0 },
		{ "-0", 0 },
		{ "1", 1 },
		{ "1732480000123", 1732480000123 },
		{ "9223372036854775807", INT64_MAX },
	};
	static const char *const bad[] = {
		"-1",
		"-9223372036854775808",
		"9223372036854775808",
		"1.5",
		"1e3",
		"1.0",
		"1732480000123.0",
		"\"1732480000123\"",
		"true",
		"null",
		"{}",
		"[1]",
		"99999999999999999999999",
	};
	char text[128];
	const struct cg_reading *r;

	expect_ts(json_ok("{\"a\":1}"), 0);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "{\"ts\":%s,\"a\":1}", good[i].text);
		r = json_ok(text);
		expect_ts(r, good[i].ts);
		expect_n_fields(r, 1);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "{\"a\":1,\"ts\":%s}", bad[i]);
		json_bad(text, NULL);
	}
	json_bad("{\"a\":1,\"ts\":-1}", "ts|timestamp|negative");
	/* An escaped name is the same name. */
	r = json_ok("{\"\\u0074s\":5,\"a\":1}");
	expect_ts(r, 5);
	expect_n_fields(r, 1);
	/* "TS" and "Ts" are fields. */
	r = json_ok("{\"TS\":5,\"Ts\":6}");
	expect_ts(r, 0);
	expect_i64(r, "TS", 5);
	expect_i64(r, "Ts", 6);
}

/* topic and ts are not fields: a reading needs at least one more member. */
static void test_json_no_fields(void **state)
{
	static const char *const bad[] = {
		"{}",	      "{ }",
		" { \t } ",   "{\"topic\":\"x\"}",
		"{\"ts\":1}", "{\"topic\":\"x\",\"ts\":1}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		json_bad(bad[i], "field");
}

static void test_json_duplicates(void **state)
{
	static const char *const bad[] = {
		"{\"a\":1,\"a\":2}",
		"{\"a\":1,\"a\":1}",
		"{\"a\":1,\"b\":2,\"a\":\"x\"}",
		"{\"a\":true,\"a\":false}",
		"{\"a\":1,\"\\u0061\":2}",
		"{\"topic\":\"a\",\"topic\":\"a\",\"x\":1}",
		"{\"topic\":\"a\",\"x\":1,\"topic\":\"b\"}",
		"{\"ts\":1,\"ts\":1,\"x\":1}",
		"{\"ts\":1,\"x\":1,\"\\u0074s\":2}",
	};
	const struct cg_reading *r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		json_bad(bad[i], "twice|duplicate");
	/* Names that differ by case are different names. */
	r = json_ok("{\"a\":1,\"A\":2}");
	expect_i64(r, "a", 1);
	expect_i64(r, "A", 2);
}

static void test_json_null_and_nested(void **state)
{
	static const char *const bad_values[] = {
		"null", "{}", "{\"b\":1}", "[]", "[1]", "[1,2]", "[{\"b\":1}]", "{\"b\":{}}",
	};
	static const char *const not_objects[] = {
		"[]",	"[{\"a\":1}]", "1",    "-1.5",	"\"a\"",
		"true", "false",       "null", "\"{\"", "{\"a\":1}]",
	};

	for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++)
		json_value_bad(bad_values[i], NULL);
	json_value_bad("null", "null");
	json_value_bad("{\"b\":1}", "nested|object|array");
	json_value_bad("[1]", "nested|object|array");
	json_bad("{\"a\":1,\"b\":null}", "null");
	for (size_t i = 0; i < sizeof(not_objects) / sizeof(not_objects[0]); i++)
		json_bad(not_objects[i], NULL);
}

/* n fields named f0, f1, ... with extra members before them. */
static void make_fields(char *text, size_t size, const char *extra, int n)
{
	char *p = text;

	p += snprintf(p, size, "{%s", extra);
	for (int i = 0; i < n; i++)
		p += snprintf(p, size - (size_t)(p - text), "%s\"f%d\":%d", i || *extra ? "," : "",
			      i, i);
	snprintf(p, size - (size_t)(p - text), "}");
}

static void test_json_field_count(void **state)
{
	static char text[20000];
	const struct cg_reading *r;

	assert_int_equal(CG_FIELDS_MAX, 64);
	make_fields(text, sizeof(text), "", 1);
	expect_n_fields(json_ok(text), 1);
	make_fields(text, sizeof(text), "", 64);
	r = json_ok(text);
	expect_n_fields(r, 64);
	expect_i64(r, "f63", 63);
	make_fields(text, sizeof(text), "", 65);
	json_bad(text, "64");
	make_fields(text, sizeof(text), "", 1000);
	json_bad(text, "64");
	/* topic and ts do not count. */
	make_fields(text, sizeof(text), "\"topic\":\"t\",\"ts\":9", 64);
	r = json_ok(text);
	expect_n_fields(r, 64);
	expect_topic(r, "t");
	expect_ts(r, 9);
	/* ... wherever they are. */
	make_fields(text, sizeof(text), "", 64);
	strcpy(text + strlen(text) - 1, ",\"topic\":\"t\",\"ts\":9}");
	r = json_ok(text);
	expect_n_fields(r, 64);
	expect_ts(r, 9);
}

static void test_json_names(void **state)
{
	static const char *const good[] = { "a", "Z", "0", "_", ".", "-", "a.b-c_D9", "x.y.z" };
	static const char *const bad[] = {
		"",    "a b",	 "a/b",	  "a:b",   "a,b",      "\xc3\xa4", "a+b",
		"x=1", "a\\\"b", "a\\nb", "a\\tb", "a\\u00e4", "a\\\\b",   "a\\u0020b",
	};
	char text[256], name[80];
	const struct cg_reading *r;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "{\"%s\":1}", good[i]);
		expect_i64(json_ok(text), good[i], 1);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "{\"%s\":1}", bad[i]);
		json_bad(text, "name");
	}
	/* 64 bytes, then 65. */
	memset(name, 'n', 65);
	name[64] = '\0';
	snprintf(text, sizeof(text), "{\"%s\":true}", name);
	expect_bool(json_ok(text), name, true);
	name[64] = 'n';
	name[65] = '\0';
	snprintf(text, sizeof(text), "{\"%s\":true}", name);
	json_bad(text, "name");
	/* Escapes in names are decoded like in any string. */
	expect_bool(json_ok("{\"\\u0061\":true}"), "a", true);
	r = json_ok("{\"\\u0061\\u002Eb\":1}");
	expect_i64(r, "a.b", 1);
	/* The bad name is named in the reason. */
	json_bad("{\"good\":1,\"bad/name\":2}", "bad/name");
}

static void test_json_syntax(void **state)
{
	static const char *const bad[] = {
		"{\"a\":1}x",
		"{\"a\":1}}",
		"{\"a\":1}{\"b\":2}",
		"{\"a\":1},",
		"{\"a\":1} 1",
		"x{\"a\":1}",
		"{",
		"}",
		"{\"a\":1",
		"{\"a\":1,",
		"{\"a\":1,}",
		"{,\"a\":1}",
		"{\"a\" 1}",
		"{\"a\":}",
		"{\"a\"}",
		"{\"a\":1 \"b\":2}",
		"{\"a\":1,,\"b\":2}",
		"{'a':1}",
		"{a:1}",
		"{\"a\":'x'}",
		"{\"a\":\"x}",
		"{\"a\":\"x\"",
		"{\"a\":1;\"b\":2}",
		"{\"a\"::1}",
		"{\"a\":1}//c",
		"{\"a\":1}/*c*/",
		"{\"a\":1 2}",
		"{\"a\":\"x\" \"y\"}",
		"{\"a\":1=}",
		"{\"a\"=1}",
		"{\"a\":1]",
		"[\"a\":1}",
		"{\"a\":-}",
		"{\"a\":undefined}",
		"\xef\xbb\xbf{\"a\":1}", /* a byte order mark is not white space */
		"{\"a\":1}\f",
		"{\"a\":1}\v",
		"\f{\"a\":1}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		json_bad(bad[i], NULL);
}

static void test_json_whitespace(void **state)
{
	const struct cg_reading *r;

	r = json_ok("  {  \"a\"  :  1  ,  \"b\" : \"x y\" , \"topic\" : \"t\" }  ");
	expect_i64(r, "a", 1);
	expect_str(r, "b", "x y");
	expect_topic(r, "t");
	r = json_ok("\t{\t\"a\"\t:\t1\t}\t\r");
	expect_i64(r, "a", 1);
	r = json_ok("{\r\n\"a\":\r\n1\r\n}");
	expect_i64(r, "a", 1);
	r = json_ok("{\"a\":1}\r");
	expect_i64(r, "a", 1);

	json_skip("");
	json_skip(" ");
	json_skip("\t");
	json_skip("\r");
	json_skip(" \t \r  ");
	/* Skipped without a look at line[len]: a '{' there changes nothing. */
	assert_int_equal(run(JSON, INFLUX_NS, "  ", 2, '{'), PARSE_SKIP);
	assert_int_equal(run(JSON, INFLUX_NS, "", 0, '{'), PARSE_SKIP);
}

/* The parser reads len bytes, never line[len], whatever it holds. */
static void test_json_stops_at_len(void **state)
{
	static const struct {
		const char *text;
		char after;
	} cases[] = {
		{ "{\"a\":1", '}' },
		{ "{\"a\":\"x", '"' },
		{ "{\"a\":1.5", '}' },
		{ "{\"a\":tru", 'e' },
		{ "{\"a\":\"\\u004", '1' },
		{ "{\"a\":\"x\\", '"' },
		{ "{\"a", '"' },
		{ "{\"a\":1e", '5' },
		{ "{\"a\":-", '1' },
		{ "{\"a\":1.", '5' },
		{ "{\"a\":\"\\ud83d\\ude0", '0' },
		{ "{\"a\":\"\\ud83d", '\\' },
		{ "{\"a\":\"\\ud83d\\", 'u' },
		{ "{\"a\":\"\\u", '0' },
	};
	const struct cg_reading *r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		json_bad_n(cases[i].text, strlen(cases[i].text), cases[i].after, NULL);
	/* A number right before the end is read up to the end, not beyond. */
	r = json_ok_n("{\"a\":12.5,\"b\":7}", strlen("{\"a\":12.5,\"b\":7}"), '9');
	expect_f64(r, "a", 12.5);
	expect_i64(r, "b", 7);
	/* A long number converted by strtod(), followed by more members. */
	r = json_ok("{\"a\":1.2345678901234567890123,\"b\":2e-5,\"c\":3}");
	expect_f64(r, "a", strtod("1.2345678901234567890123", NULL));
	expect_f64(r, "b", 2e-5);
	expect_i64(r, "c", 3);
}

/* A message is reused: nothing of the previous line survives. */
static void test_json_reuse(void **state)
{
	const struct cg_reading *r;

	r = json_ok("{\"topic\":\"t\",\"ts\":5,\"a\":1,\"b\":2}");
	expect_topic(r, "t");
	r = json_ok("{\"c\":3}");
	expect_topic(r, NULL);
	expect_ts(r, 0);
	expect_n_fields(r, 1);
	expect_i64(r, "c", 3);
	json_bad("{\"topic\":\"t\",\"ts\":5,\"a\":1,\"a\":2}", NULL);
	r = json_ok("{\"d\":4}");
	expect_topic(r, NULL);
	expect_ts(r, 0);
	expect_n_fields(r, 1);
}

/* A short reason buffer is filled, terminated and never overrun. */
static void test_why_buffer(void **state)
{
	static const char *const json_lines[] = {
		"{\"a\":1",	     "{\"a\":\"\xff\"}", "{}",
		"{\"a\":1,\"a\":2}", "{\"a\":null}",	 "{\"ts\":-1,\"a\":1}",
	};
	static const char *const influx_lines[] = { "m", "m v=\"\xff\"", "m,a=1 a=2", "m v=1 -5",
						    "a-b v=1" };
	char small[32];
	struct message *m = msg;

	for (size_t size = 1; size <= 12; size += 11) {
		for (size_t i = 0; i < sizeof(json_lines) / sizeof(json_lines[0]); i++) {
			char *copy = strdup(json_lines[i]);

			memset(small, 'Z', sizeof(small));
			assert_int_equal(parse_json(copy, strlen(copy), m, small, size), -EINVAL);
			assert_int_equal(small[size - 1], '\0');
			assert_int_equal(small[size], 'Z');
			free(copy);
		}
		for (size_t i = 0; i < sizeof(influx_lines) / sizeof(influx_lines[0]); i++) {
			char *copy = strdup(influx_lines[i]);

			memset(small, 'Z', sizeof(small));
			assert_int_equal(
			    parse_influx(copy, strlen(copy), INFLUX_NS, m, small, size), -EINVAL);
			assert_int_equal(small[size - 1], '\0');
			assert_int_equal(small[size], 'Z');
			free(copy);
		}
	}
}

/*
 * The reason is written back as one line, "error <reason>\n", and logged: it must not
 * carry control characters from the message. A newline would split the answer into two
 * lines, the second of them the client's own text ("ok 99"), and break the count of
 * answers a client in ack mode relies on.
 */
static void expect_printable_reason(void)
{
	char line_shown[sizeof(shown)];

	for (const char *p = why; *p; p++) {
		if ((unsigned char)*p >= 0x20 && *p != 0x7f)
			continue;
		memcpy(line_shown, shown, sizeof(shown));
		fail_msg("%s: the reason has control character 0x%02x: \"%s\"", line_shown,
			 (unsigned char)*p, show(why, strlen(why)));
	}
}

static void test_why_is_printable(void **state)
{
	static const char *const json_lines[] = {
		"{\"x\\nok 99\":1}",  "{\"x\\r\\nok 99\":1}", "{\"topic\":\"a\\nok 1\",\"v\":1}",
		"{\"\\u001b[2J\":1}", "{\"\\u007f\":true}",   "{\"ok\\t\":1}",
	};
	/* Datagram mode: a message may hold a newline. */
	static const char *const influx_lines[] = {
		"m\nok 5 v=1", "m v=1\nok", "m\x1b[2J v=1", "m,t\n=x v=1", "m a\tb=1", "m,t= v=1\n",
	};

	for (size_t i = 0; i < sizeof(json_lines) / sizeof(json_lines[0]); i++) {
		json_bad(json_lines[i], NULL);
		expect_printable_reason();
	}
	for (size_t i = 0; i < sizeof(influx_lines) / sizeof(influx_lines[0]); i++) {
		influx_bad(influx_lines[i], NULL);
		expect_printable_reason();
	}
}

/* ---------------------------------------------------------------------------------- */
/* InfluxDB line protocol                                                                */
/* ---------------------------------------------------------------------------------- */

static void test_influx_readme_example(void **state)
{
	const struct cg_reading *r = influx_ok("boiler,site=north temperature=21.5,count=3i,"
					       "ok=true,state=\"idle\" 1732480000123000000");
	static const char *const names[] = { "site", "temperature", "count", "ok", "state" };

	expect_topic(r, "boiler");
	expect_ts(r, 1732480000123);
	expect_n_fields(r, 5);
	expect_str(r, "site", "north");
	expect_f64(r, "temperature", 21.5);
	expect_i64(r, "count", 3);
	expect_bool(r, "ok", true);
	expect_str(r, "state", "idle");
	/* Tags first, then fields, each in the order of the line. */
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(r->fields[i].name, names[i]);

	r = influx_ok("m v=1");
	expect_topic(r, "m");
	expect_ts(r, 0);
	expect_n_fields(r, 1);
	expect_f64(r, "v", 1.0);
}

static void test_influx_tags(void **state)
{
	const struct cg_reading *r;

	r = influx_ok("site/a,a=1,b=x,c=true,d=1i,e=\"q\" v=2i");
	expect_topic(r, "site/a");
	expect_n_fields(r, 6);
	/* Tag values are strings, whatever they look like. */
	expect_str(r, "a", "1");
	expect_str(r, "b", "x");
	expect_str(r, "c", "true");
	expect_str(r, "d", "1i");
	expect_str(r, "e", "\"q\"");
	expect_i64(r, "v", 2);

	r = influx_ok("m,loc=K\xc3\xbc"
		      "che v=1");
	expect_str(r, "loc",
		   "K\xc3\xbc"
		   "che");
	/* A tag needs a key and a value. */
	influx_bad("m,=x v=1", NULL);
	influx_bad("m,t v=1", NULL);
	influx_bad("m,t= v=1", NULL);
	influx_bad("m, v=1", NULL);
	influx_bad("m,t=x, v=1", NULL);
	influx_bad("m,t=x,,u=y v=1", NULL);
}

static void test_influx_escapes(void **state)
{
	const struct cg_reading *r;

	/* Tag values: comma, equals sign and space. */
	r = influx_ok("m,loc=a\\ b\\,c\\=d v=1");
	expect_str(r, "loc", "a b,c=d");
	r = influx_ok("m,a=\\ ,b=\\,,c=\\= v=1");
	expect_str(r, "a", " ");
	expect_str(r, "b", ",");
	expect_str(r, "c", "=");
	/* A backslash before anything else is itself. */
	r = influx_ok("m,p=C:\\dir\\x v=1");
	expect_str(r, "p", "C:\\dir\\x");
	/* An escaped space does not end the tags. */
	influx_bad("m,p=a\\ v=1", NULL);
	influx_bad("m,p=a\\", NULL);

	/* Decoded names must still be field names, and the reason names the decoded one. */
	influx_bad("m,a\\ b=x v=1", "a b");
	influx_bad("m,a\\,b=x v=1", "a,b");
	influx_bad("m,a\\=b=x v=1", "a=b");
	influx_bad("m a\\ b=1", "a b");
	influx_bad("m a\\,b=1", "a,b");
	influx_bad("m a\\=b=1", "a=b");
	/* The measurement: comma and space, then the topic rules. */
	influx_bad("m\\ x v=1", "topic");
	influx_bad("m\\,x v=1", "topic");
	influx_bad("m\\,x,t=1 v=1", "topic");
}

static void test_influx_floats(void **state)
{
	static const struct {
		const char *text;
		double v;
	} cases[] = {
		{ "21.5", 21.5 },
		{ "-3", -3.0 },
		{ "1e3", 1000.0 },
		{ "1E3", 1000.0 },
		{ "1e-3", 1e-3 },
		{ "0", 0.0 },
		{ "-0", -0.0 },
		{ "-0.0", -0.0 },
		{ "2", 2.0 },
		{ "0.1", 0.1 },
		{ "1.5e300", 1.5e300 },
		{ "12345678901234567890", 12345678901234567890.0 },
		{ "9223372036854775808", 9223372036854775808.0 },
	};
	char text[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_f64(influx_value_ok(cases[i].text), "v", cases[i].v);
	/* The JSON tests' numbers, through the line protocol, are in expect_float_like_strtod(). */
	for (int i = 0; i < 5000; i++) {
		int64_t v = (int64_t)(rng() >> rng_below(64));

		snprintf(text, sizeof(text), "%" PRId64,
			 rng_below(2) ? (int64_t)(0 - (uint64_t)v) : v);
		expect_f64(influx_value_ok(text), "v", strtod(text, NULL));
	}
	influx_value_bad("1e309", "large|range|overflow|double");
	influx_value_bad("-1e309", "large|range|overflow|double");
}

static void test_influx_integers(void **state)
{
	static const struct {
		const char *text;
		int64_t v;
	} cases[] = {
		{ "3i", 3 },
		{ "-3i", -3 },
		{ "0i", 0 },
		{ "-0i", 0 },
		{ "9223372036854775807i", INT64_MAX },
		{ "-9223372036854775808i", INT64_MIN },
		{ "3u", 3 },
		{ "0u", 0 },
		{ "9223372036854775807u", INT64_MAX },
	};
	static const char *const bad[] = {
		"9223372036854775808i",
		"-9223372036854775809i",
		"99999999999999999999i",
		"9223372036854775808u",
		"18446744073709551615u",
		"18446744073709551616u",
		"-1u",
		"-0u",
		"1.5i",
		"1e3i",
		"1.0i",
		"i",
		"-i",
		"u",
		"1ii",
		"1iu",
		"1ui",
		"1I",
		"1U",
		"0x10i",
		"+1i",
		"+1u",
		"1 i",
		"--1i",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_i64(influx_value_ok(cases[i].text), "v", cases[i].v);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		influx_value_bad(bad[i], NULL);
	influx_value_bad("9223372036854775808i", "64|range|large|fit|big");
	influx_value_bad("9223372036854775808u", "2^63|range|large|fit|big");
}

static void test_influx_bools(void **state)
{
	static const char *const yes[] = { "t", "T", "true", "True", "TRUE" };
	static const char *const no[] = { "f", "F", "false", "False", "FALSE" };
	static const char *const bad[] = { "tRUE", "truE",  "yes",   "no",   "on",	 "1b",
					   "tt",   "ff",    "truee", "fals", "TRue",	 "\"t",
					   "nan",  "NaN",   "inf",   "-inf", "Infinity", "abc",
					   "1x",   "1.2.3", "--1",   "1e",   "0x10",	 ".",
					   "-",	   "e5" };

	for (size_t i = 0; i < 5; i++) {
		expect_bool(influx_value_ok(yes[i]), "v", true);
		expect_bool(influx_value_ok(no[i]), "v", false);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		influx_value_bad(bad[i], NULL);
}

static void test_influx_strings(void **state)
{
	static char text[2000], want[600];
	const struct cg_reading *r;
	char *p;

	r = influx_ok("m s=\"a b,c=d\",t=\"\",u=\"x\" 5");
	expect_str(r, "s", "a b,c=d");
	expect_str(r, "t", "");
	expect_str(r, "u", "x");
	expect_ts(r, 0); /* 5 ns */
	r = influx_ok("m s=\"say \\\"hi\\\" \\\\ end\"");
	expect_str(r, "s", "say \"hi\" \\ end");
	/* Only \" and \\ are escapes: other backslashes stay. */
	r = influx_ok("m s=\"a\\nb\\tc\\,d\"");
	expect_str(r, "s", "a\\nb\\tc\\,d");
	r = influx_ok("m s=\"gr\xc3\xbc\xc3\x9f"
		      "e \xf0\x9f\x98\x80\"");
	expect_str(r, "s",
		   "gr\xc3\xbc\xc3\x9f"
		   "e \xf0\x9f\x98\x80");
	r = influx_ok("m s=\"#=, \"");
	expect_str(r, "s", "#=, ");

	influx_bad("m s=\"abc", NULL);
	influx_bad("m s=\"abc\\\"", NULL);
	influx_bad("m s=\"a\"b", NULL);
	influx_bad("m s=\"a\"\"b\"", NULL);
	influx_bad("m s=a\"b\"", NULL);
	influx_bad("m s=\"", NULL);
	influx_bad("m s=\"\xff\"", "utf-8|utf8");
	influx_bad("m s=\"\xc3\"", "utf-8|utf8");

	/* 512 bytes after decoding, 513 rejected. */
	memset(want, 'x', 513);
	want[512] = '\0';
	snprintf(text, sizeof(text), "m s=\"%s\"", want);
	expect_str(influx_ok(text), "s", want);
	want[512] = 'x';
	want[513] = '\0';
	snprintf(text, sizeof(text), "m s=\"%s\"", want);
	influx_bad(text, "512|long");
	p = text + sprintf(text, "m s=\"");
	for (int i = 0; i < 512; i++)
		p += sprintf(p, "\\\\");
	strcpy(p, "\"");
	memset(want, '\\', 512);
	want[512] = '\0';
	expect_str(influx_ok(text), "s", want);
	strcpy(p, "\\\"\"");
	influx_bad(text, "512|long");
	/* Tag values too. */
	memset(want, 'y', 513);
	want[513] = '\0';
	snprintf(text, sizeof(text), "m,t=%s v=1", want);
	influx_bad(text, "512|long");
}

/* A NUL byte is not text: never accepted, never silently cutting a value short. */
static void test_influx_nul(void **state)
{
	static const char string_value[] = "m s=\"a\0b\"";
	static const char escaped_in_tag_value[] = "m,t=a\\\0b v=1";
	static const char escaped_in_measurement[] = "m\\\0x v=1";
	static const char escaped_in_field_key[] = "m a\\\0b=1";
	static const char escaped_in_tag_key[] = "m,a\\\0b=x v=1";
	static const char raw_in_tag_value[] = "m,t=a\0b v=1";
	static const char after_value[] = "m v=1\0";
	static const char after_timestamp[] = "m v=1 5\0";

	influx_bad_n(INFLUX_NS, string_value, sizeof(string_value) - 1, '\n', NULL);
	influx_bad_n(INFLUX_NS, escaped_in_tag_value, sizeof(escaped_in_tag_value) - 1, '\n', NULL);
	influx_bad_n(INFLUX_NS, escaped_in_measurement, sizeof(escaped_in_measurement) - 1, '\n',
		     NULL);
	influx_bad_n(INFLUX_NS, escaped_in_field_key, sizeof(escaped_in_field_key) - 1, '\n', NULL);
	influx_bad_n(INFLUX_NS, escaped_in_tag_key, sizeof(escaped_in_tag_key) - 1, '\n', NULL);
	influx_bad_n(INFLUX_NS, raw_in_tag_value, sizeof(raw_in_tag_value) - 1, '\n', NULL);
	influx_bad_n(INFLUX_NS, after_value, sizeof(after_value) - 1, '\n', NULL);
	influx_bad_n(INFLUX_NS, after_timestamp, sizeof(after_timestamp) - 1, '\n', NULL);
}

static void test_influx_timestamps(void **state)
{
	static const struct {
		enum influx_precision p;
		const char *text;
		int64_t ms;
	} good[] = {
		{ INFLUX_NS, "1732480000123000000", 1732480000123 },
		{ INFLUX_NS, "1732480000123999999", 1732480000123 }, /* truncated */
		{ INFLUX_NS, "1999999", 1 },
		{ INFLUX_NS, "999999", 0 },
		{ INFLUX_NS, "0", 0 },
		{ INFLUX_NS, "9223372036854775807", 9223372036854 },
		{ INFLUX_US, "1732480000123000", 1732480000123 },
		{ INFLUX_US, "1732480000123999", 1732480000123 },
		{ INFLUX_US, "1732480000123456789", 1732480000123456 },
		{ INFLUX_US, "1999", 1 },
		{ INFLUX_US, "9223372036854775807", 9223372036854775 },
		{ INFLUX_MS, "1732480000123", 1732480000123 },
		{ INFLUX_MS, "1", 1 },
		{ INFLUX_MS, "9223372036854775807", INT64_MAX },
		{ INFLUX_S, "1732480000", 1732480000000 },
		{ INFLUX_S, "1", 1000 },
		{ INFLUX_S, "0", 0 },
		{ INFLUX_S, "9223372036854775", 9223372036854775000 },
	};
	static const struct {
		enum influx_precision p;
		const char *text;
	} bad[] = {
		{ INFLUX_NS, "-1" },
		{ INFLUX_US, "-1" },
		{ INFLUX_MS, "-1" },
		{ INFLUX_S, "-1" },
		{ INFLUX_NS, "-1732480000123000000" },
		{ INFLUX_NS, "-9223372036854775808" },
		{ INFLUX_NS, "9223372036854775808" },
		{ INFLUX_US, "9223372036854775808" },
		{ INFLUX_MS, "9223372036854775808" },
		{ INFLUX_S, "9223372036854775808" },
		{ INFLUX_NS, "99999999999999999999" },
		{ INFLUX_NS, "12a" },
		{ INFLUX_NS, "1.5" },
		{ INFLUX_NS, "1e9" },
		{ INFLUX_NS, "+5" },
		{ INFLUX_NS, "0x10" },
		{ INFLUX_NS, "5i" },
		{ INFLUX_NS, "-" },
		{ INFLUX_NS, "123 456" },
		{ INFLUX_NS, "123 x" },
		{ INFLUX_NS, "x" },
		{ INFLUX_NS, "\"5\"" },
	};
	char text[128];

	for (enum influx_precision p = INFLUX_NS; p <= INFLUX_S; p++)
		expect_ts(influx_ok_n(p, "m v=1", 5, '\n'), 0);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "m v=1 %s", good[i].text);
		expect_ts(influx_ok_n(good[i].p, text, strlen(text), '\n'), good[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "m v=1 %s", bad[i].text);
		influx_bad_n(bad[i].p, text, strlen(text), '\n', NULL);
	}
	influx_bad_n(INFLUX_MS, "m v=1 -5", 8, '\n', "negative|timestamp");
	/* In seconds, too large once in milliseconds. */
	influx_bad_n(INFLUX_S, "m v=1 9223372036854776", 22, '\n', "large|range|fit|overflow");
	influx_bad_n(INFLUX_S, "m v=1 1732480000123456789", 25, '\n', "large|range|fit|overflow");
	/* A timestamp after tags and a string. */
	expect_ts(influx_ok_n(INFLUX_MS, "m,a=b s=\"x y\" 77", strlen("m,a=b s=\"x y\" 77"), '\n'),
		  77);
}

static void test_influx_skip(void **state)
{
	influx_skip("");
	influx_skip(" ");
	influx_skip("\t");
	influx_skip("  \t ");
	influx_skip("#");
	influx_skip("# a comment, with = and \"");
	influx_skip("#m v=1");
	/* A comment is skipped unread, even if it is not UTF-8. */
	influx_skip("# \xff");
	assert_int_equal(run(INFLUX, INFLUX_NS, "", 0, 'm'), PARSE_SKIP);
}

static void test_influx_names(void **state)
{
	static const char *const clash[] = {
		"m,a=x a=1", "m,a=x,a=y v=1", "m a=1,a=2", "m a=1,b=2,a=\"x\"", "m,b=1,a=x b=2",
	};
	static const char *const bad_names[] = {
		"m a/b=1", "m \xc3\xa4=1", "m a+b=1", "m,a/b=x v=1", "m,a:b=x v=1",
	};
	char text[200], name[80];
	const struct cg_reading *r;

	for (size_t i = 0; i < sizeof(clash) / sizeof(clash[0]); i++)
		influx_bad(clash[i], "twice|duplicate");
	r = influx_ok("m,a=x A=1");
	expect_str(r, "a", "x");
	expect_f64(r, "A", 1.0);
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
		influx_bad(bad_names[i], "name");
	r = influx_ok("m a.b-c_D9=1i,0=2i,_=3i,.=4i,-=5i");
	expect_i64(r, "a.b-c_D9", 1);
	expect_i64(r, "-", 5);
	memset(name, 'n', 65);
	name[64] = '\0';
	snprintf(text, sizeof(text), "m %s=1", name);
	expect_f64(influx_ok(text), name, 1.0);
	name[64] = 'n';
	name[65] = '\0';
	snprintf(text, sizeof(text), "m %s=1", name);
	influx_bad(text, "name");
}

static void test_influx_topic(void **state)
{
	char text[400], topic[300];

	expect_topic(influx_ok("a/b/c_D9 v=1"), "a/b/c_D9");
	memset(topic, 'a', 254);
	topic[253] = '\0';
	snprintf(text, sizeof(text), "%s v=1", topic);
	expect_topic(influx_ok(text), topic);
	topic[253] = 'a';
	topic[254] = '\0';
	snprintf(text, sizeof(text), "%s v=1", topic);
	influx_bad(text, "topic");
	influx_bad("a-b v=1", "topic");
	influx_bad("a//b v=1", "topic");
	influx_bad("a.b v=1", "topic");
	influx_bad("\xc3\xa4 v=1", "topic");
	influx_bad("a=b v=1", "topic");
}

static void test_influx_missing_fields(void **state)
{
	static const char *const bad[] = {
		"m",	      "m ",	"m,t=x",  "m,t=x ",   "m  ",	 "m,t=x,",
		",t=x v=1",   " v=1",	"m v",	  "m v=",     "m =1",	 "m v=1,",
		"m v=1,,w=2", "m ,v=1", "m v= 5", "m v=,w=1", "m v=1 ,", "m,",
		"m,t=x  ",    ",",	"=",	  "m v=1,w",  "m\tv=1",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		influx_bad(bad[i], NULL);
}

static void test_influx_field_count(void **state)
{
	static char text[4000];

	/* 32 tags and 32 fields, then one more of either. */
	for (int tags = 32; tags <= 33; tags++) {
		for (int fields = 32; fields <= 33; fields++) {
			char *p = text + sprintf(text, "m");
			const struct cg_reading *r;

			for (int i = 0; i < tags; i++)
				p += sprintf(p, ",t%d=x", i);
			for (int i = 0; i < fields; i++)
				p += sprintf(p, "%sf%d=%di", i ? "," : " ", i, i);
			if (tags + fields > 64) {
				influx_bad(text, "64");
				continue;
			}
			r = influx_ok(text);
			expect_n_fields(r, 64);
			expect_str(r, "t31", "x");
			expect_i64(r, "f31", 31);
		}
	}
	/* Many more. */
	char *p = text + sprintf(text, "m ");
	for (int i = 0; i < 300; i++)
		p += sprintf(p, "%sf%d=1", i ? "," : "", i);
	influx_bad(text, "64");
}

static void test_influx_garbage(void **state)
{
	static const char *const bad[] = {
		"m v=1 123 456", "m v=1 123 x", "m v=1 x",   "m v=1x",	    "m v=1 v=2",
		"m v=\"a\" b",	 "m v=1\"",	"m v=1;w=2", "m v=1 \"1\"", "\xef\xbb\xbfm v=1",
	};
	static const char *const ok[] = { "m v=1 123", "m v=1i", "m v=t" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		influx_bad(bad[i], NULL);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		influx_ok(ok[i]);
}

/* The parser reads len bytes, never line[len]. */
static void test_influx_stops_at_len(void **state)
{
	const struct cg_reading *r;

	influx_bad_n(INFLUX_NS, "m s=\"abc", 8, '"', NULL);
	influx_bad_n(INFLUX_NS, "m v=tru", 7, 'e', NULL);
	influx_bad_n(INFLUX_NS, "m", 1, ' ', NULL);
	influx_bad_n(INFLUX_NS, "m v=1e", 6, '5', NULL);
	r = influx_ok_n(INFLUX_NS, "m v=1", 5, 'i');
	expect_f64(r, "v", 1.0);
	r = influx_ok_n(INFLUX_NS, "m v=1", 5, '.');
	expect_f64(r, "v", 1.0);
	r = influx_ok_n(INFLUX_MS, "m v=1 12", 8, '3');
	expect_ts(r, 12);
	r = influx_ok_n(INFLUX_NS, "m v=1.25,w=2", 8, '5');
	expect_f64(r, "v", 1.25);
	influx_bad_n(INFLUX_NS, "m,t=a\\", 6, ' ', NULL);
}

static void test_influx_reuse(void **state)
{
	const struct cg_reading *r;

	r = json_ok("{\"topic\":\"x\",\"ts\":9,\"a\":1,\"b\":2,\"c\":3}");
	r = influx_ok("m v=1");
	expect_topic(r, "m");
	expect_ts(r, 0);
	expect_n_fields(r, 1);
	influx_bad("n,a=1,b=2 a=3 5", NULL);
	r = influx_ok("m w=2");
	expect_ts(r, 0);
	expect_n_fields(r, 1);
	r = json_ok("{\"c\":1}");
	expect_topic(r, NULL);
}

/* ---------------------------------------------------------------------------------- */

static int setup(void **state)
{
	msg = malloc(sizeof(*msg));
	return msg ? 0 : -1;
}

static int teardown(void **state)
{
	free(line);
	line = NULL;
	return 0;
}

static int group_teardown(void **state)
{
	free(msg);
	return 0;
}

#define TEST(name) cmocka_unit_test_teardown(name, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_json_readme_example),
		TEST(test_json_field_order),
		TEST(test_json_integers),
		TEST(test_json_integer_range),
		TEST(test_json_number_syntax),
		TEST(test_json_floats),
		TEST(test_json_floats_random),
		TEST(test_json_floats_halfway),
		TEST(test_json_floats_long),
		TEST(test_json_bools),
		TEST(test_json_string_escapes),
		TEST(test_json_string_bad_escapes),
		TEST(test_json_surrogates),
		TEST(test_json_nul),
		TEST(test_json_control_characters),
		TEST(test_json_string_length),
		TEST(test_json_invalid_utf8),
		TEST(test_json_topic),
		TEST(test_json_timestamp),
		TEST(test_json_no_fields),
		TEST(test_json_duplicates),
		TEST(test_json_null_and_nested),
		TEST(test_json_field_count),
		TEST(test_json_names),
		TEST(test_json_syntax),
		TEST(test_json_whitespace),
		TEST(test_json_stops_at_len),
		TEST(test_json_reuse),
		TEST(test_why_buffer),
		TEST(test_why_is_printable),
		TEST(test_influx_readme_example),
		TEST(test_influx_tags),
		TEST(test_influx_escapes),
		TEST(test_influx_floats),
		TEST(test_influx_integers),
		TEST(test_influx_bools),
		TEST(test_influx_strings),
		TEST(test_influx_nul),
		TEST(test_influx_timestamps),
		TEST(test_influx_skip),
		TEST(test_influx_names),
		TEST(test_influx_topic),
		TEST(test_influx_missing_fields),
		TEST(test_influx_field_count),
		TEST(test_influx_garbage),
		TEST(test_influx_stops_at_len),
		TEST(test_influx_reuse),
	};

	return cmocka_run_group_tests(tests, setup, group_teardown);
}
