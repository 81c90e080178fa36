// SPDX-License-Identifier: MIT
/*
 * What the two message parsers share; see message.h.
 */
#include "message.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

int parse_fail(struct parse_cursor *c, const char *format, ...)
{
	int n = snprintf(c->why, c->why_size, "invalid %s at byte %zu: ", c->format,
			 (size_t)(c->p - c->start));
	va_list ap;

	if (n >= 0 && (size_t)n < c->why_size) {
		va_start(ap, format);
		vsnprintf(c->why + n, c->why_size - (size_t)n, format, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static void make_printable(char *why)
{
	for (char *p = why; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

int parse_message(struct parse_cursor *c, struct message *m,
		  int (*parse_line)(struct parse_cursor *c, struct message *m, const void *arg),
		  const void *arg)
{
	size_t len = (size_t)(c->end - c->start);
	int r;

	m->reading = (struct cg_reading){ .fields = m->fields };
	/* A NUL would cut a name or a value short where the reading is copied. */
	if (memchr(c->start, '\0', len)) {
		snprintf(c->why, c->why_size, "a NUL byte in the message");
		return -EINVAL;
	}
	r = parse_line(c, m, arg);
	if (r < 0)
		make_printable(c->why);
	return r;
}
