/* SPDX-License-Identifier: MIT */
/*
 * The uplink's look-ahead window over the queue: readings read but not yet
 * acknowledged, in seq order, each pending, in flight or done. Messages are packed
 * per topic from the pending readings, so interleaved topics still fill their
 * messages; the queue is acknowledged up to the contiguous prefix of done readings.
 *
 * Pure bookkeeping: no I/O, no clock of its own, no logging; unit-tested alone.
 */
#ifndef COAPGATE_OUTBOX_H
#define COAPGATE_OUTBOX_H

#include <coapgate/plugin.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct outbox;

/* One packed message. payload and topic are owned by the message. */
struct outbox_message {
	uint64_t id;
	char *topic;
	char *payload;
	size_t payload_len;
	size_t n_readings;
	uint64_t first_seq, last_seq;
	uint64_t *positions; /* the window positions of its readings */
};

/* A window of at most capacity readings. */
struct outbox *outbox_new(size_t capacity);
void outbox_free(struct outbox *o);

bool outbox_is_full(const struct outbox *o);
/* Readings in the window, and those of them neither in flight nor done. */
size_t outbox_count(const struct outbox *o);
size_t outbox_pending(const struct outbox *o);
/* The timestamp of the oldest reading in the window (0 if empty). */
int64_t outbox_oldest_timestamp_ms(const struct outbox *o);

/* Add a reading as queue_read() returned it; its topic and values are copied. */
void outbox_push(struct outbox *o, uint64_t seq, const struct cg_reading *r, uint64_t now_us);

/*
 * Pack the next message to send at now_us: the first topic (in order of its oldest
 * pending reading) whose message is full, or whose oldest reading has waited linger_us,
 * or any when the window is full. budget_for_topic(topic, arg) is the payload budget
 * for that topic. Returns 1 and fills *ret (free with outbox_message_free()), or 0 with
 * *ret_wake_us the time the next message becomes due (UINT64_MAX: nothing pending).
 */
int outbox_next_message(struct outbox *o, size_t (*budget_for_topic)(const char *, void *),
			void *arg, bool with_seq, uint64_t now_us, uint64_t linger_us,
			struct outbox_message *ret, uint64_t *ret_wake_us);

/* The message was delivered or dead-lettered: its readings are done. */
void outbox_message_done(struct outbox *o, const struct outbox_message *m);
/* The message failed and will be sent again: its readings are pending again. */
void outbox_message_retry(struct outbox *o, const struct outbox_message *m);
void outbox_message_free(struct outbox_message *m);

/*
 * Drop the done readings at the head of the window. Returns the highest seq dropped,
 * which the caller acknowledges to the queue, or 0 if none was.
 */
uint64_t outbox_pop_done(struct outbox *o);

#endif
