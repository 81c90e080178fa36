/* SPDX-License-Identifier: MIT */
/*
 * The disk queue: every reading the inputs emit is appended here, made durable by a
 * committer thread in group-commit batches, read back by the uplink and deleted once
 * acknowledged. It is how coapgate keeps its promise that a reading survives a link
 * that is down for days and a power cut at any moment.
 *
 * Not here: the byte formats (queue_format.h), recovery of a directory after a crash
 * (queue_recover.c), the uplink that consumes.
 *
 * Layout of <state_dir>/queue/ (0700):
 *
 *   LOCK                         flock()ed by the one daemon that owns the queue
 *   ckpt                         two 4 KiB checkpoint slots, the newer valid one wins
 *   seg-<16 hex: base_seq>.q     segments, preallocated to segment_size
 *   seg-<...>.q.tmp              a segment being created (removed by recovery)
 *   quarantine/                  segments recovery could not trust, kept for people
 *
 * A segment file:
 *
 *   0        4096                                                      segment_size
 *   +--------+--------+--+--------+--+-----+--------+------+------------------+
 *   | header | frame  |pd| frame  |pd| ... | frame  | SEAL |  zeros (unused)  |
 *   +--------+--------+--+--------+--+-----+--------+------+------------------+
 *
 *   header (72 bytes, rest of the 4 KiB block zero):
 *     0  magic "CGQSEG1\0"   8  u16 version (1)   10 u16 flags (0)   12 u32 header_len
 *     16 u64 stream_id       24 u64 base_seq      32 u64 prev_seq    40 u64 salt
 *     48 u64 created_ns      56 u64 segment_size  64 u32 reserved    68 u32 crc32
 *
 *   frame (8-byte aligned, one per group-commit batch):
 *     0  u32 magic "CGQF"    4  u32 frame_len (header + payload)
 *     8  u64 first_seq       16 u32 count (readings; 0 for SEAL)
 *     20 u16 flags (SEAL)    22 u16 reserved (0)
 *     24 u32 crc32(salt || frame with this field zeroed)   28 u32 payload_len
 *     32 payload: readings, encoded as described in queue_format.h; then zero padding
 *
 *   SEAL payload: u64 last_seq, u64 readings in the segment, u64 bytes of frames.
 *
 * Sequence numbers are 64-bit, start at 1, are contiguous inside a segment and across
 * segments, and are never reused: a segment's prev_seq above its predecessor's last
 * seq marks seqs that were reserved but never issued (after a restart), not lost ones.
 *
 * Threads: producers (input threads) call queue_append(); the committer thread owned
 * by the queue writes and fdatasyncs frames; one consumer (the main loop) reads and
 * acks. An fdatasync error is fatal: the process exits and recovery repairs the state.
 */
#ifndef COAPGATE_QUEUE_H
#define COAPGATE_QUEUE_H

#include <coapgate/plugin.h>
#include <stdbool.h>
#include <stdint.h>

enum queue_when_full {
	QUEUE_DROP_OLDEST, /* delete the oldest segment, even unacknowledged */
	QUEUE_DROP_NEWEST, /* refuse new readings */
	QUEUE_BLOCK,	   /* make producers wait up to block_timeout, then refuse */
};

struct queue_options {
	const char *dir;
	uint64_t segment_size;	       /* bytes per segment file */
	uint64_t max_size;	       /* allocated bytes of segments + quarantine */
	uint64_t min_free;	       /* free bytes to leave on the file system */
	uint64_t commit_interval_usec; /* longest wait before a batch is committed */
	uint64_t commit_bytes;	       /* a batch this large is committed at once */
	uint64_t checkpoint_interval_usec;
	uint64_t block_timeout_usec;
	enum queue_when_full when_full;
};

struct queue_stats {
	uint64_t appended;	 /* readings accepted by queue_append() */
	uint64_t durable_seq;	 /* highest seq on disk and fdatasynced */
	uint64_t acked_seq;	 /* highest seq acknowledged */
	uint64_t readings;	 /* durable readings not yet acknowledged */
	uint64_t dropped_oldest; /* readings deleted unacknowledged to make room */
	uint64_t dropped_newest; /* readings refused because the queue was full */
	uint64_t block_timeouts; /* with block: appends that waited block_timeout (-EAGAIN) */
	uint64_t lost;		 /* readings lost to corruption (recovery or reading) */
	uint64_t used_bytes;	 /* allocated bytes of segments, checkpoint, quarantine */
	uint64_t segments;
	uint64_t commits;
	bool full;
};

struct queue;

/*
 * Open (creating if needed) and recover the queue in options->dir, then start the
 * committer. Never refuses because of damaged data: torn tails are cut, bad segments
 * quarantined, losses counted and logged. Fails (logged) when the directory cannot be
 * used: not creatable, group- or world-writable, or locked by another daemon (-EBUSY).
 */
int queue_open(const struct queue_options *options, struct queue **ret);

/* Commit what is pending, write the checkpoint, stop the committer and free. */
void queue_close(struct queue *q);

/*
 * Append one validated reading (timestamp and topic filled in) and return its seq in
 * *ret_seq (may be NULL). Never waits for a disk write. Returns 0; -ENOSPC when the
 * queue is full and its policy drops the reading (counted, logged rate-limited);
 * -EAGAIN when the policy is block and the reading waited block_timeout in vain: it
 * was not taken, and the caller still holds it (counted in block_timeouts).
 * Thread-safe.
 */
int queue_append(struct queue *q, const struct cg_reading *r, uint64_t *ret_seq);

/* Wait until seq (and every seq before it) is durable or timeout_usec passes: 0,
 * -ETIMEDOUT, or -ENOSPC when its batch could not be written (the disk filled up
 * under a copy-on-write file system) and the reading is lost. */
int queue_wait_durable(struct queue *q, uint64_t seq, uint64_t timeout_usec);

/* The same, and -ENOSPC when any seq in (after, seq] was lost that way: durable_seq
 * passes a lost batch, so "seq is durable" alone does not vouch for the seqs before. */
int queue_wait_durable_since(struct queue *q, uint64_t after, uint64_t seq, uint64_t timeout_usec);

/* An eventfd that becomes readable when durable data was added; the consumer reads it
 * (to reset it) before calling queue_read(). */
int queue_durable_fd(struct queue *q);

/* The consumer's position. One consumer per queue. */
struct queue_reader;

int queue_reader_new(struct queue *q, struct queue_reader **ret);
void queue_reader_free(struct queue_reader *r);

/*
 * The next durable reading after the reader's position: returns 1 with *ret_seq and
 * *ret (valid until the next call), 0 when there is none yet, or a negative errno for
 * an I/O error. Damaged frames are skipped, counted as lost and logged.
 */
int queue_read(struct queue_reader *r, uint64_t *ret_seq, struct cg_reading *ret);

/* Go back to the oldest unacknowledged reading (after a failed upload). */
void queue_reader_rewind(struct queue_reader *r);

/* Every reading with seq <= seq was delivered. Acks never move backwards. */
void queue_ack(struct queue *q, uint64_t seq);

void queue_get_stats(struct queue *q, struct queue_stats *ret);

/* False when the committer has not come round its loop for far longer than it ever
 * should (stuck in the disk): the main loop then stops feeding the watchdog. */
bool queue_is_alive(struct queue *q);

/*
 * For tests: stop the committer without committing the open batch or writing a
 * checkpoint, and free, as if the process had been killed at this moment.
 */
void queue_abandon(struct queue *q);

#endif
