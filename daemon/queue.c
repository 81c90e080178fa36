// SPDX-License-Identifier: MIT
/*
 * The disk queue's write side: producers append to an in-memory batch; the committer
 * thread turns each batch into one frame, writes it and fdatasyncs it, rolls segments,
 * keeps the size bound, writes the checkpoint and deletes what is acknowledged. See
 * queue.h for the model and the on-disk layout.
 *
 * Two batches alternate: while the committer writes one, producers fill the other, so
 * an fdatasync in progress never blocks an input. Producers wait only when the batch
 * they fill is full too (the disk is slower than the inputs) or when the policy is
 * `block` and the queue is full.
 */
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "parse.h"
#include "queue_internal.h"
#include "util.h"

/* A batch may grow past commit_bytes while the other one is being written. */
static size_t batch_capacity(const struct queue_options *o)
{
	return (size_t)o->commit_bytes * 4;
}

/* Room the tail must have before it accepts another batch: the open one and the one
 * being written, plus the seal. */
static size_t tail_reserve(const struct queue *q)
{
	return 2 * queue_frame_size(batch_capacity(&q->opt)) + QUEUE_SEAL_FRAME_SIZE;
}

void queue_fatal_io(const char *what, int error)
{
	/* After a failed fsync the page cache may no longer match the disk, and retrying
	 * can report success for data that is gone (the 2018 "fsyncgate"). Exit and let
	 * recovery read what is really there. */
	log_error_errno(error, "queue: %s failed: %m; exiting, recovery will repair the queue",
			what);
	_exit(74); /* EX_IOERR */
}

static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

uint64_t queue_allocated_bytes(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return 0;
	return (uint64_t)st.st_blocks * 512;
}

uint64_t queue_used_bytes(struct queue *q)
{
	uint64_t used = queue_allocated_bytes(q->ckpt_fd) + q->quarantine_bytes;

	for (size_t i = 0; i < q->n_segments; i++)
		used += q->segments[i].allocated;
	return used;
}

/* Is there room for one more segment under max_size and above min_free? */
static bool has_room_for_segment(struct queue *q)
{
	struct statvfs vfs;

	if (queue_used_bytes(q) + q->opt.segment_size > q->opt.max_size)
		return false;
	if (fstatvfs(q->dir_fd, &vfs) < 0)
		return false;
	return (uint64_t)vfs.f_bavail * vfs.f_frsize >= q->opt.segment_size + q->opt.min_free;
}

int queue_write_checkpoint(struct queue *q)
{
	uint8_t slot[QUEUE_CKPT_SLOT_SIZE];
	int r;

	q->ckpt.generation++;
	queue_checkpoint_encode(&q->ckpt, slot);
	/* Alternate slots: a torn write can only damage the slot not holding the last
	 * good checkpoint. */
	r = pwrite_all(q->ckpt_fd, slot, sizeof(slot),
		       (off_t)(q->ckpt.generation & 1) * QUEUE_CKPT_SLOT_SIZE);
	if (r < 0)
		return r;
	if (fdatasync(q->ckpt_fd) < 0)
		queue_fatal_io("fdatasync of the checkpoint", errno);
	q->ckpt_written_usec = now_monotonic_usec();
	return 0;
}

int queue_seal_segment(struct queue *q, struct segment *s)
{
	uint8_t frame[QUEUE_SEAL_FRAME_SIZE];
	struct queue_seal seal = {
		.last_seq = s->last_seq,
		.n_readings = s->readings,
		.data_bytes = s->end - QUEUE_HEADER_BLOCK,
	};
	int r;

	queue_seal_encode(&seal, frame + QUEUE_FRAME_HEADER_LEN);
	queue_frame_encode(frame, s->salt, s->last_seq + 1, 0, QUEUE_FRAME_SEAL,
			   QUEUE_SEAL_PAYLOAD_LEN);
	r = pwrite_all(s->fd, frame, sizeof(frame), (off_t)s->end);
	if (r < 0)
		return r;
	/* Give back the preallocated space the segment will never use. */
	if (ftruncate(s->fd, (off_t)(s->end + sizeof(frame))) < 0)
		return -errno;
	if (fdatasync(s->fd) < 0)
		queue_fatal_io("fdatasync of a segment seal", errno);
	s->sealed = true;
	s->allocated = queue_allocated_bytes(s->fd);
	return 0;
}

int queue_create_segment(struct queue *q, uint64_t base_seq, uint64_t prev_seq)
{
	uint8_t header[QUEUE_HEADER_BLOCK];
	struct queue_segment_header h = {
		.stream_id = q->ckpt.stream_id,
		.base_seq = base_seq,
		.prev_seq = prev_seq,
		.created_ns = (uint64_t)now_realtime_ms() * 1000000,
		.segment_size = q->opt.segment_size,
	};
	char tmp[64], name[64];
	struct segment *s;
	int fd, r;

	if (getrandom(&h.salt, sizeof(h.salt), 0) != sizeof(h.salt))
		h.salt = now_monotonic_usec() ^ (uint64_t)getpid() << 32;
	queue_segment_name(tmp, sizeof(tmp), base_seq, true);
	queue_segment_name(name, sizeof(name), base_seq, false);
	(void)unlinkat(q->dir_fd, tmp, 0);
	fd = openat(q->dir_fd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	queue_header_encode(&h, header);
	r = pwrite_all(fd, header, sizeof(header), 0);
	if (r >= 0) {
		r = posix_fallocate(fd, 0, (off_t)q->opt.segment_size);
		r = -r;
	}
	if (r < 0)
		goto fail;
	if (fdatasync(fd) < 0)
		queue_fatal_io("fdatasync of a new segment", errno);
	/* Only a complete segment gets its final name, and the name is made durable
	 * before any frame depends on it. */
	if (renameat(q->dir_fd, tmp, q->dir_fd, name) < 0) {
		r = -errno;
		goto fail;
	}
	if (fsync(q->dir_fd) < 0)
		queue_fatal_io("fsync of the queue directory", errno);

	q->segments = xrealloc(q->segments, (q->n_segments + 1) * sizeof(*q->segments));
	s = &q->segments[q->n_segments++];
	*s = (struct segment){
		.base_seq = base_seq,
		.prev_seq = prev_seq,
		.last_seq = base_seq - 1,
		.salt = h.salt,
		.allocated = queue_allocated_bytes(fd),
		.end = QUEUE_HEADER_BLOCK,
		.fd = fd,
	};
	q->written_seq = base_seq - 1;
	return 0;
fail:
	safe_close(fd);
	(void)unlinkat(q->dir_fd, tmp, 0);
	return r;
}

/* Drops share one rate limit: true when the next drop message may be logged. */
static bool drop_log_allowed(struct queue *q)
{
	unsigned long suppressed;

	if (!ratelimit_test(&q->drop_log, now_monotonic_usec(), &suppressed))
		return false;
	if (suppressed)
		log_warning("queue: %lu more drop messages suppressed", suppressed);
	return true;
}

static void log_dropped(struct queue *q, const char *what, uint64_t n, uint64_t first,
			uint64_t last)
{
	if (!drop_log_allowed(q))
		return;
	if (first)
		log_warning("queue full: dropped %" PRIu64 " %s readings (seq %" PRIu64 "..%" PRIu64
			    ")",
			    n, what, first, last);
	else
		log_warning("queue full: dropped %" PRIu64 " %s readings so far", n, what);
}

static void log_block_timeout(struct queue *q, uint64_t n)
{
	if (!drop_log_allowed(q))
		return;
	log_warning("queue full: an input waited block_timeout for room (%" PRIu64
		    " times so far); it holds its readings back or drops them",
		    n);
}

static void remove_segment(struct queue *q, size_t i)
{
	struct segment *s = &q->segments[i];
	char name[64];

	queue_segment_name(name, sizeof(name), s->base_seq, false);
	if (unlinkat(q->dir_fd, name, 0) < 0 && errno != ENOENT)
		log_warning_errno(errno, "queue: cannot delete \"%s\": %m", name);
	safe_close(s->fd);
	memmove(s, s + 1, (q->n_segments - i - 1) * sizeof(*s));
	q->n_segments--;
}

/* drop_oldest: delete the oldest segment (never the tail), acked or not. */
static int drop_oldest_segment(struct queue *q)
{
	struct segment *s = &q->segments[0];
	uint64_t first, n = 0;
	int r;

	if (q->n_segments < 2)
		return -ENOSPC;
	pthread_mutex_lock(&q->state_lock);
	first = MAX(q->acked_seq + 1, s->base_seq);
	if (s->last_seq >= first)
		n = s->last_seq - first + 1;
	q->acked_seq = MAX(q->acked_seq, s->last_seq);
	q->dropped_oldest += n;
	pthread_mutex_unlock(&q->state_lock);

	/* The checkpoint must say these are gone before the file is. */
	q->ckpt.acked_seq = MAX(q->ckpt.acked_seq, s->last_seq);
	q->ckpt.dropped_total += n;
	r = queue_write_checkpoint(q);
	if (r < 0)
		return r;
	if (n)
		log_dropped(q, "oldest unsent", n, first, s->last_seq);
	pthread_mutex_lock(&q->state_lock);
	remove_segment(q, 0);
	pthread_mutex_unlock(&q->state_lock);
	return 0;
}

/* Make a new tail segment starting after written_seq, seal the old one. */
static int roll(struct queue *q)
{
	struct segment *old;
	uint64_t base = q->written_seq + 1, prev;
	int r;

	while (!has_room_for_segment(q)) {
		if (q->opt.when_full != QUEUE_DROP_OLDEST || q->n_segments < 2)
			return -ENOSPC;
		r = drop_oldest_segment(q);
		if (r < 0)
			return r;
	}
	pthread_mutex_lock(&q->state_lock);
	/* prev_seq is the last seq that exists before this segment; seqs between it and
	 * base were issued to nothing (a lost batch, a reservation jump at start-up). */
	prev = MAX(q->durable_seq, q->acked_seq);
	r = queue_create_segment(q, base, MIN(prev, base - 1));
	pthread_mutex_unlock(&q->state_lock);
	if (r < 0)
		return r;
	/* Seal the predecessor only now: had creation failed, it stays the tail. */
	if (q->n_segments >= 2) {
		old = &q->segments[q->n_segments - 2];
		if (!old->sealed) {
			r = queue_seal_segment(q, old);
			if (r < 0)
				log_warning_errno(r, "queue: cannot seal a segment: %m");
		}
		/* Only the tail keeps a descriptor; readers open segments themselves. */
		pthread_mutex_lock(&q->state_lock);
		old->fd = safe_close(old->fd);
		pthread_mutex_unlock(&q->state_lock);
	}
	return 0;
}

static void set_full(struct queue *q, bool full)
{
	pthread_mutex_lock(&q->batch_lock);
	if (q->full != full) {
		q->full = full;
		if (full)
			log_warning("queue full (max_size %" PRIu64 " bytes, min_free %" PRIu64
				    " bytes): applying when_full policy",
				    q->opt.max_size, q->opt.min_free);
		else
			log_notice("queue has room again");
		pthread_cond_broadcast(&q->space_cond);
	}
	pthread_mutex_unlock(&q->batch_lock);
}

/* Room for the next batches in the tail, rolling if needed; updates "full". */
static void ensure_tail_room(struct queue *q)
{
	struct segment *tail = q->n_segments ? &q->segments[q->n_segments - 1] : NULL;
	int r;

	if (tail && !tail->sealed && tail->end + tail_reserve(q) <= q->opt.segment_size) {
		set_full(q, false);
		return;
	}
	r = roll(q);
	if (r < 0 && r != -ENOSPC)
		log_warning_errno(r,
				  "queue: cannot create a segment: %m; treating the queue as full");
	set_full(q, r < 0);
}

/* A batch that cannot be written: its readings are dropped, counted and remembered so
 * that queue_wait_durable() reports them lost instead of waiting. */
static void drop_batch(struct queue *q, struct batch *b)
{
	uint64_t last = b->first_seq + b->count - 1;

	pthread_mutex_lock(&q->batch_lock);
	q->dropped_newest += b->count;
	pthread_mutex_unlock(&q->batch_lock);
	log_dropped(q, "new", b->count, b->first_seq, last);
	pthread_mutex_lock(&q->state_lock);
	q->unwritten[q->n_unwritten++ % ARRAY_SIZE(q->unwritten)] =
	    (struct queue_gap){ b->first_seq, last };
	pthread_cond_broadcast(&q->durable_cond);
	pthread_mutex_unlock(&q->state_lock);
	/* The next segment's prev_seq records these seqs as never written. */
	q->written_seq = last;
}

static void commit_batch(struct queue *q, struct batch *b)
{
	struct segment *tail = q->n_segments ? &q->segments[q->n_segments - 1] : NULL;
	uint64_t last = b->first_seq + b->count - 1, one = 1;
	size_t size;
	int r;

	/* No tail to write to: the disk filled up after the batch was accepted. */
	if (!tail || tail->sealed) {
		drop_batch(q, b);
		return;
	}
	/* Never issue a seq the checkpoint has not reserved (see QUEUE_SEQ_RESERVE). */
	if (last > q->ckpt.seq_reserved) {
		q->ckpt.seq_reserved = last + QUEUE_SEQ_RESERVE;
		r = queue_write_checkpoint(q);
		if (r < 0)
			queue_fatal_io("writing the checkpoint", r);
	}
	size = queue_frame_encode(b->buf, tail->salt, b->first_seq, b->count, 0, b->len);
	r = pwrite_all(tail->fd, b->buf, size, (off_t)tail->end);
	if (r == -ENOSPC || r == -EDQUOT) {
		/* Preallocation makes this rare (copy-on-write file systems). Seal here so
		 * nothing is ever written after a frame that may be torn, and stop taking
		 * readings until a new segment can be made. */
		drop_batch(q, b);
		if (queue_seal_segment(q, tail) < 0)
			tail->sealed = true;
		set_full(q, true);
		return;
	}
	if (r < 0)
		queue_fatal_io("writing a frame", r);
	if (fdatasync(tail->fd) < 0)
		queue_fatal_io("fdatasync of a segment", errno);

	pthread_mutex_lock(&q->state_lock);
	tail->end += size;
	tail->last_seq = last;
	tail->readings += b->count;
	q->durable_seq = last;
	q->written_seq = last;
	q->commits++;
	pthread_cond_broadcast(&q->durable_cond);
	pthread_mutex_unlock(&q->state_lock);
	if (write(q->durable_fd, &one, sizeof(one)) < 0) {
		/* The counter cannot overflow in practice; a full eventfd is still readable. */
	}
}

/* Checkpoint acks (at most every checkpoint_interval), delete acked segments and make
 * room for the next batches. When closing, the checkpoint is written whatever its age
 * and no new segment is made. */
static void maintain(struct queue *q, bool closing)
{
	uint64_t acked, lost, now = now_monotonic_usec();
	bool deletable;

	pthread_mutex_lock(&q->state_lock);
	acked = q->acked_seq;
	deletable = q->n_segments > 1 && q->segments[0].last_seq <= acked && q->segments[0].sealed;
	lost = q->lost_unsaved;
	if (lost) {
		q->lost_unsaved = 0;
		q->ckpt.n_gaps = q->read_gaps.n_gaps;
		memcpy(q->ckpt.gaps, q->read_gaps.gaps, sizeof(q->ckpt.gaps));
		q->ckpt.lost_total += lost;
	}
	pthread_mutex_unlock(&q->state_lock);

	if (lost || (acked != q->ckpt.acked_seq &&
		     (closing || deletable ||
		      now - q->ckpt_written_usec >= q->opt.checkpoint_interval_usec))) {
		q->ckpt.acked_seq = acked;
		if (queue_write_checkpoint(q) < 0)
			queue_fatal_io("writing the checkpoint", EIO);
	}
	/* Only what the durable checkpoint covers may go. */
	while (q->n_segments > 1 && q->segments[0].sealed &&
	       q->segments[0].last_seq <= q->ckpt.acked_seq) {
		pthread_mutex_lock(&q->state_lock);
		remove_segment(q, 0);
		pthread_mutex_unlock(&q->state_lock);
	}
	if (!closing)
		ensure_tail_room(q);
}

static void batch_reset(struct batch *b)
{
	b->len = 0;
	b->count = 0;
	b->first_seq = 0;
	b->opened_usec = 0;
	queue_encoder_reset(&b->enc);
}

static void *committer_main(void *arg)
{
	struct queue *q = arg;

	pthread_mutex_lock(&q->batch_lock);
	for (;;) {
		struct batch *b = q->open;
		uint64_t now = now_monotonic_usec(), wake;
		bool due;

		q->committer_alive_usec = now;
		if (q->abandoning || (q->stopping && b->count == 0))
			break;
		due = b->count && (q->stopping || b->len >= q->opt.commit_bytes ||
				   now >= b->opened_usec + q->opt.commit_interval_usec);
		if (!due) {
			struct timespec ts;

			wake = b->count ? b->opened_usec + q->opt.commit_interval_usec
					: now + q->opt.checkpoint_interval_usec;
			ts = timespec_from_usec(wake);
			if (pthread_cond_timedwait(&q->batch_cond, &q->batch_lock, &ts) ==
				ETIMEDOUT &&
			    q->open->count == 0) {
				pthread_mutex_unlock(&q->batch_lock);
				maintain(q, false);
				pthread_mutex_lock(&q->batch_lock);
			}
			continue;
		}
		/* Swap: producers go on filling the other batch while this one is written. */
		q->open = b == &q->batches[0] ? &q->batches[1] : &q->batches[0];
		pthread_cond_broadcast(&q->space_cond);
		pthread_mutex_unlock(&q->batch_lock);

		commit_batch(q, b);
		maintain(q, false);

		pthread_mutex_lock(&q->batch_lock);
		batch_reset(b);
		pthread_cond_broadcast(&q->space_cond);
	}
	pthread_mutex_unlock(&q->batch_lock);
	return NULL;
}

int queue_append(struct queue *q, const struct cg_reading *r, uint64_t *ret_seq)
{
	static __thread uint8_t scratch[QUEUE_RECORD_MAX];
	struct queue_record_parts parts;
	uint64_t deadline = 0, seq;
	size_t bound;
	struct batch *b;

	queue_record_prepare(r, scratch, &parts);
	bound = queue_record_bound(&parts);

	pthread_mutex_lock(&q->batch_lock);
	for (;;) {
		struct timespec ts;

		b = q->open;
		if (q->stopping)
			goto refuse;
		if (!q->full && b->len + bound <= b->cap)
			break;
		/* Full disk with drop policies: refuse at once. A full memory batch (the
		 * disk is momentarily slower than the inputs) is worth a short wait. */
		if (q->full && q->opt.when_full != QUEUE_BLOCK)
			goto refuse;
		if (!deadline)
			deadline = now_monotonic_usec() + q->opt.block_timeout_usec;
		if (now_monotonic_usec() >= deadline)
			goto refuse;
		ts = timespec_from_usec(deadline);
		pthread_cond_timedwait(&q->space_cond, &q->batch_lock, &ts);
	}
	seq = q->next_seq++;
	if (b->count == 0) {
		b->first_seq = seq;
		b->opened_usec = now_monotonic_usec();
		/* Wake the committer so that it sleeps until this batch is due. */
		pthread_cond_signal(&q->batch_cond);
	}
	b->len += queue_record_append(&b->enc, &parts, r->timestamp_ms,
				      b->buf + QUEUE_FRAME_HEADER_LEN, b->len);
	b->count++;
	q->appended++;
	if (b->len >= q->opt.commit_bytes)
		pthread_cond_signal(&q->batch_cond);
	pthread_mutex_unlock(&q->batch_lock);
	if (ret_seq)
		*ret_seq = seq;
	return 0;

refuse:
	/* With `block` the reading is not dropped here: the input still holds it and may
	 * offer it again (the Unix socket input stops reading its clients meanwhile). */
	if (q->opt.when_full == QUEUE_BLOCK && !q->stopping) {
		seq = ++q->block_timeouts;
		pthread_mutex_unlock(&q->batch_lock);
		log_block_timeout(q, seq);
		return -EAGAIN;
	}
	q->dropped_newest++;
	seq = q->dropped_newest;
	pthread_mutex_unlock(&q->batch_lock);
	log_dropped(q, "new", seq, 0, 0);
	return -ENOSPC;
}

/* True when a batch that could not be written holds a seq in (after, seq]. */
static bool is_unwritten(const struct queue *q, uint64_t after, uint64_t seq)
{
	for (size_t i = 0; i < MIN(q->n_unwritten, ARRAY_SIZE(q->unwritten)); i++)
		if (q->unwritten[i].last > after && q->unwritten[i].first <= seq)
			return true;
	return false;
}

int queue_wait_durable_since(struct queue *q, uint64_t after, uint64_t seq, uint64_t timeout_usec)
{
	struct timespec ts = timespec_from_usec(now_monotonic_usec() + timeout_usec);
	int r = 0;

	pthread_mutex_lock(&q->state_lock);
	while (q->durable_seq < seq && !is_unwritten(q, after, seq) && r == 0)
		r = pthread_cond_timedwait(&q->durable_cond, &q->state_lock, &ts);
	/* A batch that could not be written leaves its seqs behind durable ones. */
	if (is_unwritten(q, after, seq))
		r = -ENOSPC;
	else
		r = q->durable_seq >= seq ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&q->state_lock);
	return r;
}

int queue_wait_durable(struct queue *q, uint64_t seq, uint64_t timeout_usec)
{
	return queue_wait_durable_since(q, seq - 1, seq, timeout_usec);
}

bool queue_is_alive(struct queue *q)
{
	/* The committer wakes at least every checkpoint_interval; an fdatasync may take
	 * seconds on a tired SD card, but not half a minute. */
	return now_monotonic_usec() - q->committer_alive_usec <
	       q->opt.checkpoint_interval_usec + q->opt.commit_interval_usec + 30 * USEC_PER_SEC;
}

int queue_durable_fd(struct queue *q)
{
	return q->durable_fd;
}

void queue_ack(struct queue *q, uint64_t seq)
{
	pthread_mutex_lock(&q->state_lock);
	if (seq > q->durable_seq)
		seq = q->durable_seq;
	if (seq > q->acked_seq)
		q->acked_seq = seq;
	pthread_mutex_unlock(&q->state_lock);
}

void queue_get_stats(struct queue *q, struct queue_stats *ret)
{
	pthread_mutex_lock(&q->batch_lock);
	ret->appended = q->appended;
	ret->dropped_newest = q->dropped_newest;
	ret->block_timeouts = q->block_timeouts;
	ret->full = q->full;
	pthread_mutex_unlock(&q->batch_lock);
	pthread_mutex_lock(&q->state_lock);
	ret->durable_seq = q->durable_seq;
	ret->acked_seq = q->acked_seq;
	ret->dropped_oldest = q->dropped_oldest;
	ret->lost = q->lost;
	ret->segments = q->n_segments;
	ret->commits = q->commits;
	ret->used_bytes = queue_used_bytes(q);
	ret->readings = 0;
	for (size_t i = 0; i < q->n_segments; i++) {
		const struct segment *s = &q->segments[i];
		uint64_t first = MAX(s->base_seq, q->acked_seq + 1);

		if (s->last_seq >= first)
			ret->readings += s->last_seq - first + 1;
	}
	pthread_mutex_unlock(&q->state_lock);
}

static int init_condattr_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(c, &attr);
	pthread_condattr_destroy(&attr);
	return 0;
}

static void queue_free(struct queue *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->n_segments; i++)
		safe_close(q->segments[i].fd);
	free(q->segments);
	free(q->batches[0].buf);
	free(q->batches[1].buf);
	safe_close(q->durable_fd);
	safe_close(q->ckpt_fd);
	safe_close(q->lock_fd); /* releases the flock */
	safe_close(q->dir_fd);
	pthread_mutex_destroy(&q->batch_lock);
	pthread_mutex_destroy(&q->state_lock);
	pthread_cond_destroy(&q->batch_cond);
	pthread_cond_destroy(&q->space_cond);
	pthread_cond_destroy(&q->durable_cond);
	ratelimit_done(&q->drop_log);
	free((char *)q->opt.dir);
	free(q);
}

static int mkdir_parents(const char *path)
{
	char *p = xstrdup(path);
	int r = 0;

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			r = -errno;
		*s = '/';
	}
	if (r == 0 && mkdir(p, 0700) < 0 && errno != EEXIST)
		r = -errno;
	free(p);
	return r;
}

int queue_open(const struct queue_options *options, struct queue **ret)
{
	struct queue *q = xcalloc(1, sizeof(*q));
	struct stat st;
	int r;

	q->opt = *options;
	q->opt.dir = xstrdup(options->dir);
	q->dir_fd = q->lock_fd = q->ckpt_fd = q->durable_fd = -1;
	pthread_mutex_init(&q->batch_lock, NULL);
	pthread_mutex_init(&q->state_lock, NULL);
	init_condattr_monotonic(&q->batch_cond);
	init_condattr_monotonic(&q->space_cond);
	init_condattr_monotonic(&q->durable_cond);
	ratelimit_init(&q->drop_log, 10 * USEC_PER_SEC, 5);
	for (int i = 0; i < 2; i++) {
		q->batches[i].cap = batch_capacity(&q->opt);
		q->batches[i].buf = xmalloc(queue_frame_size(q->batches[i].cap));
		batch_reset(&q->batches[i]);
	}
	q->open = &q->batches[0];

	r = mkdir_parents(q->opt.dir);
	if (r < 0) {
		log_error_errno(r, "queue: cannot create \"%s\": %m", q->opt.dir);
		goto fail;
	}
	q->dir_fd = open(q->opt.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q->dir_fd < 0 || fstat(q->dir_fd, &st) < 0) {
		r = log_error_errno(errno, "queue: cannot open \"%s\": %m", q->opt.dir);
		goto fail;
	}
	/* Anyone who can write here can forge readings or delete them. */
	if ((st.st_mode & 022) || st.st_uid != geteuid()) {
		log_error("queue: \"%s\" must belong to uid %u and not be group- or "
			  "world-writable (mode %04o, owner %u); fix it with chmod/chown",
			  q->opt.dir, (unsigned)geteuid(), (unsigned)(st.st_mode & 07777),
			  (unsigned)st.st_uid);
		r = -EPERM;
		goto fail;
	}
	q->durable_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->durable_fd < 0) {
		r = log_error_errno(errno, "queue: cannot create an eventfd: %m");
		goto fail;
	}
	r = queue_recover(q);
	if (r < 0)
		goto fail;
	ensure_tail_room(q);

	r = pthread_create(&q->committer, NULL, committer_main, q);
	if (r != 0) {
		r = log_error_errno(r, "queue: cannot start the committer thread: %m");
		goto fail;
	}
	q->committer_started = true;
	q->committer_alive_usec = now_monotonic_usec();
	*ret = q;
	return 0;
fail:
	queue_free(q);
	return r;
}

static void stop_committer(struct queue *q, bool abandon)
{
	if (!q->committer_started)
		return;
	pthread_mutex_lock(&q->batch_lock);
	q->stopping = true;
	q->abandoning = abandon;
	pthread_cond_broadcast(&q->batch_cond);
	pthread_cond_broadcast(&q->space_cond);
	pthread_mutex_unlock(&q->batch_lock);
	pthread_join(q->committer, NULL);
	q->committer_started = false;
}

void queue_close(struct queue *q)
{
	if (!q)
		return;
	stop_committer(q, false);
	maintain(q, true);
	queue_free(q);
}

void queue_abandon(struct queue *q)
{
	if (!q)
		return;
	stop_committer(q, true);
	queue_free(q);
}
