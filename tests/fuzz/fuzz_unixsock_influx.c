// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: parse_influx() (plugins/unixsock/parse_influx.c), the Unix socket
 * input's InfluxDB line protocol parser. The first input byte picks the timestamp
 * precision with its low two bits ('0' ns, '1' us, '2' ms, '3' s) and, with the rest,
 * the byte left at line[len]; the line is what follows, up to the first '\n'.
 *
 * Checks:
 * - accepted: the reading passes reading_validate() and has the measurement as topic;
 *   written back as line protocol (plugins/unixsock/README.md: escapes in names and tag
 *   values, strings in quotes with \" and \\, integers as 3i, booleans, floats with
 *   %.17g, the timestamp in the same precision or in ms) and parsed again, it gives
 *   the same reading, bit for bit. String fields in front become tags where a tag can
 *   hold them, so tags are parsed back too;
 * - an accepted line holds no NUL byte: it is not text, and a name or string with one
 *   would be cut short without a word;
 * - rejected: a reason is given, without control characters (it becomes one answer
 *   line and a log message); skipped: the line is blank or a comment;
 * - the result does not depend on line[len] nor on the size of the reason buffer, which
 *   is never overrun (ASan: every buffer is exactly its size, on the heap).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "reading.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A line written back: the longest reading is far below this. */
#define OUT_MAX (1 << 16)

struct out {
	char *buf;
	size_t len;
};

static void put(struct out *o, const char *s, size_t n)
{
	CHECK(o->len + n < OUT_MAX);
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static void put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* s with a backslash before each byte of special. */
static void put_escaped(struct out *o, const char *s, const char *special)
{
	for (; *s; s++) {
		if (strchr(special, *s))
			put(o, "\\", 1);
		put(o, s, 1);
	}
}

static void put_value(struct out *o, const struct cg_field *f)
{
	char num[64];

	switch (f->type) {
	case CG_FIELD_F64:
		/* No syntax reads as infinity or NaN. */
		CHECK(isfinite(f->value.f64));
		snprintf(num, sizeof(num), "%.17g", f->value.f64);
		put_str(o, num);
		break;
	case CG_FIELD_I64:
		snprintf(num, sizeof(num), "%" PRId64 "i", f->value.i64);
		put_str(o, num);
		break;
	case CG_FIELD_BOOL:
		put_str(o, f->value.b ? "true" : "false");
		break;
	case CG_FIELD_STRING:
		put(o, "\"", 1);
		put_escaped(o, f->value.str, "\"\\");
		put(o, "\"", 1);
		break;
	default:
		CHECK(!"unknown field type");
	}
}

/* A string tag value cannot be empty nor end in a backslash (it would escape the
 * separator after it). */
static bool fits_a_tag(const struct cg_field *f)
{
	size_t n;

	if (f->type != CG_FIELD_STRING)
		return false;
	n = strlen(f->value.str);
	return n > 0 && f->value.str[n - 1] != '\\';
}

static const int64_t units_per_ms[] = {
	[INFLUX_NS] = 1000000,
	[INFLUX_US] = 1000,
	[INFLUX_MS] = 1,
	[INFLUX_S] = 0, /* see serialise() */
};

/* The reading as one line of line protocol, in precision p (returned). */
static enum influx_precision serialise(const struct cg_reading *r, enum influx_precision p,
				       struct out *o)
{
	size_t tags = 0;
	char num[32];
	int64_t ts = r->timestamp_ms;

	o->len = 0;
	put_escaped(o, r->topic, ", ");
	while (tags + 1 < r->n_fields && fits_a_tag(&r->fields[tags]))
		tags++;
	for (size_t i = 0; i < tags; i++) {
		put(o, ",", 1);
		put_escaped(o, r->fields[i].name, ",= ");
		put(o, "=", 1);
		put_escaped(o, r->fields[i].value.str, ",= ");
	}
	for (size_t i = tags; i < r->n_fields; i++) {
		put(o, i == tags ? " " : ",", 1);
		put_escaped(o, r->fields[i].name, ",= ");
		put(o, "=", 1);
		put_value(o, &r->fields[i]);
	}
	/* The timestamp in the original unit when it is exact there, otherwise in ms. */
	if (p == INFLUX_S) {
		if (ts % 1000 == 0)
			ts /= 1000;
		else
			p = INFLUX_MS;
	} else if (ts > INT64_MAX / units_per_ms[p]) {
		p = INFLUX_MS;
	} else {
		ts *= units_per_ms[p];
	}
	/* A zero timestamp (none) is written now and then, as " 0". */
	if (ts || r->n_fields % 2) {
		snprintf(num, sizeof(num), " %" PRId64, ts);
		put_str(o, num);
	}
	return p;
}

static char *copy_line(const uint8_t *data, size_t len, char after)
{
	char *line = malloc(len + 1);

	CHECK(line);
	memcpy(line, data, len);
	line[len] = after;
	return line;
}

/* Blank, or a comment: '#' after blanks. */
static bool is_skippable(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && strchr(" \t\r\v\f", s[i]) && s[i])
		i++;
	return i == len || s[i] == '#';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Large: kept out of the stack. */
	static struct message m, m2, again;
	static const char afters[] = "\n\"i ,=\\e5#}";
	enum influx_precision precision, p;
	const uint8_t *nl;
	char why[MESSAGE_WHY_MAX], *small, *line, *line2;
	size_t len, small_size;
	struct out o;
	int ret, ret2;

	if (size < 1)
		return 0;
	precision = (enum influx_precision)(data[0] & 3);
	data++;
	size--;
	nl = memchr(data, '\n', size);
	len = nl ? (size_t)(nl - data) : size;
	small_size = 1 + len % 24;

	line = copy_line(data, len, afters[(data[-1] >> 2) % (sizeof(afters) - 1)]);
	memset(why, 0, sizeof(why));
	ret = parse_influx(line, len, precision, &m, why, sizeof(why));
	CHECK(ret == PARSE_READING || ret == PARSE_SKIP || ret == -EINVAL);

	/* The same from a fresh copy, with '\n' after it and a tiny reason buffer. */
	line2 = copy_line(data, len, '\n');
	small = malloc(small_size);
	CHECK(small);
	ret2 = parse_influx(line2, len, precision, &m2, small, small_size);
	CHECK(ret2 == ret);
	if (ret == -EINVAL) {
		CHECK(memchr(small, '\0', small_size));
		CHECK(memchr(why, '\0', sizeof(why)) && why[0] != '\0');
		CHECK(is_printable(why));
	}
	if (ret == PARSE_SKIP)
		CHECK(is_skippable((const char *)data, len));
	if (ret == PARSE_READING) {
		char vwhy[256];

		CHECK(reading_validate(&m.reading, vwhy, sizeof(vwhy)) == 0);
		CHECK(m.reading.fields == m.fields);
		CHECK(m.reading.topic);
		CHECK(!memchr(data, '\0', len));
		check_readings_equal(&m.reading, &m2.reading);

		/* Round trip. */
		o.buf = malloc(OUT_MAX);
		CHECK(o.buf);
		p = serialise(&m.reading, precision, &o);
		ret2 = parse_influx(o.buf, o.len, p, &again, why, sizeof(why));
		if (ret2 != PARSE_READING)
			fprintf(stderr, "the line written back, \"%.*s\", is refused: %s\n",
				(int)o.len, o.buf, why);
		CHECK(ret2 == PARSE_READING);
		check_readings_equal(&m.reading, &again.reading);
		free(o.buf);
	}
	free(small);
	free(line2);
	free(line);
	return 0;
}
