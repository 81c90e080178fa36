// SPDX-License-Identifier: MIT
/*
 * failing: a plugin whose run() fails on purpose, for the supervision tests.
 *
 * Every run() logs "run N starting at T" (N counts from 1, T is CLOCK_MONOTONIC in
 * seconds, so a test can measure the restart delays without pipe latency). The first
 * fail_count runs (-1: every run) return -EIO: at once, or after staying up for
 * healthy_for when that is set and N > healthy_after, which is how a test makes one run
 * last long enough to reset the backoff. A run that does not fail behaves like a
 * healthy plugin: one reading {run, n} per interval until it is asked to stop.
 */
#include <coapgate/plugin.h>

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

struct failing_conf {
	int64_t fail_count;
	uint64_t healthy_for_usec;
	int64_t healthy_after;
	uint64_t interval_usec;
};

static const struct cg_option failing_options[] = {
	{
	    .key = "fail_count",
	    .type = CG_OPT_INT,
	    .offset = offsetof(struct failing_conf, fail_count),
	    .default_value = "-1",
	    .min = -1,
	    .max = INT32_MAX,
	    .help = "How many runs fail with EIO before runs succeed; -1: all of them.",
	},
	{
	    .key = "healthy_for",
	    .type = CG_OPT_DURATION,
	    .offset = offsetof(struct failing_conf, healthy_for_usec),
	    .default_value = "0",
	    .help = "A failing run first stays up this long; 0: it fails at once.",
	},
	{
	    .key = "healthy_after",
	    .type = CG_OPT_INT,
	    .offset = offsetof(struct failing_conf, healthy_after),
	    .default_value = "0",
	    .min = 0,
	    .max = INT32_MAX,
	    .help = "healthy_for applies only to runs after this many.",
	},
	{
	    .key = "interval",
	    .type = CG_OPT_DURATION,
	    .offset = offsetof(struct failing_conf, interval_usec),
	    .default_value = "100ms",
	    .min = 1000,	  /* 1 ms */
	    .max = 86400000000LL, /* 1 day */
	    .help = "How often a run that does not fail emits a reading.",
	},
	{ 0 },
};

struct failing {
	const struct failing_conf *conf;
	int64_t runs;
	int64_t readings;
};

static int failing_init(struct cg_instance *inst, const void *conf, void **ret_state)
{
	struct failing *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->conf = conf;
	*ret_state = f;
	return 0;
}

static double monotonic_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool run_fails(const struct failing *f, int64_t run)
{
	return f->conf->fail_count < 0 || run <= f->conf->fail_count;
}

static int failing_run(struct cg_instance *inst, void *state)
{
	struct failing *f = state;
	int64_t run = ++f->runs;

	cg_log_info(inst, "run %" PRId64 " starting at %.6f", run, monotonic_seconds());
	if (run_fails(f, run)) {
		if (f->conf->healthy_for_usec && run > f->conf->healthy_after &&
		    cg_sleep(inst, f->conf->healthy_for_usec) < 0)
			return 0; /* asked to stop while pretending to be healthy */
		return -EIO;
	}
	while (!cg_should_stop(inst)) {
		struct cg_field fields[] = {
			{ "run", CG_FIELD_I64, { .i64 = run } },
			{ "n", CG_FIELD_I64, { .i64 = ++f->readings } },
		};
		struct cg_reading reading = { .fields = fields, .n_fields = 2 };

		(void)cg_emit(inst, &reading);
		cg_sleep(inst, f->conf->interval_usec);
	}
	return 0;
}

static void failing_destroy(void *state)
{
	free(state);
}

CG_EXPORT const struct cg_plugin CG_PLUGIN_SYMBOL = {
	CG_PLUGIN_HEADER,
	.name = "failing",
	.version = "1.0",
	.description = "Test: run() fails with EIO a configured number of times.",
	.options = failing_options,
	.conf_size = sizeof(struct failing_conf),
	.init = failing_init,
	.run = failing_run,
	.destroy = failing_destroy,
};
