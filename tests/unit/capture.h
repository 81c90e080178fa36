/* SPDX-License-Identifier: MIT */
/*
 * Test helper: capture what the daemon logs. log.c writes each message with one
 * write(STDERR_FILENO), so the capture points fd 2 at an unlinked temporary file
 * between capture_start() and capture_stop() and then reads the file back. Call
 * log_setup(LOG_TARGET_STDERR) once first so that nothing goes to the journal.
 *
 * Keep cmocka assertions out of a capture window: their messages would be captured.
 */
#ifndef COAPGATE_TEST_CAPTURE_H
#define COAPGATE_TEST_CAPTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

struct capture {
	int saved_fd; /* the real stderr */
	int fd;	      /* the temporary file */
};

static inline void capture_die(const char *what)
{
	perror(what);
	abort();
}

static inline void capture_start(struct capture *c)
{
	FILE *f = tmpfile();

	if (!f)
		capture_die("capture: tmpfile");
	c->fd = dup(fileno(f));
	fclose(f);
	if (c->fd < 0)
		capture_die("capture: dup");
	fflush(stderr);
	c->saved_fd = dup(STDERR_FILENO);
	if (c->saved_fd < 0 || dup2(c->fd, STDERR_FILENO) < 0)
		capture_die("capture: dup2");
}

/* Restore stderr and return everything written meanwhile (free() it). */
static inline char *capture_stop(struct capture *c)
{
	size_t len = 0, size = 4096;
	char *text = malloc(size);
	ssize_t n;

	fflush(stderr);
	if (dup2(c->saved_fd, STDERR_FILENO) < 0)
		capture_die("capture: dup2");
	close(c->saved_fd);
	if (!text)
		capture_die("capture: malloc");
	if (lseek(c->fd, 0, SEEK_SET) < 0)
		capture_die("capture: lseek");
	while ((n = read(c->fd, text + len, size - len - 1)) > 0) {
		len += (size_t)n;
		if (size - len == 1) {
			size *= 2;
			text = realloc(text, size);
			if (!text)
				capture_die("capture: realloc");
		}
	}
	if (n < 0)
		capture_die("capture: read");
	text[len] = 0;
	close(c->fd);
	return text;
}

/* How often needle occurs in haystack (non-overlapping). */
static inline unsigned capture_count(const char *haystack, const char *needle)
{
	size_t n = strlen(needle);
	unsigned count = 0;

	for (const char *p = haystack; n && (p = strstr(p, needle)); p += n)
		count++;
	return count;
}

/* How many lines (messages) the text holds. */
static inline unsigned capture_lines(const char *text)
{
	unsigned n = 0;

	for (const char *p = text; *p; p++)
		n += *p == '\n';
	return n;
}

#endif
