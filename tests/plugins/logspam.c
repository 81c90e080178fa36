// SPDX-License-Identifier: MIT
/*
 * logspam: logs `burst` warnings as fast as it can once per `interval`, for the tests
 * of the per-input log rate limit. Messages are numbered "spam round R message M of B"
 * so a test can tell exactly which ones got through.
 */
#include <coapgate/plugin.h>

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>

struct logspam_conf {
	int64_t burst;
	uint64_t interval_usec;
};

static const struct cg_option logspam_options[] = {
	{
	    .key = "burst",
	    .type = CG_OPT_INT,
	    .offset = offsetof(struct logspam_conf, burst),
	    .default_value = "10",
	    .min = 1,
	    .max = 100000,
	    .help = "Warnings logged back to back each interval.",
	},
	{
	    .key = "interval",
	    .type = CG_OPT_DURATION,
	    .offset = offsetof(struct logspam_conf, interval_usec),
	    .default_value = "1s",
	    .min = 1000,	  /* 1 ms */
	    .max = 86400000000LL, /* 1 day */
	    .help = "Time between the starts of two bursts.",
	},
	{ 0 },
};

static int logspam_run(struct cg_instance *inst, void *state)
{
	const struct logspam_conf *c = state;

	for (int64_t round = 1; !cg_should_stop(inst); round++) {
		for (int64_t m = 1; m <= c->burst; m++)
			cg_log_warning(inst,
				       "spam round %" PRId64 " message %" PRId64 " of %" PRId64,
				       round, m, c->burst);
		(void)cg_sleep(inst, c->interval_usec);
	}
	return 0;
}

static int logspam_init(struct cg_instance *inst, const void *conf, void **ret_state)
{
	/* The conf stays valid until destroy(): it is all the state run() needs. */
	*ret_state = (void *)conf;
	return 0;
}

CG_EXPORT const struct cg_plugin CG_PLUGIN_SYMBOL = {
	CG_PLUGIN_HEADER,	    .name = "logspam",
	.version = "1.0",	    .description = "Test: bursts of numbered warnings.",
	.options = logspam_options, .conf_size = sizeof(struct logspam_conf),
	.init = logspam_init,	    .run = logspam_run,
};
