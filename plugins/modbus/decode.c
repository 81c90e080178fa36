// SPDX-License-Identifier: MIT
/*
 * Registers and bits into typed fields; the rules are in decode.h.
 */
#include "decode.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

uint64_t decode_raw(const uint16_t *regs, unsigned n_regs, const char *order)
{
	uint8_t wire[8], value[8] = { 0 };
	unsigned n = 2 * n_regs;
	uint64_t v = 0;

	for (unsigned i = 0; i < n_regs; i++) {
		wire[2 * i] = (uint8_t)(regs[i] >> 8);
		wire[2 * i + 1] = (uint8_t)(regs[i] & 0xff);
	}
	/* The i-th byte on the wire is the value's byte order[i] (A: most significant). */
	for (unsigned i = 0; i < n; i++)
		value[order[i] - 'A'] = wire[i];
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | value[i];
	return v;
}

static int64_t sign_extend(uint64_t raw, unsigned bits)
{
	uint64_t sign = UINT64_C(1) << (bits - 1);

	if (bits == 64)
		return (int64_t)raw;
	return (int64_t)((raw ^ sign) - sign);
}

/* Length of the UTF-8 sequence a lead byte starts; 0 for a byte that starts none. */
static size_t utf8_sequence_length(unsigned char lead)
{
	if (lead < 0x80)
		return 1;
	if (lead >= 0xc2 && lead <= 0xdf)
		return 2;
	if (lead >= 0xe0 && lead <= 0xef)
		return 3;
	if (lead >= 0xf0 && lead <= 0xf4)
		return 4;
	return 0;
}

/* Replace each byte that does not belong to a valid UTF-8 sequence with '?', in
 * place; returns whether anything was replaced. */
static bool utf8_sanitize(char *s, size_t len)
{
	bool replaced = false;

	for (size_t i = 0; i < len;) {
		size_t n = utf8_sequence_length((unsigned char)s[i]);

		if (n > 0 && i + n <= len && utf8_is_valid(s + i, n)) {
			i += n;
			continue;
		}
		s[i++] = '?';
		replaced = true;
	}
	return replaced;
}

static enum decode_status decode_string(const struct point *p, const uint16_t *regs, char *text)
{
	bool swap = p->order[0] == 'B';
	size_t len = 0;

	for (unsigned i = 0; i < p->count; i++) {
		char hi = (char)(regs[i] >> 8), lo = (char)(regs[i] & 0xff);

		text[len++] = swap ? lo : hi;
		text[len++] = swap ? hi : lo;
	}
	text[len] = '\0';
	/* Devices pad with NULs or spaces; the value ends at the first NUL. */
	len = strlen(text);
	while (len > 0 && text[len - 1] == ' ')
		text[--len] = '\0';
	return utf8_sanitize(text, len) ? DECODE_REPLACED : DECODE_OK;
}

/* Whether the decimal of f with digits significant digits reads back as f; *ret is it. */
static bool float32_round_trips(float f, int digits, double *ret)
{
	char text[32];

	snprintf(text, sizeof(text), "%.*g", digits, (double)f);
	*ret = strtod(text, NULL);
	return (float)*ret == f;
}

/*
 * A float32 as the double of the shortest decimal that reads back as the same float32:
 * 21.47 rather than 21.469999313354492, which is the float32 nearest to 21.47 widened
 * exactly. To anyone who reads the value as a float32 the two are the device's value;
 * the short one costs 5 bytes on the wire instead of 18. Nine digits always suffice,
 * and a decimal that round-trips with p digits does with more, so the shortest is
 * found by bisection.
 */
static double float32_shortest(float f)
{
	int lo = 1, hi = 9;
	double d;

	if (!isfinite(f))
		return (double)f;
	while (lo < hi) {
		int mid = (lo + hi) / 2;

		if (float32_round_trips(f, mid, &d))
			hi = mid;
		else
			lo = mid + 1;
	}
	return float32_round_trips(f, lo, &d) ? d : (double)f;
}

static double float_of(uint64_t raw, unsigned n_regs)
{
	if (n_regs == 2) {
		uint32_t bits32 = (uint32_t)raw;
		float f;

		memcpy(&f, &bits32, sizeof(f));
		return float32_shortest(f);
	}
	double d;

	memcpy(&d, &raw, sizeof(d));
	return d;
}

enum decode_status decode_point(const struct point *p, const uint16_t *regs, const uint8_t *bits,
				struct cg_field *ret_field, char *text)
{
	struct cg_field f = { .name = p->name, .type = p->field_type };
	uint64_t raw;
	double x;

	switch (p->type) {
	case TYPE_BOOL:
		f.value.b = (p->kind == KIND_COIL || p->kind == KIND_DISCRETE) ? bits[0] != 0
									       : regs[0] != 0;
		*ret_field = f;
		return DECODE_OK;
	case TYPE_BIT:
		f.value.b = (regs[0] >> p->bit) & 1;
		*ret_field = f;
		return DECODE_OK;
	case TYPE_STRING: {
		enum decode_status s = decode_string(p, regs, text);

		f.value.str = text;
		*ret_field = f;
		return s;
	}
	default:
		break;
	}

	raw = decode_raw(regs, p->count, p->order);
	switch (p->type) {
	case TYPE_INT16:
	case TYPE_INT32:
	case TYPE_INT64: {
		int64_t v = sign_extend(raw, 16 * p->count);

		if (!p->scaled) {
			f.value.i64 = v;
			*ret_field = f;
			return DECODE_OK;
		}
		x = (double)v;
		break;
	}
	case TYPE_UINT16:
	case TYPE_UINT32:
	case TYPE_UINT64:
		if (!p->scaled) {
			if (raw > (uint64_t)INT64_MAX)
				return DECODE_OUT_OF_RANGE;
			f.value.i64 = (int64_t)raw;
			*ret_field = f;
			return DECODE_OK;
		}
		x = (double)raw;
		break;
	default: /* TYPE_FLOAT32, TYPE_FLOAT64 */
		x = float_of(raw, p->count);
		break;
	}
	if (p->scaled)
		x = (p->divisor != 0 ? x / p->divisor : x * p->scale) + p->offset;
	f.value.f64 = x;
	*ret_field = f;
	return DECODE_OK;
}
