// SPDX-License-Identifier: MIT
/*
 * `coapgatectl queue verify|dump DIR`: offline inspection of a disk queue. It reads
 * (never writes) the directory with the queue's own format functions
 * (queue_header_decode, queue_frame_check, queue_decoder, queue_checkpoint_pick), so
 * that what it calls valid is exactly what the daemon calls valid. Files are mapped
 * read-only; a daemon may be running on the directory, in which case the newest
 * segment may still grow.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "queue_format.h"
#include "reading_json.h"
#include "util.h"

struct walk {
	FILE *report; /* problems: stdout for verify, stderr while dumping */
	bool dump;
	bool unacked_only;
	bool verbose; /* verify: one line per segment */
	struct queue_checkpoint ckpt;
	bool ckpt_valid;
	uint64_t damage;   /* problems that lose durable data */
	uint64_t lost;	   /* readings known lost to damage */
	uint64_t readings; /* valid readings on disk */
	uint64_t unacked;
	uint64_t prev_last; /* last seq of the previous segment, 0 before the first */
	struct queue_decoder dec;
};

static void problem(struct walk *w, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct walk *w, const char *format, ...)
{
	va_list ap;

	w->damage++;
	fputs("damage: ", w->report);
	va_start(ap, format);
	vfprintf(w->report, format, ap);
	va_end(ap);
	fputc('\n', w->report);
}

static void lost_range(struct walk *w, uint64_t first, uint64_t last, const char *why)
{
	/* Readings the checkpoint calls delivered are not lost when they are missing. */
	first = MAX(first, w->ckpt.acked_seq + 1);
	if (first > last)
		return;
	w->lost += last - first + 1;
	problem(w, "seq %" PRIu64 "..%" PRIu64 " (%" PRIu64 " readings) lost: %s", first, last,
		last - first + 1, why);
}

static void print_reading(uint64_t seq, const struct cg_reading *r)
{
	char *json = reading_to_json(NULL, r);

	/* reading_to_json() starts with "{": put the seq first. */
	printf("{\"seq\":%" PRIu64 ",%s\n", seq, json + 1);
	free(json);
}

/* Decode a data frame's readings; returns how many decoded. */
static uint32_t decode_frame(struct walk *w, const struct queue_frame *f)
{
	struct cg_reading r;
	uint32_t n = 0;
	int k;

	queue_decoder_init(&w->dec, f->payload, f->payload_len);
	while ((k = queue_decoder_next(&w->dec, &r)) > 0) {
		uint64_t seq = f->first_seq + n++;

		if (w->dump && (!w->unacked_only || seq > w->ckpt.acked_seq))
			print_reading(seq, &r);
	}
	return k < 0 ? UINT32_MAX : n;
}

/* Find the next frame that validates after damage at off, as the daemon's reader does. */
static bool resync(const uint8_t *img, size_t len, size_t off, uint64_t expected, uint64_t salt,
		   struct queue_frame *ret)
{
	for (size_t o = off + QUEUE_FRAME_ALIGN; o + QUEUE_FRAME_HEADER_LEN <= len;
	     o += QUEUE_FRAME_ALIGN) {
		struct queue_frame_head h;

		queue_frame_peek(img + o, &h);
		if (h.magic == QUEUE_FRAME_MAGIC && h.first_seq > expected &&
		    queue_frame_check(img, len, o, h.first_seq, salt, ret) == QUEUE_FRAME_OK)
			return true;
	}
	return false;
}

static void walk_segment(struct walk *w, const char *name, uint64_t base, const uint8_t *img,
			 size_t len, bool newest)
{
	struct queue_segment_header h;
	uint64_t expected, readings = 0, frames = 0;
	size_t off = QUEUE_HEADER_BLOCK;
	bool sealed = false, torn = false;
	struct queue_frame f;

	if (queue_header_decode(img, len, &h) < 0 || h.base_seq != base) {
		problem(w, "%s: invalid header, the whole segment is unreadable", name);
		return;
	}
	if (w->ckpt_valid && h.stream_id != w->ckpt.stream_id)
		problem(w, "%s: belongs to another queue (stream id %016" PRIx64 ")", name,
			h.stream_id);
	if (w->prev_last && h.prev_seq > w->prev_last)
		lost_range(w, w->prev_last + 1, h.prev_seq, "missing between segments");
	expected = base;
	while (!sealed) {
		enum queue_frame_status st = queue_frame_check(img, len, off, expected, h.salt, &f);
		uint32_t n;

		if (st == QUEUE_FRAME_END)
			break;
		if (st == QUEUE_FRAME_CORRUPT) {
			if (resync(img, len, off, expected, h.salt, &f)) {
				lost_range(w, expected, f.first_seq - 1, "a damaged frame");
				expected = f.first_seq;
				off = f.offset;
				continue;
			}
			/* Past the last valid frame of the daemon's current or last tail: a
			 * write the crash interrupted, never durable, cut at the next start. */
			if (newest) {
				torn = true;
				break;
			}
			problem(w, "%s: damaged from offset %zu to its end", name, off);
			break;
		}
		if (f.flags & QUEUE_FRAME_SEAL) {
			struct queue_seal seal;

			queue_seal_decode(f.payload, &seal);
			if (seal.last_seq + 1 != expected)
				problem(w,
					"%s: the seal says last seq %" PRIu64
					", frames end at %" PRIu64,
					name, seal.last_seq, expected - 1);
			sealed = true;
			break;
		}
		n = decode_frame(w, &f);
		if (n != f.count)
			problem(w, "%s: frame at offset %zu: %u readings announced, %s", name, off,
				f.count, n == UINT32_MAX ? "payload undecodable" : "count differs");
		frames++;
		readings += f.count;
		expected += f.count;
		off = f.next_offset;
	}
	if (expected > base) {
		w->readings += readings;
		if (expected - 1 > w->ckpt.acked_seq)
			w->unacked += expected - 1 - MAX(w->ckpt.acked_seq, base - 1);
	}
	if (w->verbose)
		printf("%s: %s, seq %" PRIu64 "..%" PRIu64 ", %" PRIu64 " readings in %" PRIu64
		       " frames%s\n",
		       name, sealed ? "sealed" : "open", base, expected - 1, readings, frames,
		       torn ? ", torn tail after the last frame (normal after a crash)" : "");
	w->prev_last = MAX(w->prev_last, expected - 1);
	if (expected == base)
		w->prev_last = MAX(w->prev_last, h.prev_seq);
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int read_checkpoint(int dir_fd, struct walk *w)
{
	uint8_t buf[2 * QUEUE_CKPT_SLOT_SIZE];
	ssize_t n = 0;
	int fd;

	fd = openat(dir_fd, "ckpt", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		n = pread(fd, buf, sizeof(buf), 0);
		close(fd);
	}
	if (n < 0)
		n = 0;
	w->ckpt_valid = queue_checkpoint_pick_file(buf, (size_t)n, &w->ckpt) >= 0;
	if (!w->ckpt_valid)
		memset(&w->ckpt, 0, sizeof(w->ckpt));
	return 0;
}

/* List the segment bases in dir, sorted. */
static int list_bases(int dir_fd, uint64_t **ret, size_t *ret_n)
{
	uint64_t *bases = NULL;
	size_t n = 0;
	DIR *d;
	int fd = dup(dir_fd);

	if (fd < 0 || !(d = fdopendir(fd))) {
		safe_close(fd);
		return -errno;
	}
	for (struct dirent *de; (de = readdir(d));) {
		uint64_t base;

		if (!queue_segment_name_parse(de->d_name, &base))
			continue;
		bases = xrealloc(bases, (n + 1) * sizeof(*bases));
		bases[n++] = base;
	}
	closedir(d);
	if (n)
		qsort(bases, n, sizeof(*bases), compare_u64);
	*ret = bases;
	*ret_n = n;
	return 0;
}

static int walk_dir(const char *dir, struct walk *w)
{
	uint64_t *bases = NULL;
	size_t n = 0;
	int dir_fd, lock_fd, r;

	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0) {
		fprintf(stderr, "coapgatectl: cannot open \"%s\": %s\n", dir, strerror(errno));
		return CTL_EXIT_IO;
	}
	lock_fd = openat(dir_fd, "LOCK", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (lock_fd >= 0 && flock(lock_fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK)
		fprintf(stderr,
			"coapgatectl: a coapgated uses %s: its newest segment may be "
			"changing\n",
			dir);
	read_checkpoint(dir_fd, w);
	r = list_bases(dir_fd, &bases, &n);
	if (r < 0) {
		fprintf(stderr, "coapgatectl: cannot read \"%s\": %s\n", dir, strerror(-r));
		r = CTL_EXIT_IO;
		goto out;
	}
	if (!w->ckpt_valid && n)
		problem(w, "no valid checkpoint: every reading would be sent again");
	else if (w->verbose && w->ckpt_valid)
		printf("checkpoint: generation %" PRIu64 ", stream %016" PRIx64 ", acked %" PRIu64
		       ", reserved %" PRIu64 ", dropped %" PRIu64 ", lost %" PRIu64 "\n",
		       w->ckpt.generation, w->ckpt.stream_id, w->ckpt.acked_seq,
		       w->ckpt.seq_reserved, w->ckpt.dropped_total, w->ckpt.lost_total);

	for (size_t i = 0; i < n; i++) {
		char name[64];
		struct stat st;
		void *img;
		int fd;

		queue_segment_name(name, sizeof(name), bases[i], false);
		fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			problem(w, "%s: not a readable regular file", name);
			safe_close(fd);
			continue;
		}
		if (st.st_size == 0) {
			problem(w, "%s: empty", name);
			close(fd);
			continue;
		}
		img = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		close(fd);
		if (img == MAP_FAILED) {
			problem(w, "%s: cannot map: %s", name, strerror(errno));
			continue;
		}
		walk_segment(w, name, bases[i], img, (size_t)st.st_size, i + 1 == n);
		munmap(img, (size_t)st.st_size);
	}
	r = 0;
out:
	free(bases);
	safe_close(lock_fd);
	close(dir_fd);
	return r;
}

static int usage(FILE *f, int status)
{
	fprintf(f, "Usage: coapgatectl queue verify [-q] DIR\n"
		   "       coapgatectl queue dump [--unacked] DIR\n\n"
		   "verify  check every segment and the checkpoint of the queue in DIR (for\n"
		   "        example /var/lib/coapgate/queue); exit 0 when nothing durable is\n"
		   "        damaged, 1 when something is (each problem is listed)\n"
		   "dump    print the readings on disk in seq order as JSON lines:\n"
		   "        {\"seq\":N,\"topic\":...,\"ts\":ms,\"fields\":{...}}\n"
		   "        --unacked: only those not yet acknowledged by 1NCE OS\n");
	return status;
}

int ctl_queue(int argc, char **argv)
{
	static const struct option options[] = {
		{ "unacked", no_argument, NULL, 'u' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct walk *w;
	const char *cmd;
	int c, r;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return usage(argc < 2 ? stderr : stdout, argc < 2 ? CTL_EXIT_USAGE : 0);
	cmd = argv[1];
	if (strcmp(cmd, "verify") && strcmp(cmd, "dump")) {
		fprintf(stderr, "coapgatectl queue: unknown command \"%s\"\n", cmd);
		return usage(stderr, CTL_EXIT_USAGE);
	}
	w = xcalloc(1, sizeof(*w));
	w->dump = !strcmp(cmd, "dump");
	w->verbose = !w->dump;
	w->report = w->dump ? stderr : stdout;
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "uqh", options, NULL)) >= 0) {
		switch (c) {
		case 'u':
			w->unacked_only = true;
			break;
		case 'q':
			w->verbose = false;
			break;
		case 'h':
			free(w);
			return usage(stdout, 0);
		default:
			free(w);
			return usage(stderr, CTL_EXIT_USAGE);
		}
	}
	if (optind + 1 != argc - 1 || (w->unacked_only && !w->dump)) {
		free(w);
		return usage(stderr, CTL_EXIT_USAGE);
	}
	r = walk_dir(argv[optind + 1], w);
	if (r == 0 && !w->dump)
		printf("%" PRIu64 " readings on disk, %" PRIu64 " unacknowledged, %" PRIu64
		       " lost to damage: %s\n",
		       w->readings, w->unacked, w->lost, w->damage ? "DAMAGED" : "intact");
	if (r == 0 && w->damage)
		r = CTL_EXIT_DAMAGE;
	free(w);
	return r;
}
