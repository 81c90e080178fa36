/* SPDX-License-Identifier: MIT */
/*
 * The running daemon: the sd-event main loop with its signals, the systemd
 * notifications (READY=1, STATUS=, WATCHDOG=1, STOPPING=1), and the input instances
 * it starts, watches and stops.
 *
 * Not here: reading the configuration (config.c), the instances themselves (input.c).
 */
#ifndef COAPGATE_SERVICE_H
#define COAPGATE_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct service_options {
	bool test_mode;			/* print readings instead of queueing them */
	uint64_t test_count;		/* --test: stop after this many readings (0: never) */
	uint64_t test_duration_usec;	/* --test: stop after this long (0: never) */
	const char *const *only_inputs; /* NULL or NULL-terminated names to run */
	bool check_only;		/* init every instance, destroy it and return */
};

/*
 * Run until SIGTERM/SIGINT (or the --test limits). Returns a process exit status:
 * EXIT_SUCCESS, EX_CONFIG when a plugin refuses its configuration, EXIT_FAILURE on a
 * runtime error. Logs everything itself.
 */
int service_run(const struct config *config, const struct service_options *options);

#endif
