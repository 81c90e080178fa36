/* SPDX-License-Identifier: MIT */
/*
 * Ack mode's durability tracker: a thread that waits, with cg_wait_durable(), for the
 * newest reading the input has emitted, and reports progress through an eventfd. The
 * input's own thread never blocks on the disk, so it goes on reading other clients
 * while a commit is under way; it writes the `ok` answers itself.
 */
#ifndef UNIXSOCK_ACK_H
#define UNIXSOCK_ACK_H

#include <coapgate/plugin.h>
#include <stdint.h>

struct ack_tracker;

int ack_tracker_start(struct cg_instance *inst, struct ack_tracker **ret);

/* Stop the thread and free. */
void ack_tracker_free(struct ack_tracker *t);

/* Readable when there is progress to collect with ack_tracker_collect(). */
int ack_tracker_fd(const struct ack_tracker *t);

/* The input emitted readings up to token (tokens only grow). */
void ack_tracker_emitted(struct ack_tracker *t, uint64_t token);

/*
 * Reset the fd and return the progress: every reading up to *ret_durable is durable,
 * except that readings up to *ret_lost may have been lost (0: none ever).
 */
void ack_tracker_collect(struct ack_tracker *t, uint64_t *ret_durable, uint64_t *ret_lost);

#endif
