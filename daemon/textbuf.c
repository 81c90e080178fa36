// SPDX-License-Identifier: MIT
/*
 * Growable text buffer; see textbuf.h.
 */
#include "textbuf.h"

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static void reserve(struct textbuf *b, size_t extra)
{
	size_t need = b->len + extra + 1;

	if (need <= b->size)
		return;
	b->size = MAX(need, b->size * 2);
	b->data = xrealloc(b->data, b->size);
}

void textbuf_append(struct textbuf *b, const char *s, size_t len)
{
	reserve(b, len);
	memcpy(b->data + b->len, s, len);
	b->len += len;
	b->data[b->len] = 0;
}

void textbuf_puts(struct textbuf *b, const char *s)
{
	textbuf_append(b, s, strlen(s));
}

void textbuf_printf(struct textbuf *b, const char *format, ...)
{
	va_list ap;
	int n;

	va_start(ap, format);
	n = vsnprintf(NULL, 0, format, ap);
	va_end(ap);
	if (n < 0)
		return;
	reserve(b, (size_t)n);
	va_start(ap, format);
	vsnprintf(b->data + b->len, (size_t)n + 1, format, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void textbuf_json_string(struct textbuf *b, const char *s)
{
	json_t *j = json_string(s);
	size_t n;

	/* Only invalid UTF-8 makes json_string() fail; readings are validated before. */
	if (!j) {
		textbuf_puts(b, "null");
		return;
	}
	n = json_dumpb(j, NULL, 0, JSON_ENCODE_ANY);
	reserve(b, n);
	json_dumpb(j, b->data + b->len, n, JSON_ENCODE_ANY);
	b->len += n;
	b->data[b->len] = 0;
	json_decref(j);
}

char *textbuf_steal(struct textbuf *b)
{
	char *p = b->data ? b->data : xstrdup("");

	*b = (struct textbuf){ 0 };
	return p;
}

void textbuf_free(struct textbuf *b)
{
	free(b->data);
	*b = (struct textbuf){ 0 };
}

void format_double(char *buf, size_t size, double v)
{
	/* Whole numbers print as such ("1500", not "1.5e+03"), up to where %.0f is still
	 * short; 2^53 bounds the integers a double holds exactly. */
	if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(int64_t)v) {
		snprintf(buf, size, "%.0f", v);
		return;
	}
	/* Any decimal of up to 15 significant digits survives the trip through a double
	 * (DBL_DIG), so when %.15g reads back exactly it is the shortest form (%g drops
	 * trailing zeros); otherwise 16 or 17 digits are needed, and 17 always suffice.
	 * Starting at 15 rather than 1 matters: this runs for every value the uplink sends.
	 * Subnormal numbers carry fewer digits, so for them the search starts at 1. */
	for (int precision = fabs(v) < DBL_MIN ? 1 : 15; precision <= 17; precision++) {
		snprintf(buf, size, "%.*g", precision, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}
