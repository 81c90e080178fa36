/* SPDX-License-Identifier: MIT */
/*
 * Input instances: one plugin instance with its own thread, its stop eventfd, its log
 * rate limit, and the supervision that restarts a failed run() with exponential
 * backoff. This file also implements the host API of plugin.h (cg_emit(), cg_log_full(),
 * cg_sleep(), ...), since each of those acts on an instance.
 *
 * Not here: loading plugins (plugin.c), parsing options (config.c), where readings go
 * (a struct sink given by the caller).
 */
#ifndef COAPGATE_INPUT_H
#define COAPGATE_INPUT_H

#include <coapgate/plugin.h>
#include <stdint.h>

#include "config.h"
#include "reading.h"

enum input_phase {
	INPUT_CREATED,
	INPUT_RUNNING,
	INPUT_BACKOFF, /* run() failed, waiting to restart */
	INPUT_STOPPED,
};

struct input_stats {
	enum input_phase phase;
	uint64_t readings; /* accepted by the sink */
	uint64_t rejected; /* refused by validation or the sink */
	uint64_t restarts;
};

struct input_log_limit {
	uint64_t interval_usec; /* 0: no limit */
	unsigned burst;
};

/*
 * Create the instance and call the plugin's init() with the parsed conf. config and
 * sink are borrowed and must outlive the instance. Returns 0, or the negative errno of
 * a refused init() (logged with the instance's FILE:LINE).
 */
int input_new(const struct input_config *config, const struct sink *sink,
	      const struct input_log_limit *limit, struct cg_instance **ret);

/* Start the instance's thread. Block the daemon's signals before calling. */
int input_start(struct cg_instance *in);

/* Ask the instance to stop: sets the flag and makes the stop eventfd readable. */
void input_request_stop(struct cg_instance *in);

/*
 * Wait until the thread has ended or CLOCK_MONOTONIC passes deadline_usec. Returns 0,
 * or -ETIMEDOUT (logged) when the plugin did not return from run() in time.
 */
int input_join(struct cg_instance *in, uint64_t deadline_usec);

/*
 * Call destroy() and free. An instance whose thread is still running (join timed out)
 * is left alone: its memory is leaked on purpose, since the process is exiting.
 */
void input_free(struct cg_instance *in);

/* Log "suppressed N messages" for a rate-limit window that has ended. */
void input_flush_log_limit(struct cg_instance *in, uint64_t now_usec);

void input_get_stats(struct cg_instance *in, struct input_stats *ret);
const char *input_name(const struct cg_instance *in);

#endif
