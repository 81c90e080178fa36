// SPDX-License-Identifier: MIT
/*
 * key=value pairs, "temperature=21.5 humidity=40 door=open", in place; see formats.h
 * and README.md ("kv").
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "formats.h"

/* What a byte is to the parser: a table, not strchr() per byte and set, which cost
 * more than the rest of the parse (tests/bench/serial_parse_bench). */
enum {
	PAIR_SEPARATOR = 1,
	KEY_SEPARATOR = 2,
};

static void classify(const struct kv_format *kv, unsigned char cls[256])
{
	memset(cls, 0, 256);
	for (const char *p = kv->pair_separators; *p; p++)
		cls[(unsigned char)*p] |= PAIR_SEPARATOR;
	for (const char *p = kv->key_separators; *p; p++)
		cls[(unsigned char)*p] |= KEY_SEPARATOR;
}

static const struct field_spec *find_type(const struct kv_format *kv, const char *key)
{
	for (size_t i = 0; i < kv->n_types; i++)
		if (strcmp(kv->types[i].name, key) == 0)
			return &kv->types[i];
	return NULL;
}

static int fail(char *why, size_t why_size, const char *data, const char *at, const char *what)
{
	snprintf(why, why_size, "invalid key=value pairs at byte %zu: %s", (size_t)(at - data),
		 what);
	return -EINVAL;
}

int parse_kv(const struct kv_format *kv, char *data, size_t len, struct message *m, char *why,
	     size_t why_size)
{
	char *p = data, *end = data + len;
	bool any_pair = false;
	unsigned char cls[256];

	classify(kv, cls);
#define IS(ch, what) (cls[(unsigned char)(ch)] & (what))

	for (;;) {
		const struct field_spec *spec;
		char *key, *value, *value_end;
		bool quoted = false;
		struct cg_field *f;
		int r;

		while (p < end && IS(*p, PAIR_SEPARATOR))
			p++;
		if (p == end)
			break;
		key = p;
		while (p < end && !IS(*p, PAIR_SEPARATOR | KEY_SEPARATOR))
			p++;
		if (p == end || !IS(*p, KEY_SEPARATOR))
			return fail(why, why_size, data, key, "expected key=value");
		if (p == key)
			return fail(why, why_size, data, key, "a value without a key");
		*p++ = '\0';
		value = p;
		if (p < end && *p == '"') {
			value = ++p;
			while (p < end && *p != '"')
				p++;
			if (p == end)
				return fail(why, why_size, data, value - 1,
					    "a quoted value does not end");
			value_end = p++;
			if (p < end && !IS(*p, PAIR_SEPARATOR))
				return fail(why, why_size, data, p, "text after a quoted value");
			quoted = true;
		} else {
			while (p < end && !IS(*p, PAIR_SEPARATOR))
				p++;
			value_end = p;
		}
		/* p is at the end or at the separator after the value, which value_parse()
		 * may overwrite with the string's NUL: step past it first. */
		if (p < end)
			p++;
		any_pair = true;
		spec = find_type(kv, key);
		if ((spec && spec->type == VALUE_SKIP) || value_end == value)
			continue;
		if (m->reading.n_fields == CG_FIELDS_MAX) {
			snprintf(why, why_size, "a reading has at most %d fields", CG_FIELDS_MAX);
			return -EINVAL;
		}
		f = &m->fields[m->reading.n_fields];
		f->name = key;
		if (spec)
			r = value_parse(value, (size_t)(value_end - value), spec->type, f, why,
					why_size);
		else if (quoted)
			r = value_parse(value, (size_t)(value_end - value), VALUE_STRING, f, why,
					why_size);
		else
			r = value_parse_auto(value, (size_t)(value_end - value), f, why, why_size);
		if (r < 0) {
			char reason[MESSAGE_WHY_MAX];

			snprintf(reason, sizeof(reason), "%s", why);
			snprintf(why, why_size, "key \"%.64s\": %s", key, reason);
			return r;
		}
		m->reading.n_fields++;
	}
#undef IS
	if (!any_pair)
		return fail(why, why_size, data, p, "no key=value pairs");
	/* Every value was empty or skipped: nothing to report, nothing wrong. */
	return m->reading.n_fields ? PARSE_READING : PARSE_SKIP;
}
