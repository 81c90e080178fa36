// SPDX-License-Identifier: MIT
/*
 * The serial input's run(): open the device, read what arrives, cut it into frames,
 * parse and emit them, until the daemon asks to stop or the device goes away.
 *
 * A device that is absent, unplugged or failing ends the run with an error; the
 * daemon restarts it with its backoff (restart_backoff_*), which reopens the device
 * by its path, so an adapter that comes back under the same /dev/serial/by-id name
 * resumes on its own. There is no reconnect loop here on purpose.
 *
 * Each reading's timestamp is the time of the read() that delivered its frame's
 * first byte. Bad frames never stop the input: they are counted, the first is logged
 * with a hex preview, and a flood of them is summed up once per log_interval.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "serial.h"

/* One read() at most: the tty layer hands over at most about 4 KiB at a time. */
#define READ_CHUNK 4096

/* How long to pause between offers of a reading to a full queue that answers at once
 * (block_timeout = 0), so that waiting does not spin. */
#define FULL_RETRY_USEC 10000

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void format_interval(char *buf, size_t size, uint64_t usec)
{
	if (usec % 60000000 == 0)
		snprintf(buf, size, "%" PRIu64 " min", usec / 60000000);
	else
		snprintf(buf, size, "%" PRIu64 " s", usec / 1000000);
}

/* ---- bad frames ---- */

static void log_held_bad_frames(struct serial *s, uint64_t now)
{
	char interval[32];

	if (!s->bad_held)
		return;
	format_interval(interval, sizeof(interval), s->conf->log_interval_usec);
	cg_log_warning(s->inst,
		       "%" PRIu64 " more bad frames within %s (%" PRIu64
		       " bad so far); the latest: %s; %s: %s",
		       s->bad_held, interval, s->total.bad, s->bad_held_why, s->bad_held_size,
		       s->bad_held_preview);
	s->bad_held = 0;
	s->bad_quiet_until_usec = now + s->conf->log_interval_usec;
}

/*
 * Count a bad frame of len bytes (at least len, when longer) whose first bytes, up to
 * SERIAL_PREVIEW_MAX, are at head; log it now, or hold it for the next summary.
 */
static void bad_frame(struct serial *s, const char *why, const char *head, size_t len, bool longer)
{
	uint64_t now = now_usec();
	char preview[sizeof(s->bad_held_preview)], size[sizeof(s->bad_held_size)];

	s->run.bad++;
	s->total.bad++;
	hex_preview(head, longer ? SERIAL_PREVIEW_MAX + 1 : len, SERIAL_PREVIEW_MAX, preview,
		    sizeof(preview));
	snprintf(size, sizeof(size), "%s%zu bytes", longer ? "more than " : "", len);
	if (now >= s->bad_quiet_until_usec && !s->bad_held) {
		cg_log_warning(s->inst, "bad frame (%" PRIu64 " bad so far): %s; %s: %s",
			       s->total.bad, why, size, preview);
		s->bad_quiet_until_usec = now + s->conf->log_interval_usec;
		return;
	}
	s->bad_held++;
	snprintf(s->bad_held_why, sizeof(s->bad_held_why), "%s", why);
	memcpy(s->bad_held_preview, preview, sizeof(preview));
	memcpy(s->bad_held_size, size, sizeof(size));
}

/* ---- the framer's events ---- */

static void set_blocked(struct serial *s, bool blocked)
{
	if (s->blocked == blocked)
		return;
	s->blocked = blocked;
	if (blocked)
		cg_log_notice(s->inst, "the queue is full: not reading \"%s\" until it has room",
			      s->conf->device);
	else
		cg_log_notice(s->inst, "the queue has room again: reading \"%s\"", s->conf->device);
}

static void emit(struct serial *s, int64_t first_byte_ms)
{
	struct cg_reading *reading = &s->msg.reading;
	int r;

	/* A JSON frame may carry its own "ts". */
	if (reading->timestamp_ms == 0)
		reading->timestamp_ms = first_byte_ms;
	for (;;) {
		r = cg_emit(s->inst, reading);
		if (r != -EAGAIN)
			break;
		/* Full, and the policy is block: hold the reading and read nothing; with
		 * flow control the device is held back too. */
		set_blocked(s, true);
		if (cg_sleep(s->inst, FULL_RETRY_USEC) < 0) {
			s->stopping = true;
			return;
		}
	}
	set_blocked(s, false);
	/* The daemon counted and logged a reading it did not take. */
	if (r == 0) {
		s->run.readings++;
		s->total.readings++;
	} else {
		s->run.dropped++;
		s->total.dropped++;
	}
}

static void on_frame(void *userdata, char *data, size_t len, int64_t first_byte_ms)
{
	struct serial *s = userdata;
	char why[SERIAL_WHY_MAX], head[SERIAL_PREVIEW_MAX];
	int r;

	if (s->stopping)
		return;
	/* The parsers change the frame in place: keep its head for the log. */
	memcpy(head, data, len < sizeof(head) ? len : sizeof(head));
	r = frame_parse(&s->format, data, len, &s->msg, why, sizeof(why));
	if (r == FRAME_EMPTY)
		return;
	s->run.frames++;
	s->total.frames++;
	if (r < 0) {
		bad_frame(s, why, head, len, false);
	} else if (r == FRAME_IGNORED) {
		s->run.ignored++;
		s->total.ignored++;
	} else {
		emit(s, first_byte_ms);
	}
}

static void on_too_long(void *userdata, const char *head, size_t head_len, int64_t first_byte_ms)
{
	struct serial *s = userdata;
	char why[SERIAL_WHY_MAX];

	(void)first_byte_ms;
	s->run.frames++;
	s->total.frames++;
	snprintf(why, sizeof(why), "longer than max_frame, discarded up to %s",
		 s->conf->framing == FRAMER_IDLE ? "the next gap" : "the next terminator");
	bad_frame(s, why, head, head_len, true);
}

static void on_cut(void *userdata, size_t bytes)
{
	struct serial *s = userdata;

	s->run.cut++;
	s->total.cut++;
	cg_log_debug(s->inst,
		     "discarded %zu bytes of a frame cut short by opening or closing \"%s\"", bytes,
		     s->conf->device);
}

/* ---- the loop ---- */

/* Whether the device is gone: EOF, a hang-up, or an error like EIO of a USB adapter
 * that was pulled out. */
static int read_failed(struct serial *s, ssize_t n, int error)
{
	if (n == 0) {
		cg_log_warning(s->inst, "\"%s\" hung up (unplugged?)", s->conf->device);
		return -ENODEV;
	}
	return cg_log_warning_errno(s->inst, -error, "cannot read \"%s\" (unplugged?): %m",
				    s->conf->device);
}

static int read_loop(struct serial *s, int fd, const struct framer_sink *sink)
{
	struct pollfd pfd[2] = {
		{ .fd = fd, .events = POLLIN },
		{ .fd = cg_stop_fd(s->inst), .events = POLLIN },
	};
	uint64_t last_byte = now_usec();
	char settings[128], buf[READ_CHUNK];
	bool announced = false;

	port_describe(&s->port, settings, sizeof(settings));
	while (!cg_should_stop(s->inst) && !s->stopping) {
		uint64_t now = now_usec(), due = UINT64_MAX;
		struct timespec timeout, *timeout_p = NULL;
		ssize_t n;

		if (!announced && framer_in_step(s->framer)) {
			cg_log_info(s->inst, "reading \"%s\" (%s)", s->conf->device, settings);
			announced = true;
		}
		if (framer_awaits_gap(s->framer)) {
			due = last_byte + s->conf->idle_gap_usec;
			if (now >= due) {
				framer_gap(s->framer, sink);
				continue;
			}
		}
		if (s->bad_held) {
			if (now >= s->bad_quiet_until_usec) {
				log_held_bad_frames(s, now);
				continue;
			}
			if (s->bad_quiet_until_usec < due)
				due = s->bad_quiet_until_usec;
		}
		if (due != UINT64_MAX) {
			timeout.tv_sec = (time_t)((due - now) / 1000000);
			timeout.tv_nsec = (long)((due - now) % 1000000) * 1000;
			timeout_p = &timeout;
		}
		if (ppoll(pfd, 2, timeout_p, NULL) < 0) {
			if (errno == EINTR)
				continue;
			return cg_log_error_errno(s->inst, -errno, "cannot wait for \"%s\": %m",
						  s->conf->device);
		}
		if (pfd[1].revents)
			break;
		if (!pfd[0].revents)
			continue;
		if (pfd[0].revents & POLLNVAL)
			return cg_log_error_errno(s->inst, -EBADF, "\"%s\" was closed under us: %m",
						  s->conf->device);
		n = read(fd, buf, sizeof(buf));
		if (n > 0) {
			last_byte = now_usec();
			framer_feed(s->framer, buf, (size_t)n, cg_time_ms(), sink);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			/* Readable by poll() and still nothing: a hang-up without an error. */
			if (pfd[0].revents & (POLLHUP | POLLERR))
				return read_failed(s, 0, 0);
			continue;
		}
		return read_failed(s, n, errno);
	}
	return 0;
}

/* The device could not be opened: log it, once only while it stays absent. */
static int open_failed(struct serial *s, int r, const char *why)
{
	if (r != -ENOENT)
		return cg_log_error_errno(s->inst, r, "%s: %m", why);
	if (!s->absent)
		cg_log_warning(s->inst,
			       "%s; waiting for it (the daemon tries again with its restart "
			       "backoff)",
			       why);
	else
		cg_log_debug(s->inst, "%s, still", why);
	s->absent = true;
	return r;
}

int serial_run(struct cg_instance *inst, void *state)
{
	struct serial *s = state;
	struct framer_sink sink = {
		.frame = on_frame,
		.too_long = on_too_long,
		.cut = on_cut,
		.userdata = s,
	};
	char why[SERIAL_WHY_MAX], not_taken[128];
	int fd, r;

	fd = port_open(&s->port, not_taken, sizeof(not_taken), why, sizeof(why));
	if (fd < 0)
		return open_failed(s, fd, why);
	if (not_taken[0])
		cg_log_warning(inst,
			       "the driver of \"%s\" did not take %s (a pseudo-terminal takes "
			       "neither data bits nor parity); reading as it is",
			       s->conf->device, not_taken);
	if (s->absent)
		cg_log_notice(inst, "\"%s\" is back", s->conf->device);
	s->absent = false;
	s->stopping = false;
	s->run = (struct serial_counts){ 0 };
	framer_reset(s->framer);
	cg_log_debug(inst, "opened \"%s\"; waiting for the end of a frame or a quiet line",
		     s->conf->device);

	r = read_loop(s, fd, &sink);

	framer_discard(s->framer, &sink);
	port_close(fd, &s->port);
	log_held_bad_frames(s, now_usec());
	cg_log_info(inst,
		    "closed \"%s\" after %" PRIu64 " frames: %" PRIu64 " readings, %" PRIu64
		    " bad, %" PRIu64 " ignored, %" PRIu64 " not taken by the queue",
		    s->conf->device, s->run.frames, s->run.readings, s->run.bad, s->run.ignored,
		    s->run.dropped);
	return r;
}
