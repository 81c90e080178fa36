// SPDX-License-Identifier: MIT
/*
 * `coapgatectl send`: hand readings to a running coapgated through the socket of a
 * `unixsock` input (plugins/unixsock/README.md), for shell scripts. It sends one
 * reading built from KEY=VALUE arguments, or JSON lines from stdin (--json), and waits
 * for the input's acknowledgements (`ack = true`): it exits 0 only when every reading
 * is durable in the daemon's queue.
 *
 * Everything is checked here with the daemon's own code before it is sent: arguments
 * with reading_field_name_is_valid() and topic_is_valid(), --json lines with the
 * input's parser (plugins/unixsock/parse_json.c). That is what gives a bad line its
 * line number: the protocol cannot, since an "error" answer is written at once while
 * the "ok" of earlier lines comes later, so the client cannot tell which line it was.
 * Bad lines are reported and not sent. It is not a general socket client.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"
#include "message.h"
#include "parse.h"
#include "reading.h"
#include "topic.h"
#include "util.h"

#define SEND_SOCKET_DEFAULT "/run/coapgate/ingest.sock"
#define SEND_SOCKET_ENV	    "COAPGATE_SOCKET"
#define SEND_TIMEOUT_USEC   (10 * USEC_PER_SEC)

/* The largest max_message a unixsock input accepts: a longer line cannot succeed. */
#define SEND_LINE_MAX (16u << 20)
/* Bytes for the daemon that may wait here before stdin is read again. */
#define SEND_OUT_HIGH  (256u << 10)
#define SEND_READ_SIZE (64u << 10)
/* An answer is "ok <n>" or "error <reason>", the reason at most a few hundred bytes. */
#define SEND_ANSWER_MAX 4096

#define STR_(x)	    #x
#define STR(x)	    STR_(x)
#define NOT_DURABLE "readings not durable"

struct send {
	const char *path;
	uint64_t timeout_usec; /* 0: wait for answers as long as it takes */
	int fd;

	/* Bytes for the daemon: out[out_done..out_len). */
	char *out;
	size_t out_len, out_done, out_size;
	bool shut;	/* shutdown(SHUT_WR) done */
	bool peer_gone; /* a write failed: the daemon no longer reads */

	/* --json: stdin, cut into lines. */
	bool json;
	bool in_eof;
	char *line;
	size_t line_len, line_size;
	bool line_too_long;
	uint64_t lineno;
	struct message msg;

	char answer[SEND_ANSWER_MAX];
	size_t answer_len;
	uint64_t sent;	   /* messages queued for the daemon */
	uint64_t acked;	   /* the sum of its "ok <n>" */
	uint64_t refused;  /* its "error" answers to messages */
	uint64_t rejected; /* lines refused here, never sent */
	uint64_t deadline_usec;
	int status; /* why the exchange ended early; 0 while it has not */
	/* An error about the connection, not a message; the daemon closes after it. */
	char closing[SEND_ANSWER_MAX];
};

static const char usage_text[] =
    "Usage: coapgatectl send [OPTIONS] [-s KEY=VALUE]... KEY=VALUE...\n"
    "       coapgatectl send --json [--socket PATH] [--timeout DURATION] < LINES\n"
    "\n"
    "Send one reading, or JSON lines from stdin, to the socket of a coapgated\n"
    "\"unixsock\" input with format = \"json\" and ack = true, and wait until the\n"
    "daemon has made every reading durable.\n"
    "\n"
    "  --socket PATH           the input's socket (default: $" SEND_SOCKET_ENV ", else\n"
    "                          " SEND_SOCKET_DEFAULT ")\n"
    "  --topic TOPIC           the reading's topic (default: the input's topic)\n"
    "  --ts MS                 the reading's time in ms since the epoch (default: now)\n"
    "  -s, --string KEY=VALUE  a string field, whatever VALUE looks like\n"
    "  --timeout DURATION      give up when no answer comes for this long (default\n"
    "                          \"10s\"; \"0\": wait as long as it takes)\n"
    "  --json                  send stdin's lines, each one JSON object\n"
    "\n"
    "KEY=VALUE is typed by its look: a JSON integer (12, -3) is an integer, another\n"
    "JSON number (21.5, 1e3, 2.0) a float, true and false are booleans, anything\n"
    "else is a string. KEY is 1 to 64 of A-Z a-z 0-9 _ . -, not \"topic\" or \"ts\".\n"
    "\n"
    "Exit status: 0 every reading is durable; 64 bad arguments, nothing sent;\n"
    "65 a reading was rejected (the reasons are on stderr), the others are durable;\n"
    "69 nothing listens at PATH, or the connection ended before every answer;\n"
    "74 the daemon could not make readings durable, or stdin could not be read;\n"
    "75 no answer within the timeout; 76 an answer outside the protocol;\n"
    "77 permission denied on PATH.\n";

static int usage(FILE *f, int status)
{
	fputs(usage_text, f);
	return status;
}

/* --- KEY=VALUE ------------------------------------------------------------------ */

static size_t skip_digits(const char **p)
{
	const char *s = *p;

	while (**p >= '0' && **p <= '9')
		(*p)++;
	return (size_t)(*p - s);
}

/*
 * Whether s is a JSON number, -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?, and
 * whether it is an integer (no fraction, no exponent): the unixsock input's i64 / f64
 * distinction.
 */
static bool is_json_number(const char *s, bool *ret_integer)
{
	const char *p = s;
	bool integer = true;

	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (!skip_digits(&p))
		return false;
	if (*p == '.') {
		p++;
		if (!skip_digits(&p))
			return false;
		integer = false;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '-' || *p == '+')
			p++;
		if (!skip_digits(&p))
			return false;
		integer = false;
	}
	if (*p)
		return false;
	*ret_integer = integer;
	return true;
}

/*
 * The JSON value of VALUE, typed by its look unless as_string. jansson writes a real
 * with 17 significant digits and always with a '.' or an exponent, so the daemon reads
 * back the same double, as an f64.
 */
static json_t *field_value(const char *value, bool as_string, const char **ret_why)
{
	bool integer;
	long long i;
	double d;
	json_t *v;

	if (!as_string && is_json_number(value, &integer)) {
		errno = 0;
		if (integer) {
			i = strtoll(value, NULL, 10);
			if (errno == ERANGE) {
				*ret_why = "is outside the 64-bit integer range (-s sends it as a "
					   "string)";
				return NULL;
			}
			return json_integer(i);
		}
		d = strtod(value, NULL);
		/* An underflow reads as about 0, as in the daemon. */
		if (errno == ERANGE && isinf(d)) {
			*ret_why = "is too large for a double (-s sends it as a string)";
			return NULL;
		}
		return json_real(d);
	}
	if (!as_string && !strcmp(value, "true"))
		return json_true();
	if (!as_string && !strcmp(value, "false"))
		return json_false();
	if (strlen(value) > CG_STRING_MAX) {
		*ret_why = "is longer than " STR(CG_STRING_MAX) " bytes";
		return NULL;
	}
	v = json_string(value);
	if (!v)
		*ret_why = "is not valid UTF-8";
	return v;
}

/* Adds "KEY=VALUE" to o. A bad argument is reported; returns -EINVAL. */
static int add_field(json_t *o, const char *arg, bool as_string)
{
	const char *eq = strchr(arg, '='), *why;
	char *key;
	json_t *v;
	int r = -EINVAL;

	if (!eq) {
		fprintf(stderr, "coapgatectl send: \"%s\" is not KEY=VALUE\n", arg);
		return -EINVAL;
	}
	key = xasprintf("%.*s", (int)(eq - arg), arg);
	if (!reading_field_name_is_valid(key))
		fprintf(stderr,
			"coapgatectl send: the field name \"%s\" is not 1 to %d of A-Z a-z 0-9 "
			"_ . -\n",
			key, CG_FIELD_NAME_MAX);
	else if (!strcmp(key, "topic") || !strcmp(key, "ts"))
		fprintf(stderr,
			"coapgatectl send: \"%s\" cannot be a field name, the input reads it as "
			"the reading's %s: use --%s\n",
			key, strcmp(key, "ts") ? "topic" : "timestamp", key);
	else if (json_object_get(o, key))
		fprintf(stderr, "coapgatectl send: the field \"%s\" is given twice\n", key);
	else if (json_object_size(o) == CG_FIELDS_MAX)
		fprintf(stderr, "coapgatectl send: a reading has at most %d fields\n",
			CG_FIELDS_MAX);
	else if (!(v = field_value(eq + 1, as_string, &why)))
		fprintf(stderr, "coapgatectl send: the value of \"%s\" %s\n", key, why);
	else {
		json_object_set_new(o, key, v);
		r = 0;
	}
	free(key);
	return r;
}

/* --- the exchange --------------------------------------------------------------- */

static uint64_t owed(const struct send *s)
{
	return s->sent - s->acked - s->refused;
}

static void out_append_line(struct send *s, const char *data, size_t len)
{
	if (s->out_done == s->out_len)
		s->out_done = s->out_len = 0;
	if (s->out_len + len + 1 > s->out_size) {
		if (s->out_done) {
			memmove(s->out, s->out + s->out_done, s->out_len - s->out_done);
			s->out_len -= s->out_done;
			s->out_done = 0;
		}
		if (s->out_len + len + 1 > s->out_size) {
			s->out_size = MAX(s->out_len + len + 1, 2 * s->out_size);
			s->out = xrealloc(s->out, s->out_size);
		}
	}
	memcpy(s->out + s->out_len, data, len);
	s->out_len += len;
	s->out[s->out_len++] = '\n';
	/* The timer runs while answers are owed: from the first, then from the last. */
	if (owed(s) == 0)
		s->deadline_usec = now_monotonic_usec() + s->timeout_usec;
	s->sent++;
}

static void fail(struct send *s, int status, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct send *s, int status, const char *format, ...)
{
	va_list ap;

	if (s->status)
		return;
	s->status = status;
	fputs("coapgatectl send: ", stderr);
	va_start(ap, format);
	vfprintf(stderr, format, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A whole line of stdin, without its newline, in s->line: check it, queue it. */
static void json_line(struct send *s)
{
	size_t len = s->line_len;
	char why[MESSAGE_WHY_MAX];
	int r;

	s->lineno++;
	if (s->line_too_long) {
		fprintf(stderr,
			"coapgatectl send: line %" PRIu64 ": longer than %u bytes, not sent\n",
			s->lineno, SEND_LINE_MAX);
		s->rejected++;
		goto done;
	}
	/* Queue the line before the parser decodes it in place; take it back if bad. */
	out_append_line(s, s->line, len);
	/* As the input does: a '\r' before the newline is not part of the message. */
	if (len && s->line[len - 1] == '\r')
		len--;
	r = parse_json(s->line, len, &s->msg, why, sizeof(why));
	if (r == 0)
		goto done;
	s->out_len -= s->line_len + 1;
	s->sent--;
	if (r < 0) {
		fprintf(stderr, "coapgatectl send: line %" PRIu64 ": %s, not sent\n", s->lineno,
			why);
		s->rejected++;
	}
done:
	s->line_len = 0;
	s->line_too_long = false;
}

static void read_stdin(struct send *s)
{
	char buf[SEND_READ_SIZE];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

	if (n < 0) {
		if (errno != EINTR && errno != EAGAIN)
			fail(s, CTL_EXIT_IO, "cannot read stdin: %s", strerror(errno));
		return;
	}
	if (n == 0) {
		s->in_eof = true;
		if (s->line_len || s->line_too_long)
			json_line(s); /* the last line, without its newline */
		return;
	}
	for (char *p = buf, *end = buf + n; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t k = (size_t)((nl ? nl : end) - p);

		if (s->line_len + k > SEND_LINE_MAX) {
			s->line_too_long = true;
		} else if (!s->line_too_long) {
			/* One spare byte: the parser may write at line[len]. */
			if (s->line_len + k + 1 > s->line_size) {
				s->line_size = MAX(s->line_len + k + 1, 2 * s->line_size);
				s->line = xrealloc(s->line, s->line_size);
			}
			memcpy(s->line + s->line_len, p, k);
			s->line_len += k;
		}
		p += k;
		if (nl) {
			json_line(s);
			p++;
		}
	}
}

static void write_out(struct send *s)
{
	ssize_t n = send(s->fd, s->out + s->out_done, s->out_len - s->out_done,
			 MSG_DONTWAIT | MSG_NOSIGNAL);

	if (n >= 0) {
		s->out_done += (size_t)n;
		return;
	}
	if (errno == EINTR || errno == EAGAIN)
		return;
	/* The daemon closed: read what it said before, then report (peer_closed()). */
	s->peer_gone = true;
	s->out_done = s->out_len = 0;
}

/*
 * Errors about the connection rather than about one message (README.md, "Answers"):
 * not answers to a message, and the daemon closes the connection after them.
 */
static bool is_connection_error(const char *reason)
{
	return !strcmp(reason, "too many clients") ||
	       !strncmp(reason, NOT_DURABLE, strlen(NOT_DURABLE));
}

static void answer(struct send *s, char *line)
{
	uint64_t n;
	char *end;

	if (!strncmp(line, "ok ", 3) && line[3] >= '1' && line[3] <= '9') {
		errno = 0;
		n = strtoull(line + 3, &end, 10);
		if (*end || errno || n > owed(s)) {
			fail(s, CTL_EXIT_PROTOCOL,
			     "%s answered \"%s\" with %" PRIu64 " readings unanswered", s->path,
			     line, owed(s));
			return;
		}
		s->acked += n;
	} else if (!strncmp(line, "error ", 6)) {
		const char *reason = line + 6;

		if (is_connection_error(reason)) {
			snprintf(s->closing, sizeof(s->closing), "%s", reason);
			return;
		}
		if (owed(s) == 0) {
			fail(s, CTL_EXIT_PROTOCOL, "%s answered \"%s\" with no reading unanswered",
			     s->path, line);
			return;
		}
		s->refused++;
		fprintf(stderr, "coapgatectl send: %s rejected %s: %s\n", s->path,
			s->json ? "a line" : "the reading", reason);
	} else {
		fail(s, CTL_EXIT_PROTOCOL, "%s answered \"%.80s\": not a unixsock answer", s->path,
		     line);
		return;
	}
	s->deadline_usec = now_monotonic_usec() + s->timeout_usec;
}

static void peer_closed(struct send *s)
{
	const char *what = s->json ? "lines" : "readings";

	if (!strncmp(s->closing, NOT_DURABLE, strlen(NOT_DURABLE)))
		fail(s, CTL_EXIT_IO,
		     "%s could not make readings durable (%s): %" PRIu64 " of %" PRIu64
		     " %s acknowledged, the others are not durable",
		     s->path, s->closing, s->acked, s->sent, what);
	else if (*s->closing)
		fail(s, CTL_EXIT_UNAVAILABLE, "%s refused the connection: %s", s->path, s->closing);
	/* Without ack mode the input closes once it has read everything. */
	else if (s->shut && owed(s) && !s->acked)
		fail(s, CTL_EXIT_UNAVAILABLE,
		     "%s closed the connection without acknowledging any reading: the input "
		     "at %s must have ack = true (or coapgated stopped); %" PRIu64
		     " %s not known to be durable",
		     s->path, s->path, owed(s), what);
	else
		fail(s, CTL_EXIT_UNAVAILABLE,
		     "%s closed the connection (did coapgated stop?): %" PRIu64 " of %" PRIu64
		     " %s answered%s%s",
		     s->path, s->acked + s->refused, s->sent, what,
		     owed(s) ? ", the others may be lost" : "",
		     s->in_eof ? "" : "; the rest of stdin was not sent");
}

static void read_answers(struct send *s)
{
	ssize_t n =
	    recv(s->fd, s->answer + s->answer_len, sizeof(s->answer) - s->answer_len, MSG_DONTWAIT);
	char *p, *nl;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		peer_closed(s);
		return;
	}
	s->answer_len += (size_t)n;
	for (p = s->answer;
	     !s->status && (nl = memchr(p, '\n', s->answer_len - (size_t)(p - s->answer)));
	     p = nl + 1) {
		*nl = '\0';
		answer(s, p);
	}
	s->answer_len -= (size_t)(p - s->answer);
	memmove(s->answer, p, s->answer_len);
	if (s->answer_len == sizeof(s->answer))
		fail(s, CTL_EXIT_PROTOCOL, "%s sent an answer longer than %zu bytes", s->path,
		     sizeof(s->answer));
}

static void timed_out(struct send *s)
{
	const char *what = s->json ? "lines" : "readings";
	char t[32];

	format_duration(t, sizeof(t), s->timeout_usec);
	if (!s->acked)
		fail(s, CTL_EXIT_TEMPFAIL,
		     "no acknowledgement from %s within %s: the input at %s must have "
		     "ack = true; %" PRIu64 " %s not known to be durable",
		     s->path, t, s->path, owed(s), what);
	else
		fail(s, CTL_EXIT_TEMPFAIL,
		     "no answer from %s for %s: %" PRIu64 " of %" PRIu64
		     " %s answered, the others are not known to be durable",
		     s->path, t, s->acked + s->refused, s->sent, what);
}

/* Write, read stdin and read answers at once until every line is answered. */
static void exchange(struct send *s)
{
	while (!s->status) {
		struct pollfd p[2] = { { .fd = s->fd, .events = POLLIN }, { .fd = -1 } };
		bool pending = s->out_done < s->out_len;
		int timeout_ms = -1;

		if (s->in_eof && !pending && !s->peer_gone && !s->shut) {
			shutdown(s->fd, SHUT_WR);
			s->shut = true;
		}
		if (s->shut && owed(s) == 0)
			return;
		if (pending && !s->peer_gone)
			p[0].events |= POLLOUT;
		if (!s->in_eof && !s->peer_gone && s->out_len - s->out_done < SEND_OUT_HIGH)
			p[1] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
		if (owed(s) && s->timeout_usec) {
			uint64_t now = now_monotonic_usec();

			if (now >= s->deadline_usec) {
				timed_out(s);
				return;
			}
			timeout_ms = (int)MIN((s->deadline_usec - now + 999) / 1000, INT32_MAX);
		}
		if (poll(p, 2, timeout_ms) < 0) {
			if (errno != EINTR)
				fail(s, CTL_EXIT_IO, "poll: %s", strerror(errno));
			continue;
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
			read_answers(s);
		if (!s->status && (p[0].revents & POLLOUT))
			write_out(s);
		if (!s->status && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
			read_stdin(s);
	}
}

/* Connect within the timeout; returns 0 or an exit status, reported. */
static int connect_to(struct send *s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = (time_t)(s->timeout_usec / USEC_PER_SEC),
			      .tv_usec = (suseconds_t)(s->timeout_usec % USEC_PER_SEC) };
	int status;

	memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		fprintf(stderr, "coapgatectl send: cannot create a socket: %s\n", strerror(errno));
		return CTL_EXIT_IO;
	}
	/* A full listen backlog blocks connect(); SO_SNDTIMEO bounds the wait. */
	setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(s->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return 0;
	switch (errno) {
	case EACCES:
	case EPERM:
		status = CTL_EXIT_NOPERM;
		fprintf(stderr,
			"coapgatectl send: cannot connect to %s: %s (the input's socket_mode and "
			"group options say who may)\n",
			s->path, strerror(errno));
		break;
	case EAGAIN:
		status = CTL_EXIT_TEMPFAIL;
		fprintf(stderr, "coapgatectl send: %s did not accept the connection in time\n",
			s->path);
		break;
	default:
		status = CTL_EXIT_UNAVAILABLE;
		fprintf(stderr,
			"coapgatectl send: cannot connect to %s: %s (is coapgated running with a "
			"unixsock input there?)\n",
			s->path, strerror(errno));
		break;
	}
	return status;
}

/* --- the command ---------------------------------------------------------------- */

struct arguments {
	const char *path, *topic, *ts, *timeout;
	bool json;
	json_t *fields; /* in the order given */
	bool bad;	/* a KEY=VALUE was refused (and reported) */
	bool help;	/* --help was printed */
};

static int parse_arguments(int argc, char **argv, struct arguments *a)
{
	enum { OPT_SOCKET = 0x100, OPT_TOPIC, OPT_TS, OPT_TIMEOUT, OPT_JSON };
	static const struct option options[] = {
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "topic", required_argument, NULL, OPT_TOPIC },
		{ "ts", required_argument, NULL, OPT_TS },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "string", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	optind = 1;
	/* "-" first: KEY=VALUE arguments come back as option 1, in order with -s. */
	while ((c = getopt_long(argc, argv, "-s:h", options, NULL)) >= 0) {
		switch (c) {
		case 1:
		case 's':
			a->bad |= add_field(a->fields, optarg, c == 's') < 0;
			break;
		case OPT_SOCKET:
			a->path = optarg;
			break;
		case OPT_TOPIC:
			a->topic = optarg;
			break;
		case OPT_TS:
			a->ts = optarg;
			break;
		case OPT_TIMEOUT:
			a->timeout = optarg;
			break;
		case OPT_JSON:
			a->json = true;
			break;
		case 'h':
			a->help = true;
			return usage(stdout, 0);
		default:
			return usage(stderr, CTL_EXIT_USAGE);
		}
	}
	/* After "--": KEY=VALUE whose key starts with '-'. */
	for (; optind < argc; optind++)
		a->bad |= add_field(a->fields, argv[optind], false) < 0;
	return 0;
}

/* Checks the arguments and makes the line to send (NULL for --json); 0 or a status. */
static int check_arguments(struct arguments *a, struct send *s, char **ret_line)
{
	const char *env = getenv(SEND_SOCKET_ENV);
	uint64_t timeout_usec = SEND_TIMEOUT_USEC;
	int64_t ts = 0;
	json_t *o;

	s->path = a->path ?: env && *env ? env : SEND_SOCKET_DEFAULT;
	if (!*s->path || strlen(s->path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		fprintf(stderr, "coapgatectl send: the socket path \"%s\" is empty or too long\n",
			s->path);
		return CTL_EXIT_USAGE;
	}
	if (a->timeout && parse_duration(a->timeout, &timeout_usec) < 0) {
		fprintf(stderr,
			"coapgatectl send: --timeout \"%s\" is not a duration like \"10s\" or "
			"\"500ms\"\n",
			a->timeout);
		return CTL_EXIT_USAGE;
	}
	s->timeout_usec = timeout_usec;
	s->json = a->json;
	if (a->bad)
		return CTL_EXIT_USAGE;
	if (a->json) {
		if (json_object_size(a->fields) || a->topic || a->ts) {
			fprintf(stderr, "coapgatectl send: --json takes the readings from stdin "
					"only: no KEY=VALUE, --topic or --ts\n");
			return CTL_EXIT_USAGE;
		}
		*ret_line = NULL;
		return 0;
	}
	if (!json_object_size(a->fields)) {
		fprintf(stderr, "coapgatectl send: nothing to send: give KEY=VALUE arguments "
				"or --json\n");
		return usage(stderr, CTL_EXIT_USAGE);
	}
	if (a->topic && !topic_is_valid(a->topic)) {
		fprintf(stderr,
			"coapgatectl send: the topic \"%s\" is not 1 to %d of A-Z a-z 0-9 _ / "
			"without \"//\"\n",
			a->topic, CG_TOPIC_MAX);
		return CTL_EXIT_USAGE;
	}
	if (a->ts && (parse_int64(a->ts, &ts) < 0 || ts < 0)) {
		fprintf(stderr,
			"coapgatectl send: --ts \"%s\" is not a number of milliseconds since the "
			"epoch\n",
			a->ts);
		return CTL_EXIT_USAGE;
	}
	/* "topic" and "ts" first, then the fields in the order given. */
	o = json_object();
	if (a->topic)
		json_object_set_new(o, "topic", json_string(a->topic));
	if (a->ts)
		json_object_set_new(o, "ts", json_integer(ts));
	json_object_update(o, a->fields);
	*ret_line = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!*ret_line)
		abort();
	return 0;
}

int ctl_send(int argc, char **argv)
{
	struct arguments a = { .fields = json_object() };
	struct send *s = xcalloc(1, sizeof(*s));
	char *line = NULL;
	int r;

	s->fd = -1;
	/* Never NULL, with room for the byte the parser may write after a line. */
	s->line_size = SEND_READ_SIZE;
	s->line = xmalloc(s->line_size);
	r = parse_arguments(argc, argv, &a);
	if (r || a.help)
		goto out;
	r = check_arguments(&a, s, &line);
	if (r)
		goto out;
	/* Closed, fd 0 would be the socket's and the lines would come from the daemon. */
	if (s->json && fcntl(STDIN_FILENO, F_GETFD) < 0) {
		fprintf(stderr, "coapgatectl send: --json reads stdin, which is closed\n");
		r = CTL_EXIT_IO;
		goto out;
	}
	r = connect_to(s);
	if (r)
		goto out;
	if (line) {
		out_append_line(s, line, strlen(line));
		s->in_eof = true;
	}
	exchange(s);
	if (s->status)
		r = s->status;
	else if (s->refused || s->rejected)
		r = CTL_EXIT_DATAERR;
out:
	free(line);
	json_decref(a.fields);
	safe_close(s->fd);
	free(s->out);
	free(s->line);
	free(s);
	return r;
}
