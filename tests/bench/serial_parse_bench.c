// SPDX-License-Identifier: MIT
/*
 * serial_parse_bench: what framing and parsing cost in the serial input
 * (plugins/serial: framer.c, frame.c, parse_*.c), per frame and per byte, for each
 * format. Not a test: it prints figures; docs/BENCHMARKS.md has them.
 *
 *   serial_parse_bench [-n FRAMES] [-r REPEAT]
 *
 * Each format gets 4096 different lines of the kind its README shows (kv and csv with
 * four fields, a scale's regex line, NMEA GGA and RMC in turn, a three-field JSON
 * object), joined into one stream with "\r\n" and fed to the framer in reads of 4096
 * bytes, as from the tty; every frame goes through frame_parse(), as in the run loop,
 * but nothing is emitted. REPEAT (default 9) rounds of FRAMES (default 1,000,000)
 * frames each, after an untimed round of a tenth; printed are the median and the
 * fastest ns per frame, the bytes per second that makes, and how many 115200-baud
 * lines (11,520 bytes/s) one core could keep up with.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "formats.h"
#include "framer.h"

#define N_LINES	   4096
#define READ_CHUNK 4096
#define ROUNDS_MAX 101

struct bench {
	const char *name;
	struct frame_format ff;
	char *stream;
	size_t len;
	uint64_t frames, readings, fields;
	struct message msg;
};

static void on_frame(void *userdata, char *data, size_t len, int64_t ts)
{
	struct bench *b = userdata;
	char why[256];

	(void)ts;
	b->frames++;
	if (frame_parse(&b->ff, data, len, &b->msg, why, sizeof(why)) == FRAME_READING) {
		b->readings++;
		b->fields += b->msg.reading.n_fields;
	}
}

static void on_too_long(void *userdata, const char *head, size_t len, int64_t ts)
{
	(void)userdata, (void)head, (void)len, (void)ts;
	fprintf(stderr, "a frame is too long\n");
	exit(1);
}

static void on_cut(void *userdata, size_t bytes)
{
	(void)userdata, (void)bytes;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static unsigned nmea_checksum(const char *body)
{
	unsigned sum = 0;

	for (; *body; body++)
		sum ^= (unsigned char)*body;
	return sum;
}

/* Line i of a format, without its terminator. */
static int make_line(const char *format, unsigned i, char *out, size_t size)
{
	char body[160];

	if (strcmp(format, "kv") == 0)
		return snprintf(out, size, "temperature=%u.%u humidity=%u door=%s state=heating",
				10 + i % 30, i % 10, 30 + i % 60, i % 2 ? "true" : "false");
	if (strcmp(format, "csv") == 0)
		return snprintf(out, size, "%u.%u;C;%u;%u;heating", 10 + i % 30, i % 10,
				1000 + i % 60, i % 2);
	if (strcmp(format, "regex") == 0)
		return snprintf(out, size, "ST,GS,+%04u.%02u kg", i % 1000, i % 100);
	if (strcmp(format, "json") == 0)
		return snprintf(out, size, "{\"temperature\":%u.%u,\"humidity\":%u,\"ok\":true}",
				10 + i % 30, i % 10, 30 + i % 60);
	if (i % 2)
		snprintf(
		    body, sizeof(body),
		    "GPGGA,%02u%02u%02u.00,48%02u.%03u,N,011%02u.%03u,E,1,%02u,0.9,%u.4,M,46.9,M,,",
		    i / 3600 % 24, i / 60 % 60, i % 60, i % 60, i % 1000, i % 60, i % 997,
		    4 + i % 8, 500 + i % 100);
	else
		snprintf(
		    body, sizeof(body),
		    "GPRMC,%02u%02u%02u.00,A,48%02u.%03u,N,011%02u.%03u,E,0%02u.4,084.4,230394,003.1,W,A",
		    i / 3600 % 24, i / 60 % 60, i % 60, i % 60, i % 1000, i % 60, i % 997, i % 50);
	return snprintf(out, size, "$%s*%02X", body, nmea_checksum(body));
}

static void build_stream(struct bench *b)
{
	size_t cap = (size_t)N_LINES * 200;

	b->stream = malloc(cap);
	if (!b->stream)
		exit(1);
	b->len = 0;
	for (unsigned i = 0; i < N_LINES; i++) {
		int n = make_line(b->name, i, b->stream + b->len, cap - b->len - 2);

		b->len += (size_t)n;
		memcpy(b->stream + b->len, "\r\n", 2);
		b->len += 2;
	}
}

/* Feed frames frames of the stream, cycling; returns the bytes fed. */
static uint64_t run(struct bench *b, struct framer *f, uint64_t frames)
{
	const struct framer_sink sink = { on_frame, on_too_long, on_cut, b };
	uint64_t start = b->frames, bytes = 0;
	size_t pos = 0;

	while (b->frames - start < frames) {
		size_t n = b->len - pos < READ_CHUNK ? b->len - pos : READ_CHUNK;

		framer_feed(f, b->stream + pos, n, 0, &sink);
		bytes += n;
		pos = (pos + n) % b->len;
	}
	return bytes;
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void cpu_model(char *out, size_t size)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[256];

	snprintf(out, size, "unknown CPU");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
			snprintf(out, size, "%s", strchr(line, ':') + 2);
			out[strcspn(out, "\n")] = '\0';
			break;
		}
	fclose(f);
}

int main(int argc, char **argv)
{
	static const struct field_spec columns[] = {
		{ "temperature", VALUE_F64 }, { NULL, VALUE_SKIP },	 { "pressure", VALUE_I64 },
		{ "burner", VALUE_BOOL },     { "state", VALUE_STRING },
	};
	static const struct field_spec regex_types[] = { { "unit", VALUE_STRING } };
	static struct bench benches[] = {
		{ .name = "kv" },   { .name = "csv" },	{ .name = "regex" },
		{ .name = "json" }, { .name = "nmea" },
	};
	uint64_t frames = 1000000;
	int repeat = 9, opt;
	struct utsname u;
	char cpu[128], why[256];
	struct regex_format *rf;

	while ((opt = getopt(argc, argv, "n:r:")) != -1) {
		if (opt == 'n')
			frames = strtoull(optarg, NULL, 10);
		else if (opt == 'r')
			repeat = atoi(optarg);
		else
			return fprintf(stderr, "usage: %s [-n FRAMES] [-r REPEAT]\n", argv[0]), 2;
	}
	if (repeat < 1 || repeat > ROUNDS_MAX || frames < 10)
		return fprintf(stderr, "REPEAT is 1 to %d, FRAMES at least 10\n", ROUNDS_MAX), 2;
	if (regex_format_new("^ST,GS,(?<weight>[-+][0-9.]+) *(?<unit>[a-z]+)$", regex_types, 1, &rf,
			     why, sizeof(why)) < 0)
		return fprintf(stderr, "%s\n", why), 1;
	benches[0].ff =
	    (struct frame_format){ .format = FORMAT_KV, .kv = { " \t\r\n,;", "=", NULL, 0 } };
	benches[1].ff = (struct frame_format){ .format = FORMAT_CSV, .csv = { ';', columns, 5 } };
	benches[2].ff = (struct frame_format){ .format = FORMAT_REGEX, .regex = rf };
	benches[3].ff = (struct frame_format){ .format = FORMAT_JSON };
	benches[4].ff = (struct frame_format){ .format = FORMAT_NMEA };

	uname(&u);
	cpu_model(cpu, sizeof(cpu));
	printf("serial_parse_bench -n %" PRIu64 " -r %d: %s %s, %s\n", frames, repeat, u.sysname,
	       u.release, cpu);
	printf("%-6s %6s %10s %10s %12s %14s\n", "format", "bytes", "ns/frame", "fastest", "MB/s",
	       "115200 lines");
	for (size_t k = 0; k < sizeof(benches) / sizeof(benches[0]); k++) {
		struct bench *b = &benches[k];
		struct framer_conf conf = { .mode = FRAMER_TERMINATOR,
					    .terminator = "\r\n",
					    .terminator_len = 2,
					    .max_frame = 4096 };
		double ns[ROUNDS_MAX], bytes_per_frame = 0;
		struct framer *f;

		build_stream(b);
		if (framer_new(&conf, &f) < 0)
			return 1;
		framer_gap(f, &(struct framer_sink){ on_frame, on_too_long, on_cut, b });
		run(b, f, frames / 10);
		if (b->readings != b->frames)
			return fprintf(stderr, "%s: %" PRIu64 " of %" PRIu64 " frames parsed\n",
				       b->name, b->readings, b->frames),
			       1;
		for (int r = 0; r < repeat; r++) {
			uint64_t t0 = now_ns(), fed = run(b, f, frames);

			ns[r] = (double)(now_ns() - t0) / (double)frames;
			bytes_per_frame = (double)fed / (double)frames;
		}
		qsort(ns, (size_t)repeat, sizeof(ns[0]), compare_double);
		printf("%-6s %6.1f %10.1f %10.1f %12.1f %14.0f\n", b->name, bytes_per_frame,
		       ns[repeat / 2], ns[0], bytes_per_frame / ns[repeat / 2] * 1e3,
		       bytes_per_frame / ns[repeat / 2] * 1e9 / 11520.0);
		framer_free(f);
		free(b->stream);
	}
	regex_format_free(rf);
	return 0;
}
