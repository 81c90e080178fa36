/* SPDX-License-Identifier: MIT */
/*
 * The disk queue's on-disk formats and the pure functions that write and check them:
 * segment headers, frames, checkpoint slots and the compact encoding of readings.
 * Nothing here does I/O, allocates beyond what the caller asks, or logs, so that the
 * queue, its recovery, `coapgatectl queue verify|dump`, the fuzzers and the tests all
 * share one definition of "valid". The layout is drawn in queue.h.
 *
 * All integers are little-endian. CRCs are zlib's CRC-32 (IEEE 802.3): the queue
 * design suggested CRC-32C, but zlib's table-driven CRC-32 runs at several GB/s here,
 * far above the disk, and a well-kept library beats a hand-written one.
 */
#ifndef COAPGATE_QUEUE_FORMAT_H
#define COAPGATE_QUEUE_FORMAT_H

#include <coapgate/plugin.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUEUE_SEGMENT_MAGIC  "CGQSEG1" /* 8 bytes with the NUL */
#define QUEUE_FORMAT_VERSION 1
#define QUEUE_HEADER_BLOCK   4096 /* frames start here */
#define QUEUE_HEADER_LEN     72

#define QUEUE_FRAME_MAGIC	0x46514743u /* "CGQF" */
#define QUEUE_FRAME_HEADER_LEN	32
#define QUEUE_FRAME_ALIGN	8
#define QUEUE_FRAME_SEAL	0x0001u /* flags: the segment ends here */
#define QUEUE_FRAME_FLAGS_KNOWN QUEUE_FRAME_SEAL
#define QUEUE_SEAL_FRAME_SIZE	(QUEUE_FRAME_HEADER_LEN + QUEUE_SEAL_PAYLOAD_LEN)
#define QUEUE_SEAL_PAYLOAD_LEN	24

#define QUEUE_CKPT_MAGIC     "CGQCKPT1"
#define QUEUE_CKPT_SLOT_SIZE 4096
#define QUEUE_CKPT_LEN	     592

/* The largest encoded reading: 64 fields of 64-byte names and 512-byte strings. */
#define QUEUE_RECORD_MAX (64 * 1024)

struct queue_segment_header {
	uint64_t stream_id;    /* random per installation: (stream_id, seq) is unique */
	uint64_t base_seq;     /* seq of the first reading; equals the file name */
	uint64_t prev_seq;     /* last seq issued before this segment (base_seq - 1
				  unless a reservation jump skipped unused seqs) */
	uint64_t salt;	       /* random per segment, seeds every frame CRC */
	uint64_t created_ns;   /* CLOCK_REALTIME, informational */
	uint64_t segment_size; /* bytes, as preallocated */
};

/* Write the header block (QUEUE_HEADER_BLOCK bytes, zero-padded) to buf. */
void queue_header_encode(const struct queue_segment_header *h, uint8_t *buf);

/* Check and decode a header block of at least QUEUE_HEADER_LEN bytes. Returns 0,
 * -EBADMSG (magic, CRC, reserved bits) or -EPROTONOSUPPORT (version). */
int queue_header_decode(const uint8_t *buf, size_t len, struct queue_segment_header *ret);

struct queue_frame {
	size_t offset;	    /* of the frame in the segment */
	size_t frame_len;   /* header + payload, without padding */
	size_t next_offset; /* where the next frame starts (aligned) */
	uint64_t first_seq;
	uint32_t count; /* readings; 0 for a seal */
	uint16_t flags;
	const uint8_t *payload;
	size_t payload_len;
};

enum queue_frame_status {
	QUEUE_FRAME_OK,
	QUEUE_FRAME_END,     /* zeros or no room: the written part of the segment ends */
	QUEUE_FRAME_CORRUPT, /* something that is not a valid frame */
};

/*
 * The fields of a frame header as they stand, unchecked: to find a frame and size it
 * before reading it whole. Only queue_frame_check() says whether it is valid.
 */
struct queue_frame_head {
	uint32_t magic;
	uint32_t frame_len;
	uint64_t first_seq;
};

/* hdr holds at least QUEUE_FRAME_HEADER_LEN bytes. */
void queue_frame_peek(const uint8_t *hdr, struct queue_frame_head *ret);

/* The aligned size a frame with this payload occupies on disk. */
size_t queue_frame_size(size_t payload_len);

/*
 * Write a frame header for payload (which the caller placed at
 * buf + QUEUE_FRAME_HEADER_LEN) and the padding after it. Returns the aligned size.
 */
size_t queue_frame_encode(uint8_t *buf, uint64_t salt, uint64_t first_seq, uint32_t count,
			  uint16_t flags, size_t payload_len);

/*
 * Check the frame that should start at off in seg (the whole segment image, len
 * bytes): magic, length within bounds and within seg, first_seq == expected_seq, CRC
 * salted with salt, reserved bits zero, count >= 1 unless it is a seal, a seal's
 * payload consistent. Fills *ret on QUEUE_FRAME_OK.
 */
enum queue_frame_status queue_frame_check(const uint8_t *seg, size_t len, size_t off,
					  uint64_t expected_seq, uint64_t salt,
					  struct queue_frame *ret);

/* A seal's payload: what the segment holds. */
struct queue_seal {
	uint64_t last_seq; /* last reading in the segment (prev_seq if none) */
	uint64_t n_readings;
	uint64_t data_bytes; /* bytes of frames before the seal, header block excluded */
};

void queue_seal_encode(const struct queue_seal *s, uint8_t *payload);
void queue_seal_decode(const uint8_t *payload, struct queue_seal *ret);

#define QUEUE_CKPT_GAPS_MAX 32
/* Gaps end at 72 + 16 * 32 = 584; then a reserved u32 and the CRC. */
_Static_assert(QUEUE_CKPT_LEN == 72 + 16 * QUEUE_CKPT_GAPS_MAX + 8, "checkpoint layout");

/* A range of seqs that went missing and was counted in lost_total. */
struct queue_gap {
	uint64_t first, last;
};

struct queue_checkpoint {
	uint64_t generation;
	uint64_t stream_id;
	uint64_t acked_seq;	/* every reading <= this was delivered */
	uint64_t seq_reserved;	/* no seq above this was issued */
	uint64_t dropped_total; /* readings dropped by the full policy */
	uint64_t lost_total;	/* readings lost to corruption */
	/* Missing ranges already counted, sorted, disjoint, above acked_seq: a range is
	 * counted once however often the queue is opened. */
	uint32_t n_gaps;
	struct queue_gap gaps[QUEUE_CKPT_GAPS_MAX];
};

/*
 * Record that [first, last] is missing. Returns how many of its seqs were not
 * recorded before (to add to lost_total). Ranges at or below acked_seq are pruned;
 * when the list is full the lowest range is forgotten. Pure.
 */
uint64_t queue_checkpoint_add_gap(struct queue_checkpoint *c, uint64_t first, uint64_t last);

/* Write one slot (QUEUE_CKPT_SLOT_SIZE bytes, zero-padded). */
void queue_checkpoint_encode(const struct queue_checkpoint *c, uint8_t *slot);

/* 0 for a valid slot, -EBADMSG otherwise. */
int queue_checkpoint_decode(const uint8_t *slot, size_t len, struct queue_checkpoint *ret);

/*
 * Choose between the two slots of the checkpoint file (either may be NULL or short):
 * the valid one with the higher generation. Returns 0 (slot 0), 1 (slot 1) or -ENOENT
 * when neither is valid; fills *ret for the chosen one.
 */
int queue_checkpoint_pick(const uint8_t *slot0, size_t len0, const uint8_t *slot1, size_t len1,
			  struct queue_checkpoint *ret);

/*
 * queue_checkpoint_pick() over the contents of a checkpoint file (len bytes read from
 * its start, possibly short): the slots are its two halves. Returns what pick does.
 */
int queue_checkpoint_pick_file(const uint8_t *file, size_t len, struct queue_checkpoint *ret);

/* ---- readings in a frame payload ---- */

/*
 * A frame payload is its readings back to back:
 *
 *   varint  timestamp delta  zigzag, from the previous reading of the frame (from 0
 *                            for the first)
 *   varint  schema           0: a schema follows inline and gets the next number
 *                            (1, 2, ...); k: the k-th inline schema of this frame
 *   [schema: varint topic_len, topic, varint n_fields,
 *            n_fields x (u8 type, varint name_len, name)]
 *   values, one per field in schema order:
 *            f64: 8 bytes; i64: zigzag varint; bool: 1 byte; string: varint len, bytes
 *
 * Readings of one input share a schema (topic, field names and types), so after the
 * first reading of a frame a 3-field reading costs about 2 + 1 + its values.
 */

struct queue_encoder {
	int64_t prev_ts;
	unsigned n_schemas;
	/* Hashes and payload offsets of this frame's inline schemas, for reuse. */
	struct {
		uint64_t hash;
		uint32_t offset, len;
	} schemas[64];
};

/* Start a new frame payload. */
void queue_encoder_reset(struct queue_encoder *e);

/*
 * The schema part and the value part of a reading, encoded apart so that producers can
 * do this outside the queue's lock. buf must hold QUEUE_RECORD_MAX bytes.
 */
struct queue_record_parts {
	uint8_t *schema;
	size_t schema_len;
	uint64_t schema_hash;
	uint8_t *values;
	size_t values_len;
};

void queue_record_prepare(const struct cg_reading *r, uint8_t *buf, struct queue_record_parts *ret);

/*
 * Append the prepared reading with timestamp ts to the frame payload at out (which
 * already holds payload_len bytes of this frame). Returns the bytes written; at most
 * queue_record_bound(parts).
 */
size_t queue_record_append(struct queue_encoder *e, const struct queue_record_parts *p, int64_t ts,
			   uint8_t *out, size_t payload_len);
size_t queue_record_bound(const struct queue_record_parts *p);

/* A decoded reading; strings point into the frame payload and are not NUL-terminated,
 * so the decoder copies them into its own buffer. */
struct queue_decoder {
	const uint8_t *payload;
	size_t len, off;
	int64_t prev_ts;
	unsigned n_schemas;
	size_t schema_offsets[64];
	/* Storage for the decoded reading. */
	struct cg_field fields[CG_FIELDS_MAX];
	char text[QUEUE_RECORD_MAX + CG_FIELDS_MAX * 2 + CG_TOPIC_MAX + 2];
};

void queue_decoder_init(struct queue_decoder *d, const uint8_t *payload, size_t len);

/*
 * Decode the next reading into *ret (valid until the next call). Returns 1 for a
 * reading, 0 at the end of the payload, -EBADMSG for a malformed payload.
 */
int queue_decoder_next(struct queue_decoder *d, struct cg_reading *ret);

/* Segment files are "seg-<base_seq as 16 lower-case hex digits>.q". Parses a name
 * strictly (false for anything else, base 0 included). */
bool queue_segment_name_parse(const char *name, uint64_t *ret_base);

/* Write the name of the segment starting at base, with ".tmp" while being created. */
void queue_segment_name(char *buf, size_t size, uint64_t base, bool tmp);

/* zlib CRC-32 of salt (8 bytes, little-endian) followed by data. */
uint32_t queue_crc(uint64_t salt, const uint8_t *data, size_t len);

#endif
