// SPDX-License-Identifier: MIT
/*
 * queue_bench: what the disk queue costs, measured through its API on a real disk.
 *
 *   (a) durable appends per second: one producer appends 3-field readings (f64, one
 *       topic) with the daemon's default queue settings; a reading counts once
 *       queue_wait_durable() has confirmed it;
 *   (b) bytes on disk per reading;
 *   (c) read + ack throughput of the consumer (queue_reader, queue_read, queue_ack),
 *       with a cold page cache when the kernel lets us drop it, and warm;
 *   (d) time from process start to ready (queue_open() returned) for a fresh process
 *       opening a full 1 GiB queue, warm and with the page cache dropped;
 *   (e) peak RSS of a process that opens an empty queue and of one that opens the
 *       full queue.
 * Everything it prints starts with the command line and the machine, so that a figure
 * can be traced to what made it (docs/BENCHMARKS.md). Not a test: it asserts nothing
 * beyond the readings coming back intact.
 *
 *   queue_bench [-d DIR] [-n READINGS] [-r REPEAT] [-C] [-k]
 *
 * DIR (default /var/tmp) gets a directory queue-bench.<pid> that is removed at the end
 * unless -k. Put it on the disk you want to measure, not on tmpfs. `queue_bench --open
 * QUEUE_DIR` is the child that (d) and (e) run.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "queue.h"
#include "util.h"

#define MIB ((uint64_t)1 << 20)

static const char *bench_argv0;

static double seconds_since(uint64_t start_usec)
{
	return (double)(now_monotonic_usec() - start_usec) / 1e6;
}

/* The daemon's own defaults for the queue group, from an empty configuration file. */
static int default_queue_options(const char *scratch_dir, struct queue_options *ret)
{
	char *path = xasprintf("%s/defaults.conf", scratch_dir);
	struct config *c = NULL;
	FILE *f = fopen(path, "we");
	int r;

	if (!f) {
		r = -errno;
		fprintf(stderr, "cannot create %s: %s\n", path, strerror(errno));
		free(path);
		return r;
	}
	fclose(f);
	r = config_load(path, scratch_dir, &c);
	unlink(path);
	free(path);
	if (r < 0)
		return r;
	*ret = (struct queue_options){
		.segment_size = c->settings.queue.segment_size,
		.max_size = c->settings.queue.max_size,
		.min_free = c->settings.queue.min_free,
		.commit_interval_usec = c->settings.queue.commit_interval_usec,
		.commit_bytes = c->settings.queue.commit_bytes,
		.checkpoint_interval_usec = c->settings.queue.checkpoint_interval_usec,
		.block_timeout_usec = c->settings.queue.block_timeout_usec,
		.when_full = (enum queue_when_full)c->settings.queue.when_full,
	};
	config_free(c);
	return 0;
}

/* ---- the machine ---- */

static void print_machine(const char *dir)
{
	char line[512], model[256] = "unknown";
	struct utsname u;
	struct statfs sfs;
	const char *fs = "other";
	FILE *f;

	f = fopen("/proc/cpuinfo", "re");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
			snprintf(model, sizeof(model), "%s", strchr(line, ':') + 2);
			model[strcspn(model, "\n")] = 0;
			break;
		}
	if (f)
		fclose(f);
	uname(&u);
	if (statfs(dir, &sfs) == 0) {
		switch ((unsigned long)sfs.f_type) {
		case 0xEF53:
			fs = "ext2/3/4";
			break;
		case 0x58465342:
			fs = "xfs";
			break;
		case 0x9123683E:
			fs = "btrfs";
			break;
		case 0x01021994:
			fs = "tmpfs (not a disk: figures mean little)";
			break;
		case 0x794c7630:
			fs = "overlayfs";
			break;
		}
	}
	printf("machine: %ld CPUs online, %s, kernel %s %s, %s on %s\n",
	       sysconf(_SC_NPROCESSORS_ONLN), model, u.sysname, u.release, dir, fs);
}

/* ---- (a) durable appends ---- */

struct append_result {
	uint64_t readings;
	uint64_t refused;
	double append_seconds;	/* first append to last append returned */
	double durable_seconds; /* first append to the last one confirmed durable */
	uint64_t commits;
};

static void make_reading(uint64_t i, int64_t ts, struct cg_field fields[3], struct cg_reading *ret)
{
	fields[0] = (struct cg_field){ "temperature",
				       CG_FIELD_F64,
				       { .f64 = 20.0 + (double)(i % 1000) * 0.01 } };
	fields[1] = (struct cg_field){ "humidity",
				       CG_FIELD_F64,
				       { .f64 = 40.0 + (double)(i % 777) * 0.05 } };
	fields[2] = (struct cg_field){ "pressure",
				       CG_FIELD_F64,
				       { .f64 = 1013.25 - (double)(i % 333) * 0.1 } };
	*ret = (struct cg_reading){
		.timestamp_ms = ts, .topic = "plant/line1/sensor", .fields = fields, .n_fields = 3
	};
}

/*
 * Append n readings (n == 0: until the queue is full) from this thread, then wait until
 * the last accepted one is durable.
 */
static int append_readings(struct queue *q, uint64_t n, struct append_result *ret)
{
	struct cg_field fields[3];
	struct cg_reading r;
	struct queue_stats st;
	uint64_t start = now_monotonic_usec(), last_seq = 0, accepted = 0, refused = 0;
	int64_t ts = now_realtime_ms();

	for (uint64_t i = 0; n == 0 || i < n; i++) {
		uint64_t seq;
		int k;

		/* A fresh wall-clock millisecond every 256 readings: the cost of the clock
		 * is not what this measures, a changing timestamp is. */
		if ((i & 255) == 0)
			ts = now_realtime_ms();
		make_reading(i, ts, fields, &r);
		k = queue_append(q, &r, &seq);
		if (k == 0) {
			accepted++;
			last_seq = seq;
			continue;
		}
		refused++;
		if (n == 0) {
			queue_get_stats(q, &st);
			if (st.full)
				break;
		}
	}
	ret->append_seconds = seconds_since(start);
	if (last_seq && queue_wait_durable(q, last_seq, 120 * USEC_PER_SEC) < 0) {
		fprintf(stderr, "seq %" PRIu64 " not durable after 120 s\n", last_seq);
		return -ETIMEDOUT;
	}
	ret->durable_seconds = seconds_since(start);
	ret->readings = accepted;
	ret->refused = refused;
	queue_get_stats(q, &st);
	ret->commits = st.commits;
	return 0;
}

/* ---- (b) size on disk ---- */

struct disk_usage {
	uint64_t bytes;	    /* file sizes of the segments holding data */
	uint64_t allocated; /* their allocated blocks */
	unsigned segments;
};

/* Segments of dir except the one with the highest base (the new, empty tail). */
static void data_segments_usage(const char *dir, struct disk_usage *ret)
{
	char last[256] = "";
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat st;
	int dfd;

	*ret = (struct disk_usage){ 0 };
	if (!d)
		return;
	dfd = dirfd(d);
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "seg-", 4) && strcmp(de->d_name, last) > 0)
			snprintf(last, sizeof(last), "%s", de->d_name);
	rewinddir(d);
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "seg-", 4) || !strcmp(de->d_name, last) ||
		    fstatat(dfd, de->d_name, &st, 0) < 0)
			continue;
		ret->bytes += (uint64_t)st.st_size;
		ret->allocated += (uint64_t)st.st_blocks * 512;
		ret->segments++;
	}
	closedir(d);
}

/* ---- (c) read and ack ---- */

struct read_result {
	uint64_t readings;
	double seconds;
};

/* Read everything durable; ack every ack_every readings (0: never). */
static int read_all(struct queue *q, struct queue_reader *reader, uint64_t expect,
		    uint64_t ack_every, struct read_result *ret)
{
	uint64_t start = now_monotonic_usec(), prev = 0, got = 0, seq;
	struct cg_reading r;
	int k;

	while ((k = queue_read(reader, &seq, &r)) > 0) {
		if (seq <= prev || r.n_fields != 3 || r.fields[0].type != CG_FIELD_F64) {
			fprintf(stderr, "bad reading at seq %" PRIu64 "\n", seq);
			ret->seconds = seconds_since(start);
			ret->readings = got;
			return -EBADMSG;
		}
		prev = seq;
		got++;
		if (ack_every && got % ack_every == 0)
			queue_ack(q, seq);
	}
	ret->seconds = seconds_since(start);
	ret->readings = got;
	if (k < 0) {
		fprintf(stderr, "queue_read: %s\n", strerror(-k));
		return k;
	}
	if (ack_every && prev)
		queue_ack(q, prev);
	if (got != expect) {
		fprintf(stderr, "read %" PRIu64 " readings, expected %" PRIu64 "\n", got, expect);
		return -EBADMSG;
	}
	return 0;
}

/* ---- (d), (e): a fresh process opens a queue ---- */

static bool drop_caches(void)
{
	int fd;
	bool ok;

	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ok = write(fd, "3\n", 2) == 2;
	close(fd);
	return ok;
}

static long status_kb(const char *key)
{
	char line[256];
	size_t len = strlen(key);
	long v = -1;
	FILE *f = fopen("/proc/self/status", "re");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, len) && line[len] == ':') {
			v = strtol(line + len + 1, NULL, 10);
			break;
		}
	if (f)
		fclose(f);
	return v;
}

/* The child: open dir with the default options, report, close. */
static int child_open(const char *dir)
{
	uint64_t main_usec = now_monotonic_usec(), open_usec, ready_usec;
	struct queue_options o;
	struct queue *q;
	char *parent = xstrdup(dir);
	int r;

	*strrchr(parent, '/') = 0;
	r = default_queue_options(parent, &o);
	free(parent);
	if (r < 0)
		return 1;
	o.dir = dir;
	open_usec = now_monotonic_usec();
	r = queue_open(&o, &q);
	if (r < 0)
		return 1;
	ready_usec = now_monotonic_usec();
	printf("%" PRIu64 " %" PRIu64 " %" PRIu64 " %ld %ld\n", main_usec, ready_usec - open_usec,
	       ready_usec, status_kb("VmHWM"), status_kb("VmRSS"));
	fflush(stdout);
	queue_close(q);
	return 0;
}

struct open_result {
	double start_to_ready_ms; /* fork() in the parent to queue_open() returned */
	double open_ms;		  /* queue_open() alone */
	long hwm_kb, rss_kb;	  /* VmHWM and VmRSS right after queue_open() returned */
};

static int spawn_open(const char *dir, struct open_result *ret)
{
	uint64_t fork_usec, main_usec, open_usec, ready_usec;
	char buf[512];
	int pipefd[2], status;
	ssize_t n;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	fork_usec = now_monotonic_usec();
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		dup2(pipefd[1], STDOUT_FILENO);
		execl("/proc/self/exe", bench_argv0, "--open", dir, (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	n = read(pipefd[0], buf, sizeof(buf) - 1);
	close(pipefd[0]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
	    n <= 0)
		return -EIO;
	buf[n] = 0;
	if (sscanf(buf, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %ld %ld", &main_usec, &open_usec,
		   &ready_usec, &ret->hwm_kb, &ret->rss_kb) != 5)
		return -EBADMSG;
	ret->start_to_ready_ms = (double)(ready_usec - fork_usec) / 1e3;
	ret->open_ms = (double)open_usec / 1e3;
	return 0;
}

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Open dir repeat times in fresh processes; print min/median/max. */
static int report_opens(const char *what, const char *dir, unsigned repeat, bool cold,
			struct open_result *ret_last)
{
	double ready[64], open_ms[64];
	struct open_result o = { 0 };

	if (repeat > 64)
		repeat = 64;
	for (unsigned i = 0; i < repeat; i++) {
		if (cold && !drop_caches())
			return -EPERM;
		if (spawn_open(dir, &o) < 0) {
			fprintf(stderr, "the child failed to open %s\n", dir);
			return -EIO;
		}
		ready[i] = o.start_to_ready_ms;
		open_ms[i] = o.open_ms;
	}
	qsort(ready, repeat, sizeof(double), compare_doubles);
	qsort(open_ms, repeat, sizeof(double), compare_doubles);
	printf("(d) %s: process start to ready %.1f / %.1f / %.1f ms (min / median / max of "
	       "%u), queue_open alone %.1f / %.1f / %.1f ms\n",
	       what, ready[0], ready[repeat / 2], ready[repeat - 1], repeat, open_ms[0],
	       open_ms[repeat / 2], open_ms[repeat - 1]);
	if (ret_last)
		*ret_last = o;
	return 0;
}

/* ---- main ---- */

static int run_rm(const char *path)
{
	char *cmd = xasprintf("rm -rf -- '%s'", path);
	int r = system(cmd);

	free(cmd);
	return r;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: queue_bench [-d DIR] [-n READINGS] [-r REPEAT] [-k]\n"
		   "  -d DIR       where to put the queues (default /var/tmp; not tmpfs)\n"
		   "  -n READINGS  readings for (a)-(c) (default 20000000)\n"
		   "  -r REPEAT    fresh-process opens per figure of (d) (default 5)\n"
		   "  -C           skip (c), reading the queue back\n"
		   "  -k           keep the queues afterwards\n");
}

int main(int argc, char **argv)
{
	const char *base_dir = "/var/tmp";
	uint64_t n = 20000000;
	unsigned repeat = 5;
	bool keep = false, skip_read = false;
	struct queue_options defaults, o;
	struct append_result a;
	struct read_result rd;
	struct disk_usage du;
	struct queue_stats st;
	struct queue_reader *reader;
	struct open_result empty_open, full_open;
	struct queue *q;
	char *work, *dir_a, *dir_full, *dir_empty;
	bool cold_ok;
	int opt, r;

	bench_argv0 = argv[0];
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_setup(LOG_TARGET_STDERR);
	log_set_max_level(LOG_WARNING);
	if (argc == 3 && !strcmp(argv[1], "--open"))
		return child_open(argv[2]);

	while ((opt = getopt(argc, argv, "d:n:r:Ckh")) != -1) {
		switch (opt) {
		case 'd':
			base_dir = optarg;
			break;
		case 'n':
			n = strtoull(optarg, NULL, 10);
			break;
		case 'r':
			repeat = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'C':
			skip_read = true;
			break;
		case 'k':
			keep = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (n == 0 || repeat == 0) {
		usage(stderr);
		return 2;
	}

	printf("command:");
	for (int i = 0; i < argc; i++)
		printf(" %s", argv[i]);
	printf("\n");
	print_machine(base_dir);

	work = xasprintf("%s/queue-bench.%d", base_dir, (int)getpid());
	if (mkdir(work, 0700) < 0) {
		fprintf(stderr, "cannot create %s: %s\n", work, strerror(errno));
		return 1;
	}
	dir_a = xasprintf("%s/append", work);
	dir_full = xasprintf("%s/full", work);
	dir_empty = xasprintf("%s/empty", work);
	if (default_queue_options(work, &defaults) < 0)
		return 1;
	printf("queue defaults: segment_size %" PRIu64 " MiB, max_size %" PRIu64
	       " MiB, min_free %" PRIu64 " MiB, commit_interval %" PRIu64
	       " ms, commit_bytes %" PRIu64 " KiB, checkpoint_interval %" PRIu64 " ms\n",
	       defaults.segment_size / MIB, defaults.max_size / MIB, defaults.min_free / MIB,
	       defaults.commit_interval_usec / 1000, defaults.commit_bytes / 1024,
	       defaults.checkpoint_interval_usec / 1000);

	/* (a): the defaults, but room for every reading and refusals rather than drops. */
	o = defaults;
	o.dir = dir_a;
	o.max_size = 1ULL << 40;
	o.when_full = QUEUE_DROP_NEWEST;
	if (queue_open(&o, &q) < 0)
		return 1;
	if (append_readings(q, n, &a) < 0)
		return 1;
	queue_close(q);
	printf("(a) durable appends: %" PRIu64 " readings (3 f64 fields, one topic, one "
	       "producer) durable in %.2f s: %.0f readings/s (appending alone took %.2f s, "
	       "%.0f/s; %" PRIu64 " commits, %.0f readings each; %" PRIu64 " refused)\n",
	       a.readings, a.durable_seconds, (double)a.readings / a.durable_seconds,
	       a.append_seconds, (double)a.readings / a.append_seconds, a.commits,
	       a.commits ? (double)a.readings / (double)a.commits : 0.0, a.refused);

	/* (c) on the same queue; recovery seals its tail, which makes (b) measurable. */
	if (queue_open(&o, &q) < 0)
		return 1;
	data_segments_usage(dir_a, &du);
	printf("(b) size on disk: %" PRIu64 " bytes in %u segment files for %" PRIu64
	       " readings: %.2f bytes/reading (%.2f without the 4 KiB segment headers; "
	       "allocated %.2f)\n",
	       du.bytes, du.segments, a.readings, (double)du.bytes / (double)a.readings,
	       (double)(du.bytes - 4096ULL * du.segments) / (double)a.readings,
	       (double)du.allocated / (double)a.readings);
	if (skip_read)
		goto read_done;
	queue_reader_new(q, &reader);
	cold_ok = drop_caches();
	r = read_all(q, reader, a.readings, 0, &rd);
	if (r == 0)
		printf("(c) read, %s page cache, no acks: %" PRIu64 " readings in %.2f s: %.0f "
		       "readings/s\n",
		       cold_ok ? "cold (dropped)" : "warm (drop_caches not permitted)", rd.readings,
		       rd.seconds, (double)rd.readings / rd.seconds);
	else
		printf("(c) read FAILED: %" PRIu64 " of %" PRIu64 " readings came back in %.2f s "
		       "(see the queue's log above)\n",
		       rd.readings, a.readings, rd.seconds);
	queue_reader_rewind(reader);
	r = read_all(q, reader, a.readings, 64, &rd);
	if (r == 0)
		printf("(c) read + ack every 64 readings, warm page cache: %" PRIu64
		       " readings in %.2f s: %.0f readings/s\n",
		       rd.readings, rd.seconds, (double)rd.readings / rd.seconds);
	else
		printf("(c) read + ack FAILED: %" PRIu64 " of %" PRIu64 " readings came back in "
		       "%.2f s\n",
		       rd.readings, a.readings, rd.seconds);
	queue_reader_free(reader);
read_done:
	queue_close(q);
	run_rm(dir_a);

	/* (d): fill a queue with the defaults (refusing once full, so that it stays
	 * full), then open it in fresh processes. */
	o = defaults;
	o.dir = dir_full;
	o.when_full = QUEUE_DROP_NEWEST;
	if (queue_open(&o, &q) < 0)
		return 1;
	if (append_readings(q, 0, &a) < 0)
		return 1;
	queue_get_stats(q, &st);
	queue_close(q);
	printf("(d) full queue: %" PRIu64 " readings, %" PRIu64 " segments, %.1f MiB "
	       "allocated (max_size %" PRIu64 " MiB), built in %.1f s\n",
	       a.readings, st.segments, (double)st.used_bytes / MIB, defaults.max_size / MIB,
	       a.durable_seconds);
	r = report_opens("full 1 GiB queue, first open after the build (its tail unsealed)",
			 dir_full, 1, false, NULL);
	if (r == 0)
		r = report_opens("full 1 GiB queue, warm page cache", dir_full, repeat, false,
				 &full_open);
	if (r == 0) {
		r = report_opens("full 1 GiB queue, page cache dropped before each", dir_full,
				 repeat, true, NULL);
		if (r == -EPERM) {
			printf("(d) page cache: cannot write /proc/sys/vm/drop_caches, no cold "
			       "figure\n");
			r = 0;
		}
	}
	if (r < 0)
		return 1;

	/* (e) */
	if (spawn_open(dir_empty, &empty_open) < 0 || spawn_open(dir_empty, &empty_open) < 0)
		return 1;
	/* VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec(), so the child's would
	 * include the forked copy of this process. */
	printf("(e) peak RSS (VmHWM) after queue_open: empty queue %ld KiB, full 1 GiB "
	       "queue %ld KiB (%+.1f %%); VmRSS %ld vs %ld KiB\n",
	       empty_open.hwm_kb, full_open.hwm_kb,
	       100.0 * (double)(full_open.hwm_kb - empty_open.hwm_kb) / (double)empty_open.hwm_kb,
	       empty_open.rss_kb, full_open.rss_kb);

	if (keep)
		printf("kept %s\n", work);
	else
		run_rm(work);
	free(dir_a);
	free(dir_full);
	free(dir_empty);
	free(work);
	return 0;
}
