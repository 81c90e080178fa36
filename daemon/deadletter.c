// SPDX-License-Identifier: MIT
/*
 * The dead-letter file; see deadletter.h.
 */
#include "deadletter.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "utf8.h"
#include "util.h"

/* A copy of text that is valid UTF-8: each byte that does not start a valid sequence
 * becomes '?'. The server's answer is not ours to trust, and JSON needs UTF-8. */
static char *clean_utf8(const char *text, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t i = 0, o = 0;

	while (i < len) {
		unsigned char c = (unsigned char)text[i];
		size_t n = c < 0x80		? 1
			   : (c & 0xe0) == 0xc0 ? 2
			   : (c & 0xf0) == 0xe0 ? 3
			   : (c & 0xf8) == 0xf0 ? 4
						: 0;

		if (n && c && i + n <= len && utf8_is_valid(text + i, n)) {
			memcpy(out + o, text + i, n);
			o += n;
			i += n;
		} else {
			out[o++] = '?';
			i++;
		}
	}
	out[o] = '\0';
	return out;
}

/* The entry as one JSON line, or NULL if it cannot be encoded. */
static char *entry_line(const struct deadletter_entry *e)
{
	char *reason = clean_utf8(e->reason ? e->reason : "", e->reason ? strlen(e->reason) : 0);
	char *payload = clean_utf8(e->payload, e->payload_len);
	json_t *j = json_pack("{s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "time_ms",
			      (json_int_t)now_realtime_ms(), "topic", e->topic, "code", e->code,
			      "reason", reason, "first_seq", (json_int_t)e->first_seq, "last_seq",
			      (json_int_t)e->last_seq, "readings", (json_int_t)e->n_readings,
			      "payload", payload);
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	char *line = text ? xasprintf("%s\n", text) : NULL;

	free(text);
	json_decref(j);
	free(payload);
	free(reason);
	return line;
}

int deadletter_append(const char *dir, uint64_t max_size, const struct deadletter_entry *e)
{
	char *path = xasprintf("%s/dead-letter.jsonl", dir);
	char *old = xasprintf("%s/dead-letter.1.jsonl", dir);
	char *line = entry_line(e);
	size_t len = line ? strlen(line) : 0, done = 0;
	struct stat st;
	int fd = -1, r = line ? 0 : -EINVAL;

	if (r == 0 && stat(path, &st) == 0 && (uint64_t)st.st_size + len > max_size &&
	    rename(path, old) < 0)
		r = -errno;
	/* O_NONBLOCK: a FIFO put in the file's place must not hang the main loop. */
	if (r == 0) {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
			  0600);
		if (fd < 0)
			r = -errno;
	}
	while (r == 0 && done < len) {
		ssize_t n = write(fd, line + done, len - done);

		if (n < 0 && errno != EINTR)
			r = -errno;
		else if (n > 0)
			done += (size_t)n;
	}
	if (r == 0 && fdatasync(fd) < 0)
		r = -errno;
	safe_close(fd);
	free(line);
	free(old);
	free(path);
	return r;
}
