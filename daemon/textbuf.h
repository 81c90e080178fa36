/* SPDX-License-Identifier: MIT */
/*
 * A growable text buffer for building output (JSON lines, status text), and the
 * number formatting that output needs. Allocation failure aborts (see util.h).
 */
#ifndef COAPGATE_TEXTBUF_H
#define COAPGATE_TEXTBUF_H

#include <stddef.h>

struct textbuf {
	char *data; /* NUL-terminated once anything was appended */
	size_t len;
	size_t size;
};

void textbuf_append(struct textbuf *b, const char *s, size_t len);
void textbuf_puts(struct textbuf *b, const char *s);
void textbuf_printf(struct textbuf *b, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Append s as a JSON string literal, quotes included (escaped by jansson). */
void textbuf_json_string(struct textbuf *b, const char *s);

/* Hand the text over to the caller (free() it) and reset the buffer. */
char *textbuf_steal(struct textbuf *b);
void textbuf_free(struct textbuf *b);

/*
 * Write the shortest decimal text that reads back as exactly v ("0.1", "671.43",
 * "1e+300"), as "%.17g" alone would print "0.10000000000000001"; whole numbers below
 * 2^53 without exponent ("1500"). Non-finite values
 * are written as "nan", "inf", "-inf"; JSON writers must handle them first.
 */
void format_double(char *buf, size_t size, double v);

#endif
