// SPDX-License-Identifier: MIT
/*
 * Start-up recovery of the queue directory. It never refuses to start because of
 * damaged data: stale tmp files go, segments that cannot be trusted move to
 * quarantine/, a torn tail is cut at the first invalid frame and sealed there, and
 * every range of readings that was durable and is now gone is counted and logged once.
 *
 * Sealed segments cost O(1) here: a seal is the last frame of a sealed file (sealing
 * truncates the file after it), so checking it is enough; their frames are checked
 * lazily when read. Only unsealed segments (the tail of the previous run) are scanned
 * frame by frame. A full 1 GiB queue is therefore ready in milliseconds.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "queue_internal.h"
#include "util.h"

#define QUARANTINE "quarantine"

struct candidate {
	bool valid;
	bool quarantined;
	char name[256];
	uint64_t base;
	struct segment seg;
	struct queue_segment_header header;
	size_t file_size;
};

static int lock_dir(struct queue *q)
{
	q->lock_fd = openat(q->dir_fd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (q->lock_fd < 0)
		return log_error_errno(errno, "queue: cannot open %s/LOCK: %m", q->opt.dir);
	if (flock(q->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			return log_error_errno(EBUSY,
					       "queue: %s is in use by another coapgated; "
					       "refusing to share it",
					       q->opt.dir);
		return log_error_errno(errno, "queue: cannot lock %s/LOCK: %m", q->opt.dir);
	}
	return 0;
}

static ssize_t pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static int read_checkpoint(struct queue *q, bool *ret_valid)
{
	uint8_t buf[2 * QUEUE_CKPT_SLOT_SIZE];
	ssize_t n;
	int slot;

	q->ckpt_fd = openat(q->dir_fd, "ckpt", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (q->ckpt_fd < 0)
		return log_error_errno(errno, "queue: cannot open %s/ckpt: %m", q->opt.dir);
	n = pread_full(q->ckpt_fd, buf, sizeof(buf), 0);
	if (n < 0)
		n = 0; /* unreadable: as if absent, everything unacked is sent again */
	slot = queue_checkpoint_pick_file(buf, (size_t)n, &q->ckpt);
	*ret_valid = slot >= 0;
	if (slot < 0)
		memset(&q->ckpt, 0, sizeof(q->ckpt));
	/* Both slots exist from now on, so a checkpoint write never allocates. */
	if (posix_fallocate(q->ckpt_fd, 0, sizeof(buf)) != 0)
		log_warning("queue: cannot preallocate %s/ckpt", q->opt.dir);
	return 0;
}

static uint64_t dir_entry_bytes(int dir_fd, const char *name)
{
	struct stat st;

	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	return (uint64_t)st.st_blocks * 512;
}

/* Move name into quarantine/, keeping it for a person to look at. */
static void quarantine(struct queue *q, const char *name, const char *why)
{
	char target[96];
	int qfd;

	if (mkdirat(q->dir_fd, QUARANTINE, 0700) < 0 && errno != EEXIST) {
		log_error_errno(errno, "queue: cannot create %s/" QUARANTINE ": %m", q->opt.dir);
		return;
	}
	qfd = openat(q->dir_fd, QUARANTINE, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (qfd < 0) {
		log_error_errno(errno, "queue: cannot open %s/" QUARANTINE ": %m", q->opt.dir);
		return;
	}
	snprintf(target, sizeof(target), "%s", name);
	for (unsigned i = 1; faccessat(qfd, target, F_OK, AT_SYMLINK_NOFOLLOW) == 0 && i < 1000;
	     i++)
		snprintf(target, sizeof(target), "%s.%u", name, i);
	if (renameat(q->dir_fd, name, qfd, target) < 0) {
		log_error_errno(errno, "queue: cannot move %s to " QUARANTINE "/: %m", name);
		/* A bad segment left in place would be met again at every start: remove. */
		if (unlinkat(q->dir_fd, name, 0) < 0)
			(void)unlinkat(q->dir_fd, name, AT_REMOVEDIR);
	} else {
		log_warning("queue: moved %s to %s/" QUARANTINE "/%s: %s", name, q->opt.dir, target,
			    why);
		(void)fsync(qfd);
	}
	close(qfd);
}

static uint64_t quarantine_bytes(struct queue *q)
{
	uint64_t total = 0;
	DIR *d;
	int qfd;

	qfd = openat(q->dir_fd, QUARANTINE, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (qfd < 0)
		return 0;
	d = fdopendir(qfd);
	if (!d) {
		close(qfd);
		return 0;
	}
	for (struct dirent *de; (de = readdir(d));)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			total += dir_entry_bytes(qfd, de->d_name);
	closedir(d);
	return total;
}

/* List seg-*.q files; remove tmp files; quarantine what is not a regular file. */
static int list_segments(struct queue *q, struct candidate **ret, size_t *ret_n)
{
	struct candidate *c = NULL;
	size_t n = 0;
	int fd;
	DIR *d;

	fd = dup(q->dir_fd);
	if (fd < 0 || !(d = fdopendir(fd))) {
		safe_close(fd);
		return log_error_errno(errno, "queue: cannot read %s: %m", q->opt.dir);
	}
	rewinddir(d);
	for (struct dirent *de; (de = readdir(d));) {
		const char *name = de->d_name;
		size_t len = strlen(name);
		struct stat st;
		uint64_t base;

		if (!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, "LOCK") ||
		    !strcmp(name, "ckpt") || !strcmp(name, QUARANTINE))
			continue;
		if (len > 4 && !strcmp(name + len - 4, ".tmp") && !strncmp(name, "seg-", 4)) {
			/* A segment whose creation did not finish: it holds no data. */
			log_info("queue: removing unfinished %s", name);
			if (unlinkat(q->dir_fd, name, 0) < 0)
				quarantine(q, name, "an unfinished segment that cannot be removed");
			continue;
		}
		if (!queue_segment_name_parse(name, &base)) {
			log_warning("queue: ignoring unknown file %s/%s", q->opt.dir, name);
			continue;
		}
		if (fstatat(q->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode)) {
			quarantine(q, name, "not a regular file");
			continue;
		}
		c = xrealloc(c, (n + 1) * sizeof(*c));
		memset(&c[n], 0, sizeof(c[n]));
		snprintf(c[n].name, sizeof(c[n].name), "%s", name);
		c[n].base = base;
		c[n].file_size = (size_t)st.st_size;
		c[n].seg.fd = -1;
		n++;
	}
	closedir(d);
	*ret = c;
	*ret_n = n;
	return 0;
}

static int compare_candidates(const void *a, const void *b)
{
	const struct candidate *x = a, *y = b;

	return x->base < y->base ? -1 : x->base > y->base;
}

/* Is the last frame of the file a valid seal? Then the segment is complete. */
static bool read_seal(struct candidate *c)
{
	uint8_t frame[QUEUE_SEAL_FRAME_SIZE];
	struct queue_frame_head h;
	struct queue_frame f;
	struct queue_seal seal;
	uint64_t first;

	if (c->file_size < QUEUE_HEADER_BLOCK + QUEUE_SEAL_FRAME_SIZE ||
	    pread_full(c->seg.fd, frame, sizeof(frame), (off_t)(c->file_size - sizeof(frame))) !=
		(ssize_t)sizeof(frame))
		return false;
	queue_frame_peek(frame, &h);
	first = h.first_seq;
	if (queue_frame_check(frame, sizeof(frame), 0, first, c->seg.salt, &f) != QUEUE_FRAME_OK ||
	    !(f.flags & QUEUE_FRAME_SEAL))
		return false;
	queue_seal_decode(f.payload, &seal);
	/* Seqs are contiguous in a segment, and every reading takes bytes. */
	if (seal.last_seq + 1 != first || seal.last_seq < c->seg.base_seq - 1 ||
	    seal.last_seq - (c->seg.base_seq - 1) != seal.n_readings ||
	    seal.data_bytes != c->file_size - sizeof(frame) - QUEUE_HEADER_BLOCK ||
	    seal.n_readings > seal.data_bytes)
		return false;
	c->seg.sealed = true;
	c->seg.last_seq = seal.last_seq;
	c->seg.readings = seal.n_readings;
	c->seg.end = c->file_size - sizeof(frame);
	return true;
}

/*
 * Scan an unsealed segment frame by frame, checking every CRC, up to the first frame
 * that is not valid: the end of what the previous run made durable (or at least
 * wrote). Returns the number of bytes after that point that are not zero, for the log.
 */
static int scan_unsealed(struct candidate *c, size_t *ret_garbage)
{
	uint64_t expected = c->seg.base_seq;
	size_t off = QUEUE_HEADER_BLOCK, cap = 0;
	uint8_t head[QUEUE_FRAME_HEADER_LEN], *buf = NULL;
	int r = 0;

	for (;;) {
		struct queue_frame_head h;
		struct queue_frame f;
		uint32_t len;
		ssize_t n;

		if (off + sizeof(head) > c->file_size)
			break;
		n = pread_full(c->seg.fd, head, sizeof(head), (off_t)off);
		if (n < 0) {
			r = (int)n;
			break;
		}
		if (n != (ssize_t)sizeof(head))
			break;
		queue_frame_peek(head, &h);
		len = h.frame_len;
		/* Bounded by the file: a corrupt length cannot make us allocate more. */
		if (len < QUEUE_FRAME_HEADER_LEN || len > c->file_size - off)
			break;
		if (len > cap) {
			cap = len;
			buf = xrealloc(buf, cap);
		}
		if (pread_full(c->seg.fd, buf, len, (off_t)off) != (ssize_t)len)
			break;
		if (queue_frame_check(buf, len, 0, expected, c->seg.salt, &f) != QUEUE_FRAME_OK)
			break;
		if (f.flags & QUEUE_FRAME_SEAL) {
			/* Sealed but not truncated (a crash between the two): sealed all the
			 * same. */
			c->seg.sealed = true;
			break;
		}
		expected += f.count;
		c->seg.readings += f.count;
		off += queue_frame_size(f.payload_len);
	}
	c->seg.last_seq = expected - 1;
	c->seg.end = off;

	/* How much of the cut-off rest holds data, for the log (a few pages suffice). */
	*ret_garbage = 0;
	if (!c->seg.sealed && off < c->file_size) {
		size_t len = MIN(c->file_size - off, (size_t)64 * 1024);

		if (len > cap) {
			cap = len;
			buf = xrealloc(buf, cap);
		}
		if (pread_full(c->seg.fd, buf, len, (off_t)off) == (ssize_t)len)
			for (size_t i = 0; i < len; i++)
				*ret_garbage += buf[i] != 0;
	}
	free(buf);
	return r;
}

/*
 * Validate one candidate: header, name, then the seal or a full scan. A sealed segment's
 * descriptor is closed again (a queue may hold thousands of segments; only the tail
 * stays open); an unsealed one keeps it for sealing.
 */
static int check_segment(struct queue *q, struct candidate *c)
{
	uint8_t header[QUEUE_HEADER_LEN];
	size_t garbage = 0;
	int r;

	c->seg.fd = openat(q->dir_fd, c->name, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (c->seg.fd < 0)
		return -errno;
	if (pread_full(c->seg.fd, header, sizeof(header), 0) != (ssize_t)sizeof(header) ||
	    queue_header_decode(header, sizeof(header), &c->header) < 0)
		return -EBADMSG;
	if (c->header.base_seq != c->base)
		return -EBADMSG;
	c->seg.base_seq = c->header.base_seq;
	c->seg.prev_seq = c->header.prev_seq;
	c->seg.salt = c->header.salt;
	c->seg.allocated = queue_allocated_bytes(c->seg.fd);
	if (read_seal(c)) {
		c->seg.fd = safe_close(c->seg.fd);
		return 0;
	}
	r = scan_unsealed(c, &garbage);
	if (r < 0)
		return r;
	if (!c->seg.sealed && c->seg.end < c->file_size && garbage)
		log_notice("queue: %s: cut a torn tail at offset %zu (%zu non-zero bytes after "
			   "it were never made durable)",
			   c->name, c->seg.end, garbage);
	return 0;
}

static void count_lost(struct queue *q, uint64_t first, uint64_t last, const char *why)
{
	uint64_t fresh;

	/* Acknowledged readings are not lost when they are missing. */
	first = MAX(first, q->ckpt.acked_seq + 1);
	if (first > last)
		return;
	/* Counted and logged once: the checkpoint remembers the ranges it counted. */
	fresh = queue_checkpoint_add_gap(&q->ckpt, first, last);
	if (!fresh)
		return;
	q->lost += fresh;
	q->ckpt.lost_total += fresh;
	log_error("queue: lost %" PRIu64 " readings in seq %" PRIu64 "..%" PRIu64 ": %s", fresh,
		  first, last, why);
}

int queue_recover(struct queue *q)
{
	struct candidate *c = NULL;
	size_t n = 0, kept = 0;
	uint64_t last_on_disk = 0, stream_id = 0;
	bool ckpt_valid, lost_checkpoint = false;
	int r;

	r = lock_dir(q);
	if (r < 0)
		return r;
	r = read_checkpoint(q, &ckpt_valid);
	if (r < 0)
		return r;
	r = list_segments(q, &c, &n);
	if (r < 0)
		return r;
	if (n)
		qsort(c, n, sizeof(*c), compare_candidates);

	for (size_t i = 0; i < n; i++) {
		r = check_segment(q, &c[i]);
		if (r < 0) {
			c[i].seg.fd = safe_close(c[i].seg.fd);
			quarantine(q, c[i].name,
				   r == -EBADMSG ? "its header is invalid" : strerror(-r));
			c[i].quarantined = true;
			continue;
		}
		/* A segment without readings (a start that received none) holds nothing
		 * but a seq range that was never issued: it goes. */
		if (c[i].seg.last_seq < c[i].seg.base_seq) {
			c[i].seg.fd = safe_close(c[i].seg.fd);
			if (unlinkat(q->dir_fd, c[i].name, 0) < 0)
				log_warning_errno(errno, "queue: cannot remove empty %s: %m",
						  c[i].name);
			continue;
		}
		c[i].valid = true;
		if (!stream_id)
			stream_id = c[i].header.stream_id;
	}
	/* The stream: the checkpoint's, else the segments', else a new one. */
	if (ckpt_valid)
		stream_id = q->ckpt.stream_id;
	if (!stream_id && getrandom(&stream_id, sizeof(stream_id), 0) != sizeof(stream_id))
		stream_id = now_monotonic_usec() ^ ((uint64_t)getpid() << 40);
	if (!ckpt_valid && n)
		log_warning("queue: no valid checkpoint in %s: every unacknowledged reading "
			    "will be sent again",
			    q->opt.dir);
	q->ckpt.stream_id = stream_id;

	/* Without a checkpoint, what precedes the first segment was deleted because it
	 * was acknowledged: not a loss. Seqs the lost checkpoint may have reserved are
	 * skipped, so that none is issued twice. */
	if (!ckpt_valid && n) {
		for (size_t i = 0; i < n; i++)
			if (c[i].valid) {
				q->ckpt.acked_seq = c[i].seg.prev_seq;
				break;
			}
		q->ckpt.seq_reserved = 0;
		lost_checkpoint = true;
	}
	for (size_t i = 0; i < n; i++) {
		struct candidate *s = &c[i];
		const struct segment *prev = kept ? &q->segments[kept - 1] : NULL;
		uint64_t gap_first = prev ? prev->last_seq + 1 : 1;

		if (!s->valid)
			continue;
		if (s->header.stream_id != stream_id) {
			s->seg.fd = safe_close(s->seg.fd);
			quarantine(q, s->name, "it belongs to another queue (stream id)");
			s->quarantined = true;
			continue;
		}
		if (prev && s->seg.prev_seq < prev->last_seq) {
			s->seg.fd = safe_close(s->seg.fd);
			quarantine(q, s->name, "its readings overlap the previous segment's");
			s->quarantined = true;
			continue;
		}
		/* A segment quarantined just now names its first seq: the loss starts there
		 * (seqs before it may be a reservation skip). A missing one cannot say. */
		for (size_t j = 0; j < i; j++)
			if (c[j].quarantined && c[j].base >= gap_first &&
			    c[j].base <= s->seg.prev_seq) {
				gap_first = c[j].base;
				break;
			}
		count_lost(q, gap_first, s->seg.prev_seq,
			   "a segment is missing or was quarantined");
		/* A segment the previous run did not seal is sealed at its valid end. */
		if (!s->seg.sealed) {
			r = queue_seal_segment(q, &s->seg);
			if (r < 0)
				log_warning_errno(r, "queue: cannot seal %s: %m", s->name);
			s->seg.fd = safe_close(s->seg.fd);
		}
		q->segments = xrealloc(q->segments, (kept + 1) * sizeof(*q->segments));
		q->segments[kept++] = s->seg;
		q->n_segments = kept;
		last_on_disk = MAX(last_on_disk, s->seg.last_seq);
	}
	free(c);

	/* Segments that are wholly acknowledged have no business here any more. */
	while (q->n_segments && q->segments[0].last_seq <= q->ckpt.acked_seq) {
		char name[64];

		queue_segment_name(name, sizeof(name), q->segments[0].base_seq, false);
		(void)unlinkat(q->dir_fd, name, 0);
		safe_close(q->segments[0].fd);
		memmove(q->segments, q->segments + 1, (q->n_segments - 1) * sizeof(*q->segments));
		q->n_segments--;
	}
	(void)fsync(q->dir_fd);

	q->acked_seq = q->ckpt.acked_seq;
	q->durable_seq = MAX(last_on_disk, q->acked_seq);
	/* Never reuse a seq: not one on disk, acknowledged, or possibly issued. */
	q->next_seq = MAX(q->durable_seq, q->ckpt.seq_reserved) + 1;
	if (lost_checkpoint)
		q->next_seq += QUEUE_SEQ_RESERVE;
	q->written_seq = q->next_seq - 1;
	/* Reserve before any seq of this run is issued, not at its first commit: a run
	 * that dies before that must not hand the same seqs out again. */
	q->ckpt.seq_reserved = q->next_seq - 1 + QUEUE_SEQ_RESERVE;
	q->quarantine_bytes = quarantine_bytes(q);
	q->dropped_oldest = 0;

	r = queue_write_checkpoint(q);
	if (r < 0)
		return log_error_errno(r, "queue: cannot write %s/ckpt: %m", q->opt.dir);
	q->read_gaps = q->ckpt;
	log_info("queue: %s: %zu segments, readings up to seq %" PRIu64
		 ", acknowledged up to %" PRIu64,
		 q->opt.dir, q->n_segments, last_on_disk, q->acked_seq);
	return 0;
}
