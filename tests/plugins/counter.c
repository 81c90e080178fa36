// SPDX-License-Identifier: MIT
/*
 * counter: a predictable source of readings for tests of everything downstream of
 * cg_emit() (the --test printer, the queue, the uplink).
 *
 * Reading k (k = 1, 2, 3, ...) has the fields
 *     n     i64     k
 *     half  f64     k / 2.0
 *     even  bool    k is even
 *     text  string  "n=<k>"
 * so every field type appears and each field can be checked from n alone. One reading
 * is emitted per `interval` ("0": as fast as possible) until `count` readings have been
 * offered (0: no limit); then the plugin idles until it is stopped. n counts readings
 * offered, not accepted: a reading the daemon refuses leaves a gap, so a test sees
 * drops as missing numbers. The plugin never logs per reading.
 */
#include <coapgate/plugin.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct counter_conf {
	uint64_t interval_usec;
	int64_t count;
};

static const struct cg_option counter_options[] = {
	{
	    .key = "interval",
	    .type = CG_OPT_DURATION,
	    .offset = offsetof(struct counter_conf, interval_usec),
	    .default_value = "1s",
	    .min = 0,
	    .max = 86400000000LL, /* 1 day */
	    .help = "Time between readings; \"0\": as fast as the daemon takes them.",
	},
	{
	    .key = "count",
	    .type = CG_OPT_INT,
	    .offset = offsetof(struct counter_conf, count),
	    .default_value = "0",
	    .min = 0,
	    .max = INT64_MAX,
	    .help = "Stop emitting after this many readings and idle; 0: no limit.",
	},
	{ 0 },
};

struct counter {
	const struct counter_conf *conf;
	int64_t n; /* the last n offered; survives a restart of run() */
};

static int counter_init(struct cg_instance *inst, const void *conf, void **ret_state)
{
	struct counter *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->conf = conf;
	*ret_state = c;
	return 0;
}

static uint64_t monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void counter_emit(struct cg_instance *inst, int64_t n)
{
	char text[32];
	struct cg_field fields[] = {
		{ "n", CG_FIELD_I64, { .i64 = n } },
		{ "half", CG_FIELD_F64, { .f64 = (double)n / 2.0 } },
		{ "even", CG_FIELD_BOOL, { .b = n % 2 == 0 } },
		{ "text", CG_FIELD_STRING, { .str = text } },
	};
	struct cg_reading reading = { .fields = fields, .n_fields = 4 };

	snprintf(text, sizeof(text), "n=%" PRId64, n);
	/* A refused reading has been logged and counted by the daemon; its n stays a gap. */
	(void)cg_emit(inst, &reading);
}

/* After the last reading: nothing to do but wait for the stop request. */
static void counter_idle(struct cg_instance *inst)
{
	struct pollfd pfd = { .fd = cg_stop_fd(inst), .events = POLLIN };

	while (!cg_should_stop(inst))
		(void)poll(&pfd, 1, -1);
}

static int counter_run(struct cg_instance *inst, void *state)
{
	struct counter *c = state;
	uint64_t interval = c->conf->interval_usec;
	uint64_t next = monotonic_usec();

	while (!cg_should_stop(inst)) {
		uint64_t now;

		if (c->conf->count && c->n >= c->conf->count) {
			counter_idle(inst);
			break;
		}
		counter_emit(inst, ++c->n);
		if (!interval)
			continue;
		/* From the previous deadline, so that the rate does not drift. */
		now = monotonic_usec();
		next += interval;
		if (next <= now)
			next = now + interval;
		(void)cg_sleep(inst, next - now);
	}
	return 0;
}

static void counter_destroy(void *state)
{
	free(state);
}

CG_EXPORT const struct cg_plugin CG_PLUGIN_SYMBOL = {
	CG_PLUGIN_HEADER,
	.name = "counter",
	.version = "1.0",
	.description = "Test: readings n = 1, 2, 3, ... with a field of every type.",
	.options = counter_options,
	.conf_size = sizeof(struct counter_conf),
	.init = counter_init,
	.run = counter_run,
	.destroy = counter_destroy,
};
