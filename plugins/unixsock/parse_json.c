// SPDX-License-Identifier: MIT
/*
 * JSON lines: one flat object per line, decoded in place into a reading. See
 * README.md for the mapping.
 *
 * Why not jansson, the project's JSON library: it builds a tree of allocated values
 * for every line and took about 1.1 µs per three-field line here, ten times this
 * parser and more than the whole budget of a reading at the target of a million a
 * second (docs/BENCHMARKS.md, json_parse_bench). A reading is one flat object, so this parser handles exactly that and
 * rejects everything else; tests/fuzz/fuzz_unixsock_json.c checks it against jansson.
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

static void skip_space(struct parse_cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int hex4(const char *p, unsigned *ret)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char ch = p[i];
		unsigned d;

		if (ch >= '0' && ch <= '9')
			d = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			d = (unsigned)(ch - 'A' + 10);
		else
			return -EINVAL;
		v = v << 4 | d;
	}
	*ret = v;
	return 0;
}

static char *put_utf8(char *w, unsigned cp)
{
	if (cp < 0x80) {
		*w++ = (char)cp;
	} else if (cp < 0x800) {
		*w++ = (char)(0xc0 | cp >> 6);
		*w++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*w++ = (char)(0xe0 | cp >> 12);
		*w++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*w++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*w++ = (char)(0xf0 | cp >> 18);
		*w++ = (char)(0x80 | (cp >> 12 & 0x3f));
		*w++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*w++ = (char)(0x80 | (cp & 0x3f));
	}
	return w;
}

/* One \u escape of four hex digits (a surrogate pair counts as one) at c->p, just
 * after the "\u". */
static int unicode_escape(struct parse_cursor *c, unsigned *ret)
{
	unsigned cp, low;

	if (c->end - c->p < 4 || hex4(c->p, &cp) < 0)
		return parse_fail(c, "\\u needs four hex digits");
	c->p += 4;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return parse_fail(c, "a low surrogate \\u%04x without a high one", cp);
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u' ||
		    hex4(c->p + 2, &low) < 0 || low < 0xdc00 || low > 0xdfff)
			return parse_fail(c, "a high surrogate \\u%04x without a low one", cp);
		c->p += 6;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
	}
	if (cp == 0)
		return parse_fail(c, "\\u0000 cannot be part of a string here");
	*ret = cp;
	return 0;
}

/*
 * The string whose opening quote is at c->p, decoded in place: escapes shrink, so the
 * decoded bytes and their NUL fit where the quoted text was. The line was checked to
 * be UTF-8 as a whole, so bytes above 0x7f are copied as they are.
 */
static int parse_string(struct parse_cursor *c, char **ret)
{
	char *w = ++c->p;

	*ret = w;
	for (;;) {
		char *q = c->p;
		unsigned cp = 0;

		/* Copy a run of plain bytes at once. */
		while (q < c->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
			q++;
		if (w != c->p)
			memmove(w, c->p, (size_t)(q - c->p));
		w += q - c->p;
		c->p = q;
		if (c->p >= c->end)
			return parse_fail(c, "a string does not end");
		if (*c->p == '"') {
			c->p++;
			*w = '\0';
			return 0;
		}
		if ((unsigned char)*c->p < 0x20)
			return parse_fail(c, "control character 0x%02x in a string",
					  (unsigned char)*c->p);
		/* A backslash. */
		if (++c->p >= c->end)
			return parse_fail(c, "a string does not end");
		switch (*c->p++) {
		case '"':
			*w++ = '"';
			break;
		case '\\':
			*w++ = '\\';
			break;
		case '/':
			*w++ = '/';
			break;
		case 'b':
			*w++ = '\b';
			break;
		case 'f':
			*w++ = '\f';
			break;
		case 'n':
			*w++ = '\n';
			break;
		case 'r':
			*w++ = '\r';
			break;
		case 't':
			*w++ = '\t';
			break;
		case 'u':
			if (unicode_escape(c, &cp) < 0)
				return -EINVAL;
			w = put_utf8(w, cp);
			break;
		default:
			c->p--;
			if (*c->p > ' ' && *c->p < 0x7f)
				return parse_fail(c, "unknown escape \\%c", *c->p);
			return parse_fail(c, "unknown escape: a backslash before byte 0x%02x",
					  (unsigned char)*c->p);
		}
	}
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* A JSON number at c->p: an i64 field when it has no fraction and no exponent. */
static int parse_number(struct parse_cursor *c, struct cg_field *f)
{
	char *start = c->p;
	bool integer = true;

	if (c->p < c->end && *c->p == '-')
		c->p++;
	if (c->p >= c->end || !is_digit(*c->p))
		return parse_fail(c, "a number needs digits");
	if (*c->p == '0') {
		c->p++;
		if (c->p < c->end && is_digit(*c->p))
			return parse_fail(c, "a number cannot start with 0");
	} else {
		while (c->p < c->end && is_digit(*c->p))
			c->p++;
	}
	if (c->p < c->end && *c->p == '.') {
		integer = false;
		c->p++;
		if (c->p >= c->end || !is_digit(*c->p))
			return parse_fail(c, "a digit must follow the decimal point");
		while (c->p < c->end && is_digit(*c->p))
			c->p++;
	}
	if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
		integer = false;
		c->p++;
		if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
			c->p++;
		if (c->p >= c->end || !is_digit(*c->p))
			return parse_fail(c, "an exponent needs digits");
		while (c->p < c->end && is_digit(*c->p))
			c->p++;
	}
	if (integer) {
		f->type = CG_FIELD_I64;
		if (number_to_i64(start, (size_t)(c->p - start), &f->value.i64) < 0)
			return parse_fail(c, "the integer %.*s does not fit in 64 bits",
					  (int)(c->p - start < 40 ? c->p - start : 40), start);
		return 0;
	}
	f->type = CG_FIELD_F64;
	if (number_to_f64(start, (size_t)(c->p - start), &f->value.f64) < 0)
		return parse_fail(c, "the number is too large for a double");
	return 0;
}

static bool take_word(struct parse_cursor *c, const char *word, size_t len)
{
	if ((size_t)(c->end - c->p) < len || memcmp(c->p, word, len) != 0)
		return false;
	c->p += len;
	return true;
}

static int parse_value(struct parse_cursor *c, struct cg_field *f)
{
	char *str;

	if (c->p >= c->end)
		return parse_fail(c, "a value is missing");
	switch (*c->p) {
	case '"':
		f->type = CG_FIELD_STRING;
		if (parse_string(c, &str) < 0)
			return -EINVAL;
		f->value.str = str;
		return 0;
	case 't':
	case 'f':
		f->type = CG_FIELD_BOOL;
		f->value.b = *c->p == 't';
		if (take_word(c, "true", 4) || take_word(c, "false", 5))
			return 0;
		break;
	case 'n':
		if (take_word(c, "null", 4)) {
			c->p -= 4;
			return parse_fail(c, "null is not a value a reading can hold");
		}
		break;
	case '{':
	case '[':
		return parse_fail(c, "nested objects and arrays are not supported");
	default:
		if (*c->p == '-' || is_digit(*c->p))
			return parse_number(c, f);
		break;
	}
	return parse_fail(c, "expected a value");
}

/* The "topic" member: a string; the rules are checked with the reading's. */
static int take_topic(struct parse_cursor *c, struct message *m, bool *seen)
{
	char *topic;

	if (*seen)
		return parse_fail(c, "\"topic\" appears twice");
	*seen = true;
	if (c->p >= c->end || *c->p != '"')
		return parse_fail(c, "\"topic\" must be a string");
	if (parse_string(c, &topic) < 0)
		return -EINVAL;
	m->reading.topic = topic;
	return 0;
}

/* The "ts" member: whole milliseconds since the epoch. */
static int take_timestamp(struct parse_cursor *c, struct message *m, bool *seen)
{
	struct cg_field f;

	if (*seen)
		return parse_fail(c, "\"ts\" appears twice");
	*seen = true;
	if (c->p >= c->end || !(*c->p == '-' || is_digit(*c->p)) || parse_number(c, &f) < 0 ||
	    f.type != CG_FIELD_I64)
		return parse_fail(
		    c, "\"ts\" must be an integer number of milliseconds since the epoch");
	if (f.value.i64 < 0)
		return parse_fail(c, "\"ts\" cannot be negative");
	m->reading.timestamp_ms = f.value.i64;
	return 0;
}

static int parse_member(struct parse_cursor *c, struct message *m, bool *seen_topic, bool *seen_ts)
{
	char *name;

	if (c->p >= c->end || *c->p != '"')
		return parse_fail(c, "expected a member name in quotes");
	if (parse_string(c, &name) < 0)
		return -EINVAL;
	skip_space(c);
	if (c->p >= c->end || *c->p != ':')
		return parse_fail(c, "expected ':' after a member name");
	c->p++;
	skip_space(c);
	if (strcmp(name, "topic") == 0)
		return take_topic(c, m, seen_topic);
	if (strcmp(name, "ts") == 0)
		return take_timestamp(c, m, seen_ts);
	if (m->reading.n_fields == CG_FIELDS_MAX)
		return parse_fail(c, "a reading has at most %d fields", CG_FIELDS_MAX);
	m->fields[m->reading.n_fields].name = name;
	if (parse_value(c, &m->fields[m->reading.n_fields]) < 0)
		return -EINVAL;
	m->reading.n_fields++;
	return 0;
}

static int parse_line(struct parse_cursor *cursor, struct message *m, const void *arg)
{
	struct parse_cursor c = *cursor;
	bool seen_topic = false, seen_ts = false;

	(void)arg;
	skip_space(&c);
	if (c.p == c.end)
		return PARSE_SKIP;
	if (!utf8_is_valid(c.start, (size_t)(c.end - c.start))) {
		snprintf(c.why, c.why_size, "not valid UTF-8");
		return -EINVAL;
	}
	if (*c.p != '{')
		return parse_fail(&c, "a message is one object, {...}");
	c.p++;
	skip_space(&c);
	if (c.p < c.end && *c.p == '}') {
		c.p++;
	} else {
		for (;;) {
			if (parse_member(&c, m, &seen_topic, &seen_ts) < 0)
				return -EINVAL;
			skip_space(&c);
			if (c.p < c.end && *c.p == ',') {
				c.p++;
				skip_space(&c);
				continue;
			}
			if (c.p < c.end && *c.p == '}') {
				c.p++;
				break;
			}
			return parse_fail(&c, "expected ',' or '}'");
		}
	}
	skip_space(&c);
	if (c.p != c.end)
		return parse_fail(&c, "text after the object");
	if (m->reading.n_fields == 0) {
		snprintf(c.why, c.why_size, "the message has no fields");
		return -EINVAL;
	}
	return reading_validate(&m->reading, c.why, c.why_size);
}

int parse_json(char *line, size_t len, struct message *m, char *why, size_t why_size)
{
	struct parse_cursor c = { line, line + len, line, "JSON", why, why_size };

	return parse_message(&c, m, parse_line, NULL);
}
