// SPDX-License-Identifier: MIT
/*
 * Number conversion; see number.h.
 *
 * strtod() costs about 100 ns on this kind of input, a tenth of the whole budget of a
 * reading at a million readings a second. Most sensor values are short decimals, and
 * for those a faster conversion is also exact: a mantissa below 2^53 and a power of
 * ten up to 10^22 are both exact doubles, so one multiplication or division rounds
 * once, correctly (Clinger's fast path). Everything else goes to strtod(), which
 * rounds correctly too; the daemon never calls setlocale(), so "." is the decimal
 * point.
 */
#include "number.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

static const double exact_powers_of_ten[] = {
	1e0,  1e1,  1e2,  1e3,	1e4,  1e5,  1e6,  1e7,	1e8,  1e9,  1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

#define FAST_MANTISSA_MAX (1ULL << 53)
#define FAST_EXPONENT_MAX 22

int number_to_u64(const char *s, size_t len, uint64_t *ret)
{
	uint64_t v = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

int number_to_i64(const char *s, size_t len, int64_t *ret)
{
	bool negative = len > 0 && s[0] == '-';
	uint64_t magnitude;

	if (number_to_u64(s + negative, len - negative, &magnitude) < 0)
		return -ERANGE;
	if (negative) {
		if (magnitude > (uint64_t)INT64_MAX + 1)
			return -ERANGE;
		/* -2^63 has no positive counterpart: negate in unsigned arithmetic. */
		*ret = (int64_t)(0 - magnitude);
	} else {
		if (magnitude > INT64_MAX)
			return -ERANGE;
		*ret = (int64_t)magnitude;
	}
	return 0;
}

/* Clinger's fast path: true with *ret set when the number is short enough. */
static bool fast_f64(const char *s, size_t len, double *ret)
{
	const char *p = s, *end = s + len;
	bool negative = false, exp_negative = false;
	uint64_t mantissa = 0;
	int exponent = 0, explicit_exp = 0, digits = 0;
	double v;

	if (p < end && (*p == '-' || *p == '+'))
		negative = *p++ == '-';
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		/* Leading zeros carry no precision. */
		if (mantissa || *p != '0')
			digits++;
		mantissa = mantissa * 10 + (uint64_t)(*p - '0');
		if (digits > 15)
			return false;
	}
	if (p < end && *p == '.') {
		for (p++; p < end && *p >= '0' && *p <= '9'; p++) {
			if (mantissa || *p != '0')
				digits++;
			mantissa = mantissa * 10 + (uint64_t)(*p - '0');
			exponent--;
			if (digits > 15)
				return false;
		}
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '-' || *p == '+'))
			exp_negative = *p++ == '-';
		for (; p < end && *p >= '0' && *p <= '9'; p++) {
			explicit_exp = explicit_exp * 10 + (*p - '0');
			if (explicit_exp > 400)
				return false;
		}
	}
	if (p != end || mantissa >= FAST_MANTISSA_MAX)
		return false;
	exponent += exp_negative ? -explicit_exp : explicit_exp;
	if (exponent < -FAST_EXPONENT_MAX || exponent > FAST_EXPONENT_MAX)
		return false;
	v = (double)mantissa;
	if (exponent < 0)
		v /= exact_powers_of_ten[-exponent];
	else
		v *= exact_powers_of_ten[exponent];
	*ret = negative ? -v : v;
	return true;
}

int number_to_f64(char *s, size_t len, double *ret)
{
	char saved = s[len];
	double v;

	if (fast_f64(s, len, ret))
		return 0;
	s[len] = '\0';
	errno = 0;
	v = strtod(s, NULL);
	s[len] = saved;
	/* An underflow reads as (about) zero, as in jansson; an overflow is an error. */
	if (errno == ERANGE && isinf(v))
		return -ERANGE;
	*ret = v;
	return 0;
}
