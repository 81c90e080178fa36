/* SPDX-License-Identifier: MIT */
/*
 * Frames into readings: the formats of the serial input (README.md, "Formats"). Pure:
 * no I/O and no daemon, so that the unit tests and the fuzzer drive them directly.
 *
 * Every parser decodes in place: field names and string values point into the frame,
 * which the parsers change, so a reading lives as long as the frame's buffer. A
 * frame's byte data[len] must be writable (the framer gives one spare byte).
 * JSON frames go to the Unix socket input's parser (plugins/unixsock/message.h), so
 * that both inputs read JSON identically; numbers everywhere go through its number.h.
 */
#ifndef SERIAL_FORMATS_H
#define SERIAL_FORMATS_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "message.h"

enum serial_format {
	FORMAT_JSON,
	FORMAT_KV,
	FORMAT_CSV,
	FORMAT_REGEX,
	FORMAT_NMEA,
};

/* The type a configured field is given. The order is that of value_type_names. */
enum value_type {
	VALUE_F64,
	VALUE_I64,
	VALUE_BOOL,
	VALUE_STRING,
	VALUE_SKIP, /* leave the value out of the reading */
};

/* The words of the configuration, NULL-terminated, in enum value_type's order. */
extern const char *const value_type_names[];

/* One configured field: a csv column, a regex group's type, a kv key's type. The
 * layout is the option table's list element (serial.c). */
struct field_spec {
	const char *name;
	int type; /* enum value_type */
};

/*
 * The text of len bytes at s, as a field of type (not VALUE_SKIP): the number written
 * exactly as number.h converts it, a boolean word, or the string itself. s[len] must
 * be writable; for a string it becomes the terminating NUL. Returns 0, or -EINVAL with
 * the reason in why. The accepted spellings are in README.md.
 */
int value_parse(char *s, size_t len, enum value_type type, struct cg_field *f, char *why,
		size_t why_size);

/*
 * The same, with the type taken from the value's look: an integer is i64, a decimal
 * number f64, true or false (any case) a bool, anything else a string.
 */
int value_parse_auto(char *s, size_t len, struct cg_field *f, char *why, size_t why_size);

/* key=value pairs. */
struct kv_format {
	const char *pair_separators;	/* any of these between pairs; runs count as one */
	const char *key_separators;	/* any one of these between a key and its value */
	const struct field_spec *types; /* keys whose type is not taken from the look */
	size_t n_types;
};

/* Delimited columns, each typed. */
struct csv_format {
	char delimiter;
	const struct field_spec *columns;
	size_t n_columns;
};

/* A POSIX extended regular expression whose named groups become fields. */
struct regex_format;

/*
 * Compile pattern, in which (?<name>...) (or (?P<name>...)) is a group whose match
 * becomes field name, typed by the entry of types with that name (VALUE_F64 when there
 * is none; entries without a group are the caller's to find, regex_format_has_group()).
 * Returns 0, or -EINVAL with the reason in why (a pattern that does not compile, no
 * named group, a name used twice or invalid, more than CG_FIELDS_MAX), or -ENOMEM.
 * Does not log.
 */
int regex_format_new(const char *pattern, const struct field_spec *types, size_t n_types,
		     struct regex_format **ret, char *why, size_t why_size);

/* True when the pattern has the named group (?<name>...). */
bool regex_format_has_group(const struct regex_format *rf, const char *name);

/* regex_format_free(NULL) is a no-op. */
void regex_format_free(struct regex_format *rf);

/* How a frame is parsed: format and the compiled settings it needs. */
struct frame_format {
	enum serial_format format;
	struct kv_format kv;
	struct csv_format csv;
	struct regex_format *regex; /* borrowed */
};

/* What became of one frame. */
enum frame_result {
	FRAME_READING = 0, /* m holds a valid reading (timestamp 0 unless the frame set it) */
	FRAME_EMPTY,	   /* only white space: dropped without a word */
	FRAME_IGNORED,	   /* a valid frame that carries no reading (another NMEA sentence) */
};

/*
 * Parse the frame of len bytes at data (data[len] writable) into m. CR and LF at
 * either end are removed first. Returns a frame_result, or -EINVAL with the reason in
 * why, made printable. A reading is checked against the daemon's rules
 * (reading_validate()), so cg_emit() will take it.
 */
int frame_parse(const struct frame_format *ff, char *data, size_t len, struct message *m, char *why,
		size_t why_size);

/* The parsers behind frame_parse(), for one trimmed frame without NUL bytes; each
 * returns PARSE_READING, PARSE_SKIP or -EINVAL with the reason in why. */
int parse_kv(const struct kv_format *kv, char *data, size_t len, struct message *m, char *why,
	     size_t why_size);
int parse_csv(const struct csv_format *csv, char *data, size_t len, struct message *m, char *why,
	      size_t why_size);
int parse_regex(struct regex_format *rf, char *data, size_t len, struct message *m, char *why,
		size_t why_size);
int parse_nmea(char *data, size_t len, struct message *m, char *why, size_t why_size);

/*
 * The first bytes of data for a log line, like hexdump -C: up to max_bytes as hex
 * pairs, then the printable ones between bars, "24 47 50 |$GP|", and "..." when data
 * is longer. Always NUL-terminated; needs 4 * max_bytes + 8 bytes of out for all.
 */
void hex_preview(const char *data, size_t len, size_t max_bytes, char *out, size_t out_size);

#endif
