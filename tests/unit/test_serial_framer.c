// SPDX-License-Identifier: MIT
/*
 * Unit tests of the serial input's framer (plugins/serial/framer.c) against
 * plugins/serial/framer.h: terminators of one and many bytes, split across reads at
 * every point, overlapping partial matches ("\r\r\n", "aab" in "aaab"), max_frame
 * exactly and one past it, empty frames, NUL bytes, idle-gap framing, the start out
 * of step, timestamps of the first byte, and a random comparison with a plain
 * reference (memmem) over thousands of streams fed in random pieces.
 *
 * Every piece fed is its own heap allocation of exactly its length, so ASan sees a
 * read past it; the sink writes data[len] (the spare byte the parsers rely on).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "framer.h"

/* What the sink saw, one event per entry. */
enum kind { FRAME, TOO_LONG, CUT };

struct event {
	enum kind kind;
	char *data; /* FRAME, TOO_LONG */
	size_t len; /* bytes (CUT: discarded) */
	int64_t ts;
};

#define EVENTS_MAX 20000

static struct event events[EVENTS_MAX];
static size_t n_events;

static void record(enum kind kind, const char *data, size_t len, int64_t ts)
{
	struct event *e;

	assert_true(n_events < EVENTS_MAX);
	e = &events[n_events++];
	e->kind = kind;
	e->len = len;
	e->ts = ts;
	e->data = NULL;
	if (data) {
		e->data = malloc(len + 1);
		assert_non_null(e->data);
		memcpy(e->data, data, len);
		e->data[len] = '\0';
	}
}

static void on_frame(void *userdata, char *data, size_t len, int64_t ts)
{
	(void)userdata;
	assert_true(len > 0);
	record(FRAME, data, len, ts);
	/* The spare byte is the sink's to write, and so is the frame. */
	data[len] = 'X';
	memset(data, '#', len);
}

static void on_too_long(void *userdata, const char *head, size_t len, int64_t ts)
{
	(void)userdata;
	record(TOO_LONG, head, len, ts);
}

static void on_cut(void *userdata, size_t bytes)
{
	(void)userdata;
	record(CUT, NULL, bytes, 0);
}

static const struct framer_sink sink = { on_frame, on_too_long, on_cut, NULL };

static void clear_events(void)
{
	for (size_t i = 0; i < n_events; i++)
		free(events[i].data);
	n_events = 0;
}

static int teardown(void **state)
{
	(void)state;
	clear_events();
	return 0;
}

static struct framer *new_framer(enum framer_mode mode, const char *term, size_t term_len,
				 size_t max_frame)
{
	struct framer_conf conf = { .mode = mode,
				    .terminator_len = term_len,
				    .max_frame = max_frame };
	struct framer *f = NULL;

	memcpy(conf.terminator, term, term_len);
	assert_int_equal(framer_new(&conf, &f), 0);
	return f;
}

/* Feed len bytes at data as one read, from an allocation of exactly len bytes. */
static void feed(struct framer *f, const char *data, size_t len, int64_t ts)
{
	char *copy = malloc(len ? len : 1);

	assert_non_null(copy);
	memcpy(copy, data, len);
	framer_feed(f, copy, len, ts, &sink);
	free(copy);
}

static void feed_str(struct framer *f, const char *s, int64_t ts)
{
	feed(f, s, strlen(s), ts);
}

/* A framer in step: as if the line had been quiet since the port was opened. */
static struct framer *in_step(enum framer_mode mode, const char *term, size_t max_frame)
{
	struct framer *f = new_framer(mode, term, strlen(term), max_frame);

	assert_false(framer_in_step(f));
	assert_true(framer_awaits_gap(f));
	framer_gap(f, &sink);
	assert_true(framer_in_step(f));
	assert_int_equal(n_events, 0);
	return f;
}

static void check_event(size_t i, enum kind kind, const char *data, size_t len, int64_t ts)
{
	if (i >= n_events)
		fail_msg("event %zu missing (%zu events)", i, n_events);
	if (events[i].kind != kind)
		fail_msg("event %zu is of kind %d, expected %d", i, events[i].kind, kind);
	assert_int_equal(events[i].len, len);
	if (data && memcmp(events[i].data, data, len) != 0)
		fail_msg("event %zu is \"%s\", expected \"%.*s\"", i, events[i].data, (int)len,
			 data);
	if (kind != CUT)
		assert_int_equal(events[i].ts, ts);
}

static void check_frame(size_t i, const char *text, int64_t ts)
{
	check_event(i, FRAME, text, strlen(text), ts);
}

/* ---- terminators ---- */

static void test_single_byte_terminator(void **state)
{
	struct framer *f = in_step(FRAMER_TERMINATOR, "\n", 100);

	(void)state;
	feed_str(f, "a=1\nb=2\n", 10);
	assert_int_equal(n_events, 2);
	check_frame(0, "a=1", 10);
	check_frame(1, "b=2", 10);
	/* In step and between frames: no gap to wait for. */
	assert_false(framer_awaits_gap(f));
	framer_free(f);
}

static void test_terminator_split_across_reads(void **state)
{
	struct framer *f = in_step(FRAMER_TERMINATOR, "\r\n", 100);

	(void)state;
	feed_str(f, "abc\r", 1);
	assert_int_equal(n_events, 0);
	feed_str(f, "\ndef\r", 2);
	assert_int_equal(n_events, 1);
	check_frame(0, "abc", 1);
	feed_str(f, "\n", 3);
	check_frame(1, "def", 2);
	/* A frame in three reads keeps the time of the first. */
	feed_str(f, "g", 4);
	feed_str(f, "h", 5);
	feed_str(f, "i\r\n", 6);
	check_frame(2, "ghi", 4);
	assert_int_equal(n_events, 3);
	framer_free(f);
}

static void test_partial_match_is_frame_data(void **state)
{
	struct framer *f = in_step(FRAMER_TERMINATOR, "\r\n", 100);

	(void)state;
	/* "\r\r\n": the first \r belongs to the frame. */
	feed_str(f, "x\r\r\n", 1);
	check_frame(0, "x\r", 1);
	/* A lone \r inside a frame, and a \r that ends a read. */
	feed_str(f, "a\rb\r", 2);
	feed_str(f, "c\r\n", 3);
	check_frame(1, "a\rb\rc", 2);
	/* "\r\r\r\n" split after each byte. */
	feed_str(f, "\r", 4);
	feed_str(f, "\r", 5);
	feed_str(f, "\r", 6);
	feed_str(f, "\n", 7);
	check_frame(2, "\r\r", 4);
	assert_int_equal(n_events, 3);
	framer_free(f);
}

static void test_self_overlapping_terminator(void **state)
{
	struct framer *f = in_step(FRAMER_TERMINATOR, "aab", 100);

	(void)state;
	feed_str(f, "Xaaab", 1);
	check_frame(0, "Xa", 1);
	feed_str(f, "aaaab", 2);
	check_frame(1, "aa", 2);
	/* "abab" in "ababab..."-style terminators: "ababc". */
	framer_free(f);
	clear_events();
	f = in_step(FRAMER_TERMINATOR, "ababc", 100);
	feed_str(f, "1abababc2ababc", 1);
	check_frame(0, "1ab", 1);
	check_frame(1, "2", 1);
	assert_int_equal(n_events, 2);
	framer_free(f);
}

static void test_long_terminator(void **state)
{
	const char term[] = "<<END-OF-FRAME>>"; /* 16 bytes, the most */
	struct framer *f;

	(void)state;
	assert_int_equal(strlen(term), FRAMER_TERMINATOR_MAX);
	f = in_step(FRAMER_TERMINATOR, term, 64);
	feed_str(f, "one<<END-OF-FRAME>><<END-OF-FRAME>>two<<END-OF-FRAME", 1);
	feed_str(f, "<<END-OF-FRAME>>", 2);
	check_frame(0, "one", 1);
	check_frame(1, "two<<END-OF-FRAME", 1);
	assert_int_equal(n_events, 2);
	framer_free(f);
}

static void test_binary_terminator_and_nul_bytes(void **state)
{
	struct framer *f = new_framer(FRAMER_TERMINATOR, "\0\xff", 2, 100);

	(void)state;
	framer_gap(f, &sink);
	feed(f, "a\0b\xff\0c\0\xff", 8, 1);
	check_event(0, FRAME, "a\0b\xff\0c", 6, 1);
	assert_int_equal(n_events, 1);
	framer_free(f);
}

static void test_empty_frames_are_dropped(void **state)
{
	struct framer *f = in_step(FRAMER_TERMINATOR, "\r\n", 100);

	(void)state;
	feed_str(f, "\r\n\r\n\r\nx\r\n\r\n", 1);
	assert_int_equal(n_events, 1);
	check_frame(0, "x", 1);
	framer_free(f);
}

/* ---- max_frame ---- */

static void test_max_frame_exactly(void **state)
{
	char line[64];
	struct framer *f = in_step(FRAMER_TERMINATOR, "\r\n", 16);

	(void)state;
	/* 16 bytes: a frame; its terminator split after the \r. */
	feed_str(f, "0123456789abcdef\r", 1);
	assert_int_equal(n_events, 0);
	feed_str(f, "\n", 2);
	check_frame(0, "0123456789abcdef", 1);
	/* "\r" as the 17th byte, then "\r\n": too long; as the 16th: a frame. */
	feed_str(f, "0123456789abcdef\r\r\n", 3);
	check_event(1, TOO_LONG, "0123456789abcdef", 16, 3);
	feed_str(f, "0123456789abcde\r\r\n", 4);
	check_frame(2, "0123456789abcde\r", 4);
	/* 17 bytes in one go: too long, reported once, discarded to the terminator even
	 * over several reads; the next frame is whole. */
	feed_str(f, "0123456789abcdefg", 4);
	check_event(3, TOO_LONG, "0123456789abcdef", 16, 4);
	feed_str(f, "more garbage \r", 5);
	feed_str(f, "still\r", 6);
	feed_str(f, "\nok\r\n", 7);
	check_frame(4, "ok", 7);
	assert_int_equal(n_events, 5);
	/* Byte by byte the same. */
	snprintf(line, sizeof(line), "0123456789abcdefX\r\nlast\r\n");
	for (size_t i = 0; line[i]; i++)
		feed(f, line + i, 1, 100 + (int64_t)i);
	check_event(5, TOO_LONG, "0123456789abcdef", 16, 100);
	check_frame(6, "last", 119);
	assert_int_equal(n_events, 7);
	framer_free(f);
}

static void test_too_long_ends_at_a_terminator_split_over_the_limit(void **state)
{
	struct framer *f = in_step(FRAMER_TERMINATOR, "\r\n", 4);

	(void)state;
	/* "abcd\r" may still be a whole frame ... */
	feed_str(f, "abcd\r", 1);
	assert_int_equal(n_events, 0);
	/* ... until a second \r makes the first frame data: too long, while the second
	 * may start the terminator, which then ends the discarding at once. */
	feed_str(f, "\r", 2);
	check_event(0, TOO_LONG, "abcd", 4, 1);
	feed_str(f, "\nok\r\n", 3);
	check_frame(1, "ok", 3);
	assert_int_equal(n_events, 2);
	framer_free(f);
	clear_events();

	/* A broken match of a longer terminator: "abcdEN" then "x". */
	f = in_step(FRAMER_TERMINATOR, "END", 4);
	feed_str(f, "abcdEN", 1);
	assert_int_equal(n_events, 0);
	feed_str(f, "x", 2);
	check_event(0, TOO_LONG, "abcd", 4, 1);
	feed_str(f, "yEND", 3);
	feed_str(f, "ok!END", 4);
	check_frame(1, "ok!", 4);
	assert_int_equal(n_events, 2);
	framer_free(f);
}

/* ---- starting out of step ---- */

static void test_start_discards_up_to_the_first_terminator(void **state)
{
	struct framer *f = new_framer(FRAMER_TERMINATOR, "\n", 1, 100);

	(void)state;
	assert_false(framer_in_step(f));
	/* Opened in the middle of "temp=21.5": the rest is no frame. */
	feed_str(f, "mp=21.5\nt=1\n", 1);
	assert_true(framer_in_step(f));
	check_event(0, CUT, NULL, 7, 0);
	check_frame(1, "t=1", 1);
	assert_int_equal(n_events, 2);
	/* A terminator first: nothing was cut. */
	framer_reset(f);
	feed_str(f, "\nu=2\n", 2);
	check_frame(2, "u=2", 2);
	assert_int_equal(n_events, 3);
	/* A quiet line after opening: the first byte starts a frame. */
	framer_reset(f);
	framer_gap(f, &sink);
	feed_str(f, "v=3\n", 3);
	check_frame(3, "v=3", 3);
	/* Bytes, then quiet: those were a cut frame (its terminator lost). */
	framer_reset(f);
	feed_str(f, "w=4", 4);
	assert_true(framer_awaits_gap(f));
	framer_gap(f, &sink);
	check_event(4, CUT, NULL, 3, 0);
	assert_false(framer_awaits_gap(f));
	assert_int_equal(n_events, 5);
	framer_free(f);
}

static void test_start_too_long_out_of_step(void **state)
{
	struct framer *f = new_framer(FRAMER_TERMINATOR, "\n", 1, 16);

	(void)state;
	/* No terminator in more than max_frame bytes: that is worth a report. */
	feed_str(f, "0123456789abcdefgh", 1);
	check_event(0, TOO_LONG, "0123456789abcdef", 16, 1);
	feed_str(f, "ij\nk\n", 2);
	check_frame(1, "k", 2);
	assert_int_equal(n_events, 2);
	framer_free(f);
}

static void test_discard_reports_a_partial_frame(void **state)
{
	struct framer *f = in_step(FRAMER_TERMINATOR, "\r\n", 100);

	(void)state;
	feed_str(f, "half a li", 1);
	framer_discard(f, &sink);
	check_event(0, CUT, NULL, 9, 0);
	/* Out of step again, as after the next open. */
	assert_false(framer_in_step(f));
	framer_discard(f, &sink);
	assert_int_equal(n_events, 1);
	framer_free(f);
}

/* ---- idle-gap framing ---- */

static void test_idle_frames_end_at_gaps(void **state)
{
	struct framer *f = in_step(FRAMER_IDLE, "", 100);

	(void)state;
	assert_false(framer_awaits_gap(f));
	feed_str(f, "ab", 1);
	assert_true(framer_awaits_gap(f));
	feed_str(f, "c\nd", 2);
	assert_int_equal(n_events, 0);
	framer_gap(f, &sink);
	check_frame(0, "abc\nd", 1);
	assert_false(framer_awaits_gap(f));
	/* A gap with nothing pending changes nothing. */
	framer_gap(f, &sink);
	assert_int_equal(n_events, 1);
	feed_str(f, "e", 3);
	framer_gap(f, &sink);
	check_frame(1, "e", 3);
	framer_free(f);
}

static void test_idle_max_frame(void **state)
{
	struct framer *f = in_step(FRAMER_IDLE, "", 16);

	(void)state;
	feed_str(f, "0123456789abcdef", 1);
	framer_gap(f, &sink);
	check_frame(0, "0123456789abcdef", 1);
	/* 17 bytes over two reads: reported once, discarded to the gap. */
	feed_str(f, "0123456789", 2);
	feed_str(f, "abcdefg", 3);
	check_event(1, TOO_LONG, "0123456789abcdef", 16, 2);
	feed_str(f, "more", 4);
	assert_true(framer_awaits_gap(f));
	framer_gap(f, &sink);
	assert_int_equal(n_events, 2);
	feed_str(f, "next", 5);
	framer_gap(f, &sink);
	check_frame(2, "next", 5);
	framer_free(f);
}

static void test_idle_start_out_of_step(void **state)
{
	struct framer *f = new_framer(FRAMER_IDLE, "", 0, 100);

	(void)state;
	feed_str(f, "tail of a frame", 1);
	framer_gap(f, &sink);
	check_event(0, CUT, NULL, 15, 0);
	feed_str(f, "whole", 2);
	framer_gap(f, &sink);
	check_frame(1, "whole", 2);
	assert_int_equal(n_events, 2);
	framer_free(f);
}

static void test_invalid_conf(void **state)
{
	struct framer_conf conf = { .mode = FRAMER_TERMINATOR,
				    .terminator_len = 1,
				    .max_frame = 0 };
	struct framer *f = NULL;

	(void)state;
	assert_int_equal(framer_new(&conf, &f), -EINVAL);
	conf.max_frame = 10;
	conf.terminator_len = 0;
	assert_int_equal(framer_new(&conf, &f), -EINVAL);
	conf.terminator_len = FRAMER_TERMINATOR_MAX + 1;
	assert_int_equal(framer_new(&conf, &f), -EINVAL);
	conf.mode = (enum framer_mode)7;
	conf.terminator_len = 1;
	assert_int_equal(framer_new(&conf, &f), -EINVAL);
	assert_null(f);
	/* An idle framer needs no terminator. */
	conf.mode = FRAMER_IDLE;
	conf.terminator_len = 0;
	assert_int_equal(framer_new(&conf, &f), 0);
	framer_free(f);
	framer_free(NULL);
}

/* ---- random streams against a reference ---- */

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
	/* xorshift64*: repeatable from COAPGATE_TEST_SEED */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32) % n;
}

/* The longest proper prefix of term that ends s (the start of a terminator that may
 * still come). */
static size_t pending_match(const char *s, size_t len, const char *term, size_t tlen)
{
	for (size_t k = tlen - 1; k > 0; k--)
		if (k <= len && memcmp(s + len - k, term, k) == 0)
			return k;
	return 0;
}

/*
 * What the framer must report for stream, with the plain definition: a frame is what
 * lies before the next occurrence of the terminator (memmem); the first one after
 * the start is cut; longer than max_frame is too long; empty ones are dropped. Bytes
 * after the last terminator are pending and reported as cut by framer_discard(),
 * unless they are too long without the start of a terminator at their end.
 */
static size_t reference(const char *stream, size_t len, const char *term, size_t tlen,
			size_t max_frame, struct event *out)
{
	size_t pos = 0, n = 0;
	bool first = true;

	for (;;) {
		const char *hit = memmem(stream + pos, len - pos, term, tlen);
		size_t flen = hit ? (size_t)(hit - stream) - pos : len - pos;

		size_t definite = hit ? flen : flen - pending_match(stream + pos, flen, term, tlen);

		if (definite > max_frame) {
			out[n++] = (struct event){ TOO_LONG, (char *)stream + pos, max_frame, 0 };
		} else if (!hit) {
			if (flen)
				out[n++] = (struct event){ CUT, NULL, flen, 0 };
		} else if (first) {
			if (flen)
				out[n++] = (struct event){ CUT, NULL, flen, 0 };
		} else if (flen) {
			out[n++] = (struct event){ FRAME, (char *)stream + pos, flen, 0 };
		}
		if (!hit)
			return n;
		first = false;
		pos += flen + tlen;
	}
}

static void test_random_streams_against_reference(void **state)
{
	static struct event expected[EVENTS_MAX];
	static const char alphabet[] = "ab\r\n\0";
	const char *seed_text = getenv("COAPGATE_TEST_SEED");
	uint64_t seed = seed_text ? strtoull(seed_text, NULL, 0) : 0x5e71a1;

	(void)state;
	rng_state = seed ? seed : 1;
	print_message("seed %#llx (COAPGATE_TEST_SEED repeats it)\n", (unsigned long long)seed);
	for (int round = 0; round < 3000; round++) {
		char term[4], stream[600];
		size_t tlen = 1 + rnd(3), len = rnd(sizeof(stream)), max_frame = 1 + rnd(40);
		size_t n_expected, pos = 0;
		struct framer *f;

		/* Small alphabets make partial and overlapping matches common. */
		for (size_t i = 0; i < tlen; i++)
			term[i] = alphabet[rnd(sizeof(alphabet) - 1)];
		for (size_t i = 0; i < len; i++)
			stream[i] = rnd(4) == 0 ? term[rnd((uint32_t)tlen)]
						: alphabet[rnd(sizeof(alphabet) - 1)];
		n_expected = reference(stream, len, term, tlen, max_frame, expected);
		f = new_framer(FRAMER_TERMINATOR, term, tlen, max_frame);
		while (pos < len) {
			size_t piece = 1 + rnd(rnd(2) ? 8 : 200);

			if (piece > len - pos)
				piece = len - pos;
			feed(f, stream + pos, piece, (int64_t)pos);
			pos += piece;
		}
		framer_discard(f, &sink);
		framer_free(f);
		if (n_events != n_expected)
			fail_msg("round %d: %zu events, expected %zu", round, n_events, n_expected);
		for (size_t i = 0; i < n_events; i++) {
			if (events[i].kind != expected[i].kind ||
			    events[i].len != expected[i].len ||
			    (expected[i].data &&
			     memcmp(events[i].data, expected[i].data, expected[i].len) != 0))
				fail_msg(
				    "round %d: event %zu is kind %d of %zu bytes, expected kind %d "
				    "of %zu",
				    round, i, events[i].kind, events[i].len, expected[i].kind,
				    expected[i].len);
			/* The first byte's read: the read that held stream[start]. */
			if (events[i].kind != CUT)
				assert_true(events[i].ts <= expected[i].data - stream);
		}
		clear_events();
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_single_byte_terminator, teardown),
		cmocka_unit_test_teardown(test_terminator_split_across_reads, teardown),
		cmocka_unit_test_teardown(test_partial_match_is_frame_data, teardown),
		cmocka_unit_test_teardown(test_self_overlapping_terminator, teardown),
		cmocka_unit_test_teardown(test_long_terminator, teardown),
		cmocka_unit_test_teardown(test_binary_terminator_and_nul_bytes, teardown),
		cmocka_unit_test_teardown(test_empty_frames_are_dropped, teardown),
		cmocka_unit_test_teardown(test_max_frame_exactly, teardown),
		cmocka_unit_test_teardown(test_too_long_ends_at_a_terminator_split_over_the_limit,
					  teardown),
		cmocka_unit_test_teardown(test_start_discards_up_to_the_first_terminator, teardown),
		cmocka_unit_test_teardown(test_start_too_long_out_of_step, teardown),
		cmocka_unit_test_teardown(test_discard_reports_a_partial_frame, teardown),
		cmocka_unit_test_teardown(test_idle_frames_end_at_gaps, teardown),
		cmocka_unit_test_teardown(test_idle_max_frame, teardown),
		cmocka_unit_test_teardown(test_idle_start_out_of_step, teardown),
		cmocka_unit_test_teardown(test_invalid_conf, teardown),
		cmocka_unit_test_teardown(test_random_streams_against_reference, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
