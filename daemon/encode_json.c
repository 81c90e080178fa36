// SPDX-License-Identifier: MIT
/*
 * The compact JSON encoding; see encode_json.h and docs/ENCODING.md. Sizes are
 * computed exactly while packing, so the render never has to undo anything.
 */
#include "encode_json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define HEAD_OPEN   "{\"v\":1"
#define SEQ_KEY	    ",\"s\":"
#define TIME_KEY    ",\"t\":"
#define GROUPS_OPEN ",\"g\":["
#define TAIL	    "]}"
#define GROUP_OPEN  "{\"f\":["
#define GROUP_ROWS  "],\"r\":["
#define GROUP_CLOSE "]}"

static size_t u64_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

static size_t i64_len(int64_t v)
{
	return v < 0 ? 1 + u64_len(-(uint64_t)v) : u64_len((uint64_t)v);
}

void encode_json_reading(const struct cg_reading *r, struct textbuf *names, struct textbuf *values)
{
	char num[40];

	for (size_t i = 0; i < r->n_fields; i++) {
		const struct cg_field *f = &r->fields[i];

		if (i) {
			textbuf_append(names, ",", 1);
			textbuf_append(values, ",", 1);
		}
		/* Field names are [A-Za-z0-9_.-] (reading.c): nothing to escape. */
		textbuf_append(names, "\"", 1);
		textbuf_puts(names, f->name);
		textbuf_append(names, "\"", 1);
		switch (f->type) {
		case CG_FIELD_F64:
			if (!isfinite(f->value.f64)) {
				textbuf_append(values, "null", 4);
				break;
			}
			format_double(num, sizeof(num), f->value.f64);
			textbuf_puts(values, num);
			break;
		case CG_FIELD_I64:
			snprintf(num, sizeof(num), "%" PRId64, f->value.i64);
			textbuf_puts(values, num);
			break;
		case CG_FIELD_BOOL:
			textbuf_puts(values, f->value.b ? "true" : "false");
			break;
		case CG_FIELD_STRING:
			textbuf_json_string(values, f->value.str);
			break;
		}
	}
}

void encode_packer_init(struct encode_packer *p, size_t budget, bool with_seq)
{
	memset(p, 0, sizeof(*p));
	p->budget = budget;
	p->with_seq = with_seq;
}

static size_t row_size(const struct encode_packer *p, const struct encode_item *item)
{
	size_t n = 2 + i64_len(item->timestamp_ms - p->base_ts); /* [dt] */

	if (p->with_seq)
		n += u64_len(item->seq - p->base_seq) + 1;
	if (item->values_len)
		n += 1 + item->values_len;
	return n;
}

static int group_index(const struct encode_packer *p, const char *names)
{
	for (size_t i = 0; i < p->n_groups; i++)
		if (p->groups[i] == names)
			return (int)i;
	return -1;
}

bool encode_packer_add(struct encode_packer *p, const struct encode_item *item)
{
	struct encode_packer next = *p;
	size_t add;

	if (next.n_items == 0) {
		next.base_seq = item->seq;
		next.base_ts = item->timestamp_ms;
		next.size = strlen(HEAD_OPEN) + strlen(TIME_KEY) + i64_len(item->timestamp_ms) +
			    strlen(GROUPS_OPEN) + strlen(TAIL);
		if (next.with_seq)
			next.size += strlen(SEQ_KEY) + u64_len(item->seq);
	}
	add = row_size(&next, item);
	if (group_index(&next, item->names) < 0) {
		if (next.n_groups == ENCODE_JSON_MAX_GROUPS)
			return false;
		next.groups[next.n_groups++] = item->names;
		add += strlen(GROUP_OPEN) + strlen(item->names) + strlen(GROUP_ROWS) +
		       strlen(GROUP_CLOSE) + (next.n_groups > 1);
	} else {
		add += 1; /* the comma before this row */
	}
	if (next.size + add > next.budget)
		return false;
	next.size += add;
	next.n_items++;
	*p = next;
	return true;
}

static void render_row(const struct encode_packer *p, const struct encode_item *item,
		       struct textbuf *out)
{
	if (p->with_seq)
		textbuf_printf(out, "[%" PRIu64 ",%" PRId64, item->seq - p->base_seq,
			       item->timestamp_ms - p->base_ts);
	else
		textbuf_printf(out, "[%" PRId64, item->timestamp_ms - p->base_ts);
	if (item->values_len) {
		textbuf_append(out, ",", 1);
		textbuf_append(out, item->values, item->values_len);
	}
	textbuf_append(out, "]", 1);
}

void encode_packer_render(const struct encode_packer *p, const struct encode_item *items,
			  size_t n_items, struct textbuf *out)
{
	textbuf_puts(out, HEAD_OPEN);
	if (p->with_seq)
		textbuf_printf(out, SEQ_KEY "%" PRIu64, p->base_seq);
	textbuf_printf(out, TIME_KEY "%" PRId64 GROUPS_OPEN, p->base_ts);
	for (size_t g = 0; g < p->n_groups; g++) {
		bool first = true;

		if (g)
			textbuf_append(out, ",", 1);
		textbuf_puts(out, GROUP_OPEN);
		textbuf_puts(out, p->groups[g]);
		textbuf_puts(out, GROUP_ROWS);
		for (size_t i = 0; i < n_items; i++) {
			if (items[i].names != p->groups[g])
				continue;
			if (!first)
				textbuf_append(out, ",", 1);
			first = false;
			render_row(p, &items[i], out);
		}
		textbuf_puts(out, GROUP_CLOSE);
	}
	textbuf_puts(out, TAIL);
}
