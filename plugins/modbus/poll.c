// SPDX-License-Identifier: MIT
/*
 * The poller; see poll.h for what it guarantees. Times are CLOCK_MONOTONIC
 * microseconds, except the wall-clock milliseconds of readings and of last_success_ms.
 */
#include "poll.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus.h"
#include "decode.h"
#include "fault.h"
#include "plan.h"
#include "points.h"

#define ERROR_TEXT_MAX 192
#define LABEL_MAX      (MODBUS_SLAVE_NAME_MAX + 40)

/* How long to pause between offers of a reading to a full queue. */
#define FULL_RETRY_USEC 10000

enum slave_state {
	SLAVE_PENDING,
	SLAVE_UP,
	SLAVE_DOWN,
};

static const char *const state_names[] = { "pending", "up", "down" };

/* What poller_format_status() shows; written by the poller's thread under the lock. */
struct slave_counters {
	enum slave_state state;
	uint64_t polls;
	uint64_t failures;
	uint64_t consecutive_failures;
	int64_t last_success_ms; /* wall clock; 0: never */
	char last_error[ERROR_TEXT_MAX];
};

struct slave {
	const struct modbus_slave_conf *conf;
	char name[MODBUS_SLAVE_NAME_MAX + 1];
	char label[LABEL_MAX]; /* slave "meter" (unit 1) */
	struct point *points;
	size_t n_points;
	struct plan plan;
	uint16_t *regs;		 /* plan.n_registers */
	uint8_t *bits;		 /* plan.n_bits */
	struct cg_field *fields; /* n_points */
	char *texts;		 /* DECODE_TEXT_MAX for each string point */
	uint64_t due_usec;
	uint64_t down_since_usec;
	uint64_t *anomalies; /* per point: strings not all UTF-8, uint64 values left out */
	uint64_t summary_polls, summary_failures; /* at the previous summary */
	struct slave_counters counters;
};

struct poller {
	struct cg_instance *inst;
	const struct modbus_conf *conf;
	struct slave *slaves;
	size_t n_slaves;
	struct bus *bus;
	bool started;		    /* schedules set, plans logged */
	bool resync;		    /* an answer may still be in flight: reconnect or flush first */
	uint64_t last_request_usec; /* end of the last request; 0: none yet */
	uint64_t next_summary_usec;
	pthread_mutex_t lock; /* slaves[].counters */
};

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static bool kind_is_bits(enum point_kind kind)
{
	return kind == KIND_COIL || kind == KIND_DISCRETE;
}

/* "250 ms", "1.5 s", "2 min", "1.5 h": for log lines. */
static const char *format_duration(uint64_t usec, char *buf, size_t size)
{
	static const struct {
		uint64_t usec;
		const char *unit;
	} units[] = { { 3600000000ULL, "h" }, { 60000000, "min" }, { 1000000, "s" } };
	int n;

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (usec < units[i].usec)
			continue;
		n = snprintf(buf, size, "%.1f", (double)usec / (double)units[i].usec);
		/* "2.0" reads better as "2". */
		if (n >= 2 && (size_t)n < size && strcmp(buf + n - 2, ".0") == 0)
			buf[n - 2] = '\0';
		snprintf(buf + strlen(buf), size - strlen(buf), " %s", units[i].unit);
		return buf;
	}
	snprintf(buf, size, "%llu ms", (unsigned long long)(usec / 1000));
	return buf;
}

static void describe_request(const struct plan_request *q, char *buf, size_t size)
{
	snprintf(buf, size, "%s %u-%u", point_kind_names[q->kind], q->address,
		 q->address + q->count - 1u);
}

/* ---------------------------------------------------------------------------------- */
/* Building and freeing                                                                 */
/* ---------------------------------------------------------------------------------- */

static int slave_init(const struct modbus_conf *conf, const struct modbus_slave_conf *sc,
		      struct slave *s)
{
	const struct plan_limits limits = {
		.max_registers = MODBUS_REQUEST_MAX_REGISTERS,
		.max_bits = MODBUS_REQUEST_MAX_BITS,
		.max_gap = (unsigned)sc->max_gap,
		.coalesce = conf->coalesce,
	};
	size_t n_strings = 0;
	int r;

	s->conf = sc;
	if (sc->name)
		snprintf(s->name, sizeof(s->name), "%s", sc->name);
	else
		snprintf(s->name, sizeof(s->name), "unit%lld", (long long)sc->unit);
	snprintf(s->label, sizeof(s->label), "slave \"%s\" (unit %lld)", s->name,
		 (long long)sc->unit);
	s->n_points = sc->points.count;
	r = points_build(sc, &s->points);
	if (r < 0)
		return r;
	r = plan_build(s->points, s->n_points, &limits, &s->plan);
	if (r < 0)
		return r;
	for (size_t i = 0; i < s->n_points; i++)
		n_strings += s->points[i].type == TYPE_STRING;
	s->regs = calloc(s->plan.n_registers + 1, sizeof(*s->regs));
	s->bits = calloc(s->plan.n_bits + 1, sizeof(*s->bits));
	s->fields = calloc(s->n_points, sizeof(*s->fields));
	s->texts = calloc(n_strings + 1, DECODE_TEXT_MAX);
	s->anomalies = calloc(s->n_points, sizeof(*s->anomalies));
	if (!s->regs || !s->bits || !s->fields || !s->texts || !s->anomalies)
		return -ENOMEM;
	return 0;
}

static void slave_free(struct slave *s)
{
	free(s->points);
	plan_free(&s->plan);
	free(s->regs);
	free(s->bits);
	free(s->fields);
	free(s->texts);
	free(s->anomalies);
}

int poller_new(struct cg_instance *inst, const struct modbus_conf *conf, struct poller **ret)
{
	const struct modbus_slave_conf *slaves = conf->slaves.items;
	struct poller *p;
	int r;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	*p = (struct poller){ .inst = inst, .conf = conf };
	pthread_mutex_init(&p->lock, NULL);
	p->slaves = calloc(conf->slaves.count, sizeof(*p->slaves));
	if (!p->slaves) {
		poller_free(p);
		return -ENOMEM;
	}
	p->n_slaves = conf->slaves.count;
	for (size_t i = 0; i < p->n_slaves; i++) {
		r = slave_init(conf, &slaves[i], &p->slaves[i]);
		if (r < 0) {
			poller_free(p);
			return r;
		}
	}
	*ret = p;
	return 0;
}

void poller_free(struct poller *p)
{
	if (!p)
		return;
	for (size_t i = 0; p->slaves && i < p->n_slaves; i++)
		slave_free(&p->slaves[i]);
	free(p->slaves);
	bus_free(p->bus);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* ---------------------------------------------------------------------------------- */
/* Counters                                                                             */
/* ---------------------------------------------------------------------------------- */

static size_t format_slave(const struct slave *s, const struct slave_counters *c, char *buf,
			   size_t size)
{
	int n = snprintf(buf, size,
			 "%s unit=%lld state=%s polls=%llu failures=%llu consecutive=%llu "
			 "last_success_ms=%lld last_error=\"%s\"",
			 s->name, (long long)s->conf->unit, state_names[c->state],
			 (unsigned long long)c->polls, (unsigned long long)c->failures,
			 (unsigned long long)c->consecutive_failures, (long long)c->last_success_ms,
			 c->last_error);

	return n < 0 ? 0 : (size_t)n;
}

size_t poller_format_status(struct poller *p, char *buf, size_t size)
{
	char line[LABEL_MAX + ERROR_TEXT_MAX + 160];
	size_t len = 0;

	if (size == 0)
		return 0;
	buf[0] = '\0';
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->n_slaves; i++) {
		size_t n = format_slave(&p->slaves[i], &p->slaves[i].counters, line, sizeof(line));

		if (n >= sizeof(line) || len + n + 2 > size)
			continue;
		memcpy(buf + len, line, n);
		len += n;
		buf[len++] = '\n';
		buf[len] = '\0';
	}
	pthread_mutex_unlock(&p->lock);
	return len;
}

/* A copy of a slave's counters, for logging outside the lock. */
static struct slave_counters counters_of(struct poller *p, const struct slave *s)
{
	struct slave_counters c;

	pthread_mutex_lock(&p->lock);
	c = s->counters;
	pthread_mutex_unlock(&p->lock);
	return c;
}

/*
 * Every summary_interval: one line for the bus, and the counters of each slave that
 * is down or failed since the previous summary. A healthy bus logs one line.
 */
static void log_summary(struct poller *p)
{
	size_t up = 0, down = 0;
	unsigned long long polls = 0, failures = 0;
	char interval[32], line[LABEL_MAX + ERROR_TEXT_MAX + 160];

	for (size_t i = 0; i < p->n_slaves; i++) {
		struct slave_counters c = counters_of(p, &p->slaves[i]);

		up += c.state == SLAVE_UP;
		down += c.state == SLAVE_DOWN;
		polls += c.polls - p->slaves[i].summary_polls;
		failures += c.failures - p->slaves[i].summary_failures;
	}
	cg_log_info(p->inst,
		    "summary of the last %s: %zu slaves, %zu up, %zu down; %llu polls, %llu "
		    "failed",
		    format_duration(p->conf->summary_interval_usec, interval, sizeof(interval)),
		    p->n_slaves, up, down, polls, failures);
	for (size_t i = 0; i < p->n_slaves; i++) {
		struct slave *s = &p->slaves[i];
		struct slave_counters c = counters_of(p, s);

		if (c.state == SLAVE_DOWN || c.failures != s->summary_failures) {
			format_slave(s, &c, line, sizeof(line));
			cg_log_info(p->inst, "summary: %s", line);
		}
		s->summary_polls = c.polls;
		s->summary_failures = c.failures;
	}
}

/* ---------------------------------------------------------------------------------- */
/* One poll                                                                             */
/* ---------------------------------------------------------------------------------- */

/* The delay after the n-th failed poll in a row: the interval, doubling from the
 * second failure on, up to backoff_max (but never less than the interval). */
static uint64_t retry_delay(const struct poller *p, const struct slave *s, uint64_t n)
{
	uint64_t interval = s->conf->interval_usec;
	uint64_t cap = p->conf->backoff_max_usec > interval ? p->conf->backoff_max_usec : interval;
	uint64_t delay = interval;

	for (uint64_t i = 1; i < n && delay < cap; i++)
		delay *= 2;
	return delay < cap ? delay : cap;
}

static void slave_failed(struct poller *p, struct slave *s, const struct plan_request *q, int error)
{
	char what[64], why[128], text[ERROR_TEXT_MAX], hint[160] = "", delay_text[32];
	enum slave_state was;
	uint64_t now = now_usec(), delay, n;
	bool changed;

	describe_request(q, what, sizeof(what));
	snprintf(text, sizeof(text), "%s (%s)", fault_describe(error, why, sizeof(why)), what);
	pthread_mutex_lock(&p->lock);
	s->counters.polls++;
	s->counters.failures++;
	n = ++s->counters.consecutive_failures;
	was = s->counters.state;
	s->counters.state = SLAVE_DOWN;
	changed = strcmp(s->counters.last_error, text) != 0;
	snprintf(s->counters.last_error, sizeof(s->counters.last_error), "%s", text);
	pthread_mutex_unlock(&p->lock);

	delay = retry_delay(p, s, n);
	s->due_usec = now + delay;
	format_duration(delay, delay_text, sizeof(delay_text));
	if (fault_classify(error) == FAULT_EXCEPTION && q->unused > 0)
		snprintf(hint, sizeof(hint),
			 "; the request also read %u %s that no point asks for, to save "
			 "requests: lower max_gap if the slave refuses them",
			 q->unused, kind_is_bits(q->kind) ? "bits" : "registers");
	if (was != SLAVE_DOWN) {
		s->down_since_usec = now;
		cg_log_warning(p->inst, "%s is down: %s%s; polling it again in %s", s->label, text,
			       hint, delay_text);
	} else if (changed) {
		cg_log_info(p->inst, "%s is still down: %s%s; polling it again in %s", s->label,
			    text, hint, delay_text);
	} else {
		cg_log_debug(p->inst, "%s is still down after %llu failed polls: %s", s->label,
			     (unsigned long long)n, text);
	}
}

static void slave_answered(struct poller *p, struct slave *s)
{
	uint64_t interval = s->conf->interval_usec, now = now_usec(), failed;
	enum slave_state was;
	char down_for[32];

	pthread_mutex_lock(&p->lock);
	s->counters.polls++;
	failed = s->counters.consecutive_failures;
	s->counters.consecutive_failures = 0;
	s->counters.last_success_ms = cg_time_ms();
	was = s->counters.state;
	s->counters.state = SLAVE_UP;
	pthread_mutex_unlock(&p->lock);

	if (was == SLAVE_DOWN)
		cg_log_notice(
		    p->inst, "%s is up again after %llu failed poll%s (down for %s)", s->label,
		    (unsigned long long)failed, failed == 1 ? "" : "s",
		    format_duration(now - s->down_since_usec, down_for, sizeof(down_for)));

	/* The next deadline is the previous one plus the interval, not now plus the
	 * interval, so that polls keep their rhythm; deadlines missed while the bus was
	 * busy are skipped, not made up in a burst. */
	s->due_usec += interval;
	if (s->due_usec <= now)
		s->due_usec += ((now - s->due_usec) / interval + 1) * interval;
}

/* Values that cannot be sent as they are, counted per point and logged the 1st, 2nd,
 * 4th, 8th, ... time: a device that always sends one is noticed without a line per
 * poll. */
static bool is_power_of_two(uint64_t n)
{
	return n && !(n & (n - 1));
}

static void emit_reading(struct poller *p, struct slave *s)
{
	struct cg_reading reading = { .topic = s->conf->topic, .fields = s->fields };
	size_t n = 0, k = 0;
	int r;

	for (size_t i = 0; i < s->n_points; i++) {
		const struct point *pt = &s->points[i];
		size_t off = plan_point_offset(&s->plan, s->points, i);
		bool bits = kind_is_bits(pt->kind);
		char *text = NULL;
		enum decode_status st;

		if (pt->type == TYPE_STRING)
			text = s->texts + (k++) * DECODE_TEXT_MAX;
		st = decode_point(pt, bits ? NULL : s->regs + off, bits ? s->bits + off : NULL,
				  &s->fields[n], text);
		if (st == DECODE_OUT_OF_RANGE) {
			if (is_power_of_two(++s->anomalies[i]))
				cg_log_warning(
				    p->inst,
				    "%s: point \"%s\": a uint64 above 2^63-1 does not fit "
				    "an integer field and is left out (%llu so far); a "
				    "scale or an offset makes it a float",
				    s->label, pt->name, (unsigned long long)s->anomalies[i]);
			continue;
		}
		if (st == DECODE_REPLACED && is_power_of_two(++s->anomalies[i]))
			cg_log_warning(p->inst,
				       "%s: point \"%s\": the string has bytes that are not UTF-8; "
				       "they are sent as '?' (%llu so far)",
				       s->label, pt->name, (unsigned long long)s->anomalies[i]);
		n++;
	}
	if (n == 0)
		return;
	reading.n_fields = n;
	reading.timestamp_ms = cg_time_ms();
	/* A full queue with when_full = "block": hold the bus rather than drop. cg_emit()
	 * has waited block_timeout, which may be 0: pause between offers, never spin. */
	while ((r = cg_emit(p->inst, &reading)) == -EAGAIN)
		if (cg_sleep(p->inst, FULL_RETRY_USEC) < 0)
			break;
}

static int log_connect_failure(struct poller *p, int r, const char *step)
{
	if (r == -ENOTTY && p->conf->rs485)
		return cg_log_error_errno(
		    p->inst, r,
		    "%s: cannot %s: %m: the driver of this port has no RS-485 mode; use an "
		    "adapter that switches direction by itself (rs485 = false), or rts",
		    bus_name(p->bus), step);
	return cg_log_error_errno(p->inst, r, "%s: cannot %s: %m", bus_name(p->bus), step);
}

/* Before each request: the pause after the previous one, and a clean line. */
static int before_request(struct poller *p)
{
	const char *step = NULL;
	int r;

	if (p->conf->pause_usec > 0 && p->last_request_usec > 0) {
		uint64_t until = p->last_request_usec + p->conf->pause_usec, now = now_usec();

		if (until > now && cg_sleep(p->inst, until - now) < 0)
			return -ECANCELED;
	}
	if (!p->resync)
		return 0;
	p->resync = false;
	/* A TCP answer that comes after the timeout would be read as the answer to the
	 * next request (libmodbus would refuse it for its transaction id, and the next
	 * request would fail instead): a new connection leaves it behind. */
	if (p->conf->transport == TRANSPORT_RTU) {
		bus_flush(p->bus);
		return 0;
	}
	r = bus_connect(p->bus, &step);
	return r < 0 ? log_connect_failure(p, r, step) : 0;
}

/* Returns 0 when the slave answered or failed on its own, a negative errno when the
 * bus failed (logged as the slave's failure, or as a failed reconnection),
 * -ECANCELED when the instance is stopping. */
static int poll_slave(struct poller *p, struct slave *s)
{
	for (size_t i = 0; i < s->plan.n_requests; i++) {
		const struct plan_request *q = &s->plan.requests[i];
		bool bits = kind_is_bits(q->kind);
		int r;

		r = before_request(p);
		if (r < 0)
			return r;
		r = bus_read(p->bus, (int)s->conf->unit, q->kind, q->address, q->count,
			     bits ? NULL : s->regs + q->offset, bits ? s->bits + q->offset : NULL);
		p->last_request_usec = now_usec();
		if (r == 0)
			continue;
		/* The poll failed whatever the cause, and it counts as the slave's:
		 * otherwise a slave whose requests make a gateway drop the connection
		 * would be first again after every reconnection, and the others would
		 * never be polled. A broken link also ends the run: the daemon logs that
		 * and starts it again, which connects anew. */
		slave_failed(p, s, q, r);
		if (fault_classify(r) == FAULT_LINK)
			return r;
		if (fault_classify(r) != FAULT_EXCEPTION)
			p->resync = true;
		return 0;
	}
	emit_reading(p, s);
	slave_answered(p, s);
	return 0;
}

/* ---------------------------------------------------------------------------------- */
/* The loop                                                                             */
/* ---------------------------------------------------------------------------------- */

/* More slaves than this log their plans at debug, and the bus one line at info: the
 * daemon's rate limit (20 lines in 30 s by default) must leave room for the lines
 * that follow the start, such as a slave that is down. */
#define PLANS_LOGGED_MAX 8

static void log_plan(struct poller *p, const struct slave *s, int priority)
{
	char text[512], what[64];
	size_t len;
	int n;

	n = snprintf(text, sizeof(text), "%s: %zu point%s in %zu request%s:", s->label, s->n_points,
		     s->n_points == 1 ? "" : "s", s->plan.n_requests,
		     s->plan.n_requests == 1 ? "" : "s");
	len = n > 0 ? (size_t)n : 0;
	for (size_t i = 0; i < s->plan.n_requests && len < sizeof(text); i++) {
		const struct plan_request *q = &s->plan.requests[i];

		describe_request(q, what, sizeof(what));
		if (q->unused > 0)
			n = snprintf(text + len, sizeof(text) - len, "%s %s (%u unused)",
				     i ? "," : "", what, q->unused);
		else
			n = snprintf(text + len, sizeof(text) - len, "%s %s", i ? "," : "", what);
		len += n > 0 ? (size_t)n : 0;
	}
	if (len >= sizeof(text))
		memcpy(text + sizeof(text) - 4, "...", 4);
	cg_log(p->inst, priority, "%s", text);
}

static struct slave *next_due(struct poller *p)
{
	struct slave *next = &p->slaves[0];

	for (size_t i = 1; i < p->n_slaves; i++)
		if (p->slaves[i].due_usec < next->due_usec)
			next = &p->slaves[i];
	return next;
}

static void start(struct poller *p)
{
	bool few = p->n_slaves <= PLANS_LOGGED_MAX;
	size_t points = 0, requests = 0;
	uint64_t now = now_usec();

	for (size_t i = 0; i < p->n_slaves; i++) {
		p->slaves[i].due_usec = now;
		points += p->slaves[i].n_points;
		requests += p->slaves[i].plan.n_requests;
		log_plan(p, &p->slaves[i], few ? CG_LOG_INFO : CG_LOG_DEBUG);
	}
	if (!few)
		cg_log_info(p->inst,
			    "%zu slaves, %zu points in %zu requests when each is polled once; "
			    "each slave's requests are logged at debug",
			    p->n_slaves, points, requests);
	p->next_summary_usec =
	    p->conf->summary_interval_usec ? now + p->conf->summary_interval_usec : UINT64_MAX;
	p->started = true;
}

int poller_run(struct poller *p)
{
	const char *step = NULL;
	int r;

	if (!p->bus) {
		r = bus_new(p->conf, &p->bus);
		if (r < 0)
			return cg_log_error_errno(p->inst, r, "cannot set up libmodbus: %m");
	}
	/* The plans first: they say what the input will do even when the device is
	 * not there yet. */
	if (!p->started)
		start(p);
	r = bus_connect(p->bus, &step);
	if (r < 0)
		return log_connect_failure(p, r, step);
	cg_log_info(p->inst, "%s: %s", bus_name(p->bus),
		    p->conf->transport == TRANSPORT_TCP ? "connected" : "opened");
	p->resync = false;

	while (!cg_should_stop(p->inst)) {
		struct slave *s = next_due(p);
		uint64_t now = now_usec();
		uint64_t wake =
		    s->due_usec < p->next_summary_usec ? s->due_usec : p->next_summary_usec;

		if (now >= p->next_summary_usec) {
			log_summary(p);
			p->next_summary_usec += p->conf->summary_interval_usec;
			if (p->next_summary_usec <= now)
				p->next_summary_usec = now + p->conf->summary_interval_usec;
			continue;
		}
		if (wake > now) {
			if (cg_sleep(p->inst, wake - now) < 0)
				break;
			continue;
		}
		r = poll_slave(p, s);
		if (r == -ECANCELED)
			break;
		if (r < 0) {
			bus_close(p->bus);
			return r;
		}
	}
	bus_close(p->bus);
	return 0;
}
