// SPDX-License-Identifier: MIT
/*
 * On-disk formats of the queue; see queue_format.h and the diagram in queue.h.
 * Every decoder here takes untrusted bytes: each length is checked against what is
 * left before it is used, so a fuzzer can feed anything.
 */
#include "queue_format.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "util.h"

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

uint32_t queue_crc(uint64_t salt, const uint8_t *data, size_t len)
{
	uint8_t s[8];
	uLong crc;

	put64(s, salt);
	crc = crc32(0L, s, sizeof(s));
	/* crc32_z takes a size_t; frames are far below 4 GiB but stay exact anyway. */
	crc = crc32_z(crc, data, len);
	return (uint32_t)crc;
}

/* ---- segment header ---- */

void queue_header_encode(const struct queue_segment_header *h, uint8_t *buf)
{
	memset(buf, 0, QUEUE_HEADER_BLOCK);
	memcpy(buf, QUEUE_SEGMENT_MAGIC, 8);
	put16(buf + 8, QUEUE_FORMAT_VERSION);
	put16(buf + 10, 0);
	put32(buf + 12, QUEUE_HEADER_LEN);
	put64(buf + 16, h->stream_id);
	put64(buf + 24, h->base_seq);
	put64(buf + 32, h->prev_seq);
	put64(buf + 40, h->salt);
	put64(buf + 48, h->created_ns);
	put64(buf + 56, h->segment_size);
	put32(buf + 64, 0);
	put32(buf + 68, (uint32_t)crc32(0L, buf, 68));
}

int queue_header_decode(const uint8_t *buf, size_t len, struct queue_segment_header *ret)
{
	struct queue_segment_header h;

	if (len < QUEUE_HEADER_LEN || memcmp(buf, QUEUE_SEGMENT_MAGIC, 8) != 0)
		return -EBADMSG;
	if (get32(buf + 68) != (uint32_t)crc32(0L, buf, 68))
		return -EBADMSG;
	if (get16(buf + 8) != QUEUE_FORMAT_VERSION)
		return -EPROTONOSUPPORT;
	if (get16(buf + 10) != 0 || get32(buf + 12) != QUEUE_HEADER_LEN || get32(buf + 64) != 0)
		return -EBADMSG;
	h.stream_id = get64(buf + 16);
	h.base_seq = get64(buf + 24);
	h.prev_seq = get64(buf + 32);
	h.salt = get64(buf + 40);
	h.created_ns = get64(buf + 48);
	h.segment_size = get64(buf + 56);
	if (h.base_seq == 0 || h.prev_seq >= h.base_seq)
		return -EBADMSG;
	*ret = h; /* written only on success */
	return 0;
}

/* ---- frames ---- */

void queue_frame_peek(const uint8_t *hdr, struct queue_frame_head *ret)
{
	ret->magic = get32(hdr);
	ret->frame_len = get32(hdr + 4);
	ret->first_seq = get64(hdr + 8);
}

size_t queue_frame_size(size_t payload_len)
{
	size_t len = QUEUE_FRAME_HEADER_LEN + payload_len;

	return (len + QUEUE_FRAME_ALIGN - 1) & ~(size_t)(QUEUE_FRAME_ALIGN - 1);
}

size_t queue_frame_encode(uint8_t *buf, uint64_t salt, uint64_t first_seq, uint32_t count,
			  uint16_t flags, size_t payload_len)
{
	size_t len = QUEUE_FRAME_HEADER_LEN + payload_len, size = queue_frame_size(payload_len);

	put32(buf, QUEUE_FRAME_MAGIC);
	put32(buf + 4, (uint32_t)len);
	put64(buf + 8, first_seq);
	put32(buf + 16, count);
	put16(buf + 20, flags);
	put16(buf + 22, 0);
	put32(buf + 24, 0);
	put32(buf + 28, (uint32_t)payload_len);
	put32(buf + 24, queue_crc(salt, buf, len));
	memset(buf + len, 0, size - len);
	return size;
}

static bool is_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

enum queue_frame_status queue_frame_check(const uint8_t *seg, size_t len, size_t off,
					  uint64_t expected_seq, uint64_t salt,
					  struct queue_frame *ret)
{
	const uint8_t *f = seg + off;
	uint32_t frame_len, count, crc;
	uint16_t flags;
	uint8_t hdr[QUEUE_FRAME_HEADER_LEN];

	if (off > len || len - off < QUEUE_FRAME_HEADER_LEN || off % QUEUE_FRAME_ALIGN)
		return QUEUE_FRAME_END;
	if (is_zero(f, QUEUE_FRAME_HEADER_LEN))
		return QUEUE_FRAME_END;
	frame_len = get32(f + 4);
	count = get32(f + 16);
	flags = get16(f + 20);
	if (get32(f) != QUEUE_FRAME_MAGIC || frame_len < QUEUE_FRAME_HEADER_LEN ||
	    frame_len > len - off || get32(f + 28) != frame_len - QUEUE_FRAME_HEADER_LEN ||
	    get64(f + 8) != expected_seq || get16(f + 22) != 0 ||
	    (flags & ~QUEUE_FRAME_FLAGS_KNOWN))
		return QUEUE_FRAME_CORRUPT;
	if ((flags & QUEUE_FRAME_SEAL)
		? (count != 0 || frame_len != QUEUE_FRAME_HEADER_LEN + QUEUE_SEAL_PAYLOAD_LEN)
		: count == 0)
		return QUEUE_FRAME_CORRUPT;
	/* The CRC covers the header with its own field zeroed. */
	crc = get32(f + 24);
	memcpy(hdr, f, sizeof(hdr));
	put32(hdr + 24, 0);
	{
		uint8_t s[8];
		uLong c;

		put64(s, salt);
		c = crc32(0L, s, sizeof(s));
		c = crc32(c, hdr, sizeof(hdr));
		c = crc32_z(c, f + QUEUE_FRAME_HEADER_LEN, frame_len - QUEUE_FRAME_HEADER_LEN);
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
		/* Fuzzing builds skip this one check, or the fuzzer would never get past
		 * it into the frame and payload parsers (the OSS-Fuzz convention). */
		if ((uint32_t)c != crc)
			return QUEUE_FRAME_CORRUPT;
#else
		(void)crc;
#endif
	}
	ret->offset = off;
	ret->frame_len = frame_len;
	ret->next_offset = off + queue_frame_size(frame_len - QUEUE_FRAME_HEADER_LEN);
	ret->first_seq = expected_seq;
	ret->count = count;
	ret->flags = flags;
	ret->payload = f + QUEUE_FRAME_HEADER_LEN;
	ret->payload_len = frame_len - QUEUE_FRAME_HEADER_LEN;
	return QUEUE_FRAME_OK;
}

void queue_seal_encode(const struct queue_seal *s, uint8_t *payload)
{
	put64(payload, s->last_seq);
	put64(payload + 8, s->n_readings);
	put64(payload + 16, s->data_bytes);
}

void queue_seal_decode(const uint8_t *payload, struct queue_seal *ret)
{
	ret->last_seq = get64(payload);
	ret->n_readings = get64(payload + 8);
	ret->data_bytes = get64(payload + 16);
}

/* ---- checkpoint ---- */

void queue_checkpoint_encode(const struct queue_checkpoint *c, uint8_t *slot)
{
	memset(slot, 0, QUEUE_CKPT_SLOT_SIZE);
	memcpy(slot, QUEUE_CKPT_MAGIC, 8);
	put32(slot + 8, QUEUE_FORMAT_VERSION);
	put64(slot + 16, c->generation);
	put64(slot + 24, c->stream_id);
	put64(slot + 32, c->acked_seq);
	put64(slot + 40, c->seq_reserved);
	put64(slot + 48, c->dropped_total);
	put64(slot + 56, c->lost_total);
	put32(slot + 64, c->n_gaps);
	for (uint32_t i = 0; i < c->n_gaps && i < QUEUE_CKPT_GAPS_MAX; i++) {
		put64(slot + 72 + 16 * i, c->gaps[i].first);
		put64(slot + 80 + 16 * i, c->gaps[i].last);
	}
	put32(slot + QUEUE_CKPT_LEN - 4, (uint32_t)crc32(0L, slot, QUEUE_CKPT_LEN - 4));
}

int queue_checkpoint_decode(const uint8_t *slot, size_t len, struct queue_checkpoint *ret)
{
	struct queue_checkpoint c;
	uint32_t n_gaps;

	if (!slot || len < QUEUE_CKPT_LEN || memcmp(slot, QUEUE_CKPT_MAGIC, 8) != 0 ||
	    get32(slot + 8) != QUEUE_FORMAT_VERSION || get32(slot + 12) != 0 ||
	    get32(slot + 68) != 0 || get32(slot + QUEUE_CKPT_LEN - 8) != 0 ||
	    get32(slot + QUEUE_CKPT_LEN - 4) != (uint32_t)crc32(0L, slot, QUEUE_CKPT_LEN - 4))
		return -EBADMSG;
	n_gaps = get32(slot + 64);
	if (n_gaps > QUEUE_CKPT_GAPS_MAX)
		return -EBADMSG;
	c.generation = get64(slot + 16);
	c.stream_id = get64(slot + 24);
	c.acked_seq = get64(slot + 32);
	c.seq_reserved = get64(slot + 40);
	c.dropped_total = get64(slot + 48);
	c.lost_total = get64(slot + 56);
	c.n_gaps = n_gaps;
	for (uint32_t i = 0; i < n_gaps; i++) {
		c.gaps[i].first = get64(slot + 72 + 16 * i);
		c.gaps[i].last = get64(slot + 80 + 16 * i);
		if (c.gaps[i].first > c.gaps[i].last ||
		    (i && c.gaps[i].first <= c.gaps[i - 1].last))
			return -EBADMSG;
	}
	*ret = c; /* written only on success */
	return 0;
}

int queue_checkpoint_pick_file(const uint8_t *file, size_t len, struct queue_checkpoint *ret)
{
	return queue_checkpoint_pick(
	    file, MIN(len, QUEUE_CKPT_SLOT_SIZE),
	    len > QUEUE_CKPT_SLOT_SIZE ? file + QUEUE_CKPT_SLOT_SIZE : NULL,
	    len > QUEUE_CKPT_SLOT_SIZE ? len - QUEUE_CKPT_SLOT_SIZE : 0, ret);
}

uint64_t queue_checkpoint_add_gap(struct queue_checkpoint *c, uint64_t first, uint64_t last)
{
	struct queue_gap all[QUEUE_CKPT_GAPS_MAX + 1], merged[QUEUE_CKPT_GAPS_MAX + 1];
	uint64_t covered = 0;
	uint32_t n = 0, m = 0, keep = 0, drop;

	if (first > last)
		return 0;
	for (uint32_t i = 0; i < c->n_gaps && i < QUEUE_CKPT_GAPS_MAX; i++) {
		uint64_t lo = MAX(c->gaps[i].first, first), hi = MIN(c->gaps[i].last, last);

		if (lo <= hi)
			covered += hi - lo + 1;
		all[n++] = c->gaps[i];
	}
	/* Insert the new range in order of first seq, then merge what overlaps or
	 * touches; every step is written so that UINT64_MAX cannot wrap. */
	all[n++] = (struct queue_gap){ first, last };
	for (uint32_t i = n - 1; i > 0 && all[i].first < all[i - 1].first; i--) {
		struct queue_gap t = all[i];

		all[i] = all[i - 1];
		all[i - 1] = t;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct queue_gap *prev = m ? &merged[m - 1] : NULL;

		if (prev && (all[i].first <= prev->last ||
			     (prev->last != UINT64_MAX && all[i].first == prev->last + 1)))
			prev->last = MAX(prev->last, all[i].last);
		else
			merged[m++] = all[i];
	}
	/* Only ranges above the acknowledged position can be met again; beyond the
	 * list's room, the lowest ranges are forgotten (and might be counted again). */
	for (uint32_t i = 0; i < m; i++)
		if (merged[i].last > c->acked_seq)
			merged[keep++] = merged[i];
	drop = keep > QUEUE_CKPT_GAPS_MAX ? keep - QUEUE_CKPT_GAPS_MAX : 0;
	c->n_gaps = keep - drop;
	memcpy(c->gaps, merged + drop, c->n_gaps * sizeof(c->gaps[0]));
	return last - first - covered + 1;
}

int queue_checkpoint_pick(const uint8_t *slot0, size_t len0, const uint8_t *slot1, size_t len1,
			  struct queue_checkpoint *ret)
{
	struct queue_checkpoint a, b;
	bool ok0 = queue_checkpoint_decode(slot0, len0, &a) == 0;
	bool ok1 = queue_checkpoint_decode(slot1, len1, &b) == 0;

	if (ok0 && (!ok1 || a.generation >= b.generation)) {
		*ret = a;
		return 0;
	}
	if (ok1) {
		*ret = b;
		return 1;
	}
	return -ENOENT;
}

/* ---- readings ---- */

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* FNV-1a: a cheap hash that only has to tell schemas of one frame apart. */
static uint64_t hash_bytes(const uint8_t *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

void queue_encoder_reset(struct queue_encoder *e)
{
	e->prev_ts = 0;
	e->n_schemas = 0;
}

void queue_record_prepare(const struct cg_reading *r, uint8_t *buf, struct queue_record_parts *ret)
{
	size_t topic_len = strlen(r->topic), n = 0, v;

	/* Schema first, values after it in the same buffer. */
	n += put_varint(buf + n, topic_len);
	memcpy(buf + n, r->topic, topic_len);
	n += topic_len;
	n += put_varint(buf + n, r->n_fields);
	for (size_t i = 0; i < r->n_fields; i++) {
		size_t len = strlen(r->fields[i].name);

		buf[n++] = (uint8_t)r->fields[i].type;
		n += put_varint(buf + n, len);
		memcpy(buf + n, r->fields[i].name, len);
		n += len;
	}
	ret->schema = buf;
	ret->schema_len = n;
	ret->schema_hash = hash_bytes(buf, n);
	ret->values = buf + n;
	v = 0;
	for (size_t i = 0; i < r->n_fields; i++) {
		const struct cg_field *f = &r->fields[i];
		size_t len;

		switch (f->type) {
		case CG_FIELD_F64: {
			uint64_t bits;

			memcpy(&bits, &f->value.f64, sizeof(bits));
			put64(ret->values + v, bits);
			v += 8;
			break;
		}
		case CG_FIELD_I64:
			v += put_varint(ret->values + v, zigzag(f->value.i64));
			break;
		case CG_FIELD_BOOL:
			ret->values[v++] = f->value.b ? 1 : 0;
			break;
		case CG_FIELD_STRING:
			len = strlen(f->value.str);
			v += put_varint(ret->values + v, len);
			memcpy(ret->values + v, f->value.str, len);
			v += len;
			break;
		}
	}
	ret->values_len = v;
}

size_t queue_record_bound(const struct queue_record_parts *p)
{
	return 10 + 10 + p->schema_len + p->values_len;
}

size_t queue_record_append(struct queue_encoder *e, const struct queue_record_parts *p, int64_t ts,
			   uint8_t *out, size_t payload_len)
{
	uint8_t *w = out + payload_len;
	unsigned ref = 0;
	size_t n = 0;

	for (unsigned i = 0; i < e->n_schemas; i++)
		if (e->schemas[i].hash == p->schema_hash && e->schemas[i].len == p->schema_len &&
		    memcmp(out + e->schemas[i].offset, p->schema, p->schema_len) == 0) {
			ref = i + 1;
			break;
		}
	n += put_varint(w + n, zigzag((int64_t)((uint64_t)ts - (uint64_t)e->prev_ts)));
	e->prev_ts = ts;
	if (ref) {
		n += put_varint(w + n, ref);
	} else {
		w[n++] = 0;
		/* Remember it while there is room; later readings inline theirs again. */
		if (e->n_schemas < sizeof(e->schemas) / sizeof(e->schemas[0])) {
			e->schemas[e->n_schemas].hash = p->schema_hash;
			e->schemas[e->n_schemas].offset = (uint32_t)(payload_len + n);
			e->schemas[e->n_schemas].len = (uint32_t)p->schema_len;
			e->n_schemas++;
		}
		memcpy(w + n, p->schema, p->schema_len);
		n += p->schema_len;
	}
	memcpy(w + n, p->values, p->values_len);
	return n + p->values_len;
}

void queue_decoder_init(struct queue_decoder *d, const uint8_t *payload, size_t len)
{
	d->payload = payload;
	d->len = len;
	d->off = 0;
	d->prev_ts = 0;
	d->n_schemas = 0;
}

static int get_varint(const uint8_t *p, size_t len, size_t *off, uint64_t *ret)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		uint8_t b;

		if (*off >= len)
			return -EBADMSG;
		b = p[(*off)++];
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*ret = v;
			return 0;
		}
	}
	return -EBADMSG;
}

/* Copy len bytes at *off into the decoder's text buffer as a C string. */
static int take_text(struct queue_decoder *d, size_t len, size_t *text_used, const char **ret)
{
	char *dst;

	if (len > d->len - d->off || len + 1 > sizeof(d->text) - *text_used)
		return -EBADMSG;
	dst = d->text + *text_used;
	memcpy(dst, d->payload + d->off, len);
	dst[len] = 0;
	if (memchr(dst, 0, len))
		return -EBADMSG;
	d->off += len;
	*text_used += len + 1;
	*ret = dst;
	return 0;
}

/* Parse a schema at d->off into ret (topic, field names and types). */
static int read_schema(struct queue_decoder *d, struct cg_reading *ret, size_t *text_used)
{
	uint64_t topic_len, n_fields, name_len;
	int r;

	if (get_varint(d->payload, d->len, &d->off, &topic_len) < 0 || topic_len > CG_TOPIC_MAX)
		return -EBADMSG;
	r = take_text(d, topic_len, text_used, &ret->topic);
	if (r < 0)
		return r;
	if (get_varint(d->payload, d->len, &d->off, &n_fields) < 0 || n_fields == 0 ||
	    n_fields > CG_FIELDS_MAX)
		return -EBADMSG;
	for (uint64_t i = 0; i < n_fields; i++) {
		struct cg_field *f = &d->fields[i];

		if (d->off >= d->len)
			return -EBADMSG;
		f->type = (enum cg_field_type)d->payload[d->off++];
		if (f->type < CG_FIELD_F64 || f->type > CG_FIELD_STRING)
			return -EBADMSG;
		if (get_varint(d->payload, d->len, &d->off, &name_len) < 0 ||
		    name_len > CG_FIELD_NAME_MAX)
			return -EBADMSG;
		r = take_text(d, name_len, text_used, &f->name);
		if (r < 0)
			return r;
	}
	ret->fields = d->fields;
	ret->n_fields = n_fields;
	return 0;
}

static int read_values(struct queue_decoder *d, const struct cg_reading *r, size_t *text_used)
{
	for (size_t i = 0; i < r->n_fields; i++) {
		struct cg_field *f = &d->fields[i];
		uint64_t v;

		switch (f->type) {
		case CG_FIELD_F64:
			if (d->len - d->off < 8)
				return -EBADMSG;
			v = get64(d->payload + d->off);
			memcpy(&f->value.f64, &v, sizeof(v));
			d->off += 8;
			break;
		case CG_FIELD_I64:
			if (get_varint(d->payload, d->len, &d->off, &v) < 0)
				return -EBADMSG;
			f->value.i64 = unzigzag(v);
			break;
		case CG_FIELD_BOOL:
			if (d->off >= d->len || d->payload[d->off] > 1)
				return -EBADMSG;
			f->value.b = d->payload[d->off++];
			break;
		case CG_FIELD_STRING:
			if (get_varint(d->payload, d->len, &d->off, &v) < 0 || v > CG_STRING_MAX ||
			    take_text(d, v, text_used, &f->value.str) < 0)
				return -EBADMSG;
			break;
		}
	}
	return 0;
}

int queue_decoder_next(struct queue_decoder *d, struct cg_reading *ret)
{
	size_t text_used = 0, save;
	uint64_t delta, ref;
	int r;

	if (d->off == d->len)
		return 0;
	if (get_varint(d->payload, d->len, &d->off, &delta) < 0 ||
	    get_varint(d->payload, d->len, &d->off, &ref) < 0)
		return -EBADMSG;
	/* Unsigned arithmetic: a corrupt delta must not be undefined behaviour. */
	ret->timestamp_ms = (int64_t)((uint64_t)d->prev_ts + (uint64_t)unzigzag(delta));
	d->prev_ts = ret->timestamp_ms;
	if (ref == 0) {
		if (d->n_schemas < sizeof(d->schema_offsets) / sizeof(d->schema_offsets[0]))
			d->schema_offsets[d->n_schemas++] = d->off;
		r = read_schema(d, ret, &text_used);
	} else {
		if (ref > d->n_schemas)
			return -EBADMSG;
		/* Parse the earlier schema again, then continue after this record's ref. */
		save = d->off;
		d->off = d->schema_offsets[ref - 1];
		r = read_schema(d, ret, &text_used);
		d->off = save;
	}
	if (r < 0)
		return r;
	r = read_values(d, ret, &text_used);
	return r < 0 ? r : 1;
}

bool queue_segment_name_parse(const char *name, uint64_t *ret_base)
{
	uint64_t v = 0;

	if (strlen(name) != 22 || strncmp(name, "seg-", 4) != 0 || strcmp(name + 20, ".q") != 0)
		return false;
	for (int i = 4; i < 20; i++) {
		char c = name[i];

		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			return false;
	}
	if (v == 0)
		return false;
	*ret_base = v;
	return true;
}

void queue_segment_name(char *buf, size_t size, uint64_t base, bool tmp)
{
	snprintf(buf, size, "seg-%016" PRIx64 ".q%s", base, tmp ? ".tmp" : "");
}
