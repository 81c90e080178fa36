/* SPDX-License-Identifier: MIT */
/*
 * Parsers for the value syntaxes the configuration understands everywhere: durations
 * ("500ms", "10s", "1h 30min"), sizes ("4096", "64K", "16M", "1G"), booleans and
 * integers. Pure functions: no logging, no allocation.
 */
#ifndef COAPGATE_PARSE_H
#define COAPGATE_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A duration is one or more "<number><unit>" terms, optionally separated by blanks,
 * summed: "1h 30min", "1.5s", "250ms". Units: us, ms, s, sec, m, min, h, d. A bare
 * number is refused (is "10" seconds or milliseconds?), except "0". Returns 0 and
 * the value in microseconds, -EINVAL on bad syntax, -ERANGE on overflow.
 */
int parse_duration(const char *s, uint64_t *ret_usec);

/*
 * A size is an integer with an optional binary suffix K, M, G or T (also written KiB,
 * MiB, GiB, TiB) and an optional trailing "B": "4096", "64K", "16MiB", "1G".
 * Returns 0 and the value in bytes, -EINVAL on bad syntax, -ERANGE on overflow.
 */
int parse_size(const char *s, uint64_t *ret_bytes);

/* "true", "yes", "on", "1" and "false", "no", "off", "0". -EINVAL otherwise. */
int parse_bool(const char *s, bool *ret);

/* A whole decimal (or 0x hex; never octal) int64. -EINVAL on bad syntax, -ERANGE on
 * overflow. */
int parse_int64(const char *s, int64_t *ret);

/* A finite decimal number (an underflow reads as about 0). -EINVAL on bad syntax,
 * -ERANGE when not finite. */
int parse_double(const char *s, double *ret);

/* Write usec as the shortest exact duration string ("1h 30min", "250ms", "0"). */
void format_duration(char *buf, size_t size, uint64_t usec);

/* Write bytes as the shortest exact size string ("16M", "1536K", "100"). */
void format_size(char *buf, size_t size, uint64_t bytes);

#endif
