// SPDX-License-Identifier: MIT
/*
 * counter: a predictable source of readings for tests of everything downstream of
 * cg_emit() (the --test printer, the queue, the uplink).
 *
 * Reading k (k = start, start + 1, ...; start is 1 by default) has the fields
 *     n     i64     k
 *     half  f64     k / 2.0
 *     even  bool    k is even
 *     text  string  "n=<k>"
 * so every field type appears and each field can be checked from n alone. One reading
 * is emitted per `interval` ("0": as fast as possible) until `count` readings have been
 * offered (0: no limit); then the plugin idles until it is stopped. n counts readings
 * offered, not accepted: a reading the daemon refuses leaves a gap, so a test sees
 * drops as missing numbers. The plugin never logs per reading.
 *
 * With `progress_file`, the highest n the daemon accepted (cg_emit() returned 0) is
 * written after every accepted reading, as 20 decimal digits and a newline at offset 0,
 * without fsync: a SIGKILL of the daemon does not lose the page cache, so after a kill
 * the file still tells a test exactly which readings were handed to the daemon. Tests
 * that restart the daemon give each run its own `start` so that the runs' readings
 * can be told apart.
 */
#include <coapgate/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct counter_conf {
	uint64_t interval_usec;
	int64_t count;
	int64_t start;
	const char *progress_file;
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
	{
	    .key = "start",
	    .type = CG_OPT_INT,
	    .offset = offsetof(struct counter_conf, start),
	    .default_value = "1",
	    .min = 0,
	    .max = INT64_MAX / 2,
	    .help = "n of the first reading.",
	},
	{
	    .key = "progress_file",
	    .type = CG_OPT_STRING,
	    .offset = offsetof(struct counter_conf, progress_file),
	    .help = "After each accepted reading, write its n here (20 digits and a newline, "
		    "at offset 0, no fsync).",
	},
	{ 0 },
};

struct counter {
	const struct counter_conf *conf;
	int64_t n;	 /* the last n offered; survives a restart of run() */
	int progress_fd; /* -1 without progress_file */
};

static int counter_init(struct cg_instance *inst, const void *conf, void **ret_state)
{
	const struct counter_conf *cf = conf;
	struct counter *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->conf = cf;
	c->n = cf->start - 1;
	c->progress_fd = -1;
	if (cf->progress_file) {
		c->progress_fd = open(cf->progress_file,
				      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (c->progress_fd < 0) {
			int r = -errno;

			free(c);
			return cg_log_errno(inst, CG_LOG_ERR, r, "cannot open \"%s\": %m",
					    cf->progress_file);
		}
	}
	*ret_state = c;
	return 0;
}

/* Fixed width, so that each write replaces the whole previous value. */
static void counter_record_progress(struct counter *c, int64_t n)
{
	char buf[32];
	int len;

	if (c->progress_fd < 0)
		return;
	len = snprintf(buf, sizeof(buf), "%020" PRId64 "\n", n);
	/* A failed write only leaves the file behind; the test notices the mismatch. */
	(void)!pwrite(c->progress_fd, buf, (size_t)len, 0);
}

static uint64_t monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void counter_emit(struct cg_instance *inst, struct counter *c, int64_t n)
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
	if (cg_emit(inst, &reading) == 0)
		counter_record_progress(c, n);
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

		if (c->conf->count && c->n - (c->conf->start - 1) >= c->conf->count) {
			counter_idle(inst);
			break;
		}
		counter_emit(inst, c, ++c->n);
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
	struct counter *c = state;

	if (c->progress_fd >= 0)
		close(c->progress_fd);
	free(c);
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
