// SPDX-License-Identifier: MIT
/*
 * Asynchronous name lookups; see resolve.h. The query is shared by the loop and the
 * lookup thread: whichever lets go of it last frees it.
 */
#include "resolve.h"

#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <systemd/sd-event.h>
#include <unistd.h>

struct resolve_query {
	char *host, *port;
	int efd;
	sd_event_source *source;
	resolve_callback_t callback;
	void *userdata;
	int status;
	struct addrinfo *result;
	atomic_int refs; /* the loop's and the thread's */
};

static void query_unref(struct resolve_query *q)
{
	if (atomic_fetch_sub(&q->refs, 1) != 1)
		return;
	if (q->result)
		freeaddrinfo(q->result);
	safe_close(q->efd);
	free(q->host);
	free(q->port);
	free(q);
}

static void *lookup(void *arg)
{
	static const struct addrinfo hints = { .ai_family = AF_UNSPEC,
					       .ai_socktype = SOCK_DGRAM,
					       .ai_flags = AI_NUMERICSERV };
	struct resolve_query *q = arg;
	uint64_t one = 1;

	q->status = getaddrinfo(q->host, q->port, &hints, &q->result);
	if (write(q->efd, &one, sizeof(one)) < 0) {
		/* Cannot happen with an eventfd counter this small; nothing to tell. */
	}
	query_unref(q);
	return NULL;
}

static int on_done(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	struct resolve_query *q = userdata;

	q->source = sd_event_source_disable_unref(q->source);
	q->callback(q->status, q->status == 0 ? q->result : NULL, q->userdata);
	query_unref(q);
	return 0;
}

int resolve_start(sd_event *event, const char *host, const char *port, resolve_callback_t callback,
		  void *userdata, struct resolve_query **ret_query)
{
	struct resolve_query *q = xcalloc(1, sizeof(*q));
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t thread;
	int r;

	q->host = xstrdup(host);
	q->port = xstrdup(port);
	q->callback = callback;
	q->userdata = userdata;
	atomic_init(&q->refs, 2);
	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->efd < 0) {
		r = -errno;
		goto fail;
	}
	r = sd_event_add_io(event, &q->source, q->efd, EPOLLIN, on_done, q);
	if (r < 0)
		goto fail;
	/* The thread must not take the signals the loop handles. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = -pthread_create(&thread, &attr, lookup, q);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		goto fail;
	*ret_query = q;
	return 0;
fail:
	q->source = sd_event_source_disable_unref(q->source);
	atomic_store(&q->refs, 1);
	query_unref(q);
	return r;
}

void resolve_cancel(struct resolve_query *q)
{
	if (!q)
		return;
	q->source = sd_event_source_disable_unref(q->source);
	query_unref(q);
}
