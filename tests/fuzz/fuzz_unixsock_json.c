// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: parse_json() (plugins/unixsock/parse_json.c), the Unix socket
 * input's hand-written JSON parser, against jansson, the project's reference JSON
 * library, on one line (the input up to its first '\n').
 *
 * Checks:
 * - accepted: the reading passes reading_validate(), and jansson (json_loadb with
 *   JSON_REJECT_DUPLICATES) accepts the line too, as an object whose members are the
 *   reading: "topic" and "ts" as reported (absent: no topic and 0), every other member
 *   a field of the same name in the same order, integers equal, reals bit for bit
 *   (jansson uses strtod()), booleans, strings byte for byte (no NUL cut them short);
 * - rejected: a reason is given, without control characters (it becomes one answer
 *   line and a log message), and jansson rejects the line too or the object breaks
 *   one of the restrictions of plugins/unixsock/README.md ("JSON lines"): not an
 *   object, null, nested values, "topic" not a valid topic string, "ts" not a
 *   non-negative integer, bad field names, no fields or more than 64, a string longer
 *   than 512 bytes (jansson itself rejects \u0000, big integers, lone surrogates and
 *   invalid UTF-8);
 * - skipped: the line is JSON white space only (jansson rejects it: no value);
 * - a line with a NUL byte, never valid JSON, is rejected. jansson is no judge there:
 *   it skips a NUL right after a number or a literal ({"a":1\0} loads), its lexer
 *   loses the byte it puts back;
 * - the result does not depend on line[len] (set to '}' here, a byte that would finish
 *   many a cut-off object) nor on the size of the reason buffer, which is never
 *   overrun (ASan: every buffer is exactly its size, on the heap).
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "reading.h"
#include "topic.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool is_json_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* A string member of jansson's as a field's or topic's C string: same bytes. */
static bool same_string(const json_t *s, const char *str)
{
	return str && json_string_length(s) == strlen(str) &&
	       memcmp(json_string_value(s), str, strlen(str)) == 0;
}

/* parse_json() accepted the line: jansson must find the same reading in it. */
static void check_same_as_jansson(const json_t *root, const struct cg_reading *r)
{
	bool have_topic = false, have_ts = false;
	size_t n = 0;
	const char *key;
	json_t *v;

	CHECK(json_is_object(root));
	json_object_foreach((json_t *)root, key, v)
	{
		const struct cg_field *f;

		if (strcmp(key, "topic") == 0) {
			CHECK(json_is_string(v));
			CHECK(same_string(v, r->topic));
			have_topic = true;
			continue;
		}
		if (strcmp(key, "ts") == 0) {
			CHECK(json_is_integer(v));
			CHECK(json_integer_value(v) == r->timestamp_ms);
			have_ts = true;
			continue;
		}
		CHECK(n < r->n_fields);
		f = &r->fields[n++];
		CHECK(strcmp(f->name, key) == 0);
		switch (json_typeof(v)) {
		case JSON_INTEGER:
			CHECK(f->type == CG_FIELD_I64);
			CHECK(f->value.i64 == json_integer_value(v));
			break;
		case JSON_REAL: {
			double want = json_real_value(v);

			CHECK(f->type == CG_FIELD_F64);
			CHECK(memcmp(&f->value.f64, &want, sizeof(want)) == 0);
			break;
		}
		case JSON_TRUE:
		case JSON_FALSE:
			CHECK(f->type == CG_FIELD_BOOL);
			CHECK(f->value.b == json_is_true(v));
			break;
		case JSON_STRING:
			CHECK(f->type == CG_FIELD_STRING);
			CHECK(same_string(v, f->value.str));
			break;
		default:
			/* null, an object or an array became a field. */
			CHECK(!"a null or nested value was accepted");
		}
	}
	CHECK(n == r->n_fields);
	if (!have_topic)
		CHECK(r->topic == NULL);
	if (!have_ts)
		CHECK(r->timestamp_ms == 0);
}

/* jansson accepted what parse_json() rejected: is it outside the documented mapping? */
static bool breaks_restrictions(const json_t *root)
{
	size_t n_fields = 0;
	const char *key;
	json_t *v;

	if (!json_is_object(root))
		return true;
	json_object_foreach((json_t *)root, key, v)
	{
		if (strcmp(key, "topic") == 0) {
			if (!json_is_string(v) || !topic_is_valid(json_string_value(v)))
				return true;
			continue;
		}
		if (strcmp(key, "ts") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 0)
				return true;
			continue;
		}
		n_fields++;
		if (!reading_field_name_is_valid(key))
			return true;
		switch (json_typeof(v)) {
		case JSON_INTEGER:
		case JSON_REAL:
		case JSON_TRUE:
		case JSON_FALSE:
			break;
		case JSON_STRING:
			if (json_string_length(v) > CG_STRING_MAX)
				return true;
			break;
		default:
			return true; /* null, object, array */
		}
	}
	return n_fields == 0 || n_fields > CG_FIELDS_MAX;
}

static char *copy_line(const uint8_t *data, size_t len, char after)
{
	char *line = malloc(len + 1);

	CHECK(line);
	memcpy(line, data, len);
	line[len] = after;
	return line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Large: kept out of the stack. */
	static struct message m, m2;
	const uint8_t *nl = memchr(data, '\n', size);
	size_t len = nl ? (size_t)(nl - data) : size;
	size_t small_size = 1 + len % 24;
	char why[MESSAGE_WHY_MAX], *small, *line, *line2;
	json_error_t error;
	json_t *root;
	int ret, ret2;
	bool has_nul;

	line = copy_line(data, len, '}');
	memset(why, 0, sizeof(why));
	ret = parse_json(line, len, &m, why, sizeof(why));
	CHECK(ret == PARSE_READING || ret == PARSE_SKIP || ret == -EINVAL);

	/* The same again from a fresh copy, another line[len] and a tiny reason buffer. */
	line2 = copy_line(data, len, '\n');
	small = malloc(small_size);
	CHECK(small);
	ret2 = parse_json(line2, len, &m2, small, small_size);
	CHECK(ret2 == ret);
	if (ret == -EINVAL)
		CHECK(memchr(small, '\0', small_size));

	root = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &error);
	has_nul = memchr(data, '\0', len) != NULL;
	switch (ret) {
	case PARSE_SKIP:
		for (size_t i = 0; i < len; i++)
			CHECK(is_json_space((char)data[i]));
		CHECK(!root);
		break;
	case PARSE_READING: {
		char vwhy[256];

		CHECK(reading_validate(&m.reading, vwhy, sizeof(vwhy)) == 0);
		CHECK(m.reading.fields == m.fields);
		CHECK(!has_nul);
		if (!root)
			fprintf(stderr, "jansson rejects what parse_json accepted: %s\n",
				error.text);
		CHECK(root);
		check_same_as_jansson(root, &m.reading);
		check_same_as_jansson(root, &m2.reading);
		break;
	}
	default:
		CHECK(memchr(why, '\0', sizeof(why)) && why[0] != '\0');
		if (!is_printable(why))
			fprintf(stderr, "control characters in the reason: %s\n", why);
		CHECK(is_printable(why));
		if (root && !has_nul && !breaks_restrictions(root)) {
			fprintf(stderr, "parse_json rejected a valid message: %s\n", why);
			CHECK(!"parse_json rejected what jansson accepts within the rules");
		}
		break;
	}
	json_decref(root);
	free(small);
	free(line2);
	free(line);
	return 0;
}
