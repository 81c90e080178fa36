/* SPDX-License-Identifier: MIT */
/*
 * The dead-letter file: messages 1NCE OS refused for good (4.00 bad topic, 4.13 too
 * large, ...) are kept in <state_dir>/dead-letter.jsonl, one JSON line each with the
 * answer and the payload, so that one poison message never blocks the queue and
 * nothing is thrown away unseen. Bounded: past max_size the file becomes
 * dead-letter.1.jsonl (replacing the previous one) and a new one starts.
 */
#ifndef COAPGATE_DEADLETTER_H
#define COAPGATE_DEADLETTER_H

#include <stddef.h>
#include <stdint.h>

struct deadletter_entry {
	const char *topic;
	const char *code;   /* "4.00" */
	const char *reason; /* the answer's payload, or why it was not sent */
	const char *payload;
	size_t payload_len;
	uint64_t first_seq, last_seq;
	size_t n_readings;
};

/* Append one entry and fdatasync it. Returns 0 or -errno; logs nothing. */
int deadletter_append(const char *dir, uint64_t max_size, const struct deadletter_entry *e);

#endif
