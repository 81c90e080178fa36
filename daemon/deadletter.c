// SPDX-License-Identifier: MIT
/*
 * The dead-letter file; see deadletter.h.
 */
#include "deadletter.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *entry_line(const struct deadletter_entry *e)
{
	json_t *j = json_pack(
	    "{s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:s%}", "time_ms", (json_int_t)now_realtime_ms(),
	    "topic", e->topic, "code", e->code, "reason", e->reason ? e->reason : "", "first_seq",
	    (json_int_t)e->first_seq, "last_seq", (json_int_t)e->last_seq, "readings",
	    (json_int_t)e->n_readings, "payload", e->payload, e->payload_len);
	char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	char *line = xasprintf("%s\n", text ? text : "{}");

	free(text);
	json_decref(j);
	return line;
}

int deadletter_append(const char *dir, uint64_t max_size, const struct deadletter_entry *e)
{
	char *path = xasprintf("%s/dead-letter.jsonl", dir);
	char *old = xasprintf("%s/dead-letter.1.jsonl", dir);
	char *line = entry_line(e);
	size_t len = strlen(line), done = 0;
	struct stat st;
	int fd, r = 0;

	if (stat(path, &st) == 0 && (uint64_t)st.st_size + len > max_size && rename(path, old) < 0)
		r = -errno;
	fd = r < 0 ? -1 : open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (r == 0 && fd < 0)
		r = -errno;
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
