/* SPDX-License-Identifier: MIT */
/*
 * The Unix socket input's shared state: its configuration as the daemon parsed it,
 * what init() derived from it, and the counters its log lines carry. run() picks the
 * loop for the socket type: stream.c or dgram.c; both hand each message to ingest().
 */
#ifndef UNIXSOCK_H
#define UNIXSOCK_H

#include <coapgate/plugin.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "message.h"

enum socket_kind {
	SOCKET_STREAM,
	SOCKET_DATAGRAM,
};

enum message_format {
	FORMAT_JSON,
	FORMAT_INFLUX,
};

/* Filled by the daemon from the option table in unixsock.c. */
struct unixsock_conf {
	const char *path;
	int kind;   /* enum socket_kind */
	int format; /* enum message_format */
	bool ack;
	const char *socket_mode;
	const char *group;
	uint64_t max_message;
	int64_t max_clients;
	int precision; /* enum influx_precision */
};

struct unixsock {
	struct cg_instance *inst;
	const struct unixsock_conf *conf;
	mode_t file_mode;
	gid_t gid; /* (gid_t)-1: leave the daemon's */
	uint64_t rejected;
	bool blocked; /* waiting for room in a full queue (when_full = block) */
};

/* What became of one message. */
enum ingest_result {
	INGEST_ACCEPTED, /* emitted; *ret_token is its token */
	INGEST_SKIPPED,	 /* empty line or comment: no answer */
	INGEST_REJECTED, /* why says why; counted and logged */
	INGEST_STOPPED,	 /* the instance is stopping while the queue was full */
};

/*
 * Parse the message of len bytes at msg (msg[len] must be writable) and emit it.
 * While the queue is full and its policy is block, keep offering it: this is how the
 * input stops reading its clients. peer may be NULL when the kernel gave no
 * credentials.
 */
enum ingest_result ingest(struct unixsock *u, char *msg, size_t len, const struct ucred *peer,
			  uint64_t *ret_token, char *why, size_t why_size);

/* Count and log (rate-limited by the daemon) a message rejected before parsing. */
void ingest_reject(struct unixsock *u, const struct ucred *peer, const char *why);

/* The same for a message longer than max_message; the reason is left in why. */
void ingest_reject_too_long(struct unixsock *u, const struct ucred *peer, char *why,
			    size_t why_size);

int stream_run(struct unixsock *u);
int dgram_run(struct unixsock *u);

#endif
