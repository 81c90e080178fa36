// SPDX-License-Identifier: MIT
/*
 * Fixed-window rate limiter; see ratelimit.h. A fixed window (rather than a token
 * bucket) makes the "suppressed N messages" line line up with what a person sees.
 */
#include "ratelimit.h"

void ratelimit_init(struct ratelimit *rl, uint64_t interval_usec, unsigned burst)
{
	pthread_mutex_init(&rl->lock, NULL);
	rl->interval_usec = interval_usec;
	rl->burst = burst;
	rl->window_start_usec = 0;
	rl->in_window = 0;
	rl->suppressed = 0;
}

void ratelimit_done(struct ratelimit *rl)
{
	pthread_mutex_destroy(&rl->lock);
}

static bool window_ended(const struct ratelimit *rl, uint64_t now_usec)
{
	return rl->in_window == 0 || now_usec == UINT64_MAX ||
	       now_usec - rl->window_start_usec >= rl->interval_usec;
}

bool ratelimit_test(struct ratelimit *rl, uint64_t now_usec, unsigned long *ret_suppressed)
{
	bool ok;

	*ret_suppressed = 0;
	if (rl->interval_usec == 0 || rl->burst == 0)
		return true;
	pthread_mutex_lock(&rl->lock);
	if (window_ended(rl, now_usec)) {
		*ret_suppressed = rl->suppressed;
		rl->suppressed = 0;
		rl->window_start_usec = now_usec;
		rl->in_window = 0;
	}
	ok = rl->in_window < rl->burst;
	if (ok)
		rl->in_window++;
	else
		rl->suppressed++;
	pthread_mutex_unlock(&rl->lock);
	return ok;
}

unsigned long ratelimit_flush(struct ratelimit *rl, uint64_t now_usec)
{
	unsigned long n = 0;

	pthread_mutex_lock(&rl->lock);
	if (rl->suppressed && window_ended(rl, now_usec)) {
		n = rl->suppressed;
		rl->suppressed = 0;
		rl->in_window = 0;
	}
	pthread_mutex_unlock(&rl->lock);
	return n;
}
