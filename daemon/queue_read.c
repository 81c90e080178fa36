// SPDX-License-Identifier: MIT
/*
 * The consumer side of the queue: the uplink reads durable readings in seq order from
 * the oldest unacknowledged one, frame by frame with pread(), and acks what 1NCE OS
 * took. Segments of sealed data are checked here, when read, not at start-up; a frame
 * that fails its check is skipped by looking for the next frame that validates, and
 * the readings in between are counted as lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "queue_internal.h"
#include "util.h"

struct queue_reader {
	struct queue *q;
	uint64_t next_seq; /* the next seq to deliver */

	/* The segment being read, opened by the reader: deletion cannot pull it away. */
	int fd;
	uint64_t seg_base;
	uint64_t seg_last; /* last seq the segment holds, as far as known */
	uint64_t salt;
	size_t off;	   /* of the next frame */
	uint64_t expected; /* first_seq the next frame must have */

	uint8_t *frame;
	size_t frame_cap;
	bool in_frame;
	uint64_t frame_seq; /* seq of the next reading the decoder returns */
	struct queue_decoder *dec;
};

int queue_reader_new(struct queue *q, struct queue_reader **ret)
{
	struct queue_reader *r = xcalloc(1, sizeof(*r));

	r->q = q;
	r->fd = -1;
	r->dec = xmalloc(sizeof(*r->dec));
	queue_reader_rewind(r);
	*ret = r;
	return 0;
}

void queue_reader_free(struct queue_reader *r)
{
	if (!r)
		return;
	safe_close(r->fd);
	free(r->frame);
	free(r->dec);
	free(r);
}

static void leave_segment(struct queue_reader *r)
{
	r->fd = safe_close(r->fd);
	r->seg_base = 0;
	r->in_frame = false;
}

/*
 * Done with the current segment, whatever is left in it: what it should still hold is
 * lost. next_seq moves past the segment for good, so that it is never entered again
 * in this pass and the reader always makes progress.
 */
static void finish_segment(struct queue_reader *r, const char *why);

void queue_reader_rewind(struct queue_reader *r)
{
	pthread_mutex_lock(&r->q->state_lock);
	r->next_seq = r->q->acked_seq + 1;
	pthread_mutex_unlock(&r->q->state_lock);
	leave_segment(r);
}

static void count_lost(struct queue_reader *r, uint64_t first, uint64_t last, const char *why)
{
	struct queue *q = r->q;
	uint64_t fresh;

	if (first > last)
		return;
	/* Once per range, also across rewinds and restarts: the committer saves the
	 * ranges in the checkpoint. */
	pthread_mutex_lock(&q->state_lock);
	q->read_gaps.acked_seq = q->acked_seq;
	fresh = queue_checkpoint_add_gap(&q->read_gaps, first, last);
	q->lost += fresh;
	q->lost_unsaved += fresh;
	pthread_mutex_unlock(&q->state_lock);
	if (fresh)
		log_error("queue: lost %" PRIu64 " readings in seq %" PRIu64 "..%" PRIu64 ": %s",
			  fresh, first, last, why);
}

static int open_segment(struct queue *q, uint64_t base)
{
	char name[64];
	int fd;

	queue_segment_name(name, sizeof(name), base, false);
	fd = openat(q->dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
}

static void finish_segment(struct queue_reader *r, const char *why)
{
	if (r->next_seq <= r->seg_last) {
		count_lost(r, r->next_seq, r->seg_last, why);
		r->next_seq = r->seg_last == UINT64_MAX ? UINT64_MAX : r->seg_last + 1;
	}
	leave_segment(r);
}

/*
 * Open the segment that holds next_seq (or the first one after it). Returns 1, 0 when
 * no segment holds anything at or after next_seq yet, or a negative errno.
 */
static int enter_segment(struct queue_reader *r, size_t *ret_end)
{
	struct queue *q = r->q;
	int found = 0;

	pthread_mutex_lock(&q->state_lock);
	for (size_t i = 0; i < q->n_segments; i++) {
		const struct segment *s = &q->segments[i];

		if (s->last_seq < r->next_seq || s->last_seq < s->base_seq)
			continue;
		r->fd = open_segment(q, s->base_seq);
		if (r->fd < 0) {
			/* Deleted since (acknowledged or dropped): the next one, if any. */
			if (r->fd == -ENOENT)
				continue;
			found = r->fd;
			r->fd = -1;
			break;
		}
		r->seg_base = s->base_seq;
		r->seg_last = s->last_seq;
		r->salt = s->salt;
		r->off = QUEUE_HEADER_BLOCK;
		r->expected = s->base_seq;
		*ret_end = s->end;
		found = 1;
		break;
	}
	pthread_mutex_unlock(&q->state_lock);
	return found;
}

/* The current segment's durable end and last seq (the tail grows while we read), and
 * whether it is sealed. A segment that is gone (dropped) reads as sealed and empty. */
static size_t segment_end(struct queue_reader *r, bool *ret_sealed)
{
	struct queue *q = r->q;
	size_t end = 0;

	*ret_sealed = true;
	pthread_mutex_lock(&q->state_lock);
	for (size_t i = 0; i < q->n_segments; i++)
		if (q->segments[i].base_seq == r->seg_base) {
			end = q->segments[i].end;
			r->seg_last = q->segments[i].last_seq;
			/* Only the newest segment grows; an older one left unsealed (its
			 * seal failed) is complete all the same. */
			*ret_sealed = q->segments[i].sealed || i + 1 < q->n_segments;
			break;
		}
	pthread_mutex_unlock(&q->state_lock);
	return end;
}

/* Read the frame at off into r->frame; returns its status. */
static enum queue_frame_status load_frame(struct queue_reader *r, size_t off, size_t end,
					  uint64_t expected, struct queue_frame *ret)
{
	uint8_t head[QUEUE_FRAME_HEADER_LEN];
	struct queue_frame_head h;
	enum queue_frame_status st;

	if (off + sizeof(head) > end ||
	    pread(r->fd, head, sizeof(head), (off_t)off) != sizeof(head))
		return QUEUE_FRAME_END;
	queue_frame_peek(head, &h);
	if (h.frame_len < QUEUE_FRAME_HEADER_LEN || h.frame_len > end - off)
		return QUEUE_FRAME_CORRUPT;
	if (h.frame_len > r->frame_cap) {
		r->frame_cap = h.frame_len;
		r->frame = xrealloc(r->frame, h.frame_len);
	}
	if (pread(r->fd, r->frame, h.frame_len, (off_t)off) != (ssize_t)h.frame_len)
		return QUEUE_FRAME_CORRUPT;
	st = queue_frame_check(r->frame, h.frame_len, 0, expected, r->salt, ret);
	/* Checked in the buffer, so its offsets are the buffer's: make them the file's. */
	if (st == QUEUE_FRAME_OK) {
		ret->offset += off;
		ret->next_offset += off;
	}
	return st;
}

/*
 * A frame did not validate: find the next one that does, on 8-byte boundaries, with a
 * seq beyond the damage. The offset only grows, so this always ends.
 */
static bool resync(struct queue_reader *r, size_t end, struct queue_frame *ret)
{
	for (size_t off = r->off + QUEUE_FRAME_ALIGN; off + QUEUE_FRAME_HEADER_LEN <= end;
	     off += QUEUE_FRAME_ALIGN) {
		uint8_t head[QUEUE_FRAME_HEADER_LEN];
		struct queue_frame_head h;

		if (pread(r->fd, head, sizeof(head), (off_t)off) != sizeof(head))
			return false;
		queue_frame_peek(head, &h);
		if (h.magic != QUEUE_FRAME_MAGIC || h.first_seq <= r->expected ||
		    h.first_seq > r->seg_last + 1)
			continue;
		if (load_frame(r, off, end, h.first_seq, ret) == QUEUE_FRAME_OK) {
			r->off = off;
			return true;
		}
	}
	return false;
}

int queue_read(struct queue_reader *r, uint64_t *ret_seq, struct cg_reading *ret)
{
	struct queue *q = r->q;

	for (;;) {
		uint64_t durable, acked;
		struct queue_frame f;
		bool sealed;
		size_t end;
		int k;

		pthread_mutex_lock(&q->state_lock);
		durable = q->durable_seq;
		acked = q->acked_seq;
		pthread_mutex_unlock(&q->state_lock);
		/* drop_oldest may have moved the acked position past us. */
		if (r->next_seq <= acked) {
			r->next_seq = acked + 1;
			if (r->seg_base && r->seg_last < r->next_seq)
				leave_segment(r);
		}
		if (r->next_seq > durable)
			return 0;

		if (r->in_frame) {
			/* Never more readings than the frame header announced. */
			k = r->frame_seq < r->expected ? queue_decoder_next(r->dec, ret) : 0;
			if (k > 0) {
				uint64_t seq = r->frame_seq++;

				if (seq < r->next_seq)
					continue; /* delivered before a rewind or acked */
				r->next_seq = seq + 1;
				*ret_seq = seq;
				return 1;
			}
			r->in_frame = false;
			/* Fewer readings than announced: the frame passed its CRC, so this is
			 * a bug rather than bit rot. Count them, and move on for good. */
			if (r->frame_seq < r->expected)
				count_lost(r, MAX(r->frame_seq, r->next_seq), r->expected - 1,
					   "a frame's readings cannot be decoded");
			r->next_seq = MAX(r->next_seq, r->expected);
			continue;
		}

		if (!r->seg_base) {
			k = enter_segment(r, &end);
			if (k <= 0)
				return k;
			if (r->seg_base > r->next_seq)
				r->next_seq = r->seg_base; /* a known gap, counted at start-up */
		}
		end = segment_end(r, &sealed);
		switch (load_frame(r, r->off, end, r->expected, &f)) {
		case QUEUE_FRAME_OK:
			if (f.flags & QUEUE_FRAME_SEAL) {
				finish_segment(r, "the segment is sealed before its last reading");
				continue;
			}
			/* A frame that claims more than its segment holds contradicts the
			 * seal: damage, whichever of the two is wrong. */
			if (f.first_seq + f.count - 1 > r->seg_last) {
				r->next_seq = MAX(r->next_seq, r->expected);
				finish_segment(r, "a frame contradicts its segment's seal");
				continue;
			}
			/* After a rewind, frames that were all delivered need no decoding. */
			if (f.first_seq + f.count <= r->next_seq) {
				r->expected = f.first_seq + f.count;
				r->off = f.next_offset;
				continue;
			}
			queue_decoder_init(r->dec, r->frame + QUEUE_FRAME_HEADER_LEN,
					   f.payload_len);
			r->in_frame = true;
			r->frame_seq = f.first_seq;
			r->expected = f.first_seq + f.count;
			r->off = f.next_offset;
			continue;
		case QUEUE_FRAME_END:
			if (r->expected > r->seg_last) {
				/* The tail: wait here for the committer, keeping our place. */
				if (!sealed)
					return 0;
				leave_segment(r); /* read to its end: on to the next segment */
				continue;
			}
			/* The tail: the committer has not got further yet. */
			if (r->expected > durable)
				return 0;
			/* Durable data should be here: treat as damage. */
			__attribute__((fallthrough));
		case QUEUE_FRAME_CORRUPT:
			if (resync(r, end, &f)) {
				count_lost(r, MAX(r->expected, r->next_seq), f.first_seq - 1,
					   "a damaged frame was skipped");
				r->expected = f.first_seq;
				continue;
			}
			r->next_seq = MAX(r->next_seq, r->expected);
			finish_segment(r, "the rest of a damaged segment was skipped");
			continue;
		}
	}
}
