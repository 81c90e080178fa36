// SPDX-License-Identifier: MIT
/*
 * Value syntaxes of the configuration. See parse.h. Durations and sizes are parsed by
 * hand rather than with strtod() so that "1.5s" is exact (no binary rounding of the
 * fraction). parse_double() uses strtod(), which reads "." as the decimal point
 * because the daemon never calls setlocale().
 */
#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

struct unit {
	const char *name;
	uint64_t factor;
};

/* Longest names first so that "ms" is not read as "m" followed by junk. */
static const struct unit duration_units[] = {
	{ "usec", 1 },
	{ "msec", USEC_PER_MSEC },
	{ "min", 60 * USEC_PER_SEC },
	{ "sec", USEC_PER_SEC },
	{ "us", 1 },
	{ "ms", USEC_PER_MSEC },
	{ "s", USEC_PER_SEC },
	{ "m", 60 * USEC_PER_SEC },
	{ "h", 3600 * USEC_PER_SEC },
	{ "d", 86400 * USEC_PER_SEC },
};

static const char *skip_blanks(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/*
 * Reads "<digits>[.<digits>]" and multiplies it by factor exactly. The fraction is
 * kept as an integer numerator over a power of ten so that "0.001s" is 1000 us.
 */
static int scale_decimal(const char *int_part, size_t int_len, const char *frac_part,
			 size_t frac_len, uint64_t factor, uint64_t *ret)
{
	uint64_t whole = 0, frac = 0, denom = 1, v;

	for (size_t i = 0; i < int_len; i++) {
		uint64_t digit = (uint64_t)(int_part[i] - '0');

		if (whole > UINT64_MAX / 10 ||
		    (whole == UINT64_MAX / 10 && digit > UINT64_MAX % 10))
			return -ERANGE;
		whole = whole * 10 + digit;
	}
	/*
	 * Keep fraction digits while factor * denom cannot overflow, so that the product
	 * below is exact; later digits are finer than a microsecond or a byte anyway.
	 */
	for (size_t i = 0; i < frac_len && factor && denom <= UINT64_MAX / 10 / factor; i++) {
		frac = frac * 10 + (uint64_t)(frac_part[i] - '0');
		denom *= 10;
	}
	if (factor && whole > UINT64_MAX / factor)
		return -ERANGE;
	v = whole * factor;
	if (frac) {
		uint64_t add = factor * frac / denom;

		if (v > UINT64_MAX - add)
			return -ERANGE;
		v += add;
	}
	*ret = v;
	return 0;
}

int parse_duration(const char *s, uint64_t *ret_usec)
{
	const char *p = skip_blanks(s);
	uint64_t total = 0;
	bool any = false;

	if (p[0] == '0' && *skip_blanks(p + 1) == 0) {
		*ret_usec = 0;
		return 0;
	}
	while (*p) {
		const char *int_part = p, *frac_part = NULL;
		size_t int_len = 0, frac_len = 0;
		const struct unit *u = NULL;
		uint64_t v;
		int r;

		while (isdigit((unsigned char)*p))
			p++, int_len++;
		if (*p == '.') {
			frac_part = ++p;
			while (isdigit((unsigned char)*p))
				p++, frac_len++;
		}
		if (int_len + frac_len == 0)
			return -EINVAL;
		for (size_t i = 0; i < ARRAY_SIZE(duration_units); i++) {
			size_t n = strlen(duration_units[i].name);

			if (strncmp(p, duration_units[i].name, n) == 0 &&
			    !isalpha((unsigned char)p[n])) {
				u = &duration_units[i];
				p += n;
				break;
			}
		}
		if (!u)
			return -EINVAL;
		r = scale_decimal(int_part, int_len, frac_part, frac_len, u->factor, &v);
		if (r < 0)
			return r;
		if (total > UINT64_MAX - v)
			return -ERANGE;
		total += v;
		any = true;
		p = skip_blanks(p);
	}
	if (!any)
		return -EINVAL;
	*ret_usec = total;
	return 0;
}

int parse_size(const char *s, uint64_t *ret_bytes)
{
	static const char suffixes[] = "KMGT";
	const char *p = skip_blanks(s), *digits = p;
	uint64_t factor = 1, v;
	size_t n = 0;
	int r;

	while (isdigit((unsigned char)*p))
		p++, n++;
	if (n == 0)
		return -EINVAL;
	p = skip_blanks(p);
	if (*p) {
		const char *suffix = strchr(suffixes, toupper((unsigned char)*p));

		if (suffix) {
			for (const char *q = suffixes; q <= suffix; q++)
				factor *= 1024;
			p++;
			if (*p == 'i' && p[1] == 'B')
				p += 2;
			else if (*p == 'B')
				p++;
		} else if (*p == 'B') {
			p++;
		}
	}
	if (*skip_blanks(p))
		return -EINVAL;
	r = scale_decimal(digits, n, NULL, 0, factor, &v);
	if (r < 0)
		return r;
	*ret_bytes = v;
	return 0;
}

int parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

int parse_int64(const char *s, int64_t *ret)
{
	const char *digits = s + (*s == '-' || *s == '+');
	char *end;
	long long v;

	if (!*s || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	/* Decimal unless "0x": base 0 would read "010" as octal 8, a trap in a config. */
	v = strtoll(s, &end, digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X') ? 16 : 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end || end == s)
		return -EINVAL;
	*ret = v;
	return 0;
}

int parse_double(const char *s, double *ret)
{
	char *end;
	double v;

	if (!*s || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (*end || end == s)
		return -EINVAL;
	/* ERANGE with a finite result is an underflow to (nearly) zero: fine. */
	if (!isfinite(v))
		return -ERANGE;
	*ret = v;
	return 0;
}

void format_duration(char *buf, size_t size, uint64_t usec)
{
	static const struct unit units[] = {
		{ "d", 86400 * USEC_PER_SEC }, { "h", 3600 * USEC_PER_SEC },
		{ "min", 60 * USEC_PER_SEC },  { "s", USEC_PER_SEC },
		{ "ms", USEC_PER_MSEC },       { "us", 1 },
	};
	size_t used = 0;

	if (size == 0)
		return;
	buf[0] = 0;
	if (usec == 0) {
		snprintf(buf, size, "0");
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(units) && usec; i++) {
		uint64_t n = usec / units[i].factor;
		int w;

		if (!n)
			continue;
		usec -= n * units[i].factor;
		w = snprintf(buf + used, size - used, "%s%llu%s", used ? " " : "",
			     (unsigned long long)n, units[i].name);
		if (w < 0 || (size_t)w >= size - used)
			return;
		used += (size_t)w;
	}
}

void format_size(char *buf, size_t size, uint64_t bytes)
{
	static const char suffixes[] = "\0KMGT";
	size_t i = 0;

	while (i + 1 < sizeof(suffixes) - 1 && bytes && bytes % 1024 == 0) {
		bytes /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, size, "%llu", (unsigned long long)bytes);
	else
		snprintf(buf, size, "%llu%c", (unsigned long long)bytes, suffixes[i]);
}
