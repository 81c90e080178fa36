// SPDX-License-Identifier: MIT
/*
 * One value of a frame as a typed field; see formats.h. The number syntax is checked
 * here and the conversion left to the Unix socket input's number.h, so that a number
 * reads the same, bit for bit, whichever input and format it came through.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "formats.h"
#include "number.h"

const char *const value_type_names[] = { "f64", "i64", "bool", "string", "skip", NULL };

/* How much of a bad value a reason quotes. */
#define QUOTE_MAX  40
#define QUOTE(len) (int)((len) < QUOTE_MAX ? (len) : QUOTE_MAX)

enum number_kind {
	NOT_A_NUMBER,
	INTEGER, /* [+-]digits */
	DECIMAL, /* with a fraction or an exponent: "1.5", ".5", "1.", "2e3" */
};

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static size_t count_digits(const char *s, size_t len, size_t *p)
{
	size_t start = *p;

	while (*p < len && is_digit(s[*p]))
		(*p)++;
	return *p - start;
}

static enum number_kind number_kind(const char *s, size_t len)
{
	size_t p = 0, digits;
	bool decimal = false;

	if (p < len && (s[p] == '+' || s[p] == '-'))
		p++;
	digits = count_digits(s, len, &p);
	if (p < len && s[p] == '.') {
		p++;
		decimal = true;
		digits += count_digits(s, len, &p);
	}
	if (digits == 0)
		return NOT_A_NUMBER;
	if (p < len && (s[p] == 'e' || s[p] == 'E')) {
		p++;
		decimal = true;
		if (p < len && (s[p] == '+' || s[p] == '-'))
			p++;
		if (count_digits(s, len, &p) == 0)
			return NOT_A_NUMBER;
	}
	if (p != len)
		return NOT_A_NUMBER;
	return decimal ? DECIMAL : INTEGER;
}

static bool is_word(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

static int to_i64(char *s, size_t len, struct cg_field *f, char *why, size_t why_size)
{
	/* number_to_i64() takes a '-' but not a '+'. */
	size_t skip = s[0] == '+';

	f->type = CG_FIELD_I64;
	if (number_to_i64(s + skip, len - skip, &f->value.i64) < 0) {
		snprintf(why, why_size, "the integer %.*s does not fit in 64 bits", QUOTE(len), s);
		return -EINVAL;
	}
	return 0;
}

static int to_f64(char *s, size_t len, struct cg_field *f, char *why, size_t why_size)
{
	f->type = CG_FIELD_F64;
	if (number_to_f64(s, len, &f->value.f64) < 0) {
		snprintf(why, why_size, "the number %.*s is too large for a double", QUOTE(len), s);
		return -EINVAL;
	}
	return 0;
}

/* "nan" and "inf", which sensors print for a failed measurement, with a sign. */
static bool special_f64(const char *s, size_t len, double *ret)
{
	bool negative = len > 0 && s[0] == '-';
	size_t skip = len > 0 && (s[0] == '-' || s[0] == '+');

	if (is_word(s + skip, len - skip, "nan")) {
		*ret = negative ? -NAN : NAN;
		return true;
	}
	if (is_word(s + skip, len - skip, "inf") || is_word(s + skip, len - skip, "infinity")) {
		*ret = negative ? -INFINITY : INFINITY;
		return true;
	}
	return false;
}

static bool bool_word(const char *s, size_t len, bool *ret)
{
	static const char *const yes[] = { "true", "1", "on", "yes" };
	static const char *const no[] = { "false", "0", "off", "no" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (is_word(s, len, yes[i])) {
			*ret = true;
			return true;
		}
		if (is_word(s, len, no[i])) {
			*ret = false;
			return true;
		}
	}
	return false;
}

static void to_string(char *s, size_t len, struct cg_field *f)
{
	s[len] = '\0';
	f->type = CG_FIELD_STRING;
	f->value.str = s;
}

int value_parse(char *s, size_t len, enum value_type type, struct cg_field *f, char *why,
		size_t why_size)
{
	switch (type) {
	case VALUE_F64:
		if (number_kind(s, len) != NOT_A_NUMBER)
			return to_f64(s, len, f, why, why_size);
		if (special_f64(s, len, &f->value.f64)) {
			f->type = CG_FIELD_F64;
			return 0;
		}
		snprintf(why, why_size, "\"%.*s\" is not a number", QUOTE(len), s);
		return -EINVAL;
	case VALUE_I64:
		if (number_kind(s, len) == INTEGER)
			return to_i64(s, len, f, why, why_size);
		snprintf(why, why_size, "\"%.*s\" is not an integer", QUOTE(len), s);
		return -EINVAL;
	case VALUE_BOOL:
		f->type = CG_FIELD_BOOL;
		if (bool_word(s, len, &f->value.b))
			return 0;
		snprintf(why, why_size, "\"%.*s\" is not a boolean", QUOTE(len), s);
		return -EINVAL;
	case VALUE_STRING:
		to_string(s, len, f);
		return 0;
	case VALUE_SKIP:
		break;
	}
	snprintf(why, why_size, "no value of type %d", (int)type);
	return -EINVAL;
}

int value_parse_auto(char *s, size_t len, struct cg_field *f, char *why, size_t why_size)
{
	switch (number_kind(s, len)) {
	case INTEGER:
		return to_i64(s, len, f, why, why_size);
	case DECIMAL:
		return to_f64(s, len, f, why, why_size);
	case NOT_A_NUMBER:
		break;
	}
	if (is_word(s, len, "true") || is_word(s, len, "false")) {
		f->type = CG_FIELD_BOOL;
		f->value.b = is_word(s, len, "true");
		return 0;
	}
	to_string(s, len, f);
	return 0;
}
