// SPDX-License-Identifier: MIT
/*
 * The --test sink; see testprint.h.
 */
#include "testprint.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "reading_json.h"
#include "util.h"

struct test_printer {
	pthread_mutex_t lock;
	FILE *out;
	uint64_t limit;
	uint64_t printed;
	int done_fd;
};

struct test_printer *test_printer_new(FILE *out, uint64_t limit)
{
	struct test_printer *p = xcalloc(1, sizeof(*p));

	pthread_mutex_init(&p->lock, NULL);
	p->out = out;
	p->limit = limit;
	p->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->done_fd < 0) {
		log_error_errno(errno, "cannot create an eventfd: %m");
		abort();
	}
	return p;
}

void test_printer_free(struct test_printer *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->lock);
	safe_close(p->done_fd);
	free(p);
}

static int test_printer_emit(void *userdata, const char *input, const struct cg_reading *r,
			     uint64_t *ret_token)
{
	struct test_printer *p = userdata;
	char *line = reading_to_json(input, r);
	uint64_t one = 1;

	if (!line)
		return -ENOMEM;
	pthread_mutex_lock(&p->lock);
	if (p->limit == 0 || p->printed < p->limit) {
		fprintf(p->out, "%s\n", line);
		/* Line-buffered output even into a pipe: the reader is often a test. */
		fflush(p->out);
		p->printed++;
		*ret_token = p->printed;
		if (p->printed == p->limit && write(p->done_fd, &one, sizeof(one)) < 0) {
		}
	}
	pthread_mutex_unlock(&p->lock);
	free(line);
	return 0;
}

/* Printed is as durable as --test gets. */
static int test_printer_wait(void *userdata, uint64_t after, uint64_t token, uint64_t timeout_usec)
{
	(void)userdata;
	(void)after;
	(void)token;
	(void)timeout_usec;
	return 0;
}

struct sink test_printer_sink(struct test_printer *p)
{
	return (struct sink){ .emit = test_printer_emit,
			      .wait_durable = test_printer_wait,
			      .userdata = p };
}

int test_printer_done_fd(const struct test_printer *p)
{
	return p->done_fd;
}

uint64_t test_printer_count(struct test_printer *p)
{
	uint64_t n;

	pthread_mutex_lock(&p->lock);
	n = p->printed;
	pthread_mutex_unlock(&p->lock);
	return n;
}
