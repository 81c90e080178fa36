/* SPDX-License-Identifier: MIT */
/*
 * The uplink's compact JSON encoding: many readings of one topic in one CoAP payload,
 * with what repeats said once (docs/ENCODING.md has the format and an example):
 *
 *   {"v":1,"s":1200,"t":1732480000000,
 *    "g":[{"f":["temp","hum"],"r":[[0,0,21.5,40],[1,1000,21.6,41]]}]}
 *
 * "s" and "t" are the sequence number and timestamp (ms) of the first reading; each
 * row starts with its own offsets from them, then the values in the order of its
 * group's field names. A reading's values are rendered once, when the uplink reads it
 * from the queue; packing then only needs sizes, so a message is filled to the byte.
 *
 * Not here: which readings go together (batch.c), sending (uplink.c).
 */
#ifndef COAPGATE_ENCODE_JSON_H
#define COAPGATE_ENCODE_JSON_H

#include <coapgate/plugin.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "textbuf.h"

/* The most distinct field-name lists (groups) in one message. */
#define ENCODE_JSON_MAX_GROUPS 16

/*
 * Render a reading's field names (the group key, e.g. "temp","hum") and values
 * (21.5,40) as JSON list items, appended to names and values. NaN and infinities,
 * which JSON cannot carry, become null.
 */
void encode_json_reading(const struct cg_reading *r, struct textbuf *names, struct textbuf *values);

/* One reading as the packer sees it; the strings are borrowed. */
struct encode_item {
	uint64_t seq;
	int64_t timestamp_ms;
	const char *names; /* interned: equal lists are the same pointer */
	const char *values;
	size_t values_len;
};

/*
 * Fills one message. Items are offered in ascending seq order; the first fixes "s"
 * and "t". encode_packer_add() takes an item if the message stays within the budget
 * and returns whether it did.
 */
struct encode_packer {
	size_t budget;
	bool with_seq;
	size_t size;
	size_t n_items;
	uint64_t base_seq;
	int64_t base_ts;
	const char *groups[ENCODE_JSON_MAX_GROUPS];
	size_t n_groups;
};

void encode_packer_init(struct encode_packer *p, size_t budget, bool with_seq);
bool encode_packer_add(struct encode_packer *p, const struct encode_item *item);

/*
 * Write the message of the items the packer took (the same items, in the same order)
 * into out. Its length is exactly p->size.
 */
void encode_packer_render(const struct encode_packer *p, const struct encode_item *items,
			  size_t n_items, struct textbuf *out);

#endif
