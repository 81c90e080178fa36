// SPDX-License-Identifier: MIT
/*
 * One frame into a reading, whatever the format: what every format shares (the ends
 * of the line, NUL bytes, the daemon's rules for readings, printable reasons), and
 * the hex preview of a frame for the log; see formats.h.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "formats.h"
#include "reading.h"

static bool is_line_end(char ch)
{
	return ch == '\r' || ch == '\n';
}

static bool is_white(char ch)
{
	return ch == ' ' || ch == '\t' || is_line_end(ch);
}

/* Reasons quote the frame, which may hold anything; they end up in the journal. */
static void make_printable(char *why)
{
	for (char *p = why; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
}

static int dispatch(const struct frame_format *ff, char *data, size_t len, struct message *m,
		    char *why, size_t why_size)
{
	switch (ff->format) {
	case FORMAT_JSON:
		return parse_json(data, len, m, why, why_size);
	case FORMAT_KV:
		return parse_kv(&ff->kv, data, len, m, why, why_size);
	case FORMAT_CSV:
		return parse_csv(&ff->csv, data, len, m, why, why_size);
	case FORMAT_REGEX:
		return parse_regex(ff->regex, data, len, m, why, why_size);
	case FORMAT_NMEA:
		return parse_nmea(data, len, m, why, why_size);
	}
	snprintf(why, why_size, "unknown format %d", (int)ff->format);
	return -EINVAL;
}

int frame_parse(const struct frame_format *ff, char *data, size_t len, struct message *m, char *why,
		size_t why_size)
{
	const char *nul;
	size_t white = 0;
	int r;

	/* A line end the terminator left over ("\r" of "\r\n" when the terminator is
	 * "\n", "\n" when it is "\r"). data[len] stays writable: it is a removed byte
	 * or the one past the frame. */
	while (len > 0 && is_line_end(data[len - 1]))
		len--;
	while (len > 0 && is_line_end(data[0])) {
		data++;
		len--;
	}
	while (white < len && is_white(data[white]))
		white++;
	if (white == len)
		return FRAME_EMPTY;
	/* A NUL would cut a name or a value short; the tty reads parity and framing
	 * errors and breaks as NUL bytes (INPCK without IGNPAR or PARMRK). */
	nul = memchr(data, '\0', len);
	if (nul) {
		snprintf(why, why_size,
			 "a NUL byte at byte %zu (a parity or framing error, a break, or binary "
			 "data)",
			 (size_t)(nul - data));
		return -EINVAL;
	}
	m->reading = (struct cg_reading){ .fields = m->fields };
	r = dispatch(ff, data, len, m, why, why_size);
	if (r == PARSE_SKIP)
		return FRAME_IGNORED;
	if (r == PARSE_READING)
		r = reading_validate(&m->reading, why, why_size);
	if (r < 0) {
		make_printable(why);
		return r;
	}
	return FRAME_READING;
}

void hex_preview(const char *data, size_t len, size_t max_bytes, char *out, size_t out_size)
{
	size_t shown = len < max_bytes ? len : max_bytes, n = 0;

	if (out_size == 0)
		return;
	out[0] = '\0';
	for (size_t i = 0; i < shown && n + 4 < out_size; i++)
		n += (size_t)snprintf(out + n, out_size - n, "%s%02x", i ? " " : "",
				      (unsigned char)data[i]);
	if (n + 3 < out_size) {
		out[n++] = ' ';
		out[n++] = '|';
		for (size_t i = 0; i < shown && n + 2 < out_size; i++) {
			unsigned char ch = (unsigned char)data[i];

			out[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '.';
		}
		out[n++] = '|';
		out[n] = '\0';
	}
	if (shown < len && n + 4 < out_size)
		memcpy(out + n, "...", 4);
}
