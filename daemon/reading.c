// SPDX-License-Identifier: MIT
/*
 * Reading validation; see reading.h. Checked once at cg_emit() so that the queue, the
 * encoders and the uplink can trust every reading they see.
 */
#include "reading.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "topic.h"
#include "utf8.h"
#include "util.h"

static bool field_name_char_is_valid(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

/* A loop rather than strspn(): with its long set strspn() was the top of the Unix
 * socket input's profile, which checks every field of a million readings a second. */
bool reading_field_name_is_valid(const char *name)
{
	size_t n;

	for (n = 0; name[n]; n++)
		if (n >= CG_FIELD_NAME_MAX || !field_name_char_is_valid(name[n]))
			return false;
	return n > 0;
}

static int check_field(const struct cg_field *f, size_t i, char *why, size_t why_size)
{
	size_t len;

	if (!f->name || !reading_field_name_is_valid(f->name)) {
		snprintf(why, why_size,
			 "field %zu: the name \"%.64s\" is not 1 to %d of A-Z a-z 0-9 _ . -", i,
			 f->name ? f->name : "(null)", CG_FIELD_NAME_MAX);
		return -EINVAL;
	}
	switch (f->type) {
	case CG_FIELD_F64:
	case CG_FIELD_I64:
	case CG_FIELD_BOOL:
		return 0;
	case CG_FIELD_STRING:
		if (!f->value.str) {
			snprintf(why, why_size, "field \"%s\": the string is NULL", f->name);
			return -EINVAL;
		}
		len = strnlen(f->value.str, CG_STRING_MAX + 1);
		if (len > CG_STRING_MAX) {
			snprintf(why, why_size, "field \"%s\": the string is longer than %d bytes",
				 f->name, CG_STRING_MAX);
			return -EINVAL;
		}
		if (!utf8_is_valid(f->value.str, len)) {
			snprintf(why, why_size, "field \"%s\": the string is not valid UTF-8",
				 f->name);
			return -EINVAL;
		}
		return 0;
	}
	snprintf(why, why_size, "field \"%s\": unknown type %d", f->name, (int)f->type);
	return -EINVAL;
}

int reading_validate(const struct cg_reading *r, char *why, size_t why_size)
{
	if (r->n_fields == 0 || r->n_fields > CG_FIELDS_MAX || !r->fields) {
		snprintf(why, why_size, "a reading has 1 to %d fields, this one has %zu",
			 CG_FIELDS_MAX, r->fields ? r->n_fields : 0);
		return -EINVAL;
	}
	if (r->timestamp_ms < 0) {
		snprintf(why, why_size, "the timestamp %lld is negative",
			 (long long)r->timestamp_ms);
		return -EINVAL;
	}
	if (r->topic && !topic_is_valid(r->topic)) {
		snprintf(why, why_size, "the topic \"%.64s\" is not a valid 1NCE OS topic",
			 r->topic);
		return -EINVAL;
	}
	for (size_t i = 0; i < r->n_fields; i++) {
		int ret = check_field(&r->fields[i], i, why, why_size);

		if (ret < 0)
			return ret;
		/* Duplicate names would silently overwrite each other in JSON. */
		for (size_t j = 0; j < i; j++)
			if (strcmp(r->fields[j].name, r->fields[i].name) == 0) {
				snprintf(why, why_size, "the field name \"%s\" appears twice",
					 r->fields[i].name);
				return -EINVAL;
			}
	}
	return 0;
}
