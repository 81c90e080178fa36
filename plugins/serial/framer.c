// SPDX-License-Identifier: MIT
/*
 * Frames from a byte stream; see framer.h.
 *
 * The terminator is found with the Knuth-Morris-Pratt automaton rather than by
 * comparing the last bytes: the match state carries over from one read to the next
 * and through a discarded frame, and a terminator that overlaps itself ("\r\r\n" for
 * "\r\n", "aab" in "aaab") is found where it ends. Runs of bytes that cannot start a
 * terminator are copied with memchr() and memcpy(), so a long line costs little more
 * than its copy.
 */
#include "framer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum framer_state {
	COLLECTING, /* bytes go into buf */
	DISCARDING, /* a frame that is too long: its bytes are dropped until it ends */
};

struct framer {
	struct framer_conf conf;
	/* fail[k]: the longest proper prefix of terminator[0..k] that is also its suffix */
	size_t fail[FRAMER_TERMINATOR_MAX];
	enum framer_state state;
	bool in_step;
	size_t matched; /* terminator bytes matched at the end of what was fed */
	size_t len;	/* bytes in buf, a partial terminator match included */
	int64_t first_byte_ms;
	char buf[]; /* max_frame + FRAMER_TERMINATOR_MAX + 1 */
};

#define MIN(a, b) ((a) < (b) ? (a) : (b))

static void compute_failure(struct framer *f)
{
	const char *t = f->conf.terminator;
	size_t k = 0;

	f->fail[0] = 0;
	for (size_t i = 1; i < f->conf.terminator_len; i++) {
		while (k > 0 && t[i] != t[k])
			k = f->fail[k - 1];
		if (t[i] == t[k])
			k++;
		f->fail[i] = k;
	}
}

int framer_new(const struct framer_conf *conf, struct framer **ret)
{
	struct framer *f;

	if (conf->max_frame == 0 || conf->max_frame > SIZE_MAX / 2)
		return -EINVAL;
	if (conf->mode == FRAMER_TERMINATOR &&
	    (conf->terminator_len == 0 || conf->terminator_len > FRAMER_TERMINATOR_MAX))
		return -EINVAL;
	if (conf->mode != FRAMER_TERMINATOR && conf->mode != FRAMER_IDLE)
		return -EINVAL;
	f = calloc(1, sizeof(*f) + conf->max_frame + FRAMER_TERMINATOR_MAX + 1);
	if (!f)
		return -ENOMEM;
	f->conf = *conf;
	if (conf->mode == FRAMER_TERMINATOR)
		compute_failure(f);
	framer_reset(f);
	*ret = f;
	return 0;
}

void framer_free(struct framer *f)
{
	free(f);
}

void framer_reset(struct framer *f)
{
	f->state = COLLECTING;
	f->in_step = false;
	f->matched = 0;
	f->len = 0;
	f->first_byte_ms = 0;
}

bool framer_in_step(const struct framer *f)
{
	return f->in_step;
}

bool framer_awaits_gap(const struct framer *f)
{
	if (!f->in_step)
		return true;
	return f->conf.mode == FRAMER_IDLE && (f->state == DISCARDING || f->len > 0);
}

/* A frame of frame_len bytes at the start of buf has ended. */
static void end_frame(struct framer *f, size_t frame_len, const struct framer_sink *sink)
{
	f->len = 0;
	if (!f->in_step) {
		/* It began before the port was opened, or so it may have. */
		f->in_step = true;
		if (frame_len > 0)
			sink->cut(sink->userdata, frame_len);
		return;
	}
	if (frame_len > 0)
		sink->frame(sink->userdata, f->buf, frame_len, f->first_byte_ms);
}

static void too_long(struct framer *f, const struct framer_sink *sink)
{
	sink->too_long(sink->userdata, f->buf, f->conf.max_frame, f->first_byte_ms);
	f->state = DISCARDING;
	f->len = 0;
}

static size_t match_step(const struct framer *f, size_t matched, char b)
{
	const char *t = f->conf.terminator;

	while (matched > 0 && t[matched] != b)
		matched = f->fail[matched - 1];
	if (t[matched] == b)
		matched++;
	return matched;
}

static void append(struct framer *f, const char *data, size_t n, int64_t now_ms)
{
	if (f->len == 0)
		f->first_byte_ms = now_ms;
	memcpy(f->buf + f->len, data, n);
	f->len += n;
}

/*
 * Collecting, with no partial terminator match: take the run of bytes before the next
 * byte that could start a terminator, as far as max_frame allows. Returns its length.
 */
static size_t collect_run(struct framer *f, const char *data, size_t len, int64_t now_ms,
			  const struct framer_sink *sink)
{
	/* len - matched <= max_frame holds here, and matched is 0. */
	size_t n = MIN(len, f->conf.max_frame + 1 - f->len);
	const char *stop = memchr(data, f->conf.terminator[0], n);
	size_t run = stop ? (size_t)(stop - data) : n;

	if (run == 0)
		return 0;
	append(f, data, run, now_ms);
	if (f->len > f->conf.max_frame)
		too_long(f, sink);
	return run;
}

static void feed_terminated(struct framer *f, const char *data, size_t len, int64_t now_ms,
			    const struct framer_sink *sink)
{
	size_t tlen = f->conf.terminator_len;
	size_t i = 0;

	while (i < len) {
		if (f->matched == 0) {
			const char *stop;

			if (f->state == COLLECTING) {
				i += collect_run(f, data + i, len - i, now_ms, sink);
				if (i == len || f->state != COLLECTING)
					continue;
			} else {
				stop = memchr(data + i, f->conf.terminator[0], len - i);
				if (!stop)
					return;
				i = (size_t)(stop - data);
			}
		}
		/* One byte that extends, starts or breaks a terminator match. */
		f->matched = match_step(f, f->matched, data[i]);
		if (f->state == COLLECTING)
			append(f, data + i, 1, now_ms);
		i++;
		if (f->matched == tlen) {
			f->matched = 0;
			if (f->state == DISCARDING) {
				f->state = COLLECTING;
				f->in_step = true;
			} else {
				end_frame(f, f->len - tlen, sink);
			}
		} else if (f->state == COLLECTING && f->len - f->matched > f->conf.max_frame) {
			/* A broken match turned terminator bytes into frame bytes. */
			too_long(f, sink);
		}
	}
}

static void feed_idle(struct framer *f, const char *data, size_t len, int64_t now_ms,
		      const struct framer_sink *sink)
{
	size_t n;

	if (f->state == DISCARDING || len == 0)
		return;
	n = MIN(len, f->conf.max_frame + 1 - f->len);
	append(f, data, n, now_ms);
	if (f->len > f->conf.max_frame)
		too_long(f, sink);
}

void framer_feed(struct framer *f, const char *data, size_t len, int64_t now_ms,
		 const struct framer_sink *sink)
{
	if (f->conf.mode == FRAMER_TERMINATOR)
		feed_terminated(f, data, len, now_ms, sink);
	else
		feed_idle(f, data, len, now_ms, sink);
}

void framer_gap(struct framer *f, const struct framer_sink *sink)
{
	if (f->conf.mode == FRAMER_IDLE) {
		if (f->state == DISCARDING) {
			f->state = COLLECTING;
			f->in_step = true;
		} else {
			end_frame(f, f->len, sink);
		}
		return;
	}
	/* A terminated frame does not end at a gap; only the start-up discard does. */
	if (f->in_step)
		return;
	if (f->state == COLLECTING)
		end_frame(f, f->len, sink);
	f->state = COLLECTING;
	f->matched = 0;
	f->len = 0;
	f->in_step = true;
}

void framer_discard(struct framer *f, const struct framer_sink *sink)
{
	if (f->state == COLLECTING && f->len > 0)
		sink->cut(sink->userdata, f->len);
	framer_reset(f);
}
