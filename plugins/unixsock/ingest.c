// SPDX-License-Identifier: MIT
/*
 * One message into the queue; see unixsock.h.
 */
#include "unixsock.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* How long to pause between offers when the queue answers at once that it is full
 * (block_timeout = 0), so that waiting does not spin. */
#define FULL_RETRY_USEC 10000

void ingest_reject(struct unixsock *u, const struct ucred *peer, const char *why)
{
	u->rejected++;
	if (peer)
		cg_log_warning(u->inst,
			       "rejected a message from pid %d uid %u (%" PRIu64
			       " rejected so far): %s",
			       (int)peer->pid, (unsigned)peer->uid, u->rejected, why);
	else
		cg_log_warning(u->inst, "rejected a message (%" PRIu64 " rejected so far): %s",
			       u->rejected, why);
}

void ingest_reject_too_long(struct unixsock *u, const struct ucred *peer, char *why,
			    size_t why_size)
{
	snprintf(why, why_size, "message longer than %" PRIu64 " bytes", u->conf->max_message);
	ingest_reject(u, peer, why);
}

static void set_blocked(struct unixsock *u, bool blocked)
{
	if (u->blocked == blocked)
		return;
	u->blocked = blocked;
	if (blocked)
		cg_log_notice(u->inst, "the queue is full: not reading clients until it has room");
	else
		cg_log_notice(u->inst, "the queue has room again: reading clients");
}

enum ingest_result ingest(struct unixsock *u, char *msg, size_t len, const struct ucred *peer,
			  uint64_t *ret_token, char *why, size_t why_size)
{
	struct message m;
	int r;

	if (u->conf->format == FORMAT_JSON)
		r = parse_json(msg, len, &m, why, why_size);
	else
		r = parse_influx(msg, len, u->conf->precision, &m, why, why_size);
	if (r == PARSE_SKIP)
		return INGEST_SKIPPED;
	if (r < 0) {
		ingest_reject(u, peer, why);
		return INGEST_REJECTED;
	}
	for (;;) {
		r = cg_emit_tracked(u->inst, &m.reading, ret_token);
		if (r != -EAGAIN)
			break;
		/* Full, and the policy is block: hold the message, read nobody. */
		set_blocked(u, true);
		if (cg_sleep(u->inst, FULL_RETRY_USEC) < 0)
			return INGEST_STOPPED;
	}
	set_blocked(u, false);
	if (r == 0)
		return INGEST_ACCEPTED;
	/* The daemon logged and counted these already. */
	if (r == -ENOSPC)
		snprintf(why, why_size, "queue full");
	else if (r == -EINVAL)
		snprintf(why, why_size, "the daemon refused the reading (see its log)");
	else
		snprintf(why, why_size, "the daemon could not take the reading: %s", strerror(-r));
	u->rejected++;
	return INGEST_REJECTED;
}
