// SPDX-License-Identifier: MIT
/*
 * numbers: a weather-station-like source of readings for benchmarks of everything
 * downstream of cg_emit() (tests/bench/uplink_bench.py).
 *
 * Reading k (k = 0, 1, 2, ...) has three f64 fields
 *     temp      °C    21.5 +- 2.5 in a slow wave, 0.01 steps, +-0.10 of noise
 *     hum       %     45 +- 8 in a slow wave, 0.1 steps, +-0.3 of noise
 *     pressure  hPa   1013.25 +- 4 in a slow wave, 0.01 steps, +-0.05 of noise
 * and a timestamp: "now" (the daemon's clock) by default, or with `timestamp_step`
 * a synthetic clock start_time + k * timestamp_step, as a logger replaying its
 * backlog would produce. The noise comes from a 32-bit hash of (seed, k), and each
 * value is an integer number of steps divided by 100 or 10, so the values print as
 * short decimals ("21.47") exactly as a sensor would report them.
 * tests/emulator/node/bench.js computes the same values with the same arithmetic, so
 * the Node.js client and coapgate send the same readings.
 *
 * `rate` readings per second (0: as fast as the daemon takes them), in bursts: every
 * millisecond or so the readings due since the start are emitted, so rates of
 * hundreds of thousands per second cost no sleep per reading. `count` readings are
 * offered in total (0: no limit); then the plugin idles until it is stopped. The
 * plugin never logs per reading.
 */
#include <coapgate/plugin.h>

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

struct numbers_conf {
	int64_t rate;
	int64_t count;
	int64_t seed;
	uint64_t timestamp_step_usec;
	int64_t start_time;
};

static const struct cg_option numbers_options[] = {
	{
	    .key = "rate",
	    .type = CG_OPT_INT,
	    .offset = offsetof(struct numbers_conf, rate),
	    .default_value = "1",
	    .min = 0,
	    .max = 100000000,
	    .help = "Readings per second; 0: as fast as the daemon takes them.",
	},
	{
	    .key = "count",
	    .type = CG_OPT_INT,
	    .offset = offsetof(struct numbers_conf, count),
	    .default_value = "0",
	    .min = 0,
	    .max = INT64_MAX,
	    .help = "Stop emitting after this many readings and idle; 0: no limit.",
	},
	{
	    .key = "seed",
	    .type = CG_OPT_INT,
	    .offset = offsetof(struct numbers_conf, seed),
	    .default_value = "1",
	    .min = 0,
	    .max = 0xffffffffLL,
	    .help = "Seed of the noise added to the values.",
	},
	{
	    .key = "timestamp_step",
	    .type = CG_OPT_DURATION,
	    .offset = offsetof(struct numbers_conf, timestamp_step_usec),
	    .default_value = "0",
	    .min = 0,
	    .max = 86400000000LL, /* 1 day */
	    .help = "0: readings are timestamped now; else reading k gets start_time + k x "
		    "this (whole milliseconds).",
	},
	{
	    .key = "start_time",
	    .type = CG_OPT_INT,
	    .offset = offsetof(struct numbers_conf, start_time),
	    .default_value = "0",
	    .min = 0,
	    .max = INT64_MAX / 2,
	    .help = "With timestamp_step: the first timestamp, ms since the epoch; 0: now.",
	},
	{ 0 },
};

struct numbers {
	const struct numbers_conf *conf;
	uint64_t k;	  /* readings offered so far; survives a restart of run() */
	int64_t start_ms; /* the synthetic clock's origin */
};

/* The values of reading k; bench.js has the same function (numbersValues). */
static uint32_t numbers_hash(uint32_t seed, uint64_t k)
{
	uint32_t x = (uint32_t)k + seed * 0x9e3779b9u;

	x ^= x >> 16;
	x *= 0x85ebca6bu;
	x ^= x >> 13;
	x *= 0xc2b2ae35u;
	x ^= x >> 16;
	return x;
}

static void numbers_values(uint32_t seed, uint64_t k, double *temp, double *hum, double *pressure)
{
	uint32_t h = numbers_hash(seed, k);
	double t = (double)(k % 1000000);

	*temp = (2150.0 + round(250.0 * sin(t / 5000.0)) + (double)(h % 21) - 10.0) / 100.0;
	*hum = (450.0 + round(80.0 * sin(t / 7000.0 + 1.0)) + (double)((h >> 8) % 7) - 3.0) / 10.0;
	*pressure =
	    (101325.0 + round(400.0 * sin(t / 20000.0 + 2.0)) + (double)((h >> 16) % 11) - 5.0) /
	    100.0;
}

static int numbers_init(struct cg_instance *inst, const void *conf, void **ret_state)
{
	const struct numbers_conf *cf = conf;
	struct numbers *n = calloc(1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	n->conf = cf;
	n->start_ms = cf->start_time ? cf->start_time : cg_time_ms();
	*ret_state = n;
	return 0;
}

static uint64_t monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void numbers_emit(struct cg_instance *inst, struct numbers *n)
{
	const struct numbers_conf *cf = n->conf;
	struct cg_field fields[3] = {
		{ "temp", CG_FIELD_F64, { .f64 = 0 } },
		{ "hum", CG_FIELD_F64, { .f64 = 0 } },
		{ "pressure", CG_FIELD_F64, { .f64 = 0 } },
	};
	struct cg_reading reading = { .fields = fields, .n_fields = 3 };

	numbers_values((uint32_t)cf->seed, n->k, &fields[0].value.f64, &fields[1].value.f64,
		       &fields[2].value.f64);
	if (cf->timestamp_step_usec)
		reading.timestamp_ms =
		    n->start_ms + (int64_t)(n->k * (cf->timestamp_step_usec / 1000));
	n->k++;
	/* A refused reading has been logged and counted by the daemon. */
	(void)cg_emit(inst, &reading);
}

static bool numbers_done(const struct numbers *n)
{
	return n->conf->count && n->k >= (uint64_t)n->conf->count;
}

/* After the last reading: nothing to do but wait for the stop request. */
static void numbers_idle(struct cg_instance *inst)
{
	struct pollfd pfd = { .fd = cg_stop_fd(inst), .events = POLLIN };

	while (!cg_should_stop(inst))
		(void)poll(&pfd, 1, -1);
}

static int numbers_run(struct cg_instance *inst, void *state)
{
	struct numbers *n = state;
	const uint64_t rate = (uint64_t)n->conf->rate;
	const uint64_t start_us = monotonic_usec(), start_k = n->k;

	while (!cg_should_stop(inst)) {
		uint64_t due, elapsed;

		if (numbers_done(n))
			break;
		if (!rate) {
			/* Check for a stop request every 1024 readings, not every one. */
			for (int i = 0; i < 1024 && !numbers_done(n); i++)
				numbers_emit(inst, n);
			continue;
		}
		/* Everything due since the start of this run, then a short nap. */
		elapsed = monotonic_usec() - start_us;
		due = start_k + (uint64_t)((double)elapsed * (double)rate / 1e6) + 1;
		while (n->k < due && !numbers_done(n))
			numbers_emit(inst, n);
		/* The next reading is due in 1e6 / rate us; never nap less than 1 ms when
		 * the rate is high, so that bursts stay large and the naps few. */
		(void)cg_sleep(inst, rate >= 1000 ? 1000 : 1000000 / rate);
	}
	if (numbers_done(n))
		numbers_idle(inst);
	return 0;
}

static void numbers_destroy(void *state)
{
	free(state);
}

CG_EXPORT const struct cg_plugin CG_PLUGIN_SYMBOL = {
	CG_PLUGIN_HEADER,
	.name = "numbers",
	.version = "1.0",
	.description = "Test: temp/hum/pressure readings (3 x f64) at a set rate, for benchmarks.",
	.options = numbers_options,
	.conf_size = sizeof(struct numbers_conf),
	.init = numbers_init,
	.run = numbers_run,
	.destroy = numbers_destroy,
};
