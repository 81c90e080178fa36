// SPDX-License-Identifier: MIT
/*
 * unixsock_load: the client side of tests/bench/unixsock_bench.py, a load generator for
 * the unixsock input (plugins/unixsock/README.md). Not a test: it sends, times and
 * prints one JSON line of figures; docs/BENCHMARKS.md has what they measured.
 *
 *   unixsock_load -s PATH [-f json|influx] [-n READINGS] [-c CLIENTS] [-a] [-m PATH]
 *                 [-w WRITE_BYTES] [-t TIMEOUT_S] [-g]
 *
 * READINGS (default 5,000,000) readings of three numeric fields, varying like a
 * sensor's (a random walk: temperature with two decimals, humidity with one, pressure
 * with two), are formatted before the clock starts, one buffer per client:
 *
 *   {"temperature":21.53,"humidity":40.2,"pressure":1013.25}
 *   m temperature=21.53,humidity=40.2,pressure=1013.25
 *
 * Each of CLIENTS threads (default 1) has one connection and writes its share with
 * write()s of WRITE_BYTES (default 1 MiB; the socket is non-blocking, so a write takes
 * what the socket buffer has room for), reading answers as they come (poll). The clock
 * starts just before the threads are released.
 *
 *   -a  ack mode: a client is done when its `ok <n>` answers (and `error` lines) add up
 *       to its readings.
 *   otherwise a client shuts down its sending side when everything is written and is
 *       done when the input closes the connection: the input closes it only after
 *       every line before the end of file was parsed and handed to the queue.
 *   -m  then, once every client is done, one more reading goes through the ack-mode
 *       instance at PATH (JSON lines) and the clock stops at its `ok 1`: the queue
 *       makes readings durable in seq order, and that reading was queued after all the
 *       others, so its answer says they are durable too.
 *   -g  print "ready" once connected and formatted, then wait for a line on stdin: the
 *       driver takes the daemon's CPU time at that moment.
 *
 * The exit status is 0 when every reading was accepted (no `error` answer, the counts
 * add up, nothing timed out), 1 otherwise; the figures are printed either way.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 96
#define ANSWER_MAX     4096
#define ERROR_TEXT_MAX 200

struct client {
	pthread_t thread;
	int fd;
	unsigned index;
	char *buf; /* the formatted readings */
	size_t len;
	uint64_t readings;

	uint64_t written_ns, done_ns;
	uint64_t acked, errors;
	bool failed; /* the connection ended early, or a write failed, or it timed out */
	char error_text[ERROR_TEXT_MAX];
	char answers[ANSWER_MAX];
	size_t answers_len;
};

static struct {
	bool ack;
	size_t write_bytes;
	int timeout_ms;
	pthread_barrier_t start;
} opt = { .write_bytes = 1 << 20, .timeout_ms = 600000 };

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static void *xmalloc(size_t size)
{
	void *p = malloc(size);

	if (!p) {
		fprintf(stderr, "unixsock_load: out of memory\n");
		exit(2);
	}
	return p;
}

/* v / 10^decimals with exactly that many decimals, as printf("%.*f") would. */
static char *put_fixed(char *p, long v, int decimals)
{
	char digits[24];
	int n = 0;

	if (v < 0) {
		*p++ = '-';
		v = -v;
	}
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v || n <= decimals);
	while (n) {
		if (n == decimals)
			*p++ = '.';
		*p++ = digits[--n];
	}
	return p;
}

static char *put_str(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n);
	return p + n;
}

/* A step of a bounded random walk. */
static long walk(long v, long step, long lo, long hi, uint64_t *rng)
{
	*rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
	v += (long)(*rng >> 33) % (2 * step + 1) - step;
	return v < lo ? lo : v > hi ? hi : v;
}

static void format_readings(struct client *c, bool influx)
{
	uint64_t rng = 0x9e3779b97f4a7c15ULL * (c->index + 1);
	long temp = 2153, hum = 402, pres = 101325; /* hundredths, tenths, hundredths */
	char *p;

	c->buf = p = xmalloc(c->readings * LINE_MAX_BYTES);
	for (uint64_t i = 0; i < c->readings; i++) {
		temp = walk(temp, 7, -2000, 4500, &rng);
		hum = walk(hum, 5, 50, 1000, &rng);
		pres = walk(pres, 9, 95000, 105000, &rng);
		p = put_str(p, influx ? "m temperature=" : "{\"temperature\":");
		p = put_fixed(p, temp, 2);
		p = put_str(p, influx ? ",humidity=" : ",\"humidity\":");
		p = put_fixed(p, hum, 1);
		p = put_str(p, influx ? ",pressure=" : ",\"pressure\":");
		p = put_fixed(p, pres, 2);
		p = put_str(p, influx ? "\n" : "}\n");
	}
	c->len = (size_t)(p - c->buf);
}

static int connect_to(const char *path, bool nonblocking)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int type = SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "unixsock_load: path too long: %s\n", path);
		exit(2);
	}
	strcpy(sa.sun_path, path);
	/* The input may still be creating its socket: retry for 10 s. */
	for (int tries = 0;; tries++) {
		fd = socket(AF_UNIX, type, 0);
		if (fd < 0)
			break;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		close(fd);
		if ((errno != ENOENT && errno != ECONNREFUSED) || tries == 1000)
			break;
		usleep(10000);
	}
	fprintf(stderr, "unixsock_load: cannot connect to %s: %s\n", path, strerror(errno));
	exit(2);
}

static void set_error(struct client *c, const char *what, const char *text)
{
	c->failed = true;
	if (!c->error_text[0])
		snprintf(c->error_text, sizeof(c->error_text), "%s%s", what, text);
}

/* Count the whole answer lines received so far: `ok <n>` and `error <reason>`. */
static void take_answers(struct client *c)
{
	char *p = c->answers, *end = c->answers + c->answers_len, *nl;

	while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
		*nl = '\0';
		if (strncmp(p, "ok ", 3) == 0) {
			c->acked += strtoull(p + 3, NULL, 10);
		} else {
			c->errors++;
			if (!c->error_text[0])
				snprintf(c->error_text, sizeof(c->error_text), "%.*s",
					 ERROR_TEXT_MAX - 1, p);
		}
		p = nl + 1;
	}
	c->answers_len = (size_t)(end - p);
	memmove(c->answers, p, c->answers_len);
}

static bool client_done(const struct client *c)
{
	return opt.ack && c->acked + c->errors >= c->readings;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	size_t off = 0;

	pthread_barrier_wait(&opt.start);
	while (!client_done(c)) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		ssize_t n;

		if (off < c->len)
			p.events |= POLLOUT;
		n = poll(&p, 1, opt.timeout_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			set_error(c, "", n ? strerror(errno) : "timed out");
			break;
		}
		if (p.revents & POLLOUT) {
			size_t want =
			    c->len - off < opt.write_bytes ? c->len - off : opt.write_bytes;

			n = write(c->fd, c->buf + off, want);
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				set_error(c, "write: ", strerror(errno));
				break;
			}
			if (n > 0)
				off += (size_t)n;
			if (off == c->len) {
				c->written_ns = now_ns();
				/* Without ack mode the input's closing the connection is the answer. */
				if (!opt.ack)
					shutdown(c->fd, SHUT_WR);
			}
		}
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = read(c->fd, c->answers + c->answers_len, sizeof(c->answers) - c->answers_len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			if (opt.ack || off < c->len)
				set_error(c, "",
					  n ? strerror(errno) : "the input closed the connection");
			break;
		}
		c->answers_len += (size_t)n;
		take_answers(c);
		if (c->answers_len == sizeof(c->answers))
			c->answers_len = 0; /* an answer line longer than 4 KiB: not the input's */
	}
	c->done_ns = now_ns();
	return NULL;
}

/* One reading through the ack-mode instance at fd; its time of `ok 1`, or 0. */
static uint64_t send_marker(int fd, char *why, size_t why_size)
{
	static const char line[] = "{\"bench_marker\":1}\n";
	char answer[256];
	size_t have = 0;

	if (write(fd, line, sizeof(line) - 1) != (ssize_t)(sizeof(line) - 1)) {
		snprintf(why, why_size, "marker: write: %s", strerror(errno));
		return 0;
	}
	while (have < sizeof(answer) - 1) {
		ssize_t n = read(fd, answer + have, sizeof(answer) - 1 - have);

		if (n <= 0) {
			snprintf(why, why_size, "marker: %s", n ? strerror(errno) : "closed");
			return 0;
		}
		have += (size_t)n;
		if (memchr(answer, '\n', have))
			break;
	}
	answer[have] = '\0';
	if (strcmp(answer, "ok 1\n") != 0) {
		snprintf(why, why_size, "marker: answered %.100s", answer);
		return 0;
	}
	return now_ns();
}

static int usage(FILE *f, int status)
{
	fprintf(f, "Usage: unixsock_load -s PATH [-f json|influx] [-n READINGS] [-c CLIENTS] "
		   "[-a] [-m PATH]\n"
		   "                     [-w WRITE_BYTES] [-t TIMEOUT_S] [-g]\n");
	return status;
}

int main(int argc, char **argv)
{
	const char *path = NULL, *marker_path = NULL;
	bool influx = false, go = false, ok = true;
	uint64_t readings = 5000000, bytes = 0, acked = 0, errors = 0;
	uint64_t t0, cpu0, end = 0, written = 0, done = 0;
	unsigned n_clients = 1;
	char why[ERROR_TEXT_MAX + 32] = "";
	struct client *clients;
	int marker_fd = -1, c;

	while ((c = getopt(argc, argv, "s:f:n:c:am:w:t:gh")) >= 0) {
		switch (c) {
		case 's':
			path = optarg;
			break;
		case 'f':
			influx = strcmp(optarg, "influx") == 0;
			if (!influx && strcmp(optarg, "json") != 0)
				return usage(stderr, 2);
			break;
		case 'n':
			readings = strtoull(optarg, NULL, 10);
			break;
		case 'c':
			n_clients = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'a':
			opt.ack = true;
			break;
		case 'm':
			marker_path = optarg;
			break;
		case 'w':
			opt.write_bytes = strtoull(optarg, NULL, 10);
			break;
		case 't':
			opt.timeout_ms = (int)(strtod(optarg, NULL) * 1000);
			break;
		case 'g':
			go = true;
			break;
		case 'h':
			return usage(stdout, 0);
		default:
			return usage(stderr, 2);
		}
	}
	if (!path || optind != argc || !n_clients || readings < n_clients || !opt.write_bytes)
		return usage(stderr, 2);
	signal(SIGPIPE, SIG_IGN);

	clients = calloc(n_clients, sizeof(*clients));
	if (!clients)
		return 2;
	for (unsigned i = 0; i < n_clients; i++) {
		struct client *cl = &clients[i];

		cl->index = i;
		cl->readings = readings / n_clients + (i < readings % n_clients);
		format_readings(cl, influx);
		bytes += cl->len;
		cl->fd = connect_to(path, true);
	}
	if (marker_path)
		marker_fd = connect_to(marker_path, false);
	pthread_barrier_init(&opt.start, NULL, n_clients + 1);
	for (unsigned i = 0; i < n_clients; i++) {
		if (pthread_create(&clients[i].thread, NULL, client_main, &clients[i]) != 0) {
			fprintf(stderr, "unixsock_load: cannot start a thread\n");
			return 2;
		}
	}
	if (go) {
		char line[16];

		printf("ready\n");
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			return 2;
	}

	cpu0 = cpu_ns();
	t0 = now_ns();
	pthread_barrier_wait(&opt.start);
	for (unsigned i = 0; i < n_clients; i++) {
		struct client *cl = &clients[i];

		pthread_join(cl->thread, NULL);
		written = cl->written_ns > written ? cl->written_ns : written;
		done = cl->done_ns > done ? cl->done_ns : done;
		acked += cl->acked;
		errors += cl->errors;
		if (cl->failed || cl->errors || (opt.ack && cl->acked != cl->readings)) {
			ok = false;
			if (!why[0])
				snprintf(why, sizeof(why), "client %u: %s", i, cl->error_text);
		}
	}
	end = done;
	if (marker_fd >= 0 && ok) {
		end = send_marker(marker_fd, why, sizeof(why));
		ok = end != 0;
	}

	printf("{\"format\":\"%s\",\"clients\":%u,\"ack\":%s,\"readings\":%" PRIu64
	       ",\"bytes\":%" PRIu64 ",\"written_s\":%.6f,\"done_s\":%.6f,\"end_s\":%.6f"
	       ",\"marker\":%s,\"acked\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"cpu_s\":%.6f"
	       ",\"ok\":%s,\"why\":\"",
	       influx ? "influx" : "json", n_clients, opt.ack ? "true" : "false", readings, bytes,
	       (double)(written - t0) / 1e9, (double)(done - t0) / 1e9,
	       end ? (double)(end - t0) / 1e9 : 0.0, marker_fd >= 0 ? "true" : "false", acked,
	       errors, (double)(cpu_ns() - cpu0) / 1e9, ok ? "true" : "false");
	for (const char *p = why; *p; p++) {
		if (*p == '"' || *p == '\\')
			putchar('\\');
		putchar((unsigned char)*p < 0x20 ? '?' : *p);
	}
	printf("\"}\n");
	return ok ? 0 : 1;
}
