// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: two arbitrary checkpoint slots for queue_checkpoint_pick(), and the
 * chosen checkpoint's gap list through queue_checkpoint_add_gap().
 *
 * Input:
 *   0     flags: bit 0 repair each slot's CRC first (so that the fuzzer gets past it
 *         to the checks behind it), bit 1 slot 0 is NULL, bit 2 slot 1 is NULL
 *   1..2  length of slot 0 (u16 LE, cut to what is there)
 *   3..   slot 0, then slot 1 (the rest); the last 16 bytes also give a gap to add
 *
 * Checks: pick answers 0, 1 or -ENOENT, agrees with queue_checkpoint_decode() on each
 * slot and takes the higher generation; the chosen checkpoint survives encode and
 * decode unchanged; its gap list is sorted and disjoint, and stays so (and above the
 * acked position, at most QUEUE_CKPT_GAPS_MAX long) after adding a range, with the
 * range's seqs recorded and the count of new ones right.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "queue_format.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint8_t *slot_copy(const uint8_t *p, size_t len, bool fix_crc)
{
	uint8_t *s = malloc(len ? len : 1);

	CHECK(s);
	memcpy(s, p, len);
	if (fix_crc && len >= QUEUE_CKPT_LEN) {
		uint32_t crc = (uint32_t)crc32(0L, s, QUEUE_CKPT_LEN - 4);

		for (int i = 0; i < 4; i++)
			s[QUEUE_CKPT_LEN - 4 + i] = (uint8_t)(crc >> (8 * i));
	}
	return s;
}

static void check_gaps(const struct queue_checkpoint *c)
{
	CHECK(c->n_gaps <= QUEUE_CKPT_GAPS_MAX);
	for (uint32_t i = 0; i < c->n_gaps; i++) {
		CHECK(c->gaps[i].first <= c->gaps[i].last);
		if (i)
			CHECK(c->gaps[i].first > c->gaps[i - 1].last);
	}
}

static bool gap_covers(const struct queue_checkpoint *c, uint64_t seq)
{
	for (uint32_t i = 0; i < c->n_gaps; i++)
		if (c->gaps[i].first <= seq && seq <= c->gaps[i].last)
			return true;
	return false;
}

static void check_equal(const struct queue_checkpoint *a, const struct queue_checkpoint *b)
{
	CHECK(a->generation == b->generation && a->stream_id == b->stream_id &&
	      a->acked_seq == b->acked_seq && a->seq_reserved == b->seq_reserved &&
	      a->dropped_total == b->dropped_total && a->lost_total == b->lost_total &&
	      a->n_gaps == b->n_gaps);
	for (uint32_t i = 0; i < a->n_gaps; i++)
		CHECK(a->gaps[i].first == b->gaps[i].first && a->gaps[i].last == b->gaps[i].last);
}

/* A valid checkpoint made of the input bytes: gaps sorted, apart, above acked_seq. */
static void make_checkpoint(const uint8_t *data, size_t size, struct queue_checkpoint *ret)
{
	uint64_t cursor;
	size_t k = 0;

#define NEXT() (data[k++ % size])
	memset(ret, 0, sizeof(*ret));
	ret->generation = NEXT();
	ret->stream_id = (uint64_t)NEXT() << 56;
	ret->stream_id |= NEXT();
	ret->acked_seq = (uint64_t)NEXT() << 32;
	ret->acked_seq |= NEXT();
	ret->seq_reserved = ret->acked_seq + NEXT();
	ret->dropped_total = NEXT();
	ret->lost_total = NEXT();
	ret->n_gaps = NEXT() % (QUEUE_CKPT_GAPS_MAX + 1);
	cursor = ret->acked_seq;
	for (uint32_t i = 0; i < ret->n_gaps; i++) {
		uint64_t step = NEXT();

		cursor += 2 + (step << (NEXT() % 40));
		ret->gaps[i].first = cursor;
		cursor += NEXT();
		ret->gaps[i].last = cursor;
	}
#undef NEXT
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t slot[QUEUE_CKPT_SLOT_SIZE];
	struct queue_checkpoint c, d0, d1, again, old, made;
	uint8_t *s0, *s1;
	size_t len0, len1;
	bool ok0, ok1;
	int r;

	if (size < 3)
		return -1;
	len0 = (size_t)(data[1] | data[2] << 8);
	if (len0 > size - 3)
		len0 = size - 3;
	len1 = size - 3 - len0;
	s0 = slot_copy(data + 3, len0, data[0] & 1);
	s1 = slot_copy(data + 3 + len0, len1, data[0] & 1);

	ok0 = !(data[0] & 2) && queue_checkpoint_decode(s0, len0, &d0) == 0;
	ok1 = !(data[0] & 4) && queue_checkpoint_decode(s1, len1, &d1) == 0;
	r = queue_checkpoint_pick(data[0] & 2 ? NULL : s0, len0, data[0] & 4 ? NULL : s1, len1, &c);
	CHECK(r == 0 || r == 1 || r == -ENOENT);
	CHECK((r == -ENOENT) == (!ok0 && !ok1));
	if (r == 0) {
		CHECK(ok0 && (!ok1 || d0.generation >= d1.generation));
		check_equal(&c, &d0);
	}
	if (r == 1) {
		CHECK(ok1 && (!ok0 || d1.generation >= d0.generation));
		check_equal(&c, &d1);
	}
	if (r >= 0) {
		uint64_t first, last, fresh, before_known = 0;

		check_gaps(&c);
		/* What a slot says is what it says again when written back. */
		queue_checkpoint_encode(&c, slot);
		CHECK(queue_checkpoint_decode(slot, sizeof(slot), &again) == 0);
		check_equal(&again, &c);

		/* Add a range taken from the input's end. */
		if (size >= 3 + 16) {
			first = get64(data + size - 16);
			last = get64(data + size - 8);
			/* Counting new seqs only works for ranges of countable size. */
			if (first <= last && last - first < 4096) {
				for (uint64_t s = first; s <= last && s >= first; s++) {
					before_known += gap_covers(&c, s);
					if (s == UINT64_MAX)
						break;
				}
				old = c;
				fresh = queue_checkpoint_add_gap(&c, first, last);
				CHECK(fresh == last - first + 1 - before_known);
				check_gaps(&c);
				for (uint32_t i = 0; i < c.n_gaps; i++)
					CHECK(c.gaps[i].last > c.acked_seq);
				/* The new range is recorded unless it is acked or was the
				 * lowest of a full list. */
				if (last > c.acked_seq && c.n_gaps < QUEUE_CKPT_GAPS_MAX)
					CHECK(gap_covers(&c, last));
				/* Nor is anything recorded before forgotten, then. */
				for (uint32_t i = 0; i < old.n_gaps; i++) {
					const struct queue_gap *g = &old.gaps[i];

					if (c.n_gaps == QUEUE_CKPT_GAPS_MAX ||
					    g->last <= c.acked_seq)
						continue;
					CHECK(gap_covers(&c, g->last));
					if (g->first > c.acked_seq)
						CHECK(gap_covers(&c, g->first));
				}
			}
		}
	}

	/* Any well-formed checkpoint, with up to QUEUE_CKPT_GAPS_MAX gaps, survives encode
	 * and decode. */
	make_checkpoint(data, size, &made);
	queue_checkpoint_encode(&made, slot);
	CHECK(queue_checkpoint_decode(slot, sizeof(slot), &again) == 0);
	check_equal(&again, &made);

	free(s0);
	free(s1);
	return 0;
}
