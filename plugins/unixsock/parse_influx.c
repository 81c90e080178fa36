// SPDX-License-Identifier: MIT
/*
 * InfluxDB line protocol, one line into one reading, decoded in place. See README.md
 * for the mapping: the measurement is the topic, tags are string fields.
 *
 *   measurement[,tag=value...] field=value[,field=value...] [timestamp]
 */
#include "message.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "number.h"
#include "reading.h"
#include "utf8.h"

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* What ends a token, and what a backslash escapes in it. */
#define COMMA  (1u << 0)
#define SPACE  (1u << 1)
#define EQUALS (1u << 2)

static unsigned byte_class(char ch)
{
	return ch == ',' ? COMMA : ch == ' ' ? SPACE : ch == '=' ? EQUALS : 0;
}

/*
 * A name or tag value at c->p, unescaped in place up to the first unescaped byte of
 * class stops (or the end of the line). A backslash escapes the bytes of class
 * escapable; before anything else it is itself. Leaves c->p after the stop and returns
 * it ('\0' at the end of the line).
 */
static char take_token(struct parse_cursor *c, unsigned escapable, unsigned stops, char **ret)
{
	char *w = c->p, *r = c->p, stop = '\0';

	*ret = w;
	while (r < c->end) {
		if (*r == '\\' && r + 1 < c->end && (byte_class(r[1]) & escapable)) {
			*w++ = r[1];
			r += 2;
			continue;
		}
		if (byte_class(*r) & stops) {
			stop = *r;
			break;
		}
		*w++ = *r++;
	}
	c->p = stop ? r + 1 : r;
	/* The stop is remembered: the NUL lands on it when nothing was unescaped. */
	*w = '\0';
	return stop;
}

static const char *const true_words[] = { "t", "T", "true", "True", "TRUE", NULL };
static const char *const false_words[] = { "f", "F", "false", "False", "FALSE", NULL };

static bool is_word(const char *s, size_t len, const char *const *words)
{
	for (; *words; words++)
		if (strlen(*words) == len && memcmp(s, *words, len) == 0)
			return true;
	return false;
}

/* [-]digits: the syntax of integers and unsigned (without the sign) values. */
static bool is_integer_text(const char *s, size_t len, bool sign_allowed)
{
	size_t i = sign_allowed && len > 0 && s[0] == '-';

	if (i == len)
		return false;
	for (; i < len; i++)
		if (!is_digit(s[i]))
			return false;
	return true;
}

/* [+-] (digits [. [digits]] | . digits) [(e|E) [+-] digits] */
static bool is_float_text(const char *s, size_t len)
{
	size_t i = 0, digits = 0;

	if (i < len && (s[i] == '-' || s[i] == '+'))
		i++;
	for (; i < len && is_digit(s[i]); i++)
		digits++;
	if (i < len && s[i] == '.')
		for (i++; i < len && is_digit(s[i]); i++)
			digits++;
	if (digits == 0)
		return false;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		size_t exp_digits = 0;

		i++;
		if (i < len && (s[i] == '-' || s[i] == '+'))
			i++;
		for (; i < len && is_digit(s[i]); i++)
			exp_digits++;
		if (exp_digits == 0)
			return false;
	}
	return i == len;
}

/* A quoted string value at c->p, decoded in place: \" and \\ are escapes. */
static int take_string(struct parse_cursor *c, struct cg_field *f)
{
	char *w = ++c->p, *r = c->p;

	f->type = CG_FIELD_STRING;
	f->value.str = w;
	while (r < c->end && *r != '"') {
		if (*r == '\\' && r + 1 < c->end && (r[1] == '"' || r[1] == '\\'))
			r++;
		*w++ = *r++;
	}
	if (r >= c->end) {
		c->p = r;
		return parse_fail(c, "a string value does not end");
	}
	c->p = r + 1;
	*w = '\0';
	return 0;
}

/* An unquoted value, c->p to the next ',' or ' ': boolean, 3i, 3u or a float. */
static int take_scalar(struct parse_cursor *c, struct cg_field *f)
{
	char *s = c->p;
	size_t len;
	uint64_t u;

	while (c->p < c->end && *c->p != ',' && *c->p != ' ')
		c->p++;
	len = (size_t)(c->p - s);
	if (len == 0)
		return parse_fail(c, "a field value is missing");
	if (is_word(s, len, true_words) || is_word(s, len, false_words)) {
		f->type = CG_FIELD_BOOL;
		f->value.b = is_word(s, len, true_words);
		return 0;
	}
	if (s[len - 1] == 'i' && is_integer_text(s, len - 1, true)) {
		f->type = CG_FIELD_I64;
		if (number_to_i64(s, len - 1, &f->value.i64) < 0)
			return parse_fail(c, "the integer does not fit in 64 bits");
		return 0;
	}
	if (s[len - 1] == 'u' && is_integer_text(s, len - 1, false)) {
		f->type = CG_FIELD_I64;
		if (number_to_u64(s, len - 1, &u) < 0 || u > INT64_MAX)
			return parse_fail(c, "the unsigned integer is above 2^63-1");
		f->value.i64 = (int64_t)u;
		return 0;
	}
	if (!is_float_text(s, len))
		return parse_fail(c, "\"%.*s\" is not a number, boolean or string",
				  (int)(len < 40 ? len : 40), s);
	f->type = CG_FIELD_F64;
	if (number_to_f64(s, len, &f->value.f64) < 0)
		return parse_fail(c, "the number is too large for a double");
	return 0;
}

static struct cg_field *next_field(struct parse_cursor *c, struct message *m)
{
	if (m->reading.n_fields == CG_FIELDS_MAX) {
		parse_fail(c, "a reading has at most %d tags and fields", CG_FIELDS_MAX);
		return NULL;
	}
	return &m->fields[m->reading.n_fields];
}

/* "tag=value,..." after the measurement's comma, up to and including the space. */
static int take_tags(struct parse_cursor *c, struct message *m)
{
	char stop = ',';

	while (stop == ',') {
		struct cg_field *f = next_field(c, m);
		char *key, *value;

		if (!f)
			return -EINVAL;
		if (take_token(c, COMMA | EQUALS | SPACE, COMMA | EQUALS | SPACE, &key) != '=' ||
		    !*key)
			return parse_fail(c, "a tag is key=value");
		stop = take_token(c, COMMA | EQUALS | SPACE, COMMA | SPACE, &value);
		if (!*value)
			return parse_fail(c, "the tag \"%s\" has no value", key);
		*f = (struct cg_field){ .name = key, .type = CG_FIELD_STRING, .value.str = value };
		m->reading.n_fields++;
	}
	if (stop != ' ')
		return parse_fail(c, "the fields are missing");
	return 0;
}

/* "field=value,..." at c->p; leaves c->p on the space before the timestamp, or end. */
static int take_fields(struct parse_cursor *c, struct message *m)
{
	for (;;) {
		struct cg_field *f = next_field(c, m);
		char *key;

		if (!f)
			return -EINVAL;
		if (take_token(c, COMMA | EQUALS | SPACE, COMMA | EQUALS | SPACE, &key) != '=' ||
		    !*key)
			return parse_fail(c, "a field is key=value");
		f->name = key;
		if (c->p < c->end && *c->p == '"' ? take_string(c, f) < 0 : take_scalar(c, f) < 0)
			return -EINVAL;
		m->reading.n_fields++;
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			continue;
		}
		if (c->p < c->end && *c->p != ' ')
			return parse_fail(c, "expected ',' or ' ' after a field value");
		return 0;
	}
}

static int take_timestamp(struct parse_cursor *c, enum influx_precision precision,
			  struct message *m)
{
	static const int64_t per_ms[] = {
		[INFLUX_NS] = 1000000, [INFLUX_US] = 1000, [INFLUX_MS] = 1
	};
	char *s = c->p;
	int64_t ts;

	while (c->p < c->end && *c->p != ' ')
		c->p++;
	if (!is_integer_text(s, (size_t)(c->p - s), true))
		return parse_fail(c, "the timestamp is not an integer");
	if (s[0] == '-')
		return parse_fail(c, "the timestamp cannot be negative");
	if (number_to_i64(s, (size_t)(c->p - s), &ts) < 0)
		return parse_fail(c, "the timestamp does not fit in 64 bits");
	if (precision == INFLUX_S) {
		if (ts > INT64_MAX / 1000)
			return parse_fail(c, "the timestamp is too large");
		m->reading.timestamp_ms = ts * 1000;
	} else {
		m->reading.timestamp_ms = ts / per_ms[precision];
	}
	return 0;
}

static void skip_spaces(struct parse_cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
}

static int parse_line(struct parse_cursor *cursor, struct message *m, const void *arg)
{
	const enum influx_precision *precision = arg;
	struct parse_cursor c = *cursor;
	char *measurement, stop;

	skip_spaces(&c);
	if (c.p == c.end || *c.p == '#')
		return PARSE_SKIP;
	if (!utf8_is_valid(c.start, (size_t)(c.end - c.start))) {
		snprintf(c.why, c.why_size, "not valid UTF-8");
		return -EINVAL;
	}
	stop = take_token(&c, COMMA | SPACE, COMMA | SPACE, &measurement);
	if (!*measurement)
		return parse_fail(&c, "the measurement is missing");
	m->reading.topic = measurement;
	if (stop == ',' && take_tags(&c, m) < 0)
		return -EINVAL;
	if (stop == '\0')
		return parse_fail(&c, "the fields are missing");
	skip_spaces(&c);
	if (take_fields(&c, m) < 0)
		return -EINVAL;
	skip_spaces(&c);
	if (c.p < c.end) {
		if (take_timestamp(&c, *precision, m) < 0)
			return -EINVAL;
		skip_spaces(&c);
		if (c.p < c.end)
			return parse_fail(&c, "text after the timestamp");
	}
	return reading_validate(&m->reading, c.why, c.why_size);
}

int parse_influx(char *line, size_t len, enum influx_precision precision, struct message *m,
		 char *why, size_t why_size)
{
	struct parse_cursor c = { line, line + len, line, "line protocol", why, why_size };

	return parse_message(&c, m, parse_line, &precision);
}
