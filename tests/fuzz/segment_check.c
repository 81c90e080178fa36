// SPDX-License-Identifier: MIT
/*
 * Arbitrary bytes as the frames of a segment file, fed to the real recovery
 * (queue_open) and the real consumer (queue_read), the way SQLite's dbfuzz2 feeds
 * database images; see segment_check.h for who runs it.
 *
 * Input: an 8-byte control prefix, then the frames region (file offset 4096 onwards):
 *
 *   0     flags: FLAG_*
 *   1..2  checkpoint acked_seq (u16 LE)
 *   3..4  checkpoint seq_reserved (u16 LE)
 *   5     checkpoint generation - 1
 *   6     gap start - acked_seq - 1 (with FLAG_GAP); header byte to damage (with
 *         FLAG_HEADER_DAMAGE, modulo 72)
 *   7     gap length - 1; the bits to flip in that byte (or 1)
 *
 * One run: write a valid header (base_seq 1) plus the frames as seg-0000000000000001.q
 * (and optionally a checkpoint) into a fresh 0700 directory under $COAPGATE_FUZZ_TMPDIR,
 * /dev/shm or /tmp;
 * open; read everything twice (the second time after a rewind); optionally ack; close;
 * check the checkpoint the queue wrote; open again, read everything again; close and
 * remove the directory.
 *
 * Invariants (abort() when one does not hold, so libFuzzer reports the input):
 *   - queue_open succeeds; queue_read never fails and always comes to an end;
 *   - seqs come strictly increasing, above the acked position, at most durable_seq;
 *   - every reading has 1..64 fields with names, a topic, sane strings and bools;
 *   - delivered + newly lost readings <= the readings the stats promised;
 *   - a rewind delivers the same seqs, and counts no loss again (while the checkpoint's
 *     list of counted ranges has room);
 *   - the newest checkpoint slot the queue wrote decodes, with the acked position;
 *   - after reopening, the same seqs (those not acked) come back, none counted lost;
 *   - when every frame is intact (a reference walk with queue_frame_check() and the
 *     decoder over the image says so), the reader delivers exactly those readings,
 *     with equal contents, and counts nothing as lost.
 *
 * Deterministic (the salts the queue draws do not steer it), no exit, no leaks.
 */
#include "segment_check.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "log.h"
#include "queue.h"
#include "fuzz_check.h"
#include "queue_format.h"

#define PREFIX_LEN   8
#define SEGMENT_SIZE (1u << 20)
#define STREAM_ID    0x5eed0000c0a9a7e5ULL
#define SALT	     0x0123456789abcdefULL
#define MAX_READINGS 100000
#define SEAL_SIZE    (QUEUE_FRAME_HEADER_LEN + QUEUE_SEAL_PAYLOAD_LEN)

enum {
	FLAG_CKPT = 1 << 0,	     /* write a checkpoint */
	FLAG_CKPT_SLOT1 = 1 << 1,    /* ... into slot 1 rather than slot 0 */
	FLAG_CKPT_FOREIGN = 1 << 2,  /* ... of another stream (the segment is foreign) */
	FLAG_GAP = 1 << 3,	     /* ... recording one missing range */
	FLAG_PREALLOC = 1 << 4,	     /* extend the file with zeros to segment_size */
	FLAG_ACK = 1 << 5,	     /* ack everything read before closing */
	FLAG_ACK_HALF = 1 << 6,	     /* ... only up to the middle reading */
	FLAG_HEADER_DAMAGE = 1 << 7, /* flip bits in the segment header */
};

/* Readings as seen: their seqs and a digest of their contents. */
struct seqs {
	uint64_t *v;
	uint32_t *digest;
	size_t n, cap;
};

void segment_check_init(void)
{
	log_setup(LOG_TARGET_STDERR);
	if (!getenv("COAPGATE_FUZZ_LOG"))
		log_set_max_level(LOG_EMERG);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The reading's timestamp, schema and values, hashed. */
static uint32_t digest(const struct cg_reading *r)
{
	static uint8_t buf[QUEUE_RECORD_MAX];
	struct queue_record_parts p;
	uint8_t ts[8];

	queue_record_prepare(r, buf, &p);
	for (int i = 0; i < 8; i++)
		ts[i] = (uint8_t)((uint64_t)r->timestamp_ms >> (8 * i));
	return (uint32_t)crc32(crc32(0L, ts, 8), buf, (uInt)(p.schema_len + p.values_len));
}

static void seqs_add(struct seqs *s, uint64_t seq, uint32_t dig)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		s->digest = realloc(s->digest, s->cap * sizeof(*s->digest));
		CHECK(s->v && s->digest);
	}
	s->v[s->n] = seq;
	s->digest[s->n++] = dig;
	CHECK(s->n <= MAX_READINGS);
}

static void seqs_free(struct seqs *s)
{
	free(s->v);
	free(s->digest);
}

static void check_reading(const struct cg_reading *r)
{
	CHECK(r->topic);
	CHECK(strlen(r->topic) <= CG_TOPIC_MAX);
	CHECK(r->fields);
	CHECK(r->n_fields >= 1 && r->n_fields <= CG_FIELDS_MAX);
	for (size_t i = 0; i < r->n_fields; i++) {
		const struct cg_field *f = &r->fields[i];

		CHECK(f->name);
		CHECK(strlen(f->name) <= CG_FIELD_NAME_MAX);
		switch (f->type) {
		case CG_FIELD_F64:
		case CG_FIELD_I64:
			break;
		case CG_FIELD_BOOL:
			CHECK(f->value.b == 0 || f->value.b == 1);
			break;
		case CG_FIELD_STRING:
			CHECK(f->value.str);
			CHECK(strlen(f->value.str) <= CG_STRING_MAX);
			break;
		default:
			CHECK(!"unknown field type");
		}
	}
}

/*
 * What the reader must deliver when the segment is intact, worked out from the image
 * alone: the path recovery takes (a valid seal at the end of the file, else a scan up
 * to the first frame that is not valid), then every frame's readings. Returns false
 * when something is damaged, so that only the weaker invariants apply.
 */
static bool reference_walk(const uint8_t *img, size_t len, struct seqs *ret)
{
	static struct queue_decoder d;
	size_t off = QUEUE_HEADER_BLOCK, end = len;
	uint64_t expected = 1, sealed_last = 0;
	bool sealed = false;
	struct queue_frame f;

	if (len >= QUEUE_HEADER_BLOCK + SEAL_SIZE) {
		const uint8_t *s = img + len - SEAL_SIZE;

		if (queue_frame_check(s, SEAL_SIZE, 0, get64(s + 8), SALT, &f) == QUEUE_FRAME_OK &&
		    (f.flags & QUEUE_FRAME_SEAL) && get64(f.payload) + 1 == get64(s + 8) &&
		    get64(f.payload + 16) == len - SEAL_SIZE - QUEUE_HEADER_BLOCK) {
			sealed = true;
			sealed_last = get64(f.payload);
			end = len - SEAL_SIZE;
		}
	}
	for (;;) {
		struct cg_reading r;
		uint32_t n = 0;
		int k;

		if (queue_frame_check(img, end, off, expected, SALT, &f) != QUEUE_FRAME_OK)
			break;
		if (f.flags & QUEUE_FRAME_SEAL) {
			if (sealed)
				return false; /* a seal before the end of a sealed segment */
			return true;	      /* recovery's scan stops here too */
		}
		queue_decoder_init(&d, f.payload, f.payload_len);
		while ((k = queue_decoder_next(&d, &r)) == 1 && n < f.count)
			seqs_add(ret, expected + n++, digest(&r));
		if (k != 0 || n != f.count)
			return false;
		expected += f.count;
		off = f.next_offset;
	}
	/* A scan ends at the first invalid frame; a sealed segment must be all frames up
	 * to its seal, which accounts for every one of them. */
	return !sealed || (off == end && sealed_last == expected - 1);
}

/* Read until queue_read() says there is nothing more; check every reading. */
static void read_all(struct queue *q, struct queue_reader *rd, struct seqs *out)
{
	struct queue_stats st;
	uint64_t last;

	queue_get_stats(q, &st);
	last = st.acked_seq;
	for (;;) {
		struct cg_reading reading;
		uint64_t seq = 0;
		int r = queue_read(rd, &seq, &reading);

		CHECK(r >= 0);
		if (r == 0)
			break;
		CHECK(r == 1);
		CHECK(seq > last);
		last = seq;
		check_reading(&reading);
		seqs_add(out, seq, digest(&reading));
	}
	queue_get_stats(q, &st);
	for (size_t i = 0; i < out->n; i++)
		CHECK(out->v[i] <= st.durable_seq);
}

static void check_stats(const struct queue_stats *st)
{
	CHECK(st->acked_seq <= st->durable_seq);
	CHECK(st->appended == 0);
	CHECK(st->dropped_newest == 0);
	CHECK(st->dropped_oldest == 0);
	CHECK(st->readings <= st->durable_seq - st->acked_seq);
	CHECK(st->used_bytes > 0);
}

static void open_queue(const char *dir, struct queue **ret)
{
	const struct queue_options opt = {
		.dir = dir,
		.segment_size = SEGMENT_SIZE,
		.max_size = 64 << 20,
		.min_free = 0,
		.commit_interval_usec = 100 * 1000,
		.commit_bytes = 64 * 1024,
		.checkpoint_interval_usec = 1000 * 1000,
		.block_timeout_usec = 0,
		.when_full = QUEUE_DROP_OLDEST,
	};

	CHECK(queue_open(&opt, ret) == 0);
}

/* The newest slot of the checkpoint file, by generation, must be the one picked. */
static void check_checkpoint_file(const char *dir, struct queue_checkpoint *ret)
{
	uint8_t buf[2 * QUEUE_CKPT_SLOT_SIZE] = { 0 };
	char path[256];
	ssize_t n;
	int fd, newest;

	snprintf(path, sizeof(path), "%s/ckpt", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	n = pread(fd, buf, sizeof(buf), 0);
	close(fd);
	CHECK(n == (ssize_t)sizeof(buf));
	newest = get64(buf + QUEUE_CKPT_SLOT_SIZE + 16) > get64(buf + 16);
	CHECK(queue_checkpoint_pick(buf, QUEUE_CKPT_SLOT_SIZE, buf + QUEUE_CKPT_SLOT_SIZE,
				    QUEUE_CKPT_SLOT_SIZE, ret) == newest);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* Recompute the CRC of everything that looks like a frame, in file order. */
static void repair_crcs(uint8_t *img, size_t len)
{
	for (size_t off = QUEUE_HEADER_BLOCK; off + QUEUE_FRAME_HEADER_LEN <= len;
	     off += QUEUE_FRAME_ALIGN) {
		uint32_t flen = get32(img + off + 4);

		if (get32(img + off) != QUEUE_FRAME_MAGIC || flen < QUEUE_FRAME_HEADER_LEN ||
		    flen > len - off)
			continue;
		put32(img + off + 24, 0);
		put32(img + off + 24, queue_crc(SALT, img + off, flen));
	}
	/* read_seal() looks at the last bytes of the file, aligned or not. */
	if (len >= QUEUE_HEADER_BLOCK + SEAL_SIZE &&
	    get32(img + len - SEAL_SIZE) == QUEUE_FRAME_MAGIC) {
		put32(img + len - SEAL_SIZE + 24, 0);
		put32(img + len - SEAL_SIZE + 24,
		      queue_crc(SALT, img + len - SEAL_SIZE, SEAL_SIZE));
	}
}

/* Where the queue directories go: $COAPGATE_FUZZ_TMPDIR (so that whoever runs this
 * can remove what a crash or a hang leaves behind), else /dev/shm, else /tmp. */
static const char *temp_base(void)
{
	const char *base = getenv("COAPGATE_FUZZ_TMPDIR");

	if (base && strlen(base) < 32)
		return base;
	return access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
}

static void write_file(const char *dir, const char *name, const void *buf, size_t len)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, buf, len) == (ssize_t)len);
	close(fd);
}

/* The checkpoint the input asks for; its acked position (0 without one). */
static uint64_t write_checkpoint(const char *dir, const uint8_t *data)
{
	static uint8_t ckpt[2 * QUEUE_CKPT_SLOT_SIZE];
	struct queue_checkpoint c = {
		.generation = 1 + data[5],
		.stream_id = data[0] & FLAG_CKPT_FOREIGN ? ~STREAM_ID : STREAM_ID,
		.acked_seq = get16(data + 1),
		.seq_reserved = get16(data + 3),
	};

	if (!(data[0] & FLAG_CKPT))
		return 0;
	if (data[0] & FLAG_GAP) {
		c.n_gaps = 1;
		c.gaps[0].first = c.acked_seq + 1 + data[6];
		c.gaps[0].last = c.gaps[0].first + data[7];
	}
	memset(ckpt, 0, sizeof(ckpt));
	queue_checkpoint_encode(&c, ckpt + (data[0] & FLAG_CKPT_SLOT1 ? QUEUE_CKPT_SLOT_SIZE : 0));
	write_file(dir, "ckpt", ckpt, sizeof(ckpt));
	return c.acked_seq;
}

int segment_check(const uint8_t *data, size_t size, bool repair)
{
	const struct queue_segment_header h = {
		.stream_id = STREAM_ID,
		.base_seq = 1,
		.prev_seq = 0,
		.salt = SALT,
		.created_ns = 1,
		.segment_size = SEGMENT_SIZE,
	};
	struct seqs ref = { 0 }, first = { 0 }, again = { 0 }, reopened = { 0 };
	struct queue_stats before, after;
	struct queue_checkpoint ckpt;
	struct queue_reader *rd;
	struct queue *q;
	uint64_t acked, lost_rewind;
	size_t img_len, n;
	uint8_t *img;
	bool exact;
	char dir[64];

	if (size < PREFIX_LEN || size > PREFIX_LEN + SEGMENT_SIZE - QUEUE_HEADER_BLOCK)
		return -1;
	img_len = QUEUE_HEADER_BLOCK + size - PREFIX_LEN;
	if (data[0] & FLAG_PREALLOC)
		img_len = SEGMENT_SIZE; /* as queue_create_segment() leaves a file */
	img = calloc(1, img_len);
	CHECK(img);
	queue_header_encode(&h, img);
	if (data[0] & FLAG_HEADER_DAMAGE)
		img[data[6] % QUEUE_HEADER_LEN] ^= data[7] ? data[7] : 1;
	memcpy(img + QUEUE_HEADER_BLOCK, data + PREFIX_LEN, size - PREFIX_LEN);
	if (repair)
		repair_crcs(img, img_len);
	exact = reference_walk(img, img_len, &ref);

	snprintf(dir, sizeof(dir), "%s/coapgate-fuzz-XXXXXX", temp_base());
	CHECK(mkdtemp(dir));
	CHECK(chmod(dir, 0700) == 0);
	write_file(dir, "seg-0000000000000001.q", img, img_len);
	free(img);
	acked = write_checkpoint(dir, data);

	/* First start: recovery, then read everything, twice. */
	open_queue(dir, &q);
	queue_get_stats(q, &before);
	check_stats(&before);
	CHECK(queue_reader_new(q, &rd) == 0);
	read_all(q, rd, &first);
	queue_get_stats(q, &after);
	check_stats(&after);
	CHECK(after.lost >= before.lost);
	CHECK(first.n + (after.lost - before.lost) <= before.readings);
	if ((data[0] & FLAG_HEADER_DAMAGE) ||
	    (data[0] & (FLAG_CKPT | FLAG_CKPT_FOREIGN)) == (FLAG_CKPT | FLAG_CKPT_FOREIGN)) {
		/* A damaged header (its CRC catches any one damaged byte), or the segment
		 * belongs to another stream: quarantined, nothing read. */
		CHECK(first.n == 0);
	} else if (exact) {
		n = 0;
		for (size_t i = 0; i < ref.n; i++) {
			if (ref.v[i] <= acked)
				continue;
			CHECK(n < first.n);
			CHECK(first.v[n] == ref.v[i]);
			CHECK(first.digest[n] == ref.digest[i]);
			n++;
		}
		CHECK(n == first.n);
		CHECK(after.lost == 0);
	}

	queue_reader_rewind(rd);
	read_all(q, rd, &again);
	CHECK(again.n == first.n);
	for (size_t i = 0; i < first.n; i++)
		CHECK(again.v[i] == first.v[i] && again.digest[i] == first.digest[i]);
	queue_get_stats(q, &before);
	lost_rewind = before.lost - after.lost;

	acked = before.acked_seq;
	if (first.n && (data[0] & FLAG_ACK)) {
		acked = data[0] & FLAG_ACK_HALF ? first.v[first.n / 2] : first.v[first.n - 1];
		queue_ack(q, acked);
	}
	queue_reader_free(rd);
	queue_close(q);

	/* What the queue wrote must be what the next start reads. */
	check_checkpoint_file(dir, &ckpt);
	CHECK(ckpt.acked_seq == acked);
	/* A loss is counted once, unless the list of counted ranges overflowed (its lowest
	 * ranges are then forgotten, as queue_format.h says). */
	if (ckpt.n_gaps < QUEUE_CKPT_GAPS_MAX)
		CHECK(lost_rewind == 0);

	/* Second start: the same readings come back, except those acknowledged. */
	open_queue(dir, &q);
	CHECK(queue_reader_new(q, &rd) == 0);
	read_all(q, rd, &reopened);
	queue_get_stats(q, &after);
	check_stats(&after);
	n = 0;
	for (size_t i = 0; i < first.n; i++) {
		if (first.v[i] <= acked)
			continue;
		CHECK(n < reopened.n);
		CHECK(reopened.v[n] == first.v[i] && reopened.digest[n] == first.digest[i]);
		n++;
	}
	CHECK(reopened.n == n);
	if (ckpt.n_gaps < QUEUE_CKPT_GAPS_MAX)
		CHECK(after.lost == 0);
	queue_reader_free(rd);
	queue_close(q);

	CHECK(nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0);
	seqs_free(&ref);
	seqs_free(&first);
	seqs_free(&again);
	seqs_free(&reopened);
	return 0;
}
