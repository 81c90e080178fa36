// SPDX-License-Identifier: MIT
/*
 * The main loop; see service.h. Everything periodic runs as an sd-event timer on the
 * main thread: the watchdog ping, the STATUS= line and the flush of rate-limited log
 * counts. Input threads never touch the loop.
 */
#include "service.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "input.h"
#include "queue.h"
#include "log.h"
#include "testprint.h"
#include "uplink.h"
#include "util.h"

/* sd-event coalesces timers within 250 ms by default: too coarse for a watchdog at
 * half its period or a --duration a test measures. */
#define TIMER_ACCURACY_USEC (1 * USEC_PER_MSEC)

struct service {
	const struct config *config;
	const struct service_options *options;
	sd_event *event;
	struct cg_instance **inputs;
	size_t n_inputs;
	struct sink sink;
	struct test_printer *printer;
	struct queue *queue;
	struct uplink *uplink;
	uint64_t watchdog_usec;
	char last_status[512];
};

static int queue_emit(void *userdata, const char *input, const struct cg_reading *r,
		      uint64_t *ret_token)
{
	(void)input;
	return queue_append(userdata, r, ret_token);
}

static int queue_wait(void *userdata, uint64_t after, uint64_t token, uint64_t timeout_usec)
{
	return queue_wait_durable_since(userdata, after, token, timeout_usec);
}

static void update_status(struct service *s, const char *state)
{
	unsigned running = 0, backoff = 0;
	uint64_t readings = 0, restarts = 0;
	char status[512], uplink[200] = "";

	for (size_t i = 0; i < s->n_inputs; i++) {
		struct input_stats st;

		input_get_stats(s->inputs[i], &st);
		running += st.phase == INPUT_RUNNING;
		backoff += st.phase == INPUT_BACKOFF;
		readings += st.readings;
		restarts += st.restarts;
	}
	if (s->queue) {
		struct queue_stats q;

		queue_get_stats(s->queue, &q);
		if (s->uplink) {
			uplink[0] = ';';
			uplink[1] = ' ';
			uplink_status(s->uplink, uplink + 2, sizeof(uplink) - 2);
		}
		snprintf(status, sizeof(status),
			 "%s; inputs: %u running, %u restarting; readings: %llu; queued: %llu "
			 "(%llu MiB)%s; restarts: %llu%s",
			 state, running, backoff, (unsigned long long)readings,
			 (unsigned long long)q.readings, (unsigned long long)(q.used_bytes >> 20),
			 q.full ? ", full" : "", (unsigned long long)restarts, uplink);
	} else {
		snprintf(status, sizeof(status),
			 "%s; inputs: %u running, %u restarting; readings: %llu; restarts: %llu",
			 state, running, backoff, (unsigned long long)readings,
			 (unsigned long long)restarts);
	}
	/* Every STATUS= is a message to PID 1: send only changes. */
	if (strcmp(status, s->last_status) == 0)
		return;
	snprintf(s->last_status, sizeof(s->last_status), "%s", status);
	sd_notifyf(false, "STATUS=%s", status);
}

static int on_signal(sd_event_source *source, const struct signalfd_siginfo *si, void *userdata)
{
	(void)userdata;
	log_info("received %s, stopping", strsignal((int)si->ssi_signo));
	return sd_event_exit(sd_event_source_get_event(source), EXIT_SUCCESS);
}

static int on_sighup(sd_event_source *source, const struct signalfd_siginfo *si, void *userdata)
{
	(void)source;
	(void)si;
	(void)userdata;
	log_notice("SIGHUP: reloading is not supported, restart the service to apply changes");
	return 0;
}

/* Re-arm a periodic timer source relative to now. */
static int rearm(sd_event_source *source, uint64_t period_usec)
{
	uint64_t now;
	int r;

	r = sd_event_now(sd_event_source_get_event(source), CLOCK_MONOTONIC, &now);
	if (r < 0)
		return r;
	r = sd_event_source_set_time(source, now + period_usec);
	if (r < 0)
		return r;
	return sd_event_source_set_enabled(source, SD_EVENT_ON);
}

static int on_watchdog(sd_event_source *source, uint64_t usec, void *userdata)
{
	struct service *s = userdata;

	(void)usec;
	/* Pinged from the loop itself, and only while the committer lives: a wedged loop
	 * or a committer stuck in the disk stops the pings and systemd acts. */
	if (!s->queue || queue_is_alive(s->queue))
		sd_notify(false, "WATCHDOG=1");
	return rearm(source, s->watchdog_usec / 2);
}

static int on_status(sd_event_source *source, uint64_t usec, void *userdata)
{
	struct service *s = userdata;
	uint64_t now = now_monotonic_usec();

	(void)usec;
	update_status(s, "running");
	for (size_t i = 0; i < s->n_inputs; i++)
		input_flush_log_limit(s->inputs[i], now);
	return rearm(source, s->config->settings.daemon.status_interval_usec);
}

static int on_test_done(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	(void)fd;
	(void)revents;
	(void)userdata;
	return sd_event_exit(sd_event_source_get_event(source), EXIT_SUCCESS);
}

static int on_test_timeout(sd_event_source *source, uint64_t usec, void *userdata)
{
	(void)usec;
	(void)userdata;
	return sd_event_exit(sd_event_source_get_event(source), EXIT_SUCCESS);
}

static int open_queue(struct service *s)
{
	const struct config_settings *c = &s->config->settings;
	char *dir = xasprintf("%s/queue", c->daemon.state_dir);
	const struct queue_options o = {
		.dir = dir,
		.segment_size = c->queue.segment_size,
		.max_size = c->queue.max_size,
		.min_free = c->queue.min_free,
		.commit_interval_usec = c->queue.commit_interval_usec,
		.commit_bytes = c->queue.commit_bytes,
		.checkpoint_interval_usec = c->queue.checkpoint_interval_usec,
		.block_timeout_usec = c->queue.block_timeout_usec,
		.when_full = (enum queue_when_full)c->queue.when_full,
	};
	int r = queue_open(&o, &s->queue);

	free(dir);
	return r;
}

static bool is_selected(const struct service_options *o, const char *name)
{
	if (!o->only_inputs)
		return true;
	for (size_t i = 0; o->only_inputs[i]; i++)
		if (strcmp(o->only_inputs[i], name) == 0)
			return true;
	return false;
}

static int create_inputs(struct service *s)
{
	const struct daemon_settings *d = &s->config->settings.daemon;
	const struct input_log_limit limit = {
		.interval_usec = d->log_rate_limit_interval_usec,
		.burst = (unsigned)d->log_rate_limit_burst,
	};
	int refused = 0;

	s->inputs = xcalloc(s->config->n_inputs, sizeof(*s->inputs));
	/* Every instance's init() runs even after one refused its configuration, so that
	 * one `coapgated -t` reports every mistake, as it does for the option tables. */
	for (size_t i = 0; i < s->config->n_inputs; i++) {
		const struct input_config *c = &s->config->inputs[i];
		int r;

		if (!is_selected(s->options, c->name))
			continue;
		if (!c->enabled && !s->options->check_only) {
			log_input(LOG_INFO, 0, c->name,
				  "disabled in the configuration, not started");
			continue;
		}
		r = input_new(c, &s->sink, &limit, &s->inputs[s->n_inputs]);
		if (r < 0) {
			if (refused == 0)
				refused = r;
			continue;
		}
		s->n_inputs++;
	}
	if (refused < 0)
		return refused;
	if (s->options->only_inputs)
		for (size_t i = 0; s->options->only_inputs[i]; i++) {
			bool found = false;

			for (size_t j = 0; j < s->config->n_inputs; j++)
				found |= strcmp(s->config->inputs[j].name,
						s->options->only_inputs[i]) == 0;
			if (!found) {
				log_error("no input named \"%s\" in the configuration",
					  s->options->only_inputs[i]);
				return -ENOENT;
			}
		}
	return 0;
}

static int add_event_sources(struct service *s)
{
	const struct daemon_settings *d = &s->config->settings.daemon;
	uint64_t now = now_monotonic_usec();
	int r;

	r = sd_event_add_signal(s->event, NULL, SIGTERM, on_signal, s);
	if (r >= 0)
		r = sd_event_add_signal(s->event, NULL, SIGINT, on_signal, s);
	if (r >= 0)
		r = sd_event_add_signal(s->event, NULL, SIGHUP, on_sighup, s);
	if (r >= 0)
		r = sd_event_add_time(s->event, NULL, CLOCK_MONOTONIC,
				      now + d->status_interval_usec, TIMER_ACCURACY_USEC, on_status,
				      s);
	if (r >= 0 && sd_watchdog_enabled(false, &s->watchdog_usec) > 0) {
		log_debug("systemd watchdog enabled, pinging every %llu ms",
			  (unsigned long long)(s->watchdog_usec / 2 / USEC_PER_MSEC));
		r = sd_event_add_time(s->event, NULL, CLOCK_MONOTONIC, now + s->watchdog_usec / 2,
				      TIMER_ACCURACY_USEC, on_watchdog, s);
	}
	if (r >= 0 && s->printer && s->options->test_count)
		r = sd_event_add_io(s->event, NULL, test_printer_done_fd(s->printer), EPOLLIN,
				    on_test_done, s);
	if (r >= 0 && s->options->test_duration_usec)
		r = sd_event_add_time(s->event, NULL, CLOCK_MONOTONIC,
				      now + s->options->test_duration_usec, TIMER_ACCURACY_USEC,
				      on_test_timeout, s);
	if (r < 0)
		return log_error_errno(r, "cannot set up the event loop: %m");
	return 0;
}

/* Returns -ETIMEDOUT when an input's thread is still running after stop_timeout. */
static int stop_inputs(struct service *s)
{
	uint64_t deadline = now_monotonic_usec() + s->config->settings.daemon.stop_timeout_usec;
	int r = 0;

	for (size_t i = 0; i < s->n_inputs; i++)
		input_request_stop(s->inputs[i]);
	for (size_t i = 0; i < s->n_inputs; i++)
		if (input_join(s->inputs[i], deadline) < 0)
			r = -ETIMEDOUT;
	return r;
}

int service_run(const struct config *config, const struct service_options *options)
{
	struct service s = { .config = config, .options = options };
	int exit_code = EXIT_FAILURE;
	sigset_t mask;
	int r;

	/* Signals go to the loop's signalfd. Blocked before any thread exists (the queue's
	 * committer, the inputs), since threads inherit the mask and a SIGTERM delivered
	 * to one that does not block it would kill the process on the spot. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	/* A peer that closes its socket (a Unix socket client, in any plugin) must cost an
	 * EPIPE, not the daemon. --test keeps the default so that `--test | head` ends. */
	if (!options->test_mode)
		signal(SIGPIPE, SIG_IGN);

	if (options->test_mode) {
		s.printer = test_printer_new(stdout, options->test_count);
		s.sink = test_printer_sink(s.printer);
	} else {
		s.sink = (struct sink){ .emit = queue_emit, .wait_durable = queue_wait };
	}

	r = create_inputs(&s);
	if (r < 0) {
		exit_code = r == -ENOENT ? EX_USAGE : EX_CONFIG;
		goto out;
	}
	if (options->check_only) {
		exit_code = EXIT_SUCCESS;
		goto out;
	}
	/* The queue is recovered before READY=1 and before any input runs. */
	if (!options->test_mode) {
		r = open_queue(&s);
		if (r < 0)
			goto out;
		s.sink.userdata = s.queue;
	}

	r = sd_event_new(&s.event);
	if (r < 0) {
		log_error_errno(r, "cannot create the event loop: %m");
		goto out;
	}
	if (add_event_sources(&s) < 0)
		goto out;
	if (s.queue && s.config->settings.uplink.enabled &&
	    uplink_new(s.event, &s.config->settings.uplink, s.config->settings.daemon.state_dir,
		       s.queue, &s.uplink) < 0)
		goto out;

	for (size_t i = 0; i < s.n_inputs; i++)
		if (input_start(s.inputs[i]) < 0)
			goto out_stop;

	update_status(&s, "running");
	sd_notify(false, "READY=1");
	log_info("coapgated started with %zu input%s", s.n_inputs, s.n_inputs == 1 ? "" : "s");

	r = sd_event_loop(s.event);
	exit_code = r < 0 ? EXIT_FAILURE : r;
	if (r < 0)
		log_error_errno(r, "event loop failed: %m");

out_stop:
	sd_notify(false, "STOPPING=1\nSTATUS=stopping");
	if (stop_inputs(&s) < 0) {
		/* A stuck thread still uses the config and the sink: nothing may be freed,
		 * but what is queued is committed first. */
		log_error("exiting with inputs still running");
		fflush(stdout);
		_exit(EXIT_FAILURE);
	}
out:
	uplink_free(s.uplink);
	/* Inputs are stopped: commit what they emitted, then write the checkpoint. */
	queue_close(s.queue);
	for (size_t i = 0; i < s.n_inputs; i++)
		input_free(s.inputs[i]);
	free(s.inputs);
	sd_event_unref(s.event);
	if (s.printer)
		log_info("printed %llu readings",
			 (unsigned long long)test_printer_count(s.printer));
	test_printer_free(s.printer);
	return exit_code;
}
