/* SPDX-License-Identifier: MIT */
/*
 * Numbers in message text, for both parsers. The caller has checked the token's
 * syntax; these convert it, exactly, and report what does not fit.
 */
#ifndef UNIXSOCK_NUMBER_H
#define UNIXSOCK_NUMBER_H

#include <stddef.h>
#include <stdint.h>

/*
 * The len bytes at s are an optional '-' and decimal digits. Returns 0 and the value,
 * or -ERANGE when it does not fit in an int64.
 */
int number_to_i64(const char *s, size_t len, int64_t *ret);

/* The same for a uint64 (no sign). */
int number_to_u64(const char *s, size_t len, uint64_t *ret);

/*
 * The len bytes at s are a decimal number as strtod() reads it (sign, digits, '.',
 * exponent; no hex, no inf or nan). Returns 0 and the correctly rounded double, or
 * -ERANGE when its magnitude is too large for a double. s[len] must be writable: it
 * is changed and restored.
 */
int number_to_f64(char *s, size_t len, double *ret);

#endif
