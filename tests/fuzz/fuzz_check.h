/* SPDX-License-Identifier: MIT */
/*
 * What every fuzz target checks with: CHECK() aborts with the failed condition and its
 * place, which libFuzzer reports as a crash; and comparisons of readings, which the
 * round-trip targets need.
 */
#ifndef COAPGATE_FUZZ_CHECK_H
#define COAPGATE_FUZZ_CHECK_H

#include <coapgate/plugin.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                 \
		}                                                                                \
	} while (0)

/* Two readings are the same, floats bit for bit (a NaN equals itself). */
static inline void check_readings_equal(const struct cg_reading *a, const struct cg_reading *b)
{
	CHECK(a->timestamp_ms == b->timestamp_ms);
	CHECK(a->topic && b->topic && strcmp(a->topic, b->topic) == 0);
	CHECK(a->n_fields == b->n_fields);
	for (size_t i = 0; i < a->n_fields; i++) {
		const struct cg_field *x = &a->fields[i], *y = &b->fields[i];

		CHECK(strcmp(x->name, y->name) == 0);
		CHECK(x->type == y->type);
		switch (x->type) {
		case CG_FIELD_F64:
			CHECK(memcmp(&x->value.f64, &y->value.f64, sizeof(double)) == 0);
			break;
		case CG_FIELD_I64:
			CHECK(x->value.i64 == y->value.i64);
			break;
		case CG_FIELD_BOOL:
			CHECK(x->value.b == y->value.b);
			break;
		case CG_FIELD_STRING:
			CHECK(strcmp(x->value.str, y->value.str) == 0);
			break;
		}
	}
}

/* A reason is one line of text: it goes into the answer "error <reason>\n" and the log. */
static inline bool is_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

#endif
