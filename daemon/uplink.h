/* SPDX-License-Identifier: MIT */
/*
 * The uplink: readings leave the disk queue and reach 1NCE OS as CoAP POSTs over DTLS
 * with a pre-shared key, each at least once, packed many to a message (outbox.c,
 * encode_json.c). It obtains its credentials by bootstrap when it has none, after a
 * 4.01, or after repeated handshake failures (credentials.c), and runs on the main
 * sd-event loop with libcoap's epoll fd (DESIGN.md §7; docs/UPLINK.md).
 *
 * States: credentials → bootstrapping → resolving → connecting → ready, and backoff
 * from any failure.
 */
#ifndef COAPGATE_UPLINK_H
#define COAPGATE_UPLINK_H

#include <stddef.h>
#include <stdint.h>

struct sd_event;
struct queue;
struct uplink_settings;
struct uplink;

/*
 * Start sending what q holds. settings and state_dir are borrowed for the uplink's
 * life. Returns 0 or -errno after logging why.
 */
int uplink_new(struct sd_event *event, const struct uplink_settings *settings,
	       const char *state_dir, struct queue *q, struct uplink **ret_uplink);
void uplink_free(struct uplink *u);

/* One line for STATUS=: state, last answer, oldest unacknowledged reading's age. */
void uplink_status(const struct uplink *u, char *buf, size_t size);

#endif
