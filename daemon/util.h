/* SPDX-License-Identifier: MIT */
/*
 * Small helpers every module uses: allocation that aborts on exhaustion, clocks, and
 * cleanup of descriptors. Nothing here logs.
 */
#ifndef COAPGATE_UTIL_H
#define COAPGATE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define USEC_PER_MSEC 1000ULL
#define USEC_PER_SEC  1000000ULL
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)     ((a) < (b) ? (a) : (b))
#define MAX(a, b)     ((a) > (b) ? (a) : (b))

/*
 * Allocation wrappers. Out of memory is not recoverable in a daemon that systemd
 * restarts and whose data is on disk: they print one line and abort().
 */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xasprintf(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* CLOCK_MONOTONIC in microseconds: for every timer and interval. */
uint64_t now_monotonic_usec(void);

/* usec as a struct timespec (an absolute time for *_timedwait(), or a duration). */
struct timespec timespec_from_usec(uint64_t usec);

/* CLOCK_REALTIME in milliseconds since the epoch: for reading timestamps only. */
int64_t now_realtime_ms(void);

/* close() that keeps errno and accepts -1; returns -1 for "fd = safe_close(fd)". */
int safe_close(int fd);

/* The value of a hex digit (0-9, a-f, A-F), or -1 for any other character. */
int hex_digit_value(char c);

#endif
