// SPDX-License-Identifier: MIT
/*
 * Unit tests of queue_format.c, the pure functions behind the disk queue's on-disk
 * formats: segment headers, frames and seals, checkpoint slots, the compact reading
 * encoding and the salted CRC. Golden bytes (computed independently with Python's zlib)
 * pin format version 1; every rejection is tested with its CRC repaired, so that the
 * check under test, not the CRC, is what refuses. At the end, the fuzz_segment seeds
 * and regressions (tests/fuzz/) are replayed through the real queue in this production
 * build. Not here: the queue's runtime behaviour (appends, commits, full policies).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "../fuzz/segment_check.h"
#include "queue_format.h"

#define SALT 0x0123456789abcdefULL

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ---- CRC ---- */

static void test_crc_vectors(void **state)
{
	const uint8_t check[] = "123456789";
	uint8_t salted[8 + 9];

	/* zlib's CRC-32 (IEEE), not CRC-32C (whose check value is 0xE3069283). */
	assert_int_equal(crc32(0L, check, 9), 0xCBF43926u);
	/* queue_crc(salt, data) is the CRC of the salt's 8 little-endian bytes, then data. */
	assert_int_equal(queue_crc(SALT, check, 9), 0x8e5fcc26u);
	assert_int_equal(queue_crc(0, check, 9), 0xe412dc35u);
	put64(salted, SALT);
	memcpy(salted + 8, check, 9);
	assert_int_equal(queue_crc(SALT, check, 9), (uint32_t)crc32(0L, salted, sizeof(salted)));
	/* Every bit of the salt matters: a frame cannot validate under another salt. */
	for (int bit = 0; bit < 64; bit++)
		assert_int_not_equal(queue_crc(SALT, check, 9),
				     queue_crc(SALT ^ (1ULL << bit), check, 9));
	assert_int_not_equal(queue_crc(1, check, 9), queue_crc(2, check, 9));
	/* No data at all is still salted. */
	assert_int_not_equal(queue_crc(1, check, 0), queue_crc(2, check, 0));
}

/* ---- segment header ---- */

static const struct queue_segment_header golden_header = {
	.stream_id = 0x1122334455667788ULL,
	.base_seq = 0x100,
	.prev_seq = 0xff,
	.salt = SALT,
	.created_ns = 1700000000000000000ULL,
	.segment_size = 16 << 20,
};

/* Recompute the header CRC after a field was changed on purpose. */
static void header_fix_crc(uint8_t *buf)
{
	put32(buf + 68, (uint32_t)crc32(0L, buf, 68));
}

static void expect_header_equal(const struct queue_segment_header *a,
				const struct queue_segment_header *b)
{
	assert_int_equal(a->stream_id, b->stream_id);
	assert_int_equal(a->base_seq, b->base_seq);
	assert_int_equal(a->prev_seq, b->prev_seq);
	assert_int_equal(a->salt, b->salt);
	assert_int_equal(a->created_ns, b->created_ns);
	assert_int_equal(a->segment_size, b->segment_size);
}

static void test_header_golden(void **state)
{
	static const uint8_t golden[QUEUE_HEADER_LEN] = {
		'C',  'G',  'Q',  'S',	'E',  'G',  '1',  0,	/* magic */
		1,    0,    0,	  0,	72,   0,    0,	  0,	/* version, flags, header_len */
		0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* stream_id */
		0x00, 0x01, 0,	  0,	0,    0,    0,	  0,	/* base_seq */
		0xff, 0,    0,	  0,	0,    0,    0,	  0,	/* prev_seq */
		0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01, /* salt */
		0x00, 0x00, 0x2a, 0x36, 0xfe, 0x9c, 0x97, 0x17, /* created_ns */
		0,    0,    0,	  1,	0,    0,    0,	  0,	/* segment_size */
		0,    0,    0,	  0,				/* reserved */
		0x2b, 0xa6, 0x01, 0xaa,				/* crc32 */
	};
	uint8_t buf[QUEUE_HEADER_BLOCK];
	struct queue_segment_header h;

	memset(buf, 0xa5, sizeof(buf));
	queue_header_encode(&golden_header, buf);
	assert_memory_equal(buf, golden, sizeof(golden));
	for (size_t i = QUEUE_HEADER_LEN; i < QUEUE_HEADER_BLOCK; i++)
		if (buf[i])
			fail_msg("header block byte %zu is 0x%02x, not zero", i, buf[i]);
	/* A header written by this version decodes to what was encoded. */
	memset(&h, 0, sizeof(h));
	assert_int_equal(queue_header_decode(golden, sizeof(golden), &h), 0);
	expect_header_equal(&h, &golden_header);
}

static void test_header_round_trip(void **state)
{
	const struct queue_segment_header cases[] = {
		golden_header,
		{ .base_seq = 1, .prev_seq = 0 },
		{ .stream_id = UINT64_MAX,
		  .base_seq = UINT64_MAX,
		  .prev_seq = UINT64_MAX - 1,
		  .salt = UINT64_MAX,
		  .created_ns = UINT64_MAX,
		  .segment_size = UINT64_MAX },
		/* prev_seq far below base_seq: seqs reserved but never issued. */
		{ .stream_id = 1, .base_seq = 1ULL << 40, .prev_seq = 5, .salt = 0 },
	};
	uint8_t buf[QUEUE_HEADER_BLOCK];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct queue_segment_header h;

		queue_header_encode(&cases[i], buf);
		assert_int_equal(queue_header_decode(buf, sizeof(buf), &h), 0);
		expect_header_equal(&h, &cases[i]);
		/* QUEUE_HEADER_LEN bytes are enough, one fewer is not. */
		assert_int_equal(queue_header_decode(buf, QUEUE_HEADER_LEN, &h), 0);
		expect_header_equal(&h, &cases[i]);
		assert_int_equal(queue_header_decode(buf, QUEUE_HEADER_LEN - 1, &h), -EBADMSG);
		assert_int_equal(queue_header_decode(buf, 0, &h), -EBADMSG);
	}
}

/* Encode the golden header, let change() damage it, optionally repair the CRC. */
static int decode_changed(void (*change)(uint8_t *buf), bool fix_crc)
{
	uint8_t buf[QUEUE_HEADER_BLOCK];
	struct queue_segment_header h;

	queue_header_encode(&golden_header, buf);
	change(buf);
	if (fix_crc)
		header_fix_crc(buf);
	return queue_header_decode(buf, sizeof(buf), &h);
}

static void change_magic(uint8_t *b)
{
	b[6] = '2';
}
static void change_magic_nul(uint8_t *b)
{
	b[7] = 'X';
}
static void change_version2(uint8_t *b)
{
	put16(b + 8, 2);
}
static void change_version0(uint8_t *b)
{
	put16(b + 8, 0);
}
static void change_version_high(uint8_t *b)
{
	put16(b + 8, 0x0101);
}
static void change_flags(uint8_t *b)
{
	put16(b + 10, 1);
}
static void change_flags_high(uint8_t *b)
{
	put16(b + 10, 0x8000);
}
static void change_header_len(uint8_t *b)
{
	put32(b + 12, 4096);
}
static void change_reserved(uint8_t *b)
{
	put32(b + 64, 0x80000000u);
}
static void change_base_zero(uint8_t *b)
{
	put64(b + 24, 0);
	put64(b + 32, 0);
}
static void change_prev_equal(uint8_t *b)
{
	put64(b + 32, get64(b + 24));
}
static void change_prev_above(uint8_t *b)
{
	put64(b + 32, UINT64_MAX);
}
static void change_none(uint8_t *b)
{
}

static void test_header_rejections(void **state)
{
	uint8_t buf[QUEUE_HEADER_BLOCK];
	struct queue_segment_header h;

	assert_int_equal(decode_changed(change_none, true), 0);
	/* Each check on its own, with a correct CRC. */
	assert_int_equal(decode_changed(change_magic, true), -EBADMSG);
	assert_int_equal(decode_changed(change_magic_nul, true), -EBADMSG);
	assert_int_equal(decode_changed(change_version2, true), -EPROTONOSUPPORT);
	assert_int_equal(decode_changed(change_version0, true), -EPROTONOSUPPORT);
	assert_int_equal(decode_changed(change_version_high, true), -EPROTONOSUPPORT);
	assert_int_equal(decode_changed(change_flags, true), -EBADMSG);
	assert_int_equal(decode_changed(change_flags_high, true), -EBADMSG);
	assert_int_equal(decode_changed(change_header_len, true), -EBADMSG);
	assert_int_equal(decode_changed(change_reserved, true), -EBADMSG);
	assert_int_equal(decode_changed(change_base_zero, true), -EBADMSG);
	assert_int_equal(decode_changed(change_prev_equal, true), -EBADMSG);
	assert_int_equal(decode_changed(change_prev_above, true), -EBADMSG);
	/* A damaged header is damaged, whatever it seems to say: the CRC comes first. */
	assert_int_equal(decode_changed(change_version2, false), -EBADMSG);

	/* Every single-bit flip in the 72 bytes is caught. */
	queue_header_encode(&golden_header, buf);
	for (size_t bit = 0; bit < QUEUE_HEADER_LEN * 8; bit++) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (queue_header_decode(buf, sizeof(buf), &h) != -EBADMSG)
			fail_msg("header with bit %zu flipped was not rejected", bit);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	/* An all-zero block (a preallocated file never written) is not a header. */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(queue_header_decode(buf, sizeof(buf), &h), -EBADMSG);
}

/* ---- frames ---- */

/* Build a frame with payload at buf; returns its aligned size. */
static size_t build_frame(uint8_t *buf, uint64_t salt, uint64_t first_seq, uint32_t count,
			  uint16_t flags, const void *payload, size_t payload_len)
{
	memcpy(buf + QUEUE_FRAME_HEADER_LEN, payload, payload_len);
	return queue_frame_encode(buf, salt, first_seq, count, flags, payload_len);
}

/* Recompute a frame's CRC (under salt) after a header field was changed on purpose;
 * frame_len is taken as given, not from the header. */
static void frame_fix_crc(uint8_t *f, size_t frame_len, uint64_t salt)
{
	put32(f + 24, 0);
	put32(f + 24, queue_crc(salt, f, frame_len));
}

static enum queue_frame_status check(const uint8_t *seg, size_t len, size_t off, uint64_t seq,
				     uint64_t salt)
{
	struct queue_frame f;

	return queue_frame_check(seg, len, off, seq, salt, &f);
}

/* queue_frame_peek() reads the fields as written, valid or not, for sizing a read. */
static void test_frame_peek(void **state)
{
	uint8_t buf[QUEUE_FRAME_HEADER_LEN + 16];
	struct queue_frame_head h;

	(void)state;
	queue_frame_encode(buf, 0x1234, 0x0102030405060708ULL, 3, 0, 16);
	queue_frame_peek(buf, &h);
	assert_int_equal(h.magic, QUEUE_FRAME_MAGIC);
	assert_int_equal(h.frame_len, QUEUE_FRAME_HEADER_LEN + 16);
	assert_int_equal(h.first_seq, 0x0102030405060708ULL);
	memset(buf, 0xff, QUEUE_FRAME_HEADER_LEN);
	queue_frame_peek(buf, &h);
	assert_int_equal(h.magic, UINT32_MAX);
	assert_int_equal(h.frame_len, UINT32_MAX);
	assert_int_equal(h.first_seq, UINT64_MAX);
}

static void test_frame_size(void **state)
{
	assert_int_equal(queue_frame_size(0), 32);
	for (size_t i = 1; i <= 8; i++)
		assert_int_equal(queue_frame_size(i), 40);
	assert_int_equal(queue_frame_size(9), 48);
	assert_int_equal(queue_frame_size(QUEUE_SEAL_PAYLOAD_LEN), 56);
	assert_int_equal(queue_frame_size(1000), 1032);
	assert_int_equal(queue_frame_size(1001), 1040);
	for (size_t i = 0; i < 100; i++) {
		assert_int_equal(queue_frame_size(i) % QUEUE_FRAME_ALIGN, 0);
		assert_true(queue_frame_size(i) >= QUEUE_FRAME_HEADER_LEN + i);
		assert_true(queue_frame_size(i) < QUEUE_FRAME_HEADER_LEN + i + QUEUE_FRAME_ALIGN);
	}
}

static void test_frame_golden(void **state)
{
	static const uint8_t golden[40] = {
		0x43, 0x47, 0x51, 0x46, 35, 0, 0, 0, /* magic "CGQF", frame_len */
		0x00, 0x01, 0,	  0,	0,  0, 0, 0, /* first_seq */
		2,    0,    0,	  0,	0,  0, 0, 0, /* count, flags, reserved */
		0x18, 0x40, 0x28, 0x76, 3,  0, 0, 0, /* crc32, payload_len */
		'a',  'b',  'c',  0,	0,  0, 0, 0, /* payload, padding */
	};
	uint8_t buf[64];
	struct queue_frame f;

	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(build_frame(buf, SALT, 0x100, 2, 0, "abc", 3), 40);
	assert_memory_equal(buf, golden, sizeof(golden));
	assert_int_equal(buf[40], 0xa5); /* nothing written past the padding */
	assert_int_equal(queue_frame_check(golden, sizeof(golden), 0, 0x100, SALT, &f),
			 QUEUE_FRAME_OK);
}

static void test_frame_round_trip(void **state)
{
	uint8_t seg[4096], payload[64];
	size_t off = 0;
	uint64_t seq = 1;

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(0x80 + i);
	memset(seg, 0xee, sizeof(seg));
	/* Frames of every payload length 0..40 back to back, each at its aligned place. */
	for (size_t plen = 0; plen <= 40; plen++) {
		size_t size =
		    build_frame(seg + off, SALT, seq, (uint32_t)plen + 1, 0, payload, plen);

		assert_int_equal(size, queue_frame_size(plen));
		/* Padding is zero. */
		for (size_t i = QUEUE_FRAME_HEADER_LEN + plen; i < size; i++)
			assert_int_equal(seg[off + i], 0);
		off += size;
		seq += plen + 1;
	}
	memset(seg + off, 0, sizeof(seg) - off);

	off = 0;
	seq = 1;
	for (size_t plen = 0; plen <= 40; plen++) {
		struct queue_frame f;

		memset(&f, 0xff, sizeof(f));
		assert_int_equal(queue_frame_check(seg, sizeof(seg), off, seq, SALT, &f),
				 QUEUE_FRAME_OK);
		assert_int_equal(f.offset, off);
		assert_int_equal(f.frame_len, QUEUE_FRAME_HEADER_LEN + plen);
		assert_int_equal(f.next_offset, off + queue_frame_size(plen));
		assert_int_equal(f.next_offset % QUEUE_FRAME_ALIGN, 0);
		assert_int_equal(f.first_seq, seq);
		assert_int_equal(f.count, plen + 1);
		assert_int_equal(f.flags, 0);
		assert_ptr_equal(f.payload, seg + off + QUEUE_FRAME_HEADER_LEN);
		assert_int_equal(f.payload_len, plen);
		assert_memory_equal(f.payload, payload, plen);
		off = f.next_offset;
		seq += f.count;
	}
	/* The zeros after the last frame: the written part ends. */
	assert_int_equal(check(seg, sizeof(seg), off, seq, SALT), QUEUE_FRAME_END);
}

static void test_frame_end(void **state)
{
	uint8_t seg[256] = { 0 };

	/* Zeros, as in the preallocated rest of a segment. */
	assert_int_equal(check(seg, sizeof(seg), 0, 1, SALT), QUEUE_FRAME_END);
	assert_int_equal(check(seg, sizeof(seg), 64, 1, SALT), QUEUE_FRAME_END);
	/* A zero frame header is the end even if something follows it. */
	memset(seg + 32, 0xff, 32);
	assert_int_equal(check(seg, sizeof(seg), 0, 1, SALT), QUEUE_FRAME_END);
	/* Too little room for a frame header, even a valid one. */
	build_frame(seg, SALT, 1, 1, 0, "x", 1);
	for (size_t len = 0; len < QUEUE_FRAME_HEADER_LEN; len++)
		assert_int_equal(check(seg, len, 0, 1, SALT), QUEUE_FRAME_END);
	assert_int_equal(check(seg, sizeof(seg), sizeof(seg), 1, SALT), QUEUE_FRAME_END);
	assert_int_equal(check(seg, sizeof(seg), sizeof(seg) - 8, 1, SALT), QUEUE_FRAME_END);
	assert_int_equal(check(seg, sizeof(seg), sizeof(seg) + 8, 1, SALT), QUEUE_FRAME_END);
	assert_int_equal(check(seg, 100, 72, 1, SALT), QUEUE_FRAME_END);
	/* Frames start 8-byte aligned: nothing valid starts elsewhere. */
	memmove(seg + 4, seg, 40);
	assert_int_not_equal(check(seg, sizeof(seg), 4, 1, SALT), QUEUE_FRAME_OK);
}

/* A valid frame in seg[0..), payload "0123456789", seq 10, count 3. */
#define CORRUPT_PAYLOAD "0123456789"
#define CORRUPT_LEN	(QUEUE_FRAME_HEADER_LEN + 10)

static void make_frame(uint8_t *seg, size_t size)
{
	memset(seg, 0, size);
	build_frame(seg, SALT, 10, 3, 0, CORRUPT_PAYLOAD, 10);
	assert_int_equal(check(seg, size, 0, 10, SALT), QUEUE_FRAME_OK);
}

static void expect_corrupt(const uint8_t *seg, size_t len, const char *what)
{
	struct queue_frame f, before;

	memset(&f, 0x5a, sizeof(f));
	before = f;
	if (queue_frame_check(seg, len, 0, 10, SALT, &f) != QUEUE_FRAME_CORRUPT)
		fail_msg("%s: not QUEUE_FRAME_CORRUPT", what);
	/* *ret is written only for a valid frame. */
	assert_memory_equal(&f, &before, sizeof(f));
}

static void test_frame_corrupt(void **state)
{
	uint8_t seg[128];

	make_frame(seg, sizeof(seg));
	put32(seg, 0x46514744);
	frame_fix_crc(seg, CORRUPT_LEN, SALT);
	expect_corrupt(seg, sizeof(seg), "magic");

	make_frame(seg, sizeof(seg));
	put32(seg, 0);
	frame_fix_crc(seg, CORRUPT_LEN, SALT);
	expect_corrupt(seg, sizeof(seg), "zero magic");

	for (uint32_t len = 0; len < QUEUE_FRAME_HEADER_LEN; len++) {
		make_frame(seg, sizeof(seg));
		put32(seg + 4, len);
		put32(seg + 28, len - QUEUE_FRAME_HEADER_LEN); /* wraps like a reader would */
		expect_corrupt(seg, sizeof(seg), "frame_len < 32");
	}

	/* frame_len past the buffer, by one byte and by far. */
	make_frame(seg, sizeof(seg));
	expect_corrupt(seg, CORRUPT_LEN - 1, "frame_len past the end");
	make_frame(seg, sizeof(seg));
	put32(seg + 4, sizeof(seg) + 1);
	put32(seg + 28, sizeof(seg) + 1 - QUEUE_FRAME_HEADER_LEN);
	expect_corrupt(seg, sizeof(seg), "frame_len past the buffer");
	make_frame(seg, sizeof(seg));
	put32(seg + 4, UINT32_MAX);
	put32(seg + 28, UINT32_MAX - QUEUE_FRAME_HEADER_LEN);
	expect_corrupt(seg, sizeof(seg), "frame_len 0xffffffff");

	make_frame(seg, sizeof(seg));
	put32(seg + 28, 11);
	frame_fix_crc(seg, CORRUPT_LEN, SALT);
	expect_corrupt(seg, sizeof(seg), "payload_len above frame_len - 32");
	make_frame(seg, sizeof(seg));
	put32(seg + 28, 9);
	frame_fix_crc(seg, CORRUPT_LEN, SALT);
	expect_corrupt(seg, sizeof(seg), "payload_len below frame_len - 32");

	make_frame(seg, sizeof(seg));
	assert_int_equal(check(seg, sizeof(seg), 0, 9, SALT), QUEUE_FRAME_CORRUPT);
	assert_int_equal(check(seg, sizeof(seg), 0, 11, SALT), QUEUE_FRAME_CORRUPT);
	assert_int_equal(check(seg, sizeof(seg), 0, 10 + (1ULL << 32), SALT), QUEUE_FRAME_CORRUPT);

	for (int bit = 0; bit < 16; bit++) {
		make_frame(seg, sizeof(seg));
		put16(seg + 22, (uint16_t)(1u << bit));
		frame_fix_crc(seg, CORRUPT_LEN, SALT);
		expect_corrupt(seg, sizeof(seg), "reserved bits");
	}
	for (int bit = 1; bit < 16; bit++) {
		make_frame(seg, sizeof(seg));
		put16(seg + 20, (uint16_t)(1u << bit));
		frame_fix_crc(seg, CORRUPT_LEN, SALT);
		expect_corrupt(seg, sizeof(seg), "unknown flags");
	}

	/* A data frame holds at least one reading. */
	memset(seg, 0, sizeof(seg));
	build_frame(seg, SALT, 10, 0, 0, CORRUPT_PAYLOAD, 10);
	expect_corrupt(seg, sizeof(seg), "count 0 on a data frame");

	/* A seal has no readings and exactly its 24-byte payload. */
	{
		uint8_t seal[QUEUE_SEAL_PAYLOAD_LEN + 8] = { 0 };

		memset(seg, 0, sizeof(seg));
		build_frame(seg, SALT, 10, 1, QUEUE_FRAME_SEAL, seal, QUEUE_SEAL_PAYLOAD_LEN);
		expect_corrupt(seg, sizeof(seg), "seal with count 1");
		memset(seg, 0, sizeof(seg));
		build_frame(seg, SALT, 10, UINT32_MAX, QUEUE_FRAME_SEAL, seal,
			    QUEUE_SEAL_PAYLOAD_LEN);
		expect_corrupt(seg, sizeof(seg), "seal with count 0xffffffff");
		memset(seg, 0, sizeof(seg));
		build_frame(seg, SALT, 10, 0, QUEUE_FRAME_SEAL, seal, QUEUE_SEAL_PAYLOAD_LEN - 8);
		expect_corrupt(seg, sizeof(seg), "short seal");
		memset(seg, 0, sizeof(seg));
		build_frame(seg, SALT, 10, 0, QUEUE_FRAME_SEAL, seal, QUEUE_SEAL_PAYLOAD_LEN + 1);
		expect_corrupt(seg, sizeof(seg), "long seal");
		memset(seg, 0, sizeof(seg));
		build_frame(seg, SALT, 10, 0, QUEUE_FRAME_SEAL, seal, 0);
		expect_corrupt(seg, sizeof(seg), "empty seal");
	}

	/* A frame copied from another segment: everything right but the salt. */
	make_frame(seg, sizeof(seg));
	assert_int_equal(check(seg, sizeof(seg), 0, 10, SALT + 1), QUEUE_FRAME_CORRUPT);
	assert_int_equal(check(seg, sizeof(seg), 0, 10, 0), QUEUE_FRAME_CORRUPT);

	/* A stored CRC that is simply wrong. */
	make_frame(seg, sizeof(seg));
	seg[24] ^= 1;
	expect_corrupt(seg, sizeof(seg), "crc field");

	/* Every single-bit flip in the payload, and in the header. */
	for (size_t bit = 0; bit < CORRUPT_LEN * 8; bit++) {
		struct queue_frame f;

		make_frame(seg, sizeof(seg));
		seg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (bit >= QUEUE_FRAME_HEADER_LEN * 8)
			expect_corrupt(seg, sizeof(seg), "payload bit flip");
		else if (queue_frame_check(seg, sizeof(seg), 0, 10, SALT, &f) == QUEUE_FRAME_OK)
			fail_msg("frame with header bit %zu flipped is OK", bit);
	}
}

static void test_frame_truncation(void **state)
{
	uint8_t payload[77], *seg;
	size_t size, second;

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 37 + 1);
	/* Two frames; the second is cut at every length below its own. */
	seg = malloc(512);
	assert_non_null(seg);
	memset(seg, 0, 512);
	second = build_frame(seg, SALT, 1, 1, 0, "a", 1);
	size = second + build_frame(seg + second, SALT, 2, 4, 0, payload, sizeof(payload));
	assert_int_equal(check(seg, size, second, 2, SALT), QUEUE_FRAME_OK);
	for (size_t len = 0; len < QUEUE_FRAME_HEADER_LEN + sizeof(payload); len++) {
		uint8_t *cut = malloc(second + len);
		enum queue_frame_status st;

		/* Exactly as long as the cut, so that ASan catches any read past it. */
		assert_non_null(cut);
		memcpy(cut, seg, second + len);
		st = check(cut, second + len, second, 2, SALT);
		if (st == QUEUE_FRAME_OK)
			fail_msg("frame cut to %zu bytes is OK", len);
		assert_int_equal(st, len < QUEUE_FRAME_HEADER_LEN ? QUEUE_FRAME_END
								  : QUEUE_FRAME_CORRUPT);
		/* The frame before it is not affected. */
		assert_int_equal(check(cut, second + len, 0, 1, SALT), QUEUE_FRAME_OK);
		free(cut);
	}
	/* Torn the other way: the tail of the frame is zeros (never reached the disk). */
	for (size_t keep = QUEUE_FRAME_HEADER_LEN; keep < QUEUE_FRAME_HEADER_LEN + sizeof(payload);
	     keep++) {
		uint8_t torn[512];

		memcpy(torn, seg, 512);
		memset(torn + second + keep, 0, 512 - second - keep);
		if (check(torn, size, second, 2, SALT) == QUEUE_FRAME_OK)
			fail_msg("frame with zeros from byte %zu is OK", keep);
	}
	free(seg);
}

static void test_seal_round_trip(void **state)
{
	const struct queue_seal cases[] = {
		{ .last_seq = 1234, .n_readings = 1000, .data_bytes = 65536 },
		{ .last_seq = 0, .n_readings = 0, .data_bytes = 0 },
		{ .last_seq = UINT64_MAX, .n_readings = UINT64_MAX, .data_bytes = UINT64_MAX },
	};
	uint8_t seg[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t payload[QUEUE_SEAL_PAYLOAD_LEN];
		struct queue_seal s;
		struct queue_frame f;

		memset(seg, 0, sizeof(seg));
		queue_seal_encode(&cases[i], payload);
		assert_int_equal(get64(payload), cases[i].last_seq);
		assert_int_equal(get64(payload + 8), cases[i].n_readings);
		assert_int_equal(get64(payload + 16), cases[i].data_bytes);
		assert_int_equal(build_frame(seg, SALT, cases[i].last_seq + 1, 0, QUEUE_FRAME_SEAL,
					     payload, sizeof(payload)),
				 QUEUE_FRAME_HEADER_LEN + QUEUE_SEAL_PAYLOAD_LEN);
		assert_int_equal(
		    queue_frame_check(seg, sizeof(seg), 0, cases[i].last_seq + 1, SALT, &f),
		    QUEUE_FRAME_OK);
		assert_int_equal(f.flags, QUEUE_FRAME_SEAL);
		assert_int_equal(f.count, 0);
		assert_int_equal(f.payload_len, QUEUE_SEAL_PAYLOAD_LEN);
		assert_int_equal(f.next_offset, 56);
		queue_seal_decode(f.payload, &s);
		assert_int_equal(s.last_seq, cases[i].last_seq);
		assert_int_equal(s.n_readings, cases[i].n_readings);
		assert_int_equal(s.data_bytes, cases[i].data_bytes);
		/* Exactly as long as it needs to be. */
		assert_int_equal(check(seg, 56, 0, cases[i].last_seq + 1, SALT), QUEUE_FRAME_OK);
		assert_int_not_equal(check(seg, 55, 0, cases[i].last_seq + 1, SALT),
				     QUEUE_FRAME_OK);
	}
}

/* ---- checkpoint ---- */

static const struct queue_checkpoint golden_ckpt = {
	.generation = 7,
	.stream_id = 0x1122334455667788ULL,
	.acked_seq = 100,
	.seq_reserved = 200,
	.dropped_total = 3,
	.lost_total = 4,
	.n_gaps = 1,
	.gaps = { { 140, 145 } },
};

static void expect_ckpt_equal(const struct queue_checkpoint *a, const struct queue_checkpoint *b)
{
	assert_int_equal(a->generation, b->generation);
	assert_int_equal(a->stream_id, b->stream_id);
	assert_int_equal(a->acked_seq, b->acked_seq);
	assert_int_equal(a->seq_reserved, b->seq_reserved);
	assert_int_equal(a->dropped_total, b->dropped_total);
	assert_int_equal(a->lost_total, b->lost_total);
	assert_int_equal(a->n_gaps, b->n_gaps);
	for (uint32_t i = 0; i < b->n_gaps; i++) {
		if (a->gaps[i].first != b->gaps[i].first || a->gaps[i].last != b->gaps[i].last)
			fail_msg("gap %u: %llu..%llu, expected %llu..%llu", i,
				 (unsigned long long)a->gaps[i].first,
				 (unsigned long long)a->gaps[i].last,
				 (unsigned long long)b->gaps[i].first,
				 (unsigned long long)b->gaps[i].last);
	}
}

static void ckpt_fix_crc(uint8_t *slot)
{
	put32(slot + QUEUE_CKPT_LEN - 4, (uint32_t)crc32(0L, slot, QUEUE_CKPT_LEN - 4));
}

/* A checkpoint with n gaps, as the queue would keep them: sorted, disjoint, apart. */
static struct queue_checkpoint ckpt_with_gaps(uint32_t n)
{
	struct queue_checkpoint c = golden_ckpt;

	c.n_gaps = n;
	for (uint32_t i = 0; i < n; i++) {
		/* High bits set everywhere, so that no byte of a gap is zero by chance. */
		c.gaps[i].first = 0x0101010101010000ULL + 1000 * (uint64_t)i + 1;
		c.gaps[i].last = c.gaps[i].first + i * 7;
	}
	c.acked_seq = 0x0101010101010000ULL;
	return c;
}

static void test_checkpoint_golden(void **state)
{
	/* Version 1, one gap. The bytes up to the reserved word before the CRC. */
	static const uint8_t golden[88] = {
		'C',  'G',  'Q',  'C',	'K',  'P',  'T',  '1',	/* magic */
		1,    0,    0,	  0,	0,    0,    0,	  0,	/* version, reserved */
		7,    0,    0,	  0,	0,    0,    0,	  0,	/* generation */
		0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* stream_id */
		100,  0,    0,	  0,	0,    0,    0,	  0,	/* acked_seq */
		200,  0,    0,	  0,	0,    0,    0,	  0,	/* seq_reserved */
		3,    0,    0,	  0,	0,    0,    0,	  0,	/* dropped_total */
		4,    0,    0,	  0,	0,    0,    0,	  0,	/* lost_total */
		1,    0,    0,	  0,	0,    0,    0,	  0,	/* n_gaps, reserved */
		140,  0,    0,	  0,	0,    0,    0,	  0,	/* gaps[0].first */
		145,  0,    0,	  0,	0,    0,    0,	  0,	/* gaps[0].last */
	};
	uint8_t slot[QUEUE_CKPT_SLOT_SIZE];
	struct queue_checkpoint c;

	memset(slot, 0xa5, sizeof(slot));
	queue_checkpoint_encode(&golden_ckpt, slot);
	assert_memory_equal(slot, golden, sizeof(golden));
	/* Then zeros, and the CRC of everything before it in the last 4 bytes. */
	for (size_t i = sizeof(golden); i < QUEUE_CKPT_LEN - 4; i++)
		if (slot[i])
			fail_msg("checkpoint byte %zu is 0x%02x, not zero", i, slot[i]);
	assert_int_equal(get32(slot + QUEUE_CKPT_LEN - 4),
			 (uint32_t)crc32(0L, slot, QUEUE_CKPT_LEN - 4));
	if (QUEUE_CKPT_LEN == 96) /* as computed by Python's zlib */
		assert_int_equal(get32(slot + 92), 0x95e0369fu);
	for (size_t i = QUEUE_CKPT_LEN; i < QUEUE_CKPT_SLOT_SIZE; i++)
		if (slot[i])
			fail_msg("checkpoint slot byte %zu is 0x%02x, not zero", i, slot[i]);
	assert_int_equal(queue_checkpoint_decode(slot, sizeof(slot), &c), 0);
	expect_ckpt_equal(&c, &golden_ckpt);
}

static void test_checkpoint_round_trip(void **state)
{
	struct queue_checkpoint cases[4] = {
		golden_ckpt,
		{ 0 },
		{ UINT64_MAX,
		  UINT64_MAX,
		  UINT64_MAX,
		  UINT64_MAX,
		  UINT64_MAX,
		  UINT64_MAX,
		  1,
		  { { UINT64_MAX, UINT64_MAX } } },
		{ .generation = 1, .n_gaps = 1, .gaps = { { 1, UINT64_MAX } } },
	};
	uint8_t slot[QUEUE_CKPT_SLOT_SIZE];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct queue_checkpoint c;

		queue_checkpoint_encode(&cases[i], slot);
		assert_int_equal(queue_checkpoint_decode(slot, sizeof(slot), &c), 0);
		expect_ckpt_equal(&c, &cases[i]);
		assert_int_equal(queue_checkpoint_decode(slot, QUEUE_CKPT_LEN, &c), 0);
		assert_int_equal(queue_checkpoint_decode(slot, QUEUE_CKPT_LEN - 1, &c), -EBADMSG);
		assert_int_equal(queue_checkpoint_decode(slot, 0, &c), -EBADMSG);
	}
}

/*
 * The queue keeps up to QUEUE_CKPT_GAPS_MAX missing ranges in the checkpoint; every
 * one of them must survive a write and a read, or a restart counts them again and,
 * worse, the slot is refused and the acked position falls back a generation.
 */
static void test_checkpoint_round_trip_gaps(void **state)
{
	uint8_t slot[QUEUE_CKPT_SLOT_SIZE];

	for (uint32_t n = 0; n <= QUEUE_CKPT_GAPS_MAX; n++) {
		struct queue_checkpoint want = ckpt_with_gaps(n), got;
		int r;

		queue_checkpoint_encode(&want, slot);
		r = queue_checkpoint_decode(slot, sizeof(slot), &got);
		if (r != 0)
			fail_msg("a checkpoint with %u gaps does not decode: %d", n, r);
		expect_ckpt_equal(&got, &want);
	}
}

/* Every byte that holds checkpoint data is covered by the CRC, the last gap's too. */
static void test_checkpoint_crc_covers_gaps(void **state)
{
	const struct queue_checkpoint c = ckpt_with_gaps(QUEUE_CKPT_GAPS_MAX);
	const size_t used = 72 + 16 * QUEUE_CKPT_GAPS_MAX;
	uint8_t slot[QUEUE_CKPT_SLOT_SIZE];
	struct queue_checkpoint got;

	queue_checkpoint_encode(&c, slot);
	assert_int_equal(queue_checkpoint_decode(slot, sizeof(slot), &got), 0);
	for (size_t bit = 0; bit < used * 8; bit++) {
		slot[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (queue_checkpoint_decode(slot, sizeof(slot), &got) == 0)
			fail_msg("checkpoint with bit %zu (byte %zu) flipped is accepted", bit,
				 bit / 8);
		slot[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
}

static void test_checkpoint_rejections(void **state)
{
	uint8_t slot[QUEUE_CKPT_SLOT_SIZE];
	struct queue_checkpoint c;

	assert_int_equal(queue_checkpoint_decode(NULL, QUEUE_CKPT_SLOT_SIZE, &c), -EBADMSG);

	queue_checkpoint_encode(&golden_ckpt, slot);
	slot[7] = '2';
	ckpt_fix_crc(slot);
	assert_int_equal(queue_checkpoint_decode(slot, sizeof(slot), &c), -EBADMSG);

	queue_checkpoint_encode(&golden_ckpt, slot);
	put32(slot + 8, 2);
	ckpt_fix_crc(slot);
	assert_int_equal(queue_checkpoint_decode(slot, sizeof(slot), &c), -EBADMSG);

	/* Reserved words (after the version, after n_gaps, before the CRC) must be zero. */
	queue_checkpoint_encode(&golden_ckpt, slot);
	put32(slot + 12, 1);
	ckpt_fix_crc(slot);
	assert_int_equal(queue_checkpoint_decode(slot, sizeof(slot), &c), -EBADMSG);
	queue_checkpoint_encode(&golden_ckpt, slot);
	put32(slot + 68, 1);
	ckpt_fix_crc(slot);
	assert_int_equal(queue_checkpoint_decode(slot, sizeof(slot), &c), -EBADMSG);
	queue_checkpoint_encode(&golden_ckpt, slot);
	put32(slot + QUEUE_CKPT_LEN - 8, 0x80000000u);
	ckpt_fix_crc(slot);
	assert_int_equal(queue_checkpoint_decode(slot, sizeof(slot), &c), -EBADMSG);

	/* More gaps than there is room for. */
	queue_checkpoint_encode(&golden_ckpt, slot);
	put32(slot + 64, QUEUE_CKPT_GAPS_MAX + 1);
	ckpt_fix_crc(slot);
	assert_int_equal(queue_checkpoint_decode(slot, sizeof(slot), &c), -EBADMSG);
	queue_checkpoint_encode(&golden_ckpt, slot);
	put32(slot + 64, UINT32_MAX);
	ckpt_fix_crc(slot);
	assert_int_equal(queue_checkpoint_decode(slot, sizeof(slot), &c), -EBADMSG);
	/* A gap that ends before it starts. */
	queue_checkpoint_encode(&golden_ckpt, slot);
	put64(slot + 72, 146);
	ckpt_fix_crc(slot);
	assert_int_equal(queue_checkpoint_decode(slot, sizeof(slot), &c), -EBADMSG);

	/* Every single-bit flip of the bytes up to the CRC. */
	queue_checkpoint_encode(&golden_ckpt, slot);
	for (size_t bit = 0; bit < QUEUE_CKPT_LEN * 8; bit++) {
		slot[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (queue_checkpoint_decode(slot, sizeof(slot), &c) != -EBADMSG)
			fail_msg("checkpoint with bit %zu flipped was not rejected", bit);
		slot[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	/* A slot that was preallocated but never written. */
	memset(slot, 0, sizeof(slot));
	assert_int_equal(queue_checkpoint_decode(slot, sizeof(slot), &c), -EBADMSG);
}

static void encode_ckpt_gen(uint8_t *slot, uint64_t generation, uint64_t acked)
{
	struct queue_checkpoint c = golden_ckpt;

	c.generation = generation;
	c.acked_seq = acked;
	queue_checkpoint_encode(&c, slot);
}

static int pick(const uint8_t *s0, size_t l0, const uint8_t *s1, size_t l1,
		struct queue_checkpoint *ret)
{
	return queue_checkpoint_pick(s0, l0, s1, l1, ret);
}

static void test_checkpoint_pick(void **state)
{
	uint8_t *file = calloc(2, QUEUE_CKPT_SLOT_SIZE);
	uint8_t *s0 = file, *s1 = file + QUEUE_CKPT_SLOT_SIZE;
	const size_t n = QUEUE_CKPT_SLOT_SIZE;
	struct queue_checkpoint c, before;

	assert_non_null(file);
	/* Both valid: the higher generation wins, in either slot. */
	encode_ckpt_gen(s0, 10, 1000);
	encode_ckpt_gen(s1, 11, 1100);
	assert_int_equal(pick(s0, n, s1, n, &c), 1);
	assert_int_equal(c.generation, 11);
	assert_int_equal(c.acked_seq, 1100);
	encode_ckpt_gen(s0, 12, 1200);
	assert_int_equal(pick(s0, n, s1, n, &c), 0);
	assert_int_equal(c.generation, 12);
	assert_int_equal(c.acked_seq, 1200);
	/* Generations compare as 64-bit numbers. */
	encode_ckpt_gen(s0, 1ULL << 32, 1);
	encode_ckpt_gen(s1, (1ULL << 32) - 1, 2);
	assert_int_equal(pick(s0, n, s1, n, &c), 0);
	assert_int_equal(c.acked_seq, 1);
	encode_ckpt_gen(s0, 5, 1);
	encode_ckpt_gen(s1, UINT64_MAX, 2);
	assert_int_equal(pick(s0, n, s1, n, &c), 1);
	assert_int_equal(c.acked_seq, 2);
	/* Equal generations (never written so): one of them, consistently reported. */
	encode_ckpt_gen(s0, 9, 90);
	encode_ckpt_gen(s1, 9, 91);
	{
		int r = pick(s0, n, s1, n, &c);

		assert_true(r == 0 || r == 1);
		assert_int_equal(c.acked_seq, r == 0 ? 90 : 91);
	}

	/* A bit flip in the newer slot: the older one is used. */
	encode_ckpt_gen(s0, 20, 2000);
	encode_ckpt_gen(s1, 21, 2100);
	s1[40] ^= 0x10;
	assert_int_equal(pick(s0, n, s1, n, &c), 0);
	assert_int_equal(c.generation, 20);
	s1[40] ^= 0x10;
	s0[40] ^= 0x10;
	assert_int_equal(pick(s0, n, s1, n, &c), 1);
	assert_int_equal(c.generation, 21);
	encode_ckpt_gen(s0, 22, 2200);
	s0[17] ^= 0x01; /* the generation itself */
	assert_int_equal(pick(s0, n, s1, n, &c), 1);
	assert_int_equal(c.generation, 21);
	s0[17] ^= 0x01;
	s1[QUEUE_CKPT_LEN - 1] ^= 0x80; /* the CRC */
	assert_int_equal(pick(s0, n, s1, n, &c), 0);
	assert_int_equal(c.generation, 22);

	/* One slot missing or short (a file cut by a crash). */
	encode_ckpt_gen(s0, 30, 3000);
	encode_ckpt_gen(s1, 31, 3100);
	assert_int_equal(pick(s0, n, NULL, 0, &c), 0);
	assert_int_equal(c.generation, 30);
	assert_int_equal(pick(NULL, 0, s1, n, &c), 1);
	assert_int_equal(c.generation, 31);
	assert_int_equal(pick(s0, n, s1, QUEUE_CKPT_LEN - 1, &c), 0);
	assert_int_equal(pick(s0, QUEUE_CKPT_LEN - 1, s1, n, &c), 1);
	assert_int_equal(pick(s0, n, s1, QUEUE_CKPT_LEN, &c), 1);
	assert_int_equal(pick(s0, QUEUE_CKPT_LEN, NULL, n, &c), 0);
	assert_int_equal(pick(s0, n, s1, 0, &c), 0);

	/* Neither valid: -ENOENT and *ret untouched. */
	memset(&c, 0x5a, sizeof(c));
	before = c;
	assert_int_equal(pick(NULL, 0, NULL, 0, &c), -ENOENT);
	assert_int_equal(pick(s0, QUEUE_CKPT_LEN - 1, s1, 10, &c), -ENOENT);
	s0[3] ^= 1;
	s1[50] ^= 4;
	assert_int_equal(pick(s0, n, s1, n, &c), -ENOENT);
	memset(file, 0, 2 * QUEUE_CKPT_SLOT_SIZE);
	assert_int_equal(pick(s0, n, s1, n, &c), -ENOENT);
	assert_memory_equal(&c, &before, sizeof(c));
	free(file);
}

/* Add [first, last] and check the count of new seqs and the resulting list. */
static void expect_add_gap(struct queue_checkpoint *c, uint64_t first, uint64_t last,
			   uint64_t fresh, const struct queue_gap *want, uint32_t n_want)
{
	uint64_t got = queue_checkpoint_add_gap(c, first, last);

	if (got != fresh)
		fail_msg("add_gap(%llu..%llu) = %llu, expected %llu", (unsigned long long)first,
			 (unsigned long long)last, (unsigned long long)got,
			 (unsigned long long)fresh);
	assert_int_equal(c->n_gaps, n_want);
	for (uint32_t i = 0; i < n_want; i++)
		if (c->gaps[i].first != want[i].first || c->gaps[i].last != want[i].last)
			fail_msg("after add_gap(%llu..%llu), gap %u is %llu..%llu, expected "
				 "%llu..%llu",
				 (unsigned long long)first, (unsigned long long)last, i,
				 (unsigned long long)c->gaps[i].first,
				 (unsigned long long)c->gaps[i].last,
				 (unsigned long long)want[i].first,
				 (unsigned long long)want[i].last);
}

#define GAPS(...)  ((const struct queue_gap[]){ __VA_ARGS__ })
#define NGAPS(...) (sizeof(GAPS(__VA_ARGS__)) / sizeof(struct queue_gap))
#define ADD(c, first, last, fresh, ...) \
	expect_add_gap((c), (first), (last), (fresh), GAPS(__VA_ARGS__), NGAPS(__VA_ARGS__))

static void test_checkpoint_add_gap(void **state)
{
	struct queue_checkpoint c = { .acked_seq = 10 };

	/* Nothing for an empty range. */
	assert_int_equal(queue_checkpoint_add_gap(&c, 5, 4), 0);
	assert_int_equal(c.n_gaps, 0);
	ADD(&c, 20, 29, 10, { 20, 29 });
	/* The same range again is nothing new. */
	ADD(&c, 20, 29, 0, { 20, 29 });
	ADD(&c, 22, 25, 0, { 20, 29 });
	/* Kept sorted. */
	ADD(&c, 50, 50, 1, { 20, 29 }, { 50, 50 });
	ADD(&c, 12, 13, 2, { 12, 13 }, { 20, 29 }, { 50, 50 });
	/* Overlapping: only the new part counts; merged into one range. */
	ADD(&c, 25, 34, 5, { 12, 13 }, { 20, 34 }, { 50, 50 });
	/* Touching ranges merge too. */
	ADD(&c, 35, 35, 1, { 12, 13 }, { 20, 35 }, { 50, 50 });
	ADD(&c, 14, 19, 6, { 12, 35 }, { 50, 50 });
	/* One range spanning several. */
	ADD(&c, 11, 60, 50 - 24 - 1, { 11, 60 });
	assert_int_equal(c.n_gaps, 1);

	/* Ranges at or below the acked position are forgotten. */
	c = (struct queue_checkpoint){ .acked_seq = 100 };
	ADD(&c, 90, 100, 11);
	assert_int_equal(c.n_gaps, 0);
	ADD(&c, 90, 101, 12, { 90, 101 });
	c.acked_seq = 101;
	ADD(&c, 200, 200, 1, { 200, 200 });

	/* Full: the lowest range goes. */
	c = (struct queue_checkpoint){ .acked_seq = 0 };
	for (uint64_t i = 0; i < QUEUE_CKPT_GAPS_MAX; i++)
		assert_int_equal(queue_checkpoint_add_gap(&c, 10 * i + 1, 10 * i + 2), 2);
	assert_int_equal(c.n_gaps, QUEUE_CKPT_GAPS_MAX);
	assert_int_equal(queue_checkpoint_add_gap(&c, 1000, 1000), 1);
	assert_int_equal(c.n_gaps, QUEUE_CKPT_GAPS_MAX);
	assert_int_equal(c.gaps[0].first, 11);
	assert_int_equal(c.gaps[QUEUE_CKPT_GAPS_MAX - 1].first, 1000);
	/* A range below all others when full is recorded and forgotten at once, but
	 * counted. */
	assert_int_equal(queue_checkpoint_add_gap(&c, 5, 5), 1);
	assert_int_equal(c.n_gaps, QUEUE_CKPT_GAPS_MAX);
	assert_int_equal(c.gaps[0].first, 11);
}

/* Seq UINT64_MAX is far away, but a damaged seal can claim it: no wrapping at the top. */
static void test_checkpoint_add_gap_extremes(void **state)
{
	struct queue_checkpoint c = { .acked_seq = 0 };

	ADD(&c, UINT64_MAX - 1, UINT64_MAX, 2, { UINT64_MAX - 1, UINT64_MAX });
	ADD(&c, UINT64_MAX, UINT64_MAX, 0, { UINT64_MAX - 1, UINT64_MAX });
	ADD(&c, 1, 1, 1, { 1, 1 }, { UINT64_MAX - 1, UINT64_MAX });
	ADD(&c, 2, UINT64_MAX, UINT64_MAX - 3, { 1, UINT64_MAX });
}

/*
 * The list's contract is "sorted, disjoint"; ranges that touch are both (and
 * queue_checkpoint_decode() accepts them from disk). Adding a range that merges with
 * one of them must keep every seq of the other recorded: a forgotten range is counted
 * as lost again at the next start.
 */
static void test_checkpoint_add_gap_touching(void **state)
{
	struct queue_checkpoint c = { .n_gaps = 2, .gaps = { { 1, 5 }, { 6, 9 } } };

	assert_int_equal(queue_checkpoint_add_gap(&c, 10, 10), 1);
	/* Everything in 1..10 is recorded now: nothing of it is new. */
	assert_int_equal(queue_checkpoint_add_gap(&c, 1, 10), 0);

	c = (struct queue_checkpoint){ .n_gaps = 3, .gaps = { { 1, 5 }, { 6, 9 }, { 10, 12 } } };
	assert_int_equal(queue_checkpoint_add_gap(&c, 7, 7), 0);
	assert_int_equal(queue_checkpoint_add_gap(&c, 1, 12), 0);
}

/* ---- segment names ---- */

static void test_segment_names(void **state)
{
	const uint64_t bases[] = { 1, 0x10, 0xabcdef, 1ULL << 63, UINT64_MAX };
	const char *bad[] = {
		"seg-0000000000000000.q",  /* base 0 */
		"seg-000000000000000A.q",  /* upper case */
		"seg-00000000000000001.q", /* 17 digits */
		"seg-000000000000001.q",   /* 15 digits */
		"seg-000000000000000g.q",  /* not hex */
		"seg-0000000000000001.q.tmp",
		"seg-0000000000000001.Q",
		"seg-0000000000000001.qq",
		"Seg-0000000000000001.q",
		"seg_0000000000000001.q",
		"seg-+000000000000001.q",
		"seg- 000000000000001.q",
		"seg-0000000000000001",
		"",
		"ckpt",
	};
	char name[64];

	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		uint64_t got = 0;

		queue_segment_name(name, sizeof(name), bases[i], false);
		assert_int_equal(strlen(name), 22);
		assert_true(queue_segment_name_parse(name, &got));
		assert_int_equal(got, bases[i]);
		queue_segment_name(name, sizeof(name), bases[i], true);
		assert_int_equal(strlen(name), 26);
		assert_string_equal(name + 22, ".tmp");
		assert_false(queue_segment_name_parse(name, &got));
	}
	queue_segment_name(name, sizeof(name), 0x1a2b3c, false);
	assert_string_equal(name, "seg-00000000001a2b3c.q");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t got = 12345;

		if (queue_segment_name_parse(bad[i], &got))
			fail_msg("\"%s\" parsed as a segment name", bad[i]);
		assert_int_equal(got, 12345);
	}
}

/* ---- readings ---- */

static void expect_field_equal(const struct cg_field *got, const struct cg_field *want, size_t i)
{
	uint64_t a, b;

	if (strcmp(got->name, want->name) != 0)
		fail_msg("field %zu: name \"%s\", expected \"%s\"", i, got->name, want->name);
	assert_int_equal(got->type, want->type);
	switch (want->type) {
	case CG_FIELD_F64:
		/* Bit for bit: NaN payloads and the sign of zero survive. */
		memcpy(&a, &got->value.f64, 8);
		memcpy(&b, &want->value.f64, 8);
		if (a != b)
			fail_msg("field %zu: f64 bits %016llx, expected %016llx", i,
				 (unsigned long long)a, (unsigned long long)b);
		break;
	case CG_FIELD_I64:
		assert_int_equal(got->value.i64, want->value.i64);
		break;
	case CG_FIELD_BOOL:
		assert_int_equal(got->value.b, want->value.b);
		break;
	case CG_FIELD_STRING:
		assert_string_equal(got->value.str, want->value.str);
		break;
	}
}

static void expect_reading_equal(const struct cg_reading *got, const struct cg_reading *want)
{
	assert_int_equal(got->timestamp_ms, want->timestamp_ms);
	assert_string_equal(got->topic, want->topic);
	assert_int_equal(got->n_fields, want->n_fields);
	for (size_t i = 0; i < want->n_fields; i++)
		expect_field_equal(&got->fields[i], &want->fields[i], i);
}

/* Encodes readings into one frame payload, the way a batch does. */
struct payload {
	struct queue_encoder enc;
	uint8_t *buf;
	size_t len, cap;
	size_t *ends; /* ends[i]: payload length after reading i */
	size_t n;
};

static void payload_init(struct payload *p, size_t cap)
{
	memset(p, 0, sizeof(*p));
	queue_encoder_reset(&p->enc);
	p->cap = cap;
	p->buf = malloc(cap);
	assert_non_null(p->buf);
}

static void payload_done(struct payload *p)
{
	free(p->buf);
	free(p->ends);
}

/* Append r (its timestamp_ms is the one encoded); returns the bytes it took. */
static size_t payload_add(struct payload *p, const struct cg_reading *r)
{
	static uint8_t scratch[QUEUE_RECORD_MAX];
	struct queue_record_parts parts;
	size_t n;

	queue_record_prepare(r, scratch, &parts);
	assert_true(parts.schema_len + parts.values_len <= QUEUE_RECORD_MAX);
	assert_true(p->len + queue_record_bound(&parts) <= p->cap);
	n = queue_record_append(&p->enc, &parts, r->timestamp_ms, p->buf, p->len);
	assert_true(n <= queue_record_bound(&parts));
	p->len += n;
	p->ends = realloc(p->ends, (p->n + 1) * sizeof(*p->ends));
	assert_non_null(p->ends);
	p->ends[p->n++] = p->len;
	return n;
}

/* Decode buf[0..len) (copied to a buffer of exactly len bytes) and compare. */
static void expect_decodes(const uint8_t *buf, size_t len, const struct cg_reading *want, size_t n)
{
	static struct queue_decoder d;
	uint8_t *copy = malloc(len ? len : 1);
	struct cg_reading got;

	assert_non_null(copy);
	memcpy(copy, buf, len);
	queue_decoder_init(&d, copy, len);
	for (size_t i = 0; i < n; i++) {
		int r = queue_decoder_next(&d, &got);

		if (r != 1)
			fail_msg("reading %zu of %zu: queue_decoder_next() = %d", i, n, r);
		expect_reading_equal(&got, &want[i]);
	}
	assert_int_equal(queue_decoder_next(&d, &got), 0);
	assert_int_equal(queue_decoder_next(&d, &got), 0);
	free(copy);
}

static void test_reading_all_types(void **state)
{
	const struct cg_field fields[] = {
		{ .name = "temp", .type = CG_FIELD_F64, .value.f64 = 21.5 },
		{ .name = "count", .type = CG_FIELD_I64, .value.i64 = -42 },
		{ .name = "on", .type = CG_FIELD_BOOL, .value.b = true },
		{ .name = "off", .type = CG_FIELD_BOOL, .value.b = false },
		{ .name = "state", .type = CG_FIELD_STRING, .value.str = "ok \xc3\xa9" },
	};
	const struct cg_reading r = { 1700000000123, "site/a", fields, 5 };
	struct payload p;

	payload_init(&p, 4096);
	payload_add(&p, &r);
	expect_decodes(p.buf, p.len, &r, 1);
	/* Empty payload: no readings. */
	expect_decodes(p.buf, 0, NULL, 0);
	payload_done(&p);
}

static double f64_from_bits(uint64_t bits)
{
	double d;

	memcpy(&d, &bits, 8);
	return d;
}

static void test_reading_extremes(void **state)
{
	static char name64[65], topic[CG_TOPIC_MAX + 1], str512[CG_STRING_MAX + 1];
	static char names[CG_FIELDS_MAX][CG_FIELD_NAME_MAX + 1];
	static struct cg_field big[CG_FIELDS_MAX];
	const int64_t ints[] = { INT64_MIN, INT64_MAX, 0, -1, 1, 63, -64, 64, -65, 1LL << 62 };
	const uint64_t f64_bits[] = {
		0x7ff8000000000001ULL, /* quiet NaN with a payload */
		0x7ff0000000000001ULL, /* signalling NaN */
		0xfff8000000000000ULL, /* negative NaN */
		0x8000000000000000ULL, /* -0.0 */
		0x7ff0000000000000ULL, /* +inf */
		0xfff0000000000000ULL, /* -inf */
		0x0000000000000001ULL, /* the smallest subnormal */
		0x7fefffffffffffffULL, /* DBL_MAX */
	};
	struct cg_field small[32];
	size_t nf = 0;
	struct cg_reading rs[5];
	struct payload p;

	memset(name64, 'n', 64);
	memset(topic, 't', CG_TOPIC_MAX);
	memset(str512, 's', CG_STRING_MAX);
	str512[0] = '\xe2'; /* a three-byte UTF-8 character at the start */
	str512[1] = '\x82';
	str512[2] = '\xac';
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		small[nf++] =
		    (struct cg_field){ .name = "i", .type = CG_FIELD_I64, .value.i64 = ints[i] };
	for (size_t i = 0; i < sizeof(f64_bits) / sizeof(f64_bits[0]); i++) {
		small[nf].name = "f";
		small[nf].type = CG_FIELD_F64;
		memcpy(&small[nf].value.f64, &f64_bits[i], 8);
		nf++;
	}
	small[nf++] =
	    (struct cg_field){ .name = "empty", .type = CG_FIELD_STRING, .value.str = "" };
	small[nf++] =
	    (struct cg_field){ .name = name64, .type = CG_FIELD_STRING, .value.str = str512 };
	small[nf++] =
	    (struct cg_field){ .name = "x", .type = CG_FIELD_F64, .value.f64 = f64_from_bits(0) };
	assert_true(nf <= 32);

	/* The largest reading the daemon accepts: 64 fields, 64-byte names, 512-byte
	 * strings, a 253-byte topic. */
	for (size_t i = 0; i < CG_FIELDS_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "%02zu", i);
		memset(names[i] + 2, 'a' + (int)(i % 26), CG_FIELD_NAME_MAX - 2);
		names[i][CG_FIELD_NAME_MAX] = 0;
		big[i] = (struct cg_field){ .name = names[i],
					    .type = CG_FIELD_STRING,
					    .value.str = str512 };
	}

	rs[0] = (struct cg_reading){ INT64_MIN, "x", small, nf };
	rs[1] = (struct cg_reading){ INT64_MAX, topic, big, CG_FIELDS_MAX };
	rs[2] = (struct cg_reading){ 0, topic, small, nf };
	rs[3] = (struct cg_reading){ INT64_MIN, "y", small, 1 };
	rs[4] = (struct cg_reading){ INT64_MAX, topic, big, CG_FIELDS_MAX };
	payload_init(&p, 5 * QUEUE_RECORD_MAX);
	for (size_t i = 0; i < 5; i++)
		payload_add(&p, &rs[i]);
	expect_decodes(p.buf, p.len, rs, 5);
	payload_done(&p);
}

static void test_reading_shared_schema(void **state)
{
	struct cg_field f[3] = {
		{ .name = "temperature", .type = CG_FIELD_F64 },
		{ .name = "humidity", .type = CG_FIELD_F64 },
		{ .name = "pressure", .type = CG_FIELD_F64 },
	};
	struct cg_reading want[100];
	struct cg_field fields[100][3];
	size_t first, n;
	struct payload p;

	payload_init(&p, 100 * 512);
	for (size_t i = 0; i < 100; i++) {
		memcpy(fields[i], f, sizeof(f));
		fields[i][0].value.f64 = 20.0 + (double)i / 10;
		fields[i][1].value.f64 = 50.0 - (double)i;
		fields[i][2].value.f64 = 1013.25;
		want[i] = (struct cg_reading){ 1700000000000 + (int64_t)i * 1000,
					       "building/3/room/12", fields[i], 3 };
		n = payload_add(&p, &want[i]);
		if (i == 0) {
			first = n;
			continue;
		}
		/* delta (2 bytes for 1 s), schema ref (1), 3 x 8 bytes. */
		if (n > 30)
			fail_msg("reading %zu took %zu bytes, the first %zu", i, n, first);
		assert_int_equal(n, 2 + 1 + 24);
		assert_true(n < first);
	}
	expect_decodes(p.buf, p.len, want, 100);
	payload_done(&p);
}

static void test_reading_interleaved_schemas(void **state)
{
	const struct cg_field a[] = { { .name = "v", .type = CG_FIELD_F64, .value.f64 = 1 } };
	const struct cg_field b[] = { { .name = "v", .type = CG_FIELD_I64, .value.i64 = 2 } };
	const struct cg_field c[] = { { .name = "w", .type = CG_FIELD_F64, .value.f64 = 3 },
				      { .name = "s", .type = CG_FIELD_STRING, .value.str = "z" } };
	/* Same fields under another topic is another schema, and so is another type. */
	const struct cg_reading want[] = {
		{ 10, "a", a, 1 }, { 11, "b", a, 1 }, { 12, "a", b, 1 }, { 13, "a", a, 1 },
		{ 14, "c", c, 2 }, { 15, "b", a, 1 }, { 16, "a", b, 1 }, { 17, "c", c, 2 },
		{ 18, "c", c, 1 }, { 19, "a", a, 1 },
	};
	const size_t n = sizeof(want) / sizeof(want[0]);
	/* Which readings bring their schema inline. */
	const bool inline_schema[] = { 1, 1, 1, 0, 1, 0, 0, 0, 1, 0 };
	struct payload p;

	payload_init(&p, 4096);
	for (size_t i = 0; i < n; i++) {
		size_t size = payload_add(&p, &want[i]);
		/* delta 1 byte, ref 1 byte, values. */
		size_t values = want[i].n_fields == 2 ? 8 + 2 : want[i].fields == b ? 1 : 8;

		if (inline_schema[i])
			assert_true(size > 2 + values);
		else
			assert_int_equal(size, 2 + values);
	}
	expect_decodes(p.buf, p.len, want, n);
	payload_done(&p);
}

static void test_reading_many_schemas(void **state)
{
	static char topics[80][16];
	const struct cg_field f[] = { { .name = "v", .type = CG_FIELD_I64, .value.i64 = 7 } };
	struct cg_reading want[90];
	size_t n = 0, size;
	struct payload p;

	payload_init(&p, 16384);
	/* 80 distinct schemas: the encoder remembers the first 64 only. */
	for (size_t i = 0; i < 80; i++) {
		snprintf(topics[i], sizeof(topics[i]), "t/%zu", i);
		want[n] = (struct cg_reading){ (int64_t)i, topics[i], f, 1 };
		size = payload_add(&p, &want[n++]);
		assert_true(size >= 2 + 1 + strlen(topics[i]) + 1 + 1 + 1 + 1 + 1);
	}
	/* The first 64 are referred to, those after them come inline again. */
	want[n] = (struct cg_reading){ 100, topics[0], f, 1 };
	assert_int_equal(payload_add(&p, &want[n++]), 1 + 1 + 1);
	want[n] = (struct cg_reading){ 101, topics[63], f, 1 };
	assert_int_equal(payload_add(&p, &want[n++]), 1 + 1 + 1);
	want[n] = (struct cg_reading){ 102, topics[64], f, 1 };
	assert_true(payload_add(&p, &want[n++]) > 1 + 1 + 1);
	want[n] = (struct cg_reading){ 103, topics[79], f, 1 };
	assert_true(payload_add(&p, &want[n++]) > 1 + 1 + 1);
	want[n] = (struct cg_reading){ 104, topics[79], f, 1 };
	assert_true(payload_add(&p, &want[n++]) > 1 + 1 + 1);
	expect_decodes(p.buf, p.len, want, n);
	payload_done(&p);
}

static void test_reading_timestamps_backwards(void **state)
{
	const struct cg_field f[] = { { .name = "v", .type = CG_FIELD_BOOL, .value.b = true } };
	const int64_t ts[] = { 1000, 500,	499,	   -5,	      INT64_MIN, INT64_MAX,
			       0,    INT64_MIN, INT64_MIN, INT64_MAX, -1,	 1 };
	struct cg_reading want[sizeof(ts) / sizeof(ts[0])];
	struct payload p;

	payload_init(&p, 4096);
	for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
		size_t size;

		want[i] = (struct cg_reading){ ts[i], "clock", f, 1 };
		size = payload_add(&p, &want[i]);
		/* One millisecond back costs a one-byte delta. */
		if (i == 2)
			assert_int_equal(size, 1 + 1 + 1);
	}
	expect_decodes(p.buf, p.len, want, sizeof(ts) / sizeof(ts[0]));
	payload_done(&p);
}

/* The frame payload used by the truncation tests: several readings, schemas shared. */
static void make_mixed_payload(struct payload *p, struct cg_reading *want, size_t *ret_n)
{
	static const struct cg_field f1[] = {
		{ .name = "t", .type = CG_FIELD_F64, .value.f64 = -1.5 },
		{ .name = "n", .type = CG_FIELD_I64, .value.i64 = 300 },
		{ .name = "b", .type = CG_FIELD_BOOL, .value.b = true },
		{ .name = "s", .type = CG_FIELD_STRING, .value.str = "hello" },
	};
	static const struct cg_field f2[] = {
		{ .name = "long_name_here", .type = CG_FIELD_I64, .value.i64 = INT64_MIN },
	};
	size_t n = 0;

	want[n++] = (struct cg_reading){ 1700000000000, "a/b", f1, 4 };
	want[n++] = (struct cg_reading){ 1700000000100, "a/b", f1, 4 };
	want[n++] = (struct cg_reading){ 1699999999000, "c", f2, 1 };
	want[n++] = (struct cg_reading){ 1700000000200, "a/b", f1, 4 };
	want[n++] = (struct cg_reading){ 1700000000200, "c", f2, 1 };
	payload_init(p, 4096);
	for (size_t i = 0; i < n; i++)
		payload_add(p, &want[i]);
	*ret_n = n;
}

static void test_reading_truncation(void **state)
{
	static struct queue_decoder d;
	struct cg_reading want[8], got;
	struct payload p;
	size_t n;

	make_mixed_payload(&p, want, &n);
	/* Cut at every length: whole readings decode as they were, then either a clean
	 * end (cut between readings) or -EBADMSG (cut inside one), never anything else. */
	for (size_t len = 0; len <= p.len; len++) {
		uint8_t *cut = malloc(len ? len : 1);
		size_t whole = 0;
		bool boundary = len == 0;
		int r;

		assert_non_null(cut);
		memcpy(cut, p.buf, len);
		for (size_t i = 0; i < n; i++) {
			if (p.ends[i] <= len)
				whole = i + 1;
			if (p.ends[i] == len)
				boundary = true;
		}
		queue_decoder_init(&d, cut, len);
		for (size_t i = 0; i < whole; i++) {
			assert_int_equal(queue_decoder_next(&d, &got), 1);
			expect_reading_equal(&got, &want[i]);
		}
		r = queue_decoder_next(&d, &got);
		if (r != (boundary ? 0 : -EBADMSG))
			fail_msg("payload cut to %zu of %zu bytes: %d after %zu readings", len,
				 p.len, r, whole);
		free(cut);
	}
	payload_done(&p);
}

/* Decode a hand-made payload of len bytes; returns the first non-1 result. */
static int decode_raw(const uint8_t *bytes, size_t len, size_t *ret_readings)
{
	static struct queue_decoder d;
	struct cg_reading got;
	uint8_t *copy = malloc(len ? len : 1);
	size_t readings = 0;
	int r;

	assert_non_null(copy);
	memcpy(copy, bytes, len);
	queue_decoder_init(&d, copy, len);
	while ((r = queue_decoder_next(&d, &got)) == 1)
		readings++;
	free(copy);
	if (ret_readings)
		*ret_readings = readings;
	return r;
}

#define RAW(...)                                                \
	do {                                                    \
		const uint8_t raw_[] = { __VA_ARGS__ };         \
		raw_r = decode_raw(raw_, sizeof(raw_), &raw_n); \
	} while (0)

static void test_decoder_malformed(void **state)
{
	int raw_r;
	size_t raw_n;

	/* A valid one-reading payload: ts 1, inline schema "t" with bool "b", true. */
	RAW(2, 0, 1, 't', 1, 3, 1, 'b', 1);
	assert_int_equal(raw_r, 0);
	assert_int_equal(raw_n, 1);
	/* ...then a reading that refers to it. */
	RAW(2, 0, 1, 't', 1, 3, 1, 'b', 1, 0, 1, 0);
	assert_int_equal(raw_r, 0);
	assert_int_equal(raw_n, 2);

	/* Schema refs beyond those defined. */
	RAW(0, 1, 1);
	assert_int_equal(raw_r, -EBADMSG);
	assert_int_equal(raw_n, 0);
	RAW(2, 0, 1, 't', 1, 3, 1, 'b', 1, 0, 2, 0);
	assert_int_equal(raw_r, -EBADMSG);
	assert_int_equal(raw_n, 1);
	RAW(0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1);
	assert_int_equal(raw_r, -EBADMSG);
	RAW(0, 0x81, 0x80, 0x80, 0x80, 0x10, 1); /* ref 2^32 + 1: not truncated to 1 */
	assert_int_equal(raw_r, -EBADMSG);
	assert_int_equal(raw_n, 0);

	/* A varint longer than 64 bits. */
	RAW(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0);
	assert_int_equal(raw_r, -EBADMSG);
	/* Topic too long, a NUL in it, runs past the end. */
	{
		uint8_t big[2 + 2 + 254 + 5];

		memset(big, 't', sizeof(big));
		big[0] = 0;
		big[1] = 0;
		big[2] = 0xfe; /* 254 */
		big[3] = 0x01;
		big[4 + 254] = 1;
		big[4 + 254 + 1] = 3;
		big[4 + 254 + 2] = 1;
		big[4 + 254 + 3] = 'b';
		big[4 + 254 + 4] = 1;
		assert_int_equal(decode_raw(big, sizeof(big), NULL), -EBADMSG);
		/* 253 bytes is fine. */
		big[2] = 0xfd;
		memmove(big + 4 + 253, big + 4 + 254, 5);
		assert_int_equal(decode_raw(big, sizeof(big) - 1, NULL), 0);
	}
	RAW(0, 0, 1, 0, 1, 3, 1, 'b', 1);
	assert_int_equal(raw_r, -EBADMSG);
	RAW(0, 0, 5, 't');
	assert_int_equal(raw_r, -EBADMSG);
	/* No fields, too many fields. */
	RAW(0, 0, 1, 't', 0);
	assert_int_equal(raw_r, -EBADMSG);
	RAW(0, 0, 1, 't', 65, 3, 1, 'b', 1);
	assert_int_equal(raw_r, -EBADMSG);
	/* Unknown field types. */
	RAW(0, 0, 1, 't', 1, 0, 1, 'b', 1);
	assert_int_equal(raw_r, -EBADMSG);
	RAW(0, 0, 1, 't', 1, 5, 1, 'b', 1);
	assert_int_equal(raw_r, -EBADMSG);
	RAW(0, 0, 1, 't', 1, 0xff, 1, 'b', 1);
	assert_int_equal(raw_r, -EBADMSG);
	/* A field name of 65 bytes. */
	{
		uint8_t b[7 + 65 + 1] = { 0, 0, 1, 't', 1, 3, 65 };

		memset(b + 7, 'n', 65);
		b[7 + 65] = 1;
		assert_int_equal(decode_raw(b, sizeof(b), NULL), -EBADMSG);
		b[6] = 64;
		b[7 + 64] = 1;
		assert_int_equal(decode_raw(b, sizeof(b) - 1, NULL), 0);
	}
	/* A bool that is neither 0 nor 1. */
	RAW(0, 0, 1, 't', 1, 3, 1, 'b', 2);
	assert_int_equal(raw_r, -EBADMSG);
	/* A string of 513 bytes; 512 is fine. */
	{
		uint8_t b[9 + 2 + 513] = { 0, 0, 1, 't', 1, 4, 1, 's', 0 };

		b[8] = 0x81; /* 513 = 0x201 */
		b[9] = 0x04;
		memset(b + 10, 'x', 513);
		assert_int_equal(decode_raw(b, 10 + 513, NULL), -EBADMSG);
		b[8] = 0x80; /* 512 */
		assert_int_equal(decode_raw(b, 10 + 512, NULL), 0);
		b[10 + 100] = 0; /* a NUL inside a string */
		assert_int_equal(decode_raw(b, 10 + 512, NULL), -EBADMSG);
	}
	/* An f64 cut short. */
	RAW(0, 0, 1, 't', 1, 1, 1, 'f', 1, 2, 3, 4, 5, 6, 7);
	assert_int_equal(raw_r, -EBADMSG);
}

static void test_decoder_ref_schema_damaged(void **state)
{
	/* A reference to a schema whose inline copy was itself bad never succeeds. */
	int raw_r;
	size_t raw_n;

	RAW(0, 0, 1, 't', 1, 9, 1, 'b', 1, 0, 1, 1);
	assert_int_equal(raw_r, -EBADMSG);
	assert_int_equal(raw_n, 0);
}

/* ---- fuzz_segment inputs, replayed in this (production) build ---- */

/* Run one input file in a child process: a failed check aborts it, a hang is killed.
 * Returns 0, or a description of the failure in buf. */
static int replay_segment_input(const char *path, char *buf, size_t size)
{
	const int timeout_ms = 5000;
	int status = 0, fd;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static uint8_t data[1 << 20];
		ssize_t n;

		fd = open(path, O_RDONLY | O_CLOEXEC);
		n = fd < 0 ? -1 : read(fd, data, sizeof(data));
		if (n < 0)
			_exit(2);
		segment_check_init();
		/* Frame CRCs are compared here: repair them as the fuzzer never needed to. */
		_exit(segment_check(data, (size_t)n, true) == 0 ? 0 : 3);
	}
	for (int waited = 0;; waited += 10) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		if (waited >= timeout_ms) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			snprintf(buf, size, "%s: hangs (killed after %d ms)", path, timeout_ms);
			return -1;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFSIGNALED(status))
		snprintf(buf, size, "%s: killed by signal %d (see the check above)", path,
			 WTERMSIG(status));
	else
		snprintf(buf, size, "%s: exit status %d", path, WEXITSTATUS(status));
	return -1;
}

static const char *source_dir(void)
{
	const char *dir = getenv("COAPGATE_SOURCE_DIR");

	return dir ? dir : COAPGATE_TEST_SOURCE_DIR;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* Replay every file in tests/fuzz/<sub>; returns how many there were. */
static size_t replay_segment_dir(const char *sub)
{
	char dir[4096], path[8192], why[8192 + 64], failures[16384] = "";
	char tmp[] = "/tmp/test-queue-format-XXXXXX";
	size_t n = 0, failed = 0;
	struct dirent *de;
	DIR *d;

	/* The queue directories of the runs go here, also those of a run killed. */
	assert_non_null(mkdtemp(tmp));
	setenv("COAPGATE_FUZZ_TMPDIR", tmp, 1);

	snprintf(dir, sizeof(dir), "%s/tests/fuzz/%s", source_dir(), sub);
	d = opendir(dir);
	if (!d)
		fail_msg("cannot open %s", dir);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n++;
		if (replay_segment_input(path, why, sizeof(why)) < 0) {
			failed++;
			snprintf(failures + strlen(failures), sizeof(failures) - strlen(failures),
				 "\n  %s", why);
		}
	}
	closedir(d);
	unsetenv("COAPGATE_FUZZ_TMPDIR");
	assert_int_equal(nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
	if (failed)
		fail_msg("%zu of %zu inputs in tests/fuzz/%s fail:%s", failed, n, sub, failures);
	return n;
}

/* The seeds: intact segments, torn tails, seals, checkpoints. */
static void test_segment_corpus(void **state)
{
	assert_true(replay_segment_dir("corpus/fuzz_segment") > 0);
}

/* Every input the fuzzer found a bug with (tests/fuzz/regressions/fuzz_segment/). */
static void test_segment_regressions(void **state)
{
	replay_segment_dir("regressions/fuzz_segment");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc_vectors),
		cmocka_unit_test(test_header_golden),
		cmocka_unit_test(test_header_round_trip),
		cmocka_unit_test(test_header_rejections),
		cmocka_unit_test(test_frame_peek),
		cmocka_unit_test(test_frame_size),
		cmocka_unit_test(test_frame_golden),
		cmocka_unit_test(test_frame_round_trip),
		cmocka_unit_test(test_frame_end),
		cmocka_unit_test(test_frame_corrupt),
		cmocka_unit_test(test_frame_truncation),
		cmocka_unit_test(test_seal_round_trip),
		cmocka_unit_test(test_checkpoint_golden),
		cmocka_unit_test(test_checkpoint_round_trip),
		cmocka_unit_test(test_checkpoint_round_trip_gaps),
		cmocka_unit_test(test_checkpoint_crc_covers_gaps),
		cmocka_unit_test(test_checkpoint_rejections),
		cmocka_unit_test(test_checkpoint_pick),
		cmocka_unit_test(test_checkpoint_add_gap),
		cmocka_unit_test(test_checkpoint_add_gap_extremes),
		cmocka_unit_test(test_checkpoint_add_gap_touching),
		cmocka_unit_test(test_segment_names),
		cmocka_unit_test(test_reading_all_types),
		cmocka_unit_test(test_reading_extremes),
		cmocka_unit_test(test_reading_shared_schema),
		cmocka_unit_test(test_reading_interleaved_schemas),
		cmocka_unit_test(test_reading_many_schemas),
		cmocka_unit_test(test_reading_timestamps_backwards),
		cmocka_unit_test(test_reading_truncation),
		cmocka_unit_test(test_decoder_malformed),
		cmocka_unit_test(test_decoder_ref_schema_damaged),
		cmocka_unit_test(test_segment_corpus),
		cmocka_unit_test(test_segment_regressions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
