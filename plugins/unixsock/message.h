/* SPDX-License-Identifier: MIT */
/*
 * One message from a client, parsed into a reading. The parsers (parse_json.c,
 * parse_influx.c) decode in place: names and string values point into the caller's
 * line buffer, which they modify, so a message lives as long as that buffer.
 */
#ifndef UNIXSOCK_MESSAGE_H
#define UNIXSOCK_MESSAGE_H

#include <coapgate/plugin.h>
#include <errno.h>
#include <stddef.h>

/* Room for a reason given to the client ("error <reason>") and the log. */
#define MESSAGE_WHY_MAX 192

/* What a parser made of one line or datagram. */
enum parse_result {
	PARSE_READING = 0, /* m holds a reading */
	PARSE_SKIP = 1,	   /* nothing to do: an empty line, a line protocol comment */
};

struct message {
	struct cg_reading reading; /* .fields points to fields below */
	struct cg_field fields[CG_FIELDS_MAX];
};

/* Where a parser is in a line, and where its reason for a rejection goes. */
struct parse_cursor {
	char *p;
	char *end;
	const char *start;
	const char *format; /* "JSON", "line protocol": for reasons */
	char *why;
	size_t why_size;
};

/* Write "invalid <format> at byte <n>: <reason>" to c->why; returns -EINVAL. */
int parse_fail(struct parse_cursor *c, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Reset m, refuse a message with a NUL byte, run parse_line, and make a rejection's
 * reason printable: reasons quote the client's text and go back to it as one answer
 * line, where a newline would forge an "ok".
 */
int parse_message(struct parse_cursor *c, struct message *m,
		  int (*parse_line)(struct parse_cursor *c, struct message *m, const void *arg),
		  const void *arg);

/* Influx line protocol timestamps: the unit of the number at the end of a line. */
enum influx_precision {
	INFLUX_NS,
	INFLUX_US,
	INFLUX_MS,
	INFLUX_S,
};

/*
 * Parse one JSON object (JSON lines) of len bytes at line; line[len] must be writable
 * (it is the newline, or a spare byte) and is overwritten. Returns PARSE_READING,
 * PARSE_SKIP, or -EINVAL with the reason in why. The mapping is in README.md.
 */
int parse_json(char *line, size_t len, struct message *m, char *why, size_t why_size);

/* The same for one line of InfluxDB line protocol. */
int parse_influx(char *line, size_t len, enum influx_precision precision, struct message *m,
		 char *why, size_t why_size);

#endif
