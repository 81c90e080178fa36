// SPDX-License-Identifier: MIT
/*
 * Model-based random test of the disk queue (queue-design §7.3): long random sequences
 * of Append, WaitDurable, Read, Ack, Rewind, Reopen (clean), Crash (queue_abandon(),
 * sometimes with garbage written after the durable end of the newest segment, as a
 * torn write leaves it) and Idle run against the real queue and against a model (the
 * readings that exist, in seq order, plus a few positions), compared after every step:
 *
 *   - every reading delivered is the next one the model expects, payload included,
 *     and was appended; nothing durable is skipped;
 *   - after a restart exactly the unacknowledged readings come back, in order, and
 *     after a crash at least every reading that was durable (never lost); readings
 *     acked but not yet checkpointed may come again, no others;
 *   - seqs are strictly increasing and contiguous within a run, and a seq that was
 *     durable is never issued again, across restarts and crashes (a seq that was
 *     issued but lost in a crash before its batch was committed can come again: see
 *     test_seq_not_reused_after_crash in test_queue.c; counted here and printed);
 *   - the counters (appended, acked, readings, dropped, lost) match, usage stays bound.
 *
 * COAPGATE_TEST_SEED=<n> replays a run; COAPGATE_TEST_STEPS=<n> sets its length (a
 * few seconds by default, for CI; use 20000 or more for a soak). The seed and the last
 * steps are printed when a check fails.
 */
#include <signal.h>

#include "queue_test_util.h"

#include "capture.h"
#include "log.h"
#include "util.h"

#define DEFAULT_STEPS 600
/* An ack older than this at a crash must have reached the checkpoint (it is written
 * at most every checkpoint_interval, 50 ms here; the rest is slack for slow CI). */
#define ACK_CHECKPOINT_BOUND_USEC (3 * QT_SEC)

struct entry {
	uint64_t seq;
	uint64_t n;
	uint16_t slen;
};

struct model {
	struct qt_dir dir;
	struct queue_options o;
	struct queue *q;
	struct queue_reader *rd;
	uint64_t seed, rng;
	unsigned long step, steps;

	/* Readings that exist, sorted by seq: e[first..len). Those at or below
	 * acked_floor can never come back and are pruned. */
	struct entry *e;
	size_t first, len, size;
	uint64_t next_n;
	uint64_t max_seq;     /* highest seq ever issued, lost ones included */
	uint64_t run_seq;     /* last seq issued in this run (0: none yet) */
	uint64_t acked;	      /* what the test acked */
	uint64_t acked_floor; /* acked position known to be checkpointed */
	uint64_t durable;     /* highest seq known durable */
	uint64_t delivered;   /* last seq the reader gave (acked when none since) */
	uint64_t session_appended, session_refused;

	/* Acks since the last restart, with their times (for the checkpoint bound). */
	struct {
		uint64_t usec, seq;
	} acks[4096];
	size_t n_acks;

	/* The last actions, for the failure report. */
	char history[64][96];

	struct capture cap;
	bool capturing;
	unsigned long appends, reads, crashes, reopens, garbage, reissued, max_segments;
};

static int real_stderr = -1;
static struct model *running; /* for the alarm's report */
static char alarm_msg[256];

/* A hang (the queue looping or blocking) ends the run with the seed and the steps. */
static void on_alarm(int sig)
{
	ssize_t ignored;

	(void)sig;
	ignored = write(real_stderr, alarm_msg, strlen(alarm_msg));
	if (running)
		for (unsigned long s = running->step > 15 ? running->step - 15 : 0;
		     s <= running->step; s++) {
			ignored = write(real_stderr, running->history[s % 64],
					strlen(running->history[s % 64]));
			ignored = write(real_stderr, "\n", 1);
		}
	(void)ignored;
	_exit(1);
}

static uint64_t rnd(struct model *m)
{
	/* splitmix64: good enough, and the same everywhere for a seed */
	uint64_t z = (m->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static uint64_t rnd_range(struct model *m, uint64_t lo, uint64_t hi)
{
	return lo + rnd(m) % (hi - lo + 1);
}

static void note(struct model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(struct model *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->history[m->step % 64], sizeof(m->history[0]), fmt, ap);
	va_end(ap);
}

static void model_fail(struct model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void model_fail(struct model *m, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (m->capturing) {
		char *log = capture_stop(&m->cap);
		size_t len = strlen(log);

		m->capturing = false;
		fprintf(stderr, "--- the queue's last log lines ---\n%s---\n",
			len > 6000 ? log + len - 6000 : log);
		free(log);
	}
	fprintf(stderr, "--- the last steps ---\n");
	for (unsigned long s = m->step > 63 ? m->step - 63 : 0; s <= m->step; s++)
		fprintf(stderr, "step %lu: %s\n", s, m->history[s % 64]);
	fprintf(stderr,
		"model: acked %" PRIu64 " floor %" PRIu64 " durable %" PRIu64 " delivered %" PRIu64
		" max_seq %" PRIu64 " live %zu\n",
		m->acked, m->acked_floor, m->durable, m->delivered, m->max_seq, m->len - m->first);
	fail_msg("step %lu: %s (replay with COAPGATE_TEST_SEED=%" PRIu64
		 " COAPGATE_TEST_STEPS=%lu)",
		 m->step, msg, m->seed, m->steps);
}

#define CHECK(m, cond, ...)                         \
	do {                                        \
		if (!(cond))                        \
			model_fail(m, __VA_ARGS__); \
	} while (0)

/* ---- the model's readings ---- */

static void push(struct model *m, uint64_t seq, uint64_t n, size_t slen)
{
	if (m->len == m->size) {
		/* Compact first, then grow. */
		if (m->first > m->size / 2) {
			memmove(m->e, m->e + m->first, (m->len - m->first) * sizeof(*m->e));
			m->len -= m->first;
			m->first = 0;
		} else {
			m->size = m->size ? 2 * m->size : 4096;
			m->e = realloc(m->e, m->size * sizeof(*m->e));
			assert_non_null(m->e);
		}
	}
	m->e[m->len++] = (struct entry){ seq, n, (uint16_t)slen };
}

/* Index of the first live entry with seq > after (len when none). */
static size_t upper(const struct model *m, uint64_t after)
{
	size_t lo = m->first, hi = m->len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->e[mid].seq <= after)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void prune(struct model *m)
{
	m->first = upper(m, m->acked_floor);
}

/* ---- the queue's side ---- */

static void check_stats(struct model *m)
{
	struct queue_stats st;
	uint64_t want;

	queue_get_stats(m->q, &st);
	CHECK(m, st.acked_seq == m->acked, "stats acked_seq %" PRIu64 ", model %" PRIu64,
	      st.acked_seq, m->acked);
	CHECK(m, st.appended == m->session_appended, "stats appended %" PRIu64 ", model %" PRIu64,
	      st.appended, m->session_appended);
	CHECK(m, st.dropped_newest == m->session_refused,
	      "stats dropped_newest %" PRIu64 ", refused appends %" PRIu64, st.dropped_newest,
	      m->session_refused);
	CHECK(m, st.dropped_oldest == 0, "dropped_oldest %" PRIu64, st.dropped_oldest);
	CHECK(m, st.lost == 0, "lost %" PRIu64 " without any damage", st.lost);
	CHECK(m, st.durable_seq >= m->durable, "durable_seq went back: %" PRIu64 " < %" PRIu64,
	      st.durable_seq, m->durable);
	want = upper(m, st.durable_seq) - upper(m, m->acked);
	if (st.durable_seq < m->acked)
		want = 0;
	CHECK(m, st.readings == want,
	      "stats readings %" PRIu64 ", model %" PRIu64 " (acked %" PRIu64 ", durable %" PRIu64
	      ")",
	      st.readings, want, m->acked, st.durable_seq);
	m->max_segments = MAX(m->max_segments, (unsigned long)st.segments);
	CHECK(m, st.used_bytes <= m->o.max_size, "used_bytes %" PRIu64 " > max_size %" PRIu64,
	      st.used_bytes, m->o.max_size);
}

static void open_queue(struct model *m)
{
	int r = queue_open(&m->o, &m->q);

	CHECK(m, r == 0, "queue_open() = %d", r);
	r = queue_reader_new(m->q, &m->rd);
	CHECK(m, r == 0, "queue_reader_new() = %d", r);
	m->session_appended = m->session_refused = m->run_seq = 0;
	m->n_acks = 0;
}

static void close_queue(struct model *m, bool crash)
{
	queue_reader_free(m->rd);
	m->rd = NULL;
	if (crash)
		queue_abandon(m->q);
	else
		queue_close(m->q);
	m->q = NULL;
}

/* ---- actions ---- */

static void do_append(struct model *m)
{
	unsigned count = (unsigned)rnd_range(m, 1, rnd(m) % 4 ? 40 : 400);
	size_t slen = rnd(m) % 3 ? rnd_range(m, 0, 120) : rnd_range(m, 300, CG_STRING_MAX);
	unsigned refused = 0;
	struct qt_reading rd;

	note(m, "append %u x %zu bytes", count, slen);
	for (unsigned i = 0; i < count; i++) {
		uint64_t seq = 0, n = m->next_n;
		int r = queue_append(m->q, qt_make(&rd, n, slen), &seq);

		if (r == -ENOSPC) {
			/* The memory batch was full for block_timeout (a slow disk):
			 * refused and counted, not appended. */
			m->session_refused++;
			refused++;
			continue;
		}
		CHECK(m, r == 0, "queue_append() = %d", r);
		CHECK(m, seq > m->durable && (m->len == 0 || seq > m->e[m->len - 1].seq),
		      "seq %" PRIu64 " issued again or backwards (durable %" PRIu64 ")", seq,
		      m->durable);
		if (m->run_seq)
			CHECK(m, seq == m->run_seq + 1,
			      "seq %" PRIu64 " after %" PRIu64 " within one run", seq, m->run_seq);
		else if (seq <= m->max_seq)
			m->reissued++;
		m->run_seq = seq;
		m->max_seq = MAX(m->max_seq, seq);
		m->next_n++;
		m->session_appended++;
		push(m, seq, n, slen);
	}
	m->appends += count - refused;
	if (refused)
		note(m, "append %u x %zu bytes (%u refused)", count, slen, refused);
}

static void do_wait_durable(struct model *m)
{
	uint64_t last = m->len > m->first ? m->e[m->len - 1].seq : 0;
	int r;

	note(m, "wait durable %" PRIu64, last);
	if (!last || last <= m->durable)
		return;
	r = queue_wait_durable(m->q, last, 20 * QT_SEC);
	CHECK(m, r == 0, "queue_wait_durable(%" PRIu64 ") = %d", last, r);
	m->durable = last;
}

/* Read one reading and check it against the model; false when there was none. */
static bool read_one(struct model *m)
{
	struct queue_stats st;
	struct cg_reading r;
	uint64_t seq = 0, n = 0;
	size_t slen = 0, i;
	int k;

	queue_get_stats(m->q, &st);
	i = upper(m, m->delivered);
	k = queue_read(m->rd, &seq, &r);
	CHECK(m, k >= 0, "queue_read() = %d", k);
	if (k == 0) {
		CHECK(m, i == m->len || m->e[i].seq > st.durable_seq,
		      "seq %" PRIu64 " is durable (durable_seq %" PRIu64 ") but not delivered",
		      m->e[i].seq, st.durable_seq);
		return false;
	}
	CHECK(m, qt_decode(&r, &n, &slen), "seq %" PRIu64 ": a reading the test never appended",
	      seq);
	CHECK(m, i < m->len, "seq %" PRIu64 " (n %" PRIu64 ") delivered, none expected", seq, n);
	CHECK(m, seq == m->e[i].seq && n == m->e[i].n && slen == m->e[i].slen,
	      "delivered seq %" PRIu64 " n %" PRIu64 " slen %zu, expected seq %" PRIu64
	      " n %" PRIu64 " slen %u",
	      seq, n, slen, m->e[i].seq, m->e[i].n, m->e[i].slen);
	m->delivered = seq;
	if (seq > m->durable)
		m->durable = seq;
	m->reads++;
	return true;
}

static void do_read(struct model *m)
{
	unsigned count = (unsigned)rnd_range(m, 1, rnd(m) % 4 ? 50 : 2000), got = 0;

	note(m, "read up to %u after %" PRIu64, count, m->delivered);
	while (got < count && read_one(m))
		got++;
	note(m, "read %u/%u, now at %" PRIu64, got, count, m->delivered);
}

static void do_ack(struct model *m)
{
	size_t lo = upper(m, m->acked), hi = upper(m, m->delivered);
	uint64_t seq;

	if (lo >= hi) {
		/* Nothing new delivered: an old ack must change nothing. */
		note(m, "ack %" PRIu64 " again", m->acked);
		queue_ack(m->q, m->acked > 0 ? m->acked - 1 : 0);
		return;
	}
	/* Mostly everything delivered, as the uplink does; sometimes a part. */
	seq = rnd(m) % 3 ? m->e[hi - 1].seq : m->e[rnd_range(m, lo, hi - 1)].seq;
	note(m, "ack %" PRIu64, seq);
	queue_ack(m->q, seq);
	m->acked = seq;
	if (m->n_acks < sizeof(m->acks) / sizeof(m->acks[0]))
		m->acks[m->n_acks++].seq = seq;
	else
		m->acks[m->n_acks - 1].seq = seq;
	m->acks[m->n_acks - 1].usec = qt_now_usec();
}

static void do_rewind(struct model *m)
{
	note(m, "rewind to %" PRIu64, m->acked);
	queue_reader_rewind(m->rd);
	m->delivered = m->acked;
}

static void do_idle(struct model *m)
{
	uint64_t usec = rnd_range(m, 60, 150) * QT_MSEC;

	note(m, "idle %" PRIu64 " ms", usec / QT_MSEC);
	qt_sleep_usec(usec);
}

/*
 * After a restart the fresh reader must deliver the unacknowledged readings, in order:
 * all of them after a clean close, a prefix holding at least the durable ones after a
 * crash (the rest were never made durable and are gone from the model).
 */
static void check_restart(struct model *m, bool crash)
{
	size_t i = upper(m, m->acked), need = upper(m, m->durable), start = i;
	struct queue_stats st;

	m->delivered = m->acked;
	while (read_one(m))
		i++;
	queue_get_stats(m->q, &st);
	if (!crash)
		CHECK(m, i == m->len,
		      "after a clean restart %zu of %zu unacknowledged readings came back",
		      i - start, m->len - start);
	CHECK(m, i >= need,
	      "after a crash only %zu readings came back, %zu were durable (up to seq %" PRIu64 ")",
	      i - start, need - start, m->durable);
	if (i < m->len) {
		note(m, "crash lost seqs %" PRIu64 "..%" PRIu64 " (never durable)", m->e[i].seq,
		     m->e[m->len - 1].seq);
		m->len = i;
	}
	if (i > start)
		m->durable = m->e[i - 1].seq;
	CHECK(m, st.lost == 0, "lost %" PRIu64 " after a %s", st.lost, crash ? "crash" : "restart");
	/* The reader goes back, as the uplink would after a restart. */
	queue_reader_rewind(m->rd);
	m->delivered = m->acked;
}

static void do_reopen(struct model *m)
{
	struct queue_stats st;

	note(m, "reopen");
	close_queue(m, false);
	open_queue(m);
	m->reopens++;
	queue_get_stats(m->q, &st);
	CHECK(m, st.acked_seq == m->acked,
	      "after a clean restart acked_seq %" PRIu64 ", expected %" PRIu64, st.acked_seq,
	      m->acked);
	m->acked_floor = m->acked;
	/* Everything appended was committed by queue_close(). */
	if (m->len > m->first)
		m->durable = MAX(m->durable, m->e[m->len - 1].seq);
	check_restart(m, false);
	prune(m);
}

/* Write something that is not a valid frame after the last valid frame of the newest
 * segment, as a write torn by the crash leaves it. */
static void tear_tail(struct model *m)
{
	struct qt_segment *segs, *s;
	uint8_t junk[4096];
	size_t n = qt_segments(m->dir.q, &segs), len, kind;
	char *path;

	if (!n)
		return;
	s = &segs[n - 1];
	if (!s->header_ok || s->sealed || s->end + 64 > s->file_size) {
		qt_segments_free(segs, n);
		return;
	}
	path = qt_path(m->dir.q, s->name);
	len = (size_t)rnd_range(m, 1, MIN(sizeof(junk), s->file_size - s->end));
	for (size_t i = 0; i < len; i++)
		junk[i] = (uint8_t)rnd(m);
	kind = rnd(m) % 4;
	if (kind == 1 && len >= QUEUE_FRAME_HEADER_LEN) {
		/* A frame header that looks right but whose CRC does not match. */
		uint64_t seq = s->last_seq + 1;

		qt_put32(junk, QUEUE_FRAME_MAGIC);
		qt_put32(junk + 4, (uint32_t)len);
		for (int b = 0; b < 8; b++)
			junk[8 + b] = (uint8_t)(seq >> (8 * b));
		qt_put32(junk + 16, 1);
		junk[20] = junk[21] = junk[22] = junk[23] = 0;
		qt_put32(junk + 28, (uint32_t)len - QUEUE_FRAME_HEADER_LEN);
	} else if (kind == 2 && s->n_frames) {
		/* The previous frame again: a stale block. */
		size_t flen = 0;
		uint8_t *img = qt_read_file(path, &flen);
		const struct qt_frame *fr = &s->frames[s->n_frames - 1];

		assert_non_null(img);
		len = MIN(fr->size, MIN(sizeof(junk), s->file_size - s->end));
		memcpy(junk, img + fr->off, len);
		free(img);
	}
	if (kind == 3) {
		note(m, "crash: cut %s at its end %zu", s->name, s->end);
		assert_int_equal(truncate(path, (off_t)s->end), 0);
	} else {
		note(m, "crash: %zu bytes of garbage (%zu) after %s's end %zu", len, kind, s->name,
		     s->end);
		qt_write_at(path, s->end, junk, len);
	}
	m->garbage++;
	qt_segments_free(segs, n);
}

static void do_crash(struct model *m)
{
	uint64_t now, must = m->acked_floor;
	struct queue_stats st;

	if (rnd(m) % 2)
		qt_sleep_usec(rnd_range(m, 0, 30) * QT_MSEC);
	note(m, "crash");
	now = qt_now_usec();
	for (size_t i = 0; i < m->n_acks; i++)
		if (m->acks[i].usec + ACK_CHECKPOINT_BOUND_USEC <= now)
			must = MAX(must, m->acks[i].seq);
	close_queue(m, true);
	if (rnd(m) % 2)
		tear_tail(m);
	open_queue(m);
	m->crashes++;

	/* Acks come back as far as the checkpoint had them: no further, and not
	 * short of what the checkpoint interval had surely covered. */
	queue_get_stats(m->q, &st);
	CHECK(m, st.acked_seq <= m->acked && st.acked_seq >= must,
	      "after a crash acked_seq %" PRIu64 ", expected %" PRIu64 "..%" PRIu64, st.acked_seq,
	      must, m->acked);
	m->acked = m->acked_floor = st.acked_seq;
	check_restart(m, true);
	prune(m);
}

static void run(struct model *m)
{
	static const struct {
		void (*fn)(struct model *m);
		unsigned weight;
	} actions[] = {
		{ do_append, 30 }, { do_wait_durable, 10 }, { do_read, 25 }, { do_ack, 15 },
		{ do_rewind, 4 },  { do_reopen, 4 },	    { do_crash, 5 }, { do_idle, 2 },
	};
	unsigned total = 0;

	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		total += actions[i].weight;
	open_queue(m);
	for (m->step = 0; m->step < m->steps; m->step++) {
		unsigned pick = (unsigned)(rnd(m) % total);
		size_t a = 0;

		while (pick >= actions[a].weight)
			pick -= actions[a++].weight;
		actions[a].fn(m);
		check_stats(m);
	}
	/* The end: a clean restart must give back exactly what is unacknowledged. */
	do_reopen(m);
	check_stats(m);
	close_queue(m, false);
}

static void test_model(void **state)
{
	struct model *m = calloc(1, sizeof(*m));
	const char *env;
	uint64_t t0 = qt_now_usec();

	(void)state;
	assert_non_null(m);
	env = getenv("COAPGATE_TEST_SEED");
	m->seed =
	    env && *env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid() << 16;
	env = getenv("COAPGATE_TEST_STEPS");
	m->steps = env && *env ? strtoul(env, NULL, 0) : DEFAULT_STEPS;
	m->rng = m->seed;
	m->next_n = 1;
	qt_dir_make(&m->dir);
	m->o = qt_options(m->dir.q);
	/* Room enough that the model never meets the full policy (test_queue_full). */
	m->o.max_size = 64 * QT_MIB;
	printf("test_queue_model: COAPGATE_TEST_SEED=%" PRIu64 " COAPGATE_TEST_STEPS=%lu\n",
	       m->seed, m->steps);
	fflush(stdout);
	/* Generous: about 5 ms a step, most of it fdatasync. */
	snprintf(alarm_msg, sizeof(alarm_msg),
		 "test_queue_model: hang? no end after %lu s (COAPGATE_TEST_SEED=%" PRIu64
		 " COAPGATE_TEST_STEPS=%lu); the last steps:\n",
		 60 + m->steps / 10, m->seed, m->steps);
	running = m;
	alarm((unsigned)(60 + m->steps / 10));

	capture_start(&m->cap);
	m->capturing = true;
	run(m);
	m->capturing = false;
	free(capture_stop(&m->cap));
	alarm(0);
	running = NULL;

	printf("test_queue_model: %lu steps in %.1f s: %lu appended, %lu read, %lu restarts, "
	       "%lu crashes (%lu torn tails), up to %lu segments; %lu runs reissued seqs lost "
	       "in a crash\n",
	       m->steps, (double)(qt_now_usec() - t0) / QT_SEC, m->appends, m->reads, m->reopens,
	       m->crashes, m->garbage, m->max_segments, m->reissued);
	qt_rm_rf(m->dir.root);
	free(m->e);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model),
	};

	real_stderr = dup(STDERR_FILENO);
	signal(SIGALRM, on_alarm);
	log_setup(LOG_TARGET_STDERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
