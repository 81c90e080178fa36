/* SPDX-License-Identifier: MIT */
/*
 * What queue.c (writing), queue_recover.c (start-up) and queue_read.c (the consumer)
 * share. Not an API: nothing outside the queue includes this.
 */
#ifndef COAPGATE_QUEUE_INTERNAL_H
#define COAPGATE_QUEUE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "queue.h"
#include "queue_format.h"
#include "ratelimit.h"

/* Seqs reserved ahead in the checkpoint, so that a disk that loses an fsynced tail
 * never makes the queue issue a seq that the server may already have seen. */
#define QUEUE_SEQ_RESERVE (1ULL << 20)

struct segment {
	uint64_t base_seq;
	uint64_t prev_seq;
	uint64_t last_seq; /* last reading written (prev_seq when none) */
	uint64_t salt;
	uint64_t readings;
	uint64_t allocated; /* st_blocks * 512 */
	size_t end;	    /* offset after the last valid frame */
	bool sealed;
	int fd; /* O_RDWR for the tail, O_RDONLY otherwise */
};

/* One group-commit batch being filled by producers or written by the committer. */
struct batch {
	uint8_t *buf; /* QUEUE_FRAME_HEADER_LEN bytes of room, then the payload */
	size_t len;   /* payload bytes */
	size_t cap;   /* payload capacity */
	uint32_t count;
	uint64_t first_seq;
	uint64_t opened_usec; /* monotonic time of the first append */
	struct queue_encoder enc;
};

struct queue {
	struct queue_options opt;
	int dir_fd;
	int lock_fd;
	int ckpt_fd;
	int durable_fd; /* eventfd */

	/* Producers and the committer: the open batch and the sequence counter. */
	pthread_mutex_t batch_lock;
	uint64_t written_seq;	   /* last seq written or skipped: the next segment's base - 1 */
	pthread_cond_t batch_cond; /* committer waits for work */
	pthread_cond_t space_cond; /* producers wait for room (block policy) */
	struct batch batches[2];
	struct batch *open;
	uint64_t next_seq;
	bool full; /* no room for another batch: the policy applies */
	bool stopping;
	bool abandoning;
	uint64_t appended;
	uint64_t dropped_newest;
	uint64_t block_timeouts;

	/* The committer and the consumer: segments, durability, acks. */
	pthread_mutex_t state_lock;
	pthread_cond_t durable_cond;
	struct segment *segments; /* sorted by base_seq; the last one is the tail */
	size_t n_segments;
	uint64_t durable_seq;
	uint64_t acked_seq;
	struct queue_checkpoint ckpt; /* as last written */
	uint64_t ckpt_written_usec;
	uint64_t dropped_oldest;
	uint64_t lost;
	/* Losses the reader found, as ranges (starting from the checkpoint's), and how many
	 * readings of them the checkpoint does not count yet. */
	struct queue_checkpoint read_gaps;
	uint64_t lost_unsaved;
	/* The last batches that could not be written (ENOSPC), for queue_wait_durable(). */
	struct queue_gap unwritten[8];
	size_t n_unwritten;
	uint64_t quarantine_bytes;
	uint64_t commits;

	atomic_uint_fast64_t committer_alive_usec;
	pthread_t committer;
	bool committer_started;
	struct ratelimit drop_log;
};

/* queue_recover.c: lock, read the checkpoint, scan and repair the segments. Fills
 * q->segments, acked/durable/next seq and the counters. Logs what it finds. */
int queue_recover(struct queue *q);

/* queue.c, used by recovery and the committer. */
int queue_write_checkpoint(struct queue *q);
int queue_seal_segment(struct queue *q, struct segment *s);
int queue_create_segment(struct queue *q, uint64_t base_seq, uint64_t prev_seq);
uint64_t queue_used_bytes(struct queue *q);
/* Bytes the file takes on disk (st_blocks), which preallocation counts; 0 on error. */
uint64_t queue_allocated_bytes(int fd);
void queue_fatal_io(const char *what, int error) __attribute__((noreturn));

#endif
