// SPDX-License-Identifier: MIT
/*
 * Delimited columns, "21.5,40,ok", each typed by its configured column; in place; see
 * formats.h and README.md ("csv"). Values may be quoted as in RFC 4180 ("a ""b""",
 * with the delimiter inside). A space or tab delimiter means columns separated by runs
 * of white space, as in aligned tables.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "formats.h"

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

static int fail(char *why, size_t why_size, const char *data, const char *at, const char *what)
{
	snprintf(why, why_size, "invalid CSV at byte %zu: %s", (size_t)(at - data), what);
	return -EINVAL;
}

/*
 * The quoted value whose opening quote is at *p, decoded in place ("" is one quote).
 * Returns 0 with the value in [*ret_start, *ret_end) and *p after the closing quote.
 */
static int take_quoted(char **p, char *end, char **ret_start, char **ret_end)
{
	char *r = *p + 1, *w = *p;

	*ret_start = w;
	for (;;) {
		if (r == end)
			return -EINVAL;
		if (*r == '"') {
			if (r + 1 < end && r[1] == '"') {
				*w++ = '"';
				r += 2;
				continue;
			}
			break;
		}
		*w++ = *r++;
	}
	*ret_end = w;
	*p = r + 1;
	return 0;
}

int parse_csv(const struct csv_format *csv, char *data, size_t len, struct message *m, char *why,
	      size_t why_size)
{
	bool blank_delimited = is_blank(csv->delimiter);
	char *p = data, *end = data + len;
	size_t column = 0;

	if (blank_delimited) {
		while (p < end && is_blank(*p))
			p++;
		while (end > p && is_blank(end[-1]))
			end--;
	}
	for (;;) {
		const struct field_spec *spec;
		char *value, *value_end, *next;
		struct cg_field *f;
		int r;

		if (column == csv->n_columns) {
			snprintf(why, why_size, "more than the %zu columns configured",
				 csv->n_columns);
			return -EINVAL;
		}
		if (!blank_delimited)
			while (p < end && is_blank(*p))
				p++;
		if (p < end && *p == '"') {
			char *open = p;

			if (take_quoted(&p, end, &value, &value_end) < 0)
				return fail(why, why_size, data, open,
					    "a quoted value does not end");
			if (!blank_delimited)
				while (p < end && is_blank(*p))
					p++;
			if (p < end && *p != csv->delimiter && !(blank_delimited && is_blank(*p)))
				return fail(why, why_size, data, p, "text after a quoted value");
			next = p;
		} else {
			value = p;
			while (p < end && *p != csv->delimiter &&
			       !(blank_delimited && is_blank(*p)))
				p++;
			next = p;
			value_end = p;
			while (value_end > value && is_blank(value_end[-1]))
				value_end--;
		}
		/* next is the end or the delimiter, which value_parse() may overwrite with
		 * a string's NUL: find the next column first. */
		if (next < end) {
			p = next + 1;
			if (blank_delimited)
				while (p < end && is_blank(*p))
					p++;
		}
		spec = &csv->columns[column++];
		if (spec->type != VALUE_SKIP && value_end > value) {
			if (m->reading.n_fields == CG_FIELDS_MAX) {
				snprintf(why, why_size, "a reading has at most %d fields",
					 CG_FIELDS_MAX);
				return -EINVAL;
			}
			f = &m->fields[m->reading.n_fields];
			f->name = spec->name;
			r = value_parse(value, (size_t)(value_end - value), spec->type, f, why,
					why_size);
			if (r < 0) {
				char reason[MESSAGE_WHY_MAX];

				snprintf(reason, sizeof(reason), "%s", why);
				snprintf(why, why_size, "column %zu (\"%s\"): %s", column,
					 spec->name, reason);
				return r;
			}
			m->reading.n_fields++;
		}
		if (next == end)
			break;
	}
	if (column < csv->n_columns) {
		snprintf(why, why_size, "%zu columns, expected %zu", column, csv->n_columns);
		return -EINVAL;
	}
	return m->reading.n_fields ? PARSE_READING : PARSE_SKIP;
}
