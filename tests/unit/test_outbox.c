// SPDX-License-Identifier: MIT
/*
 * Unit tests of outbox.c, the uplink's look-ahead window: packing per topic (also when
 * topics interleave), linger and the wake time, a full window, retries, the ack of the
 * contiguous done prefix, a reading too big for any message, the sequence numbers on
 * and off, and the ring and interning under many readings (the ASan build checks that
 * nothing leaks). A model test drives random pushes, sends, answers and retries;
 * COAPGATE_TEST_SEED=<n> replays it with another seed.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <coapgate/plugin.h>

#include "outbox.h"

#define NEVER	     UINT64_MAX
#define LONG_LINGER  (3600ULL * 1000000)
#define DEFAULT_SEED 0x0b0c5eedULL

/* ---- helpers ---- */

/* The budget for every topic, or per topic when "big" is in its name. */
struct budget {
	size_t all, big;
	size_t calls;
	char last_topic[64];
};

static size_t budget_of(const char *topic, void *arg)
{
	struct budget *b = arg;

	b->calls++;
	snprintf(b->last_topic, sizeof(b->last_topic), "%s", topic);
	return b->big && strstr(topic, "big") ? b->big : b->all;
}

/* A reading of one integer field "v". */
static void push(struct outbox *o, uint64_t seq, const char *topic, int64_t ts, int64_t v,
		 uint64_t now_us)
{
	struct cg_field f = { .name = "v", .type = CG_FIELD_I64, .value.i64 = v };
	struct cg_reading r = { .timestamp_ms = ts, .topic = topic, .fields = &f, .n_fields = 1 };

	outbox_push(o, seq, &r, now_us);
}

/* A reading of one string field "s". */
static void push_string(struct outbox *o, uint64_t seq, const char *topic, const char *s,
			uint64_t now_us)
{
	struct cg_field f = { .name = "s", .type = CG_FIELD_STRING, .value.str = s };
	struct cg_reading r = { .timestamp_ms = 1000, .topic = topic, .fields = &f, .n_fields = 1 };

	outbox_push(o, seq, &r, now_us);
}

/* outbox_next_message() that must produce a message. */
static void next_message(struct outbox *o, struct budget *b, bool with_seq, uint64_t now_us,
			 uint64_t linger_us, struct outbox_message *ret)
{
	uint64_t wake = 12345;

	if (outbox_next_message(o, budget_of, b, with_seq, now_us, linger_us, ret, &wake) != 1)
		fail_msg("no message at %" PRIu64 " (wake %" PRIu64 ", %zu pending)", now_us, wake,
			 outbox_pending(o));
}

/* outbox_next_message() that must produce none; returns the wake time. */
static uint64_t no_message(struct outbox *o, struct budget *b, uint64_t now_us, uint64_t linger_us)
{
	struct outbox_message m = { 0 };
	uint64_t wake = 12345;

	if (outbox_next_message(o, budget_of, b, true, now_us, linger_us, &m, &wake) != 0)
		fail_msg("unexpected message of %zu readings (%" PRIu64 "..%" PRIu64
			 ") at %" PRIu64,
			 m.n_readings, m.first_seq, m.last_seq, now_us);
	return wake;
}

/*
 * The seqs of a payload (with sequence numbers) in ascending order; checks that it is
 * the JSON of the encoding and that its length is payload_len.
 */
static size_t payload_seqs(const struct outbox_message *m, uint64_t *seqs, size_t max)
{
	json_error_t err;
	json_t *j = json_loadb(m->payload, m->payload_len, 0, &err), *g, *group;
	size_t n = 0, i;

	if (!j)
		fail_msg("payload is not JSON (%s): %.*s", err.text, (int)m->payload_len,
			 m->payload);
	assert_int_equal(strlen(m->payload), m->payload_len);
	assert_true(json_is_integer(json_object_get(j, "s")));
	g = json_object_get(j, "g");
	json_array_foreach(g, i, group)
	{
		json_t *rows = json_object_get(group, "r"), *row;
		size_t k;

		json_array_foreach(rows, k, row)
		{
			assert_true(n < max);
			seqs[n++] = (uint64_t)json_integer_value(json_object_get(j, "s")) +
				    (uint64_t)json_integer_value(json_array_get(row, 0));
		}
	}
	json_decref(j);
	/* Groups may interleave: sort. */
	for (size_t a = 1; a < n; a++)
		for (size_t b = a; b > 0 && seqs[b - 1] > seqs[b]; b--) {
			uint64_t t = seqs[b];

			seqs[b] = seqs[b - 1];
			seqs[b - 1] = t;
		}
	return n;
}

/* The message carries exactly these seqs, of this topic. */
static void expect_seqs(const struct outbox_message *m, const char *topic, const uint64_t *want,
			size_t n)
{
	uint64_t got[256];
	size_t k;

	assert_string_equal(m->topic, topic);
	assert_int_equal(m->n_readings, n);
	assert_int_equal(m->first_seq, want[0]);
	assert_int_equal(m->last_seq, want[n - 1]);
	k = payload_seqs(m, got, 256);
	assert_int_equal(k, n);
	for (size_t i = 0; i < n; i++)
		if (got[i] != want[i])
			fail_msg("reading %zu of the message has seq %" PRIu64
				 ", expected %" PRIu64,
				 i, got[i], want[i]);
}

static void expect_range(const struct outbox_message *m, const char *topic, uint64_t first,
			 uint64_t step, size_t n)
{
	uint64_t want[256];

	for (size_t i = 0; i < n; i++)
		want[i] = first + i * step;
	expect_seqs(m, topic, want, n);
}

/* The payload size of n readings of push() with value 5, ts 1000, seq first, step. */
static size_t size_of(size_t n, bool with_seq, uint64_t first, uint64_t step)
{
	struct outbox *o = outbox_new(n);
	struct budget b = { .all = SIZE_MAX };
	struct outbox_message m;
	size_t size;

	for (size_t i = 0; i < n; i++)
		push(o, first + i * step, "a", 1000, 5, 0);
	next_message(o, &b, with_seq, 0, 0, &m);
	assert_int_equal(m.n_readings, n);
	size = m.payload_len;
	outbox_message_free(&m);
	outbox_free(o);
	return size;
}

/* ---- tests ---- */

static void test_new_free(void **state)
{
	struct outbox *o = outbox_new(4);
	struct budget b = { .all = 1024 };

	assert_int_equal(outbox_count(o), 0);
	assert_int_equal(outbox_pending(o), 0);
	assert_false(outbox_is_full(o));
	assert_int_equal(outbox_oldest_timestamp_ms(o), 0);
	assert_int_equal(outbox_pop_done(o), 0);
	assert_int_equal(no_message(o, &b, 0, 0), NEVER);
	assert_int_equal(b.calls, 0);
	outbox_free(o);
	outbox_free(NULL);
	/* A window of 0 is one of 1. */
	o = outbox_new(0);
	assert_false(outbox_is_full(o));
	push(o, 1, "a", 1, 1, 0);
	assert_true(outbox_is_full(o));
	outbox_free(o);
}

static void test_push_counts(void **state)
{
	struct outbox *o = outbox_new(3);

	push(o, 10, "a", 5000, 1, 0);
	push(o, 11, "b", 4000, 2, 0);
	assert_int_equal(outbox_count(o), 2);
	assert_int_equal(outbox_pending(o), 2);
	assert_false(outbox_is_full(o));
	/* The oldest in the window: the first pushed. */
	assert_int_equal(outbox_oldest_timestamp_ms(o), 5000);
	push(o, 12, "a", 6000, 3, 0);
	assert_true(outbox_is_full(o));
	assert_int_equal(outbox_count(o), 3);
	/* Freed with readings in it. */
	outbox_free(o);
}

static void test_single_topic(void **state)
{
	struct outbox *o = outbox_new(8);
	struct budget b = { .all = 1024 };
	struct outbox_message m;

	push(o, 10, "site/a", 1000, 1, 0);
	push(o, 11, "site/a", 1010, -2, 0);
	push(o, 13, "site/a", 990, 3, 0);
	next_message(o, &b, true, 0, 0, &m);
	assert_string_equal(b.last_topic, "site/a");
	assert_string_equal(m.topic, "site/a");
	assert_int_equal(m.n_readings, 3);
	assert_int_equal(m.first_seq, 10);
	assert_int_equal(m.last_seq, 13);
	assert_string_equal(m.payload, "{\"v\":1,\"s\":10,\"t\":1000,\"g\":[{\"f\":[\"v\"],"
				       "\"r\":[[0,0,1],[1,10,-2],[3,-10,3]]}]}");
	assert_int_equal(m.payload_len, strlen(m.payload));
	assert_non_null(m.positions);
	assert_int_equal(outbox_count(o), 3);
	assert_int_equal(outbox_pending(o), 0);
	/* All in flight: nothing to send, nothing to wait for. */
	assert_int_equal(no_message(o, &b, 0, 0), NEVER);
	assert_int_equal(outbox_pop_done(o), 0);
	outbox_message_done(o, &m);
	assert_int_equal(outbox_pop_done(o), 13);
	assert_int_equal(outbox_count(o), 0);
	assert_int_equal(outbox_pop_done(o), 0);
	outbox_message_free(&m);
	outbox_message_free(&m); /* cleared: a second free is harmless */
	outbox_message_free(NULL);
	outbox_free(o);
}

static void test_with_seq_off(void **state)
{
	struct outbox *o = outbox_new(8);
	struct budget b = { .all = 1024 };
	struct outbox_message m;

	push(o, 10, "a", 1000, 1, 0);
	push(o, 11, "a", 1010, 2, 0);
	next_message(o, &b, false, 0, 0, &m);
	assert_string_equal(m.payload,
			    "{\"v\":1,\"t\":1000,\"g\":[{\"f\":[\"v\"],\"r\":[[0,1],[10,2]]}]}");
	assert_int_equal(m.first_seq, 10);
	assert_int_equal(m.last_seq, 11);
	outbox_message_free(&m);
	/* Off makes messages smaller and so holds more readings. */
	assert_true(size_of(5, false, 1, 1) < size_of(5, true, 1, 1));
	outbox_free(o);
}

/* Readings of each topic go together; the first message is the oldest topic's. */
static void test_interleaved_topics(void **state)
{
	struct outbox *o = outbox_new(64);
	struct budget b = { .all = 1024 };
	struct outbox_message ma, mb;

	for (uint64_t seq = 1; seq <= 20; seq++)
		push(o, seq, seq % 2 ? "A" : "B", 1000 + (int64_t)seq, (int64_t)seq, 0);
	next_message(o, &b, true, 0, 0, &ma);
	expect_range(&ma, "A", 1, 2, 10);
	next_message(o, &b, true, 0, 0, &mb);
	expect_range(&mb, "B", 2, 2, 10);
	assert_int_equal(outbox_pending(o), 0);
	outbox_message_free(&ma);
	outbox_message_free(&mb);
	outbox_free(o);
}

/* With a budget of 5 readings, interleaved topics still fill messages of 5. */
static void test_interleaved_topics_fill(void **state)
{
	struct outbox *o = outbox_new(64);
	struct budget b = { .all = size_of(5, true, 10, 3) };
	struct outbox_message m[9];
	static const char *const topics[] = { "A", "B", "C" };

	/* A B C A B C ...: 15 readings per topic (two-digit seqs: all rows the same size). */
	for (uint64_t seq = 10; seq < 55; seq++)
		push(o, seq, topics[(seq - 10) % 3], 1000, 5, 0);
	/* Full messages go before the linger is over, oldest topic first. */
	for (size_t i = 0; i < 6; i++) {
		next_message(o, &b, true, 0, LONG_LINGER, &m[i]);
		expect_range(&m[i], topics[i % 3], 10 + i % 3 + 15 * (i / 3), 3, 5);
		assert_int_equal(m[i].payload_len, b.all);
	}
	/* The last five of each topic fit, but nothing was refused yet: they linger. */
	assert_int_equal(no_message(o, &b, 0, LONG_LINGER), LONG_LINGER);
	assert_int_equal(outbox_pending(o), 15);
	for (size_t i = 6; i < 9; i++) {
		next_message(o, &b, true, LONG_LINGER, LONG_LINGER, &m[i]);
		expect_range(&m[i], topics[i % 3], 10 + i % 3 + 15 * (i / 3), 3, 5);
	}
	assert_int_equal(outbox_pending(o), 0);
	for (size_t i = 0; i < 9; i++)
		outbox_message_free(&m[i]);
	outbox_free(o);
}

static void test_linger(void **state)
{
	struct outbox *o = outbox_new(64);
	struct budget b = { .all = 1024 };
	struct outbox_message m;

	assert_int_equal(no_message(o, &b, 1000, 500), NEVER);
	push(o, 1, "A", 1, 1, 1000);
	assert_int_equal(no_message(o, &b, 1000, 500), 1500);
	push(o, 2, "B", 1, 2, 1200);
	push(o, 3, "A", 1, 3, 1300);
	assert_int_equal(no_message(o, &b, 1499, 500), 1500);
	/* A is due at 1500 (its oldest reading), and takes its later reading along. */
	next_message(o, &b, true, 1500, 500, &m);
	expect_range(&m, "A", 1, 2, 2);
	outbox_message_free(&m);
	/* B is due at 1700. */
	assert_int_equal(no_message(o, &b, 1500, 500), 1700);
	assert_int_equal(no_message(o, &b, 1699, 500), 1700);
	next_message(o, &b, true, 1800, 500, &m);
	expect_range(&m, "B", 2, 1, 1);
	outbox_message_free(&m);
	assert_int_equal(no_message(o, &b, 1800, 500), NEVER);
	outbox_free(o);
}

/* A linger of 0 sends at once. */
static void test_linger_zero(void **state)
{
	struct outbox *o = outbox_new(8);
	struct budget b = { .all = 1024 };
	struct outbox_message m;

	push(o, 1, "A", 1, 1, 5000);
	next_message(o, &b, true, 5000, 0, &m);
	expect_range(&m, "A", 1, 1, 1);
	outbox_message_free(&m);
	outbox_free(o);
}

/* A full message goes before the linger is over; the rest waits for it. */
static void test_full_message_before_linger(void **state)
{
	struct outbox *o = outbox_new(64);
	struct budget b = { .all = size_of(3, true, 1, 1) };
	struct outbox_message m;

	push(o, 1, "A", 1000, 5, 100);
	push(o, 2, "A", 1000, 5, 100);
	push(o, 3, "A", 1000, 5, 100);
	/* Exactly full, but nothing has been refused yet: it waits. */
	assert_int_equal(no_message(o, &b, 100, 1000), 1100);
	push(o, 4, "A", 1000, 5, 200);
	next_message(o, &b, true, 200, 1000, &m);
	expect_range(&m, "A", 1, 1, 3);
	assert_int_equal(m.payload_len, b.all);
	outbox_message_free(&m);
	/* Reading 4 waits for its own linger. */
	assert_int_equal(no_message(o, &b, 200, 1000), 1200);
	next_message(o, &b, true, 1200, 1000, &m);
	expect_range(&m, "A", 4, 1, 1);
	outbox_message_free(&m);
	outbox_free(o);
}

/* A full window sends before the linger is over, whatever is in it. */
static void test_window_full(void **state)
{
	struct outbox *o = outbox_new(4);
	struct budget b = { .all = 1024 };
	struct outbox_message m1, m2;

	push(o, 1, "A", 1000, 1, 0);
	push(o, 2, "B", 1000, 2, 0);
	push(o, 3, "A", 1000, 3, 0);
	assert_int_equal(no_message(o, &b, 0, LONG_LINGER), LONG_LINGER);
	push(o, 4, "B", 1000, 4, 0);
	assert_true(outbox_is_full(o));
	next_message(o, &b, true, 0, LONG_LINGER, &m1);
	expect_range(&m1, "A", 1, 2, 2);
	/* Still full (in flight counts): B goes too. */
	next_message(o, &b, true, 0, LONG_LINGER, &m2);
	expect_range(&m2, "B", 2, 2, 2);
	assert_int_equal(no_message(o, &b, 0, LONG_LINGER), NEVER);
	/* Room again once A is acknowledged; B is still in the window. */
	outbox_message_done(o, &m1);
	assert_int_equal(outbox_pop_done(o), 1);
	assert_false(outbox_is_full(o));
	assert_int_equal(outbox_count(o), 3);
	outbox_message_free(&m1);
	outbox_message_free(&m2);
	outbox_free(o);
}

static void test_retry(void **state)
{
	struct outbox *o = outbox_new(8);
	struct budget b = { .all = 1024 };
	struct outbox_message m1, m2;

	push(o, 1, "A", 1000, 1, 0);
	push(o, 2, "A", 1001, 2, 0);
	next_message(o, &b, true, 0, 0, &m1);
	assert_int_equal(outbox_pending(o), 0);
	outbox_message_retry(o, &m1);
	assert_int_equal(outbox_pending(o), 2);
	assert_int_equal(outbox_count(o), 2);
	/* A second retry of the same message changes nothing. */
	outbox_message_retry(o, &m1);
	assert_int_equal(outbox_pending(o), 2);
	/* Sent again, with a reading that came meanwhile, under a new id. */
	push(o, 3, "A", 1002, 3, 10);
	next_message(o, &b, true, 10, 0, &m2);
	expect_range(&m2, "A", 1, 1, 3);
	assert_true(m2.id != m1.id);
	assert_string_equal(m2.payload, "{\"v\":1,\"s\":1,\"t\":1000,\"g\":[{\"f\":[\"v\"],"
					"\"r\":[[0,0,1],[1,1,2],[2,2,3]]}]}");
	/* A late answer to the first message: its readings are no longer its own. */
	outbox_message_done(o, &m1);
	outbox_message_free(&m1);
	outbox_message_done(o, &m2);
	assert_int_equal(outbox_pop_done(o), 3);
	assert_int_equal(outbox_count(o), 0);
	outbox_message_free(&m2);
	outbox_free(o);
}

/* A retried reading was waiting long enough already: it goes at once. */
static void test_retry_skips_linger(void **state)
{
	struct outbox *o = outbox_new(8);
	struct budget b = { .all = 1024 };
	struct outbox_message m;

	push(o, 1, "A", 1000, 1, 0);
	next_message(o, &b, true, 1000, 1000, &m);
	outbox_message_retry(o, &m);
	outbox_message_free(&m);
	next_message(o, &b, true, 1000, 1000, &m);
	expect_range(&m, "A", 1, 1, 1);
	outbox_message_free(&m);
	outbox_free(o);
}

/* Ids grow with every message. */
static void test_message_ids(void **state)
{
	struct outbox *o = outbox_new(8);
	struct budget b = { .all = 1024 };
	struct outbox_message m;
	uint64_t last = 0;

	for (uint64_t seq = 1; seq <= 5; seq++) {
		push(o, seq, "A", 1000, 1, 0);
		next_message(o, &b, true, 0, 0, &m);
		assert_true(m.id > last);
		last = m.id;
		outbox_message_done(o, &m);
		outbox_message_free(&m);
		assert_int_equal(outbox_pop_done(o), seq);
	}
	outbox_free(o);
}

/* Acknowledged only up to the first reading not done. */
static void test_pop_done_hole(void **state)
{
	struct outbox *o = outbox_new(16);
	struct budget b = { .all = size_of(3, true, 101, 1) };
	struct outbox_message m1, m2, m3;

	for (uint64_t seq = 101; seq <= 109; seq++)
		push(o, seq, "A", 1000, 5, 0);
	next_message(o, &b, true, 0, 0, &m1);
	next_message(o, &b, true, 0, 0, &m2);
	next_message(o, &b, true, 0, 0, &m3);
	expect_range(&m1, "A", 101, 1, 3);
	expect_range(&m2, "A", 104, 1, 3);
	expect_range(&m3, "A", 107, 1, 3);
	/* m2 done, m1 still in flight: nothing can be acknowledged. */
	outbox_message_done(o, &m2);
	assert_int_equal(outbox_pop_done(o), 0);
	assert_int_equal(outbox_count(o), 9);
	/* m1 done: through m2, not into m3. */
	outbox_message_done(o, &m1);
	assert_int_equal(outbox_pop_done(o), 106);
	assert_int_equal(outbox_count(o), 3);
	assert_int_equal(outbox_pop_done(o), 0);
	/* A duplicate answer to m1, after its readings left, changes nothing. */
	outbox_message_done(o, &m1);
	outbox_message_retry(o, &m1);
	assert_int_equal(outbox_count(o), 3);
	assert_int_equal(outbox_pending(o), 0);
	outbox_message_done(o, &m3);
	assert_int_equal(outbox_pop_done(o), 109);
	assert_int_equal(outbox_count(o), 0);
	outbox_message_free(&m1);
	outbox_message_free(&m2);
	outbox_message_free(&m3);
	outbox_free(o);
}

/* Interleaved topics: A's done readings are acked only up to B's reading in flight. */
static void test_pop_done_interleaved(void **state)
{
	struct outbox *o = outbox_new(16);
	struct budget b = { .all = 1024 };
	struct outbox_message ma, mb;

	push(o, 1, "A", 1000, 1, 0);
	push(o, 2, "B", 1000, 2, 0);
	push(o, 3, "A", 1000, 3, 0);
	push(o, 4, "B", 1000, 4, 0);
	push(o, 5, "A", 1000, 5, 0);
	next_message(o, &b, true, 0, 0, &ma);
	next_message(o, &b, true, 0, 0, &mb);
	expect_range(&ma, "A", 1, 2, 3);
	expect_range(&mb, "B", 2, 2, 2);
	outbox_message_done(o, &ma);
	assert_int_equal(outbox_pop_done(o), 1);
	outbox_message_retry(o, &mb);
	assert_int_equal(outbox_pop_done(o), 0);
	assert_int_equal(outbox_pending(o), 2);
	outbox_message_free(&mb);
	next_message(o, &b, true, 0, 0, &mb);
	expect_range(&mb, "B", 2, 2, 2);
	outbox_message_done(o, &mb);
	assert_int_equal(outbox_pop_done(o), 5);
	assert_int_equal(outbox_count(o), 0);
	outbox_message_free(&ma);
	outbox_message_free(&mb);
	outbox_free(o);
}

/* A reading bigger than the budget goes alone, over it, so the uplink can see that. */
static void test_oversized_reading(void **state)
{
	struct outbox *o = outbox_new(16);
	struct budget b = { .all = 80 };
	struct outbox_message m;
	char big[201];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	push_string(o, 1, "A", "small", 0);
	push_string(o, 2, "A", big, 0);
	push_string(o, 3, "A", "small", 0);
	push_string(o, 4, "A", "small", 0);
	/* The small one before it cannot take it along: a message of its own, at once. */
	next_message(o, &b, true, 0, LONG_LINGER, &m);
	expect_range(&m, "A", 1, 1, 1);
	assert_true(m.payload_len <= b.all);
	outbox_message_free(&m);
	/* The big one alone, over the budget, at once. */
	next_message(o, &b, true, 0, LONG_LINGER, &m);
	expect_range(&m, "A", 2, 1, 1);
	assert_true(m.payload_len > b.all);
	assert_non_null(strstr(m.payload, big));
	outbox_message_done(o, &m); /* dead-lettered */
	outbox_message_free(&m);
	/* The rest waits for its linger, and then goes together. */
	assert_int_equal(no_message(o, &b, 0, LONG_LINGER), LONG_LINGER);
	next_message(o, &b, true, LONG_LINGER, LONG_LINGER, &m);
	expect_range(&m, "A", 3, 1, 2);
	assert_true(m.payload_len <= b.all);
	outbox_message_free(&m);
	outbox_free(o);
}

/* The budget is asked per topic. */
static void test_budget_per_topic(void **state)
{
	struct outbox *o = outbox_new(64);
	struct budget b = { .all = size_of(2, true, 1, 2), .big = size_of(6, true, 2, 2) };
	struct outbox_message m;

	for (uint64_t seq = 1; seq <= 12; seq++)
		push(o, seq, seq % 2 ? "small" : "big", 1000, 5, 0);
	next_message(o, &b, true, 0, 0, &m);
	expect_range(&m, "small", 1, 2, 2);
	outbox_message_free(&m);
	next_message(o, &b, true, 0, 0, &m);
	expect_range(&m, "big", 2, 2, 6);
	assert_true(m.payload_len <= b.big);
	outbox_message_free(&m);
	outbox_free(o);
}

/* Equal field lists of one topic make one group, different ones another. */
static void test_groups(void **state)
{
	struct outbox *o = outbox_new(16);
	struct budget b = { .all = 1024 };
	struct outbox_message m;
	const struct cg_field f1[] = {
		{ .name = "temp", .type = CG_FIELD_F64, .value.f64 = 21.5 },
		{ .name = "hum", .type = CG_FIELD_I64, .value.i64 = 40 },
	};
	const struct cg_field f2[] = {
		{ .name = "door", .type = CG_FIELD_STRING, .value.str = "open" },
	};
	struct cg_reading r1 = { .timestamp_ms = 1000, .topic = "t", .fields = f1, .n_fields = 2 };
	struct cg_reading r2 = { .timestamp_ms = 1500, .topic = "t", .fields = f2, .n_fields = 1 };
	char topic[8] = "t";

	outbox_push(o, 1, &r1, 0);
	outbox_push(o, 2, &r2, 0);
	/* Equal text in another buffer is the same topic: the topic is copied. */
	r1.topic = topic;
	outbox_push(o, 3, &r1, 0);
	topic[0] = 'x';
	next_message(o, &b, true, 0, 0, &m);
	assert_string_equal(m.topic, "t");
	assert_string_equal(m.payload,
			    "{\"v\":1,\"s\":1,\"t\":1000,\"g\":["
			    "{\"f\":[\"temp\",\"hum\"],\"r\":[[0,0,21.5,40],[2,0,21.5,40]]},"
			    "{\"f\":[\"door\"],\"r\":[[1,500,\"open\"]]}]}");
	outbox_message_free(&m);
	outbox_free(o);
}

/*
 * Many readings of one topic through a small ring, over and over: every reading is
 * sent once, in order, and acknowledged; the ASan build checks the interning for leaks.
 */
static void test_many_readings_ring(void **state)
{
	struct outbox *o = outbox_new(100);
	struct budget b = { .all = 1024 };
	uint64_t seq = 0, expect = 1, acked = 0;

	for (int round = 0; round < 200; round++) {
		struct outbox_message m[100];
		size_t n = 0;

		while (!outbox_is_full(o)) {
			seq++;
			push(o, seq, "gateway/health", 1732480000000 + (int64_t)seq, (int64_t)seq,
			     0);
		}
		while (outbox_pending(o)) {
			uint64_t got[256];
			size_t k;

			assert_true(n < 100);
			next_message(o, &b, true, 0, 0, &m[n]);
			k = payload_seqs(&m[n], got, 256);
			for (size_t i = 0; i < k; i++)
				assert_int_equal(got[i], expect++);
			assert_true(m[n].payload_len <= b.all);
			n++;
		}
		/* Answers in reverse: one ack at the end. */
		for (size_t i = n; i-- > 0;) {
			outbox_message_done(o, &m[i]);
			if (i)
				assert_int_equal(outbox_pop_done(o), 0);
		}
		acked = outbox_pop_done(o);
		assert_int_equal(acked, seq);
		assert_int_equal(outbox_count(o), 0);
		for (size_t i = 0; i < n; i++)
			outbox_message_free(&m[i]);
	}
	assert_int_equal(acked, 200 * 100);
	outbox_free(o);
}

/* Freed with readings pending, in flight and done, and messages still out. */
static void test_free_busy(void **state)
{
	struct outbox *o = outbox_new(5000);
	struct budget b = { .all = 1024 };
	struct outbox_message m1, m2;
	char topic[32];

	for (uint64_t seq = 1; seq <= 5000; seq++) {
		snprintf(topic, sizeof(topic), "t%" PRIu64, seq % 7);
		push(o, seq, seq % 3 ? "same/topic" : topic, 1000, (int64_t)seq, 0);
	}
	next_message(o, &b, true, 0, 0, &m1);
	next_message(o, &b, true, 0, 0, &m2);
	outbox_message_done(o, &m1);
	outbox_free(o);
	outbox_message_free(&m1);
	outbox_message_free(&m2);
}

/* More topics than one call tries: each is still sent in turn. */
static void test_many_topics(void **state)
{
	struct outbox *o = outbox_new(301); /* not full */
	struct budget b = { .all = 1024 };
	bool seen[300] = { false };
	char topic[32];

	for (uint64_t seq = 0; seq < 300; seq++) {
		snprintf(topic, sizeof(topic), "topic%" PRIu64, seq);
		push(o, seq + 1, topic, 1000, 1, seq);
	}
	/* None due: the wake time is the oldest topic's. */
	assert_int_equal(no_message(o, &b, 0, 1000), 1000);
	for (int i = 0; i < 300; i++) {
		struct outbox_message m;
		unsigned t;

		next_message(o, &b, true, 5000, 1000, &m);
		assert_int_equal(m.n_readings, 1);
		assert_int_equal(sscanf(m.topic, "topic%u", &t), 1);
		assert_true(t < 300 && !seen[t]);
		seen[t] = true;
		/* Oldest first. */
		assert_int_equal(t, i);
		outbox_message_done(o, &m);
		outbox_message_free(&m);
	}
	assert_int_equal(outbox_pop_done(o), 300);
	outbox_free(o);
}

/* ---- the model test ---- */

struct rng {
	uint64_t state;
};

static uint64_t rnd(struct rng *g)
{
	uint64_t z = (g->state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

#define MODEL_CAPACITY 48
#define MODEL_STEPS    20000
#define MODEL_FLIGHTS  6
#define LINGER	       1000

enum model_state { M_PENDING, M_IN_FLIGHT, M_DONE, M_ACKED };

struct model_reading {
	uint64_t seq, added_us;
	int topic;
	enum model_state state;
};

/* When the oldest pending reading of some topic has lingered enough. */
static uint64_t model_wake(const struct model_reading *model, size_t head, size_t n)
{
	uint64_t wake = NEVER;

	for (size_t i = head; i < n; i++)
		if (model[i].state == M_PENDING && model[i].added_us + LINGER < wake)
			wake = model[i].added_us + LINGER;
	return wake;
}

/*
 * Random pushes, sends, answers (done or retry) and acks against a model of what the
 * window must hold: every message is of one topic, carries pending readings in order,
 * fits the budget (or is one reading), and the ack is the contiguous done prefix.
 */
static void test_model(void **state)
{
	const char *env = getenv("COAPGATE_TEST_SEED");
	uint64_t seed = env && *env ? strtoull(env, NULL, 0) : DEFAULT_SEED;
	struct rng g = { seed };
	static const char *const topics[] = { "a", "b/c", "big", "d_1" };
	struct model_reading *model = calloc(MODEL_STEPS + 1, sizeof(*model));
	struct outbox *o = outbox_new(MODEL_CAPACITY);
	struct outbox_message flights[MODEL_FLIGHTS];
	bool used[MODEL_FLIGHTS] = { false };
	size_t head = 0, n = 0, sent = 0, oversized = 0;
	uint64_t seq = 0, now = 0, acked = 0;
	struct budget b = { .all = 120, .big = 400 };

	assert_non_null(model);
	printf("test_outbox: COAPGATE_TEST_SEED=%" PRIu64 "\n", seed);
	for (int step = 0; step < MODEL_STEPS; step++) {
		uint64_t r = rnd(&g) % 10;

		now += rnd(&g) % 300;
		if (r < 4 && !outbox_is_full(o)) {
			int t = (int)(rnd(&g) % 4);
			char s[128];

			/* Short, long, or (1 in 16) too long for any message of its topic. */
			memset(s, 'z', sizeof(s) - 1);
			switch (rnd(&g) % 16) {
			case 0:
				s[sizeof(s) - 1] = '\0';
				break;
			case 1:
			case 2:
			case 3:
				s[60] = '\0';
				break;
			default:
				s[rnd(&g) % 8] = '\0';
			}
			seq += 1 + (rnd(&g) % 5 == 0);
			model[n++] =
			    (struct model_reading){ .seq = seq, .added_us = now, .topic = t };
			push_string(o, seq, topics[t], s, now);
		} else if (r < 7) {
			struct outbox_message m;
			uint64_t wake, got[MODEL_CAPACITY];
			size_t f = 0, k, j;
			int t;

			while (f < MODEL_FLIGHTS && used[f])
				f++;
			if (f == MODEL_FLIGHTS)
				continue;
			if (!outbox_next_message(o, budget_of, &b, true, now, LINGER, &m, &wake)) {
				/* Nothing due: the window has room, no topic lingered enough. */
				assert_false(outbox_is_full(o) && outbox_pending(o));
				assert_int_equal(wake, model_wake(model, head, n));
				assert_true(wake > now);
				continue;
			}
			for (t = 0; strcmp(topics[t], m.topic); t++)
				assert_true(t < 3);
			/* A topic with an older pending reading was not due. */
			for (size_t i = head; i < n && model[i].topic != t; i++)
				if (model[i].state == M_PENDING)
					assert_true(!outbox_is_full(o) &&
						    now < model[i].added_us + LINGER);
			if (m.payload_len > budget_of(m.topic, &b)) {
				assert_int_equal(m.n_readings, 1);
				oversized++;
			}
			k = payload_seqs(&m, got, MODEL_CAPACITY);
			assert_int_equal(k, m.n_readings);
			/* The first pending readings of its topic, in order. */
			j = head;
			for (size_t i = 0; i < k; i++) {
				while (j < n &&
				       (model[j].topic != t || model[j].state != M_PENDING))
					j++;
				assert_true(j < n);
				if (model[j].seq != got[i])
					fail_msg("seq %" PRIu64 " sent, %" PRIu64 " expected "
						 "(COAPGATE_TEST_SEED=%" PRIu64 ", step %d)",
						 got[i], model[j].seq, seed, step);
				model[j++].state = M_IN_FLIGHT;
			}
			flights[f] = m;
			used[f] = true;
			sent++;
		} else if (r < 9) {
			size_t f = rnd(&g) % MODEL_FLIGHTS;
			bool done = rnd(&g) % 4 != 0;
			const struct outbox_message *m = &flights[f];
			uint64_t got[MODEL_CAPACITY];
			size_t k;

			if (!used[f])
				continue;
			k = payload_seqs(m, got, MODEL_CAPACITY);
			for (size_t q = 0; q < k; q++)
				for (size_t i = head; i < n; i++)
					if (model[i].seq == got[q]) {
						assert_int_equal(model[i].state, M_IN_FLIGHT);
						model[i].state = done ? M_DONE : M_PENDING;
					}
			if (done)
				outbox_message_done(o, m);
			else
				outbox_message_retry(o, m);
			outbox_message_free(&flights[f]);
			used[f] = false;
		} else {
			uint64_t want = 0, got;

			while (head < n && model[head].state == M_DONE) {
				want = model[head].seq;
				model[head++].state = M_ACKED;
			}
			got = outbox_pop_done(o);
			if (got != want)
				fail_msg("pop_done() = %" PRIu64 ", expected %" PRIu64
					 " (COAPGATE_TEST_SEED=%" PRIu64 ", step %d)",
					 got, want, seed, step);
			if (want)
				acked = want;
		}
		{
			size_t pending = 0;

			for (size_t i = head; i < n; i++)
				pending += model[i].state == M_PENDING;
			assert_int_equal(outbox_count(o), n - head);
			assert_int_equal(outbox_pending(o), pending);
		}
	}
	printf("test_outbox: %zu readings, %zu messages (%zu over the budget), acked through "
	       "%" PRIu64 "\n",
	       n, sent, oversized, acked);
	assert_true(acked > 1000);
	assert_true(oversized > 10);
	for (size_t f = 0; f < MODEL_FLIGHTS; f++)
		if (used[f])
			outbox_message_free(&flights[f]);
	outbox_free(o);
	free(model);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_free),
		cmocka_unit_test(test_push_counts),
		cmocka_unit_test(test_single_topic),
		cmocka_unit_test(test_with_seq_off),
		cmocka_unit_test(test_interleaved_topics),
		cmocka_unit_test(test_interleaved_topics_fill),
		cmocka_unit_test(test_linger),
		cmocka_unit_test(test_linger_zero),
		cmocka_unit_test(test_full_message_before_linger),
		cmocka_unit_test(test_window_full),
		cmocka_unit_test(test_retry),
		cmocka_unit_test(test_retry_skips_linger),
		cmocka_unit_test(test_message_ids),
		cmocka_unit_test(test_pop_done_hole),
		cmocka_unit_test(test_pop_done_interleaved),
		cmocka_unit_test(test_oversized_reading),
		cmocka_unit_test(test_budget_per_topic),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_many_readings_ring),
		cmocka_unit_test(test_free_busy),
		cmocka_unit_test(test_many_topics),
		cmocka_unit_test(test_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
