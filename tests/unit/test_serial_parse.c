// SPDX-License-Identifier: MIT
/*
 * Unit tests of the serial input's formats (plugins/serial: frame.c, value.c,
 * parse_*.c) against plugins/serial/README.md, "Formats": key=value pairs, CSV, regex
 * with named groups, NMEA 0183 GGA and RMC, JSON through the Unix socket input's
 * parser, and what frame_parse() does for all of them (line ends, white space, NUL
 * bytes, the daemon's rules, printable reasons); and the hex preview of the log.
 *
 * Every frame is parsed from a heap buffer of exactly len + 1 bytes, like the framer's
 * frame and its spare byte, so ASan sees any access past it; the spare byte holds
 * garbage, which a parser that reads it as text gets wrong. Floats are compared bit
 * for bit with what the same arithmetic or strtod() gives.
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

#include "formats.h"
#include "reading.h"

static char *frame;
static size_t frame_len;
static struct message *msg;
static char why[256];
static char shown[400];

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
	shown[n < sizeof(shown) ? n : sizeof(shown) - 1] = '\0';
	return shown;
}

static int parse_n(const struct frame_format *ff, const char *s, size_t len)
{
	free(frame);
	frame = malloc(len + 1);
	assert_non_null(frame);
	memcpy(frame, s, len);
	frame[len] = 'Z';
	frame_len = len;
	show(s, len);
	memset(why, 0, sizeof(why));
	/* Garbage: the parser must set up everything it returns. */
	memset(msg, 0xa5, sizeof(*msg));
	return frame_parse(ff, frame, len, msg, why, sizeof(why));
}

static int parse(const struct frame_format *ff, const char *s)
{
	return parse_n(ff, s, strlen(s));
}

static const struct cg_reading *accepted(int ret)
{
	char vwhy[256];

	if (ret != FRAME_READING)
		fail_msg("%s: returned %d (%s), expected a reading", shown, ret, why);
	if (reading_validate(&msg->reading, vwhy, sizeof(vwhy)) != 0)
		fail_msg("%s: a reading that reading_validate() refuses: %s", shown, vwhy);
	return &msg->reading;
}

static void rejected(int ret, const char *reason_part)
{
	if (ret != -EINVAL)
		fail_msg("%s: returned %d, expected -EINVAL", shown, ret);
	if (strlen(why) < 5)
		fail_msg("%s: the reason \"%s\" says nothing", shown, why);
	for (const char *p = why; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			fail_msg("%s: the reason \"%s\" is not printable", shown, why);
	if (reason_part && !strcasestr(why, reason_part))
		fail_msg("%s: the reason \"%s\" does not say \"%s\"", shown, why, reason_part);
}

static const struct cg_field *field(const char *name)
{
	for (size_t i = 0; i < msg->reading.n_fields; i++)
		if (strcmp(msg->fields[i].name, name) == 0)
			return &msg->fields[i];
	fail_msg("%s: no field \"%s\"", shown, name);
	return NULL;
}

static bool has_field(const char *name)
{
	for (size_t i = 0; i < msg->reading.n_fields; i++)
		if (strcmp(msg->fields[i].name, name) == 0)
			return true;
	return false;
}

static void check_f64(const char *name, double v)
{
	const struct cg_field *f = field(name);

	if (f->type != CG_FIELD_F64)
		fail_msg("%s: field %s has type %d, expected f64", shown, name, f->type);
	if (memcmp(&f->value.f64, &v, sizeof(v)) != 0)
		fail_msg("%s: field %s is %.17g, expected %.17g", shown, name, f->value.f64, v);
}

static void check_i64(const char *name, int64_t v)
{
	const struct cg_field *f = field(name);

	if (f->type != CG_FIELD_I64)
		fail_msg("%s: field %s has type %d, expected i64", shown, name, f->type);
	if (f->value.i64 != v)
		fail_msg("%s: field %s is %lld, expected %lld", shown, name,
			 (long long)f->value.i64, (long long)v);
}

static void check_bool(const char *name, bool v)
{
	const struct cg_field *f = field(name);

	if (f->type != CG_FIELD_BOOL || f->value.b != v)
		fail_msg("%s: field %s is not the bool %d", shown, name, v);
}

static void check_str(const char *name, const char *v)
{
	const struct cg_field *f = field(name);

	if (f->type != CG_FIELD_STRING || strcmp(f->value.str, v) != 0)
		fail_msg("%s: field %s is not the string \"%s\"", shown, name, v);
}

static void check_n(size_t n)
{
	if (msg->reading.n_fields != n)
		fail_msg("%s: %zu fields, expected %zu", shown, msg->reading.n_fields, n);
}

static int setup(void **state)
{
	(void)state;
	msg = malloc(sizeof(*msg));
	return msg ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(msg);
	free(frame);
	frame = NULL;
	return 0;
}

/* ---- values ---- */

static struct cg_field value_field;

static int value(const char *text, enum value_type type)
{
	size_t len = strlen(text);

	free(frame);
	frame = malloc(len + 1);
	assert_non_null(frame);
	memcpy(frame, text, len);
	frame[len] = '7'; /* a digit: a parser that reads it gets numbers wrong */
	show(text, len);
	memset(&value_field, 0xa5, sizeof(value_field));
	if (type == (enum value_type) - 1)
		return value_parse_auto(frame, len, &value_field, why, sizeof(why));
	return value_parse(frame, len, type, &value_field, why, sizeof(why));
}

#define AUTO ((enum value_type) - 1)

static void value_f64(const char *text, enum value_type type, double v)
{
	int r = value(text, type);

	if (r != 0 || value_field.type != CG_FIELD_F64 ||
	    (memcmp(&value_field.value.f64, &v, sizeof(v)) != 0 &&
	     !(isnan(v) && isnan(value_field.value.f64))))
		fail_msg("\"%s\": %d (%s), f64 %.17g, expected %.17g", text, r, why,
			 value_field.value.f64, v);
}

static void value_i64(const char *text, enum value_type type, int64_t v)
{
	int r = value(text, type);

	if (r != 0 || value_field.type != CG_FIELD_I64 || value_field.value.i64 != v)
		fail_msg("\"%s\": %d (%s), expected the i64 %lld", text, r, why, (long long)v);
}

static void value_bool(const char *text, enum value_type type, bool v)
{
	int r = value(text, type);

	if (r != 0 || value_field.type != CG_FIELD_BOOL || value_field.value.b != v)
		fail_msg("\"%s\": %d (%s), expected the bool %d", text, r, why, v);
}

static void value_str(const char *text, enum value_type type)
{
	int r = value(text, type);

	if (r != 0 || value_field.type != CG_FIELD_STRING ||
	    strcmp(value_field.value.str, text) != 0)
		fail_msg("\"%s\": %d (%s), expected itself as a string", text, r, why);
}

static void value_rejected(const char *text, enum value_type type, const char *reason_part)
{
	int r = value(text, type);

	if (r != -EINVAL)
		fail_msg("\"%s\": returned %d, expected -EINVAL", text, r);
	if (!strstr(why, reason_part))
		fail_msg("\"%s\": the reason \"%s\" does not say \"%s\"", text, why, reason_part);
}

static void test_value_numbers(void **state)
{
	static const char *const decimals[] = {
		"21.5",
		"-0.5",
		"+1.5",
		"1e3",
		"1E-2",
		".5",
		"1.",
		"0.1",
		"-.25",
		"3.14159265358979323846264338",
		"1.7976931348623157e308",
		"5e-324",
		"2.2250738585072011e-308",
		"123456789012345678901234567890",
		"007",
		"0",
		"-0",
		"1e-400",
	};

	(void)state;
	/* f64: bit for bit what strtod() gives, for text that is a number. */
	for (size_t i = 0; i < sizeof(decimals) / sizeof(decimals[0]); i++)
		value_f64(decimals[i], VALUE_F64, strtod(decimals[i], NULL));
	value_f64("nan", VALUE_F64, NAN);
	value_f64("-NaN", VALUE_F64, -NAN);
	value_f64("inf", VALUE_F64, INFINITY);
	value_f64("-Infinity", VALUE_F64, -INFINITY);
	value_rejected("1e400", VALUE_F64, "too large");
	value_rejected("abc", VALUE_F64, "not a number");
	value_rejected("1,5", VALUE_F64, "not a number");
	value_rejected("1e", VALUE_F64, "not a number");
	value_rejected(".", VALUE_F64, "not a number");
	value_rejected("-", VALUE_F64, "not a number");
	value_rejected("0x10", VALUE_F64, "not a number");
	value_rejected(" 1", VALUE_F64, "not a number");
	value_rejected("1 ", VALUE_F64, "not a number");
	value_rejected("--1", VALUE_F64, "not a number");
	value_rejected("", VALUE_F64, "not a number");
	/* i64 */
	value_i64("42", VALUE_I64, 42);
	value_i64("+5", VALUE_I64, 5);
	value_i64("-0", VALUE_I64, 0);
	value_i64("0007", VALUE_I64, 7);
	value_i64("9223372036854775807", VALUE_I64, INT64_MAX);
	value_i64("-9223372036854775808", VALUE_I64, INT64_MIN);
	value_rejected("9223372036854775808", VALUE_I64, "does not fit");
	value_rejected("-9223372036854775809", VALUE_I64, "does not fit");
	value_rejected("21.0", VALUE_I64, "not an integer");
	value_rejected("1e3", VALUE_I64, "not an integer");
	value_rejected("nan", VALUE_I64, "not an integer");
	/* bool */
	value_bool("true", VALUE_BOOL, true);
	value_bool("TRUE", VALUE_BOOL, true);
	value_bool("1", VALUE_BOOL, true);
	value_bool("On", VALUE_BOOL, true);
	value_bool("yes", VALUE_BOOL, true);
	value_bool("false", VALUE_BOOL, false);
	value_bool("0", VALUE_BOOL, false);
	value_bool("OFF", VALUE_BOOL, false);
	value_bool("no", VALUE_BOOL, false);
	value_rejected("2", VALUE_BOOL, "not a boolean");
	value_rejected("truth", VALUE_BOOL, "not a boolean");
	/* string: the text, terminated where it ends */
	value_str("idle", VALUE_STRING);
	value_str("42", VALUE_STRING);
	value_str("", VALUE_STRING);
}

static void test_value_by_look(void **state)
{
	(void)state;
	value_i64("12", AUTO, 12);
	value_i64("-12", AUTO, -12);
	value_i64("+12", AUTO, 12);
	value_i64("9223372036854775807", AUTO, INT64_MAX);
	value_rejected("9223372036854775808", AUTO, "does not fit");
	value_f64("1.5", AUTO, 1.5);
	value_f64("2.", AUTO, 2.0);
	value_f64("1e3", AUTO, 1000.0);
	value_bool("true", AUTO, true);
	value_bool("False", AUTO, false);
	/* Words that are booleans only when the type says so, and no numbers. */
	value_str("1e", AUTO);
	value_str("on", AUTO);
	value_str("nan", AUTO);
	value_str("0x10", AUTO);
	value_str("21.5C", AUTO);
	value_str("abc", AUTO);
}

/* ---- key=value ---- */

static struct frame_format kv_format(const struct field_spec *types, size_t n_types)
{
	return (struct frame_format){
		.format = FORMAT_KV,
		.kv = { .pair_separators = " \t,;",
			.key_separators = "=",
			.types = types,
			.n_types = n_types },
	};
}

static void test_kv_typed_by_look(void **state)
{
	struct frame_format ff = kv_format(NULL, 0);

	(void)state;
	accepted(parse(&ff, "temperature=21.5 humidity=40 door=true state=open"));
	check_n(4);
	check_f64("temperature", 21.5);
	check_i64("humidity", 40);
	check_bool("door", true);
	check_str("state", "open");
	/* The pairs keep their order. */
	assert_string_equal(msg->fields[0].name, "temperature");
	assert_string_equal(msg->fields[3].name, "state");
	/* A value runs to the next pair separator: "=" inside is part of it. */
	accepted(parse(&ff, "expr=a=b"));
	check_str("expr", "a=b");
	/* UTF-8 in a string value. */
	accepted(parse(&ff, "city=Z\xc3\xbcrich"));
	check_str("city", "Z\xc3\xbcrich");
}

static void test_kv_separators(void **state)
{
	struct frame_format ff = kv_format(NULL, 0);

	(void)state;
	accepted(parse(&ff, " ,a=1,b=2;c=3\t \td=4 ;, "));
	check_n(4);
	check_i64("a", 1);
	check_i64("d", 4);
	ff.kv.pair_separators = "|";
	ff.kv.key_separators = ":";
	accepted(parse(&ff, "a:1|b:x y|c:2.5"));
	check_n(3);
	check_str("b", "x y");
	check_f64("c", 2.5);
	/* Several key separators: any one of them. */
	ff.kv.key_separators = ":=";
	accepted(parse(&ff, "a:1|b=2"));
	check_i64("b", 2);
}

static void test_kv_quoted_empty_and_skipped(void **state)
{
	static const struct field_spec types[] = {
		{ "n", VALUE_I64 },	{ "secret", VALUE_SKIP }, { "t", VALUE_F64 },
		{ "flag", VALUE_BOOL }, { "s", VALUE_STRING },
	};
	struct frame_format ff = kv_format(types, sizeof(types) / sizeof(types[0]));

	(void)state;
	/* Quoted: a string, separators inside; with a type, converted. */
	accepted(parse(&ff, "state=\"heating on\" code=\"42\" n=\"7\""));
	check_str("state", "heating on");
	check_str("code", "42");
	check_i64("n", 7);
	/* Types from the configuration. */
	accepted(parse(&ff, "t=21 flag=on s=42 secret=hunter2 other=1"));
	check_n(4);
	check_f64("t", 21.0);
	check_bool("flag", true);
	check_str("s", "42");
	check_i64("other", 1);
	assert_false(has_field("secret"));
	/* Empty values are left out, quoted or not. */
	accepted(parse(&ff, "a= b=2 c=\"\""));
	check_n(1);
	check_i64("b", 2);
	/* Nothing left: a valid frame without a reading. */
	assert_int_equal(parse(&ff, "a= secret=x"), FRAME_IGNORED);
}

static void test_kv_rejected(void **state)
{
	static const struct field_spec types[] = { { "n", VALUE_I64 } };
	struct frame_format ff = kv_format(types, 1);
	char many[2048] = "";

	(void)state;
	rejected(parse(&ff, "garbage"), "expected key=value");
	rejected(parse(&ff, "a=1 b"), "expected key=value");
	rejected(parse(&ff, "=5"), "without a key");
	rejected(parse(&ff, ",;"), "no key=value");
	rejected(parse(&ff, "n=2.5"), "key \"n\": \"2.5\" is not an integer");
	rejected(parse(&ff, "a=\"x"), "does not end");
	rejected(parse(&ff, "a=\"x\"y"), "text after");
	rejected(parse(&ff, "a=1 a=2"), "twice");
	rejected(parse(&ff, "b@d=1"), "name");
	rejected(parse(&ff, "a=99999999999999999999"), "does not fit");
	/* Strings follow the daemon's rules: UTF-8, at most 512 bytes. */
	rejected(parse(&ff, "s=\xff"), "UTF-8");
	rejected(parse(&ff, "s=\xc3\x28"), "UTF-8");
	rejected(parse(&ff, "s=\xed\xa0\x80"), "UTF-8");
	memset(many, 'x', 515);
	memcpy(many, "s=", 2);
	many[515] = '\0';
	rejected(parse(&ff, many), "longer than 512");
	many[514] = '\0';
	accepted(parse(&ff, many));
	check_n(1);
	/* 64 fields, and one more. */
	many[0] = '\0';
	for (int i = 0; i < 64; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "f%d=%d ", i, i);
	accepted(parse(&ff, many));
	check_n(64);
	snprintf(many + strlen(many), sizeof(many) - strlen(many), "f64=64");
	rejected(parse(&ff, many), "at most 64");
}

/* ---- csv ---- */

static struct frame_format csv_format(char delimiter, const struct field_spec *columns, size_t n)
{
	return (struct frame_format){
		.format = FORMAT_CSV,
		.csv = { .delimiter = delimiter, .columns = columns, .n_columns = n },
	};
}

static const struct field_spec four_columns[] = {
	{ "t", VALUE_F64 },
	{ "h", VALUE_I64 },
	{ "ok", VALUE_BOOL },
	{ "s", VALUE_STRING },
};

static void test_csv_columns(void **state)
{
	struct frame_format ff = csv_format(',', four_columns, 4);

	(void)state;
	accepted(parse(&ff, "21.5,40,true,idle"));
	check_n(4);
	check_f64("t", 21.5);
	check_i64("h", 40);
	check_bool("ok", true);
	check_str("s", "idle");
	/* Blanks around values do not count; inside a string they do. */
	accepted(parse(&ff, " 21.5 ,\t40 , no , a b "));
	check_f64("t", 21.5);
	check_bool("ok", false);
	check_str("s", "a b");
	ff.csv.delimiter = ';';
	accepted(parse(&ff, "-1;2;1;x,y"));
	check_str("s", "x,y");
}

static void test_csv_skip_and_empty(void **state)
{
	static const struct field_spec columns[] = {
		{ "a", VALUE_I64 },
		{ NULL, VALUE_SKIP },
		{ "c", VALUE_F64 },
	};
	struct frame_format ff = csv_format(',', columns, 3);

	(void)state;
	accepted(parse(&ff, "1,xyz,3"));
	check_n(2);
	check_i64("a", 1);
	check_f64("c", 3.0);
	/* An empty value leaves its field out. */
	accepted(parse(&ff, "1,,"));
	check_n(1);
	accepted(parse(&ff, ",,2.5"));
	check_n(1);
	assert_int_equal(parse(&ff, ",,"), FRAME_IGNORED);
	/* A skipped column may hold what no field could, Latin-1 included: only the
	 * values kept must be UTF-8. */
	accepted(parse(&ff, "21,\xb0"
			    "C,5"));
	check_n(2);
}

static void test_csv_quotes(void **state)
{
	static const struct field_spec columns[] = {
		{ "a", VALUE_STRING },
		{ "b", VALUE_STRING },
		{ "n", VALUE_I64 },
	};
	struct frame_format ff = csv_format(',', columns, 3);

	(void)state;
	accepted(parse(&ff, "\"a,b\",\"say \"\"hi\"\"\",\"3\""));
	check_str("a", "a,b");
	check_str("b", "say \"hi\"");
	check_i64("n", 3);
	accepted(parse(&ff, " \" x \" ,\"\",4"));
	check_str("a", " x ");
	check_n(2);
	rejected(parse(&ff, "\"open,b,3"), "does not end");
	rejected(parse(&ff, "\"a\"x,b,3"), "text after");
}

static void test_csv_column_count_and_types(void **state)
{
	struct frame_format ff = csv_format(',', four_columns, 4);

	(void)state;
	rejected(parse(&ff, "21.5,40,true"), "3 columns, expected 4");
	rejected(parse(&ff, "21.5,40,true,idle,more"), "more than the 4 columns");
	rejected(parse(&ff, "21.5,40,true,idle,"), "more than the 4 columns");
	rejected(parse(&ff, "x,40,true,idle"), "column 1 (\"t\"): \"x\" is not a number");
	rejected(parse(&ff, "1,4.5,true,idle"), "column 2 (\"h\")");
	rejected(parse(&ff, "1,4,maybe,idle"), "column 3 (\"ok\")");
	rejected(parse(&ff, "1,4,true,\xc3"), "UTF-8");
}

static void test_csv_white_space_delimiter(void **state)
{
	static const struct field_spec columns[] = {
		{ "a", VALUE_F64 },
		{ "b", VALUE_I64 },
		{ "c", VALUE_STRING },
	};
	struct frame_format ff = csv_format(' ', columns, 3);

	(void)state;
	/* Runs of blanks are one delimiter; blanks at the ends are none. */
	accepted(parse(&ff, "  21.5   40\tok "));
	check_f64("a", 21.5);
	check_i64("b", 40);
	check_str("c", "ok");
	accepted(parse(&ff, "1 2 \"two words\""));
	check_str("c", "two words");
	rejected(parse(&ff, "1 2"), "2 columns");
	ff.csv.delimiter = '\t';
	accepted(parse(&ff, "1\t\t2 \t x"));
	check_str("c", "x");
}

/* ---- regex ---- */

static struct regex_format *rf;

static struct frame_format regex_format(const char *pattern, const struct field_spec *types,
					size_t n)
{
	regex_format_free(rf);
	rf = NULL;
	if (regex_format_new(pattern, types, n, &rf, why, sizeof(why)) != 0)
		fail_msg("%s: %s", pattern, why);
	return (struct frame_format){ .format = FORMAT_REGEX, .regex = rf };
}

static int regex_teardown(void **state)
{
	regex_format_free(rf);
	rf = NULL;
	return teardown(state);
}

static void test_regex_named_groups(void **state)
{
	static const struct field_spec types[] = { { "hum", VALUE_I64 },
						   { "state", VALUE_STRING } };
	struct frame_format ff =
	    regex_format("^T=(?<temp>-?[0-9.]+)C H=(?<hum>[0-9]+)% (?<state>[a-z]+)$", types, 2);

	(void)state;
	accepted(parse(&ff, "T=-3.5C H=40% heating"));
	check_n(3);
	check_f64("temp", -3.5);
	check_i64("hum", 40);
	check_str("state", "heating");
	rejected(parse(&ff, "T=-3.5C H=40%"), "does not match");
	rejected(parse(&ff, "T=1.2.3C H=40% x"), "group \"temp\": \"1.2.3\" is not a number");
	assert_true(regex_format_has_group(rf, "hum"));
	assert_false(regex_format_has_group(rf, "humidity"));
}

static void test_regex_group_numbers(void **state)
{
	static const struct field_spec types[] = { { "b", VALUE_STRING } };
	struct frame_format ff;

	(void)state;
	/* Python's spelling, and a plain group between named ones. */
	ff = regex_format("(?P<a>[0-9]+)(x|y)(?<c>[0-9]+)", NULL, 0);
	accepted(parse(&ff, "12y34"));
	check_f64("a", 12.0);
	check_f64("c", 34.0);
	/* Parentheses that are no groups: escaped, in brackets, "]" first in a bracket,
	 * a character class before one. A wrong count shifts every value. */
	ff = regex_format("\\((?<a>[0-9]+)\\) [(](?<b>[a-z]+)[)] []](?<c>[0-9]) "
			  "[[:alpha:](](?<d>[0-9]) [^]()](?<e>[0-9])",
			  types, 1);
	accepted(parse(&ff, "(12) (ab) ]5 x7 z9"));
	check_n(5);
	check_f64("a", 12.0);
	check_str("b", "ab");
	check_f64("c", 5.0);
	check_f64("d", 7.0);
	check_f64("e", 9.0);
}

static void test_regex_nested_and_optional(void **state)
{
	static const struct field_spec strings[] = {
		{ "all", VALUE_STRING },
		{ "first", VALUE_STRING },
		{ "second", VALUE_STRING },
	};
	struct frame_format ff;

	(void)state;
	/* Nested string groups each keep their whole value. */
	ff = regex_format("(?<all>(?<first>[a-z]+)-(?<second>[a-z]+))", strings, 3);
	accepted(parse(&ff, "foo-bar"));
	check_str("all", "foo-bar");
	check_str("first", "foo");
	check_str("second", "bar");
	/* A group that took no part, or matched nothing: no field. */
	ff = regex_format("a=(?<a>[0-9]+)( b=(?<b>[0-9]+))?(?<c>x*)", NULL, 0);
	accepted(parse(&ff, "a=1"));
	check_n(1);
	accepted(parse(&ff, "a=1 b=2"));
	check_n(2);
	check_f64("b", 2.0);
	/* A string group longer than a string field may be. */
	ff = regex_format("(?<first>.*)", strings + 1, 1);
	{
		char big[600];

		memset(big, 'x', 513);
		big[513] = '\0';
		rejected(parse(&ff, big), "longer than 512");
		big[512] = '\0';
		accepted(parse(&ff, big));
	}
	rejected(parse(&ff, "\xff\xfe"), "UTF-8");
}

static void regex_refused(const char *pattern, const struct field_spec *types, size_t n,
			  const char *reason_part)
{
	struct regex_format *bad = NULL;
	int r;

	memset(why, 0, sizeof(why));
	r = regex_format_new(pattern, types, n, &bad, why, sizeof(why));
	if (r != -EINVAL || bad)
		fail_msg("%s: returned %d, expected -EINVAL", pattern, r);
	if (!strstr(why, reason_part))
		fail_msg("%s: the reason \"%s\" does not say \"%s\"", pattern, why, reason_part);
}

static void test_regex_refused(void **state)
{
	char many[2048] = "";

	(void)state;
	regex_refused("(?<a>[0-9]", NULL, 0, "does not compile");
	regex_refused("(?:x)(?<a>1)", NULL, 0, "(?");
	regex_refused("(?=x)(?<a>1)", NULL, 0, "(?");
	regex_refused("(?<a>1)(?<a>2)", NULL, 0, "twice");
	regex_refused("(?<bad name>1)", NULL, 0, "is not 1 to 64");
	regex_refused("(?<>1)", NULL, 0, "is not 1 to 64");
	regex_refused("(?<a", NULL, 0, "(?");
	regex_refused("x([0-9])", NULL, 0, "no named group");
	for (int i = 0; i < 65; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "(?<g%d>x)", i);
	regex_refused(many, NULL, 0, "more than 64");
}

/* ---- NMEA 0183 ---- */

static const struct frame_format nmea_format = { .format = FORMAT_NMEA };

/* "$" body "*" checksum, as a receiver sends it. */
static const char *nmea(const char *body)
{
	static char out[256];
	unsigned sum = 0;

	for (const char *p = body; *p; p++)
		sum ^= (unsigned char)*p;
	snprintf(out, sizeof(out), "$%s*%02X", body, sum);
	return out;
}

static void test_nmea_gga(void **state)
{
	(void)state;
	accepted(parse(&nmea_format,
		       nmea("GPGGA,123519.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,")));
	check_n(8);
	check_str("sentence", "GPGGA");
	check_f64("latitude", 48.1173);
	check_f64("longitude", 11.51667);
	check_f64("altitude", 545.4);
	check_f64("geoid_separation", 46.9);
	check_f64("hdop", 0.9);
	check_i64("fix_quality", 1);
	check_i64("satellites", 8);
	/* South and west are negative; altitude below sea level; every talker. */
	accepted(
	    parse(&nmea_format, nmea("GNGGA,000000,3351.123456,S,15112.5,W,2,12,1.0,-12.5,M,,,,")));
	check_str("sentence", "GNGGA");
	check_f64("latitude", -33.8520576);
	check_f64("longitude", -151.208);
	check_f64("altitude", -12.5);
	assert_false(has_field("geoid_separation"));
	for (const char *const *t = (const char *const[]){ "GL", "GA", "GB", "BD", "GQ", NULL }; *t;
	     t++) {
		char body[128];

		snprintf(body, sizeof(body), "%sGGA,1,4807.038,N,01131.000,E,1,5,,,,,,,", *t);
		accepted(parse(&nmea_format, nmea(body)));
		check_i64("satellites", 5);
	}
	/* Degrees keep two decimals more than the minutes had: 21.6802 minutes are
	 * 0.361336666... degrees, sent as 0.361337 (well within the receiver's step of
	 * 0.0001 minutes), and 07 whole minutes as 0.12 degrees. */
	accepted(parse(&nmea_format, nmea("GPGGA,1,5321.6802,N,00630.3372,W,1,8,1.03,61.7,M,,,,")));
	check_f64("latitude", 53.361337);
	check_f64("longitude", -6.50562);
	accepted(parse(&nmea_format, nmea("GPGGA,1,4807,N,01131,E,1,8,1.03,61.7,M,,,,")));
	check_f64("latitude", 48.12);
	check_f64("longitude", 11.52);
	/* Checksums as receivers write them, in upper or lower case. */
	accepted(parse(&nmea_format,
		       "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"));
	accepted(parse(&nmea_format,
		       "$GPGGA,000000,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*4A"));
	accepted(parse(&nmea_format,
		       "$GPGGA,000000,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*4a"));
}

static void test_nmea_no_fix_leaves_fields_out(void **state)
{
	(void)state;
	/* What a receiver sends before its first fix. */
	accepted(parse(&nmea_format, nmea("GPGGA,,,,,,0,00,99.99,,,,,,")));
	check_n(3);
	check_i64("fix_quality", 0);
	check_i64("satellites", 0);
	check_str("sentence", "GPGGA");
	/* Quality 0 with a stale position: no position. */
	accepted(parse(&nmea_format,
		       nmea("GPGGA,123519,4807.038,N,01131.000,E,0,03,2.0,545.4,M,46.9,M,,")));
	assert_false(has_field("latitude"));
	assert_false(has_field("altitude"));
	assert_false(has_field("hdop"));
	check_i64("satellites", 3);
	/* A fix without the optional parts. */
	accepted(parse(&nmea_format, nmea("GPGGA,123519,4807.038,N,01131.000,E,1,,,,,,,,")));
	check_n(4);
	check_f64("latitude", 48.1173);
}

static void test_nmea_rmc(void **state)
{
	(void)state;
	accepted(
	    parse(&nmea_format,
		  nmea("GPRMC,123519.00,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W,A")));
	check_n(8);
	check_str("sentence", "GPRMC");
	check_bool("valid", true);
	check_f64("latitude", 48.1173);
	check_f64("longitude", 11.51667);
	check_f64("speed_knots", 22.4);
	assert_false(has_field("speed_mps"));
	check_f64("course", 84.4);
	/* 1994-03-23 12:35:19 UTC */
	check_i64("gps_time_ms", 764426119000LL);
	check_str("mode", "A");
	/* 2024-02-29 23:59:59.5 UTC, a leap day; no mode field (NMEA before 2.3). */
	accepted(
	    parse(&nmea_format, nmea("GNRMC,235959.50,A,4807.038,N,01131.000,E,0.0,,290224,,")));
	check_i64("gps_time_ms", 1709251199500LL);
	check_f64("speed_knots", 0.0);
	assert_false(has_field("course"));
	assert_false(has_field("mode"));
	/* Void: no position, speed or course; the time is kept. */
	accepted(parse(&nmea_format, nmea("GPRMC,000001,V,,,,,,,010180,,,N")));
	check_n(4);
	check_bool("valid", false);
	check_i64("gps_time_ms", 315532801000LL);
	check_str("mode", "N");
	accepted(parse(&nmea_format, nmea("GPRMC,,V,,,,,,,,,,N")));
	check_n(3);
}

static void test_nmea_checksum(void **state)
{
	(void)state;
	rejected(parse(&nmea_format,
		       "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*48"),
		 "checksum 48, computed 47");
	/* One bit flipped in the body. */
	rejected(parse(&nmea_format,
		       "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.5,M,46.9,M,,*47"),
		 "checksum");
	rejected(
	    parse(&nmea_format, "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
	    "no checksum");
	rejected(parse(&nmea_format, "$GPGGA,,,,,,0,00,,,,,,,*4"), "two hex digits");
	rejected(parse(&nmea_format, "$GPGGA,,,,,,0,00,,,,,,,*4G"), "two hex digits");
	rejected(parse(&nmea_format, "$GPGGA,,,,,,0,00,,,,,,,*48 junk"), "two hex digits");
	rejected(parse(&nmea_format, "GPGGA,,,,,,0,00,,,,,,,*48"), "start with '$'");
	/* Bad checksums are bad in every sentence, those ignored included. */
	rejected(parse(&nmea_format, "$GPGSV,1,1,00*78"), "checksum 78, computed 79");
}

static void test_nmea_other_sentences_ignored(void **state)
{
	(void)state;
	assert_int_equal(parse(&nmea_format, nmea("GPGSV,3,1,11,03,03,111,00,04,15,270,00")),
			 FRAME_IGNORED);
	assert_int_equal(parse(&nmea_format, nmea("GNGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1")),
			 FRAME_IGNORED);
	assert_int_equal(parse(&nmea_format, nmea("GPVTG,054.7,T,034.4,M,005.5,N,010.2,K")),
			 FRAME_IGNORED);
	/* Proprietary sentences, even one whose name ends in GGA; AIS data. */
	assert_int_equal(parse(&nmea_format, nmea("PUBX,00,081350.00,4717.113210,N")),
			 FRAME_IGNORED);
	assert_int_equal(parse(&nmea_format, nmea("PXGGA,1,2,3")), FRAME_IGNORED);
	assert_int_equal(parse(&nmea_format, "!AIVDM,1,1,,B,177KQJ5000G?tO`K>RA1wUbN0TKH,0*5C"),
			 FRAME_IGNORED);
}

static void test_nmea_malformed(void **state)
{
	static const struct {
		const char *body, *reason;
	} cases[] = {
		{ "GPGGA,1,4860.000,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", "60 minutes" },
		{ "GPGGA,1,9100.000,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", "beyond 90" },
		{ "GPGGA,1,4807.038,N,18100.000,E,1,08,0.9,545.4,M,46.9,M,,", "beyond 180" },
		{ "GPGGA,1,48a7.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", "ddmm.mmmm" },
		{ "GPGGA,1,-4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", "ddmm.mmmm" },
		{ "GPGGA,1,4807.0.38,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", "ddmm.mmmm" },
		{ "GPGGA,1,07.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", "ddmm.mmmm" },
		{ "GPGGA,1,4807.038,X,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", "hemisphere" },
		{ "GPGGA,1,4807.038,,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", "hemisphere" },
		{ "GPGGA,1,,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", "hemisphere" },
		{ "GPGGA,1,4807.038,N,01131.000,W,x,08,0.9,545.4,M,46.9,M,,", "fix quality" },
		{ "GPGGA,1,4807.038,N,01131.000,W,1,8.5,0.9,545.4,M,46.9,M,,", "satellites" },
		{ "GPGGA,1,4807.038,N,01131.000,W,1,08,0.9,545.4,F,46.9,M,,", "not M" },
		{ "GPGGA,1,4807.038,N,01131.000,W,1,08,0.9,nan,M,46.9,M,,", "altitude" },
		{ "GPGGA,1,4807.038,N", "fields" },
		{ "GPRMC,123519,X,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W", "status" },
		{ "GPRMC,123519,A,4807.038,N,01131.000,E,fast,084.4,230394,003.1,W", "speed" },
		{ "GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,320394,003.1,W", "date" },
		{ "GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,290223,003.1,W", "date" },
		{ "GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,23039,003.1,W", "date" },
		{ "GPRMC,243519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W", "time" },
		{ "GPRMC,12351,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W", "time" },
		{ "GPRMC,123519.x,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W", "time" },
		{ "GPRMC,123519,A,4807.038", "fields" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		rejected(parse(&nmea_format, nmea(cases[i].body)), cases[i].reason);
}

/* ---- what every format shares ---- */

static void test_frame_line_ends_and_white_space(void **state)
{
	struct frame_format ff = kv_format(NULL, 0);

	(void)state;
	/* CR and LF at either end, left by a terminator that is not the device's. */
	accepted(parse(&ff, "\r\na=1\r"));
	check_i64("a", 1);
	accepted(parse(&ff, "\na=\"x\"\r\r"));
	check_str("a", "x");
	assert_int_equal(parse(&ff, "\r\n\r"), FRAME_EMPTY);
	assert_int_equal(parse(&ff, " \t "), FRAME_EMPTY);
	assert_int_equal(parse(&nmea_format, "\r\n"), FRAME_EMPTY);
	/* NMEA with the CR a "\n" terminator leaves. */
	accepted(parse(&nmea_format, "$GPGGA,,,,,,0,00,99.99,,,,,,*48\r"));
}

static void test_frame_nul_bytes_rejected(void **state)
{
	struct frame_format ff = kv_format(NULL, 0);

	(void)state;
	rejected(parse_n(&ff, "a=1\0b=2", 7), "NUL byte at byte 3");
	rejected(parse_n(&nmea_format, "$GP\0GA", 6), "NUL byte");
	rejected(parse_n(&ff, "\0", 1), "NUL byte");
}

static void test_frame_reasons_are_printable(void **state)
{
	struct frame_format ff = kv_format(NULL, 0);
	char binary[256];

	(void)state;
	rejected(parse(&ff, "b\x01\x7f\x9b"
			    "d=1"),
		 "name");
	rejected(parse(&ff, "\x1b[31m"), NULL);
	/* Every byte but NUL, CR and LF: rejected, printably, in every format. */
	for (int i = 1, n = 0; i < 256; i++)
		if (i != '\r' && i != '\n')
			binary[n++] = (char)i, binary[n] = '\0';
	rejected(parse(&ff, binary), NULL);
	rejected(parse(&nmea_format, binary), NULL);
}

static void test_frame_json(void **state)
{
	struct frame_format ff = { .format = FORMAT_JSON };

	(void)state;
	/* The Unix socket input's JSON lines, "ts" and "topic" included. */
	accepted(parse(&ff, "{\"t\": 21.5, \"n\": 3, \"ok\": true, \"s\": \"x\", \"ts\": 5, "
			    "\"topic\": \"a/b\"}\r"));
	check_n(4);
	check_f64("t", 21.5);
	check_i64("n", 3);
	assert_int_equal(msg->reading.timestamp_ms, 5);
	assert_string_equal(msg->reading.topic, "a/b");
	accepted(parse(&ff, "{\"t\": 1}"));
	assert_int_equal(msg->reading.timestamp_ms, 0);
	assert_null(msg->reading.topic);
	rejected(parse(&ff, "{\"t\": }"), "JSON");
	rejected(parse(&ff, "{\"s\": \"\xff\"}"), "UTF-8");
	rejected(parse(&ff, "mp\": 21.5}"), "JSON");
}

/* ---- the hex preview ---- */

static void test_hex_preview(void **state)
{
	char out[128];

	(void)state;
	hex_preview("$GP", 3, 24, out, sizeof(out));
	assert_string_equal(out, "24 47 50 |$GP|");
	hex_preview("a\0\r\n\xff", 5, 24, out, sizeof(out));
	assert_string_equal(out, "61 00 0d 0a ff |a....|");
	hex_preview("0123456789", 10, 4, out, sizeof(out));
	assert_string_equal(out, "30 31 32 33 |0123|...");
	/* Any output size: terminated, never past its end. */
	for (size_t size = 0; size < 48; size++) {
		char *small = malloc(size ? size : 1);

		assert_non_null(small);
		hex_preview("0123456789", 10, 8, small, size);
		if (size)
			assert_true(strlen(small) < size);
		free(small);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_value_numbers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_value_by_look, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kv_typed_by_look, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kv_separators, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kv_quoted_empty_and_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kv_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csv_columns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csv_skip_and_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csv_quotes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csv_column_count_and_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csv_white_space_delimiter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_regex_named_groups, setup, regex_teardown),
		cmocka_unit_test_setup_teardown(test_regex_group_numbers, setup, regex_teardown),
		cmocka_unit_test_setup_teardown(test_regex_nested_and_optional, setup,
						regex_teardown),
		cmocka_unit_test_setup_teardown(test_regex_refused, setup, regex_teardown),
		cmocka_unit_test_setup_teardown(test_nmea_gga, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nmea_no_fix_leaves_fields_out, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_nmea_rmc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nmea_checksum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nmea_other_sentences_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nmea_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frame_line_ends_and_white_space, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_frame_nul_bytes_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frame_reasons_are_printable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frame_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hex_preview, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
