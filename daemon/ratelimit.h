/* SPDX-License-Identifier: MIT */
/*
 * A thread-safe message rate limiter: at most `burst` messages per `interval`, and a
 * count of what was suppressed so that the caller can say so once the window ends.
 */
#ifndef COAPGATE_RATELIMIT_H
#define COAPGATE_RATELIMIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct ratelimit {
	pthread_mutex_t lock;
	uint64_t interval_usec; /* 0 disables limiting */
	unsigned burst;
	uint64_t window_start_usec;
	unsigned in_window;
	unsigned long suppressed;
};

void ratelimit_init(struct ratelimit *rl, uint64_t interval_usec, unsigned burst);
void ratelimit_done(struct ratelimit *rl);

/*
 * Account one message at monotonic time now_usec. Returns true when it may be
 * emitted. When a new window starts and messages were suppressed in the old one,
 * *ret_suppressed gets their number (else 0), so the caller can log it first.
 */
bool ratelimit_test(struct ratelimit *rl, uint64_t now_usec, unsigned long *ret_suppressed);

/*
 * Returns the number of messages suppressed in a window that has ended by now_usec
 * and resets it (0 if none or if the window is still open). For a periodic flush and
 * at shutdown (pass UINT64_MAX to flush unconditionally).
 */
unsigned long ratelimit_flush(struct ratelimit *rl, uint64_t now_usec);

#endif
