// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: arbitrary bytes as a frame payload for queue_decoder_next(), the
 * parser every reading read back from disk goes through.
 *
 * Checks: the decoder answers 1, 0 or -EBADMSG and stops at the first 0 or error; every
 * reading it returns obeys the daemon's limits (1..64 fields with names of up to 64
 * bytes, a topic of up to 253, strings of up to 512, bools 0 or 1); and whatever it
 * accepted survives a round trip through the encoder (queue_record_prepare/append)
 * bit for bit, timestamps included. Deterministic, no exit, no leaks.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_format.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reading(const struct cg_reading *r)
{
	CHECK(r->topic && strlen(r->topic) <= CG_TOPIC_MAX);
	CHECK(r->fields && r->n_fields >= 1 && r->n_fields <= CG_FIELDS_MAX);
	for (size_t i = 0; i < r->n_fields; i++) {
		const struct cg_field *f = &r->fields[i];

		CHECK(f->name && strlen(f->name) <= CG_FIELD_NAME_MAX);
		CHECK(f->type >= CG_FIELD_F64 && f->type <= CG_FIELD_STRING);
		if (f->type == CG_FIELD_BOOL)
			CHECK(f->value.b == 0 || f->value.b == 1);
		if (f->type == CG_FIELD_STRING)
			CHECK(f->value.str && strlen(f->value.str) <= CG_STRING_MAX);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Large: kept out of the stack. */
	static struct queue_decoder in, again;
	static uint8_t scratch[QUEUE_RECORD_MAX];
	struct queue_encoder enc;
	struct cg_reading r, r2;
	uint8_t *copy, *out = NULL;
	size_t out_len = 0, out_cap = 0, n = 0;
	int k;

	/* Exactly size bytes on the heap, so that ASan sees any read past the end. */
	copy = malloc(size ? size : 1);
	CHECK(copy);
	memcpy(copy, data, size);

	queue_decoder_init(&in, copy, size);
	queue_encoder_reset(&enc);
	while ((k = queue_decoder_next(&in, &r)) == 1) {
		struct queue_record_parts parts;
		size_t bound;

		check_reading(&r);
		queue_record_prepare(&r, scratch, &parts);
		CHECK(parts.schema_len + parts.values_len <= QUEUE_RECORD_MAX);
		bound = queue_record_bound(&parts);
		if (out_len + bound > out_cap) {
			out_cap = 2 * (out_len + bound);
			out = realloc(out, out_cap);
			CHECK(out);
		}
		out_len += queue_record_append(&enc, &parts, r.timestamp_ms, out, out_len);
		CHECK(out_len <= out_cap);
		n++;
	}
	CHECK(k == 0 || k == -EBADMSG);
	/* Once it ended, it stays ended. */
	if (k == 0)
		CHECK(queue_decoder_next(&in, &r) == 0);

	/* Re-encoded, the accepted readings decode to the same readings. */
	queue_decoder_init(&in, copy, size);
	queue_decoder_init(&again, out, out_len);
	for (size_t i = 0; i < n; i++) {
		CHECK(queue_decoder_next(&in, &r) == 1);
		CHECK(queue_decoder_next(&again, &r2) == 1);
		check_readings_equal(&r, &r2);
	}
	CHECK(queue_decoder_next(&again, &r2) == 0);

	free(out);
	free(copy);
	return 0;
}
