// SPDX-License-Identifier: MIT
/*
 * Stream mode: many clients, one message per line, answers written back.
 *
 * One thread, one epoll set, level-triggered. Each client that has data gets one read
 * of at most READ_CHUNK per turn, so a client that floods the socket gets no more
 * turns than a slow one. The unfinished line of a client is kept in its own buffer,
 * which is what bounds memory per client: max_message plus a chunk.
 *
 * Reading happens into one buffer shared by all clients, after the client's kept bytes
 * are copied to its front; parsing then works in place (see message.h).
 */
#include "unixsock.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "ack.h"
#include "listener.h"

#define READ_CHUNK	  (64 * 1024)
#define OUT_MAX		  4096 /* answers waiting for a client that does not read them */
#define ACK_POINTS	  64
#define MAX_EVENTS	  64
#define ACCEPT_BURST	  16
#define ACCEPT_PAUSE_USEC 1000000 /* after EMFILE and the like */

#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* The newest token of a run of a client's accepted readings, and how many they are. */
struct ack_point {
	uint64_t token;
	uint64_t count;
};

struct client {
	int fd;
	struct ucred peer;
	uint32_t events; /* what epoll watches now */

	char *kept; /* bytes read but not yet parsed: an unfinished line, or more */
	size_t kept_len;
	bool kept_has_lines; /* processing paused with whole lines left */
	bool discarding;     /* inside a line that is too long: drop up to its newline */
	bool read_closed;    /* the client shut down its side */
	bool closing;	     /* close once the answers are out */

	char *out;
	size_t out_len, out_size;
	uint64_t dropped_answers;

	/* Ack mode: runs of accepted readings not yet answered, oldest first. */
	struct ack_point points[ACK_POINTS];
	unsigned n_points;
	uint64_t first_unanswered; /* token of the oldest of them; 0: none */
	uint64_t run_token, run_count;

	struct client *next_dropped;
};

struct stream {
	struct unixsock *u;
	struct listener listener;
	int epoll_fd;
	struct client **clients;
	size_t n_clients;
	struct client *dropped; /* closed, freed after the current batch of events */
	char *buf;
	size_t buf_size;
	struct ack_tracker *acks;
	uint64_t accept_resume_usec; /* 0: accepting */
	bool stopped;
};

/* epoll_data.ptr of the descriptors that are not clients. */
static char stop_tag, listener_tag, acks_tag;

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static bool ack_mode(const struct stream *s)
{
	return s->u->conf->ack;
}

static int watch(struct stream *s, int fd, uint32_t events, void *tag)
{
	struct epoll_event ev = { .events = events, .data.ptr = tag };

	if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return cg_log_error_errno(s->u->inst, -errno, "cannot watch a descriptor: %m");
	return 0;
}

/* Watch for input unless the client is paused, and for output while answers wait. */
static void update_events(struct stream *s, struct client *c)
{
	bool paused = ack_mode(s) && c->out_len >= OUT_MAX;
	uint32_t want = 0;
	struct epoll_event ev;

	if (!c->read_closed && !c->closing && !paused && !c->kept_has_lines)
		want |= EPOLLIN;
	if (c->out_len)
		want |= EPOLLOUT;
	if (want == c->events)
		return;
	ev = (struct epoll_event){ .events = want, .data.ptr = c };
	if (epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = want;
}

/*
 * Close a client. Its memory lives until free_dropped(): an event for it may still
 * wait later in the batch epoll_wait() returned, and is skipped by its fd of -1.
 */
static void client_drop(struct stream *s, struct client *c)
{
	for (size_t i = 0; i < s->n_clients; i++) {
		if (s->clients[i] == c) {
			s->clients[i] = s->clients[--s->n_clients];
			break;
		}
	}
	if (c->dropped_answers)
		cg_log_info(s->u->inst,
			    "dropped %" PRIu64 " answers to pid %d: it did not read them",
			    c->dropped_answers, (int)c->peer.pid);
	close(c->fd);
	c->fd = -1;
	c->next_dropped = s->dropped;
	s->dropped = c;
}

static void free_dropped(struct stream *s)
{
	while (s->dropped) {
		struct client *c = s->dropped;

		s->dropped = c->next_dropped;
		free(c->kept);
		free(c->out);
		free(c);
	}
}

/* Queue an answer line. Without ack mode, answers that do not fit are dropped. */
static void answer(struct stream *s, struct client *c, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void answer(struct stream *s, struct client *c, const char *format, ...)
{
	char line[MESSAGE_WHY_MAX + 32];
	va_list ap;
	int n;

	va_start(ap, format);
	n = vsnprintf(line, sizeof(line) - 1, format, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (!ack_mode(s) && c->out_len + (size_t)n > OUT_MAX) {
		c->dropped_answers++;
		return;
	}
	/* In ack mode parsing pauses at OUT_MAX, so this passes it by a few lines. */
	if (c->out_len + (size_t)n > c->out_size) {
		size_t size = MAX(c->out_len + (size_t)n, OUT_MAX + sizeof(line));
		char *out = realloc(c->out, size);

		if (!out) {
			c->dropped_answers++;
			return;
		}
		c->out = out;
		c->out_size = size;
	}
	memcpy(c->out + c->out_len, line, (size_t)n);
	c->out_len += (size_t)n;
}

/* Write what answers wait; false when the client is gone. */
static bool flush_answers(struct client *c)
{
	while (c->out_len) {
		/* MSG_NOSIGNAL: a client that went away must not raise SIGPIPE. */
		ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN;
		}
		memmove(c->out, c->out + n, c->out_len - (size_t)n);
		c->out_len -= (size_t)n;
	}
	free(c->out);
	c->out = NULL;
	c->out_size = 0;
	return true;
}

/* Ack mode: remember the run of readings this turn accepted. */
static void close_run(struct stream *s, struct client *c)
{
	struct ack_point *last = c->n_points ? &c->points[c->n_points - 1] : NULL;

	if (!c->run_count)
		return;
	/* A full list merges into its newest point: answers come in coarser steps. */
	if (c->n_points == ACK_POINTS) {
		last->token = c->run_token;
		last->count += c->run_count;
	} else {
		c->points[c->n_points++] = (struct ack_point){ c->run_token, c->run_count };
	}
	ack_tracker_emitted(s->acks, c->run_token);
	c->run_count = 0;
}

static void handle_message(struct stream *s, struct client *c, char *msg, size_t len)
{
	char why[MESSAGE_WHY_MAX];
	uint64_t token = 0;

	switch (ingest(s->u, msg, len, &c->peer, &token, why, sizeof(why))) {
	case INGEST_ACCEPTED:
		if (ack_mode(s)) {
			if (!c->first_unanswered)
				c->first_unanswered = token;
			c->run_token = token;
			c->run_count++;
		}
		break;
	case INGEST_SKIPPED:
		break;
	case INGEST_REJECTED:
		answer(s, c, "error %s", why);
		break;
	case INGEST_STOPPED:
		s->stopped = true;
		break;
	}
}

static void reject_too_long(struct stream *s, struct client *c)
{
	char why[MESSAGE_WHY_MAX];

	ingest_reject_too_long(s->u, &c->peer, why, sizeof(why));
	answer(s, c, "error %s", why);
}

/* Keep len bytes at p for the client's next turn (p may point into s->buf). */
static bool keep(struct client *c, const char *p, size_t len)
{
	char *kept = NULL;

	if (len) {
		kept = malloc(len);
		if (!kept)
			return false;
		memcpy(kept, p, len);
	}
	free(c->kept);
	c->kept = kept;
	c->kept_len = len;
	return true;
}

/*
 * Parse the whole lines in data[0..len) (data[len] is writable), then keep what is
 * left: the unfinished line, or, when ack mode pauses for unread answers, everything
 * not yet parsed.
 */
static bool process(struct stream *s, struct client *c, char *data, size_t len)
{
	uint64_t max = s->u->conf->max_message;
	char *p = data, *end = data + len;
	bool paused = false;

	while (p < end && !s->stopped) {
		char *nl;
		size_t n;

		if (ack_mode(s) && c->out_len >= OUT_MAX) {
			paused = true;
			break;
		}
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break;
		n = (size_t)(nl - p);
		if (c->discarding) {
			c->discarding = false;
		} else {
			if (n && p[n - 1] == '\r')
				n--;
			if (n > max)
				reject_too_long(s, c);
			else
				handle_message(s, c, p, n);
		}
		p = nl + 1;
	}
	close_run(s, c);
	c->kept_has_lines = paused && memchr(p, '\n', (size_t)(end - p)) != NULL;
	if (!paused) {
		if (c->discarding) {
			p = end;
		} else if ((uint64_t)(end - p) > max &&
			   !((uint64_t)(end - p) == max + 1 && end[-1] == '\r')) {
			/* Too long for a message even before its newline (a CR may be
			 * the start of a CRLF after a message of exactly max bytes). */
			reject_too_long(s, c);
			c->discarding = true;
			p = end;
		}
	}
	return keep(c, p, (size_t)(end - p));
}

/* One turn: parse kept lines, or read one chunk after the kept bytes and parse. */
static bool client_turn(struct stream *s, struct client *c)
{
	size_t have = c->kept_len;
	ssize_t n = 0;

	if (have)
		memcpy(s->buf, c->kept, have);
	if (!c->kept_has_lines) {
		n = read(c->fd, s->buf + have, READ_CHUNK);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return true;
			return false;
		}
		if (n == 0) {
			c->read_closed = true;
			/* An unfinished line at the end may be a reading cut short. */
			if (have && !c->discarding)
				ingest_reject(s->u, &c->peer,
					      "incomplete message at the end of the connection");
			free(c->kept);
			c->kept = NULL;
			c->kept_len = 0;
			return true;
		}
	}
	return process(s, c, s->buf, have + (size_t)n);
}

/* Close a client that has nothing more to say or to hear. */
static bool client_done(const struct stream *s, const struct client *c)
{
	if (c->out_len)
		return false;
	if (c->closing)
		return true;
	return c->read_closed && (!ack_mode(s) || c->n_points == 0);
}

/*
 * Write what answers wait, and while that leaves room, parse the lines that an
 * earlier pause kept: epoll will not report them, they are already read. False when
 * the client is gone.
 */
static bool client_continue(struct stream *s, struct client *c)
{
	bool alive = true;

	if (c->out_len)
		alive = flush_answers(c);
	while (alive && c->kept_has_lines && c->out_len < OUT_MAX && !s->stopped) {
		alive = client_turn(s, c);
		if (alive && c->out_len)
			alive = flush_answers(c);
	}
	return alive;
}

static void client_event(struct stream *s, struct client *c, uint32_t events)
{
	bool alive = true;

	if (c->fd < 0)
		return;
	/* Gone both ways after its last byte was read: nobody is left to hear answers. */
	if ((events & (EPOLLHUP | EPOLLERR)) && c->read_closed) {
		client_drop(s, c);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		alive = client_turn(s, c);
	if (alive)
		alive = client_continue(s, c);
	if (!alive || client_done(s, c)) {
		client_drop(s, c);
		return;
	}
	update_events(s, c);
}

static void deliver_acks(struct stream *s)
{
	uint64_t durable, lost;

	ack_tracker_collect(s->acks, &durable, &lost);
	for (size_t i = 0; i < s->n_clients; i++) {
		struct client *c = s->clients[i];
		uint64_t count = 0;
		unsigned done = 0;

		if (!c->n_points || c->closing)
			continue;
		if (lost && c->first_unanswered && c->first_unanswered <= lost) {
			answer(s, c, "error readings not durable: the queue could not write them");
			c->n_points = 0;
			c->closing = true;
		} else {
			while (done < c->n_points && c->points[done].token <= durable)
				count += c->points[done++].count;
			if (!done)
				continue;
			answer(s, c, "ok %" PRIu64, count);
			/* The next reading's token is above the answered one. */
			c->first_unanswered =
			    done < c->n_points ? c->points[done - 1].token + 1 : 0;
			memmove(c->points, c->points + done,
				(c->n_points - done) * sizeof(c->points[0]));
			c->n_points -= done;
		}
		if (!client_continue(s, c) || client_done(s, c)) {
			client_drop(s, c);
			i--;
			continue;
		}
		update_events(s, c);
	}
}

static void accept_clients(struct stream *s)
{
	for (int i = 0; i < ACCEPT_BURST; i++) {
		socklen_t len = sizeof(struct ucred);
		struct client *c;
		int fd;

		fd = accept4(s->listener.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return;
			/* Out of descriptors or memory: stop accepting for a while rather than
			 * spin on a listener that stays readable. */
			cg_log_warning_errno(s->u->inst, -errno, "cannot accept a client: %m");
			s->accept_resume_usec = now_usec() + ACCEPT_PAUSE_USEC;
			epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, s->listener.fd, NULL);
			return;
		}
		if (s->n_clients >= (size_t)s->u->conf->max_clients) {
			static const char busy[] = "error too many clients\n";

			cg_log_warning(s->u->inst, "refused a client: %zu clients are connected",
				       s->n_clients);
			if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL) < 0) {
			}
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			return;
		}
		c->fd = fd;
		c->peer = (struct ucred){ .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->peer, &len) < 0)
			cg_log_debug(s->u->inst, "no peer credentials: %m");
		c->events = EPOLLIN;
		if (watch(s, fd, EPOLLIN, c) < 0) {
			close(fd);
			free(c);
			return;
		}
		s->clients[s->n_clients++] = c;
	}
}

static int stream_open(struct stream *s)
{
	const struct unixsock_conf *conf = s->u->conf;
	int r;

	s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epoll_fd < 0)
		return cg_log_error_errno(s->u->inst, -errno, "cannot create an epoll set: %m");
	s->buf_size = conf->max_message + READ_CHUNK + 1;
	s->buf = malloc(s->buf_size);
	s->clients = calloc((size_t)conf->max_clients, sizeof(*s->clients));
	if (!s->buf || !s->clients)
		return -ENOMEM;
	if (conf->ack) {
		r = ack_tracker_start(s->u->inst, &s->acks);
		if (r < 0)
			return r;
		r = watch(s, ack_tracker_fd(s->acks), EPOLLIN, &acks_tag);
		if (r < 0)
			return r;
	}
	r = listener_open(s->u->inst, conf->path, SOCK_STREAM, s->u->file_mode, s->u->gid,
			  &s->listener);
	if (r < 0)
		return r;
	r = watch(s, cg_stop_fd(s->u->inst), EPOLLIN, &stop_tag);
	if (r < 0)
		return r;
	return watch(s, s->listener.fd, EPOLLIN, &listener_tag);
}

static void stream_close(struct stream *s)
{
	while (s->n_clients)
		client_drop(s, s->clients[0]);
	free_dropped(s);
	/* Before the tracker: nobody is left to answer. */
	ack_tracker_free(s->acks);
	if (s->listener.fd >= 0)
		listener_close(&s->listener);
	if (s->epoll_fd >= 0)
		close(s->epoll_fd);
	free(s->clients);
	free(s->buf);
}

int stream_run(struct unixsock *u)
{
	struct stream s = { .u = u, .epoll_fd = -1, .listener.fd = -1 };
	struct epoll_event events[MAX_EVENTS];
	int r;

	r = stream_open(&s);
	if (r < 0)
		goto out;
	cg_log_info(u->inst, "listening on \"%s\" (stream, %s%s)", u->conf->path,
		    u->conf->format == FORMAT_JSON ? "JSON lines" : "line protocol",
		    u->conf->ack ? ", ack mode" : "");
	while (!s.stopped && !cg_should_stop(u->inst)) {
		int timeout = -1, n;

		if (s.accept_resume_usec) {
			uint64_t now = now_usec();

			if (now >= s.accept_resume_usec) {
				s.accept_resume_usec = 0;
				if (watch(&s, s.listener.fd, EPOLLIN, &listener_tag) < 0) {
					r = -EIO;
					break;
				}
			} else {
				timeout = (int)((s.accept_resume_usec - now) / 1000) + 1;
			}
		}
		n = epoll_wait(s.epoll_fd, events, MAX_EVENTS, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = cg_log_error_errno(u->inst, -errno, "epoll_wait failed: %m");
			break;
		}
		for (int i = 0; i < n && !s.stopped; i++) {
			void *tag = events[i].data.ptr;

			if (tag == &stop_tag)
				s.stopped = true;
			else if (tag == &listener_tag)
				accept_clients(&s);
			else if (tag == &acks_tag)
				deliver_acks(&s);
			else
				client_event(&s, tag, events[i].events);
		}
		free_dropped(&s);
	}
out:
	stream_close(&s);
	return r;
}
