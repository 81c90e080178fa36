// SPDX-License-Identifier: MIT
/*
 * The disk queue when the disk or its bound is full (queue-design §7.6), for each
 * when_full policy:
 *
 *   drop_oldest  appends go on; the oldest segments are deleted, counted in
 *                dropped_oldest and logged; usage stays within the bound and free
 *                space above min_free; the newest readings are kept and readable, in
 *                order; a restart finds nothing corrupt;
 *   drop_newest  appends fail at once with -ENOSPC, counted in dropped_newest and
 *                logged; once readings are acked and their segments deleted, appends
 *                work again;
 *   block        queue_append() waits block_timeout, then fails with -EAGAIN (the
 *                reading is the caller's again: counted in block_timeouts, not as
 *                dropped); a waiting append goes through as soon as space returns.
 *
 * The file system bound is a 6 MiB tmpfs mounted in a private mount namespace of this
 * process (as root, or as root of a new user namespace like unshare -Urm; skipped when
 * neither works); the max_size bound uses $TMPDIR. The last cases start the queue on a
 * file system that a ballast file leaves too little room (or none), and make the
 * preallocation of a new segment itself fail with ENOSPC: this binary's
 * posix_fallocate() fills the tmpfs with the ballast just before the real call.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include "queue_test_util.h"

#include "capture.h"
#include "log.h"

#define CASE_TIMEOUT_SEC 60
#define TMPFS_SIZE	 (6 * QT_MIB)
#define SLEN		 400 /* about 420 bytes a reading on disk */

static bool can_mount;
static int real_stderr = -1;

struct fx {
	struct qt_dir dir;
	bool mounted;
	struct queue_options o;
	struct qt_items log;
	struct qt_items got; /* freed by the teardown, also when a check fails */
	struct capture cap;
	bool capturing;
};

static void on_alarm(int sig)
{
	static const char msg[] = "test_queue_full: a case took too long (hang?); aborting\n";

	(void)sig;
	if (write(real_stderr, msg, sizeof(msg) - 1) < 0) {
		/* Nothing more to do: the process ends anyway. */
	}
	_exit(1);
}

/* ---- posix_fallocate() with a ballast ---- */

static char ballast_path[PATH_MAX];
static atomic_bool ballast_armed;
static atomic_int ballast_hits;

/* Fill the file system that holds ballast_path, to the last byte but leave. */
static void fill_with_ballast(uint64_t leave)
{
	static const uint8_t chunk[64 * 1024];
	int fd = open(ballast_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	struct stat st;

	if (fd < 0)
		return;
	for (size_t size = sizeof(chunk); size >= 512; size /= 2)
		while (write(fd, chunk, size) == (ssize_t)size)
			;
	if (leave && fstat(fd, &st) == 0)
		(void)ftruncate(fd, st.st_size > (off_t)leave ? st.st_size - (off_t)leave : 0);
	close(fd);
}

/* Does fd's path end with suffix? */
static bool fd_path_ends_with(int fd, const char *suffix)
{
	char link[64], target[PATH_MAX];
	size_t len = strlen(suffix);
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = 0;
	return (size_t)n > len && strcmp(target + n - len, suffix) == 0;
}

static bool is_segment_tmp(int fd)
{
	return fd_path_ends_with(fd, ".q.tmp");
}

/*
 * The queue's calls land here: this definition in the test binary takes the place of
 * libc's for the statically linked queue. When armed, the preallocation of a new
 * segment finds the file system just filled by a ballast file and really fails.
 */
int posix_fallocate(int fd, off_t offset, off_t len)
{
	int (*real)(int, off_t, off_t);

	*(void **)&real = dlsym(RTLD_NEXT, "posix_fallocate");
	if (!real)
		return ENOSYS;
	if (atomic_load(&ballast_armed) && is_segment_tmp(fd)) {
		fill_with_ballast(0);
		atomic_fetch_add(&ballast_hits, 1);
	}
	return real(fd, offset, len);
}

static atomic_int pwrite_enospc;    /* frame writes still to fail */
static atomic_uint pwrite_delay_ms; /* before such a failure */

/*
 * Likewise for pwrite(): when armed, the write of a frame (not of a seal, which is
 * smaller) to a segment fails with ENOSPC, as it can on a copy-on-write file system
 * despite the preallocation.
 */
ssize_t pwrite(int fd, const void *buf, size_t len, off_t offset)
{
	ssize_t (*real)(int, const void *, size_t, off_t);

	*(void **)&real = dlsym(RTLD_NEXT, "pwrite");
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	if (atomic_load(&pwrite_enospc) > 0 && len > 56 && fd_path_ends_with(fd, ".q") &&
	    atomic_fetch_sub(&pwrite_enospc, 1) > 0) {
		qt_sleep_usec(atomic_load(&pwrite_delay_ms) * QT_MSEC);
		errno = ENOSPC;
		return -1;
	}
	return real(fd, buf, len, offset);
}

/* ---- fixtures ---- */

static int write_proc(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		r = -errno;
	close(fd);
	return r;
}

/* Without root: become root of a new user namespace (unshare -Urm), if allowed. */
static int enter_user_namespace(void)
{
	char map[64];
	uid_t uid = geteuid();
	gid_t gid = getegid();

	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
		return -errno;
	(void)write_proc("/proc/self/setgroups", "deny");
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
	if (write_proc("/proc/self/uid_map", map) < 0)
		return -EPERM;
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
	return write_proc("/proc/self/gid_map", map);
}

static int group_setup(void **state)
{
	int r = 0;

	(void)state;
	/* Mounts made here stay in this process. */
	if (geteuid() != 0)
		r = enter_user_namespace();
	else if (unshare(CLONE_NEWNS) < 0)
		r = -errno;
	if (r == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		r = -errno;
	if (r < 0) {
		fprintf(stderr,
			"test_queue_full: no private mount namespace (%s): tmpfs cases skip\n",
			strerror(-r));
		return 0;
	}
	can_mount = true;
	return 0;
}

static void fx_capture(struct fx *f)
{
	capture_start(&f->cap);
	f->capturing = true;
}

static char *fx_captured(struct fx *f)
{
	f->capturing = false;
	return capture_stop(&f->cap);
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	qt_dir_make(&f->dir);
	f->o = qt_options(f->dir.q);
	f->o.max_size = 64 * QT_MIB; /* the file system is the bound unless a case says */
	/* With the drop policies this only bounds the wait for a full memory batch (a
	 * slow fdatasync), which must not pass for the queue being full here. */
	f->o.block_timeout_usec = 2 * QT_SEC;
	alarm(CASE_TIMEOUT_SEC);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	alarm(0);
	atomic_store(&ballast_armed, false);
	atomic_store(&pwrite_enospc, 0);
	atomic_store(&pwrite_delay_ms, 0);
	if (f->capturing) {
		char *text = fx_captured(f);
		size_t len = strlen(text);

		fprintf(stderr, "--- log captured when the case failed ---\n%s---\n",
			len > 8000 ? text + len - 8000 : text);
		free(text);
	}
	if (f->mounted)
		(void)umount2(f->dir.root, MNT_DETACH);
	qt_rm_rf(f->dir.root);
	qt_items_free(&f->log);
	qt_items_free(&f->got);
	free(f);
	return 0;
}

/* Put the case's directory on a fresh tmpfs of TMPFS_SIZE, or skip the case. */
static void fx_mount(struct fx *f)
{
	char opts[64];

	if (!can_mount)
		skip();
	snprintf(opts, sizeof(opts), "size=%llu,mode=0700", (unsigned long long)TMPFS_SIZE);
	if (mount("tmpfs", f->dir.root, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0) {
		fprintf(stderr, "test_queue_full: cannot mount a tmpfs (%s): skipped\n",
			strerror(errno));
		skip();
	}
	f->mounted = true;
	snprintf(ballast_path, sizeof(ballast_path), "%s/ballast", f->dir.root);
}

static uint64_t fs_free(const char *path)
{
	struct statvfs v;

	assert_int_equal(statvfs(path, &v), 0);
	return (uint64_t)v.f_bavail * v.f_frsize;
}

/* Allocated bytes under dir, as du counts them. */
static uint64_t du(const char *dir)
{
	uint64_t total = 0;
	DIR *d = opendir(dir);

	assert_non_null(d);
	for (struct dirent *de; (de = readdir(d));) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (lstat(qt_path(dir, de->d_name), &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			total += du(qt_path(dir, de->d_name));
		total += (uint64_t)st.st_blocks * 512;
	}
	closedir(d);
	return total;
}

/* Append one reading; 0 or the error, the reading logged only when accepted. */
static int append_one(struct queue *q, struct qt_items *log, size_t slen)
{
	struct qt_reading m;
	uint64_t n = log->len ? log->v[log->len - 1].n + 1 : 1, seq = 0;
	int r = queue_append(q, qt_make(&m, n, slen), &seq);

	if (r == 0)
		qt_items_push(log, seq, n, slen);
	return r;
}

static void wait_durable_all(struct queue *q, const struct qt_items *log)
{
	if (log->len)
		assert_int_equal(queue_wait_durable(q, log->v[log->len - 1].seq, 10 * QT_SEC), 0);
}

/* Wait until the queue's full flag is want (the committer notices within about
 * checkpoint_interval). */
static bool wait_full(struct queue *q, bool want)
{
	uint64_t t0 = qt_now_usec();
	struct queue_stats st;

	for (;;) {
		queue_get_stats(q, &st);
		if (st.full == want)
			return true;
		if (qt_now_usec() - t0 > 5 * QT_SEC)
			return false;
		qt_sleep_usec(5 * QT_MSEC);
	}
}

/* Assert that got holds log's readings in order, each once, possibly with gaps
 * (dropped ones), and return how many of log are missing. */
static size_t assert_ordered_subset(const struct qt_items *got, const struct qt_items *log)
{
	size_t j = 0;

	assert_int_equal(got->bad, 0);
	assert_int_equal(got->error, 0);
	for (size_t i = 0; i < got->len; i++) {
		while (j < log->len && log->v[j].seq < got->v[i].seq)
			j++;
		if (j == log->len || log->v[j].seq != got->v[i].seq || log->v[j].n != got->v[i].n ||
		    log->v[j].slen != got->v[i].slen)
			fail_msg("delivery %zu (seq %" PRIu64 ", n %" PRIu64
				 ") is not the next appended reading",
				 i, got->v[i].seq, got->v[i].n);
		j++;
	}
	return log->len - got->len;
}

/* ---- drop_oldest ---- */

/*
 * Keep appending 3x the bound while a slow consumer reads and acks a little after
 * every batch. Checks the bound after each batch with check_bound.
 */
static void fill_dropping_oldest(struct fx *f, void (*check_bound)(struct fx *f, struct queue *q))
{
	struct qt_items got = { 0 }, after = { 0 };
	struct queue_reader *rd;
	struct queue_stats st;
	struct queue *q;
	uint64_t bound = f->mounted ? TMPFS_SIZE : f->o.max_size, appended_bytes = 0, acked;
	size_t missing, unacked;
	char *log;

	fx_capture(f);
	q = qt_open(&f->o);
	assert_int_equal(queue_reader_new(q, &rd), 0);
	for (unsigned round = 0; appended_bytes < 3 * bound; round++) {
		size_t before = got.len;

		for (int i = 0; i < 300; i++)
			if (append_one(q, &f->log, SLEN) != 0)
				fail_msg("drop_oldest refused a reading (%zu appended)",
					 f->log.len);
		appended_bytes += 300 * (SLEN + 20);
		if (round % 4 == 3)
			wait_durable_all(q, &f->log);
		/* The consumer is slower than the producers. */
		qt_drain(rd, &got, got.len + 40);
		if (got.len > before)
			queue_ack(q, got.v[got.len - 1].seq);
		check_bound(f, q);
		queue_get_stats(q, &st);
		if (st.full)
			fail_msg("drop_oldest queue full (%zu appended)", f->log.len);
	}
	wait_durable_all(q, &f->log);
	unacked = got.len;
	qt_drain(rd, &got, SIZE_MAX);
	unacked = got.len - unacked + 40;
	queue_get_stats(q, &st);
	acked = st.acked_seq;
	queue_reader_free(rd);
	queue_close(q);
	log = fx_captured(f);

	/* Everything delivered came in order and intact; the newest is there; every
	 * reading never delivered was dropped and counted. So may be readings delivered
	 * but not acked yet when their segment went: those of the last read, or all of
	 * the final drain (the committer may still roll after the last commit). */
	missing = assert_ordered_subset(&got, &f->log);
	assert_int_equal(got.v[got.len - 1].seq, f->log.v[f->log.len - 1].seq);
	assert_true(st.dropped_oldest > 0);
	if (st.dropped_oldest < missing || st.dropped_oldest > missing + unacked)
		fail_msg("%zu appended readings were never delivered, dropped_oldest is %" PRIu64,
			 missing, st.dropped_oldest);
	assert_int_equal(st.lost, 0);
	assert_int_equal(st.dropped_newest, 0);
	if (!strstr(log, "dropped") || !strstr(log, "oldest"))
		fail_msg("no drop logged:\n%s", log);
	free(log);

	/* A restart finds nothing damaged: the unacknowledged newest readings again
	 * (fewer when the committer dropped more after the stats above, or the open
	 * itself had to drop to make its new segment). */
	fx_capture(f);
	q = qt_open(&f->o);
	qt_drain_all(q, &after);
	queue_get_stats(q, &st);
	queue_close(q);
	free(fx_captured(f));
	assert_int_equal(st.lost, 0);
	assert_false(qt_exists(qt_path(f->dir.q, "quarantine")));
	assert_true(st.acked_seq >= acked);
	qt_assert_items(&after, &f->log, st.acked_seq, NULL, 0);
	assert_true(after.len > 0);
	qt_items_free(&after);
	qt_items_free(&got);
}

static void check_fs_bound(struct fx *f, struct queue *q)
{
	struct queue_stats st;
	uint64_t free_bytes = fs_free(f->dir.root);

	queue_get_stats(q, &st);
	if (free_bytes < f->o.min_free)
		fail_msg("%" PRIu64 " bytes free, min_free is %" PRIu64, free_bytes, f->o.min_free);
	assert_true(st.used_bytes <= TMPFS_SIZE);
}

static void test_drop_oldest_file_system_full(void **state)
{
	struct fx *f = *state;

	fx_mount(f);
	f->o.when_full = QUEUE_DROP_OLDEST;
	f->o.min_free = QT_MIB / 2;
	fill_dropping_oldest(f, check_fs_bound);
}

static void check_max_size(struct fx *f, struct queue *q)
{
	struct queue_stats st;
	uint64_t used = du(f->dir.q);

	queue_get_stats(q, &st);
	if (st.used_bytes > f->o.max_size || used > f->o.max_size)
		fail_msg("used %" PRIu64 " bytes (du %" PRIu64 "), max_size %" PRIu64,
			 st.used_bytes, used, f->o.max_size);
}

static void test_drop_oldest_max_size(void **state)
{
	struct fx *f = *state;

	f->o.when_full = QUEUE_DROP_OLDEST;
	f->o.max_size = 4 * QT_MIB;
	fill_dropping_oldest(f, check_max_size);
}

/* ---- drop_newest and block ---- */

/* Append until the queue refuses; returns the refused append's duration. */
static uint64_t fill_until_refused(struct fx *f, struct queue *q)
{
	for (unsigned i = 0; i < 1000000; i++) {
		uint64_t t0 = qt_now_usec();
		int r = append_one(q, &f->log, SLEN);

		if (r == -ENOSPC || r == -EAGAIN)
			return qt_now_usec() - t0;
		if (r != 0)
			fail_msg("queue_append() = %d", r);
		if (i % 500 == 499)
			wait_durable_all(q, &f->log);
	}
	fail_msg("the queue never became full");
	return 0;
}

/* Ack everything, wait for the room to come back, then append and read more. */
static void drain_ack_resume(struct fx *f, struct queue *q, struct queue_reader *rd,
			     struct qt_items *got)
{
	qt_drain(rd, got, SIZE_MAX);
	qt_assert_items(got, &f->log, 0, NULL, 0);
	queue_ack(q, got->v[got->len - 1].seq);
	if (!wait_full(q, false))
		fail_msg("no room after acking everything");
	for (int i = 0; i < 10; i++)
		assert_int_equal(append_one(q, &f->log, SLEN), 0);
	wait_durable_all(q, &f->log);
	qt_drain(rd, got, SIZE_MAX);
	qt_assert_items(got, &f->log, 0, NULL, 0);
}

/* Fill until refused; every refusal counted; acking makes room again. */
static void check_drop_newest(struct fx *f, uint64_t bound)
{
	struct qt_items got = { 0 };
	struct queue_reader *rd;
	struct queue_stats st;
	struct queue *q;
	unsigned refused = 1;
	uint64_t t0;
	char *log;

	f->o.when_full = QUEUE_DROP_NEWEST;
	fx_capture(f);
	q = qt_open(&f->o);
	assert_int_equal(queue_reader_new(q, &rd), 0);
	fill_until_refused(f, q);
	t0 = qt_now_usec();
	for (int i = 0; i < 50; i++)
		refused += append_one(q, &f->log, SLEN) == -ENOSPC;
	t0 = qt_now_usec() - t0;
	wait_durable_all(q, &f->log);
	queue_get_stats(q, &st);
	log = fx_captured(f);

	assert_true(st.full);
	/* Refused at once, every one. */
	assert_int_equal(refused, 51);
	if (t0 > QT_SEC)
		fail_msg("50 refusals took %" PRIu64 " us", t0);
	assert_int_equal(st.dropped_newest, refused);
	assert_int_equal(st.dropped_oldest, 0);
	if (st.used_bytes > bound || (!f->mounted && du(f->dir.q) > bound))
		fail_msg("used %" PRIu64 " bytes (du %" PRIu64 "), the bound is %" PRIu64,
			 st.used_bytes, du(f->dir.q), bound);
	if (!strstr(log, "full"))
		fail_msg("the full queue was not logged:\n%s", log);
	free(log);

	/* Every accepted reading is there; acking makes room. */
	fx_capture(f);
	drain_ack_resume(f, q, rd, &got);
	queue_get_stats(q, &st);
	queue_reader_free(rd);
	queue_close(q);
	log = fx_captured(f);
	assert_int_equal(st.lost, 0);
	assert_int_equal(st.dropped_newest, refused);
	if (!strstr(log, "room again"))
		fail_msg("the end of the full state was not logged:\n%s", log);
	free(log);
	qt_items_free(&got);
}

static void test_drop_newest_file_system_full(void **state)
{
	struct fx *f = *state;

	fx_mount(f);
	check_drop_newest(f, TMPFS_SIZE);
}

static void test_drop_newest_max_size(void **state)
{
	struct fx *f = *state;

	f->o.max_size = 4 * QT_MIB;
	check_drop_newest(f, f->o.max_size);
}

struct blocked_append {
	struct fx *f;
	struct queue *q;
	int r;
	uint64_t usec, seq;
	atomic_bool done;
};

static void *blocked_append_main(void *arg)
{
	struct blocked_append *b = arg;
	struct qt_reading m;
	uint64_t t0 = qt_now_usec(), seq = 0;

	b->r = queue_append(b->q, qt_make(&m, 999999, 5), &seq);
	b->usec = qt_now_usec() - t0;
	b->seq = seq;
	atomic_store(&b->done, true);
	return NULL;
}

static void test_block_file_system_full(void **state)
{
	struct fx *f = *state;
	struct blocked_append b = { 0 };
	struct qt_items got = { 0 };
	struct queue_reader *rd;
	struct queue_stats st;
	struct queue *q;
	pthread_t thread;
	uint64_t waited;

	fx_mount(f);
	f->o.when_full = QUEUE_BLOCK;
	f->o.block_timeout_usec = 2 * QT_SEC;
	fx_capture(f);
	q = qt_open(&f->o);
	assert_int_equal(queue_reader_new(q, &rd), 0);
	waited = fill_until_refused(f, q);
	queue_get_stats(q, &st);
	free(fx_captured(f));

	/* Refused only after waiting block_timeout, and counted. */
	if (waited < f->o.block_timeout_usec || waited > f->o.block_timeout_usec + 3 * QT_SEC)
		fail_msg("the refused append took %" PRIu64 " us, block_timeout is %" PRIu64,
			 waited, f->o.block_timeout_usec);
	assert_true(st.full);
	assert_int_equal(st.block_timeouts, 1);
	assert_int_equal(st.dropped_newest, 0);

	/* A producer that waits goes on as soon as there is room. */
	b.f = f;
	b.q = q;
	fx_capture(f);
	assert_int_equal(pthread_create(&thread, NULL, blocked_append_main, &b), 0);
	qt_sleep_usec(100 * QT_MSEC);
	assert_false(atomic_load(&b.done));
	qt_drain(rd, &got, SIZE_MAX);
	queue_ack(q, got.v[got.len - 1].seq);
	pthread_join(thread, NULL);
	free(fx_captured(f));
	assert_int_equal(b.r, 0);
	assert_true(b.usec < f->o.block_timeout_usec);

	qt_assert_items(&got, &f->log, 0, NULL, 0);
	/* The reading that waited is there too. */
	qt_items_push(&f->log, b.seq, 999999, 5);
	assert_int_equal(queue_wait_durable(q, b.seq, 10 * QT_SEC), 0);
	qt_drain(rd, &got, SIZE_MAX);
	qt_assert_items(&got, &f->log, 0, NULL, 0);
	queue_get_stats(q, &st);
	assert_false(st.full);
	assert_int_equal(st.block_timeouts, 1);
	assert_int_equal(st.dropped_newest, 0);
	assert_int_equal(st.lost, 0);
	queue_reader_free(rd);
	fx_capture(f);
	queue_close(q);
	free(fx_captured(f));
	qt_items_free(&got);
}

/* ---- ENOSPC from the preallocation of a segment ---- */

static void test_segment_preallocation_enospc(void **state)
{
	struct fx *f = *state;
	struct qt_items got = { 0 };
	struct queue_reader *rd;
	struct queue_stats st;
	struct queue *q;
	unsigned refused = 0;
	char *log;

	fx_mount(f);
	f->o.when_full = QUEUE_DROP_NEWEST;

	/* Too little room even for the first segment: the queue opens, full. */
	atomic_store(&ballast_armed, false);
	assert_int_equal(mkdir(f->dir.q, 0700), 0);
	fill_with_ballast(256 * 1024);
	fx_capture(f);
	q = qt_open(&f->o);
	queue_get_stats(q, &st);
	refused += append_one(q, &f->log, SLEN) == -ENOSPC;
	log = fx_captured(f);
	assert_true(st.full);
	assert_int_equal(st.segments, 0);
	assert_int_equal(refused, 1);
	free(log);
	assert_int_equal(unlink(ballast_path), 0);
	fx_capture(f);
	refused = wait_full(q, false);
	free(fx_captured(f));
	assert_true(refused);

	/* Now the preallocation of the next segment fails for real. */
	atomic_store(&ballast_armed, true);
	fx_capture(f);
	assert_int_equal(queue_reader_new(q, &rd), 0);
	fill_until_refused(f, q);
	wait_durable_all(q, &f->log);
	queue_get_stats(q, &st);
	log = fx_captured(f);
	assert_true(atomic_load(&ballast_hits) >= 1);
	assert_true(st.full);
	/* No half-made segment is left behind. */
	{
		DIR *d = opendir(f->dir.q);

		assert_non_null(d);
		for (struct dirent *de; (de = readdir(d));)
			if (strstr(de->d_name, ".tmp"))
				fail_msg("%s left behind", de->d_name);
		closedir(d);
	}
	free(log);

	/* Space comes back: everything accepted is readable, appends work again. */
	atomic_store(&ballast_armed, false);
	assert_int_equal(unlink(ballast_path), 0);
	fx_capture(f);
	drain_ack_resume(f, q, rd, &got);
	queue_reader_free(rd);
	queue_close(q);
	free(fx_captured(f));

	/* And nothing on disk is damaged. */
	qt_items_free(&got);
	fx_capture(f);
	q = qt_open(&f->o);
	qt_drain_all(q, &got);
	queue_get_stats(q, &st);
	queue_close(q);
	free(fx_captured(f));
	assert_int_equal(st.lost, 0);
	assert_false(qt_exists(qt_path(f->dir.q, "quarantine")));
	/* The last ten were read but not acked. */
	qt_assert_items(&got, &f->log, f->log.v[f->log.len - 11].seq, NULL, 0);
	qt_items_free(&got);
}

/* A restart on a disk that is full to the last byte: the queue starts (full) with its
 * data readable, and recovers when space returns. */
static void test_open_on_full_disk(void **state)
{
	struct fx *f = *state;
	struct qt_items got = { 0 };
	struct queue_reader *rd;
	struct queue_stats st;
	struct queue *q = NULL;
	char *log;
	int r;

	fx_mount(f);
	f->o.when_full = QUEUE_DROP_NEWEST;
	fx_capture(f);
	q = qt_open(&f->o);
	for (int i = 0; i < 300; i++)
		assert_int_equal(append_one(q, &f->log, SLEN), 0);
	queue_close(q);
	free(fx_captured(f));

	fill_with_ballast(0);
	fx_capture(f);
	r = queue_open(&f->o, &q);
	log = fx_captured(f);
	if (r < 0)
		fail_msg("queue_open() on a full disk = %d:\n%s", r, log);
	free(log);
	queue_get_stats(q, &st);
	assert_true(st.full);
	fx_capture(f);
	assert_int_equal(append_one(q, &f->log, SLEN), -ENOSPC);
	assert_int_equal(queue_reader_new(q, &rd), 0);
	assert_int_equal(unlink(ballast_path), 0);
	drain_ack_resume(f, q, rd, &got);
	queue_reader_free(rd);
	queue_close(q);
	free(fx_captured(f));
	qt_items_free(&got);
}

/* A frame write that fails with ENOSPC loses that batch only: counted as dropped,
 * reported by queue_wait_durable(), never delivered, and not a loss at restart. */
static void test_frame_write_enospc(void **state)
{
	struct fx *f = *state;
	struct qt_items *got = &f->got;
	uint64_t lost[1][2];
	struct queue_stats st;
	struct queue *q;
	char *log;
	int r;

	f->o.when_full = QUEUE_DROP_NEWEST;
	fx_capture(f);
	q = qt_open(&f->o);
	for (int i = 0; i < 10; i++)
		assert_int_equal(append_one(q, &f->log, 20), 0);
	wait_durable_all(q, &f->log);

	atomic_store(&pwrite_enospc, 1);
	for (int i = 0; i < 5; i++)
		assert_int_equal(append_one(q, &f->log, 20), 0);
	r = queue_wait_durable(q, f->log.v[f->log.len - 1].seq, QT_SEC);
	lost[0][0] = f->log.v[10].seq;
	lost[0][1] = f->log.v[14].seq;
	queue_get_stats(q, &st);

	for (int i = 0; i < 5; i++)
		assert_int_equal(append_one(q, &f->log, 20), 0);
	wait_durable_all(q, &f->log);
	qt_drain_all(q, got);
	queue_close(q);
	log = fx_captured(f);

	assert_int_equal(atomic_load(&pwrite_enospc), 0);
	assert_int_equal(st.dropped_newest, 5);
	if (!strstr(log, "dropped"))
		fail_msg("the lost batch was not logged:\n%s", log);
	free(log);
	assert_true(f->log.v[15].seq > lost[0][1]);
	qt_assert_items(got, &f->log, 0, lost, 1);
	qt_items_free(got);

	/* After a restart: the same, nothing counted lost, nothing quarantined. */
	fx_capture(f);
	q = qt_open(&f->o);
	qt_drain_all(q, got);
	queue_get_stats(q, &st);
	queue_close(q);
	free(fx_captured(f));
	qt_assert_items(got, &f->log, 0, lost, 1);
	assert_int_equal(st.lost, 0);
	assert_false(qt_exists(qt_path(f->dir.q, "quarantine")));
	qt_items_free(got);

	/* BUG (queue.c, queue_wait_durable/commit_batch): the ENOSPC path neither wakes
	 * the waiters nor advances anything they wait for, and the unwritten ranges are
	 * only looked at once durable_seq has passed seq; so with no later batch the
	 * producer waits its whole timeout and gets -ETIMEDOUT, not -ENOSPC (queue.h). */
	if (r != -ENOSPC)
		fail_msg("queue_wait_durable() for a batch that could not be written = %d, "
			 "expected -ENOSPC",
			 r);
}

/*
 * The same when the disk is really full, as on a copy-on-write file system where the
 * write fails because there is no room: the queue cannot roll to a new segment either.
 * A batch committed after the failed one (appended while it was being written) is
 * durable, and must still be there after a restart.
 */
static void test_frame_write_enospc_disk_full(void **state)
{
	struct fx *f = *state;
	struct qt_items *got = &f->got;
	uint64_t lost[2][2], dropped;
	struct queue_stats st;
	struct queue *q;
	int r;

	fx_mount(f);
	f->o.when_full = QUEUE_DROP_NEWEST;
	fx_capture(f);
	q = qt_open(&f->o);
	for (int i = 0; i < 10; i++)
		assert_int_equal(append_one(q, &f->log, 20), 0);
	wait_durable_all(q, &f->log);

	/* B: more than commit_bytes, so it goes at once; its write fails after 200 ms,
	 * while C fills the other batch. */
	fill_with_ballast(0);
	atomic_store(&pwrite_delay_ms, 200);
	atomic_store(&pwrite_enospc, 1);
	lost[0][0] = f->log.v[f->log.len - 1].seq + 1;
	for (int i = 0; i < 200; i++)
		assert_int_equal(append_one(q, &f->log, SLEN), 0);
	lost[0][1] = f->log.v[f->log.len - 1].seq;
	qt_sleep_usec(50 * QT_MSEC);
	lost[1][0] = f->log.v[f->log.len - 1].seq + 1;
	for (int i = 0; i < 5; i++)
		assert_int_equal(append_one(q, &f->log, 20), 0);
	lost[1][1] = f->log.v[f->log.len - 1].seq;
	r = queue_wait_durable(q, lost[1][1], 2 * QT_SEC);
	queue_get_stats(q, &st);
	dropped = st.dropped_newest;
	queue_close(q);
	free(fx_captured(f));
	assert_int_equal(atomic_load(&pwrite_enospc), 0);

	/* Room again. */
	assert_int_equal(unlink(ballast_path), 0);
	fx_capture(f);
	q = qt_open(&f->o);
	qt_drain_all(q, got);
	queue_get_stats(q, &st);
	queue_close(q);
	free(fx_captured(f));
	assert_int_equal(st.lost, 0);
	/* The batch that failed was B or its first part (the committer may have taken
	 * it at commit_bytes); it is counted and gone. */
	assert_true(dropped >= 1 && dropped <= 205);
	lost[0][1] = lost[0][0] + dropped - 1;
	if (r == 0) {
		/* The rest, C included, was reported durable: it must come back.
		 * BUG (queue.c, commit_batch): after the failed write the tail is sealed,
		 * the roll fails (no room), and the next batch is written over the seal of
		 * the sealed segment; recovery then finds a frame whose first seq is not the
		 * expected one, cuts the segment there ("torn tail") and the batch, reported
		 * durable, is gone without being counted. */
		qt_assert_items(got, &f->log, 0, lost, 1);
	} else {
		/* C was not written either: counted, never delivered. */
		assert_true(r == -ENOSPC || r == -ETIMEDOUT);
		assert_int_equal(dropped, 205);
		qt_assert_items(got, &f->log, 0, lost, 2);
	}
}

#define CASE(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		CASE(test_drop_oldest_file_system_full),
		CASE(test_drop_oldest_max_size),
		CASE(test_drop_newest_file_system_full),
		CASE(test_drop_newest_max_size),
		CASE(test_block_file_system_full),
		CASE(test_segment_preallocation_enospc),
		CASE(test_open_on_full_disk),
		CASE(test_frame_write_enospc),
		CASE(test_frame_write_enospc_disk_full),
	};

	real_stderr = dup(STDERR_FILENO);
	signal(SIGALRM, on_alarm);
	log_setup(LOG_TARGET_STDERR);
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
