// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the serial input's framer and formats (plugins/serial: framer.c,
 * frame.c, parse_*.c, value.c), as the run loop drives them: bytes from the line are
 * cut into frames and each frame is parsed.
 *
 * Input: four control bytes, then the bytes of the line.
 *   [0] low three bits: the format (json, kv, csv, regex, nmea; 5-7 wrap);
 *       bit 3: idle-gap framing instead of a terminator
 *   [1] max_frame: 16 + [1]
 *   [2] terminator: its length, 1 + [2] % 4, taken from the first bytes of the line
 *       (which are then also line bytes: the terminator is in the stream by design)
 *   [3] seed of the read sizes (1 to 64 bytes) and, for idle framing, of the gaps
 *
 * Checks:
 * - terminator framing: the line fed in reads of varying size gives exactly the events
 *   of the line fed in one read (frames, too-long heads, cut bytes), and no frame holds
 *   the terminator or is longer than max_frame, nor is empty;
 * - every frame, parsed twice from fresh copies (heap buffers of exactly len + 1 bytes):
 *   an accepted one passes reading_validate() with fields that point into the frame (a
 *   regex's strings may be copies) and the second parse gives the same reading bit for
 *   bit; a rejected one has a printable reason; the result is the same both times;
 * - the hex preview never writes past a buffer of any size.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats.h"
#include "framer.h"
#include "fuzz_check.h"
#include "reading.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define EVENTS_MAX 4096

enum kind { FRAME, TOO_LONG, CUT };

struct event {
	enum kind kind;
	char *data;
	size_t len;
	int64_t ts;
};

struct events {
	struct event e[EVENTS_MAX];
	size_t n;
	bool overflow;
};

static void record(struct events *ev, enum kind kind, const char *data, size_t len, int64_t ts)
{
	struct event *e;

	if (ev->n == EVENTS_MAX) {
		ev->overflow = true;
		return;
	}
	e = &ev->e[ev->n++];
	*e = (struct event){ .kind = kind, .len = len, .ts = ts };
	if (data) {
		e->data = malloc(len ? len : 1);
		CHECK(e->data);
		memcpy(e->data, data, len);
	}
}

static void on_frame(void *userdata, char *data, size_t len, int64_t ts)
{
	/* The spare byte is writable; ASan tells if not. */
	data[len] = '\0';
	record(userdata, FRAME, data, len, ts);
}

static void on_too_long(void *userdata, const char *head, size_t len, int64_t ts)
{
	record(userdata, TOO_LONG, head, len, ts);
}

static void on_cut(void *userdata, size_t bytes)
{
	record(userdata, CUT, NULL, bytes, -1);
}

static void free_events(struct events *ev)
{
	for (size_t i = 0; i < ev->n; i++)
		free(ev->e[i].data);
	ev->n = 0;
}

static uint32_t next_random(uint32_t *state)
{
	*state = *state * 1103515245u + 12345u;
	return *state >> 16;
}

static const struct field_spec kv_types[] = {
	{ "n", VALUE_I64 },
	{ "s", VALUE_STRING },
	{ "b", VALUE_BOOL },
	{ "x", VALUE_SKIP },
};
static const struct field_spec csv_columns[] = {
	{ "a", VALUE_F64 },  { NULL, VALUE_SKIP },  { "c", VALUE_I64 },
	{ "d", VALUE_BOOL }, { "e", VALUE_STRING },
};
static const struct field_spec regex_types[] = {
	{ "s", VALUE_STRING }, { "n", VALUE_I64 },    { "all", VALUE_STRING },
	{ "x", VALUE_STRING }, { "y", VALUE_STRING },
};
static const char regex_pattern[] =
    "^(?<a>[-+0-9.e]+),(?<s>[^,]*)(,(?<n>[0-9]+))?(,(?<all>(?<x>[a-z]+)-(?<y>[a-z]+)))?$";

static struct regex_format *regex;

static bool points_into(const char *p, const char *start, size_t len)
{
	return p >= start && p <= start + len;
}

static bool same_field(const struct cg_field *x, const struct cg_field *y)
{
	if (strcmp(x->name, y->name) != 0 || x->type != y->type)
		return false;
	switch (x->type) {
	case CG_FIELD_F64:
		return memcmp(&x->value.f64, &y->value.f64, sizeof(double)) == 0;
	case CG_FIELD_I64:
		return x->value.i64 == y->value.i64;
	case CG_FIELD_BOOL:
		return x->value.b == y->value.b;
	case CG_FIELD_STRING:
		return strcmp(x->value.str, y->value.str) == 0;
	}
	return false;
}

/* Parse a fresh copy of the frame; returns the result, the copy stays in *ret_copy. */
static int parse_copy(const struct frame_format *ff, const char *frame, size_t len,
		      struct message *m, char **ret_copy, char *why, size_t why_size)
{
	char *copy = malloc(len + 1);

	CHECK(copy);
	memcpy(copy, frame, len);
	copy[len] = 'Z';
	*ret_copy = copy;
	return frame_parse(ff, copy, len, m, why, why_size);
}

static void check_frame(const struct frame_format *ff, const char *frame, size_t len)
{
	static struct message m1, m2;
	char why1[256], why2[256], *c1, *c2;
	int r1, r2;

	r1 = parse_copy(ff, frame, len, &m1, &c1, why1, sizeof(why1));
	r2 = parse_copy(ff, frame, len, &m2, &c2, why2, sizeof(why2));
	CHECK(r1 == r2);
	if (r1 < 0) {
		CHECK(r1 == -EINVAL);
		CHECK(strlen(why1) > 0 && is_printable(why1));
		CHECK(strcmp(why1, why2) == 0);
	} else if (r1 == FRAME_READING) {
		char vwhy[256];

		CHECK(reading_validate(&m1.reading, vwhy, sizeof(vwhy)) == 0);
		CHECK(m1.reading.n_fields == m2.reading.n_fields);
		CHECK(m1.reading.timestamp_ms == m2.reading.timestamp_ms);
		CHECK(!m1.reading.topic == !m2.reading.topic);
		if (m1.reading.topic)
			CHECK(points_into(m1.reading.topic, c1, len));
		for (size_t i = 0; i < m1.reading.n_fields; i++) {
			const struct cg_field *f = &m1.reading.fields[i];

			CHECK(same_field(f, &m2.reading.fields[i]));
			/* Names are the configuration's or the frame's. */
			if (ff->format == FORMAT_JSON || ff->format == FORMAT_KV)
				CHECK(points_into(f->name, c1, len));
			if (f->type == CG_FIELD_STRING && ff->format != FORMAT_REGEX)
				CHECK(points_into(f->value.str, c1, len));
		}
	}
	free(c1);
	free(c2);
}

static void check_preview(const char *frame, size_t len, uint32_t *rnd)
{
	size_t size = next_random(rnd) % 120, max = next_random(rnd) % 40;
	char *out = malloc(size ? size : 1);

	CHECK(out);
	hex_preview(frame, len, max, out, size);
	if (size)
		CHECK(memchr(out, '\0', size));
	free(out);
}

static void run_framer(const struct framer_conf *conf, const char *line, size_t len, uint32_t seed,
		       bool one_read, struct events *ev)
{
	const struct framer_sink sink = { on_frame, on_too_long, on_cut, ev };
	struct framer *f = NULL;
	size_t pos = 0;

	CHECK(framer_new(conf, &f) == 0);
	/* Half of the runs start in step, as after a quiet line. */
	if (seed & 1)
		framer_gap(f, &sink);
	while (pos < len) {
		size_t piece = one_read ? len - pos : 1 + next_random(&seed) % 64;
		char *copy;

		if (piece > len - pos)
			piece = len - pos;
		/* Each read in its own allocation, so that ASan sees a read past it. */
		copy = malloc(piece);
		CHECK(copy);
		memcpy(copy, line + pos, piece);
		framer_feed(f, copy, piece, (int64_t)pos, &sink);
		free(copy);
		pos += piece;
		if (conf->mode == FRAMER_IDLE && next_random(&seed) % 4 == 0)
			framer_gap(f, &sink);
	}
	framer_discard(f, &sink);
	framer_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct events chunked, whole;
	struct framer_conf conf = { 0 };
	struct frame_format ff = { 0 };
	const char *line;
	uint32_t seed, rnd;
	size_t len;
	char why[256];

	if (size < 4)
		return 0;
	if (!regex)
		CHECK(regex_format_new(regex_pattern, regex_types, 5, &regex, why, sizeof(why)) ==
		      0);
	ff.format = (enum serial_format)((data[0] & 7) % 5);
	ff.kv = (struct kv_format){ " \t\r\n,;", "=", kv_types, 4 };
	ff.csv = (struct csv_format){ ',', csv_columns, 5 };
	ff.regex = regex;
	conf.mode = data[0] & 8 ? FRAMER_IDLE : FRAMER_TERMINATOR;
	conf.max_frame = 16 + data[1];
	line = (const char *)data + 4;
	len = size - 4;
	conf.terminator_len = 1 + data[2] % 4;
	if (conf.mode == FRAMER_TERMINATOR) {
		if (len < conf.terminator_len)
			return 0;
		memcpy(conf.terminator, line, conf.terminator_len);
	}
	seed = data[3] * 2654435761u;

	run_framer(&conf, line, len, seed, false, &chunked);
	if (conf.mode == FRAMER_TERMINATOR) {
		run_framer(&conf, line, len, seed, true, &whole);
		CHECK(chunked.overflow == whole.overflow);
		CHECK(chunked.n == whole.n);
		for (size_t i = 0; i < chunked.n; i++) {
			const struct event *a = &chunked.e[i], *b = &whole.e[i];

			CHECK(a->kind == b->kind && a->len == b->len);
			if (a->data)
				CHECK(memcmp(a->data, b->data, a->len) == 0);
			if (a->kind == FRAME)
				CHECK(
				    !memmem(a->data, a->len, conf.terminator, conf.terminator_len));
		}
		free_events(&whole);
	}
	rnd = seed;
	for (size_t i = 0; i < chunked.n; i++) {
		const struct event *e = &chunked.e[i];

		if (e->kind == FRAME) {
			CHECK(e->len >= 1 && e->len <= conf.max_frame);
			check_frame(&ff, e->data, e->len);
			check_preview(e->data, e->len, &rnd);
		} else if (e->kind == TOO_LONG) {
			CHECK(e->len == conf.max_frame);
		}
	}
	free_events(&chunked);
	return 0;
}
