// SPDX-License-Identifier: MIT
/*
 * The durability tracker; see ack.h. Durability comes in group commits (every
 * commit_interval, 100 ms by default), so one wait for the newest token answers for
 * every client at once.
 */
#include "ack.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* cg_wait_durable() in slices, so that ack_tracker_free() is noticed soon. */
#define WAIT_SLICE_USEC 200000

struct ack_tracker {
	struct cg_instance *inst;
	int event_fd;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
	uint64_t emitted;  /* newest token emitted by the input */
	uint64_t answered; /* newest token cg_wait_durable() answered for */
	uint64_t durable;
	uint64_t lost;
};

static void notify(struct ack_tracker *t)
{
	uint64_t one = 1;

	/* The counter cannot overflow from these writes; a failure changes nothing. */
	if (write(t->event_fd, &one, sizeof(one)) < 0) {
	}
}

static void *tracker_main(void *arg)
{
	struct ack_tracker *t = arg;

	pthread_mutex_lock(&t->lock);
	while (!t->stopping) {
		uint64_t target;
		int r;

		if (t->emitted <= t->answered) {
			pthread_cond_wait(&t->cond, &t->lock);
			continue;
		}
		target = t->emitted;
		pthread_mutex_unlock(&t->lock);
		r = cg_wait_durable(t->inst, target, WAIT_SLICE_USEC);
		pthread_mutex_lock(&t->lock);
		if (r == -ECANCELED)
			break;
		if (r == -ETIMEDOUT)
			continue;
		if (r == 0)
			t->durable = target;
		else
			t->lost = target;
		t->answered = target;
		notify(t);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int ack_tracker_start(struct cg_instance *inst, struct ack_tracker **ret)
{
	struct ack_tracker *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return -ENOMEM;
	t->inst = inst;
	t->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->event_fd < 0) {
		r = cg_log_error_errno(inst, -errno, "cannot create an eventfd: %m");
		free(t);
		return r;
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	r = pthread_create(&t->thread, NULL, tracker_main, t);
	if (r != 0) {
		cg_log_error_errno(inst, -r, "cannot start the ack thread: %m");
		pthread_mutex_destroy(&t->lock);
		pthread_cond_destroy(&t->cond);
		close(t->event_fd);
		free(t);
		return -r;
	}
	*ret = t;
	return 0;
}

void ack_tracker_free(struct ack_tracker *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stopping = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
	close(t->event_fd);
	free(t);
}

int ack_tracker_fd(const struct ack_tracker *t)
{
	return t->event_fd;
}

void ack_tracker_emitted(struct ack_tracker *t, uint64_t token)
{
	pthread_mutex_lock(&t->lock);
	if (token > t->emitted) {
		t->emitted = token;
		pthread_cond_signal(&t->cond);
	}
	pthread_mutex_unlock(&t->lock);
}

void ack_tracker_collect(struct ack_tracker *t, uint64_t *ret_durable, uint64_t *ret_lost)
{
	uint64_t n;

	if (read(t->event_fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: nothing new since the last collect; the values below still hold. */
	}
	pthread_mutex_lock(&t->lock);
	*ret_durable = t->durable;
	*ret_lost = t->lost;
	pthread_mutex_unlock(&t->lock);
}
