/* SPDX-License-Identifier: MIT */
/*
 * Bytes from a serial line cut into frames, by a terminator (any byte sequence) or by
 * the line falling quiet (idle-gap framing). Pure: no I/O, no clock, no daemon; the
 * caller feeds what read() returned with the time of that read, and tells the framer
 * when the line has been quiet for the idle gap.
 *
 * A frame is at most max_frame bytes, without its terminator. A longer one is reported
 * once, with its first max_frame bytes, and the rest of it is discarded up to its end
 * (the next terminator, or the next gap). Empty frames (two terminators in a row) are
 * dropped without a word.
 *
 * The framer starts out of step: a device that was talking when the port was opened
 * may have been in the middle of a frame, so the bytes up to the first end of a frame
 * (a terminator, or a gap in either mode) are discarded and reported as cut rather
 * than parsed as a frame that lost its head. A line that is quiet for a gap after
 * opening is in step at once.
 */
#ifndef SERIAL_FRAMER_H
#define SERIAL_FRAMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest terminator: enough for any protocol's end-of-frame mark. */
#define FRAMER_TERMINATOR_MAX 16

enum framer_mode {
	FRAMER_TERMINATOR, /* a frame ends at the terminator */
	FRAMER_IDLE,	   /* a frame ends when the line falls quiet */
};

struct framer_conf {
	enum framer_mode mode;
	char terminator[FRAMER_TERMINATOR_MAX]; /* FRAMER_TERMINATOR only */
	size_t terminator_len;			/* 1..FRAMER_TERMINATOR_MAX */
	size_t max_frame;			/* at least 1 */
};

/*
 * What the framer tells its caller, from within framer_feed() and framer_gap().
 * first_byte_ms is the now_ms of the framer_feed() call that delivered the frame's
 * first byte.
 */
struct framer_sink {
	/* A frame of len bytes (len >= 1) at data, in the framer's buffer: data[len] is
	 * one more writable byte, and the sink may change the frame in place. Both are
	 * valid until the sink returns. */
	void (*frame)(void *userdata, char *data, size_t len, int64_t first_byte_ms);
	/* A frame grew past max_frame: its first head_len (= max_frame) bytes. The rest of
	 * it is discarded. */
	void (*too_long)(void *userdata, const char *head, size_t head_len, int64_t first_byte_ms);
	/* bytes were discarded as a frame cut short: received out of step, or pending at
	 * framer_discard(). */
	void (*cut)(void *userdata, size_t bytes);
	void *userdata;
};

struct framer;

/*
 * A framer for conf (copied), out of step. Returns 0, -EINVAL for a conf outside the
 * limits above, or -ENOMEM. Does not log.
 */
int framer_new(const struct framer_conf *conf, struct framer **ret);

/* framer_free(NULL) is a no-op. */
void framer_free(struct framer *f);

/* Forget everything and start out of step, as after opening the port. */
void framer_reset(struct framer *f);

/* The len bytes at data, as read at now_ms. Calls sink for each event, in order. */
void framer_feed(struct framer *f, const char *data, size_t len, int64_t now_ms,
		 const struct framer_sink *sink);

/*
 * The line has been quiet for the idle gap since the last byte fed (or since the reset).
 * Ends a frame in idle mode, and brings the framer in step in both modes.
 */
void framer_gap(struct framer *f, const struct framer_sink *sink);

/* True when framer_gap() would change anything: the caller should time the gap. */
bool framer_awaits_gap(const struct framer *f);

/* True once the framer has seen the end of a frame, or a gap, since its reset. */
bool framer_in_step(const struct framer *f);

/*
 * Drop the frame in progress, if any, as cut (the port closes under it), and start
 * out of step again.
 */
void framer_discard(struct framer *f, const struct framer_sink *sink);

#endif
