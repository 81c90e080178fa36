/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the disk queue's tests (test_queue.c, test_queue_model.c,
 * test_queue_full.c): temporary directories, readings that encode a counter and can be
 * checked field by field, draining a queue, and reading, snapshotting and damaging the
 * queue's files through the pure functions of queue_format.h, so that the tests and
 * the queue agree on what "valid" means.
 *
 * Not here: any knowledge of queue_internal.h; the tests see the queue as its users do,
 * plus its files.
 */
#ifndef COAPGATE_TEST_QUEUE_UTIL_H
#define COAPGATE_TEST_QUEUE_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "queue.h"
#include "queue_format.h"

#define QT_MIB	   ((uint64_t)1024 * 1024)
#define QT_MSEC	   ((uint64_t)1000)
#define QT_SEC	   ((uint64_t)1000000)
#define QT_TOPIC   "test/queue"
#define QT_TS_BASE 1700000000000LL

/* ---- time ---- */

static inline uint64_t qt_now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * QT_SEC + (uint64_t)ts.tv_nsec / 1000;
}

static inline void qt_sleep_usec(uint64_t usec)
{
	struct timespec ts = { .tv_sec = (time_t)(usec / QT_SEC),
			       .tv_nsec = (long)(usec % QT_SEC) * 1000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- readings ---- */

/* Storage for one generated reading. */
struct qt_reading {
	struct cg_field fields[3];
	char str[CG_STRING_MAX + 1];
	struct cg_reading r;
};

static inline void qt_fill_string(char *buf, uint64_t n, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('a' + (n * 31 + i * 7) % 26);
	buf[len] = 0;
}

/*
 * The reading number n with a string of slen bytes: field "n" holds n, "s" a string
 * derived from n, "half" n / 2, and the timestamp is derived from n too, so a reading
 * read back identifies itself and proves its payload intact.
 */
static inline const struct cg_reading *qt_make(struct qt_reading *m, uint64_t n, size_t slen)
{
	if (slen > CG_STRING_MAX)
		slen = CG_STRING_MAX;
	qt_fill_string(m->str, n, slen);
	m->fields[0] =
	    (struct cg_field){ .name = "n", .type = CG_FIELD_I64, .value.i64 = (int64_t)n };
	m->fields[1] =
	    (struct cg_field){ .name = "s", .type = CG_FIELD_STRING, .value.str = m->str };
	m->fields[2] =
	    (struct cg_field){ .name = "half", .type = CG_FIELD_F64, .value.f64 = (double)n / 2 };
	m->r = (struct cg_reading){ .timestamp_ms = QT_TS_BASE + (int64_t)n,
				    .topic = QT_TOPIC,
				    .fields = m->fields,
				    .n_fields = 3 };
	return &m->r;
}

/* Is r exactly a reading qt_make() produced? Fills its n and string length. */
static inline bool qt_decode(const struct cg_reading *r, uint64_t *ret_n, size_t *ret_slen)
{
	char expect[CG_STRING_MAX + 1];
	const struct cg_field *f = r->fields;
	uint64_t n;
	size_t slen;

	if (!r->topic || strcmp(r->topic, QT_TOPIC) != 0 || r->n_fields != 3 || !f)
		return false;
	if (!f[0].name || strcmp(f[0].name, "n") || f[0].type != CG_FIELD_I64 || f[0].value.i64 < 0)
		return false;
	n = (uint64_t)f[0].value.i64;
	if (!f[1].name || strcmp(f[1].name, "s") || f[1].type != CG_FIELD_STRING || !f[1].value.str)
		return false;
	slen = strlen(f[1].value.str);
	if (slen > CG_STRING_MAX)
		return false;
	qt_fill_string(expect, n, slen);
	if (strcmp(expect, f[1].value.str) != 0)
		return false;
	if (!f[2].name || strcmp(f[2].name, "half") || f[2].type != CG_FIELD_F64 ||
	    f[2].value.f64 != (double)n / 2)
		return false;
	if (r->timestamp_ms != QT_TS_BASE + (int64_t)n)
		return false;
	*ret_n = n;
	*ret_slen = slen;
	return true;
}

/* ---- what was appended, what was read ---- */

struct qt_item {
	uint64_t seq;
	uint64_t n;
	size_t slen;
};

struct qt_items {
	struct qt_item *v;
	size_t len, cap;
	unsigned bad; /* readings that were not ones qt_make() produced */
	int error;    /* a negative return of queue_read() */
};

static inline void qt_items_push(struct qt_items *l, uint64_t seq, uint64_t n, size_t slen)
{
	if (l->len == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 256;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		assert_non_null(l->v);
	}
	l->v[l->len++] = (struct qt_item){ seq, n, slen };
}

static inline void qt_items_free(struct qt_items *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Append count readings numbered from l's next n, all with strings of slen bytes. */
static inline void qt_append(struct queue *q, struct qt_items *l, unsigned count, size_t slen)
{
	struct qt_reading m;

	for (unsigned i = 0; i < count; i++) {
		uint64_t n = l->len ? l->v[l->len - 1].n + 1 : 1, seq = 0;
		int r = queue_append(q, qt_make(&m, n, slen), &seq);

		if (r < 0)
			fail_msg("queue_append(n %" PRIu64 ") = %d", n, r);
		if (l->len && seq <= l->v[l->len - 1].seq)
			fail_msg("seq %" PRIu64 " after %" PRIu64, seq, l->v[l->len - 1].seq);
		qt_items_push(l, seq, n, slen);
	}
}

/* One batch: count readings, then wait until they are durable (usually one frame). */
static inline void qt_append_durable(struct queue *q, struct qt_items *l, unsigned count,
				     size_t slen)
{
	int r;

	qt_append(q, l, count, slen);
	r = queue_wait_durable(q, l->v[l->len - 1].seq, 10 * QT_SEC);
	if (r < 0)
		fail_msg("queue_wait_durable(%" PRIu64 ") = %d", l->v[l->len - 1].seq, r);
}

/* Read until queue_read() has nothing more (at most max readings). */
static inline void qt_drain(struct queue_reader *rd, struct qt_items *out, size_t max)
{
	while (out->len < max) {
		struct cg_reading r;
		uint64_t seq = 0, n;
		size_t slen;
		int k = queue_read(rd, &seq, &r);

		if (k < 0) {
			out->error = k;
			return;
		}
		if (k == 0)
			return;
		if (!qt_decode(&r, &n, &slen)) {
			out->bad++;
			n = UINT64_MAX;
			slen = 0;
		}
		qt_items_push(out, seq, n, slen);
	}
}

/* Open a reader, drain the whole queue, free the reader. */
static inline void qt_drain_all(struct queue *q, struct qt_items *out)
{
	struct queue_reader *rd = NULL;

	assert_int_equal(queue_reader_new(q, &rd), 0);
	qt_drain(rd, out, SIZE_MAX);
	queue_reader_free(rd);
}

/* Is seq inside one of the n ranges [first, last] in ranges (pairs)? */
static inline bool qt_in_ranges(uint64_t seq, const uint64_t (*ranges)[2], size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (seq >= ranges[i][0] && seq <= ranges[i][1])
			return true;
	return false;
}

/*
 * Assert that got holds exactly the items of want with seq > after and not in the
 * excluded ranges, in order, with their payloads.
 */
static inline void qt_assert_items(const struct qt_items *got, const struct qt_items *want,
				   uint64_t after, const uint64_t (*excluded)[2], size_t n_excluded)
{
	size_t j = 0;

	if (got->error)
		fail_msg("queue_read() failed: %d", got->error);
	if (got->bad)
		fail_msg("%u readings read back were not ones the test appended", got->bad);
	for (size_t i = 0; i < want->len; i++) {
		const struct qt_item *w = &want->v[i];

		if (w->seq <= after || qt_in_ranges(w->seq, excluded, n_excluded))
			continue;
		if (j >= got->len)
			fail_msg("seq %" PRIu64 " (n %" PRIu64 ") was not delivered; %zu delivered",
				 w->seq, w->n, got->len);
		if (got->v[j].seq != w->seq || got->v[j].n != w->n || got->v[j].slen != w->slen)
			fail_msg(
			    "delivery %zu: seq %" PRIu64 " n %" PRIu64 " slen %zu, expected seq "
			    "%" PRIu64 " n %" PRIu64 " slen %zu",
			    j, got->v[j].seq, got->v[j].n, got->v[j].slen, w->seq, w->n, w->slen);
		j++;
	}
	if (j != got->len)
		fail_msg("%zu readings delivered beyond the expected %zu (first extra: seq %" PRIu64
			 ")",
			 got->len - j, j, got->v[j].seq);
}

/* ---- directories and files ---- */

struct qt_dir {
	char root[PATH_MAX / 2]; /* mkdtemp */
	char q[PATH_MAX];	 /* root/q, the queue directory */
};

static inline void qt_dir_make(struct qt_dir *d)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(d->root, sizeof(d->root), "%s/coapgate-queue-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(d->root))
		fail_msg("mkdtemp(%s): %s", d->root, strerror(errno));
	snprintf(d->q, sizeof(d->q), "%s/q", d->root);
}

static inline int qt_rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		(void)rmdir(path);
	else
		(void)unlink(path);
	return 0;
}

static inline void qt_rm_rf(const char *path)
{
	(void)chmod(path, 0700);
	(void)nftw(path, qt_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline char *qt_path(const char *dir, const char *name)
{
	static __thread char buf[4][PATH_MAX + 256];
	static __thread unsigned next;
	char *p = buf[next++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static inline bool qt_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* The whole file; NULL when it cannot be read. */
static inline uint8_t *qt_read_file(const char *path, size_t *ret_len)
{
	struct stat st;
	uint8_t *buf;
	size_t done = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

		if (n <= 0)
			break;
		done += (size_t)n;
	}
	close(fd);
	*ret_len = done;
	return buf;
}

static inline void qt_write_at(const char *path, size_t off, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
		fail_msg("writing %zu bytes at %zu of %s: %s", len, off, path, strerror(errno));
	close(fd);
}

static inline void qt_write_file(const char *path, const void *buf, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0 || (len && write(fd, buf, len) != (ssize_t)len))
		fail_msg("writing %s: %s", path, strerror(errno));
	close(fd);
}

static inline void qt_flip_bit(const char *path, size_t off, unsigned bit)
{
	uint8_t b = 0; /* fail_msg() does not return; clang cannot know */
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0 || pread(fd, &b, 1, (off_t)off) != 1)
		fail_msg("reading byte %zu of %s: %s", off, path, strerror(errno));
	b ^= (uint8_t)(1u << (bit & 7));
	if (pwrite(fd, &b, 1, (off_t)off) != 1)
		fail_msg("writing byte %zu of %s: %s", off, path, strerror(errno));
	close(fd);
}

static inline void qt_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- segments on disk ---- */

struct qt_frame {
	size_t off;  /* in the file */
	size_t size; /* aligned, as it occupies the file */
	size_t payload_len;
	uint64_t first_seq;
	uint32_t count;
	uint16_t flags;
};

struct qt_segment {
	char name[64];
	uint64_t base; /* from the name */
	bool header_ok;
	struct queue_segment_header h;
	size_t file_size;
	struct qt_frame *frames; /* the valid ones from the start, a seal included */
	size_t n_frames;
	size_t end;	   /* after the last valid frame (the seal excluded) */
	bool sealed;	   /* the valid frames end with a seal */
	uint64_t last_seq; /* of the last reading in a valid frame, prev_seq when none */
	uint64_t readings;
};

/* The frames of the segment image buf (len bytes), as queue_frame_check() sees them. */
static inline void qt_scan_image(struct qt_segment *s, const uint8_t *buf, size_t len)
{
	size_t off = QUEUE_HEADER_BLOCK;
	uint64_t expected;

	s->header_ok = queue_header_decode(buf, len, &s->h) == 0;
	s->end = QUEUE_HEADER_BLOCK;
	s->last_seq = s->header_ok ? s->h.prev_seq : 0;
	if (!s->header_ok)
		return;
	expected = s->h.base_seq;
	for (;;) {
		struct queue_frame f;

		if (queue_frame_check(buf, len, off, expected, s->h.salt, &f) != QUEUE_FRAME_OK)
			break;
		s->frames = realloc(s->frames, (s->n_frames + 1) * sizeof(*s->frames));
		assert_non_null(s->frames);
		s->frames[s->n_frames++] = (struct qt_frame){
			.off = off,
			.size = f.next_offset - off,
			.payload_len = f.payload_len,
			.first_seq = f.first_seq,
			.count = f.count,
			.flags = f.flags,
		};
		if (f.flags & QUEUE_FRAME_SEAL) {
			s->sealed = true;
			break;
		}
		expected += f.count;
		s->readings += f.count;
		s->last_seq = expected - 1;
		off = f.next_offset;
		s->end = off;
	}
}

static inline bool qt_segment_name_parse(const char *name, uint64_t *ret)
{
	char tail[8];
	unsigned long long v;

	if (strlen(name) != 22 || sscanf(name, "seg-%16llx%7s", &v, tail) != 2 ||
	    strcmp(tail, ".q") != 0)
		return false;
	*ret = v;
	return true;
}

static inline int qt_compare_segments(const void *a, const void *b)
{
	const struct qt_segment *x = a, *y = b;

	return x->base < y->base ? -1 : x->base > y->base;
}

/* The segment files of dir (regular files named seg-*.q), sorted and scanned. */
static inline size_t qt_segments(const char *dir, struct qt_segment **ret)
{
	struct qt_segment *v = NULL;
	size_t n = 0;
	DIR *d = opendir(dir);

	assert_non_null(d);
	for (struct dirent *de; (de = readdir(d));) {
		struct qt_segment *s;
		uint64_t base;
		uint8_t *buf;
		size_t len = 0;
		struct stat st;

		if (!qt_segment_name_parse(de->d_name, &base) ||
		    lstat(qt_path(dir, de->d_name), &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		v = realloc(v, (n + 1) * sizeof(*v));
		assert_non_null(v);
		s = &v[n++];
		memset(s, 0, sizeof(*s));
		/* The name parsed, so it is 22 bytes long. */
		memcpy(s->name, de->d_name, strlen(de->d_name) + 1);
		s->base = base;
		buf = qt_read_file(qt_path(dir, de->d_name), &len);
		assert_non_null(buf);
		s->file_size = len;
		qt_scan_image(s, buf, len);
		free(buf);
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), qt_compare_segments);
	*ret = v;
	return n;
}

static inline void qt_segments_free(struct qt_segment *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].frames);
	free(v);
}

/* How many entries a directory holds (0 when it does not exist). */
static inline unsigned qt_count_entries(const char *dir)
{
	unsigned n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	for (struct dirent *de; (de = readdir(d));)
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

/* ---- checkpoint ---- */

static inline int qt_ckpt_read(const char *qdir, struct queue_checkpoint *ret)
{
	size_t len = 0;
	uint8_t *buf = qt_read_file(qt_path(qdir, "ckpt"), &len);
	int r;

	if (!buf)
		return -errno;
	r = queue_checkpoint_pick(buf, len < QUEUE_CKPT_SLOT_SIZE ? len : QUEUE_CKPT_SLOT_SIZE,
				  len > QUEUE_CKPT_SLOT_SIZE ? buf + QUEUE_CKPT_SLOT_SIZE : NULL,
				  len > QUEUE_CKPT_SLOT_SIZE ? len - QUEUE_CKPT_SLOT_SIZE : 0, ret);
	free(buf);
	return r;
}

/* Write c (its generation raised past both slots) into both slots. */
static inline void qt_ckpt_write(const char *qdir, const struct queue_checkpoint *c)
{
	static uint8_t slots[2 * QUEUE_CKPT_SLOT_SIZE];
	struct queue_checkpoint w = *c;

	w.generation += 2;
	queue_checkpoint_encode(&w, slots);
	memcpy(slots + QUEUE_CKPT_SLOT_SIZE, slots, QUEUE_CKPT_SLOT_SIZE);
	qt_write_at(qt_path(qdir, "ckpt"), 0, slots, sizeof(slots));
}

/* ---- snapshots: restore a directory's files between variants of one case ---- */

struct qt_snapshot {
	size_t n;
	struct {
		char name[256];
		uint8_t *data;
		size_t len;
	} * files;
};

static inline void qt_snapshot_take(const char *dir, struct qt_snapshot *s)
{
	DIR *d = opendir(dir);

	assert_non_null(d);
	memset(s, 0, sizeof(*s));
	for (struct dirent *de; (de = readdir(d));) {
		struct stat st;

		if (lstat(qt_path(dir, de->d_name), &st) < 0 || !S_ISREG(st.st_mode) ||
		    !strcmp(de->d_name, "LOCK"))
			continue;
		s->files = realloc(s->files, (s->n + 1) * sizeof(*s->files));
		assert_non_null(s->files);
		snprintf(s->files[s->n].name, sizeof(s->files[0].name), "%s", de->d_name);
		s->files[s->n].data = qt_read_file(qt_path(dir, de->d_name), &s->files[s->n].len);
		assert_non_null(s->files[s->n].data);
		s->n++;
	}
	closedir(d);
}

/* Make dir hold exactly the snapshot's files again (LOCK aside). */
static inline void qt_snapshot_restore(const char *dir, const struct qt_snapshot *s)
{
	DIR *d = opendir(dir);

	assert_non_null(d);
	for (struct dirent *de; (de = readdir(d));) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, "LOCK"))
			continue;
		qt_rm_rf(qt_path(dir, de->d_name));
	}
	closedir(d);
	for (size_t i = 0; i < s->n; i++) {
		const uint8_t *p = s->files[i].data;
		size_t len = s->files[i].len, used = len;
		char *path = qt_path(dir, s->files[i].name);
		int fd;

		/* Segments are mostly preallocated zeros: write the data, keep the size. */
		while (used && !p[used - 1])
			used--;
		qt_write_file(path, p, used, 0600);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, (off_t)len), 0);
		close(fd);
	}
}

static inline void qt_snapshot_free(struct qt_snapshot *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->files[i].data);
	free(s->files);
	memset(s, 0, sizeof(*s));
}

/* ---- options ---- */

/* Small limits so that tests roll segments and fill queues quickly. */
static inline struct queue_options qt_options(const char *dir)
{
	return (struct queue_options){
		.dir = dir,
		.segment_size = QT_MIB,
		.max_size = 8 * QT_MIB,
		.min_free = 0,
		.commit_interval_usec = 20 * QT_MSEC,
		.commit_bytes = 64 * 1024,
		.checkpoint_interval_usec = 50 * QT_MSEC,
		.block_timeout_usec = 50 * QT_MSEC,
		.when_full = QUEUE_DROP_NEWEST,
	};
}

static inline struct queue *qt_open(const struct queue_options *o)
{
	struct queue *q = NULL;
	int r = queue_open(o, &q);

	if (r < 0)
		fail_msg("queue_open(%s) = %d (%s)", o->dir, r, strerror(-r));
	return q;
}

#endif
