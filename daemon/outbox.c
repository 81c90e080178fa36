// SPDX-License-Identifier: MIT
/*
 * The look-ahead window; see outbox.h. Readings sit in a ring indexed by an absolute
 * position that only grows, so a message can name its readings by position while the
 * head moves on. Topics and field-name lists are interned with reference counts: the
 * packer compares them by pointer, and a window of thousands of readings keeps one
 * copy of each.
 */
#include "outbox.h"

#include "encode_json.h"
#include "textbuf.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define INTERN_BUCKETS 256
/* Topics tried per call of outbox_next_message(): more distinct ones wait their turn. */
#define MAX_TOPICS_TRIED 64

enum record_state {
	RECORD_PENDING,
	RECORD_IN_FLIGHT,
	RECORD_DONE,
};

struct interned {
	char *text;
	size_t refs;
	struct interned *next;
};

struct record {
	uint64_t seq;
	int64_t timestamp_ms;
	struct interned *topic;
	struct interned *names;
	char *values;
	size_t values_len;
	uint64_t added_us;
	enum record_state state;
};

struct outbox {
	struct record *ring;
	size_t capacity;
	uint64_t head; /* position of the oldest reading */
	size_t count;
	size_t pending;
	uint64_t next_message_id;
	struct interned *interned[INTERN_BUCKETS];
	/* Scratch space for packing, capacity entries each. */
	struct encode_item *items;
	uint64_t *positions;
	struct textbuf names, values;
};

static struct interned *intern(struct outbox *o, const char *text)
{
	struct interned **bucket =
	    &o->interned[crc32(0, (const Bytef *)text, (uInt)strlen(text)) % INTERN_BUCKETS];
	struct interned *i;

	for (i = *bucket; i; i = i->next)
		if (strcmp(i->text, text) == 0) {
			i->refs++;
			return i;
		}
	i = xcalloc(1, sizeof(*i));
	i->text = xstrdup(text);
	i->refs = 1;
	i->next = *bucket;
	*bucket = i;
	return i;
}

static void unintern(struct outbox *o, struct interned *i)
{
	struct interned **p;

	if (--i->refs > 0)
		return;
	p = &o->interned[crc32(0, (const Bytef *)i->text, (uInt)strlen(i->text)) % INTERN_BUCKETS];
	for (; *p; p = &(*p)->next)
		if (*p == i) {
			*p = i->next;
			break;
		}
	free(i->text);
	free(i);
}

static struct record *at(const struct outbox *o, uint64_t pos)
{
	return &o->ring[pos % o->capacity];
}

struct outbox *outbox_new(size_t capacity)
{
	struct outbox *o = xcalloc(1, sizeof(*o));

	o->capacity = capacity ? capacity : 1;
	o->ring = xcalloc(o->capacity, sizeof(*o->ring));
	o->items = xcalloc(o->capacity, sizeof(*o->items));
	o->positions = xcalloc(o->capacity, sizeof(*o->positions));
	o->next_message_id = 1;
	return o;
}

static void record_clear(struct outbox *o, struct record *r)
{
	unintern(o, r->topic);
	unintern(o, r->names);
	free(r->values);
	memset(r, 0, sizeof(*r));
}

void outbox_free(struct outbox *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->count; i++)
		record_clear(o, at(o, o->head + i));
	free(o->ring);
	free(o->items);
	free(o->positions);
	textbuf_free(&o->names);
	textbuf_free(&o->values);
	free(o);
}

bool outbox_is_full(const struct outbox *o)
{
	return o->count == o->capacity;
}

size_t outbox_count(const struct outbox *o)
{
	return o->count;
}

size_t outbox_pending(const struct outbox *o)
{
	return o->pending;
}

int64_t outbox_oldest_timestamp_ms(const struct outbox *o)
{
	return o->count ? at(o, o->head)->timestamp_ms : 0;
}

void outbox_push(struct outbox *o, uint64_t seq, const struct cg_reading *reading, uint64_t now_us)
{
	struct record *r;

	if (outbox_is_full(o))
		abort(); /* the caller checks outbox_is_full() before reading */
	r = at(o, o->head + o->count);
	o->names.len = 0;
	o->values.len = 0;
	textbuf_append(&o->names, "", 0);
	textbuf_append(&o->values, "", 0);
	encode_json_reading(reading, &o->names, &o->values);
	r->seq = seq;
	r->timestamp_ms = reading->timestamp_ms;
	r->topic = intern(o, reading->topic);
	r->names = intern(o, o->names.data);
	r->values = xstrdup(o->values.data);
	r->values_len = o->values.len;
	r->added_us = now_us;
	r->state = RECORD_PENDING;
	o->count++;
	o->pending++;
}

static void item_of(const struct record *r, struct encode_item *item)
{
	*item = (struct encode_item){ .seq = r->seq,
				      .timestamp_ms = r->timestamp_ms,
				      .names = r->names->text,
				      .values = r->values,
				      .values_len = r->values_len };
}

/* Build the message of the n readings packed in o->items / o->positions. */
static void make_message(struct outbox *o, const struct encode_packer *p, size_t n,
			 const struct interned *topic, struct outbox_message *ret)
{
	struct textbuf text = { 0 };

	encode_packer_render(p, o->items, n, &text);
	*ret = (struct outbox_message){ .id = o->next_message_id++,
					.topic = xstrdup(topic->text),
					.payload_len = text.len,
					.n_readings = n,
					.first_seq = o->items[0].seq,
					.last_seq = o->items[n - 1].seq,
					.positions = xmalloc(n * sizeof(uint64_t)) };
	ret->payload = textbuf_steal(&text);
	memcpy(ret->positions, o->positions, n * sizeof(uint64_t));
	for (size_t i = 0; i < n; i++)
		at(o, o->positions[i])->state = RECORD_IN_FLIGHT;
	o->pending -= n;
}

/*
 * Pack the pending readings of topic from position start on. Returns how many were
 * packed; *ret_full says a reading did not fit.
 */
static size_t pack_topic(struct outbox *o, uint64_t start, const struct interned *topic,
			 struct encode_packer *p, bool *ret_full)
{
	size_t n = 0;

	*ret_full = false;
	for (uint64_t pos = start; pos < o->head + o->count; pos++) {
		struct record *r = at(o, pos);

		if (r->state != RECORD_PENDING || r->topic != topic)
			continue;
		item_of(r, &o->items[n]);
		if (!encode_packer_add(p, &o->items[n])) {
			*ret_full = true;
			/* A reading too big for any message goes alone, over budget: the
			 * uplink sees the size and dead-letters it instead of sending. */
			if (n == 0) {
				p->budget = SIZE_MAX;
				encode_packer_add(p, &o->items[0]);
				o->positions[n++] = pos;
			}
			break;
		}
		o->positions[n++] = pos;
	}
	return n;
}

int outbox_next_message(struct outbox *o, size_t (*budget_for_topic)(const char *, void *),
			void *arg, bool with_seq, uint64_t now_us, uint64_t linger_us,
			struct outbox_message *ret, uint64_t *ret_wake_us)
{
	const struct interned *tried[MAX_TOPICS_TRIED];
	size_t n_tried = 0;
	uint64_t wake = UINT64_MAX;

	for (uint64_t pos = o->head; o->pending && pos < o->head + o->count; pos++) {
		struct record *r = at(o, pos);
		struct encode_packer p;
		bool seen = false, full;
		size_t n;

		if (r->state != RECORD_PENDING)
			continue;
		for (size_t i = 0; i < n_tried && !seen; i++)
			seen = tried[i] == r->topic;
		if (seen)
			continue;
		if (n_tried == MAX_TOPICS_TRIED)
			break;
		tried[n_tried++] = r->topic;

		encode_packer_init(&p, budget_for_topic(r->topic->text, arg), with_seq);
		n = pack_topic(o, pos, r->topic, &p, &full);
		if (full || outbox_is_full(o) || now_us >= r->added_us + linger_us) {
			make_message(o, &p, n, r->topic, ret);
			return 1;
		}
		wake = MIN(wake, r->added_us + linger_us);
	}
	*ret_wake_us = wake;
	return 0;
}

static void set_state(struct outbox *o, const struct outbox_message *m, enum record_state s)
{
	for (size_t i = 0; i < m->n_readings; i++) {
		uint64_t pos = m->positions[i];
		struct record *r;

		/* Positions before the head were dropped: a late duplicate answer. */
		if (pos < o->head || pos >= o->head + o->count)
			continue;
		r = at(o, pos);
		if (r->state != RECORD_IN_FLIGHT)
			continue;
		r->state = s;
		if (s == RECORD_PENDING)
			o->pending++;
	}
}

void outbox_message_done(struct outbox *o, const struct outbox_message *m)
{
	set_state(o, m, RECORD_DONE);
}

void outbox_message_retry(struct outbox *o, const struct outbox_message *m)
{
	set_state(o, m, RECORD_PENDING);
}

void outbox_message_free(struct outbox_message *m)
{
	if (!m)
		return;
	free(m->topic);
	free(m->payload);
	free(m->positions);
	memset(m, 0, sizeof(*m));
}

uint64_t outbox_pop_done(struct outbox *o)
{
	uint64_t seq = 0;

	while (o->count && at(o, o->head)->state == RECORD_DONE) {
		struct record *r = at(o, o->head);

		seq = r->seq;
		record_clear(o, r);
		o->head++;
		o->count--;
	}
	return seq;
}
