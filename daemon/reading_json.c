// SPDX-License-Identifier: MIT
/*
 * JSON form of a reading; see reading_json.h. Written with textbuf rather than a
 * jansson object tree so that floating-point values come out in their shortest exact
 * form ("671.43", not "671.42999999999995"); jansson still escapes every string.
 */
#include "reading_json.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "textbuf.h"

static void append_f64(struct textbuf *b, double v)
{
	char text[32];

	if (isnan(v)) {
		textbuf_puts(b, "\"NaN\"");
		return;
	}
	if (isinf(v)) {
		textbuf_puts(b, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
		return;
	}
	format_double(text, sizeof(text), v);
	textbuf_puts(b, text);
	/* Keep f64 recognisable next to i64: 1.0 rather than 1. */
	if (!strpbrk(text, ".e"))
		textbuf_puts(b, ".0");
}

static void append_field(struct textbuf *b, const struct cg_field *f)
{
	textbuf_json_string(b, f->name);
	textbuf_puts(b, ":");
	switch (f->type) {
	case CG_FIELD_F64:
		append_f64(b, f->value.f64);
		break;
	case CG_FIELD_I64:
		textbuf_printf(b, "%" PRId64, f->value.i64);
		break;
	case CG_FIELD_BOOL:
		textbuf_puts(b, f->value.b ? "true" : "false");
		break;
	case CG_FIELD_STRING:
		textbuf_json_string(b, f->value.str);
		break;
	}
}

char *reading_to_json(const char *input, const struct cg_reading *r)
{
	struct textbuf b = { 0 };

	textbuf_puts(&b, "{");
	if (input) {
		textbuf_puts(&b, "\"input\":");
		textbuf_json_string(&b, input);
		textbuf_puts(&b, ",");
	}
	if (r->topic) {
		textbuf_puts(&b, "\"topic\":");
		textbuf_json_string(&b, r->topic);
		textbuf_puts(&b, ",");
	}
	textbuf_printf(&b, "\"ts\":%" PRId64 ",\"fields\":{", r->timestamp_ms);
	for (size_t i = 0; i < r->n_fields; i++) {
		if (i)
			textbuf_puts(&b, ",");
		append_field(&b, &r->fields[i]);
	}
	textbuf_puts(&b, "}}");
	return textbuf_steal(&b);
}
