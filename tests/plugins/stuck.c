// SPDX-License-Identifier: MIT
/*
 * stuck: a run() that ignores stop requests, as a plugin blocked in a read() without
 * polling cg_stop_fd() would. It sleeps with plain nanosleep() for `seconds` in total
 * and only then returns, so the daemon's stop_timeout is what ends a shutdown.
 */
#include <coapgate/plugin.h>

#include <errno.h>
#include <stddef.h>
#include <time.h>

struct stuck_conf {
	int64_t seconds;
};

static const struct cg_option stuck_options[] = {
	{
	    .key = "seconds",
	    .type = CG_OPT_INT,
	    .offset = offsetof(struct stuck_conf, seconds),
	    .default_value = "60",
	    .min = 1,
	    .max = 86400,
	    .help = "How long run() stays deaf to stop requests before it returns.",
	},
	{ 0 },
};

static int stuck_init(struct cg_instance *inst, const void *conf, void **ret_state)
{
	*ret_state = (void *)conf;
	return 0;
}

static int stuck_run(struct cg_instance *inst, void *state)
{
	const struct stuck_conf *c = state;
	/* Ten naps per second: a signal that interrupts one only shortens that nap. */
	const struct timespec nap = { .tv_sec = 0, .tv_nsec = 100000000 };

	cg_log_info(inst, "stuck for %lld s, ignoring stop requests", (long long)c->seconds);
	for (int64_t i = 0; i < c->seconds * 10; i++)
		nanosleep(&nap, NULL);
	return 0;
}

CG_EXPORT const struct cg_plugin CG_PLUGIN_SYMBOL = {
	CG_PLUGIN_HEADER,	  .name = "stuck",
	.version = "1.0",	  .description = "Test: run() ignores stop requests.",
	.options = stuck_options, .conf_size = sizeof(struct stuck_conf),
	.init = stuck_init,	  .run = stuck_run,
};
