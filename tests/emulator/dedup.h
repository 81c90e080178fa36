/* SPDX-License-Identifier: MIT */
/*
 * Duplicate detection for confirmable requests (RFC 7252 §4.5, as 1NCE documents it):
 * the answer to each (listener, client address and port, message ID) is remembered for
 * EXCHANGE_LIFETIME, so a retransmission gets the same answer and is not processed
 * again. Bounded: past DEDUP_MAX_ENTRIES the oldest entries are forgotten early.
 */
#ifndef NCE_DEDUP_H
#define NCE_DEDUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define DEDUP_MAX_ENTRIES (1u << 18)

/* An answer as the server gives it: a code and an optional JSON or text body. */
struct answer {
	uint8_t code; /* class << 5 | detail */
	bool json;    /* the body is application/json (Content-Format 50) */
	char *body;   /* NUL-terminated, owned; NULL for none */
};

struct dedup;

struct dedup *dedup_new(void);
void dedup_free(struct dedup *dedup);

/*
 * The answer remembered for this request at time now_us (the emulator's clock), or
 * NULL. The pointer is valid until the next dedup_remember().
 */
const struct answer *dedup_find(struct dedup *dedup, bool dtls, const struct sockaddr *client,
				uint16_t mid, uint64_t now_us);

/* Remember a copy of answer for this request, from now_us on. */
void dedup_remember(struct dedup *dedup, bool dtls, const struct sockaddr *client, uint16_t mid,
		    uint64_t now_us, const struct answer *answer);

#endif
