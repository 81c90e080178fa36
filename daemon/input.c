// SPDX-License-Identifier: MIT
/*
 * Input instances and the host API; see input.h. Supervision lives here rather than in
 * plugins so that every plugin gets the same restart behaviour: a plugin whose device
 * vanished returns an error and the host retries, 1 s doubling to 5 min.
 */
#include "input.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "parse.h"
#include "ratelimit.h"
#include "util.h"

struct cg_instance {
	const struct input_config *config;
	const struct cg_plugin *plugin;
	const struct sink *sink;
	void *state;
	bool initialized;

	int stop_fd;
	atomic_bool stop_requested;
	pthread_t thread;
	bool thread_started;
	bool thread_joined;

	struct ratelimit log_limit;

	atomic_int phase;
	atomic_uint_fast64_t readings;
	atomic_uint_fast64_t rejected;
	atomic_uint_fast64_t restarts;
	/* cg_wait_durable() has vouched for every token up to here (or reported the loss). */
	atomic_uint_fast64_t durable_through;
};

const char *input_name(const struct cg_instance *in)
{
	return in->config->name;
}

int input_new(const struct input_config *config, const struct sink *sink,
	      const struct input_log_limit *limit, struct cg_instance **ret)
{
	struct cg_instance *in = xcalloc(1, sizeof(*in));
	int r;

	in->config = config;
	in->plugin = &config->plugin->desc;
	in->sink = sink;
	in->phase = INPUT_CREATED;
	ratelimit_init(&in->log_limit, limit->interval_usec, limit->burst);
	in->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (in->stop_fd < 0) {
		r = log_error_errno(errno, "cannot create an eventfd: %m");
		goto fail;
	}
	if (in->plugin->init) {
		r = in->plugin->init(in, config->plugin_conf, &in->state);
		if (r < 0) {
			log_input(LOG_ERR, r, config->name,
				  "%s:%u: plugin \"%s\" refused its configuration: %m",
				  config->file, config->line, config->plugin_name);
			goto fail;
		}
	}
	in->initialized = true;
	*ret = in;
	return 0;
fail:
	input_free(in);
	return r < 0 ? r : -EINVAL;
}

static void log_restart(struct cg_instance *in, int r, uint64_t delay_usec)
{
	char delay[64];

	format_duration(delay, sizeof(delay), delay_usec);
	if (r < 0)
		log_input(LOG_ERR, r, in->config->name, "run failed: %m; restarting in %s", delay);
	else
		log_input(LOG_WARNING, 0, in->config->name,
			  "run returned without being asked to stop; restarting in %s", delay);
}

static void *supervise(void *arg)
{
	struct cg_instance *in = arg;
	const struct input_config *c = in->config;
	uint64_t backoff = c->restart_backoff_min_usec;

	while (!in->stop_requested) {
		uint64_t started = now_monotonic_usec();
		int r;

		in->phase = INPUT_RUNNING;
		r = in->plugin->run(in, in->state);
		if (in->stop_requested)
			break;
		/* A run that stayed up long enough was healthy: start the backoff over. */
		if (now_monotonic_usec() - started >= c->restart_backoff_reset_usec)
			backoff = c->restart_backoff_min_usec;
		in->phase = INPUT_BACKOFF;
		in->restarts++;
		log_restart(in, r, backoff);
		if (cg_sleep(in, backoff) < 0)
			break;
		backoff = MIN(backoff * 2, c->restart_backoff_max_usec);
	}
	in->phase = INPUT_STOPPED;
	return NULL;
}

int input_start(struct cg_instance *in)
{
	int r;

	/* Counted as running from here, so the first STATUS= line is already right. */
	in->phase = INPUT_RUNNING;
	r = pthread_create(&in->thread, NULL, supervise, in);
	if (r != 0)
		return log_input(LOG_ERR, r, in->config->name, "cannot start a thread: %m");
	in->thread_started = true;
	log_input(LOG_INFO, 0, in->config->name, "started (plugin \"%s\" %s, topic \"%s\")",
		  in->config->plugin_name, in->plugin->version ? in->plugin->version : "",
		  in->config->topic);
	return 0;
}

void input_request_stop(struct cg_instance *in)
{
	uint64_t one = 1;

	in->stop_requested = true;
	/* An eventfd counter cannot overflow from a handful of writes; ignore EAGAIN. */
	if (write(in->stop_fd, &one, sizeof(one)) < 0) {
	}
}

int input_join(struct cg_instance *in, uint64_t deadline_usec)
{
	struct timespec ts;
	uint64_t now = now_monotonic_usec(), left;
	int r;

	if (!in->thread_started || in->thread_joined)
		return 0;
	/* pthread_timedjoin_np() takes CLOCK_REALTIME: convert the remaining time. */
	left = deadline_usec > now ? deadline_usec - now : 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(left / USEC_PER_SEC);
	ts.tv_nsec += (long)(left % USEC_PER_SEC) * 1000;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	r = pthread_timedjoin_np(in->thread, NULL, &ts);
	if (r == ETIMEDOUT)
		return log_input(LOG_ERR, ETIMEDOUT, in->config->name,
				 "did not stop in time, its run() ignores the stop request");
	in->thread_joined = true;
	return 0;
}

void input_flush_log_limit(struct cg_instance *in, uint64_t now_usec)
{
	unsigned long n = ratelimit_flush(&in->log_limit, now_usec);

	if (n)
		log_input(LOG_WARNING, 0, in->config->name, "suppressed %lu messages", n);
}

void input_free(struct cg_instance *in)
{
	if (!in)
		return;
	if (in->thread_started && !in->thread_joined)
		return; /* still running: see input.h */
	if (in->initialized && in->plugin->destroy)
		in->plugin->destroy(in->state);
	input_flush_log_limit(in, UINT64_MAX);
	ratelimit_done(&in->log_limit);
	safe_close(in->stop_fd);
	free(in);
}

void input_get_stats(struct cg_instance *in, struct input_stats *ret)
{
	ret->phase = in->phase;
	ret->readings = in->readings;
	ret->rejected = in->rejected;
	ret->restarts = in->restarts;
}

/* ---- host API (exported to plugins through daemon/coapgated.dynlist) ---- */

static int log_limited(struct cg_instance *in, int priority, int error, const char *file, int line,
		       const char *func, const char *format, va_list ap)
    __attribute__((format(printf, 7, 0)));

static int log_limited(struct cg_instance *in, int priority, int error, const char *file, int line,
		       const char *func, const char *format, va_list ap)
{
	unsigned long suppressed;

	if (priority < LOG_EMERG)
		priority = LOG_EMERG;
	if (priority > LOG_DEBUG)
		priority = LOG_DEBUG;
	/* Messages that would not be shown must not use up the burst. */
	if (priority > log_get_max_level())
		return error ? -abs(error) : 0;
	if (!ratelimit_test(&in->log_limit, now_monotonic_usec(), &suppressed))
		return error ? -abs(error) : 0;
	if (suppressed)
		log_input(LOG_WARNING, 0, in->config->name, "suppressed %lu messages", suppressed);
	return log_internalv(priority, error, file, line, func, in->config->name, NULL, format, ap);
}

int cg_log_full(struct cg_instance *in, int priority, int error, const char *file, int line,
		const char *func, const char *format, ...)
{
	va_list ap;
	int r;

	va_start(ap, format);
	r = log_limited(in, priority, error, file, line, func, format, ap);
	va_end(ap);
	return r;
}

static void log_conf_error(const char *const *fields, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void log_conf_error(const char *const *fields, const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	log_internalv(LOG_ERR, 0, __FILE__, __LINE__, "cg_conf_error", NULL, fields, format, ap);
	va_end(ap);
}

int cg_conf_error(struct cg_instance *in, const void *where, const char *format, ...)
{
	const struct options_origin *o =
	    options_origins_find(&in->config->plugin_conf_origins, where);
	char *input_field = xasprintf("COAPGATE_INPUT=%s", in->config->name);
	const char *const fields[] = { input_field, NULL };
	char message[1024];
	va_list ap;

	va_start(ap, format);
	vsnprintf(message, sizeof(message), format, ap);
	va_end(ap);
	/* The shape of every other configuration error (options_error()), so that the
	 * user reads them all alike, and the instance's journal field all the same. */
	log_conf_error(fields, "%s:%u: input \"%s\": %s", o && o->file ? o->file : in->config->file,
		       o ? o->line : in->config->line, in->config->name, message);
	free(input_field);
	return -EINVAL;
}

static int log_rejected(struct cg_instance *in, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static int log_rejected(struct cg_instance *in, const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	log_limited(in, LOG_WARNING, 0, __FILE__, __LINE__, __func__, format, ap);
	va_end(ap);
	return -EINVAL;
}

int cg_emit(struct cg_instance *in, const struct cg_reading *reading)
{
	uint64_t token;

	return cg_emit_tracked(in, reading, &token);
}

int cg_emit_tracked(struct cg_instance *in, const struct cg_reading *reading, uint64_t *ret_token)
{
	struct cg_reading r;
	char why[256];
	int ret;

	if (!in)
		return -EINVAL;
	if (!reading) {
		in->rejected++;
		return log_rejected(in, "rejected a reading: NULL");
	}
	if (reading_validate(reading, why, sizeof(why)) < 0) {
		in->rejected++;
		return log_rejected(in, "rejected a reading: %s", why);
	}
	r = *reading;
	if (r.timestamp_ms == 0)
		r.timestamp_ms = now_realtime_ms();
	if (!r.topic)
		r.topic = in->config->topic;
	ret = in->sink->emit(in->sink->userdata, in->config->name, &r, ret_token);
	if (ret < 0) {
		in->rejected++;
		return ret;
	}
	in->readings++;
	return 0;
}

/* Remember that every token up to token is accounted for, durable or reported lost. */
static void vouch_through(struct cg_instance *in, uint64_t token)
{
	uint64_t seen = in->durable_through;

	while (seen < token && !atomic_compare_exchange_weak(&in->durable_through, &seen, token)) {
	}
}

int cg_wait_durable(struct cg_instance *in, uint64_t token, uint64_t timeout_usec)
{
	uint64_t now = now_monotonic_usec();
	uint64_t deadline = timeout_usec > UINT64_MAX - now ? UINT64_MAX : now + timeout_usec;
	/* The promise covers every reading before token too: ask the sink about all of
	 * them since the last answer, not only about token (a lost batch may lie between
	 * durable ones). */
	uint64_t after = MIN((uint64_t)in->durable_through, token - 1);

	/* In slices, so that a stop request is noticed within a tenth of a second. */
	for (;;) {
		uint64_t slice;
		int r;

		if (in->stop_requested)
			return -ECANCELED;
		now = now_monotonic_usec();
		slice = MIN(deadline > now ? deadline - now : 0, 100 * USEC_PER_MSEC);
		r = in->sink->wait_durable(in->sink->userdata, after, token, slice);
		if (r == 0 || r == -ENOSPC)
			vouch_through(in, token);
		if (r != -ETIMEDOUT || now_monotonic_usec() >= deadline)
			return r;
	}
}

int cg_stop_fd(struct cg_instance *in)
{
	return in->stop_fd;
}

bool cg_should_stop(struct cg_instance *in)
{
	return in->stop_requested;
}

int cg_sleep(struct cg_instance *in, uint64_t usec)
{
	uint64_t now = now_monotonic_usec();
	/* "Until stopped" is usec = UINT64_MAX: saturate rather than wrap. */
	uint64_t deadline = usec > UINT64_MAX - now ? UINT64_MAX : now + usec;

	for (;;) {
		struct pollfd pfd = { .fd = in->stop_fd, .events = POLLIN };
		struct timespec ts;

		now = now_monotonic_usec();
		if (in->stop_requested)
			return -ECANCELED;
		if (now >= deadline)
			return 0;
		ts = timespec_from_usec(deadline - now);
		if (ppoll(&pfd, 1, &ts, NULL) < 0 && errno != EINTR)
			return -errno;
	}
}

const char *cg_instance_name(struct cg_instance *in)
{
	return in->config->name;
}

const char *cg_instance_topic(struct cg_instance *in)
{
	return in->config->topic;
}

int64_t cg_time_ms(void)
{
	return now_realtime_ms();
}
